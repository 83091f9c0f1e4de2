//! A game server in a child process that reports on itself, for the soak
//! and hostile-client tools: its memory (RSS) and tasks are its own, not
//! mixed with the bots', and it times every tick.
//!
//! The tools run their own executable with `--serve-child CONFIG_JSON`
//! ([`maybe_serve_child`] at the top of `main`); the child starts a server
//! on 127.0.0.1:0, prints `{"addr": ...}`, then one [`Stats`] line of JSON
//! a second on stdout. Closing its stdin shuts it down gracefully; its
//! last line then says how long that took.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// How the child's server is set up.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChildConfig {
    pub tick_rate: u32,
    pub map: String,
    pub max_players: u32,
    pub resume_grace_secs: f64,
    pub poll_idle_secs: f64,
    /// Rooms besides the lobby: `room-1` .. `room-N`, same settings.
    pub extra_rooms: u32,
    /// Kernel send buffer per connection (`None`: the server default).
    pub send_buffer: Option<u32>,
}

impl Default for ChildConfig {
    fn default() -> Self {
        ChildConfig {
            tick_rate: 20,
            map: "arena".into(),
            max_players: 16,
            resume_grace_secs: 30.0,
            poll_idle_secs: 15.0,
            extra_rooms: 0,
            send_buffer: None,
        }
    }
}

/// What the child reports every second.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Milliseconds since the child started.
    pub t_ms: u64,
    /// Resident memory, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Tasks alive on the child's runtime.
    pub tasks: usize,
    /// Connections open under the caps.
    pub connections: usize,
    /// Long-poll/short-poll sessions alive.
    pub polled_sessions: usize,
    /// Players (connected or in grace) over every room.
    pub players: u32,
    /// Spectators over every room.
    pub spectators: u32,
    /// Ticks timed in the last second (every room), and their durations.
    pub ticks: usize,
    pub tick_us_p50: u64,
    pub tick_us_p99: u64,
    pub tick_us_max: u64,
    /// Every tick duration of the last second, sorted.
    #[serde(default)]
    pub tick_us_all: Vec<u64>,
    /// Ticks that started late because one overran, every room, so far.
    pub overruns: u64,
    /// Subscriber queue overflows (backlog dropped, keyframe next), so far.
    pub resyncs: u64,
    /// The limit counters (`game_server::limits::Counters`).
    pub counters: serde_json::Value,
}

/// Durations of the ticks since the last report, microseconds.
static TICK_US: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// Times every `tick` span (one per room tick, see `game_server::room`).
struct TickTimer;

struct Entered(Instant);

impl<S> tracing_subscriber::Layer<S> for TickTimer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_enter(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().replace(Entered(Instant::now()));
        }
    }

    fn on_exit(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(Entered(at)) = span.extensions_mut().remove::<Entered>()
        {
            let us = at.elapsed().as_micros() as u64;
            TICK_US.lock().unwrap_or_else(|e| e.into_inner()).push(us);
        }
    }
}

/// The `p` quantile (0..=1) of sorted values (0 when empty).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Resident memory of this process, KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// If this process was started as a server child, runs it and exits.
pub fn maybe_serve_child() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve-child") {
        let config: ChildConfig =
            serde_json::from_str(args.get(2).map_or("{}", String::as_str)).expect("child config");
        serve_child(config);
        std::process::exit(0);
    }
}

