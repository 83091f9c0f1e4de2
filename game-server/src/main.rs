//! `game-server`: runs a Tickwire server until Ctrl-C or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args as ClapArgs, Parser};
use game_server::limits::Limits;
use game_server::{ServerConfig, start};
use protocol::Mode;

/// Tickwire game server: rooms of snakes and light cycles for terminals.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:7878")]
    bind: SocketAddr,
    /// Ticks per second of the default room (1 to 60).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=60))]
    tick_rate: u32,
    /// Snake speed of the default room in cells per second, apart from the
    /// tick rate (1 to 30; boost doubles it) [default: 10 for snake, 12 for tron]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=30))]
    speed: Option<u32>,
    /// Built-in map of the default room: small, arena, maze or big.
    #[arg(long, default_value = "arena")]
    map: String,
    /// Game mode of the default room: snake or tron.
    #[arg(long, default_value = "snake")]
    mode: Mode,
    /// Player cap of the default room.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=64))]
    max_players: u32,
    /// Seed of the default room (random if absent): same seed and inputs, same game.
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds a dropped player's snake waits for its owner to resume.
    #[arg(long, default_value_t = 30)]
    resume_grace_secs: u64,
    /// Another room, made at start and persistent (never closed for being
    /// idle): the fields of a POST /api/rooms body as key=value pairs, e.g.
    /// `--room id=duel,mode=tron,map=maze,tick_rate=30`. Repeatable.
    #[arg(long = "room", value_name = "SPEC", value_parser = game_server::rooms::spec::parse)]
    rooms: Vec<protocol::api::CreateRoom>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Past one machine (README, "Past one machine"): nodes that meet on NATS.
#[derive(Debug, ClapArgs)]
#[command(next_help_heading = "Cluster")]
struct ClusterArgs {
    /// Join a cluster on this NATS server, e.g. nats://127.0.0.1:4222 (a user
    /// and password or a token may be in the URL). Without it: a single node.
    #[arg(long, env = "TICKWIRE_NATS")]
    nats: Option<String>,
    /// A NATS credentials file (JWT and NKey seed) for --nats.
    #[arg(long, env = "TICKWIRE_NATS_CREDS", requires = "nats")]
    nats_creds: Option<std::path::PathBuf>,
    /// Serve spectators of the cluster's rooms and own none (needs --nats).
    #[arg(long, requires = "nats")]
    edge: bool,
    /// The URL players are sent to (307) for this node's rooms [default: http://<--bind>].
    #[arg(long, requires = "nats")]
    public_url: Option<String>,
    /// This node's id in the cluster (letters, digits, '-', '_') [default: random].
    #[arg(long, requires = "nats")]
    node_id: Option<String>,
    /// Seconds an origin stays in the directory without renewing its entry.
    #[arg(long, default_value = "10", value_parser = secs, requires = "nats")]
    directory_ttl_secs: Duration,
}

impl ClusterArgs {
    fn config(&self) -> Option<game_server::cluster::ClusterConfig> {
        Some(game_server::cluster::ClusterConfig {
            nats: self.nats.clone()?,
            creds: self.nats_creds.clone(),
            public_url: self.public_url.clone(),
            node_id: self.node_id.clone(),
            edge: self.edge,
            ttl: self.directory_ttl_secs,
        })
    }
}

