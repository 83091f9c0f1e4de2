//! The client stack shared by the TUI and the headless bots: a task that
//! owns one connection to a room over some transport, reconnects with the
//! session token, numbers inputs, and reports everything as [`ClientEvent`]s.
//!
//! Consumers keep their own [`crate::view::GameView`] and feed it the
//! `ClientEvent::Server` messages; when the view answers
//! `Handled::NeedKeyframe` they call [`ClientHandle::resync`].

use protocol::{Dir, Format, Role, ServerMsg, Welcome};
use tokio::sync::mpsc;

/// Which transport carries the session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransportKind {
    /// WebSocket (the default).
    #[default]
    Ws,
}

/// How to reach a room and who to be there.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:7878`.
    pub server: String,
    pub room: String,
    pub name: String,
    pub role: Role,
    /// Wire format (JSON text or bincode binary frames).
    pub format: Format,
    pub transport: TransportKind,
    /// Reconnect (resuming with the token) after a lost connection.
    pub reconnect: bool,
}

/// What the client task reports.
#[derive(Clone, Debug)]
pub enum ClientEvent {
    /// Opening a connection (attempt 1 is the first, higher ones are reconnects).
    Connecting { attempt: u32 },
    /// The server welcomed us (first join, or a resume: see `Welcome::resumed`).
    Welcome(Box<Welcome>),
    /// Any other server message, in order.
    Server(ServerMsg),
    /// The connection was lost; `retrying` says whether the task will reconnect.
    Disconnected { reason: String, retrying: bool },
    /// The task stopped for good (left, refused, or out of retries).
    Closed { reason: ClosedReason },
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
    Refused { code: String, message: String },
    /// The server shut down.
    ServerShutdown(String),
}

/// Controls a running client task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ClientHandle {
    _commands: mpsc::Sender<()>,
}

impl ClientHandle {
    /// Steer. Sends an input only when `dir` differs from the last one
    /// sent, so key repeat never floods the server.
    pub fn steer(&self, dir: Dir) {
        let _ = dir;
        todo!()
    }

    /// Boost on or off (sent only on change).
    pub fn boost(&self, on: bool) {
        let _ = on;
        todo!()
    }

    /// Send a chat line.
    pub fn chat(&self, text: String) {
        let _ = text;
        todo!()
    }

    /// Ask the server for a keyframe.
    pub fn resync(&self) {
        todo!()
    }

    /// Leave the room; the task ends with `Closed { Left }`.
    pub fn leave(&self) {
        todo!()
    }
}

/// Starts a client task on the current runtime.
pub fn spawn(config: ClientConfig) -> (ClientHandle, mpsc::Receiver<ClientEvent>) {
    let _ = config;
    todo!()
}
