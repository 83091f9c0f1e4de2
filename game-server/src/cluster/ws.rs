//! WebSocket spectators of a room this node does not own, served from its
//! mirror (`GET /rooms/{room}/ws?role=spectator` on an edge).
//!
//! The shell reaches its room only through [`WsRoom`]: a welcome, a
//! keyframe of now and a ring of frames encoded once per tick and format
//! (shared by every spectator, never encoded per spectator), a keyframe
//! again after a lag, and why the stream ended. So it can move onto a
//! WebSocket fan-out as it is. The rules a client meets are the
//! single-node ones: the hello (its format, its version) and its timeout,
//! the rate limit, `ping` answered with `pong` (the lag panel's RTT),
//! `resync`, server pings and the idle timeout, and close codes that fit
//! the reason. A hello that says `player` is refused in words naming the
//! room's node, where it can play.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use protocol::codec::{decode, encode};
use protocol::{ClientMsg, ErrorMsg, Format, Role, ServerMsg, Welcome};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{Instrument, debug};

use super::directory::Owner;
use crate::conn::{Action, Connection, Ending, Now, Refusal};
use crate::limits::counters::bump;
use crate::limits::{Counters, Limits};
use crate::metrics::{ConnMetrics, RoomMetrics};
use crate::room::RoomCmd;
use crate::session::AdmitError;
use crate::upgrade::{Message, MessageExt, WebSocket, text_frame};

/// How long the close frame of a shutdown may take to go out to a client
/// that does not read.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// One message of a room's WebSocket spectators' ring, in one format.
#[derive(Clone, Debug)]
pub struct WsChunk {
    /// The room's tick it belongs to.
    pub tick: u64,
    /// The encoded message (a `tick`, `snapshot` or `chat`).
    pub bytes: Bytes,
    /// When it went on the ring (for the send latency metric).
    pub produced: Instant,
}

/// A WebSocket spectator that joined: its welcome, a keyframe of the
/// world now, and the ring of what follows it.
#[derive(Debug)]
pub struct WsWatching {
    /// A spectator's welcome (no player id).
    pub welcome: Welcome,
    /// `snapshot` of the world now, in the spectator's format.
    pub keyframe: Bytes,
    /// The ring of the spectator's format, from the tick after the keyframe.
    pub live: broadcast::Receiver<WsChunk>,
}

/// What a WebSocket spectator needs of its room. `None`: it has closed.
pub trait WsRoom: Send + Sync + 'static {
    /// Joins as a spectator whose frames are in `format`.
    fn watch(&self, format: Format) -> impl Future<Output = Option<WsWatching>> + Send;
    /// A keyframe of now and the ring from the tick after it, for a
    /// spectator that fell a ring behind or asked (`resync`).
    fn rewatch(
        &self,
        format: Format,
    ) -> impl Future<Output = Option<(Bytes, broadcast::Receiver<WsChunk>)>> + Send;
    /// Why the stream ends when the room drops its ring.
    fn farewell(&self) -> ErrorMsg;
}

/// What a spectator's socket needs besides its room.
pub struct WsSpectatorContext {
    /// The room's id, for words and the log.
    pub room: String,
    /// Where the room is played (a player is sent there, in words).
    pub owner: Owner,
    /// Turns true when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Sizes, rates and timeouts.
    pub limits: Arc<Limits>,
    /// How often each limit bit.
    pub counters: Arc<Counters>,
    /// The client's address, for the log.
    pub peer: Option<SocketAddr>,
    /// This connection's gauge and send counters.
    pub metrics: ConnMetrics,
    /// The room's resyncs and drops.
    pub room_metrics: RoomMetrics,
}

/// Close codes (RFC 6455).
mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    pub const UNSUPPORTED: u16 = 1003;
    pub const INVALID: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
}

type Sink = SplitSink<WebSocket, Message>;

