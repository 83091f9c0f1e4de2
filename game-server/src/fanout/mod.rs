//! The spectators' fan-out: a room's tick bytes go to every spectator's
//! socket from a tight loop of non-blocking writes, with no task, no
//! HTTP machinery and no allocation per spectator per tick. SSE and
//! WebSocket spectators share it; only their bytes differ (a [`Feed`]).
//!
//! A spectator's request is taken below hyper by a door (an
//! `accept::Handoff`): [`SseDoor`] for `GET /rooms/{room}/events`,
//! [`door::WsDoor`] for a WebSocket upgrade of `GET /rooms/{room}/ws`. The
//! head is peeked, the room found, and only then is the head consumed and
//! answered by hand (SSE: `200`, the streaming headers, `Connection:
//! close`, a close-delimited body, `retry:` and the room's preamble;
//! WebSocket: `101`, then the hello, the welcome and a snapshot). Anything
//! else (an unknown room, a server shutting down, another path, a failed
//! handshake) is declined untouched and hyper and warp answer it as
//! before. The socket then joins one of the room's [`shard`]s, one per
//! core and per feed: each is one task that owns its share of the sockets
//! and, per tick, writes the feed's shared bytes to each with one
//! `try_write`. A socket that cannot take a whole frame leaves for the
//! [`slow`] path, which finishes that frame under the write-stall timeout,
//! resyncs it with a keyframe and brings it back.
//!
//! A WebSocket spectator also talks (pings, `resync`, `leave`, close): a
//! small reader task per spectator ([`talk`]) waits for its socket to be
//! readable, and anything it must write goes to the spectator's mailbox
//! and is written by the shard that holds it, between two frames, so a
//! reply never cuts into a tick.
//!
//! The fan-out knows no `RoomHandle`: it reaches a room only through
//! [`crate::sse::SseRoom`] (SSE) or [`WsRoom`] (WebSocket), and finds one
//! through [`SseRooms`] or [`WsRooms`], so anything that produces a room's
//! ticks (a local room, a cluster edge's mirror) can feed it.

pub mod door;
pub mod shard;
mod slow;
pub mod talk;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use protocol::sse::{Parser, RETRY_MS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc};

use crate::accept::{Conn, Handoff, Head, Taken};
use crate::metrics::{ConnMetrics, RoomMetrics};
use crate::sse::{KEEPALIVE, SseChunk, SseRoom, closing_event_after};

pub use door::{WsDoor, WsRoom, WsRooms};

/// Where the SSE fan-out finds rooms by id.
pub trait SseRooms: Send + Sync + 'static {
    /// The room a spectator watches.
    type Room: SseRoom + Clone + Sync;
    /// The room `id` and the metric handles of one more SSE spectator of
    /// it (the connection's gauge and sends, the room's resyncs); `None`
    /// for no such room (the request is then declined and answered 404 by
    /// the router). It may wait: a cluster node's mirror of another
    /// node's room starts with a keyframe from there.
    fn find(
        &self,
        id: &str,
    ) -> impl Future<Output = Option<(Self::Room, ConnMetrics, RoomMetrics)>> + Send;
}

/// A room's bytes as one fan-out writes them: its SSE events, or its
/// WebSocket frames of one format. Everything a shard and the slow path
/// need of the room goes through here, so one shard code serves both.
pub trait Feed: Clone + Send + Sync + 'static {
    /// A keyframe of the room now (whole, ready to write), the tick it
    /// ends with, and the room's ring from the tick after it; `None` when
    /// the room has closed.
    fn resync(
        &self,
    ) -> impl Future<Output = Option<(Bytes, u64, broadcast::Receiver<SseChunk>)>> + Send;
    /// What a spectator gets when a keepalive period passed (an SSE
    /// comment, a WebSocket ping frame).
    fn keepalive(&self) -> Bytes;
    /// The closing words when the room drops its ring, to a spectator
    /// whose last tick was `after` (0: none).
    fn closing(&self, after: u64) -> Bytes;
}

/// The SSE feed of a room: `event:` blocks, `: keepalive` comments and an
/// `event: error` to close.
#[derive(Clone)]
pub struct Events<R>(pub R);

impl<R: SseRoom + Clone + Sync> Feed for Events<R> {
    async fn resync(&self) -> Option<(Bytes, u64, broadcast::Receiver<SseChunk>)> {
        let (snapshot, live) = self.0.resync().await?;
        let tick = last_id(&snapshot)?;
        Some((snapshot, tick, live))
    }

    fn keepalive(&self) -> Bytes {
        KEEPALIVE
    }

    fn closing(&self, after: u64) -> Bytes {
        closing_event_after(Some(after).filter(|&t| t > 0), self.0.farewell())
    }
}

