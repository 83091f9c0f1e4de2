//! The WebSocket transport: a thin shell that moves a room's frames to the
//! socket and client messages into the room. All session rules live in the
//! room and [`crate::session`]; the limits a client can hit here (size,
//! rate, hello and idle timeouts) are in [`crate::limits`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::upgrade::{Message, MessageExt, WebSocket, text_frame};
use futures_util::{SinkExt, StreamExt};
use protocol::codec::{decode, encode};
use protocol::{ClientMsg, ErrorMsg, Format, PROTOCOL_VERSION, Pong, ServerMsg};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{Instrument, debug, field, info_span};

use crate::clock::now_us;
use crate::limits::counters::bump;
use crate::limits::{Counters, Limits, Verdict};
use crate::metrics::Transport;
use crate::room::{RoomCmd, RoomHandle};
use crate::session::AdmitError;

/// How long the close frame of a shutdown may take to go out to a client
/// that does not read, so it cannot hold the shutdown up.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// What a WebSocket session needs besides its socket and room.
#[derive(Clone, Debug)]
pub struct WsContext {
    pub shutdown: watch::Receiver<bool>,
    pub limits: Arc<Limits>,
    pub counters: Arc<Counters>,
    /// The client's address, for the session's log span.
    pub peer: Option<SocketAddr>,
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

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

fn frame(format: Format, bytes: bytes::Bytes) -> Message {
    match format {
        Format::Bincode => Message::binary(bytes),
        // The shared bytes themselves: no copy per subscriber.
        Format::Json => text_frame(bytes),
    }
}

async fn send_msg(tx: &mut Sink, format: Format, msg: &ServerMsg) -> bool {
    tx.send(frame(format, encode(format, msg))).await.is_ok()
}

async fn refuse(tx: &mut Sink, format: Format, code: &str, message: String, close_code: u16) {
    // Messages may quote what the client sent (a decode error names it).
    let message = protocol::text::sanitize_line(&message, 300);
    let err = ServerMsg::Error(ErrorMsg {
        code: code.into(),
        message: message.clone(),
    });
    let _ = send_msg(tx, format, &err).await;
    let _ = tx
        .send(Message::close_with(close_code, truncate_reason(message)))
        .await;
}

/// Close reasons must fit a control frame (123 bytes), and are sanitised:
/// they may quote what the client sent.
fn truncate_reason(s: String) -> String {
    let mut s = protocol::text::sanitize_line(&s, 120);
    while s.len() > 120 {
        s.pop();
    }
    s
}

/// Serves one upgraded WebSocket for `room` until it closes.
pub async fn serve(socket: WebSocket, room: RoomHandle, ctx: WsContext) {
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
    serve_inner(socket, room, ctx).instrument(span).await;
}

/// Closes after a receive error, with the code that fits it, and counts it.
async fn close_after_error(
    tx: &mut Sink,
    e: &crate::upgrade::Error,
    counters: &Counters,
    limit: usize,
) {
    let Some(code) = error_close_code(e) else {
        // The connection itself failed (reset, gone): nobody to tell.
        debug!(error = %e, "connection lost");
        return;
    };
    let reason = if code == close::TOO_BIG {
        bump(&counters.ws_oversize);
        format!("message over the limit of {limit} bytes")
    } else {
        bump(&counters.ws_bad_frames);
        e.to_string()
    };
    debug!(code, %reason, "closing after a bad frame");
    let _ = tx
        .send(Message::close_with(code, truncate_reason(reason)))
        .await;
}

async fn serve_inner(socket: WebSocket, room: RoomHandle, ctx: WsContext) {
    let WsContext {
        mut shutdown,
        limits,
        counters,
        ..
    } = ctx;
    let (mut tx, mut rx) = socket.split();

    // 1. hello, in the format of its frame.
    let first = match tokio::time::timeout(limits.ws_hello_timeout, rx.next()).await {
        Err(_) => {
            bump(&counters.ws_hello_timeouts);
            debug!("no hello in time: closing");
            let reason = format!(
                "no hello within {} s",
                limits.ws_hello_timeout.as_secs_f64()
            );
            let _ = tx.send(Message::close_with(close::POLICY, reason)).await;
            return;
        }
        Ok(None) => return,
        Ok(Some(Err(e))) => {
            close_after_error(&mut tx, &e, &counters, limits.ws_max_message).await;
            return;
        }
        Ok(Some(Ok(m))) => m,
    };
    let format = if first.is_binary() {
        Format::Bincode
    } else if first.is_text() {
        Format::Json
    } else {
        bump(&counters.ws_bad_frames);
        let _ = tx
            .send(Message::close_with(
                close::PROTOCOL,
                "the first frame must be a hello",
            ))
            .await;
        return;
    };
    let hello = match decode::<ClientMsg>(format, first.as_bytes()) {
        Ok(ClientMsg::Hello(h)) => h,
        Ok(_) => {
            bump(&counters.ws_bad_frames);
            let msg = "the first message must be hello".to_string();
            refuse(&mut tx, format, "bad_message", msg, close::PROTOCOL).await;
            return;
        }
        Err(e) => {
            bump(&counters.ws_bad_frames);
            refuse(
                &mut tx,
                format,
                "bad_message",
                format!("bad hello: {e}"),
                close::INVALID,
            )
            .await;
            return;
        }
    };
    if hello.version != PROTOCOL_VERSION {
        let msg = protocol::version_mismatch(hello.version);
        refuse(&mut tx, format, "version_mismatch", msg, close::PROTOCOL).await;
        return;
    }
    let joined = match room.join(hello, format).await {
        Err(_) => {
            let msg = "server shutting down".to_string();
            refuse(&mut tx, format, "shutting_down", msg, close::GOING_AWAY).await;
            return;
        }
        Ok(Err(e)) => {
            let code = match e {
                AdmitError::RoomFull(_) => "room_full",
                AdmitError::UnknownSession => "unknown_session",
            };
            refuse(&mut tx, format, code, e.to_string(), close::POLICY).await;
            return;
        }
        Ok(Ok(j)) => j,
    };
    let sub = joined.sub;
    let span = tracing::Span::current();
    if let Some(id) = joined.welcome.player_id {
        span.record("player", id);
        span.record("session", joined.welcome.session.as_str());
    }
    let spectator = joined.welcome.player_id.is_none();
    // The name is the room's sanitised one, never the hello's.
    debug!(sub, name = %joined.welcome.name, resumed = joined.welcome.resumed, "session open");
    if !send_msg(
        &mut tx,
        format,
        &ServerMsg::Welcome(Box::new(joined.welcome)),
    )
    .await
    {
        room.send(RoomCmd::Detach { sub }).await;
        return;
    }

    // 2. the session: frames out, messages in, pings, idle timeout, shutdown.
    let outbox = joined.outbox;
    let conn = room.metrics.conn(Transport::Ws, &room.config.id);
    let mut last_heard = Instant::now();
    let every = limits.ws_ping_interval;
    let mut ping = tokio::time::interval_at(Instant::now() + every, every);
    let mut throttle = limits.input_throttle(last_heard);
    let mut chat_throttle = limits.chat_throttle(last_heard);
    let mut left = false;
    loop {
        tokio::select! {
            // Shutdown first: the room closing our outbox during a shutdown
            // must still read as "server shutting down".
            biased;
            _ = crate::clock::until_shutdown(&mut shutdown) => {
                let bye = tx.send(Message::close_with(close::GOING_AWAY, "server shutting down"));
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, bye).await;
                break;
            }
            out = outbox.pop_queued() => match out {
                Some((q, behind)) => {
                    let len = q.bytes.len();
                    conn.sent.depth.observe_int(behind as u64 + 1);
                    if tx.send(frame(format, q.bytes)).await.is_err() {
                        break;
                    }
                    conn.sent.sent(1, len, q.produced);
                }
                // The room closed our outbox: replaced by a resume elsewhere, or shutting down.
                None => {
                    let _ = tx.send(Message::close_with(close::GOING_AWAY, "session taken over or room closed")).await;
                    break;
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() >= limits.ws_idle_timeout {
                    bump(&counters.ws_idle_timeouts);
                    debug!("idle: closing");
                    let reason = format!("idle for {} s", limits.ws_idle_timeout.as_secs_f64());
                    let _ = tx.send(Message::close_with(close::POLICY, reason)).await;
                    break;
                }
                if tx.send(Message::ping(bytes::Bytes::new())).await.is_err() {
                    break;
                }
            }
            incoming = rx.next() => {
                let m = match incoming {
                    None => break,
                    Some(Err(e)) => {
                        close_after_error(&mut tx, &e, &counters, limits.ws_max_message).await;
                        break;
                    }
                    Some(Ok(m)) => m,
                };
                last_heard = Instant::now();
                if m.is_close() {
                    break;
                }
                // Every frame counts, pings too: a flood of anything costs the same.
                match counters.input_verdict(throttle.check(last_heard.into_std())) {
                    Verdict::Pass => {}
                    Verdict::Drop => continue,
                    Verdict::Flood => {
                        let msg = format!(
                            "input flood: more than {} messages a second (burst {}); closing",
                            limits.input_rate, limits.input_burst
                        );
                        debug!(dropped = throttle.dropped(), "closing a flooding session");
                        refuse(&mut tx, format, "rate_limited", msg, close::POLICY).await;
                        break;
                    }
                }
                if m.is_ping() || m.is_pong() {
                    continue;
                }
                let right_type = match format {
                    Format::Json => m.is_text(),
                    Format::Bincode => m.is_binary(),
                };
                if !right_type {
                    bump(&counters.ws_bad_frames);
                    let reason = "frame type differs from the hello's (text = JSON, binary = bincode)";
                    let _ = tx.send(Message::close_with(close::UNSUPPORTED, reason)).await;
                    break;
                }
                let msg = match decode::<ClientMsg>(format, m.as_bytes()) {
                    Ok(msg) => msg,
                    Err(e) => {
                        bump(&counters.ws_bad_frames);
                        let _ = tx.send(Message::close_with(close::INVALID, truncate_reason(e.to_string()))).await;
                        break;
                    }
                };
                match msg {
                    // A spectator has no snake to steer.
                    ClientMsg::Input(_) if spectator => {}
                    ClientMsg::Input(input) => {
                        room.try_send(RoomCmd::Input { sub, input });
                    }
                    ClientMsg::Ping(p) => {
                        let pong = ServerMsg::Pong(Pong { t: p.t, server_time_us: now_us() });
                        if !send_msg(&mut tx, format, &pong).await {
                            break;
                        }
                    }
                    ClientMsg::Chat(c) => {
                        if chat_throttle.check(last_heard.into_std()) == Verdict::Pass {
                            room.try_send(RoomCmd::Chat { sub, text: c.text });
                        } else {
                            bump(&counters.chat_dropped);
                            let err = ServerMsg::Error(ErrorMsg {
                                code: "rate_limited".into(),
                                message: limits.chat_limit_message(),
                            });
                            if !send_msg(&mut tx, format, &err).await {
                                break;
                            }
                        }
                    }
                    ClientMsg::Resync {} => {
                        room.try_send(RoomCmd::Resync { sub });
                    }
                    ClientMsg::Leave {} => {
                        // Queue the leave before the close frame: a client that
                        // rejoins after seeing the close finds its name free.
                        left = true;
                        room.send(RoomCmd::Leave { sub }).await;
                        let _ = tx.send(Message::close_with(close::NORMAL, "left")).await;
                        break;
                    }
                    ClientMsg::Hello(_) => {
                        let err = ServerMsg::Error(ErrorMsg {
                            code: "bad_message".into(),
                            message: "already welcomed: hello is only the first message".into(),
                        });
                        let _ = send_msg(&mut tx, format, &err).await;
                    }
                }
            }
        }
    }
    if !left {
        room.send(RoomCmd::Detach { sub }).await;
    }
    debug!(sub, left, "session closed");
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
