//! The WebSocket door: `GET /rooms/{room}/ws` upgrades taken below hyper
//! for the rooms this node hosts.
//!
//! The head is peeked; a request that is not a WebSocket handshake (the
//! checks of `upgrade::upgrade`), names an unknown or percent-encoded
//! room, or comes while the server shuts down is declined untouched, so
//! the router answers it (426, 400, 404, 307) in its own words. Otherwise
//! the head is consumed, `101` answered by hand, and the hello read under
//! `ws_hello_timeout`. Its role decides:
//! - a spectator's clean hello puts the socket on the [`Fanout`]: the
//!   welcome and a snapshot are written, its reader ([`talk`]) starts and
//!   a shard of the room's feed for its format takes it;
//! - anything else (a player, a resume, a hello refused or broken, a
//!   hostile first frame) goes to `ws::serve` over the same socket, with
//!   the bytes read so far read again by tungstenite
//!   (`WebSocketStream::from_partially_read`), so every refusal, close
//!   code and counter is `ws.rs`'s own.

use std::future::Future;
use std::io::Cursor;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use protocol::{ErrorMsg, Format, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use super::talk::{self, Chat, Rules};
use super::{Admission, Fanout, Feed, Spectator};
use crate::accept::{Conn, Handoff, Head, Taken};
use crate::conn::{Connection, Refusal};
use crate::limits::counters::bump;
use crate::metrics::{ConnMetrics, RoomMetrics};
use crate::room::WsSpectating;
use crate::sse::SseChunk;
use crate::upgrade::{close_frame, data_frame};
use crate::ws::{WsContext, close};

/// A room as the WebSocket door sees it. Implemented for local rooms in
/// `spectators.rs`; a cluster edge's mirror can implement it too.
///
/// Every frame it hands out is whole and unmasked (server frames), so the
/// fan-out writes it as it is to every spectator of that format.
pub trait WsRoom: Chat + Clone + Sync {
    /// Joins as a spectator in `format`: the welcome and a snapshot as
    /// whole frames, the snapshot's tick, and the format's ring of framed
    /// ticks from the next one. `None`: the room has closed.
    fn spectate(&self, format: Format) -> impl Future<Output = Option<WsSpectating>> + Send;
    /// A keyframe (one framed snapshot) of now and the format's ring from
    /// the next tick, for spectators that fell behind or asked (`resync`).
    fn resync(&self, format: Format) -> impl Future<Output = Option<WsSpectating>> + Send;
    /// Why the spectators' connection ends when the room drops its ring
    /// (by default, the server shutting down).
    fn farewell(&self) -> ErrorMsg {
        crate::sse::shutting_down()
    }
    /// Serves a player's WebSocket (a hello that is not a clean
    /// spectator's) over `conn`, whose handshake is answered; `read` are
    /// the bytes the door read (the hello), to be read again first.
    fn play(
        &self,
        conn: Conn,
        read: Vec<u8>,
        ctx: WsContext,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Where the WebSocket door finds rooms.
pub trait WsRooms: Send + Sync + 'static {
    /// A room this node serves WebSocket clients of.
    type Room: WsRoom;
    /// The room `id` if this node serves it, with the metric handles of
    /// one more WebSocket spectator (its gauge and sends, the room's
    /// resyncs); `None` declines the request (the router then answers 404,
    /// or 307 to the owner in a cluster). `spectators_only`: the request
    /// says in its URL that it is a spectator's (`?role=spectator`), so a
    /// cluster node may serve it from its mirror of another node's room
    /// (and must refuse a player's hello on it). It may wait: a mirror
    /// starts with a keyframe from the room's owner.
    fn find(
        &self,
        id: &str,
        spectators_only: bool,
    ) -> impl Future<Output = Option<(Self::Room, ConnMetrics, RoomMetrics)>> + Send;
}

/// True for a query that says `role=spectator`.
pub fn spectator_query(query: &str) -> bool {
    query.split('&').any(|kv| kv == "role=spectator")
}

/// The WebSocket feed of a room in one format: framed ticks, a ping frame
/// for a keepalive, an `error` message and a 1001 close to end.
#[derive(Clone)]
pub struct Frames<R> {
    room: R,
    format: Format,
}

/// An empty server ping frame.
const PING: Bytes = Bytes::from_static(&[0x89, 0x00]);

impl<R: WsRoom> Feed for Frames<R> {
    async fn resync(&self) -> Option<(Bytes, u64, broadcast::Receiver<SseChunk>)> {
        let s = self.room.resync(self.format).await?;
        Some((s.preamble, s.tick, s.live))
    }

    fn keepalive(&self) -> Bytes {
        PING
    }

    fn closing(&self, _after: u64) -> Bytes {
        let farewell = self.room.farewell();
        let err =
            protocol::codec::encode(self.format, &protocol::ServerMsg::Error(farewell.clone()));
        let mut out = data_frame(self.format, &err).to_vec();
        out.extend_from_slice(&close_frame(close::GOING_AWAY, &farewell.message));
        out.into()
    }
}

/// The `accept::Handoff` of WebSocket upgrades of `GET /rooms/{room}/ws`.
pub struct WsDoor<L: WsRooms> {
    rooms: Arc<L>,
    fanout: Arc<Fanout<Frames<L::Room>>>,
    ctx: WsContext,
}

impl<L: WsRooms> WsDoor<L> {
    /// A door to `rooms` with `writers` shards per room and format; its
    /// spectators get a ping every `ctx.limits.ws_ping_interval`.
    pub fn new(rooms: L, writers: usize, ctx: WsContext) -> Arc<Self> {
        Arc::new(WsDoor {
            rooms: Arc::new(rooms),
            fanout: Fanout::new(writers, ctx.limits.ws_ping_interval),
            ctx,
        })
    }
}

/// The room id of a WebSocket request path, if it is one and plain (a
/// percent-encoded id is left to the router, which decodes it).
fn ws_room(path: &str) -> Option<&str> {
    let id = path.strip_prefix("/rooms/")?.strip_suffix("/ws")?;
    (!id.is_empty() && !id.contains(['/', '%'])).then_some(id)
}

impl<L: WsRooms> Handoff for WsDoor<L> {
    fn wants(&self, head: &Head) -> bool {
        head.method == "GET"
            && ws_room(&head.path).is_some()
            && crate::upgrade::is_handshake(|name| head.header(name))
    }

    fn take(&self, head: Head, conn: Conn) -> Pin<Box<dyn Future<Output = Taken> + Send>> {
        let shutting_down = *self.ctx.shutdown.borrow();
        let rooms = self.rooms.clone();
        let fanout = self.fanout.clone();
        let mut ctx = self.ctx.clone();
        ctx.peer = conn.peer_addr();
        Box::pin(async move {
            let found = match ws_room(&head.path) {
                Some(id) if !shutting_down => rooms
                    .find(id, spectator_query(&head.query))
                    .await
                    .map(|found| (id.to_string(), found)),
                _ => None,
            };
            match found {
                Some((id, found)) => open(fanout, id, found, head, conn, ctx).await,
                None => Taken::No(conn),
            }
        })
    }

    fn abandon(&self) {
        self.fanout.abandon();
    }
}

/// The first message, as far as the door reads it.
enum First {
    /// A clean spectator's hello in `format`; `rest` arrived after it.
    Spectator { format: Format, rest: Vec<u8> },
    /// Anything else: `ws::serve` reads `read` again.
    Other { read: Vec<u8> },
}

/// Reads until the first frame is whole (or plainly not a hello).
async fn first(conn: &mut Conn, max: usize) -> std::io::Result<First> {
    let mut read = Vec::new();
    loop {
        let mut buf = [0u8; 1024];
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        read.extend_from_slice(&buf[..n]);
        let mut cur = Cursor::new(&read[..]);
        let (header, len) = match FrameHeader::parse(&mut cur) {
            Ok(Some(h)) => h,
            Ok(None) => continue,
            Err(_) => return Ok(First::Other { read }),
        };
        let start = cur.position() as usize;
        let format = match header.opcode {
            OpCode::Data(Data::Text) => Format::Json,
            OpCode::Data(Data::Binary) => Format::Bincode,
            _ => return Ok(First::Other { read }),
        };
        let Some(mask) = header.mask.filter(|_| header.is_final && len <= max as u64) else {
            return Ok(First::Other { read });
        };
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Ok(First::Other { read });
        }
        let end = start + len as usize;
        if read.len() < end {
            continue;
        }
        let payload: Vec<u8> = read[start..end]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        return Ok(match crate::conn::on_hello(format, &payload) {
            Ok(h) if h.role == Role::Spectator && h.token.is_none() => First::Spectator {
                format,
                rest: read[end..].to_vec(),
            },
            _ => First::Other { read },
        });
    }
}

async fn open<R: WsRoom>(
    fanout: Arc<Fanout<Frames<R>>>,
    id: String,
    (room, metrics, room_metrics): (R, ConnMetrics, RoomMetrics),
    head: Head,
    mut conn: Conn,
    ctx: WsContext,
) -> Taken {
    let Some(key) = head.header("sec-websocket-key").map(str::to_string) else {
        return Taken::No(conn);
    };
    // Only now is the head consumed: it was peeked.
    let mut consumed = vec![0u8; head.len];
    if conn.read_exact(&mut consumed).await.is_err() {
        return Taken::Yes;
    }
    drop(consumed);
    if conn
        .write_all(&crate::upgrade::switching_protocols(&key))
        .await
        .is_err()
    {
        return Taken::Yes;
    }
    let max = ctx.limits.ws_max_message;
    let first = match tokio::time::timeout(ctx.limits.ws_hello_timeout, first(&mut conn, max)).await
    {
        Err(_) => {
            bump(&ctx.counters.ws_hello_timeouts);
            tracing::debug!("no hello in time: closing");
            let secs = ctx.limits.ws_hello_timeout.as_secs_f64();
            let bye = close_frame(close::POLICY, &format!("no hello within {secs} s"));
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.write_all(&bye)).await;
            return Taken::Yes;
        }
        Ok(Err(_)) => return Taken::Yes,
        Ok(Ok(f)) => f,
    };
    let (format, rest) = match first {
        First::Other { read } => {
            // A player counts as one by its own transport's metrics.
            drop((metrics, room_metrics));
            room.play(conn, read, ctx).await;
            return Taken::Yes;
        }
        First::Spectator { format, rest } => (format, rest),
    };
    let Some(joined) = room.spectate(format).await else {
        let r = Refusal::ShuttingDown;
        let err = protocol::codec::encode(format, &crate::conn::error(r.code(), r.to_string()));
        let mut bye = data_frame(format, &err).to_vec();
        bye.extend_from_slice(&close_frame(close::GOING_AWAY, &r.to_string()));
        let _ = tokio::time::timeout(Duration::from_secs(1), conn.write_all(&bye)).await;
        return Taken::Yes;
    };
    if conn.write_all(&joined.preamble).await.is_err() {
        return Taken::Yes;
    }
    metrics.sent.frames.inc_by(2);
    metrics.sent.bytes.inc_by(joined.preamble.len() as u64);
    tracing::debug!(room = %id, ?format, "websocket spectator on the fan-out");
    let conn = Arc::new(conn);
    let (line, ear) = talk::line();
    let rules = Rules {
        format,
        conn: Connection::new(
            0,
            true,
            ctx.limits.clone(),
            ctx.counters.clone(),
            std::time::Instant::now(),
        ),
        limits: ctx.limits.clone(),
        counters: ctx.counters.clone(),
        room: room.clone(),
    };
    // Not tracked by the fan-out: it ends when its spectator is dropped.
    tokio::spawn(talk::read(conn.clone(), ear, rules, rest));
    let spectator = Spectator {
        conn,
        after: joined.tick,
        metrics,
        room_metrics,
        talk: Some(line),
        slice: 0,
        fd: -1,
    };
    let key = match format {
        Format::Json => format!("{id} json"),
        Format::Bincode => format!("{id} bincode"),
    };
    fanout.admit(
        &key,
        &Frames { room, format },
        Admission {
            spectator,
            live: joined.live,
        },
    );
    Taken::Yes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ws_paths_are_taken() {
        assert_eq!(ws_room("/rooms/lobby/ws"), Some("lobby"));
        assert_eq!(ws_room("/rooms/ws/ws"), Some("ws"));
        assert_eq!(ws_room("/rooms/events/ws"), Some("events"));
        assert_eq!(ws_room("/rooms//ws"), None);
        assert_eq!(ws_room("/rooms/a%20b/ws"), None);
        assert_eq!(ws_room("/rooms/lobby/events"), None);
    }

    #[test]
    fn only_role_spectator_in_the_query_says_spectator() {
        assert!(spectator_query("role=spectator"));
        assert!(spectator_query("a=1&role=spectator"));
        assert!(!spectator_query(""));
        assert!(!spectator_query("role=player"));
        assert!(!spectator_query("role=spectators"));
        assert!(!spectator_query("xrole=spectator"));
    }
}
