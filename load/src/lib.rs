//! `tickwire-load`: opens thousands of lightweight connections of every
//! transport against a Tickwire server, without the TUI, and reports what
//! they saw as one JSON document and a table.
//!
//! A run has two phases: the ramp opens every connection at `--ramp` per
//! second (frames are handled but not counted), then the measurement window
//! of `--duration` counts frames, gaps, frame age and input latency, and
//! samples the server's CPU and memory (`--server-pid`) and its tick
//! duration histogram (`/metrics`) at both ends.

pub mod conns;
pub mod http;
pub mod procstat;
pub mod report;
pub mod scan;
pub mod scrape;
pub mod stats;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use protocol::Format;
use protocol::api::RoomInfo;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::conns::{Ctx, Job, SseMode, WsMode};
use crate::http::Conn;
use crate::report::{KindReport, ProcReport, Report};
use crate::stats::KindStats;

/// What to run.
#[derive(Clone, Debug, Parser)]
#[command(name = "tickwire-load", version, about)]
pub struct Config {
    /// Server to load (loopback only: this tool is for your own server).
    #[arg(long, default_value = "http://127.0.0.1:7878")]
    pub server: String,
    /// Length of the measurement window, after the ramp (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Connections opened per second during the ramp.
    #[arg(long, default_value_t = 1000.0)]
    pub ramp: f64,
    /// WebSocket players (steer every --input-every).
    #[arg(long, default_value_t = 0)]
    pub ws: usize,
    /// WebSocket spectators (decode every frame).
    #[arg(long, default_value_t = 0)]
    pub ws_spectators: usize,
    /// SSE spectators (read and scan every event).
    #[arg(long, default_value_t = 0)]
    pub sse: usize,
    /// Long-poll players.
    #[arg(long, default_value_t = 0)]
    pub longpoll: usize,
    /// Short-poll players (one poll per --poll-every).
    #[arg(long, default_value_t = 0)]
    pub poll: usize,
    /// Idle WebSocket spectators in --idle-room (read, decode nothing).
    #[arg(long, default_value_t = 0)]
    pub idle_ws: usize,
    /// Idle SSE spectators in --idle-room (read, scan nothing).
    #[arg(long, default_value_t = 0)]
    pub idle_sse: usize,
    /// SSE spectators that send the request and never read.
    #[arg(long, default_value_t = 0)]
    pub stalled_sse: usize,
    /// WebSocket spectators that say hello and never read.
    #[arg(long, default_value_t = 0)]
    pub stalled_ws: usize,
    /// Wire format of WebSocket and polled connections.
    #[arg(long, default_value = "json", value_parser = parse_format)]
    pub format: Format,
    /// Room for players and spectators; with --rooms N > 1, rooms
    /// NAME-0 .. NAME-(N-1), created when missing.
    #[arg(long, default_value = "lobby")]
    pub room: String,
    /// Number of rooms to spread players and spectators over.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Tick rate of rooms this tool creates.
    #[arg(long, default_value_t = 20)]
    pub tick_rate: u32,
    /// Player cap of rooms this tool creates.
    #[arg(long, default_value_t = 16)]
    pub max_players: u32,
    /// Room of the idle connections (created at --idle-tick-rate).
    #[arg(long, default_value = "idle")]
    pub idle_room: String,
    /// Tick rate of the idle room.
    #[arg(long, default_value_t = 1)]
    pub idle_tick_rate: u32,
    /// Interval between a player's inputs.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub input_every: Duration,
    /// Interval between a short-poll player's polls.
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub poll_every: Duration,
    /// Server process id, for CPU% and RSS from /proc (same machine only).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Write the JSON report here (it is also printed with --json-stdout).
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Print the JSON report on stdout instead of the table.
    #[arg(long)]
    pub json_stdout: bool,
    /// A label for the report (e.g. the scenario's name).
    #[arg(long, default_value = "")]
    pub label: String,
}

/// Parses `10s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in {s:?} (use ms, s or m)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn parse_format(s: &str) -> Result<Format, String> {
    match s {
        "json" => Ok(Format::Json),
        "bincode" => Ok(Format::Bincode),
        _ => Err(format!("unknown format {s:?} (json or bincode)")),
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("--server must be http://127.0.0.1:PORT (or another loopback address): {0}")]
    Server(String),
    #[error("cannot reach the server: {0}")]
    Unreachable(#[from] http::HttpError),
    #[error("cannot create room {room}: HTTP {status}: {body}")]
    Room {
        room: String,
        status: u16,
        body: String,
    },
}

