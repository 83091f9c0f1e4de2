//! The WebSocket upgrade, done here rather than by `warp::ws` so the
//! server chooses tungstenite's buffer sizes: warp 0.4 exposes only the
//! message and write limits, and tungstenite's default 128 KiB read buffer
//! is zero-filled on every read, which made each idle WebSocket cost about
//! 140 KiB of resident memory (and every client frame a 128 KiB memset).
//!
//! [`upgrade`] is the filter (the same checks as `warp::ws()`: a GET with
//! `Connection: upgrade`, `Upgrade: websocket`, version 13 and a key; what
//! fails them is a [`NotUpgrade`] that says what was missing);
//! [`Upgrade::on_upgrade`] answers `101` and runs the handler on the
//! upgraded connection. [`MessageExt`] gives tungstenite's `Message` the
//! few helpers of warp's that the transport uses.

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Utf8Bytes, protocol::frame::coding::CloseCode};
use warp::Filter;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

pub use tokio_tungstenite::tungstenite::{Error, Message};

/// An upgraded WebSocket connection.
pub type WebSocket = WebSocketStream<TokioIo<Upgraded>>;

/// Bytes read from the socket at a time. Client messages are tiny (inputs,
/// pings, chat); a larger message is read in several steps.
const READ_BUFFER: usize = 4 * 1024;

/// A request that asked for a WebSocket, ready to be answered.
pub struct Upgrade {
    key: String,
    on_upgrade: Option<OnUpgrade>,
    config: WebSocketConfig,
}

/// Why a request to a WebSocket endpoint is not a WebSocket handshake, in
/// words for the client (a proxy on the way often drops the hop-by-hop
/// `Upgrade` and `Connection` headers).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotUpgrade {
    /// No `Upgrade: websocket` header.
    #[error(
        "this is a WebSocket endpoint, but the request has no 'Upgrade: websocket' header \
         (a proxy on the way may have removed it)"
    )]
    NoUpgradeHeader,
    /// No `Connection: upgrade` header.
    #[error(
        "this is a WebSocket endpoint, but the request's Connection header does not say \
         'upgrade' (a proxy on the way may have replaced it)"
    )]
    NoConnectionUpgrade,
    /// A WebSocket version other than 13.
    #[error("this server speaks WebSocket version 13 only (Sec-WebSocket-Version: 13)")]
    Version,
    /// No `Sec-WebSocket-Key`.
    #[error("the WebSocket handshake has no Sec-WebSocket-Key header")]
    NoKey,
}

impl NotUpgrade {
    /// The status that says it: `426 Upgrade Required` when the client
    /// could have upgraded (it did not ask, or asked for another version),
    /// `400` for a broken handshake.
    pub fn status(&self) -> StatusCode {
        match self {
            NotUpgrade::NoKey => StatusCode::BAD_REQUEST,
            _ => StatusCode::UPGRADE_REQUIRED,
        }
    }
}

/// Reads a WebSocket upgrade request: the same checks as `warp::ws()` (a
/// `Connection: upgrade`, `Upgrade: websocket`, version 13 and a key), but
/// a request that fails them gets [`NotUpgrade`], which says what was
/// missing, instead of a rejection.
pub fn upgrade() -> impl Filter<Extract = (Result<Upgrade, NotUpgrade>,), Error = Infallible> + Clone
{
    let h = |name: &'static str| {
        warp::header::optional::<String>(name)
            .or(warp::any().map(|| None))
            .unify()
    };
    h("connection")
        .and(h("upgrade"))
        .and(h("sec-websocket-version"))
        .and(h("sec-websocket-key"))
        .and(warp::ext::optional::<OnUpgrade>())
        .map(
            |connection: Option<String>,
             upgrade: Option<String>,
             version: Option<String>,
             key: Option<String>,
             on_upgrade: Option<OnUpgrade>| {
                let upgrade_ok = upgrade.is_some_and(|u| {
                    u.split(',')
                        .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
                });
                if !upgrade_ok {
                    return Err(NotUpgrade::NoUpgradeHeader);
                }
                let connection_ok = connection.is_some_and(|c| {
                    c.split(',')
                        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
                });
                if !connection_ok {
                    return Err(NotUpgrade::NoConnectionUpgrade);
                }
                if version.as_deref().map(str::trim) != Some("13") {
                    return Err(NotUpgrade::Version);
                }
                let key = key.ok_or(NotUpgrade::NoKey)?;
                Ok(Upgrade {
                    key,
                    on_upgrade,
                    config: WebSocketConfig::default()
                        .read_buffer_size(READ_BUFFER)
                        // Every send is flushed at once: nothing to gather.
                        .write_buffer_size(0),
                })
            },
        )
}

impl Upgrade {
    /// Largest message a client may send, in bytes.
    pub fn max_message_size(mut self, max: usize) -> Self {
        self.config = self.config.max_message_size(Some(max));
        self
    }

    /// Largest frame a client may send, in bytes.
    pub fn max_frame_size(mut self, max: usize) -> Self {
        self.config = self.config.max_frame_size(Some(max));
        self
    }

    /// Answers `101 Switching Protocols` and runs `handler` on the
    /// connection once hyper hands it over.
    pub fn on_upgrade<F, U>(self, handler: F) -> Response
    where
        F: FnOnce(WebSocket) -> U + Send + 'static,
        U: Future<Output = ()> + Send + 'static,
    {
        let Some(on_upgrade) = self.on_upgrade else {
            return crate::http::error_reply(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "this connection cannot be upgraded to a WebSocket",
            );
        };
        let config = self.config;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let io = TokioIo::new(upgraded);
                    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                    handler(ws).await;
                }
                Err(e) => tracing::debug!("websocket upgrade failed: {e}"),
            }
        });
        let mut r = Response::new(Bytes::new().into());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = r.headers_mut();
        h.insert("connection", HeaderValue::from_static("upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(self.key.as_bytes())) {
            h.insert("sec-websocket-accept", accept);
        }
        r
    }
}

/// The helpers of warp's `Message` that the transport uses.
pub trait MessageExt: Sized {
    /// A close frame with a code and a reason.
    fn close_with(code: u16, reason: impl Into<Utf8Bytes>) -> Self;
    /// A ping with `payload`.
    fn ping(payload: Bytes) -> Self;
    /// The payload bytes (empty for a close).
    fn as_bytes(&self) -> &[u8];
}

impl MessageExt for Message {
    fn close_with(code: u16, reason: impl Into<Utf8Bytes>) -> Self {
        Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        }))
    }

    fn ping(payload: Bytes) -> Self {
        Message::Ping(payload)
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(s) => s.as_bytes(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b,
            Message::Close(_) => &[],
            Message::Frame(f) => f.payload(),
        }
    }
}

/// A text frame of bytes that are UTF-8 by construction (JSON encodings),
/// sharing them instead of copying them into a `String`.
pub fn text_frame(json: Bytes) -> Message {
    // The clone only bumps a reference count.
    match Utf8Bytes::try_from(json.clone()) {
        Ok(s) => Message::Text(s),
        // Unreachable for serde_json output; never send invalid text.
        Err(_) => Message::text(String::from_utf8_lossy(&json).into_owned()),
    }
}