/// Every limit (SECURITY.md says what a client sees when it hits one). Each
/// flag also reads an environment variable, e.g. `TICKWIRE_MAX_CONNECTIONS`.
#[derive(Debug, ClapArgs)]
#[command(next_help_heading = "Limits")]
struct LimitArgs {
    /// Open connections at once (503 beyond); lowered to what the open-file limit allows.
    #[arg(long, env = "TICKWIRE_MAX_CONNECTIONS", default_value_t = game_server::limits::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Open connections per IP address (429 beyond); 0 for no cap.
    #[arg(long, env = "TICKWIRE_MAX_CONNECTIONS_PER_IP", default_value_t = game_server::limits::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    max_connections_per_ip: usize,
    /// Apply the per-IP cap to loopback (127.0.0.1, ::1) too; off by default,
    /// since behind a local reverse proxy every client is loopback.
    #[arg(long, env = "TICKWIRE_PER_IP_LOOPBACK")]
    per_ip_loopback: bool,
    /// Largest WebSocket message a client may send, in bytes (close 1009 beyond).
    #[arg(long, env = "TICKWIRE_WS_MAX_MESSAGE_BYTES", default_value_t = 4096)]
    ws_max_message_bytes: usize,
    /// Largest HTTP request body, in bytes (413 beyond).
    #[arg(long, env = "TICKWIRE_MAX_BODY_BYTES", default_value_t = 16384)]
    max_body_bytes: u64,
    /// Seconds a request's head, and then its body, may take to arrive (slowloris).
    #[arg(long, env = "TICKWIRE_REQUEST_TIMEOUT_SECS", default_value = "15", value_parser = secs)]
    request_timeout_secs: Duration,
    /// Seconds a write may wait for a peer that does not read before the connection closes.
    #[arg(long, env = "TICKWIRE_WRITE_STALL_TIMEOUT_SECS", default_value = "30", value_parser = secs)]
    write_stall_timeout_secs: Duration,
    /// Client messages per second per session, sustained (0: no limit).
    #[arg(long, env = "TICKWIRE_INPUT_RATE", default_value_t = 120.0)]
    input_rate: f64,
    /// Client messages per session in a burst; beyond, dropped; a flood closes (1008/429).
    #[arg(long, env = "TICKWIRE_INPUT_BURST", default_value_t = 240.0)]
    input_burst: f64,
    /// Chat lines per second per session, sustained (0: no limit).
    #[arg(long, env = "TICKWIRE_CHAT_RATE", default_value_t = 1.0)]
    chat_rate: f64,
    /// Chat lines per session in a burst.
    #[arg(long, env = "TICKWIRE_CHAT_BURST", default_value_t = 5.0)]
    chat_burst: f64,
    /// Seconds a new WebSocket may take to send its hello.
    #[arg(long, env = "TICKWIRE_WS_HELLO_TIMEOUT_SECS", default_value = "10", value_parser = secs)]
    ws_hello_timeout_secs: Duration,
    /// Seconds between the server's WebSocket pings.
    #[arg(long, env = "TICKWIRE_WS_PING_SECS", default_value = "5", value_parser = secs)]
    ws_ping_secs: Duration,
    /// Seconds a WebSocket may send nothing (pongs included) before it is closed.
    #[arg(long, env = "TICKWIRE_WS_IDLE_TIMEOUT_SECS", default_value = "15", value_parser = secs)]
    ws_idle_timeout_secs: Duration,
    /// Seconds a long-poll session may go without a poll before it is detached.
    #[arg(long, env = "TICKWIRE_POLL_IDLE_SECS", default_value = "15", value_parser = secs)]
    poll_idle_secs: Duration,
    /// Kernel send buffer per connection, in bytes (0: the OS default, which grows to megabytes).
    #[arg(long, env = "TICKWIRE_SEND_BUFFER_BYTES", default_value_t = game_server::DEFAULT_SEND_BUFFER)]
    send_buffer_bytes: u32,
    /// Seconds a graceful shutdown (SIGTERM, Ctrl-C) may take before connections are dropped.
    #[arg(long, env = "TICKWIRE_SHUTDOWN_GRACE_SECS", default_value = "5", value_parser = secs)]
    shutdown_grace_secs: Duration,
    /// Rooms open at once, the default room included (POST /api/rooms gets 503 beyond).
    #[arg(long, env = "TICKWIRE_MAX_ROOMS", default_value_t = game_server::limits::DEFAULT_MAX_ROOMS)]
    max_rooms: usize,
    /// Rooms one address may create per minute, sustained (429 beyond); 0: no limit.
    #[arg(long, env = "TICKWIRE_ROOM_CREATE_RATE", default_value_t = game_server::limits::DEFAULT_ROOM_CREATE_RATE)]
    room_create_rate: f64,
    /// Rooms one address may create at once before the rate applies.
    #[arg(long, env = "TICKWIRE_ROOM_CREATE_BURST", default_value_t = game_server::limits::DEFAULT_ROOM_CREATE_BURST)]
    room_create_burst: f64,
    /// Seconds a room with nobody in it stays open before it closes (not the default room or --room rooms).
    #[arg(long, env = "TICKWIRE_ROOM_IDLE_SECS", default_value = "300", value_parser = secs)]
    room_idle_secs: Duration,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            per_ip_loopback: self.per_ip_loopback,
            ws_max_message: self.ws_max_message_bytes,
            max_body: self.max_body_bytes,
            request_timeout: self.request_timeout_secs,
            write_stall_timeout: self.write_stall_timeout_secs,
            input_rate: self.input_rate,
            input_burst: self.input_burst,
            chat_rate: self.chat_rate,
            chat_burst: self.chat_burst,
            ws_hello_timeout: self.ws_hello_timeout_secs,
            ws_ping_interval: self.ws_ping_secs,
            ws_idle_timeout: self.ws_idle_timeout_secs,
            shutdown_grace: self.shutdown_grace_secs,
            max_rooms: self.max_rooms,
            room_create_rate: self.room_create_rate,
            room_create_burst: self.room_create_burst,
            room_idle: self.room_idle_secs,
        }
    }
}