/// The loopback address of `--server`.
fn server_addr(url: &str) -> Result<SocketAddr, RunError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| RunError::Server(url.into()))?;
    let hostport = rest.split('/').next().unwrap_or_default();
    let hostport = hostport.replace("localhost", "127.0.0.1");
    let addr: SocketAddr = hostport.parse().map_err(|_| RunError::Server(url.into()))?;
    if !addr.ip().is_loopback() {
        return Err(RunError::Server(url.into()));
    }
    Ok(addr)
}

/// Raises this process's open-file soft limit to its hard limit; returns
/// the limit now in force.
pub fn raise_fd_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(soft, _)| soft),
    }
}

/// Kinds of connection, in ramp order.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Ws,
    WsSpectator,
    Sse,
    LongPoll,
    Poll,
    IdleWs,
    IdleSse,
    StalledSse,
    StalledWs,
}

impl Kind {
    fn name(self, format: Format) -> String {
        let f = match format {
            Format::Json => "json",
            Format::Bincode => "bincode",
        };
        match self {
            Kind::Ws => format!("ws-player ({f})"),
            Kind::WsSpectator => format!("ws-spectator ({f})"),
            Kind::Sse => "sse-spectator".into(),
            Kind::LongPoll => format!("longpoll-player ({f})"),
            Kind::Poll => format!("poll-player ({f})"),
            Kind::IdleWs => format!("idle-ws ({f})"),
            Kind::IdleSse => "idle-sse".into(),
            Kind::StalledSse => "stalled-sse".into(),
            Kind::StalledWs => format!("stalled-ws ({f})"),
        }
    }
    fn idle(self) -> bool {
        matches!(self, Kind::IdleWs | Kind::IdleSse)
    }
}

async fn create_room(
    conn: &mut Conn,
    id: &str,
    tick_rate: u32,
    max_players: u32,
) -> Result<(), RunError> {
    let body = serde_json::json!({"id": id, "tick_rate": tick_rate, "max_players": max_players});
    let (status, resp) = conn
        .request(
            "POST",
            "/api/rooms",
            &[("content-type", "application/json")],
            Bytes::from(body.to_string()),
        )
        .await?;
    // 409: it exists already (the lobby, or an earlier run): use it as is.
    if status.is_success() || status.as_u16() == 409 {
        Ok(())
    } else {
        Err(RunError::Room {
            room: id.into(),
            status: status.as_u16(),
            body: String::from_utf8_lossy(&resp).into_owned(),
        })
    }
}

async fn scrape(conn: &mut Conn) -> Option<scrape::Scrape> {
    let (status, body) = conn
        .request("GET", "/metrics", &[], Bytes::new())
        .await
        .ok()?;
    status
        .is_success()
        .then(|| scrape::parse(&String::from_utf8_lossy(&body)))
}

