//! The WebSocket transport: a thin shell around [`crate::conn`]. It reads
//! frames, checks what only a WebSocket has (frame types, close frames,
//! pings, the idle and hello timeouts), hands client messages to the
//! session's [`Connection`] and carries out its actions: commands to the
//! room, replies and the room's frames to the socket, a close with a code
//! that fits the reason. The rules themselves (hello, rate limits, what a
//! message does) are the connection's; the room owns players and frames.
//!
//! It serves players (and what the fan-out's door does not take: a
//! spectator resuming with a token, a refused or hostile hello) over any
//! socket ([`Io`]): a hyper upgrade, or the door's own. The room's frames
//! are written beside tungstenite, not through it: a player's tick is its
//! `ack` head and the room's shared tail (`outbox::Queued`), written in one
//! vectored write on the same socket (`upgrade::SharedIo`), after
//! tungstenite flushed what it had pending, so nothing shared is copied
//! per player. Tungstenite keeps the reading, pongs and closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use protocol::codec::{decode, encode};
use protocol::{ClientMsg, Format, ServerMsg};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{Instrument, debug, field, info_span};

use crate::conn::{Action, Connection, Ended, Ending, Now, Refusal};
use crate::limits::counters::bump;
use crate::limits::{Counters, Limits};
use crate::metrics::Transport;
use crate::room::RoomHandle;
use crate::session::AdmitError;
use crate::upgrade::{Message, MessageExt, SharedIo, text_frame, write_frame_vectored};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

/// How long the close frame of a shutdown may take to go out to a client
/// that does not read, so it cannot hold the shutdown up.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// What a WebSocket session needs besides its socket and room.
#[derive(Clone, Debug)]
pub struct WsContext {
    /// Turns true when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Sizes, rates and timeouts.
    pub limits: Arc<Limits>,
    /// How often each limit bit.
    pub counters: Arc<Counters>,
    /// The client's address, for the session's log span.
    pub peer: Option<SocketAddr>,
}

/// Close codes (RFC 6455).
pub(crate) mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    pub const UNSUPPORTED: u16 = 1003;
    pub const INVALID: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
}

/// The close code that says `r` on a WebSocket.
pub(crate) fn close_code(r: &Refusal) -> u16 {
    match r {
        Refusal::NotHello | Refusal::Version { .. } => close::PROTOCOL,
        Refusal::BadHello(_) => close::INVALID,
        Refusal::ShuttingDown => close::GOING_AWAY,
        Refusal::Admit(AdmitError::RoomFull(_) | AdmitError::UnknownSession)
        | Refusal::Flood { .. } => close::POLICY,
    }
}

/// What a WebSocket runs over: an upgraded hyper connection, or a socket
/// the fan-out's door answered itself (`fanout::door`).
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Io for T {}

type Sink<S> = futures_util::stream::SplitSink<WebSocketStream<S>, Message>;
type Source<S> = futures_util::stream::SplitStream<WebSocketStream<S>>;

fn frame(format: Format, bytes: bytes::Bytes) -> Message {
    match format {
        Format::Bincode => Message::binary(bytes),
        // The shared bytes themselves: no copy per subscriber.
        Format::Json => text_frame(bytes),
    }
}

async fn send_msg<S: Io>(tx: &mut Sink<S>, format: Format, msg: &ServerMsg) -> bool {
    tx.send(frame(format, encode(format, msg))).await.is_ok()
}

/// Tells the client why in an `error` message, then closes with the code
/// that fits.
async fn refuse<S: Io>(tx: &mut Sink<S>, format: Format, r: &Refusal) {
    // Messages may quote what the client sent (a decode error names it).
    let message = protocol::text::sanitize_line(&r.to_string(), 300);
    let _ = send_msg(tx, format, &crate::conn::error(r.code(), message.clone())).await;
    close_with(tx, close_code(r), message).await;
}

/// Close reasons must fit a control frame (123 bytes), and are sanitised:
/// they may quote what the client sent.
async fn close_with<S: Io>(tx: &mut Sink<S>, code: u16, reason: impl Into<String>) {
    let s = crate::upgrade::close_reason(&reason.into());
    let _ = tx.send(Message::close_with(code, s)).await;
}

/// Serves one WebSocket for `room` over `io` (its handshake answered)
/// until it closes; `read` are bytes already read from it (the fan-out's
/// door read the hello), which tungstenite reads again first.
pub async fn serve<S: Io>(io: S, read: Vec<u8>, room: RoomHandle, ctx: WsContext) {
    let span = info_span!(
        "ws",
        room = %room.config.id,
        peer = field::Empty,
        player = field::Empty,
        session = field::Empty,
    );
    if let Some(peer) = ctx.peer {
        span.record("peer", field::display(peer));
    }
    let io = SharedIo::new(io);
    let config = crate::upgrade::config(ctx.limits.ws_max_message);
    let socket = WebSocketStream::from_partially_read(io.clone(), read, Role::Server, Some(config))
        .instrument(span.clone())
        .await;
    serve_inner(socket, io, room, ctx).instrument(span).await;
}

