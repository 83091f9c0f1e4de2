//! Why the server refuses or ends a session, in words. Each transport says
//! it in its own terms (an HTTP status, a WebSocket close code) next to
//! the same `code` and message.

use crate::room::{Joined, RoomClosed};
use crate::session::AdmitError;

/// Why a session was refused or ended by the server.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The first message was something other than a hello.
    #[error("the first message must be hello")]
    NotHello,
    /// The first message did not decode.
    #[error("bad hello: {0}")]
    BadHello(String),
    /// The hello speaks another protocol version.
    #[error("{}", protocol::version_mismatch(*given))]
    Version {
        /// The version the client asked for.
        given: u32,
    },
    /// The room refused the hello.
    #[error(transparent)]
    Admit(#[from] AdmitError),
    /// The room is gone: the server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The client sent more than its input rate limit for too long.
    #[error(
        "input flood: more than {rate} messages a second (burst {burst}); the session is closed"
    )]
    Flood {
        /// The limit's rate, per second.
        rate: f64,
        /// The limit's burst.
        burst: f64,
    },
}

impl Refusal {
    /// The contract's snake_case `code` for it.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotHello | Refusal::BadHello(_) => "bad_message",
            Refusal::Version { .. } => "version_mismatch",
            Refusal::Admit(AdmitError::RoomFull(_)) => "room_full",
            Refusal::Admit(AdmitError::UnknownSession) => "unknown_session",
            Refusal::ShuttingDown => "shutting_down",
            Refusal::Flood { .. } => "rate_limited",
        }
    }

    /// The outcome of a room join, as a joined subscriber or a refusal.
    pub fn of_join(r: Result<Result<Joined, AdmitError>, RoomClosed>) -> Result<Joined, Refusal> {
        match r {
            Err(RoomClosed) => Err(Refusal::ShuttingDown),
            Ok(r) => r.map_err(Refusal::Admit),
        }
    }
}
