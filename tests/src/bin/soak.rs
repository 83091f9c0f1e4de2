//! The soak: bots churning over every transport against a server in a
//! child process for a bounded time, then everyone leaves and the server
//! must come back to zero. Not part of `cargo test`; run it with
//!
//! ```sh
//! cargo run --release -p tickwire-tests --bin soak -- --bots 200 --secs 600
//! ```
//!
//! Each bot, in a loop until the end: joins a room (players over WebSocket
//! JSON and bincode, long-poll JSON and bincode, short poll; spectators
//! over SSE and WebSocket) through a proxy of its own, plays for a while
//! (players steer with a bot brain), sometimes has its connection cut and
//! resumes, then leaves or drops (vanishes without a word). It reports
//! desyncs (checksum mismatches), gaps, panics, the server's RSS after the
//! warm-up and at the end, and whether connections, players, spectators,
//! polled sessions and tasks go back to where they started.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::{Format, Role};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tickwire_tests::observe::{ChildConfig, ChildServer, Stats, maybe_serve_child};
use tickwire_tests::{CutProxy, Probe};
use tui_client::bot::BotKind;
use tui_client::client::{ClientConfig, ClientEvent, TransportKind};

/// The ways a bot connects, in the order bots cycle through them.
const KINDS: [(&str, TransportKind, Format, Role); 7] = [
    ("ws-json", TransportKind::Ws, Format::Json, Role::Player),
    (
        "ws-bincode",
        TransportKind::Ws,
        Format::Bincode,
        Role::Player,
    ),
    (
        "longpoll-json",
        TransportKind::LongPoll,
        Format::Json,
        Role::Player,
    ),
    (
        "longpoll-bincode",
        TransportKind::LongPoll,
        Format::Bincode,
        Role::Player,
    ),
    (
        "poll",
        TransportKind::Poll {
            interval: Duration::from_millis(250),
        },
        Format::Json,
        Role::Player,
    ),
    (
        "sse-spectator",
        TransportKind::Sse,
        Format::Json,
        Role::Spectator,
    ),
    (
        "ws-spectator",
        TransportKind::Ws,
        Format::Bincode,
        Role::Spectator,
    ),
];

/// How long a bot waits for anything before it counts a stall.
const STALL: Duration = Duration::from_secs(15);