/// Serves one upgraded WebSocket spectator of `room` until it closes.
pub async fn serve(socket: WebSocket, room: impl WsRoom, ctx: WsSpectatorContext) {
    let span = tracing::info_span!("ws_spectator", room = %ctx.room, peer = tracing::field::Empty);
    if let Some(peer) = ctx.peer {
        span.record("peer", tracing::field::display(peer));
    }
    serve_inner(socket, room, ctx).instrument(span).await;
}

fn frame(format: Format, bytes: Bytes) -> Message {
    match format {
        Format::Bincode => Message::binary(bytes),
        // The shared bytes themselves: no copy per spectator.
        Format::Json => text_frame(bytes),
    }
}

async fn send_msg(tx: &mut Sink, format: Format, msg: &ServerMsg) -> bool {
    tx.send(frame(format, encode(format, msg))).await.is_ok()
}

/// Close reasons fit a control frame (123 bytes) and are sanitised: they
/// may quote what the client sent.
async fn close_with(tx: &mut Sink, code: u16, reason: &str) {
    let mut s = protocol::text::sanitize_line(reason, 120);
    while s.len() > 120 {
        s.pop();
    }
    let _ = tx.send(Message::close_with(code, s)).await;
}

/// An `error` message saying why, then a close with `code`.
async fn refuse(tx: &mut Sink, format: Format, code: u16, why: ErrorMsg) {
    let message = protocol::text::sanitize_line(&why.message, 300);
    let _ = send_msg(
        tx,
        format,
        &ServerMsg::Error(ErrorMsg {
            code: why.code,
            message: message.clone(),
        }),
    )
    .await;
    close_with(tx, code, &message).await;
}

/// The close code that says `r` on a WebSocket (as on a room's own).
fn close_code(r: &Refusal) -> u16 {
    match r {
        Refusal::NotHello | Refusal::Version { .. } => close::PROTOCOL,
        Refusal::BadHello(_) => close::INVALID,
        Refusal::ShuttingDown => close::GOING_AWAY,
        Refusal::Admit(AdmitError::RoomFull(_) | AdmitError::UnknownSession)
        | Refusal::Flood { .. } => close::POLICY,
    }
}

async fn refuse_with(tx: &mut Sink, format: Format, r: &Refusal) {
    let why = ErrorMsg {
        code: r.code().into(),
        message: r.to_string(),
    };
    refuse(tx, format, close_code(r), why).await;
}

/// The close code of a receive error (`None`: the connection itself
/// failed, nobody to tell), counted.
async fn close_after_error(tx: &mut Sink, e: &crate::upgrade::Error, ctx: &WsSpectatorContext) {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    let code = match e {
        WsError::Capacity(_) => close::TOO_BIG,
        WsError::Utf8(_) => close::INVALID,
        WsError::Io(_)
        | WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            debug!(error = %e, "connection lost");
            return;
        }
        _ => close::PROTOCOL,
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
    close_with(tx, code, &reason).await;
}

/// The words a player gets on a spectators-only socket.
fn players_elsewhere(ctx: &WsSpectatorContext) -> ErrorMsg {
    let room = protocol::text::sanitize_line(&ctx.room, 40);
    let url = protocol::text::sanitize_line(&ctx.owner.url, 200);
    ErrorMsg {
        code: "elsewhere".into(),
        message: format!(
            "this socket (?role=spectator) serves spectators only; room {room:?} is played \
             on node {} at {url}: play at {url}/rooms/{room}/ws",
            protocol::text::sanitize_line(&ctx.owner.node, 64)
        ),
    }
}