fn serve_child(config: ChildConfig) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::{Layer, filter};
    let timer = TickTimer.with_filter(filter::filter_fn(|m| m.is_span() && m.name() == "tick"));
    let logs = tracing_subscriber::fmt::layer()
        .fmt_fields(game_server::logging::safe_fields())
        .with_writer(std::io::stderr)
        .with_filter(filter::LevelFilter::WARN);
    let subscriber = tracing_subscriber::registry().with(timer).with(logs);
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async move {
        let started = Instant::now();
        let server = game_server::start(game_server::ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            tick_rate: config.tick_rate,
            map: config.map.clone(),
            max_players: config.max_players,
            resume_grace: Duration::from_secs_f64(config.resume_grace_secs),
            poll_idle_timeout: Duration::from_secs_f64(config.poll_idle_secs),
            send_buffer: config
                .send_buffer
                .or(Some(game_server::DEFAULT_SEND_BUFFER)),
            ..game_server::ServerConfig::default()
        })
        .await
        .expect("the server starts");
        for i in 1..=config.extra_rooms {
            server
                .rooms
                .create(
                    protocol::api::CreateRoom {
                        id: Some(format!("room-{i}")),
                        mode: None,
                        map: Some(config.map.clone()),
                        tick_rate: Some(config.tick_rate),
                        max_players: Some(config.max_players),
                        persistent: false,
                        speed: None,
                    },
                    None,
                )
                .expect("room");
        }
        println!(
            "{}",
            serde_json::json!({"addr": server.local_addr.to_string()})
        );
        let _ = std::io::stdout().flush();
        // Stdin closing (the parent is done, or died) is the signal to stop.
        let (stop_tx, mut stop_rx) = mpsc::unbounded_channel::<()>();
        std::thread::spawn(move || {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
            let _ = stop_tx.send(());
        });
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.tick().await;
        loop {
            tokio::select! {
                _ = stop_rx.recv() => break,
                _ = every.tick() => {}
            }
            let mut ticks = std::mem::take(&mut *TICK_US.lock().unwrap_or_else(|e| e.into_inner()));
            ticks.sort_unstable();
            let rooms: Vec<_> = server
                .rooms
                .list()
                .into_iter()
                .filter_map(|r| server.rooms.get(&r.id))
                .collect();
            let stats = Stats {
                t_ms: started.elapsed().as_millis() as u64,
                rss_kib: rss_kib(),
                tasks: tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks(),
                connections: server.connections.open(),
                polled_sessions: server.sessions.len(),
                players: rooms.iter().map(|r| r.info().players).sum(),
                spectators: rooms.iter().map(|r| r.info().spectators).sum(),
                ticks: ticks.len(),
                tick_us_p50: percentile(&ticks, 0.5),
                tick_us_p99: percentile(&ticks, 0.99),
                tick_us_max: ticks.last().copied().unwrap_or(0),
                tick_us_all: ticks.clone(),
                overruns: rooms.iter().map(|r| r.room_metrics.overruns.get()).sum(),
                resyncs: rooms.iter().map(|r| r.room_metrics.resyncs.get()).sum(),
                counters: serde_json::to_value(server.counters.snapshot()).unwrap_or_default(),
            };
            println!(
                "{}",
                serde_json::to_string(&stats).expect("stats serialise")
            );
            let _ = std::io::stdout().flush();
        }
        let stopping = Instant::now();
        server.shutdown().await;
        println!(
            "{}",
            serde_json::json!({"shutdown_ms": stopping.elapsed().as_millis() as u64})
        );
        let _ = std::io::stdout().flush();
    });
}

/// A server child as the parent sees it.
pub struct ChildServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://ADDR`.
    pub url: String,
    child: std::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: std::path::PathBuf,
}

/// How the child ended.
#[derive(Clone, Debug, Serialize)]
pub struct ChildEnd {
    /// Its graceful shutdown took this long.
    pub shutdown_ms: Option<u64>,
    /// It exited with success.
    pub exit_ok: bool,
    /// Panics it printed.
    pub panics: usize,
    /// Its warnings and errors (its stderr), up to a few KiB.
    pub log_tail: String,
}

impl ChildServer {
    /// Starts this executable as a server child; its stderr goes to `stderr`.
    pub async fn spawn(config: &ChildConfig, stderr: std::path::PathBuf) -> ChildServer {
        let exe = std::env::current_exe().expect("own path");
        let log = std::fs::File::create(&stderr).expect("child log file");
        let mut child = std::process::Command::new(exe)
            .arg("--serve-child")
            .arg(serde_json::to_string(config).expect("config"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the server child starts");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, mut lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines.recv().await.expect("the child says where it listens");
        let v: serde_json::Value = serde_json::from_str(&first).expect("JSON");
        let addr: SocketAddr = v["addr"].as_str().expect("addr").parse().expect("address");
        ChildServer {
            addr,
            url: format!("http://{addr}"),
            child,
            lines,
            stderr,
        }
    }

    /// The next stats line (one a second).
    pub async fn stats(&mut self) -> Stats {
        loop {
            let line = self.lines.recv().await.expect("the child is running");
            if let Ok(s) = serde_json::from_str::<Stats>(&line) {
                return s;
            }
        }
    }

    /// The PID, for outside tools.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Shuts the child down gracefully and reports how it ended.
    pub async fn stop(mut self) -> ChildEnd {
        drop(self.child.stdin.take());
        let mut shutdown_ms = None;
        while let Some(line) = self.lines.recv().await {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(ms) = v["shutdown_ms"].as_u64()
            {
                shutdown_ms = Some(ms);
            }
        }
        let exit_ok = tokio::task::spawn_blocking(move || self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
            .is_some_and(|s| s.success());
        let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let panics = log.matches("panicked at").count();
        let tail: String = log
            .chars()
            .rev()
            .take(4000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        ChildEnd {
            shutdown_ms,
            exit_ok,
            panics,
            log_tail: tail,
        }
    }
}
