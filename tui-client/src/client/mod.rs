//! The client stack shared by the TUI and the headless bots: a task that
//! owns one connection to a room over some transport, reconnects with the
//! session token, numbers inputs, and reports everything as [`ClientEvent`]s.
//!
//! Consumers keep their own [`crate::view::GameView`] and feed it the
//! `ClientEvent::Server` messages; when the view answers
//! `Handled::NeedKeyframe` they call [`ClientHandle::resync`].
//!
//! Layout, quinn-style: [`session::Session`] (inputs, token, pings),
//! [`reconnect::Reconnect`] (what a disconnect means), [`backoff::Backoff`]
//! (the one retry policy of every link), [`transport::poll`] (the polled
//! session's seqs) and the [`crate::lag::LagMeter`] are sans-IO; every URL
//! comes from one [`endpoint::Endpoint`]; [`transport`] moves messages
//! (and counts their bytes); [`conditioner`] can put a delay line in front
//! of it; `task` is the thin async shell that wires them to sockets and
//! timers, and reports the meter's figures as [`ClientEvent::Lag`].

pub mod backoff;
pub mod conditioner;
pub mod endpoint;
pub mod reconnect;
pub mod session;
mod task;
pub mod transport;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::{Dir, Format, Role, ServerMsg, Welcome};
use tokio::sync::mpsc;

pub use conditioner::Conditioner;
pub use endpoint::Endpoint;
pub use reconnect::RetryPolicy;

use crate::lag::LagSnapshot;

/// How often a client reports its lag figures by default.
pub const LAG_EVERY: Duration = Duration::from_millis(500);

/// Unix microseconds on this machine's clock: the time base of pings and
/// of the lag meter.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Events buffered between the client task and its consumer. A consumer
/// that falls this far behind stalls the task, which stops reading the
/// socket; the server then drops that backlog and sends a keyframe.
pub const EVENT_BUFFER: usize = 1024;

/// Which transport carries the session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransportKind {
    /// WebSocket (the default).
    #[default]
    Ws,
    /// Server-Sent Events: spectators only (no upstream), resumes with
    /// `Last-Event-ID` after a drop.
    Sse,
    /// Long-polling: held `GET .../poll` requests, `POST .../send`.
    LongPoll,
    /// Short polling: `GET .../poll?wait=0` every `interval`.
    Poll {
        /// Time between polls ([`DEFAULT_POLL_INTERVAL`] by default).
        interval: std::time::Duration,
    },
    /// WebSocket if the network lets it through, else long-poll; the
    /// choice and its reason come as [`ClientEvent::TransportChosen`].
    Auto,
}

impl TransportKind {
    /// The four transports, as `--transport all` and the compare view
    /// spread over them (short poll at the default interval).
    pub const ALL: [TransportKind; 4] = [
        TransportKind::Ws,
        TransportKind::Sse,
        TransportKind::LongPoll,
        TransportKind::Poll {
            interval: DEFAULT_POLL_INTERVAL,
        },
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Ws => "ws",
            TransportKind::Sse => "sse",
            TransportKind::LongPoll => "longpoll",
            TransportKind::Poll { .. } => "poll",
            TransportKind::Auto => "auto",
        }
    }

    /// The name people know it by.
    pub fn title(self) -> &'static str {
        match self {
            TransportKind::Ws => "WebSocket",
            TransportKind::Sse => "SSE",
            TransportKind::LongPoll => "long-poll",
            TransportKind::Poll { .. } => "short poll",
            TransportKind::Auto => "auto",
        }
    }

    /// True when it carries inputs (SSE has no upstream).
    pub fn can_play(self) -> bool {
        self != TransportKind::Sse
    }
}

/// How to reach a room and who to be there.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:7878`.
    pub server: String,
    /// Room id (`lobby` by default).
    pub room: String,
    /// Display name (the server sanitises it).
    pub name: String,
    /// Play or watch.
    pub role: Role,
    /// Wire format (JSON text or bincode binary frames).
    pub format: Format,
    /// Which transport carries the session.
    pub transport: TransportKind,
    /// Reconnect (resuming with the token) after a lost connection.
    pub reconnect: bool,
    /// Backoff and give-up limits of reconnecting.
    pub retry: RetryPolicy,
    /// Delay every byte to and from the server (a bad network on purpose).
    pub conditioner: Option<Conditioner>,
    /// How often to report [`ClientEvent::Lag`] while connected; `None`:
    /// only once, just before `Closed`, with whole-run figures only (what
    /// a report needs; the meter then keeps no sliding window).
    pub lag_every: Option<Duration>,
}

/// Default time between short polls.
pub const DEFAULT_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

impl ClientConfig {
    /// A player in `room` on `server` over WebSocket with bincode frames,
    /// reconnecting with the default policy.
    pub fn new(
        server: impl Into<String>,
        room: impl Into<String>,
        name: impl Into<String>,
    ) -> ClientConfig {
        ClientConfig {
            server: server.into(),
            room: room.into(),
            name: name.into(),
            role: Role::Player,
            format: Format::Bincode,
            transport: TransportKind::Ws,
            reconnect: true,
            retry: RetryPolicy::default(),
            conditioner: None,
            lag_every: Some(LAG_EVERY),
        }
    }
}

