//! End-to-end test support: a real server on 127.0.0.1:0, clients that
//! record everything they rebuild, and a TCP proxy that can cut every
//! connection through it (a real network failure, not a simulated one).
//!
//! Waiting is always on an event with a generous deadline, never a sleep.

pub mod browser;
pub mod cluster;
pub mod observe;
pub mod proxy;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use game_server::{RunningServer, ServerConfig};
use protocol::state::DeltaError;
use protocol::{ErrorMsg, Format, Mode, Role, ServerMsg, Welcome};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tui_client::bot::{BotKind, Brain};
use tui_client::client::{
    self, ClientConfig, ClientEvent, ClientHandle, ClosedReason, TransportKind,
};
use tui_client::lag::LagSnapshot;
use tui_client::view::{GameView, Handled};

/// Bound on any single wait. Generous: it only matters when something broke.
pub const WAIT: Duration = Duration::from_secs(20);

/// Tick rate the tests run rooms at, so a few hundred ticks take seconds.
pub const FAST_TICKS: u32 = 60;

/// The room every server starts with.
pub const LOBBY: &str = "lobby";

/// A server for one test.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    server: RunningServer,
}

impl TestServer {
    /// A server on 127.0.0.1:0 at [`FAST_TICKS`] with a fixed seed.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Like [`TestServer::start`], with `tweak` applied to the config.
    pub async fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let mut config = ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            tick_rate: FAST_TICKS,
            map: "small".into(),
            mode: Mode::Snake,
            seed: Some(7),
            ..ServerConfig::default()
        };
        tweak(&mut config);
        let server = game_server::start(config).await.expect("server starts");
        let addr = server.local_addr;
        TestServer {
            url: format!("http://{addr}"),
            addr,
            server,
        }
    }

    /// Shuts the server down (clients get close 1001).
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// A client config for `name` in the lobby of `url`.
pub fn player(url: &str, name: &str, format: Format) -> ClientConfig {
    let mut c = ClientConfig::new(url, LOBBY, name);
    c.format = format;
    c
}

/// A spectator config.
pub fn spectator(url: &str, name: &str, format: Format) -> ClientConfig {
    let mut c = player(url, name, format);
    c.role = Role::Spectator;
    c
}

/// A client that records what it rebuilds: the checksum of its world at
/// every tick it reached, every ack, every welcome, every problem.
pub struct Probe {
    /// Controls the client task.
    pub handle: ClientHandle,
    events: mpsc::Receiver<ClientEvent>,
    brain: Option<Box<dyn Brain + Send>>,
    /// Whether our snake waits for a first input (see `bot::start`).
    spawn: tui_client::bot::SpawnWatch,
    /// The client's model of the room (after the first welcome).
    pub view: Option<GameView>,
    /// Every welcome, in order.
    pub welcomes: Vec<Welcome>,
    /// `tick -> checksum` of the rebuilt world, for every tick it reached.
    pub checksums: BTreeMap<u64, u64>,
    /// The `ack` of every frame, in order.
    pub acks: Vec<u64>,
    /// Seqs of the inputs the client sent, in order.
    pub sent: Vec<u64>,
    /// For every frame: `(its ack, highest seq sent before it arrived)`.
    pub ack_vs_sent: Vec<(u64, u64)>,
    /// Every `Disconnected`: `(reason, retrying)`.
    pub disconnects: Vec<(String, bool)>,
    /// Every `error` message.
    pub errors: Vec<ErrorMsg>,
    /// Every time the view lost the world.
    pub lost: Vec<DeltaError>,
    /// Set when the task ended.
    pub closed: Option<ClosedReason>,
    /// Every `TransportChosen` (`--transport auto`).
    pub transports: Vec<(TransportKind, String)>,
    /// Every chat line received: `(from, text)`.
    pub chats: Vec<(String, String)>,
    /// The latest lag figures the client reported.
    pub lag: Option<Box<LagSnapshot>>,
}