/// Runs one load test and returns its report.
pub async fn run(cfg: Config) -> Result<Report, RunError> {
    let addr = server_addr(&cfg.server)?;
    let fd_limit = raise_fd_limit();
    let mut control = Conn::new(addr);
    let rooms: Vec<String> = if cfg.rooms <= 1 {
        vec![cfg.room.clone()]
    } else {
        (0..cfg.rooms)
            .map(|i| format!("{}-{i}", cfg.room))
            .collect()
    };
    for r in &rooms {
        create_room(&mut control, r, cfg.tick_rate, cfg.max_players).await?;
    }
    let kinds = [
        (Kind::Ws, cfg.ws),
        (Kind::WsSpectator, cfg.ws_spectators),
        (Kind::Sse, cfg.sse),
        (Kind::LongPoll, cfg.longpoll),
        (Kind::Poll, cfg.poll),
        (Kind::IdleWs, cfg.idle_ws),
        (Kind::IdleSse, cfg.idle_sse),
        (Kind::StalledSse, cfg.stalled_sse),
        (Kind::StalledWs, cfg.stalled_ws),
    ];
    if cfg.idle_ws + cfg.idle_sse > 0 {
        create_room(
            &mut control,
            &cfg.idle_room,
            cfg.idle_tick_rate,
            cfg.max_players,
        )
        .await?;
    }
    let ctx = Arc::new(Ctx {
        addr,
        window: stats::Window::default(),
        input_every: cfg.input_every,
        poll_every: cfg.poll_every,
        format: cfg.format,
    });
    let (stop_tx, stop) = watch::channel(false);
    let server_pid = cfg.server_pid.map(|p| p.to_string());
    let rss_before = server_pid.as_deref().and_then(procstat::sample);

    // Ramp.
    let mut tasks = JoinSet::new();
    let mut all: Vec<(Kind, usize, Arc<KindStats>)> = Vec::new();
    let total: usize = kinds.iter().map(|(_, n)| n).sum();
    let ramp_started = std::time::Instant::now();
    let per_step = (cfg.ramp.max(1.0) / 100.0).max(f64::MIN_POSITIVE);
    let mut step = tokio::time::interval(Duration::from_millis(10));
    let mut budget = 0.0;
    let mut spawned = 0usize;
    let mut player_seq = 0usize;
    for (kind, n) in kinds {
        let s = Arc::new(KindStats::default());
        all.push((kind, n, s.clone()));
        for i in 0..n {
            while budget < 1.0 {
                step.tick().await;
                budget += per_step;
            }
            budget -= 1.0;
            let room = if kind.idle() {
                cfg.idle_room.clone()
            } else {
                player_seq += 1;
                rooms[(player_seq - 1) % rooms.len()].clone()
            };
            let job = Job {
                ctx: ctx.clone(),
                stats: s.clone(),
                conn: spawned + i,
                room,
                stop: stop.clone(),
            };
            tasks.spawn(async move {
                match kind {
                    Kind::Ws => conns::ws(job, WsMode::Player).await,
                    Kind::WsSpectator => conns::ws(job, WsMode::Spectator).await,
                    Kind::IdleWs => conns::ws(job, WsMode::Idle).await,
                    Kind::StalledWs => conns::ws(job, WsMode::Stalled).await,
                    Kind::Sse => conns::sse(job, SseMode::Spectator).await,
                    Kind::IdleSse => conns::sse(job, SseMode::Idle).await,
                    Kind::StalledSse => conns::sse(job, SseMode::Stalled).await,
                    Kind::LongPoll => conns::poll(job, true).await,
                    Kind::Poll => conns::poll(job, false).await,
                }
            });
        }
        spawned += n;
    }
    // Wait until every connection opened or failed (bounded).
    let settle = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done: u64 = all
            .iter()
            .map(|(_, _, s)| s.opened.load(Ordering::Relaxed) + s.failed.load(Ordering::Relaxed))
            .sum();
        if done as usize >= total || tokio::time::Instant::now() >= settle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ramp_s = ramp_started.elapsed().as_secs_f64();
    // Let the last joiners get their welcome and first keyframe.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Measurement window.
    for (_, _, s) in &all {
        s.reset_window();
    }
    let scrape_a = scrape(&mut control).await;
    let server_a = server_pid.as_deref().and_then(procstat::sample);
    let self_a = procstat::sample("self");
    ctx.window.open.store(true, Ordering::Relaxed);
    let started = std::time::Instant::now();
    let mut rss_max = server_a.map_or(0, |s| s.rss_kib);
    let mut sampler = tokio::time::interval(Duration::from_millis(250));
    while started.elapsed() < cfg.duration {
        sampler.tick().await;
        if let Some(s) = server_pid.as_deref().and_then(procstat::sample) {
            rss_max = rss_max.max(s.rss_kib);
        }
    }
    ctx.window.open.store(false, Ordering::Relaxed);
    let window_s = started.elapsed().as_secs_f64();
    let server_b = server_pid.as_deref().and_then(procstat::sample);
    let self_b = procstat::sample("self");
    let scrape_b = scrape(&mut control).await;

    // Stop every connection (bounded).
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();

    let rooms_info: Vec<RoomInfo> = match control
        .request("GET", "/api/rooms", &[], Bytes::new())
        .await
    {
        Ok((s, body)) if s.is_success() => serde_json::from_slice(&body).unwrap_or_default(),
        _ => Vec::new(),
    };
    let kinds = all
        .iter()
        .filter(|(_, n, _)| *n > 0)
        .map(|(k, n, s)| KindReport::from_stats(k.name(cfg.format), *n, s, window_s))
        .collect();
    let proc = |a: Option<procstat::Sample>, b: Option<procstat::Sample>, before, max| {
        a.zip(b).map(|(a, b)| ProcReport::new(&a, &b, before, max))
    };
    Ok(Report {
        label: cfg.label.clone(),
        server: cfg.server.clone(),
        window_s,
        ramp_s,
        connections: total,
        fd_limit,
        rooms: rooms_info
            .into_iter()
            .filter(|r| rooms.contains(&r.id) || r.id == cfg.idle_room)
            .map(Into::into)
            .collect(),
        kinds,
        server_process: proc(
            server_a,
            server_b,
            rss_before.map(|s| s.rss_kib),
            Some(rss_max),
        ),
        load_process: proc(self_a, self_b, None, None),
        server_metrics: scrape_a
            .zip(scrape_b)
            .map(|(a, b)| scrape::ServerWindow::between(&a, &b)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_servers_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5h").is_err());
        assert!(server_addr("http://127.0.0.1:7878").is_ok());
        assert!(server_addr("http://localhost:7878/").is_ok());
        assert!(server_addr("http://10.0.0.1:7878").is_err());
        assert!(server_addr("ws://127.0.0.1:1").is_err());
    }
}