/// What the client task reports.
#[derive(Clone, Debug)]
pub enum ClientEvent {
    /// Opening a connection (attempt 1 is the first, higher ones are reconnects).
    Connecting {
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// `--transport auto` picked the transport in use, for this reason in
    /// the server's own words (for example "WebSocket refused (426 Upgrade
    /// Required: <the server's JSON `error`>): using long-poll"), for a
    /// status bar. Reported before the welcome of the first connection.
    TransportChosen {
        /// The transport now in use (never `Auto`).
        transport: TransportKind,
        /// Why, for humans.
        reason: String,
    },
    /// A cluster's redirect (`307`) led to the node that plays the room:
    /// this base URL (sanitised), where the connection is now. Reported
    /// before that connection's welcome, once per move.
    Moved {
        /// The node's base URL, `http://host:port`.
        server: String,
    },
    /// The server welcomed us (first join, or a resume: see `Welcome::resumed`).
    Welcome(Box<Welcome>),
    /// Any other server message, in order.
    Server(ServerMsg),
    /// An input went out with this seq (for input-latency figures: the
    /// first frame whose `ack` reaches `seq` applied it). Always reported
    /// before any frame that acknowledges it.
    InputSent {
        /// The input's seq.
        seq: u64,
        /// Its direction.
        dir: Dir,
        /// Its boost state.
        boost: bool,
    },
    /// The lag meter's figures: every `lag_every` while connected, and
    /// once more just before `Closed` (the whole run, for reports).
    Lag(Box<LagSnapshot>),
    /// The connection was lost; `retrying` says whether the task will reconnect.
    Disconnected {
        /// What happened, for humans.
        reason: String,
        /// True when the task will reconnect.
        retrying: bool,
    },
    /// The task stopped for good (left, refused, or out of retries). Last event.
    Closed {
        /// Why.
        reason: ClosedReason,
    },
}

/// Why a client task ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClosedReason {
    /// We left (or the handle was dropped).
    Left,
    /// The server is unreachable.
    Unreachable(String),
    /// The server refused us: `code` is the error code (`room_full`,
    /// `version_mismatch`, `unknown_room`, `kicked`, ...).
    Refused {
        /// Stable snake_case code.
        code: String,
        /// Human message.
        message: String,
    },
    /// The server shut down.
    ServerShutdown(String),
    /// The connection dropped and reconnecting was off.
    ConnectionLost(String),
}

impl std::fmt::Display for ClosedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClosedReason::Left => f.write_str("left the room"),
            ClosedReason::Unreachable(m) => write!(f, "server unreachable: {m}"),
            ClosedReason::Refused { code, message } => write!(f, "refused ({code}): {message}"),
            ClosedReason::ServerShutdown(m) => write!(f, "server shut down: {m}"),
            ClosedReason::ConnectionLost(m) => write!(f, "connection lost: {m}"),
        }
    }
}

/// What the UI asks of the task.
#[derive(Debug)]
enum Command {
    /// A steer, and when its key was pressed (for input latency).
    Steer(Dir, u64),
    /// A boost change, and when its key was pressed.
    Boost(bool, u64),
    Chat(String),
    Resync,
    Leave,
}

/// Controls a running client task. Cheap to clone. Every method returns at
/// once: commands queue for the task, which is never waited on. After the
/// task ended they are ignored. Dropping every handle leaves the room.
#[derive(Clone, Debug)]
pub struct ClientHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl ClientHandle {
    fn send(&self, c: Command) {
        // An error only means the task has ended; there is no one to tell.
        let _ = self.commands.send(c);
    }

    /// Steer. Sends an input only when `dir` differs from the last one
    /// sent, so key repeat never floods the server.
    pub fn steer(&self, dir: Dir) {
        self.send(Command::Steer(dir, unix_us()));
    }

    /// Boost on or off (sent only on change).
    pub fn boost(&self, on: bool) {
        self.send(Command::Boost(on, unix_us()));
    }

    /// Send a chat line.
    pub fn chat(&self, text: String) {
        self.send(Command::Chat(text));
    }

    /// Ask the server for a keyframe.
    pub fn resync(&self) {
        self.send(Command::Resync);
    }

    /// Leave the room; the task ends with `Closed { Left }`.
    pub fn leave(&self) {
        self.send(Command::Leave);
    }

    /// True once the task has ended.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }
}

/// Starts a client task on the current tokio runtime (panics outside one,
/// like `tokio::spawn`). The receiver yields events until `Closed`.
pub fn spawn(config: ClientConfig) -> (ClientHandle, mpsc::Receiver<ClientEvent>) {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_BUFFER);
    tokio::spawn(task::run(config, cmd_rx, ev_tx));
    (ClientHandle { commands: cmd_tx }, ev_rx)
}