impl Probe {
    /// Starts a client.
    pub fn spawn(config: ClientConfig) -> Probe {
        let (handle, events) = client::spawn(config);
        Probe {
            handle,
            events,
            brain: None,
            spawn: Default::default(),
            view: None,
            welcomes: Vec::new(),
            checksums: BTreeMap::new(),
            acks: Vec::new(),
            sent: Vec::new(),
            ack_vs_sent: Vec::new(),
            disconnects: Vec::new(),
            errors: Vec::new(),
            lost: Vec::new(),
            closed: None,
            transports: Vec::new(),
            chats: Vec::new(),
            lag: None,
        }
    }

    /// Starts a client steered by a bot brain after every frame.
    pub fn bot(config: ClientConfig, kind: BotKind, seed: u64) -> Probe {
        let mut p = Probe::spawn(config);
        p.brain = Some(kind.brain(seed));
        p
    }

    /// Takes one event (panics after [`WAIT`]) and records it.
    pub async fn step(&mut self) -> ClientEvent {
        let ev = tokio::time::timeout(WAIT, self.events.recv())
            .await
            .unwrap_or_else(|_| panic!("no client event within {WAIT:?}"))
            .unwrap_or_else(|| panic!("client task ended after {:?}", self.closed));
        match &ev {
            ClientEvent::Welcome(w) => {
                match self.view.as_mut() {
                    Some(v) => v.rewelcome(w),
                    None => self.view = Some(GameView::new(w)),
                }
                self.welcomes.push((**w).clone());
            }
            ClientEvent::Server(msg) => self.handle_server(msg),
            ClientEvent::Disconnected { reason, retrying } => {
                self.disconnects.push((reason.clone(), *retrying));
            }
            ClientEvent::Closed { reason } => self.closed = Some(reason.clone()),
            ClientEvent::InputSent { seq, .. } => self.sent.push(*seq),
            ClientEvent::TransportChosen { transport, reason } => {
                self.transports.push((*transport, reason.clone()));
            }
            ClientEvent::Lag(lag) => self.lag = Some(lag.clone()),
            ClientEvent::Connecting { .. } | ClientEvent::Moved { .. } => {}
        }
        ev
    }

    fn handle_server(&mut self, msg: &ServerMsg) {
        let ack = match msg {
            ServerMsg::Tick(t) => Some(t.ack),
            ServerMsg::Snapshot(s) => Some(s.ack),
            ServerMsg::Error(e) => {
                self.errors.push(e.clone());
                None
            }
            ServerMsg::Chat(c) => {
                self.chats.push((c.from.clone(), c.text.clone()));
                None
            }
            _ => None,
        };
        if let Some(ack) = ack {
            self.acks.push(ack);
            self.ack_vs_sent
                .push((ack, self.sent.last().copied().unwrap_or(0)));
        }
        let Some(view) = self.view.as_mut() else {
            return;
        };
        match view.handle(msg) {
            Handled::Advanced => {
                let world = view.world.as_ref().expect("advanced means a world");
                self.checksums.insert(world.tick, world.checksum());
                if let Some(brain) = self.brain.as_mut() {
                    // Like every bot: steer, and start a waiting snake.
                    tui_client::bot::act(&mut **brain, &mut self.spawn, view, &self.handle);
                }
            }
            Handled::NeedKeyframe(e) => {
                self.lost.push(e);
                self.handle.resync();
            }
            Handled::Other => {}
        }
    }

    /// Steps until `done` holds; panics with `what` if the task closes or
    /// nothing happens for [`WAIT`].
    pub async fn until(&mut self, what: &str, mut done: impl FnMut(&Probe) -> bool) {
        while !done(self) {
            if let Some(r) = &self.closed {
                panic!("client closed ({r:?}) while waiting for {what}");
            }
            self.step().await;
        }
    }

