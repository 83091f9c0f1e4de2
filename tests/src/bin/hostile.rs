//! What one hostile client costs everyone else, measured. Not part of
//! `cargo test`; run it with
//!
//! ```sh
//! cargo run --release -p tickwire-tests --bin hostile -- --secs 30
//! ```
//!
//! Three processes on loopback: the server (its RSS and tick times are its
//! own), 16 honest players over WebSocket that measure the age of every
//! frame they get, and the attacker. Three phases of `--secs` each:
//! baseline (players only), hostile (the attacker runs), after (it
//! stopped). The attacker, all at once: 300 spectators that never read
//! (half SSE, half WebSocket, renewed every 25 s), a 5,000 inputs/s flood
//! that reconnects after each close, garbage frames, 2 MiB frames, and
//! escape sequences in its names and chat.

use std::time::{Duration, Instant};

use protocol::{Format, ServerMsg};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tickwire_tests::observe::{ChildConfig, ChildServer, Stats, maybe_serve_child, percentile};
use tickwire_tests::{Probe, player};
use tui_client::bot::BotKind;
use tui_client::client::ClientEvent;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Attack {
    addr: String,
    spectators: usize,
    flood_per_sec: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AttackReport {
    non_readers_opened: u64,
    flood_sessions: u64,
    flood_inputs_sent: u64,
    flood_closes_1008: u64,
    garbage_frames: u64,
    garbage_closes: std::collections::BTreeMap<u16, u64>,
    big_frames: u64,
    big_closes_1009: u64,
    chat_lines: u64,
    chat_rate_limited: u64,
}

fn main() {
    maybe_serve_child();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--attack-child") {
        let attack: Attack = serde_json::from_str(&args[2]).expect("attack config");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let report = rt.block_on(attack_child(attack));
        println!("{}", serde_json::to_string(&report).expect("report"));
        std::process::exit(0);
    }
    let mut secs = 30u64;
    let mut players = 16usize;
    let mut spectators = 300usize;
    let mut report_path = None;
    let mut it = args.iter().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--secs" => secs = value().parse().expect("--secs N"),
            "--players" => players = value().parse().expect("--players N"),
            "--spectators" => spectators = value().parse().expect("--spectators N"),
            "--report" => report_path = Some(value()),
            _ => {
                println!(
                    "hostile [--secs 30] [--players 16] [--spectators 300] [--report hostile.json]"
                );
                std::process::exit(0);
            }
        }
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run(secs, players, spectators, report_path));
}

/// What the honest players and the server saw during one phase.
#[derive(Debug, Default, Serialize)]
struct Phase {
    name: &'static str,
    ticks_timed: usize,
    tick_us_p50: u64,
    tick_us_p99: u64,
    tick_us_max: u64,
    frames: usize,
    frame_age_us_p50: u64,
    frame_age_us_p99: u64,
    frame_age_us_max: u64,
    honest_gaps: u64,
    honest_desyncs: u64,
    honest_keyframes: u64,
    rss_end_kib: u64,
    connections_end: usize,
    overruns: u64,
    counters_end: serde_json::Value,
}

async fn run(secs: u64, players: usize, spectators: usize, report_path: Option<String>) {
    let log = std::env::temp_dir().join(format!("tickwire-hostile-{}.log", std::process::id()));
    let config = ChildConfig {
        max_players: 32,
        ..ChildConfig::default()
    };
    let mut server = ChildServer::spawn(&config, log).await;
    let rss_start = server.stats().await.rss_kib;
    let mut honest: Vec<Probe> = (0..players)
        .map(|i| {
            let format = if i % 2 == 0 {
                Format::Json
            } else {
                Format::Bincode
            };
            Probe::bot(
                player(&server.url, &format!("honest{i}"), format),
                BotKind::ALL[i % 3],
                i as u64,
            )
        })
        .collect();
    for p in &mut honest {
        p.until("a welcome", |p| !p.welcomes.is_empty()).await;
    }
    // The players step on their own tasks for the whole run, so no frame
    // waits for a phase to start; each frame counts in the phase its tick
    // was produced in.
    let shared = Arc::new(Honest {
        frames: Mutex::new(Vec::new()),
        stats: Mutex::new(vec![Default::default(); honest.len()]),
        stop: AtomicBool::new(false),
    });
    let tasks: Vec<_> = honest
        .into_iter()
        .enumerate()
        .map(|(who, p)| tokio::spawn(play(who, p, shared.clone())))
        .collect();
    let mut phases = Vec::new();
    phases.push(phase("baseline", secs, &mut server, &shared).await);
    let attacker = spawn_attacker(&server, spectators);
    phases.push(phase("hostile", secs, &mut server, &shared).await);
    // The attacker winds down while the last phase runs.
    let attack_report = tokio::task::spawn_blocking(move || attacker.report());
    phases.push(phase("after", secs, &mut server, &shared).await);
    let attack_report = attack_report.await.unwrap_or_default();
    shared.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        if let Ok(p) = t.await {
            let _ = tokio::time::timeout(Duration::from_secs(10), p.leave()).await;
        }
    }
    let end = server.stop().await;
    let report = serde_json::json!({
        "secs_per_phase": secs,
        "honest_players": players,
        "non_reading_spectators": spectators,
        "rss_start_kib": rss_start,
        "phases": phases,
        "attacker": attack_report,
        "server_panics": end.panics,
        "shutdown_ms": end.shutdown_ms,
    });
    let json = serde_json::to_string_pretty(&report).expect("report");
    println!("{json}");
    if let Some(path) = report_path {
        std::fs::write(path, &json).expect("write the report");
    }
}