#[derive(Debug)]
struct Args {
    bots: usize,
    secs: u64,
    tick_rate: u32,
    players_per_room: usize,
    seed: u64,
    report: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        bots: 200,
        secs: 600,
        tick_rate: 20,
        players_per_room: 12,
        seed: 1,
        report: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--bots" => a.bots = value().parse().expect("--bots N"),
            "--secs" => a.secs = value().parse().expect("--secs N"),
            "--tick-rate" => a.tick_rate = value().parse().expect("--tick-rate N"),
            "--players-per-room" => a.players_per_room = value().parse().expect("a number"),
            "--seed" => a.seed = value().parse().expect("--seed N"),
            "--report" => a.report = Some(value()),
            "-h" | "--help" => {
                println!(
                    "soak [--bots 200] [--secs 600] [--tick-rate 20] [--players-per-room 12] \
                     [--seed 1] [--report soak.json]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// What every bot added up.
#[derive(Debug, Default, Serialize)]
struct Tally {
    sessions: u64,
    welcomes: u64,
    resumed: u64,
    cuts: u64,
    leaves: u64,
    drops: u64,
    frames: u64,
    ticks: u64,
    desyncs: u64,
    gaps: u64,
    lost: u64,
    stalls: u64,
    refusals: BTreeMap<String, u64>,
    by_kind: BTreeMap<String, u64>,
}

async fn bot(
    i: usize,
    args: Arc<Args>,
    rooms: Arc<Vec<String>>,
    upstream: std::net::SocketAddr,
    until: Instant,
    tally: Arc<Mutex<Tally>>,
) {
    let (kind, transport, format, role) = KINDS[i % KINDS.len()];
    let room = rooms[(i / KINDS.len()) % rooms.len()].clone();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed.wrapping_mul(1000) + i as u64);
    let mut round = 0u64;
    // Start spread over the first seconds, not all at once.
    tokio::time::sleep(Duration::from_millis(rng.random_range(0..5000))).await;
    while Instant::now() < until {
        round += 1;
        let proxy = CutProxy::start(upstream).await;
        let mut config = ClientConfig::new(&proxy.url, &room, format!("bot{i}"));
        config.transport = transport;
        config.format = format;
        config.role = role;
        let mut p = match role {
            Role::Player => Probe::bot(
                config,
                BotKind::ALL[i % 3],
                args.seed + i as u64 * 7919 + round,
            ),
            Role::Spectator => Probe::spawn(config),
        };
        let mut t = Tally {
            sessions: 1,
            ..Tally::default()
        };
        let play = Duration::from_millis(rng.random_range(5_000..30_000));
        let cut_at = rng
            .random_bool(0.35)
            .then(|| Duration::from_millis(rng.random_range(1_000..play.as_millis() as u64)));
        let leave = rng.random_bool(0.5);
        let started = Instant::now();
        let mut cut_done = false;
        // Play, with at most one cut: the client reconnects and resumes.
        loop {
            let now = Instant::now();
            let end = (started + play).min(until.max(now));
            if now >= end {
                break;
            }
            if let Some(at) = cut_at
                && !cut_done
                && now >= started + at
                && !p.welcomes.is_empty()
            {
                cut_done = true;
                t.cuts += 1;
                proxy.cut();
            }
            let wait = (end - now).min(STALL);
            match tokio::time::timeout(wait, p.step()).await {
                Ok(ClientEvent::Closed { reason }) => {
                    *t.refusals
                        .entry(format!("{reason}").chars().take(60).collect())
                        .or_default() += 1;
                    break;
                }
                Ok(_) => {}
                Err(_) if wait == STALL => {
                    t.stalls += 1;
                    break;
                }
                Err(_) => {}
            }
        }
        t.resumed += p.welcomes.iter().filter(|w| w.resumed).count() as u64;
        t.welcomes += p.welcomes.len() as u64;
        let stats = p.view.as_ref().map(|v| v.stats).unwrap_or_default();
        t.frames += stats.frames;
        t.ticks += p.ticks_seen() as u64;
        t.desyncs += stats.desyncs;
        t.gaps += stats.gaps;
        t.lost += p.lost.len() as u64;
        if p.closed.is_none() {
            if leave {
                t.leaves += 1;
                p.handle.leave();
                let _ = tokio::time::timeout(STALL, p.closed()).await;
            } else {
                // Vanish: the network goes away first, then the client.
                t.drops += 1;
                drop(proxy);
                drop(p);
            }
        }
        *t.by_kind.entry(kind.to_string()).or_default() += 1;
        merge(&mut tally.lock().unwrap(), t);
    }
}

fn merge(into: &mut Tally, t: Tally) {
    into.sessions += t.sessions;
    into.welcomes += t.welcomes;
    into.resumed += t.resumed;
    into.cuts += t.cuts;
    into.leaves += t.leaves;
    into.drops += t.drops;
    into.frames += t.frames;
    into.ticks += t.ticks;
    into.desyncs += t.desyncs;
    into.gaps += t.gaps;
    into.lost += t.lost;
    into.stalls += t.stalls;
    for (k, v) in t.refusals {
        *into.refusals.entry(k).or_default() += v;
    }
    for (k, v) in t.by_kind {
        *into.by_kind.entry(k).or_default() += v;
    }
}

#[derive(Debug, Serialize)]
struct Report {
    bots: usize,
    secs: u64,
    tick_rate: u32,
    rooms: usize,
    tally: Tally,
    bot_panics: usize,
    server_panics: usize,
    rss_start_kib: u64,
    rss_after_warmup_kib: u64,
    rss_end_kib: u64,
    rss_max_kib: u64,
    rss_growth_after_warmup_pct: f64,
    peak_connections: usize,
    peak_players: u32,
    peak_spectators: u32,
    tick_us_p99_max: u64,
    tick_us_max: u64,
    overruns: u64,
    tasks_start: usize,
    tasks_end: usize,
    drained_in_secs: f64,
    after_drain: Stats,
    shutdown_ms: Option<u64>,
    ok: bool,
}

fn main() {
    maybe_serve_child();
    let args = Arc::new(args());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ok = rt.block_on(run(args));
    std::process::exit(if ok { 0 } else { 1 });
}

async fn run(args: Arc<Args>) -> bool {
    let players = args.bots * 5 / 7 + 1;
    let rooms_n = players.div_ceil(args.players_per_room).max(1);
    let config = ChildConfig {
        tick_rate: args.tick_rate,
        map: "arena".into(),
        // Room for the players that dropped and still wait out their grace.
        max_players: 64,
        resume_grace_secs: 10.0,
        poll_idle_secs: 15.0,
        extra_rooms: rooms_n as u32 - 1,
        send_buffer: None,
    };
    let log = std::env::temp_dir().join(format!("tickwire-soak-{}.log", std::process::id()));
    let mut server = ChildServer::spawn(&config, log.clone()).await;
    let mut rooms = vec!["lobby".to_string()];
    rooms.extend((1..rooms_n).map(|i| format!("room-{i}")));
    let rooms = Arc::new(rooms);
    let first = server.stats().await;
    eprintln!(
        "soak: {} bots, {} s, {} rooms at {} Hz, server pid {} on {} (log {})",
        args.bots,
        args.secs,
        rooms.len(),
        args.tick_rate,
        server.pid(),
        server.url,
        log.display()
    );

    let started = Instant::now();
    let until = started + Duration::from_secs(args.secs);
    let warmup = Duration::from_secs((args.secs / 5).max(20));
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let bots: Vec<_> = (0..args.bots)
        .map(|i| {
            tokio::spawn(bot(
                i,
                args.clone(),
                rooms.clone(),
                server.addr,
                until,
                tally.clone(),
            ))
        })
        .collect();

    let mut rss_after_warmup = None;
    let (mut rss_max, mut peak_conn, mut peak_players, mut peak_spect) = (0, 0, 0, 0);
    let (mut p99_max, mut tick_max) = (0, 0);
    let mut last = first.clone();
    while Instant::now() < until {
        let s = server.stats().await;
        if rss_after_warmup.is_none() && started.elapsed() >= warmup {
            rss_after_warmup = Some(s.rss_kib);
        }
        rss_max = rss_max.max(s.rss_kib);
        peak_conn = peak_conn.max(s.connections);
        peak_players = peak_players.max(s.players);
        peak_spect = peak_spect.max(s.spectators);
        p99_max = p99_max.max(s.tick_us_p99);
        tick_max = tick_max.max(s.tick_us_max);
        if s.t_ms / 1000 % 30 == 0 {
            eprintln!(
                "t={:>4}s rss={} KiB conns={} players={} spectators={} polled={} tasks={} tick p50/p99/max={}/{}/{} µs",
                started.elapsed().as_secs(),
                s.rss_kib,
                s.connections,
                s.players,
                s.spectators,
                s.polled_sessions,
                s.tasks,
                s.tick_us_p50,
                s.tick_us_p99,
                s.tick_us_max
            );
        }
        last = s;
    }
    let rss_end = last.rss_kib;
    let mut bot_panics = 0;
    for b in bots {
        if b.await.is_err() {
            bot_panics += 1;
        }
    }
    // Everyone left or vanished: wait for the grace and idle timeouts to
    // clear the rest, then everything must be back to zero.
    let drain_started = Instant::now();
    let mut after = server.stats().await;
    while (after.connections > 0
        || after.players > 0
        || after.spectators > 0
        || after.polled_sessions > 0)
        && drain_started.elapsed() < Duration::from_secs(90)
    {
        after = server.stats().await;
    }
    let drained_in = drain_started.elapsed().as_secs_f64();
    let end = server.stop().await;
    let warm = rss_after_warmup.unwrap_or(first.rss_kib).max(1);
    let growth = (rss_end as f64 - warm as f64) / warm as f64 * 100.0;
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    let ok = tally.desyncs == 0
        && bot_panics == 0
        && end.panics == 0
        && growth < 10.0
        && after.connections == 0
        && after.players == 0
        && after.spectators == 0
        && after.polled_sessions == 0
        && after.tasks <= first.tasks;
    let report = Report {
        bots: args.bots,
        secs: args.secs,
        tick_rate: args.tick_rate,
        rooms: rooms.len(),
        tally,
        bot_panics,
        server_panics: end.panics,
        rss_start_kib: first.rss_kib,
        rss_after_warmup_kib: warm,
        rss_end_kib: rss_end,
        rss_max_kib: rss_max,
        rss_growth_after_warmup_pct: (growth * 10.0).round() / 10.0,
        peak_connections: peak_conn,
        peak_players,
        peak_spectators: peak_spect,
        tick_us_p99_max: p99_max,
        tick_us_max: tick_max,
        overruns: after.overruns,
        tasks_start: first.tasks,
        tasks_end: after.tasks,
        drained_in_secs: (drained_in * 10.0).round() / 10.0,
        after_drain: after,
        shutdown_ms: end.shutdown_ms,
        ok,
    };
    let json = serde_json::to_string_pretty(&report).expect("report");
    println!("{json}");
    if let Some(path) = &args.report {
        std::fs::write(path, &json).expect("write the report");
    }
    if end.panics > 0 || !end.exit_ok {
        eprintln!("server log tail:\n{}", end.log_tail);
    }
    eprintln!("soak {}", if ok { "OK" } else { "FAILED" });
    ok
}