    /// A bot over `--transport auto` at `url` that plays 60 ticks after
    /// falling back to long-poll; panics unless it chose long-poll with a
    /// reason that names `status` (the refusal it met) and lost nothing.
    pub async fn after_fallback(url: &str, name: &str, format: Format, status: &str) -> Probe {
        let mut c = player(url, name, format);
        c.transport = TransportKind::Auto;
        let mut p = Probe::bot(c, BotKind::Greedy, 3);
        p.until("60 ticks", |p| p.ticks_seen() >= 60).await;
        let (kind, reason) = p
            .transports
            .first()
            .cloned()
            .expect("the choice is reported");
        assert_eq!(kind, TransportKind::LongPoll);
        assert!(
            reason.contains(status) && reason.contains("long-poll"),
            "{reason}"
        );
        assert_eq!(p.problems(), (0, 0, 0), "no desync, gap or lost frame");
        p
    }

    /// Steps until the task closes; returns why.
    pub async fn closed(&mut self) -> ClosedReason {
        while self.closed.is_none() {
            self.step().await;
        }
        self.closed.clone().expect("loop ends when closed")
    }

    /// The current tick of the rebuilt world (0 before the first keyframe).
    pub fn tick(&self) -> u64 {
        self.view.as_ref().map_or(0, GameView::tick)
    }

    /// Ticks the world advanced through.
    pub fn ticks_seen(&self) -> usize {
        self.checksums.len()
    }

    /// Our player id from the last welcome.
    pub fn player_id(&self) -> Option<u32> {
        self.welcomes.last().and_then(|w| w.player_id)
    }

    /// Desyncs and gaps the view counted, plus frames it could not follow.
    pub fn problems(&self) -> (u64, u64, usize) {
        let s = self.view.as_ref().map(|v| v.stats).unwrap_or_default();
        (s.desyncs, s.gaps, self.lost.len())
    }

    /// Leaves and waits for the task to end.
    pub async fn leave(mut self) -> ClosedReason {
        self.handle.leave();
        self.closed().await
    }
}

/// Ticks both probes rebuilt, with checksums that disagree.
pub fn disagreements(a: &Probe, b: &Probe) -> (usize, Vec<u64>) {
    let mut common = 0;
    let mut differ = Vec::new();
    for (tick, sum) in &a.checksums {
        if let Some(other) = b.checksums.get(tick) {
            common += 1;
            if other != sum {
                differ.push(*tick);
            }
        }
    }
    (common, differ)
}

/// A TCP proxy on 127.0.0.1:0 to `upstream` that can cut every
/// connection through it at once; new connections are still accepted.
pub struct CutProxy {
    /// `http://127.0.0.1:PORT` of the proxy.
    pub url: String,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    accept: JoinHandle<()>,
}

impl CutProxy {
    /// Starts proxying to `upstream`.
    pub async fn start(upstream: SocketAddr) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy addr"));
        let pipes: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let registry = pipes.clone();
        let accepted: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let counter = accepted.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let pipe = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                registry.lock().expect("proxy registry").push(pipe);
            }
        });
        CutProxy {
            url,
            pipes,
            accepted,
            accept,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Drops every open connection (both sides see a reset/EOF, no close frame).
    pub fn cut(&self) {
        for pipe in self.pipes.lock().expect("proxy registry").drain(..) {
            pipe.abort();
        }
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Makes sure the system tool at `binary` (Debian's `package`) is there for
/// a test: when it is missing and this runs as root (CI, a container), the
/// project's own `.ci/install-tools` installs it, so `cargo test --workspace`
/// needs no setup step; anyone else is told what to run.
pub fn ensure_installed(binary: &str, package: &str) {
    let there = || std::path::Path::new(binary).exists();
    if there() {
        return;
    }
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/install-tools");
    let installed = root
        && std::process::Command::new("bash")
            .arg(script)
            .stdin(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    assert!(
        installed && there(),
        "{binary} is missing: run `sudo .ci/install-tools` (it installs Debian's {package}), \
         which `.ci/run` does before the tests"
    );
}
