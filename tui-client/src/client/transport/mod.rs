//! Client-side transports: how a session's messages reach the server.
//!
//! A transport only moves messages. It opens a [`Link`] (sending the `hello`
//! the session prepared), then carries [`ClientMsg`]s up and
//! [`ServerMsg`]s down until the link ends with a [`Disconnect`], a reason
//! that names what happened in words every transport can say (never a
//! borrowed WebSocket close code). Every decision about what to send, when
//! to reconnect and what a disconnect means belongs to
//! [`super::session::Session`] and [`super::reconnect::Reconnect`]; the
//! long-poll bookkeeping is the sans-IO [`poll`] module. That is what lets
//! each transport be one more [`Link`] variant that only moves bytes.

mod http;
pub mod poll;
mod sse;
pub mod traffic;
mod ws;

use std::sync::Arc;

use protocol::{ClientMsg, Format, Hello, ServerMsg};

pub use poll::{LONG_POLL_WAIT, PollMode};
pub use traffic::Traffic;

use super::TransportKind;
use super::endpoint::Endpoint;

/// Where to connect and how to encode.
#[derive(Clone, Debug)]
pub struct Target {
    /// The server (or the conditioner's relay in front of it).
    pub endpoint: Endpoint,
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
    /// The server answered the opening request with an HTTP error.
    #[error("server answered {}: {message}", status_line(*status))]
    Http {
        /// HTTP status.
        status: u16,
        /// The `code` of the JSON error body, when there was one.
        code: Option<String>,
        /// The `error` text of the JSON body (or the status text).
        message: String,
    },
    /// The server URL is not usable.
    #[error("invalid server URL: {0}")]
    InvalidUrl(String),
    /// The transport cannot do what was asked (e.g. play over SSE).
    #[error("{0}")]
    Unsupported(String),
    /// The room is played on another node of a cluster: a `307`/`308`
    /// with this `Location` (followed by [`Link::connect_following`]).
    #[error("the room is played elsewhere: {0}")]
    Moved(String),
}

/// Most redirects followed to find the node that plays a room.
const MAX_MOVES: usize = 3;

impl ConnectError {
    /// An HTTP error answer, in the words of [`error_words`].
    pub fn http(status: u16, body: &[u8]) -> ConnectError {
        let (code, message) = error_words(status, body);
        ConnectError::Http {
            status,
            code,
            message,
        }
    }
}

/// The `code` and the words of an HTTP error answer: its JSON
/// `{"error","code"}`, else a short plain-text body (what a proxy says),
/// else the status's standard text. Every link reads error answers so.
pub(super) fn error_words(status: u16, body: &[u8]) -> (Option<String>, String) {
    if let Ok(api) = serde_json::from_slice::<protocol::api::ApiError>(body) {
        return (Some(server_words(&api.code)), server_words(&api.error));
    }
    let standard = || {
        tokio_tungstenite::tungstenite::http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("HTTP error")
            .to_string()
    };
    (None, plain_reason(body).unwrap_or_else(standard))
}

/// Longest reason kept from a server, in characters.
const MAX_REASON: usize = 200;

/// Text a server (or a proxy) sent, fit for a terminal: one line, no
/// escape sequences or control characters, at most [`MAX_REASON`]
/// characters. Every reason, refusal and close text a link reports has
/// been through this, so a hostile server cannot write to the user's
/// terminal through a status line or a report.
pub fn server_words(s: &str) -> String {
    protocol::text::sanitize_line(s, MAX_REASON)
}

/// A short plain-text body as a reason; not a page of HTML.
fn plain_reason(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let short = !text.is_empty() && text.len() <= MAX_REASON && !text.starts_with('<');
    short.then(|| server_words(text))
}

/// `426 Upgrade Required`: a status with its standard text.
pub fn status_line(status: u16) -> String {
    match tokio_tungstenite::tungstenite::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(text) => format!("{status} {text}"),
        None => format!("HTTP {status}"),
    }
}

/// A refusal: the server said no, in a way trying again cannot change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// How the server said it.
    pub by: RefusedBy,
    /// Stable snake_case code: the server's JSON `code`, else named after
    /// the status or close code (`protocol_error`, `http_400`, ...).
    pub code: String,
    /// The server's own words (its JSON `error`, or the close reason).
    pub reason: String,
}

/// The channel a [`Refusal`] came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedBy {
    /// An HTTP answer with this status.
    Http(u16),
    /// A WebSocket close with this code.
    Close(u16),
}

/// How an open link ended, whatever the transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disconnect {
    /// The server is shutting down (it said so: a WebSocket close 1001, a
    /// `503 shutting_down`, a `shutting_down` error before a stream's end).
    ShuttingDown(String),
    /// The server refused us or what we sent.
    Refused(Refusal),
    /// The server no longer knows the session (expired, or forgotten).
    SessionUnknown(String),
    /// The link dropped without a refusal (reset, EOF, I/O error, silence,
    /// a plain close).
    Lost(String),
    /// The server sent something that is not a valid message.
    BadFrame(String),
}