/// One spectator on the fan-out: its socket and how far it has got.
pub struct Spectator {
    /// Shared with its reader task for a WebSocket spectator.
    conn: Arc<Conn>,
    /// The last tick written to it whole.
    after: u64,
    /// Its connection gauge (and send counters on the slow path).
    metrics: ConnMetrics,
    /// Its room's resyncs and drops.
    room_metrics: RoomMetrics,
    /// A WebSocket spectator's mailbox (`None` for SSE, which never talks).
    talk: Option<talk::Line>,
    /// The slice of the keepalive period its keepalive is written in (set
    /// by the shard that holds it).
    slice: u8,
    /// Its socket's descriptor, kept beside it so a shard's pass over its
    /// spectators reads nothing but their slots (set by the shard; -1:
    /// write through `conn`; read on Linux only).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fd: i32,
}

/// A spectator handed to a shard, with the room's ring from where its
/// bytes so far end (it fills the ticks the shard already wrote).
pub(crate) struct Admission {
    spectator: Spectator,
    live: broadcast::Receiver<SseChunk>,
}

/// What a shard's inbox carries.
pub(crate) enum ToShard {
    /// A spectator joins the shard.
    Admit(Admission),
    /// The spectator with this mailbox id has something to write (or asks
    /// to be resynced or closed).
    Mail(u64),
}

/// The id of the last event in `chunk` (every event has one).
pub(crate) fn last_id(chunk: &[u8]) -> Option<u64> {
    let mut p = Parser::new();
    p.push(chunk);
    p.last_event_id().parse().ok()
}

/// The shards of every room: per room (and feed), one per writer.
pub struct Fanout<F: Feed> {
    writers: usize,
    keepalive: Duration,
    next: AtomicUsize,
    shards: Mutex<HashMap<String, Vec<mpsc::UnboundedSender<ToShard>>>>,
    /// Every shard and slow-path task still running, so a shutdown whose
    /// grace is over can drop their sockets ([`Handoff::abandon`]).
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    _feed: std::marker::PhantomData<fn() -> F>,
}

impl<F: Feed> Fanout<F> {
    /// A fan-out with `writers` shards per room (one per core is the idea)
    /// and a keepalive after every `keepalive`.
    pub fn new(writers: usize, keepalive: Duration) -> Arc<Self> {
        Arc::new(Fanout {
            writers: writers.max(1),
            keepalive,
            next: AtomicUsize::new(0),
            shards: Mutex::default(),
            tasks: Mutex::default(),
            _feed: std::marker::PhantomData,
        })
    }