/// What the honest players share with the phases that measure them.
struct Honest {
    /// `(server_time_us, age_us)` of every tick frame received.
    frames: Mutex<Vec<(u64, u64)>>,
    /// Each player's view counters, kept current.
    stats: Mutex<Vec<tui_client::view::FrameStats>>,
    stop: AtomicBool,
}

/// One honest player: steps its client until told to stop.
async fn play(who: usize, mut p: Probe, shared: Arc<Honest>) -> Probe {
    while !shared.stop.load(Ordering::Relaxed) {
        let Ok(ev) = tokio::time::timeout(Duration::from_secs(1), p.step()).await else {
            continue;
        };
        if let ClientEvent::Server(ServerMsg::Tick(t)) = ev {
            let age = game_server::clock::now_us().saturating_sub(t.server_time_us);
            shared.frames.lock().unwrap().push((t.server_time_us, age));
            shared.stats.lock().unwrap()[who] =
                p.view.as_ref().map(|v| v.stats).unwrap_or_default();
        }
    }
    p
}

async fn phase(name: &'static str, secs: u64, server: &mut ChildServer, honest: &Honest) -> Phase {
    eprintln!("phase {name}: {secs} s");
    let before = honest.stats.lock().unwrap().clone();
    let start_us = game_server::clock::now_us();
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tick_us = Vec::new();
    let mut last = Stats::default();
    while Instant::now() < until {
        last = server.stats().await;
        tick_us.extend_from_slice(&last.tick_us_all);
    }
    let end_us = game_server::clock::now_us();
    let after = honest.stats.lock().unwrap().clone();
    tick_us.sort_unstable();
    let mut ages: Vec<u64> = honest
        .frames
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| (start_us..end_us).contains(t))
        .map(|(_, age)| *age)
        .collect();
    ages.sort_unstable();
    let delta = |f: fn(&tui_client::view::FrameStats) -> u64| -> u64 {
        after.iter().zip(&before).map(|(a, b)| f(a) - f(b)).sum()
    };
    Phase {
        name,
        ticks_timed: tick_us.len(),
        tick_us_p50: percentile(&tick_us, 0.5),
        tick_us_p99: percentile(&tick_us, 0.99),
        tick_us_max: tick_us.last().copied().unwrap_or(0),
        frames: ages.len(),
        frame_age_us_p50: percentile(&ages, 0.5),
        frame_age_us_p99: percentile(&ages, 0.99),
        frame_age_us_max: ages.last().copied().unwrap_or(0),
        honest_gaps: delta(|s| s.gaps),
        honest_desyncs: delta(|s| s.desyncs),
        honest_keyframes: delta(|s| s.keyframes),
        rss_end_kib: last.rss_kib,
        connections_end: last.connections,
        overruns: last.overruns,
        counters_end: last.counters,
    }
}

/// The attacker's process; closing its stdin stops it.
struct Attacker {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
}

impl Attacker {
    fn report(mut self) -> AttackReport {
        drop(self.stdin.take());
        let out = self.child.wait_with_output().expect("the attacker ends");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_default()
    }
}

