//! A room as its spectator transports see it: [`RoomHandle`] implements
//! the narrow traits `sse`, `watch` and the fan-out define, here, so those
//! transports never import `room` and `room` may use their types (the SSE
//! feed and chunks, the watch frame cache) without a cycle; and the
//! registry of rooms is where the fan-out's doors find them
//! (`fanout::SseRooms`, `fanout::WsRooms`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use protocol::{Map, WorldState};
use tokio::sync::{broadcast, watch};

use std::future::Future;
use std::pin::Pin;

use protocol::Format;

use crate::accept::Conn;
use crate::fanout::talk::Chat;
use crate::fanout::{SseRooms, WsRoom, WsRooms};
use crate::metrics::{ConnMetrics, RoomMetrics, Transport};
use crate::room::{RoomCmd, RoomHandle, WsSpectating};
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

impl Chat for RoomHandle {
    fn chat(&self, text: String) {
        // Sub 0 is nobody's: the room says it is from "spectator".
        self.try_send(RoomCmd::Chat { sub: 0, text });
    }
}

impl WsRoom for RoomHandle {
    async fn spectate(&self, format: Format) -> Option<WsSpectating> {
        self.spectate_ws(format).await.ok()
    }

    async fn resync(&self, format: Format) -> Option<WsSpectating> {
        self.ws_resync(format).await.ok()
    }

    fn play(
        &self,
        conn: Conn,
        read: Vec<u8>,
        ctx: crate::ws::WsContext,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(crate::ws::serve(conn, read, self.clone(), ctx))
    }
}

/// The server's rooms, as the WebSocket door finds them.
impl WsRooms for Rooms {
    type Room = RoomHandle;

    fn find(&self, id: &str) -> Option<(RoomHandle, ConnMetrics, RoomMetrics)> {
        let room = self.get(id)?;
        let conn = room.metrics.conn(Transport::Ws, &room.config.id);
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
