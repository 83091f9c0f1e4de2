//! A room as its spectator transports see it: [`RoomHandle`] implements
//! the narrow traits `sse`, `watch` and the fan-out define, here, so those
//! transports never import `room` and `room` may use their types (the SSE
//! feed and chunks, the watch frame cache) without a cycle; and the
//! registry of rooms is where the fan-out's doors find them
//! (`fanout::SseRooms`, `fanout::WsRooms`): a single node's rooms, or in a
//! cluster [`Spectated`], which finds a mirror of another node's room when
//! this node has none of that name.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use protocol::{ErrorMsg, Map, WorldState};
use tokio::sync::{broadcast, watch};

use std::future::Future;
use std::pin::Pin;

use protocol::Format;

use crate::accept::Conn;
use crate::cluster::{MirrorHandle, Mirrors};
use crate::fanout::talk::Chat;
use crate::fanout::{SseRooms, WsRoom, WsRooms};
use crate::metrics::{ConnMetrics, Metrics, RoomMetrics, Transport};
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

    async fn find(&self, id: &str) -> Option<(RoomHandle, ConnMetrics, RoomMetrics)> {
        local(self, id, Transport::Sse)
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
            Watched::Local(r) => SseRoom::spectate(r, last_event_id).await,
            Watched::Mirror(m) => SseRoom::spectate(m, last_event_id).await,
        }
    }

    async fn resync(&self) -> Option<(Bytes, broadcast::Receiver<SseChunk>)> {
        match self {
            Watched::Local(r) => SseRoom::resync(r).await,
            Watched::Mirror(m) => SseRoom::resync(m).await,
        }
    }

    fn farewell(&self) -> ErrorMsg {
        match self {
            Watched::Local(r) => SseRoom::farewell(r),
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
        if let Some((room, conn, overflows)) = SseRooms::find(&self.rooms, id).await {
            return Some((Watched::Local(room), conn, overflows));
        }
        let mirror = self.mirrors.as_ref()?.get(id).await.ok()?;
        let conn = self.metrics.conn(Transport::Sse, id);
        Some((Watched::Mirror(mirror), conn, self.metrics.room(id)))
    }
}

/// WebSocket spectators of this node's rooms, and (asked with
/// `?role=spectator`) of other nodes' rooms through their mirrors.
impl WsRooms for Spectated {
    type Room = Watched;

    async fn find(
        &self,
        id: &str,
        spectators_only: bool,
    ) -> Option<(Watched, ConnMetrics, RoomMetrics)> {
        if let Some((room, conn, overflows)) = WsRooms::find(&self.rooms, id, false).await {
            return Some((Watched::Local(room), conn, overflows));
        }
        if !spectators_only {
            // A player, or a spectator who did not say: the router sends
            // it to the room's owner.
            return None;
        }
        let mirror = self.mirrors.as_ref()?.get(id).await.ok()?;
        let conn = self.metrics.conn(Transport::Ws, id);
        Some((Watched::Mirror(mirror), conn, self.metrics.room(id)))
    }
}

impl Chat for Watched {
    fn chat(&self, text: String) -> Result<(), ErrorMsg> {
        match self {
            Watched::Local(r) => r.chat(text),
            // Chat is not relayed to the room's owner.
            Watched::Mirror(m) => {
                let owner = m.owner();
                Err(ErrorMsg {
                    code: "elsewhere".into(),
                    message: format!(
                        "chat is not relayed from this node: chat on node {} at {}",
                        protocol::text::sanitize_line(&owner.node, 64),
                        protocol::text::sanitize_line(&owner.url, 200)
                    ),
                })
            }
        }
    }
}

impl WsRoom for Watched {
    async fn spectate(&self, format: Format) -> Option<WsSpectating> {
        match self {
            Watched::Local(r) => WsRoom::spectate(r, format).await,
            Watched::Mirror(m) => m.spectate_ws(format).await,
        }
    }

    async fn resync(&self, format: Format) -> Option<WsSpectating> {
        match self {
            Watched::Local(r) => WsRoom::resync(r, format).await,
            Watched::Mirror(m) => m.resync_ws(format).await,
        }
    }

    fn farewell(&self) -> ErrorMsg {
        match self {
            Watched::Local(r) => WsRoom::farewell(r),
            Watched::Mirror(m) => SseRoom::farewell(m),
        }
    }

    fn play(
        &self,
        conn: Conn,
        read: Vec<u8>,
        ctx: crate::ws::WsContext,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        match self {
            Watched::Local(r) => r.play(conn, read, ctx),
            Watched::Mirror(m) => Box::pin(players_elsewhere(conn, m.clone(), read)),
        }
    }
}

/// A player's hello on a mirror's spectators-only socket
/// (`?role=spectator`): refused in words that name the room's owner, and
/// closed (1008). What else the first frame was (a broken hello, a
/// resume) changes nothing: only the owner can serve it.
async fn players_elsewhere(mut conn: Conn, mirror: MirrorHandle, read: Vec<u8>) {
    use tokio::io::AsyncWriteExt;
    // The hello's frame type says the format; anything else is JSON.
    let format = match read.first().map(|b| b & 0x0f) {
        Some(2) => Format::Bincode,
        _ => Format::Json,
    };
    let owner = mirror.owner();
    let room = protocol::text::sanitize_line(WatchedRoom::id(&mirror), 40);
    let url = protocol::text::sanitize_line(&owner.url, 200);
    let words = ErrorMsg {
        code: "elsewhere".into(),
        message: format!(
            "this socket (?role=spectator) serves spectators only; room {room:?} is played \
             on node {} at {url}: play at {url}/rooms/{room}/ws",
            protocol::text::sanitize_line(&owner.node, 64)
        ),
    };
    let msg = protocol::codec::encode(format, &protocol::ServerMsg::Error(words));
    let mut bye = crate::upgrade::data_frame(format, &msg).to_vec();
    bye.extend_from_slice(&crate::upgrade::close_frame(
        crate::ws::close::POLICY,
        "spectators only: play at the room's owner",
    ));
    let write = conn.write_all(&bye);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), write).await;
}

impl Chat for RoomHandle {
    fn chat(&self, text: String) -> Result<(), ErrorMsg> {
        // Sub 0 is nobody's: the room says it is from "spectator".
        self.try_send(RoomCmd::Chat { sub: 0, text });
        Ok(())
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

    async fn find(
        &self,
        id: &str,
        _spectators_only: bool,
    ) -> Option<(RoomHandle, ConnMetrics, RoomMetrics)> {
        local(self, id, Transport::Ws)
    }
}

/// This node's room `id`, with the metric handles of one more spectator
/// over `transport` (its gauge and sends, the room's resyncs).
fn local(
    rooms: &Rooms,
    id: &str,
    transport: Transport,
) -> Option<(RoomHandle, ConnMetrics, RoomMetrics)> {
    let room = rooms.get(id)?;
    let conn = room.metrics.conn(transport, &room.config.id);
    let overflows = room.room_metrics.clone();
    Some((room, conn, overflows))
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
