//! A room as its spectator transports see it: [`RoomHandle`] implements
//! the narrow traits `sse` and `watch` define, here, so those transports
//! never import `room` and `room` may use their types (the SSE feed and
//! chunks, the watch frame cache) without a cycle; and the registry of
//! rooms is where the SSE fan-out finds them (`fanout::SseRooms`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use protocol::{Map, WorldState};
use tokio::sync::{broadcast, watch};

use crate::fanout::SseRooms;
use crate::metrics::{ConnMetrics, RoomMetrics, Transport};
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

    fn find(&self, id: &str) -> Option<(RoomHandle, ConnMetrics, RoomMetrics)> {
        let room = self.get(id)?;
        let conn = room.metrics.conn(Transport::Sse, &room.config.id);
        let overflows = room.room_metrics.clone();
        Some((room, conn, overflows))
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