fn spawn_attacker(server: &ChildServer, spectators: usize) -> Attacker {
    let attack = Attack {
        addr: server.addr.to_string(),
        spectators,
        flood_per_sec: 5000,
    };
    let mut child = std::process::Command::new(std::env::current_exe().expect("own path"))
        .arg("--attack-child")
        .arg(serde_json::to_string(&attack).expect("attack"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the attacker starts");
    let stdin = child.stdin.take();
    Attacker { child, stdin }
}

// ---- the attacker (its own process) ----

use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

#[derive(Default)]
struct Tallies {
    non_readers: AtomicU64,
    flood_sessions: AtomicU64,
    flood_inputs: AtomicU64,
    flood_1008: AtomicU64,
    garbage: AtomicU64,
    big: AtomicU64,
    big_1009: AtomicU64,
    chat: AtomicU64,
    chat_limited: AtomicU64,
    garbage_closes: Mutex<std::collections::BTreeMap<u16, u64>>,
}

const EVIL_NAME: &str = "\x1b[2J\x1b]0;pwned\x07\u{202E}evil\u{200B}";
const EVIL_CHAT: &str = "\x1b]52;c;cHduZWQ=\x07\x1b[31mred\u{2066}\u{200D}\r\n";

async fn attack_child(a: Attack) -> AttackReport {
    let stop = Arc::new(AtomicBool::new(false));
    let t: Arc<Tallies> = Arc::default();
    std::thread::spawn({
        let stop = stop.clone();
        move || {
            let mut s = String::new();
            while std::io::stdin().read_line(&mut s).is_ok_and(|n| n > 0) {
                s.clear();
            }
            stop.store(true, Ordering::Relaxed);
        }
    });
    let addr: std::net::SocketAddr = a.addr.parse().expect("addr");
    let mut tasks = vec![
        tokio::spawn(non_readers(addr, a.spectators, stop.clone(), t.clone())),
        tokio::spawn(flood(addr, a.flood_per_sec, stop.clone(), t.clone())),
        tokio::spawn(garbage(addr, stop.clone(), t.clone())),
        tokio::spawn(big_frames(addr, stop.clone(), t.clone())),
        tokio::spawn(chatter(addr, stop.clone(), t.clone())),
    ];
    for task in tasks.drain(..) {
        let _ = task.await;
    }
    let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
    AttackReport {
        non_readers_opened: r(&t.non_readers),
        flood_sessions: r(&t.flood_sessions),
        flood_inputs_sent: r(&t.flood_inputs),
        flood_closes_1008: r(&t.flood_1008),
        garbage_frames: r(&t.garbage),
        garbage_closes: t.garbage_closes.lock().unwrap().clone(),
        big_frames: r(&t.big),
        big_closes_1009: r(&t.big_1009),
        chat_lines: r(&t.chat),
        chat_rate_limited: r(&t.chat_limited),
    }
}

async fn small_window(addr: std::net::SocketAddr) -> Option<tokio::net::TcpStream> {
    let s = tokio::net::TcpSocket::new_v4().ok()?;
    s.set_recv_buffer_size(4096).ok()?;
    s.connect(addr).await.ok()
}

/// Spectators that never read, renewed every 25 s (the server closes a
/// stalled one after its write-stall timeout, 30 s by default).
async fn non_readers(addr: std::net::SocketAddr, n: usize, stop: Arc<AtomicBool>, t: Arc<Tallies>) {
    while !stop.load(Ordering::Relaxed) {
        let mut held = Vec::with_capacity(n);
        for i in 0..n {
            let Some(mut s) = small_window(addr).await else {
                continue;
            };
            let ok = if i % 2 == 0 {
                s.write_all(b"GET /rooms/lobby/events HTTP/1.1\r\nhost: x\r\n\r\n")
                    .await
                    .is_ok()
            } else {
                let req = "GET /rooms/lobby/ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n\
                           connection: upgrade\r\nsec-websocket-version: 13\r\n\
                           sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
                // The hello goes right behind the upgrade, masked; then silence.
                let hello = br#"{"hello":{"version":2,"name":"eye","role":"spectator"}}"#;
                let mut f = vec![0x81, 0x80 | hello.len() as u8, 0, 0, 0, 0];
                f.extend_from_slice(hello);
                s.write_all(req.as_bytes()).await.is_ok() && s.write_all(&f).await.is_ok()
            };
            if ok {
                t.non_readers.fetch_add(1, Ordering::Relaxed);
                held.push(s);
            }
        }
        let until = Instant::now() + Duration::from_secs(25);
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A JSON session: a player (resuming with `token` if given) or a spectator.
async fn join_as(
    addr: std::net::SocketAddr,
    name: &str,
    role: &str,
    token: Option<&str>,
) -> Option<Ws> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/rooms/lobby/ws"))
        .await
        .ok()?;
    let hello = serde_json::json!({"hello": {"version": protocol::PROTOCOL_VERSION, "name": name, "role": role, "token": token}});
    ws.send(Message::text(hello.to_string())).await.ok()?;
    Some(ws)
}

/// A spectator: uncapped by the room, so junk from it never fills a room.
async fn join(addr: std::net::SocketAddr, name: &str) -> Option<Ws> {
    join_as(addr, name, "spectator", None).await
}

/// The token of the welcome that starts `ws`.
async fn welcome_token(ws: &mut Ws) -> Option<String> {
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        if let Message::Text(t) = m
            && let Ok(ServerMsg::Welcome(w)) =
                protocol::codec::decode::<ServerMsg>(Format::Json, t.as_bytes())
        {
            return Some(w.token);
        }
    }
    None
}

/// A player's inputs at `per_sec`, paced in 10 ms batches; after each
/// close it resumes its snake with its token and floods again.
async fn flood(addr: std::net::SocketAddr, per_sec: u32, stop: Arc<AtomicBool>, t: Arc<Tallies>) {
    let batch = (per_sec / 100).max(1) as u64;
    let mut token: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(mut ws) = join_as(addr, EVIL_NAME, "player", token.as_deref()).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        match welcome_token(&mut ws).await {
            Some(tk) => token = Some(tk),
            None => {
                token = None;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        t.flood_sessions.fetch_add(1, Ordering::Relaxed);
        let (mut tx, mut rx) = ws.split();
        let reader = tokio::spawn(async move {
            while let Some(Ok(m)) = rx.next().await {
                if let Message::Close(Some(c)) = m {
                    return Some(u16::from(c.code));
                }
            }
            None
        });
        let mut seq = 0u64;
        let mut every = tokio::time::interval(Duration::from_millis(10));
        'send: while !stop.load(Ordering::Relaxed) && !reader.is_finished() {
            every.tick().await;
            for _ in 0..batch {
                seq += 1;
                let dir = ["up", "left", "down", "right"][seq as usize % 4];
                let m = serde_json::json!({"input": {"seq": seq, "dir": dir}});
                if tx.feed(Message::text(m.to_string())).await.is_err() {
                    break 'send;
                }
                t.flood_inputs.fetch_add(1, Ordering::Relaxed);
            }
            if tx.flush().await.is_err() {
                break;
            }
        }
        if let Ok(Ok(Some(1008))) = tokio::time::timeout(Duration::from_secs(5), reader).await {
            t.flood_1008.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Random garbage as the first frame or after a hello, 20 a second.
async fn garbage(addr: std::net::SocketAddr, stop: Arc<AtomicBool>, t: Arc<Tallies>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    while !stop.load(Ordering::Relaxed) {
        let ws = if rng.random_bool(0.5) {
            join(addr, EVIL_NAME).await
        } else {
            tokio_tungstenite::connect_async(format!("ws://{addr}/rooms/lobby/ws"))
                .await
                .ok()
                .map(|(w, _)| w)
        };
        let Some(mut ws) = ws else { continue };
        let len = rng.random_range(1..2000);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let frame = if rng.random_bool(0.5) {
            Message::binary(bytes)
        } else {
            Message::text(String::from_utf8_lossy(&bytes).into_owned())
        };
        if ws.send(frame).await.is_ok() {
            t.garbage.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(code) = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Close(Some(c)) = m {
                    return u16::from(c.code);
                }
            }
            0
        })
        .await
        {
            *t.garbage_closes.lock().unwrap().entry(code).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 2 MiB frames, two a second.
async fn big_frames(addr: std::net::SocketAddr, stop: Arc<AtomicBool>, t: Arc<Tallies>) {
    let big = vec![b'x'; 2 << 20];
    while !stop.load(Ordering::Relaxed) {
        let Some(mut ws) = join(addr, EVIL_NAME).await else {
            continue;
        };
        let _ = ws.send(Message::binary(big.clone())).await;
        t.big.fetch_add(1, Ordering::Relaxed);
        while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            if let Message::Close(Some(c)) = m {
                if u16::from(c.code) == 1009 {
                    t.big_1009.fetch_add(1, Ordering::Relaxed);
                }
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A player with an escape-laden name chatting escape-laden lines, 20 a second.
async fn chatter(addr: std::net::SocketAddr, stop: Arc<AtomicBool>, t: Arc<Tallies>) {
    let Some(ws) = join_as(addr, EVIL_NAME, "player", None).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let limited = tokio::spawn({
        let t = t.clone();
        async move {
            while let Some(Ok(m)) = rx.next().await {
                if let Message::Text(text) = m
                    && let Ok(ServerMsg::Error(e)) =
                        protocol::codec::decode::<ServerMsg>(Format::Json, text.as_bytes())
                    && e.code == "rate_limited"
                {
                    t.chat_limited.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    let mut every = tokio::time::interval(Duration::from_millis(50));
    while !stop.load(Ordering::Relaxed) {
        every.tick().await;
        let m = serde_json::json!({"chat": {"text": EVIL_CHAT}});
        if tx.send(Message::text(m.to_string())).await.is_err() {
            break;
        }
        t.chat.fetch_add(1, Ordering::Relaxed);
    }
    limited.abort();
}
