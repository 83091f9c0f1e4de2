//! The SSE spectators' fan-out: a room's tick bytes go to every
//! spectator's socket from a tight loop of non-blocking writes, with no
//! task, no HTTP machinery and no allocation per spectator per tick.
//!
//! A spectator's request is taken below hyper ([`SseDoor`], an
//! `accept::Handoff`): the head is peeked, the room joined, and only then
//! is the head consumed and answered by hand (`200`, the streaming
//! headers, `Connection: close`, a close-delimited body), followed by the
//! `retry:` line and the room's preamble. Anything else (an unknown room,
//! a server shutting down, another path) is declined untouched and hyper
//! and warp answer it as before. The socket then joins one of the room's
//! [`shard`]s, one per core: each is one task that owns its share of the
//! sockets and, per tick, writes the room's shared bytes to each with one
//! `try_write`. A socket that cannot take a whole frame leaves for the
//! [`slow`] path, which finishes that frame under the write-stall timeout,
//! resyncs it with a keyframe and brings it back.
//!
//! The fan-out knows no `RoomHandle`: it reaches a room only through
//! [`crate::sse::SseRoom`] (join with a preamble and the live ring, and a
//! keyframe to resync) and finds one through [`SseRooms`], so anything
//! that produces a room's SSE ticks (a local room, a cluster edge) can
//! feed it.

pub mod shard;
mod slow;

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
use crate::sse::{SseChunk, SseRoom};

/// Where the fan-out finds rooms by id.
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

/// One SSE spectator on the fan-out: its socket and how far it has got.
pub struct Spectator {
    conn: Conn,
    /// The last tick written to it whole.
    after: u64,
    /// Its connection gauge (and send counters on the slow path).
    metrics: ConnMetrics,
    /// Its room's resyncs and drops.
    room_metrics: RoomMetrics,
}

/// A spectator handed to a shard, with the room's ring from where its
/// bytes so far end (it fills the ticks the shard already wrote).
pub(crate) struct Admission {
    spectator: Spectator,
    live: broadcast::Receiver<SseChunk>,
}

/// The id of the last event in `chunk` (every event has one).
pub(crate) fn last_id(chunk: &[u8]) -> Option<u64> {
    let mut p = Parser::new();
    p.push(chunk);
    p.last_event_id().parse().ok()
}

/// The shards of every room: per room, one per writer.
pub struct Fanout<L: SseRooms> {
    rooms: L,
    writers: usize,
    keepalive: Duration,
    next: AtomicUsize,
    shards: Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Admission>>>>,
    /// Every shard and slow-path task still running, so a shutdown whose
    /// grace is over can drop their sockets ([`Handoff::abandon`]).
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl<L: SseRooms> Fanout<L> {
    /// A fan-out over `rooms` with `writers` shards per room (one per core
    /// is the idea) and a `: keepalive` after `keepalive` without a tick.
    pub fn new(rooms: L, writers: usize, keepalive: Duration) -> Arc<Self> {
        Arc::new(Fanout {
            rooms,
            writers: writers.max(1),
            keepalive,
            next: AtomicUsize::new(0),
            shards: Mutex::default(),
            tasks: Mutex::default(),
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
    ) -> std::sync::MutexGuard<'_, HashMap<String, Vec<mpsc::UnboundedSender<Admission>>>> {
        // A map of senders: valid whatever a panicking holder did.
        self.shards.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `a` to one of `room`'s shards in turn, starting the shard if
    /// it is not running (a shard ends when its last spectator goes).
    pub(crate) fn admit(self: &Arc<Self>, id: &str, room: &L::Room, mut a: Admission) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.writers;
        let mut shards = self.lock();
        let slots = shards.entry(id.to_string()).or_default();
        if slots.len() < self.writers {
            slots.resize_with(self.writers, || {
                let (tx, _) = mpsc::unbounded_channel();
                tx
            });
        }
        match slots[i].send(a) {
            Ok(()) => return,
            Err(mpsc::error::SendError(back)) => a = back,
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(a);
        slots[i] = tx;
        drop(shards);
        self.spawn(shard::run(
            self.clone(),
            id.to_string(),
            room.clone(),
            rx,
            self.keepalive,
        ));
    }

    /// Forgets `id`'s shards that have ended.
    fn forget_ended(&self, id: &str) {
        let mut shards = self.lock();
        if let Some(slots) = shards.get(id)
            && slots.iter().all(mpsc::UnboundedSender::is_closed)
        {
            shards.remove(id);
        }
    }
}

/// The `accept::Handoff` of SSE spectator requests (`GET
/// /rooms/{room}/events` with no upgrade) onto a [`Fanout`].
pub struct SseDoor<L: SseRooms>(pub Arc<Fanout<L>>);

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
        let fanout = self.0.clone();
        Box::pin(async move { open(fanout, head, conn).await })
    }

    fn abandon(&self) {
        self.0.abandon();
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

async fn open<L: SseRooms>(fanout: Arc<Fanout<L>>, head: Head, mut conn: Conn) -> Taken {
    let Some(id) = events_room(&head.path) else {
        return Taken::No(conn);
    };
    let Some((room, metrics, room_metrics)) = fanout.rooms.find(id).await else {
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
        conn,
        after: after.unwrap_or(0),
        metrics,
        room_metrics,
    };
    fanout.admit(
        id,
        &room,
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
