//! The Tickwire game server as a library: the pure simulation, rooms with
//! their tick loops, sessions, transports and the HTTP API. The `game-server`
//! binary and the client's embedded server both start it through [`start`].

pub mod accept;
pub mod clock;
pub mod cluster;
pub mod conn;
pub mod fanout;
pub mod http;
pub mod limits;
pub mod logging;
pub mod longpoll;
pub mod metrics;
pub mod outbox;
pub mod room;
pub mod rooms;
pub mod routes;
pub mod session;
pub mod sim;
mod spectators;
pub mod sse;
mod streaming;
pub mod upgrade;
pub mod watch;
pub mod web;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use protocol::Mode;

/// Everything a server needs to start.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to bind (`0.0.0.0:7878` for the binary, `127.0.0.1:0` in tests).
    pub bind: SocketAddr,
    /// Tick rate of the default room (1..=60).
    pub tick_rate: u32,
    /// Snake speed of the default room in cells per second (`None`: the
    /// mode's default, see [`sim::pace`]).
    pub speed: Option<u32>,
    /// Built-in map name of the default room.
    pub map: String,
    /// Mode of the default room.
    pub mode: Mode,
    /// Player cap of the default room.
    pub max_players: u32,
    /// Seed of the default room's RNG (`None`: random).
    pub seed: Option<u64>,
    /// How long a dropped player's snake waits for a resume.
    pub resume_grace: Duration,
    /// SSE and watch spectators.
    pub spectators: SpectatorConfig,
    /// Kernel send buffer of every connection, in bytes (`None`: the OS
    /// default, which autotunes up to megabytes per slow reader).
    pub send_buffer: Option<u32>,
    /// A long-poll/poll session with no poll in flight for this long is
    /// detached (its snake then waits `resume_grace`).
    pub poll_idle_timeout: Duration,
    /// Connection caps, sizes, rates and timeouts (see [`limits::Limits`]).
    pub limits: limits::Limits,
    /// The operator's rooms besides the default one (`--room`), made at
    /// start without cap or rate; `persistent` ones never close when idle.
    pub rooms: Vec<protocol::api::CreateRoom>,
    /// Join a cluster over NATS (`--nats`); `None`: a single node, as ever.
    pub cluster: Option<cluster::ClusterConfig>,
}

/// Default kernel send buffer per connection: dozens of ticks of even a
/// large room, far above what a reader that keeps up ever has in flight.
pub const DEFAULT_SEND_BUFFER: u32 = 64 * 1024;

/// How the server treats SSE and watch spectators.
#[derive(Clone, Debug)]
pub struct SpectatorConfig {
    /// Every SSE stream gets a `: keepalive` comment at this interval (the
    /// contract asks for at least one every 15 s when idle).
    pub keepalive: Duration,
    /// How far back a reconnect with `Last-Event-ID` can resume without a
    /// gap (the contract asks for at least 10 s).
    pub replay: Duration,
    /// Frames (ticks) an SSE spectator may have queued; beyond that its
    /// backlog is dropped and it gets a snapshot instead.
    pub queue: usize,
}

impl Default for SpectatorConfig {
    fn default() -> Self {
        SpectatorConfig {
            keepalive: Duration::from_secs(15),
            replay: Duration::from_secs(12),
            queue: outbox::DEFAULT_CAPACITY,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 7878)),
            tick_rate: 20,
            speed: None,
            map: "arena".into(),
            mode: Mode::Snake,
            max_players: 16,
            seed: None,
            resume_grace: Duration::from_secs(30),
            spectators: SpectatorConfig::default(),
            send_buffer: Some(DEFAULT_SEND_BUFFER),
            poll_idle_timeout: longpoll::IDLE_TIMEOUT,
            limits: limits::Limits::default(),
            rooms: Vec::new(),
            cluster: None,
        }
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A server that is running; dropping it does not stop it, [`RunningServer::shutdown`] does.
pub struct RunningServer {
    /// The address actually bound (the port is real even when 0 was asked).
    pub local_addr: SocketAddr,
    /// The rooms, for embedding programs and tests.
    pub rooms: rooms::Rooms,
    /// Long-poll and short-poll sessions.
    pub sessions: longpoll::PolledSessions,
    /// How often each limit bit (for operators and `/metrics`).
    pub counters: Arc<limits::Counters>,
    /// Open connections under the caps.
    pub connections: accept::Tracker,
    /// The open-file limit `(soft, hard)` after raising it, where known.
    pub open_files: Option<(u64, u64)>,
    /// The node's part in a cluster (`--nats`).
    pub cluster: Option<cluster::Cluster>,
    grace: Duration,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Graceful shutdown: stop accepting, tell every client why (WebSocket
    /// close 1001, a last SSE event, a `503 shutting_down` to held polls,
    /// a goodbye line on watch streams), stop the rooms; returns once every
    /// connection closed, or after the shutdown grace with the stragglers
    /// dropped.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let abort = self.server.abort_handle();
        // The accept loop bounds itself by the grace; this is a backstop.
        let backstop = self.grace + Duration::from_secs(1);
        if tokio::time::timeout(backstop, self.server).await.is_err() {
            abort.abort();
        }
    }
}

