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
//! few helpers of warp's that the transport uses. The fan-out's door
//! answers handshakes itself below hyper ([`is_handshake`],
//! [`switching_protocols`]); the server frames it and the room build once
//! for every client ([`push_frame`], [`data_frame`], [`close_frame`]) and
//! the socket a player's frames are written to beside tungstenite
//! ([`SharedIo`], [`write_frame_vectored`]) are here too.

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, FrameHeader};
use tokio_tungstenite::tungstenite::{Utf8Bytes, protocol::frame::coding::CloseCode};
use warp::Filter;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

pub use tokio_tungstenite::tungstenite::{Error, Message};

/// Bytes read from the socket at a time. Client messages are tiny (inputs,
/// pings, chat); a larger message is read in several steps.
const READ_BUFFER: usize = 4 * 1024;

/// A request that asked for a WebSocket, ready to be answered.
pub struct Upgrade {
    key: String,
    on_upgrade: Option<OnUpgrade>,
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
                Ok(Upgrade { key, on_upgrade })
            },
        )
}

/// The configuration of every server WebSocket whose messages and frames
/// may be up to `max` bytes: small buffers (see the module docs), and
/// every send flushed at once (nothing to gather).
pub fn config(max: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// The `101` answer to a WebSocket handshake with `key`, whole.
pub fn switching_protocols(key: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
         sec-websocket-accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    )
    .into_bytes()
}

/// Whether the headers make a WebSocket handshake: `Connection: upgrade`,
/// `Upgrade: websocket`, version 13 and a key (the checks of
/// [`upgrade`]). `header` looks a header up by lowercase name.
pub fn is_handshake<'a>(header: impl Fn(&str) -> Option<&'a str>) -> bool {
    let has = |name: &str, token: &str| {
        header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    has("upgrade", "websocket")
        && has("connection", "upgrade")
        && header("sec-websocket-version").map(str::trim) == Some("13")
        && header("sec-websocket-key").is_some()
}

impl Upgrade {
    /// Answers `101 Switching Protocols` and runs `handler` on the
    /// connection once hyper hands it over (`ws::serve` makes it a
    /// WebSocket with [`config`]).
    pub fn on_upgrade<F, U>(self, handler: F) -> Response
    where
        F: FnOnce(TokioIo<Upgraded>) -> U + Send + 'static,
        U: Future<Output = ()> + Send + 'static,
    {
        let Some(on_upgrade) = self.on_upgrade else {
            return crate::http::error_reply(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "this connection cannot be upgraded to a WebSocket",
            );
        };
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => handler(TokioIo::new(upgraded)).await,
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

/// Appends one whole server frame (final, unmasked) with `opcode` and
/// `payload` to `out`. Server frames carry no mask, so these bytes are the
/// same for every client: the fan-out builds a tick's frame once per
/// format and writes it to every spectator as it is.
pub fn push_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    // Writing to a Vec cannot fail.
    let _ = header.format(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// The data opcode of `format`: text for JSON, binary for bincode.
pub fn data_opcode(format: protocol::Format) -> OpCode {
    match format {
        protocol::Format::Json => OpCode::Data(Data::Text),
        protocol::Format::Bincode => OpCode::Data(Data::Binary),
    }
}

/// One whole data frame of `payload` in `format`'s frame type.
pub fn data_frame(format: protocol::Format, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + 10);
    push_frame(&mut out, data_opcode(format), payload);
    out.into()
}

/// A whole close frame with `code` and `reason` (sanitised and cut to fit
/// a control frame, as every close this server sends).
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let reason = close_reason(reason);
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    let mut out = Vec::with_capacity(payload.len() + 2);
    push_frame(&mut out, OpCode::Control(Control::Close), &payload);
    out.into()
}

/// A close reason as the client may see it: it may quote what a client
/// sent, so it is sanitised, and it must fit a control frame (123 bytes).
pub fn close_reason(reason: &str) -> String {
    let mut s = protocol::text::sanitize_line(reason, 120);
    while s.len() > 120 {
        s.pop();
    }
    s
}

/// One socket shared by tungstenite (which reads it and writes control
/// frames and small messages) and the WebSocket shell's own vectored
/// writes of players' frames (`ws.rs`): each poll takes a lock that is
/// never held across an await. Both run in one task and every write is
/// finished (tungstenite's flushed) before the next starts, so the two
/// writers never interleave within a frame. A wrapper rather than a writer
/// of our own for everything: tungstenite keeps the reading, the close
/// handshake and the pongs it owes.
pub struct SharedIo<S>(std::sync::Arc<std::sync::Mutex<S>>);

impl<S> Clone for SharedIo<S> {
    fn clone(&self) -> Self {
        SharedIo(self.0.clone())
    }
}

impl<S> SharedIo<S> {
    /// Shares `io`.
    pub fn new(io: S) -> Self {
        SharedIo(std::sync::Arc::new(std::sync::Mutex::new(io)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, S> {
        // A socket's state is the kernel's: valid whatever a holder did.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for SharedIo<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.lock()).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for SharedIo<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut *self.lock()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut *self.lock()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.lock().is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.lock()).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.lock()).poll_shutdown(cx)
    }
}

/// Writes a whole data frame of `head` then `tail` to `io` with vectored
/// writes (one, unless the socket takes only part), copying neither.
pub async fn write_frame_vectored<S: tokio::io::AsyncWrite + Unpin>(
    io: &mut S,
    format: protocol::Format,
    head: &[u8],
    tail: &[u8],
) -> std::io::Result<()> {
    use std::io::IoSlice;
    let mut frame_head = Vec::with_capacity(10 + head.len());
    let header = FrameHeader {
        opcode: data_opcode(format),
        ..FrameHeader::default()
    };
    // Writing to a Vec cannot fail.
    let _ = header.format((head.len() + tail.len()) as u64, &mut frame_head);
    frame_head.extend_from_slice(head);
    let (mut a, mut b) = (&frame_head[..], tail);
    while !a.is_empty() || !b.is_empty() {
        let bufs = [IoSlice::new(a), IoSlice::new(b)];
        let n =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut *io).poll_write_vectored(cx, &bufs))
                .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let from_a = n.min(a.len());
        a = &a[from_a..];
        b = &b[n - from_a..];
    }
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *io).poll_flush(cx)).await
}