    /// Spawns one of the fan-out's tasks, tracked for [`Self::abandon`].
    /// Only shards (a few per room) and spectators on the slow path are
    /// tasks, so the list stays short; ended ones are pruned here.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task).abort_handle();
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// Drops every spectator socket the fan-out still holds.
    fn abandon(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            t.abort();
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Vec<mpsc::UnboundedSender<ToShard>>>> {
        // A map of senders: valid whatever a panicking holder did.
        self.shards.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `a` to one of the shards of feed `key` in turn, starting the
    /// shard if it is not running (a shard ends when its last spectator
    /// goes).
    pub(crate) fn admit(self: &Arc<Self>, key: &str, feed: &F, a: Admission) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.writers;
        let mut shards = self.lock();
        let slots = shards.entry(key.to_string()).or_default();
        if slots.len() < self.writers {
            slots.resize_with(self.writers, || {
                let (tx, _) = mpsc::unbounded_channel();
                tx
            });
        }
        let a = match slots[i].send(ToShard::Admit(a)) {
            Ok(()) => return,
            Err(mpsc::error::SendError(back)) => back,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(a);
        slots[i] = tx.clone();
        drop(shards);
        self.spawn(shard::run(
            self.clone(),
            key.to_string(),
            feed.clone(),
            tx.downgrade(),
            rx,
            self.keepalive,
        ));
    }

    /// A shard of `key` with no spectator left asks to end: the next
    /// message already in its `inbox` if there is one (a spectator on its
    /// way, to be served first), else `None`, and from then on the shard's
    /// place takes no one (the next spectator starts a new shard).
    ///
    /// Decided under the lock [`Self::admit`] sends under, so no spectator
    /// is queued to a shard after it ended; closing the inbox first and
    /// serving what was queued would leave a shard running that no
    /// spectator's reply (a pong, a close) ever reaches.
    fn retire(&self, key: &str, inbox: &mut mpsc::UnboundedReceiver<ToShard>) -> Option<ToShard> {
        let mut shards = self.lock();
        if let Ok(m) = inbox.try_recv() {
            return Some(m);
        }
        inbox.close();
        if let Some(slots) = shards.get(key)
            && slots.iter().all(mpsc::UnboundedSender::is_closed)
        {
            shards.remove(key);
        }
        None
    }
}

/// The `accept::Handoff` of SSE spectator requests (`GET
/// /rooms/{room}/events` with no upgrade) onto a [`Fanout`].
pub struct SseDoor<L: SseRooms> {
    rooms: Arc<L>,
    fanout: Arc<Fanout<Events<L::Room>>>,
}

impl<L: SseRooms> SseDoor<L> {
    /// A door to `rooms` with `writers` shards per room and a `:
    /// keepalive` after `keepalive` without a tick.
    pub fn new(rooms: L, writers: usize, keepalive: Duration) -> Arc<Self> {
        Arc::new(SseDoor {
            rooms: Arc::new(rooms),
            fanout: Fanout::new(writers, keepalive),
        })
    }
}

/// The room id of an SSE request path, if it is one and plain (a
/// percent-encoded id is left to the router, which decodes it).
fn events_room(path: &str) -> Option<&str> {
    let id = path.strip_prefix("/rooms/")?.strip_suffix("/events")?;
    (!id.is_empty() && !id.contains(['/', '%'])).then_some(id)
}

impl<L: SseRooms> Handoff for SseDoor<L> {
    fn wants(&self, head: &Head) -> bool {
        head.method == "GET"
            && events_room(&head.path).is_some()
            && head.header("upgrade").is_none()
    }

    fn take(&self, head: Head, conn: Conn) -> Pin<Box<dyn Future<Output = Taken> + Send>> {
        let rooms = self.rooms.clone();
        let fanout = self.fanout.clone();
        Box::pin(async move {
            // Finding may wait (a cluster edge's mirror starts with a
            // keyframe from the room's owner).
            let found = match events_room(&head.path) {
                Some(id) => rooms.find(id).await,
                None => None,
            };
            match found {
                Some(found) => open(fanout, found, head, conn).await,
                None => Taken::No(conn),
            }
        })
    }

    fn abandon(&self) {
        self.fanout.abandon();
    }
}

/// The head of every SSE answer the fan-out gives: the streaming headers
/// of `streaming::reply`, and a body that ends when the connection does.
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
    content-type: text/event-stream\r\n\
    cache-control: no-cache\r\n\
    x-accel-buffering: no\r\n\
    access-control-allow-origin: *\r\n\
    connection: close\r\n\r\n";

async fn open<R: SseRoom + Clone + Sync>(
    fanout: Arc<Fanout<Events<R>>>,
    (room, metrics, room_metrics): (R, ConnMetrics, RoomMetrics),
    head: Head,
    mut conn: Conn,
) -> Taken {
    let Some(id) = events_room(&head.path) else {
        return Taken::No(conn);
    };
    let last = head
        .header("last-event-id")
        .and_then(|s| s.trim().parse::<u64>().ok());
    let Some(joined) = room.spectate(last).await else {
        // Shutting down: the router says so in its own words.
        return Taken::No(conn);
    };
    // Only now is the head consumed: it was peeked.
    let mut consumed = vec![0u8; head.len];
    if conn.read_exact(&mut consumed).await.is_err() {
        return Taken::Yes;
    }
    let mut out =
        Vec::with_capacity(HEAD.len() + 32 + joined.preamble.iter().map(Bytes::len).sum::<usize>());
    out.extend_from_slice(HEAD);
    out.extend_from_slice(format!("retry: {RETRY_MS}\n\n").as_bytes());
    let mut after = last;
    for chunk in &joined.preamble {
        metrics.sent.frames.inc();
        metrics.sent.bytes.inc_by(chunk.len() as u64);
        after = last_id(chunk).or(after);
        out.extend_from_slice(chunk);
    }
    tracing::debug!(?last, "sse spectator on the fan-out");
    if conn.write_all(&out).await.is_err() {
        return Taken::Yes;
    }
    drop(out);
    let spectator = Spectator {
        conn: Arc::new(conn),
        after: after.unwrap_or(0),
        metrics,
        room_metrics,
        talk: None,
        slice: 0,
        fd: -1,
    };
    fanout.admit(
        id,
        &Events(room),
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
    fn only_plain_event_paths_are_taken() {
        assert_eq!(events_room("/rooms/lobby/events"), Some("lobby"));
        assert_eq!(events_room("/rooms//events"), None);
        assert_eq!(events_room("/rooms/a%20b/events"), None);
        assert_eq!(events_room("/rooms/a/b/events"), None);
        assert_eq!(events_room("/rooms/lobby/watch"), None);
        assert_eq!(last_id(b"event: tick\nid: 41\ndata: {}\n\n"), Some(41));
    }
}