/// A positive number of seconds, fractions allowed.
fn secs(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e9 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("expected a number of seconds above 0, got {s:?}")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    game_server::logging::init();
    let (max_rooms, idle) = (
        args.limits.max_rooms,
        args.limits.room_idle_secs.as_secs_f64(),
    );
    let server = start(ServerConfig {
        bind: args.bind,
        tick_rate: args.tick_rate,
        speed: args.speed,
        map: args.map,
        mode: args.mode,
        max_players: args.max_players,
        seed: args.seed,
        resume_grace: Duration::from_secs(args.resume_grace_secs),
        poll_idle_timeout: args.limits.poll_idle_secs,
        send_buffer: (args.limits.send_buffer_bytes > 0).then_some(args.limits.send_buffer_bytes),
        limits: args.limits.limits(),
        rooms: args.rooms,
        cluster: args.cluster.config(),
        ..ServerConfig::default()
    })
    .await
    .context("starting the server")?;

    let port = server.local_addr.port();
    println!("Tickwire server listening on {}", server.local_addr);
    if server.local_addr.ip().is_loopback() {
        println!(
            "Bound to loopback: only this machine can join (use --bind 0.0.0.0:{port} for a LAN)."
        );
    } else {
        println!("Share one of these with players on your network:");
    }
    let mut first = None;
    for ip in share_addresses(server.local_addr.ip()) {
        let host = match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        println!("  http://{host}:{port}");
        first.get_or_insert(host);
    }
    let max = server.connections.max();
    match server.open_files {
        Some((soft, _)) => println!(
            "Accepting up to {max} connections at once (open-file limit {soft}; see --max-connections)."
        ),
        None => println!("Accepting up to {max} connections at once (see --max-connections)."),
    }
    if let Some(c) = &server.cluster {
        let role = if c.edge {
            "an edge (owns no rooms)"
        } else {
            "an origin"
        };
        println!("In the cluster as node {} at {}: {role}.", c.node, c.url);
    }
    let rooms: Vec<String> = server.rooms.list().into_iter().map(|r| r.id).collect();
    let rooms = if rooms.is_empty() {
        vec!["none of its own".to_string()]
    } else {
        rooms
    };
    println!(
        "Rooms: {}. Up to {max_rooms} rooms open (--max-rooms); one created over HTTP \
         closes after {idle} s with nobody in it (--room-idle-secs).",
        rooms.join(", "),
    );
    // The first address to share, so the lines can be pasted as they are.
    let host = first.unwrap_or_else(|| "HOST".into());
    println!("Join:   cargo run --release -- --server http://{host}:{port}");
    println!("Watch:  curl -N http://{host}:{port}/rooms/lobby/watch");
    println!("Rooms:  curl http://{host}:{port}/api/rooms");
    println!("Ctrl-C stops the server.");

    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// The addresses others can reach: every non-loopback IPv4 address when
/// bound to the unspecified address, else the bound address itself.
fn share_addresses(bound: IpAddr) -> Vec<IpAddr> {
    if !bound.is_unspecified() {
        return vec![bound];
    }
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
        .collect();
    ips.sort();
    ips.dedup();
    if ips.is_empty() {
        ips.push(IpAddr::from([127, 0, 0, 1]));
    }
    ips
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