impl std::fmt::Display for Disconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disconnect::ShuttingDown(why) => write!(f, "server shutting down: {why}"),
            Disconnect::Refused(r) => {
                match r.by {
                    RefusedBy::Http(s) => write!(f, "refused ({}", status_line(s))?,
                    RefusedBy::Close(c) => write!(f, "closed by the server (code {c}")?,
                }
                if r.reason.is_empty() {
                    write!(f, ", {})", r.code)
                } else {
                    write!(f, "): {}", r.reason)
                }
            }
            Disconnect::SessionUnknown(why) => write!(f, "session unknown to the server: {why}"),
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

    /// Like [`Link::connect`] (or [`Link::connect_auto`] for `Auto`, which
    /// also returns the transport chosen and why), following a cluster's
    /// redirects to the node that plays the room: `target` is moved there,
    /// so a reconnect goes straight to it.
    pub async fn connect_following(
        kind: TransportKind,
        target: &mut Target,
        hello: &Hello,
    ) -> Result<(Link, Option<(TransportKind, String)>), ConnectError> {
        for _ in 0..MAX_MOVES {
            let r = if kind == TransportKind::Auto {
                Link::connect_auto(target, hello)
                    .await
                    .map(|(link, kind, why)| (link, Some((kind, why))))
            } else {
                Link::connect(kind, target, hello)
                    .await
                    .map(|link| (link, None))
            };
            match r {
                Err(ConnectError::Moved(location)) => {
                    target.endpoint = target.endpoint.moved_to(&location)?;
                    tracing::info!(location = %server_words(&location), "the room is played on another node: going there");
                }
                other => return other,
            }
        }
        Err(ConnectError::Unreachable(format!(
            "more than {MAX_MOVES} redirects looking for the room's node"
        )))
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
            Err(e) => fallback_reason(&e).ok_or(e)?,
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

/// Why `auto` falls back to long-poll after the WebSocket failed with `e`,
/// in the server's own words; `None` when long-poll cannot help either (no
/// such room, an unusable URL).
fn fallback_reason(e: &ConnectError) -> Option<String> {
    match e {
        ConnectError::InvalidUrl(_)
        | ConnectError::Moved(_)
        | ConnectError::Unsupported(_)
        | ConnectError::Http { status: 404, .. } => None,
        ConnectError::Http {
            status, message, ..
        } => {
            let status = status_line(*status);
            // Without a JSON body the message is the status text again.
            Some(if status.ends_with(message.as_str()) {
                format!("WebSocket refused ({status})")
            } else {
                format!("WebSocket refused ({status}: {message})")
            })
        }
        ConnectError::Unreachable(m) => Some(format!("WebSocket failed ({m})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_quotes_the_servers_refusal() {
        let e = ConnectError::Http {
            status: 426,
            code: Some("upgrade_required".into()),
            message: "this is not a WebSocket request".into(),
        };
        assert_eq!(
            fallback_reason(&e).unwrap(),
            "WebSocket refused (426 Upgrade Required: this is not a WebSocket request)"
        );
        let bare = ConnectError::Http {
            status: 400,
            code: None,
            message: "Bad Request".into(),
        };
        assert_eq!(
            fallback_reason(&bare).unwrap(),
            "WebSocket refused (400 Bad Request)"
        );
        let no_room = ConnectError::Http {
            status: 404,
            code: Some("unknown_room".into()),
            message: "no room `x`".into(),
        };
        assert_eq!(fallback_reason(&no_room), None);
        assert_eq!(
            fallback_reason(&ConnectError::Unreachable("timed out".into())).unwrap(),
            "WebSocket failed (timed out)"
        );
    }

    #[test]
    fn error_answers_read_in_the_servers_words() {
        let http = |body: &[u8]| match ConnectError::http(403, body) {
            ConnectError::Http { code, message, .. } => (code, message),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            http(br#"{"error":"banned","code":"forbidden"}"#),
            (Some("forbidden".into()), "banned".into())
        );
        assert_eq!(
            http(b"WebSocket upgrades are not allowed\n"),
            (None, "WebSocket upgrades are not allowed".into())
        );
        assert_eq!(
            http(b"<html><body>403</body></html>"),
            (None, "Forbidden".into())
        );
        assert_eq!(http(b"  "), (None, "Forbidden".into()));
        assert_eq!(http(&[0xff, 0xfe]), (None, "Forbidden".into()));
        // Nothing from the server reaches a terminal raw.
        assert_eq!(
            http(br#"{"error":"gone\u001b[2J\u001b]0;pwned\u0007 now","code":"x\u001b[1m"}"#),
            (Some("x".into()), "gone now".into())
        );
    }

    #[test]
    fn disconnects_read_as_words() {
        let r = |by, reason: &str| {
            Disconnect::Refused(Refusal {
                by,
                code: "invalid_token".into(),
                reason: reason.into(),
            })
            .to_string()
        };
        assert_eq!(
            r(RefusedBy::Http(401), "wrong token"),
            "refused (401 Unauthorized): wrong token"
        );
        assert_eq!(
            r(RefusedBy::Close(1008), ""),
            "closed by the server (code 1008, invalid_token)"
        );
        assert_eq!(
            Disconnect::ShuttingDown("bye".into()).to_string(),
            "server shutting down: bye"
        );
    }
}