/// Closes after a receive error, with the code that fits it, and counts it.
async fn close_after_error<S: Io>(tx: &mut Sink<S>, e: &crate::upgrade::Error, ctx: &WsContext) {
    let Some(code) = error_close_code(e) else {
        // The connection itself failed (reset, gone): nobody to tell.
        debug!(error = %e, "connection lost");
        return;
    };
    let reason = if code == close::TOO_BIG {
        bump(&ctx.counters.ws_oversize);
        format!(
            "message over the limit of {} bytes",
            ctx.limits.ws_max_message
        )
    } else {
        bump(&ctx.counters.ws_bad_frames);
        e.to_string()
    };
    debug!(code, %reason, "closing after a bad frame");
    close_with(tx, code, reason).await;
}

/// Reads the hello (in the format of its frame) and joins the room.
async fn open<S: Io>(
    tx: &mut Sink<S>,
    rx: &mut Source<S>,
    room: &RoomHandle,
    ctx: &WsContext,
) -> Option<(Format, crate::room::Joined)> {
    let first = match tokio::time::timeout(ctx.limits.ws_hello_timeout, rx.next()).await {
        Err(_) => {
            bump(&ctx.counters.ws_hello_timeouts);
            debug!("no hello in time: closing");
            let secs = ctx.limits.ws_hello_timeout.as_secs_f64();
            close_with(tx, close::POLICY, format!("no hello within {secs} s")).await;
            return None;
        }
        Ok(None) => return None,
        Ok(Some(Err(e))) => {
            close_after_error(tx, &e, ctx).await;
            return None;
        }
        Ok(Some(Ok(m))) => m,
    };
    let format = if first.is_binary() {
        Format::Bincode
    } else if first.is_text() {
        Format::Json
    } else {
        bump(&ctx.counters.ws_bad_frames);
        close_with(tx, close::PROTOCOL, "the first frame must be a hello").await;
        return None;
    };
    let joined = match crate::conn::on_hello(format, first.as_bytes()) {
        Ok(hello) => Refusal::of_join(room.join(hello, format).await),
        Err(r) => {
            if !matches!(r, Refusal::Version { .. }) {
                bump(&ctx.counters.ws_bad_frames);
            }
            Err(r)
        }
    };
    match joined {
        Ok(j) => Some((format, j)),
        Err(r) => {
            refuse(tx, format, &r).await;
            None
        }
    }
}

async fn serve_inner<S: Io>(
    socket: WebSocketStream<SharedIo<S>>,
    mut io: SharedIo<S>,
    room: RoomHandle,
    ctx: WsContext,
) {
    let (mut tx, mut rx) = socket.split();
    // 1. hello, then the welcome.
    let Some((format, joined)) = open(&mut tx, &mut rx, &room, &ctx).await else {
        return;
    };
    let span = tracing::Span::current();
    if let Some(id) = joined.welcome.player_id {
        span.record("player", id);
        span.record("session", joined.welcome.session.as_str());
    }
    let spectator = joined.welcome.player_id.is_none();
    let mut conn = Connection::new(
        joined.sub,
        spectator,
        ctx.limits.clone(),
        ctx.counters.clone(),
        std::time::Instant::now(),
    );
    // The name is the room's sanitised one, never the hello's.
    debug!(sub = joined.sub, name = %joined.welcome.name, resumed = joined.welcome.resumed, "session open");
    let welcome = ServerMsg::Welcome(Box::new(joined.welcome));
    if send_msg(&mut tx, format, &welcome).await {
        // 2. the session: frames out, messages in, pings, idle timeout, shutdown.
        let frames = Frames {
            outbox: &joined.outbox,
            io: &mut io,
        };
        run(&mut tx, &mut rx, frames, &room, &ctx, format, &mut conn).await;
    }
    if let Some(cmd) = conn.detach() {
        room.send(cmd).await;
    }
    debug!(sub = conn.sub(), "session closed");
}

/// What the session loop does after a frame came in.
enum Next {
    Continue,
    Stop,
}

/// The room's frames for this session: where they queue, and the socket
/// they are written to directly (by vectored writes, beside tungstenite).
struct Frames<'a, S> {
    outbox: &'a crate::outbox::Outbox,
    io: &'a mut SharedIo<S>,
}

