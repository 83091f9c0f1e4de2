//! Client-side transports: how a session's messages reach the server.
//!
//! A transport only moves messages. It opens a [`Link`] (sending the `hello`
//! the session prepared), then carries [`ClientMsg`]s up and
//! [`ServerMsg`]s down until the link ends with a [`Disconnect`]. Every
//! decision about what to send, when to reconnect and what a close means
//! belongs to [`super::session::Session`]; that is what lets long-poll, poll
//! and SSE transports plug in as one more [`Link`] variant.

mod http;
mod sse;
pub mod traffic;
mod ws;

use std::sync::Arc;

use protocol::{ClientMsg, Format, Hello, ServerMsg};

pub use http::{LONG_POLL_WAIT, PollMode, sessions_url};
pub use sse::{events_url, time_url};
pub use traffic::Traffic;
pub use ws::ws_url;

use super::TransportKind;

/// The `host:port` the server at base URL `server` listens on.
pub fn server_authority(server: &str) -> Result<String, ConnectError> {
    ws::authority(&ws_url(server, "x")?)
}

/// Where to connect and how to encode.
#[derive(Clone, Debug)]
pub struct Target {
    /// Base URL of the server (`http://host:port`, `ws://...` also accepted).
    pub server: String,
    /// Room id.
    pub room: String,
    /// Wire format for this connection.
    pub format: Format,
    /// Where the links count what they read and write.
    pub traffic: Arc<Traffic>,
}

/// Why a link could not be opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The server did not answer (refused, reset, timed out, DNS failure).
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    /// The server answered the upgrade with an HTTP error.
    #[error("server answered HTTP {status}: {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The `code` of the JSON error body, when there was one.
        code: Option<String>,
        /// The human message of the error body (or the status text).
        message: String,
    },
    /// The server URL is not usable.
    #[error("invalid server URL: {0}")]
    InvalidUrl(String),
    /// The transport cannot do what was asked (e.g. play over SSE).
    #[error("{0}")]
    Unsupported(String),
}

/// How an open link ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disconnect {
    /// The server closed the link with a close code and reason.
    Closed {
        /// WebSocket close code (1000 normal, 1001 going away, ...).
        code: u16,
        /// Close reason text.
        reason: String,
    },
    /// The link dropped without a close (reset, EOF, I/O error, silence).
    Lost(String),
    /// The server sent something that is not a valid message.
    BadFrame(String),
}

impl std::fmt::Display for Disconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disconnect::Closed { code, reason } if reason.is_empty() => {
                write!(f, "closed by the server (code {code})")
            }
            Disconnect::Closed { code, reason } => {
                write!(f, "closed by the server (code {code}): {reason}")
            }
            Disconnect::Lost(why) => write!(f, "connection lost: {why}"),
            Disconnect::BadFrame(why) => write!(f, "bad frame from the server: {why}"),
        }
    }
}

/// What a link delivers.
#[derive(Debug)]
pub enum LinkEvent {
    /// A message from the server, in order.
    Msg(ServerMsg),
    /// The link ended; nothing follows.
    Closed(Disconnect),
}

/// An open connection of some transport.
///
/// Invariant: [`Link::recv`] is cancel-safe (the client task `select!`s on
/// it), so a transport whose receive is a multi-step request must buffer
/// behind a channel.
// One link per client task at a time: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Link {
    /// A WebSocket connection (boxed: it is far larger than the others).
    Ws(Box<ws::WsLink>),
    /// A Server-Sent Events stream (spectators).
    Sse(sse::SseLink),
    /// A long-poll or short-poll session.
    Http(http::HttpLink),
}

impl Link {
    /// Opens a link of `kind` to `target`, sending `hello` first.
    pub async fn connect(
        kind: TransportKind,
        target: &Target,
        hello: &Hello,
    ) -> Result<Link, ConnectError> {
        match kind {
            TransportKind::Ws => Ok(Link::Ws(Box::new(
                ws::WsLink::connect(target, hello).await?,
            ))),
            TransportKind::Sse => Ok(Link::Sse(sse::SseLink::connect(target, hello).await?)),
            TransportKind::LongPoll => {
                let mode = PollMode::Long {
                    wait: LONG_POLL_WAIT,
                };
                Ok(Link::Http(
                    http::HttpLink::connect(target, hello, mode).await?,
                ))
            }
            TransportKind::Auto => Ok(Link::connect_auto(target, hello).await?.0),
            TransportKind::Poll { interval } => {
                let mode = PollMode::Short { interval };
                Ok(Link::Http(
                    http::HttpLink::connect(target, hello, mode).await?,
                ))
            }
        }
    }

    /// Tries a WebSocket, then long-poll when the WebSocket could not be
    /// opened (an upgrade refused or mangled by a proxy, a timeout). Returns
    /// the link, the transport it uses and why, for the user.
    pub async fn connect_auto(
        target: &Target,
        hello: &Hello,
    ) -> Result<(Link, TransportKind, String), ConnectError> {
        let why = match ws::WsLink::connect(target, hello).await {
            Ok(l) => {
                let reason = "WebSocket upgrade accepted: using WebSocket".to_string();
                return Ok((Link::Ws(Box::new(l)), TransportKind::Ws, reason));
            }
            // The room does not exist, or the URL is wrong: long-poll cannot help.
            Err(e @ (ConnectError::InvalidUrl(_) | ConnectError::Http { status: 404, .. })) => {
                return Err(e);
            }
            Err(ConnectError::Http {
                status, message, ..
            }) => {
                format!("WebSocket upgrade refused (HTTP {status}: {message})")
            }
            Err(ConnectError::Unreachable(m)) => format!("WebSocket failed ({m})"),
            Err(e @ ConnectError::Unsupported(_)) => return Err(e),
        };
        let mode = PollMode::Long {
            wait: LONG_POLL_WAIT,
        };
        let link = http::HttpLink::connect(target, hello, mode).await?;
        let reason = format!("{why}: using long-poll");
        Ok((Link::Http(link), TransportKind::LongPoll, reason))
    }

    /// Sends one message; an error means the link is gone.
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), Disconnect> {
        match self {
            Link::Ws(l) => l.send(msg).await,
            Link::Sse(l) => l.send(msg).await,
            Link::Http(l) => l.send(msg).await,
        }
    }

    /// The next event. After [`LinkEvent::Closed`] the link is finished.
    pub async fn recv(&mut self) -> LinkEvent {
        match self {
            Link::Ws(l) => l.recv().await,
            Link::Sse(l) => l.recv().await,
            Link::Http(l) => l.recv().await,
        }
    }

    /// Closes the link politely (best effort).
    pub async fn close(&mut self) {
        match self {
            Link::Ws(l) => l.close().await,
            Link::Sse(l) => l.close().await,
            Link::Http(l) => l.close().await,
        }
    }
}