/// A listening socket whose accepted connections inherit `TCP_NODELAY` and
/// a send buffer of `send_buffer` bytes (the kernel's autotuning would otherwise let one
/// slow reader hold megabytes of frames in its socket).
fn listen(addr: SocketAddr, send_buffer: Option<u32>) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux (and
    // warp sets none): without it Nagle holds a tick's small write until
    // the previous one is acknowledged, which costs spectators up to
    // tens of milliseconds of frame age.
    socket.set_nodelay(true)?;
    if let Some(n) = send_buffer {
        socket.set_send_buffer_size(n)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

/// The gauges `/metrics` reads from the layers above `metrics`.
#[derive(Debug)]
struct Gauges {
    tracker: accept::Tracker,
    sessions: longpoll::PolledSessions,
}

impl metrics::ServerGauges for Gauges {
    fn connections(&self) -> usize {
        self.tracker.open()
    }
    fn max_connections(&self) -> usize {
        self.tracker.max()
    }
    fn polled_sessions(&self) -> usize {
        self.sessions.len()
    }
    fn polls_in_flight(&self) -> usize {
        self.sessions.polls_in_flight()
    }
}

/// Binds and starts the server on the current tokio runtime, with the
/// default room `lobby`.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    config.limits.validate().map_err(StartError::Config)?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let metrics = std::sync::Arc::new(metrics::Metrics::new());
    let rooms = rooms::Rooms::new(
        shutdown_rx.clone(),
        config.resume_grace,
        config.spectators.clone(),
        metrics.clone(),
        &config.limits,
    );
    let edge = config.cluster.as_ref().is_some_and(|c| c.edge);
    // The default room never closes; it sleeps while nobody is in it. An
    // edge owns no rooms.
    let own_rooms = if edge { &[][..] } else { &config.rooms[..] };
    (!edge)
        .then(|| {
            rooms.create(
                protocol::api::CreateRoom {
                    id: Some("lobby".into()),
                    mode: Some(config.mode),
                    map: Some(config.map.clone()),
                    tick_rate: Some(config.tick_rate),
                    max_players: Some(config.max_players),
                    persistent: true,
                    speed: config.speed,
                },
                config.seed,
            )
        })
        .transpose()
        .map_err(|e| StartError::Config(e.to_string()))?;
    for room in own_rooms {
        rooms
            .create(room.clone(), None)
            .map_err(|e| StartError::Config(format!("--room: {e}")))?;
    }
    let listener = listen(config.bind, config.send_buffer).map_err(|source| StartError::Bind {
        addr: config.bind,
        source,
    })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.bind,
        source,
    })?;
    let open_files = accept::fdlimit::raise();
    let (max_connections, side) = match open_files {
        Some((soft, _)) => (
            config
                .limits
                .max_connections
                .min(accept::fdlimit::connection_capacity(soft)),
            accept::fdlimit::side_budget(soft),
        ),
        None => (config.limits.max_connections, 1024),
    };
    let limits = Arc::new(config.limits.clone());
    let counters = Arc::new(limits::Counters::default());
    let tracker = accept::Tracker::new(
        max_connections,
        limits.max_connections_per_ip,
        limits.per_ip_loopback,
    );
    let sessions = longpoll::PolledSessions::new(shutdown_rx.clone(), config.poll_idle_timeout);
    metrics.register_collector(metrics::ServerCollector {
        counters: counters.clone(),
        gauges: Box::new(Gauges {
            tracker: tracker.clone(),
            sessions: sessions.clone(),
        }),
    });
    let cluster = match &config.cluster {
        Some(c) => {
            let url = c
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{local_addr}"));
            let url = url.trim_end_matches('/').to_string();
            let started = cluster::Cluster::start(
                c,
                url,
                rooms.clone(),
                config.spectators.clone(),
                shutdown_rx.clone(),
            );
            Some(started.await.map_err(StartError::Config)?)
        }
        None => None,
    };
    let state = routes::AppState {
        cluster: cluster.clone(),
        rooms: rooms.clone(),
        shutdown: shutdown_rx.clone(),
        keepalive: config.spectators.keepalive,
        sessions: sessions.clone(),
        limits: limits.clone(),
        counters: counters.clone(),
        metrics: metrics.clone(),
        local_addr,
    };
    let spectated = spectators::Spectated {
        rooms: rooms.clone(),
        mirrors: cluster.as_ref().map(|c| c.mirrors.clone()),
        metrics,
    };
    // One fan-out shard per core and room (and format).
    let writers = std::thread::available_parallelism().map_or(1, usize::from);
    let accept_config = accept::AcceptConfig {
        limits: limits.clone(),
        counters: counters.clone(),
        tracker: tracker.clone(),
        max_refusing: side,
        lingering: accept::Lingering::new(side),
        // In a cluster, other nodes' rooms too: an edge's spectators are
        // on the fan-out like a single node's.
        handoffs: vec![
            fanout::SseDoor::new(spectated.clone(), writers, config.spectators.keepalive),
            fanout::WsDoor::new(
                spectated,
                writers,
                ws::WsContext {
                    shutdown: shutdown_rx.clone(),
                    limits: limits.clone(),
                    counters: counters.clone(),
                    peer: None,
                },
            ),
        ],
    };
    let server = tokio::spawn(accept::run(
        listener,
        warp::service(routes::routes(state)),
        accept_config,
        shutdown_rx,
    ));
    tracing::info!(
        %local_addr,
        max_connections,
        open_files = ?open_files.map(|(soft, _)| soft),
        "listening"
    );
    Ok(RunningServer {
        local_addr,
        rooms,
        sessions,
        counters,
        connections: tracker,
        open_files,
        cluster,
        grace: limits.shutdown_grace,
        shutdown: shutdown_tx,
        server,
    })
}