async fn run<S: Io>(
    tx: &mut Sink<SharedIo<S>>,
    rx: &mut Source<SharedIo<S>>,
    frames: Frames<'_, S>,
    room: &RoomHandle,
    ctx: &WsContext,
    format: Format,
    conn: &mut Connection,
) {
    let Frames { outbox, io } = frames;
    let metrics = room.metrics.conn(Transport::Ws, &room.config.id);
    let mut shutdown = ctx.shutdown.clone();
    let mut last_heard = Instant::now();
    let every = ctx.limits.ws_ping_interval;
    let mut ping = tokio::time::interval_at(Instant::now() + every, every);
    loop {
        tokio::select! {
            // Shutdown first: the room closing our outbox during a shutdown
            // must still read as "server shutting down".
            biased;
            _ = crate::clock::until_shutdown(&mut shutdown) => {
                let bye = close_with(tx, close::GOING_AWAY, Refusal::ShuttingDown.to_string());
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, bye).await;
                return;
            }
            out = outbox.pop_queued() => match out {
                Some((q, behind)) => {
                    let len = q.head.len() + q.bytes.len();
                    metrics.sent.depth.observe_int(behind as u64 + 1);
                    // The player's ack head and the room's shared tail in
                    // one vectored write, after whatever tungstenite has
                    // pending (a pong it owes): no copy of the tail.
                    if tx.flush().await.is_err()
                        || write_frame_vectored(io, format, &q.head, &q.bytes).await.is_err()
                    {
                        return;
                    }
                    metrics.sent.sent(1, len, q.produced);
                }
                // The room closed our outbox: replaced by a resume elsewhere, or shutting down.
                // The reason comes from the flag itself, not from which branch won, so it
                // is right whatever woke the task. (Not tokio's cooperative budget, as once
                // thought: tokio 1.54's `select!` answers Pending as a whole once the budget
                // is spent, so a `biased` shutdown branch cannot lose to it that way.)
                None => {
                    let reason = if *shutdown.borrow() {
                        Refusal::ShuttingDown.to_string()
                    } else {
                        "session taken over or room closed".to_string()
                    };
                    close_with(tx, close::GOING_AWAY, reason).await;
                    return;
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() >= ctx.limits.ws_idle_timeout {
                    bump(&ctx.counters.ws_idle_timeouts);
                    debug!("idle: closing");
                    let reason = format!("idle for {} s", ctx.limits.ws_idle_timeout.as_secs_f64());
                    close_with(tx, close::POLICY, reason).await;
                    return;
                }
                if tx.send(Message::ping(bytes::Bytes::new())).await.is_err() {
                    return;
                }
            }
            incoming = rx.next() => {
                let m = match incoming {
                    None => return,
                    Some(Err(e)) => {
                        close_after_error(tx, &e, ctx).await;
                        return;
                    }
                    Some(Ok(m)) => m,
                };
                last_heard = Instant::now();
                if let Next::Stop = on_frame(tx, room, ctx, format, conn, m).await {
                    return;
                }
            }
        }
    }
}

/// One frame from the client: the rate limit (every frame counts, pings
/// too: a flood of anything costs the same), then the message.
async fn on_frame<S: Io>(
    tx: &mut Sink<S>,
    room: &RoomHandle,
    ctx: &WsContext,
    format: Format,
    conn: &mut Connection,
    m: Message,
) -> Next {
    if m.is_close() {
        return Next::Stop;
    }
    let now = Now::real();
    match conn.admit(now.at) {
        Ok(true) => {}
        Ok(false) => return Next::Continue,
        Err(ended) => return end(tx, room, format, ended).await,
    }
    if m.is_ping() || m.is_pong() {
        return Next::Continue;
    }
    let right_type = match format {
        Format::Json => m.is_text(),
        Format::Bincode => m.is_binary(),
    };
    if !right_type {
        bump(&ctx.counters.ws_bad_frames);
        let reason = "frame type differs from the hello's (text = JSON, binary = bincode)";
        close_with(tx, close::UNSUPPORTED, reason).await;
        return Next::Stop;
    }
    let msg = match decode::<ClientMsg>(format, m.as_bytes()) {
        Ok(msg) => msg,
        Err(e) => {
            bump(&ctx.counters.ws_bad_frames);
            close_with(tx, close::INVALID, e.to_string()).await;
            return Next::Stop;
        }
    };
    match conn.on_message(now, msg) {
        None => Next::Continue,
        Some(Action::Room(cmd)) => {
            room.try_send(cmd);
            Next::Continue
        }
        Some(Action::Reply(reply)) => {
            if send_msg(tx, format, &reply).await {
                Next::Continue
            } else {
                Next::Stop
            }
        }
        Some(Action::End(ended)) => end(tx, room, format, ended).await,
    }
}

/// Ends the session: the room hears first (a client that rejoins after
/// seeing the close finds its name free), then the client.
async fn end<S: Io>(tx: &mut Sink<S>, room: &RoomHandle, format: Format, ended: Ended) -> Next {
    room.send(ended.cmd).await;
    match ended.why {
        Ending::Left => close_with(tx, close::NORMAL, "left").await,
        Ending::Refused(r) => refuse(tx, format, &r).await,
    }
    Next::Stop
}

/// The close code for a receive error: oversize is 1009, text that is not
/// UTF-8 1007, anything else the client sent wrong (a broken frame) 1002;
/// `None` when the connection itself failed.
fn error_close_code(e: &crate::upgrade::Error) -> Option<u16> {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match e {
        WsError::Capacity(_) => Some(close::TOO_BIG),
        WsError::Utf8(_) => Some(close::INVALID),
        WsError::Io(_)
        | WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        _ => Some(close::PROTOCOL),
    }
}