/// Reads the hello; a spectator's gets its format.
async fn hello(
    tx: &mut Sink,
    rx: &mut SplitStream<WebSocket>,
    ctx: &WsSpectatorContext,
) -> Option<Format> {
    let first = match tokio::time::timeout(ctx.limits.ws_hello_timeout, rx.next()).await {
        Err(_) => {
            bump(&ctx.counters.ws_hello_timeouts);
            let secs = ctx.limits.ws_hello_timeout.as_secs_f64();
            close_with(tx, close::POLICY, &format!("no hello within {secs} s")).await;
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
    match crate::conn::on_hello(format, first.as_bytes()) {
        Ok(h) if h.role == Role::Spectator => Some(format),
        Ok(_) => {
            debug!("a player on a spectators' socket: refused");
            refuse(tx, format, close::POLICY, players_elsewhere(ctx)).await;
            None
        }
        Err(r) => {
            if !matches!(r, Refusal::Version { .. }) {
                bump(&ctx.counters.ws_bad_frames);
            }
            refuse_with(tx, format, &r).await;
            None
        }
    }
}

async fn serve_inner(socket: WebSocket, room: impl WsRoom, ctx: WsSpectatorContext) {
    let (mut tx, mut rx) = socket.split();
    let Some(format) = hello(&mut tx, &mut rx, &ctx).await else {
        return;
    };
    let Some(joined) = room.watch(format).await else {
        refuse_with(&mut tx, format, &Refusal::ShuttingDown).await;
        return;
    };
    debug!(?format, "websocket spectator of a mirror");
    let welcome = ServerMsg::Welcome(Box::new(joined.welcome));
    if !send_msg(&mut tx, format, &welcome).await {
        return;
    }
    ctx.metrics.sent.frames.inc();
    ctx.metrics.sent.bytes.inc_by(joined.keyframe.len() as u64);
    if tx.send(frame(format, joined.keyframe)).await.is_err() {
        return;
    }
    let mut s = Spectator {
        tx,
        format,
        live: joined.live,
        conn: Connection::new(
            0,
            true,
            ctx.limits.clone(),
            ctx.counters.clone(),
            std::time::Instant::now(),
        ),
    };
    s.run(&room, &mut rx, &ctx).await;
}

/// What the session loop does next.
enum Next {
    Continue,
    Stop,
}

struct Spectator {
    tx: Sink,
    format: Format,
    live: broadcast::Receiver<WsChunk>,
    /// The rules every transport's client meets (rate limit, ping, resync).
    conn: Connection,
}

impl Spectator {
    async fn run(
        &mut self,
        room: &impl WsRoom,
        rx: &mut SplitStream<WebSocket>,
        ctx: &WsSpectatorContext,
    ) {
        let mut shutdown = ctx.shutdown.clone();
        let mut last_heard = Instant::now();
        let every = ctx.limits.ws_ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + every, every);
        loop {
            tokio::select! {
                biased;
                _ = crate::clock::until_shutdown(&mut shutdown) => {
                    self.shutting_down().await;
                    return;
                }
                r = self.live.recv() => match r {
                    Ok(chunk) => {
                        let len = chunk.bytes.len();
                        ctx.metrics.sent.depth.observe_int(self.live.len() as u64 + 1);
                        if self.tx.send(frame(self.format, chunk.bytes)).await.is_err() {
                            return;
                        }
                        ctx.metrics.sent.sent(1, len, chunk.produced);
                    }
                    Err(RecvError::Lagged(missed)) => {
                        ctx.room_metrics.resyncs.inc();
                        ctx.room_metrics.dropped.inc_by(missed);
                        if let Next::Stop = self.resync(room, ctx).await {
                            return;
                        }
                    }
                    // The ring ended: the server shutting down (the flag
                    // itself says so: the shutdown branch above can lose
                    // to this one once the task has spent tokio's
                    // cooperative budget), or the mirror's reason.
                    Err(RecvError::Closed) => {
                        if *shutdown.borrow() {
                            self.shutting_down().await;
                        } else {
                            refuse(&mut self.tx, self.format, close::GOING_AWAY, room.farewell()).await;
                        }
                        return;
                    }
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() >= ctx.limits.ws_idle_timeout {
                        bump(&ctx.counters.ws_idle_timeouts);
                        let reason = format!("idle for {} s", ctx.limits.ws_idle_timeout.as_secs_f64());
                        close_with(&mut self.tx, close::POLICY, &reason).await;
                        return;
                    }
                    if self.tx.send(Message::ping(Bytes::new())).await.is_err() {
                        return;
                    }
                }
                incoming = rx.next() => {
                    let m = match incoming {
                        None => return,
                        Some(Err(e)) => {
                            close_after_error(&mut self.tx, &e, ctx).await;
                            return;
                        }
                        Some(Ok(m)) => m,
                    };
                    last_heard = Instant::now();
                    if let Next::Stop = self.on_frame(room, ctx, m).await {
                        return;
                    }
                }
            }
        }
    }

    async fn shutting_down(&mut self) {
        let reason = Refusal::ShuttingDown.to_string();
        let bye = close_with(&mut self.tx, close::GOING_AWAY, &reason);
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, bye).await;
    }

    /// A keyframe of now, and the ring from the tick after it.
    async fn resync(&mut self, room: &impl WsRoom, ctx: &WsSpectatorContext) -> Next {
        let Some((keyframe, live)) = room.rewatch(self.format).await else {
            refuse(
                &mut self.tx,
                self.format,
                close::GOING_AWAY,
                room.farewell(),
            )
            .await;
            return Next::Stop;
        };
        self.live = live;
        ctx.metrics.sent.frames.inc();
        ctx.metrics.sent.bytes.inc_by(keyframe.len() as u64);
        if self.tx.send(frame(self.format, keyframe)).await.is_err() {
            return Next::Stop;
        }
        Next::Continue
    }

    /// One frame from the client: the rate limit (every frame counts),
    /// then the message, as on a room's own WebSocket.
    async fn on_frame(&mut self, room: &impl WsRoom, ctx: &WsSpectatorContext, m: Message) -> Next {
        if m.is_close() {
            return Next::Stop;
        }
        let now = Now::real();
        match self.conn.admit(now.at) {
            Ok(true) => {}
            Ok(false) => return Next::Continue,
            Err(ended) => return self.end(ended.why).await,
        }
        if m.is_ping() || m.is_pong() {
            return Next::Continue;
        }
        let right_type = match self.format {
            Format::Json => m.is_text(),
            Format::Bincode => m.is_binary(),
        };
        if !right_type {
            bump(&ctx.counters.ws_bad_frames);
            let reason = "frame type differs from the hello's (text = JSON, binary = bincode)";
            close_with(&mut self.tx, close::UNSUPPORTED, reason).await;
            return Next::Stop;
        }
        let msg = match decode::<ClientMsg>(self.format, m.as_bytes()) {
            Ok(msg) => msg,
            Err(e) => {
                bump(&ctx.counters.ws_bad_frames);
                close_with(&mut self.tx, close::INVALID, &e.to_string()).await;
                return Next::Stop;
            }
        };
        match self.conn.on_message(now, msg) {
            None => Next::Continue,
            Some(Action::Room(RoomCmd::Resync { .. })) => self.resync(room, ctx).await,
            // Chat (what else a spectator sends a room) is not relayed
            // to the room's node.
            Some(Action::Room(_)) => {
                let words = ErrorMsg {
                    code: "elsewhere".into(),
                    message: format!(
                        "chat is not relayed from this node: chat on node {} at {}",
                        protocol::text::sanitize_line(&ctx.owner.node, 64),
                        protocol::text::sanitize_line(&ctx.owner.url, 200)
                    ),
                };
                self.reply(&ServerMsg::Error(words)).await
            }
            Some(Action::Reply(reply)) => self.reply(&reply).await,
            Some(Action::End(ended)) => self.end(ended.why).await,
        }
    }

    async fn reply(&mut self, msg: &ServerMsg) -> Next {
        if send_msg(&mut self.tx, self.format, msg).await {
            Next::Continue
        } else {
            Next::Stop
        }
    }

    async fn end(&mut self, why: Ending) -> Next {
        match why {
            Ending::Left => close_with(&mut self.tx, close::NORMAL, "left").await,
            Ending::Refused(r) => refuse_with(&mut self.tx, self.format, &r).await,
        }
        Next::Stop
    }
}
