//! The lag figures against real sockets: every transport's own byte and
//! request counts agree with a byte-counting proxy on the wire; a link
//! conditioner's known delay shows up in the measured RTT, frame age and
//! input latency; `--transport all` reports every transport.
//!
//! Waits are on figures reaching a sample count, never on time. Only lower
//! bounds that the added delay forces are asserted (with generous upper
//! bounds), never a speed.

use std::future::pending;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use protocol::{Format, Role};
use tickwire_tests::{LOBBY, Probe, TestServer, player};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tui_client::bot::{BotKind, BotMix};
use tui_client::client::{ClientConfig, Conditioner, TransportKind};
use tui_client::embedded::EmbeddedOptions;
use tui_client::headless::{self, HeadlessOptions};
use tui_client::lag::LagSnapshot;

/// The delay the conditioner adds, one way, each direction.
const LATENCY: Duration = Duration::from_millis(40);

fn client(url: &str, name: &str, transport: TransportKind) -> ClientConfig {
    let mut c = player(url, name, Format::Bincode);
    c.transport = transport;
    if !transport.can_play() {
        c.role = Role::Spectator;
    }
    c.lag_every = Some(Duration::from_millis(100));
    c
}

/// Plays (or watches) until the meter has `pongs` round trips, `frames`
/// frame ages and, for players, `inputs` input latencies; then leaves and
/// returns the final figures.
async fn measure(config: ClientConfig, pongs: u64, frames: u64, inputs: u64) -> Box<LagSnapshot> {
    let plays = config.role == Role::Player;
    let inputs = if plays { inputs } else { 0 };
    let mut p = Probe::bot(config, BotKind::Survival, 3);
    p.until("enough samples", |p| {
        p.lag.as_ref().is_some_and(|l| {
            l.counts.pongs >= pongs
                && l.window.frame_age.count >= frames
                && l.window.input_latency.count >= inputs
        })
    })
    .await;
    p.handle.leave();
    p.closed().await;
    p.lag.take().expect("a final lag report before the close")
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// What went over a [`WireTap`]: every TCP payload byte, each way, and the
/// HTTP request lines seen going up.
#[derive(Debug, Default)]
struct Wire {
    up: AtomicU64,
    down: AtomicU64,
    requests: AtomicU64,
    /// Connections still open, and a wake-up when one closes.
    open: AtomicU64,
    closed: tokio::sync::Notify,
}

/// A plain TCP relay on 127.0.0.1:0 that counts bytes as the kernel passes
/// them: the ground truth the links' own counts are held against.
struct WireTap {
    url: String,
    wire: Arc<Wire>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WireTap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WireTap {
    async fn start(upstream: SocketAddr) -> WireTap {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let wire = Arc::new(Wire::default());
        let w = wire.clone();
        let task = tokio::spawn(async move {
            let mut pipes = tokio::task::JoinSet::new();
            while let Ok((down, _)) = l.accept().await {
                let w = w.clone();
                w.open.fetch_add(1, Ordering::SeqCst);
                pipes.spawn(async move {
                    if let Ok(up) = TcpStream::connect(upstream).await {
                        let (dr, dw) = down.into_split();
                        let (ur, uw) = up.into_split();
                        tokio::join!(copy(dr, uw, &w, true), copy(ur, dw, &w, false));
                    }
                    w.open.fetch_sub(1, Ordering::SeqCst);
                    w.closed.notify_waiters();
                });
            }
        });
        WireTap { url, wire, task }
    }

    /// Waits until every connection through the tap has closed (the
    /// client left), so the counts are final.
    async fn settled(&self) -> (u64, u64, u64) {
        let w = &self.wire;
        tokio::time::timeout(tickwire_tests::WAIT, async {
            loop {
                let closed = w.closed.notified();
                if w.open.load(Ordering::SeqCst) == 0 {
                    return;
                }
                closed.await;
            }
        })
        .await
        .expect("the client's connections close after it leaves");
        self.get()
    }

    fn get(&self) -> (u64, u64, u64) {
        let w = &self.wire;
        (
            w.requests.load(Ordering::Relaxed),
            w.up.load(Ordering::Relaxed),
            w.down.load(Ordering::Relaxed),
        )
    }
}

async fn copy(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    wire: &Wire,
    up: bool,
) {
    const LINE_END: &[u8] = b" HTTP/1.1\r\n";
    let mut buf = vec![0u8; 16 * 1024];
    // The end of the previous read, so a request line split across reads counts.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if up {
            tail.extend_from_slice(&buf[..n]);
            let lines = tail
                .windows(LINE_END.len())
                .filter(|w| *w == LINE_END)
                .count();
            wire.requests.fetch_add(lines as u64, Ordering::Relaxed);
            let keep = tail.len().min(LINE_END.len() - 1);
            tail.drain(..tail.len() - keep);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        // Counted once passed on: what the other side can read.
        let counter = if up { &wire.up } else { &wire.down };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = to.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_transport_counts_what_the_wire_carries() {
    let server = TestServer::start().await;
    let transports = [
        TransportKind::Ws,
        TransportKind::Sse,
        TransportKind::LongPoll,
        TransportKind::Poll {
            interval: Duration::from_millis(100),
        },
    ];
    // One at a time: the counts race only with the client's own leaving.
    for t in transports {
        let tap = WireTap::start(server.addr).await;
        let config = client(&tap.url, &format!("wire-{}", t.name()), t);
        let lag = measure(config, 2, 60, 1).await;
        let ours = lag.traffic;
        let wire = tap.settled().await;
        println!(
            "{:<9} link: {} req, {} B up, {} B down; wire: {} req, {} B up, {} B down",
            t.name(),
            ours.requests,
            ours.bytes_up,
            ours.bytes_down,
            wire.0,
            wire.1,
            wire.2
        );
        assert!(ours.requests > 0 && ours.bytes_down > 0, "{t:?}: {ours:?}");
        // A request cut off by the leave may be counted on one side only.
        assert!(
            ours.requests.abs_diff(wire.0) <= 2,
            "{t:?}: {ours:?} vs {wire:?}"
        );
        // What the server sent while the client was closing reached the
        // tap but was never read: a little slack for that, no more.
        let close = |a: u64, b: u64| a.abs_diff(b) <= b / 100 + 300;
        assert!(
            close(ours.bytes_up, wire.1),
            "{t:?} up: {ours:?} vs {wire:?}"
        );
        assert!(
            close(ours.bytes_down, wire.2),
            "{t:?} down: {ours:?} vs {wire:?}"
        );
        if t == TransportKind::Ws {
            assert_eq!(ours.requests, 1, "a WebSocket is one upgrade");
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conditioned_link_measures_the_added_delay() {
    let server = TestServer::start().await;
    let conditioner = Conditioner {
        latency: LATENCY,
        jitter: Duration::ZERO,
    };
    let transports = [
        TransportKind::Ws,
        TransportKind::Sse,
        TransportKind::LongPoll,
    ];
    let mut runs = Vec::new();
    for t in transports {
        for conditioned in [false, true] {
            let name = format!("{}{}", t.name(), if conditioned { "-slow" } else { "" });
            let mut c = client(&server.url, &name, t);
            c.conditioner = conditioned.then_some(conditioner);
            runs.push((t, conditioned, tokio::spawn(measure(c, 3, 60, 2))));
        }
    }
    let l = LATENCY.as_micros() as u64;
    for (t, conditioned, run) in runs {
        let lag = run.await.expect("measured");
        let w = lag.window;
        println!(
            "{:<9} {:<10} RTT p50 {:>7.2} ms, frame age p50 {:>7.2} p99 {:>7.2} ms, input p50 {:>7.2} ms",
            t.name(),
            if conditioned { "+40 ms" } else { "direct" },
            ms(w.rtt.p50_us),
            ms(w.frame_age.p50_us),
            ms(w.frame_age.p99_us),
            ms(w.input_latency.p50_us),
        );
        if !conditioned {
            continue;
        }
        // A round trip crosses the delay twice, a frame once, an input
        // twice (up, then its frame down).
        assert!(w.rtt.p50_us >= 2 * l, "{t:?} RTT {:?}", w.rtt);
        assert!(w.rtt.p50_us < 2 * l + 2_000_000, "{t:?} RTT {:?}", w.rtt);
        // The offset is estimated over symmetric delays: a few ms of slack.
        assert!(
            w.frame_age.p50_us + 5_000 >= l,
            "{t:?} age {:?}",
            w.frame_age
        );
        assert!(
            w.frame_age.p50_us < l + 2_000_000,
            "{t:?} age {:?}",
            w.frame_age
        );
        if t.can_play() {
            let input = w.input_latency;
            assert!(input.p50_us >= 2 * l, "{t:?} input {input:?}");
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_all_reports_every_transport() {
    let server = TestServer::start().await;
    let opts = HeadlessOptions {
        server: Some(server.url.clone()),
        room: LOBBY.into(),
        bots: 4,
        mix: BotMix::All(BotKind::Survival),
        name_prefix: "all".into(),
        duration: Duration::from_secs(3),
        format: Format::Bincode,
        transports: TransportKind::ALL.to_vec(),
        conditioner: None,
        reaction: Duration::ZERO,
        seed: 9,
        embedded: EmbeddedOptions::default(),
    };
    let report = headless::run(opts, pending()).await.expect("run");
    assert!(report.ok, "{report:#?}");
    let names: Vec<&str> = report
        .transports
        .iter()
        .map(|t| t.transport.as_str())
        .collect();
    assert_eq!(names, ["ws", "sse", "longpoll", "poll"]);
    for t in &report.transports {
        assert_eq!(t.bots, 1, "{t:?}");
        assert!(t.frames > 0 && t.frame_age.count > 0, "{t:?}");
        assert!(t.rtt.count > 0, "{t:?}");
        assert!(t.requests > 0 && t.bytes_down > 0, "{t:?}");
        assert_eq!(t.desyncs, 0, "{t:?}");
        if t.transport == "sse" {
            assert_eq!(t.input_latency.count, 0, "SSE carries no input");
        }
    }
    let by = |n: &str| report.transports.iter().find(|t| t.transport == n).unwrap();
    assert_eq!(by("ws").requests, 1, "one upgrade");
    assert!(
        by("poll").requests > by("ws").requests,
        "polls are requests"
    );
    let sse = report.bots.iter().find(|b| b.transport == "sse").unwrap();
    assert_eq!(sse.role, "spectator");
    // The JSON has the documented shape.
    let v = serde_json::to_value(&report).unwrap();
    for key in [
        "rtt",
        "frame_age",
        "input_latency",
        "jitter",
        "bytes_down",
        "bytes_up",
        "requests",
        "requests_per_s",
        "resyncs",
        "reconnects",
        "desyncs",
    ] {
        assert!(v["transports"][0].get(key).is_some(), "missing {key}");
    }
    assert!(v["transports"][0]["rtt"]["p99_ms"].is_number());
    server.shutdown().await;
}
