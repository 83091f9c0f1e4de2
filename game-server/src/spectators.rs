//! A room as its spectator transports see it: [`RoomHandle`] implements
//! the narrow traits `sse` and `watch` define, here, so those transports
//! never import `room` and `room` may use their types (the SSE feed and
//! chunks, the watch frame cache) without a cycle; and the registry of
//! rooms is where the SSE fan-out finds them (`fanout::SseRooms`): a
//! single node's rooms, or in a cluster [`Spectated`], which finds a
//! mirror of another node's room when this node has none of that name.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use protocol::{ErrorMsg, Map, WorldState};
use tokio::sync::{broadcast, watch};

use crate::cluster::{MirrorHandle, Mirrors};
use crate::fanout::SseRooms;
use crate::metrics::{ConnMetrics, Metrics, RoomMetrics, Transport};
use crate::room::RoomHandle;
use crate::rooms::Rooms;
use crate::sse::{Spectating, SseChunk, SseRoom};
use crate::watch::stream::{FrameCache, WatchedRoom};

impl SseRoom for RoomHandle {
    async fn spectate(&self, last_event_id: Option<u64>) -> Option<Spectating> {
        self.spectate_sse(last_event_id).await.ok()
    }

    async fn resync(&self) -> Option<(Bytes, broadcast::Receiver<SseChunk>)> {
        self.sse_resync().await.ok()
    }
}

/// The server's rooms, as the SSE fan-out finds them.
impl SseRooms for Rooms {
    type Room = RoomHandle;

    async fn find(&self, id: &str) -> Option<(RoomHandle, ConnMetrics, RoomMetrics)> {
        let room = self.get(id)?;
        let conn = room.metrics.conn(Transport::Sse, &room.config.id);
        let overflows = room.room_metrics.clone();
        Some((room, conn, overflows))
    }
}

/// A room as its spectators reach it: this node's own, or (in a cluster)
/// this node's mirror of another node's.
#[derive(Clone)]
pub enum Watched {
    Local(RoomHandle),
    Mirror(MirrorHandle),
}

impl SseRoom for Watched {
    async fn spectate(&self, last_event_id: Option<u64>) -> Option<Spectating> {
        match self {
            Watched::Local(r) => r.spectate(last_event_id).await,
            Watched::Mirror(m) => m.spectate(last_event_id).await,
        }
    }

    async fn resync(&self) -> Option<(Bytes, broadcast::Receiver<SseChunk>)> {
        match self {
            Watched::Local(r) => r.resync().await,
            Watched::Mirror(m) => m.resync().await,
        }
    }

    fn farewell(&self) -> ErrorMsg {
        match self {
            Watched::Local(r) => r.farewell(),
            Watched::Mirror(m) => SseRoom::farewell(m),
        }
    }
}

/// Every room a node's SSE spectators can watch: its own and, with
/// `mirrors` (in a cluster), any other node's, through a mirror that the
/// first spectator starts (and waits for: see `Mirrors::get`).
#[derive(Clone)]
pub struct Spectated {
    /// This node's rooms.
    pub rooms: Rooms,
    /// In a cluster, the mirrors of other nodes' rooms.
    pub mirrors: Option<Mirrors>,
    /// Where a mirror's spectators are counted.
    pub metrics: Arc<Metrics>,
}

impl SseRooms for Spectated {
    type Room = Watched;

    async fn find(&self, id: &str) -> Option<(Watched, ConnMetrics, RoomMetrics)> {
        if let Some((room, conn, overflows)) = self.rooms.find(id).await {
            return Some((Watched::Local(room), conn, overflows));
        }
        let mirror = self.mirrors.as_ref()?.get(id).await.ok()?;
        let conn = self.metrics.conn(Transport::Sse, id);
        Some((Watched::Mirror(mirror), conn, self.metrics.room(id)))
    }
}

impl WatchedRoom for RoomHandle {
    fn id(&self) -> &str {
        &self.config.id
    }

    fn map(&self) -> &Map {
        &self.config.map
    }

    fn spectators(&self) -> u32 {
        self.stats.spectators.load(Ordering::Relaxed) + self.stats.watchers.load(Ordering::Relaxed)
    }

    fn world(&self) -> watch::Receiver<Arc<WorldState>> {
        RoomHandle::world(self)
    }

    fn frames(&self) -> &FrameCache {
        &self.frames
    }

    fn watchers(&self) -> &AtomicU32 {
        &self.stats.watchers
    }

    fn wake(&self) {
        RoomHandle::wake(self)
    }
}
