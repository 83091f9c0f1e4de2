//! The WebSocket transport: a thin shell that moves a room's frames to the
//! socket and client messages into the room. All session rules live in the
//! room and [`crate::session`].

use std::time::Duration;

use crate::upgrade::{Message, MessageExt, WebSocket, text_frame};
use futures_util::{SinkExt, StreamExt};
use protocol::codec::{decode, encode};
use protocol::{ClientMsg, ErrorMsg, Format, PROTOCOL_VERSION, Pong, ServerMsg};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span};

use crate::clock::now_us;
use crate::metrics::Transport;
use crate::room::{RoomCmd, RoomHandle};
use crate::session::AdmitError;

/// Largest WebSocket message a client may send (inputs and chat are tiny).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// How long a new connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// WebSocket ping interval.
const PING_EVERY: Duration = Duration::from_secs(5);
/// A connection that sent nothing (pongs included) for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);

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
    let err = ServerMsg::Error(ErrorMsg {
        code: code.into(),
        message: message.clone(),
    });
    let _ = send_msg(tx, format, &err).await;
    let _ = tx
        .send(Message::close_with(close_code, truncate_reason(message)))
        .await;
}

/// Close reasons must fit a control frame (123 bytes).
fn truncate_reason(mut s: String) -> String {
    while s.len() > 120 {
        s.pop();
    }
    s
}

/// Serves one upgraded WebSocket for `room` until it closes.
pub async fn serve(socket: WebSocket, room: RoomHandle, shutdown: watch::Receiver<bool>) {
    let span = info_span!("ws", room = %room.config.id);
    serve_inner(socket, room, shutdown).instrument(span).await;
}

async fn serve_inner(socket: WebSocket, room: RoomHandle, mut shutdown: watch::Receiver<bool>) {
    let (mut tx, mut rx) = socket.split();

    // 1. hello, in the format of its frame.
    let first = match tokio::time::timeout(HELLO_TIMEOUT, rx.next()).await {
        Err(_) => {
            let _ = tx
                .send(Message::close_with(close::POLICY, "no hello within 10 s"))
                .await;
            return;
        }
        Ok(None) => return,
        Ok(Some(Err(e))) => {
            let _ = tx
                .send(Message::close_with(
                    error_close_code(&e),
                    truncate_reason(e.to_string()),
                ))
                .await;
            return;
        }
        Ok(Some(Ok(m))) => m,
    };
    let format = if first.is_binary() {
        Format::Bincode
    } else if first.is_text() {
        Format::Json
    } else {
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
            let msg = "the first message must be hello".to_string();
            refuse(&mut tx, format, "bad_message", msg, close::PROTOCOL).await;
            return;
        }
        Err(e) => {
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
        let msg = format!(
            "protocol version {} is not supported; this server speaks version {PROTOCOL_VERSION}",
            hello.version
        );
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
    debug!(sub, player = ?joined.welcome.player_id, "session open");
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
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut left = false;
    loop {
        tokio::select! {
            // Shutdown first: the room closing our outbox during a shutdown
            // must still read as "server shutting down".
            biased;
            _ = crate::clock::until_shutdown(&mut shutdown) => {
                let _ = tx.send(Message::close_with(close::GOING_AWAY, "server shutting down")).await;
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
                if last_heard.elapsed() >= IDLE_TIMEOUT {
                    let _ = tx.send(Message::close_with(close::POLICY, "idle for 15 s")).await;
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
                        let _ = tx.send(Message::close_with(error_close_code(&e), truncate_reason(e.to_string()))).await;
                        break;
                    }
                    Some(Ok(m)) => m,
                };
                last_heard = Instant::now();
                if m.is_close() {
                    break;
                }
                if m.is_ping() || m.is_pong() {
                    continue;
                }
                let right_type = match format {
                    Format::Json => m.is_text(),
                    Format::Bincode => m.is_binary(),
                };
                if !right_type {
                    let reason = "frame type differs from the hello's (text = JSON, binary = bincode)";
                    let _ = tx.send(Message::close_with(close::UNSUPPORTED, reason)).await;
                    break;
                }
                let msg = match decode::<ClientMsg>(format, m.as_bytes()) {
                    Ok(msg) => msg,
                    Err(e) => {
                        let _ = tx.send(Message::close_with(close::INVALID, truncate_reason(e.to_string()))).await;
                        break;
                    }
                };
                match msg {
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
                        room.try_send(RoomCmd::Chat { sub, text: c.text });
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

/// The close code for a receive error: oversize is 1009, anything else 1002.
fn error_close_code(e: &crate::upgrade::Error) -> u16 {
    let text = e.to_string();
    if text.contains("Space limit exceeded")
        || text.contains("too long")
        || text.contains("Capacity")
    {
        close::TOO_BIG
    } else {
        close::PROTOCOL
    }
}
