//! The slow path: a spectator whose socket could not take a whole frame.
//! Its own task finishes that frame under the connection's write-stall
//! timeout (a reader that stopped is dropped then), writes a keyframe of
//! the room now and hands it back to a shard. Only spectators that fell
//! behind come here, so it is bounded by them, never per tick.

use std::sync::Arc;

use bytes::Bytes;
use protocol::ErrorMsg;
use tokio::io::AsyncWriteExt;

use super::{Admission, Fanout, Spectator, SseRooms, last_id};
use crate::sse::{SseRoom, closing_event_after};

/// Finishes `rest`, resyncs `s` with a keyframe and re-admits it.
pub(crate) async fn catch_up<L: SseRooms>(
    fanout: Arc<Fanout<L>>,
    id: String,
    room: L::Room,
    mut s: Spectator,
    rest: Bytes,
) {
    if !rest.is_empty() && s.conn.write_all(&rest).await.is_err() {
        return;
    }
    let Some((snapshot, live)) = room.resync().await else {
        finish(s, room.farewell()).await;
        return;
    };
    let Some(tick) = last_id(&snapshot) else {
        return;
    };
    s.room_metrics.resyncs.inc();
    s.room_metrics
        .dropped
        .inc_by(tick.saturating_sub(s.after + 1));
    if s.conn.write_all(&snapshot).await.is_err() {
        return;
    }
    s.metrics.sent.frames.inc();
    s.metrics.sent.bytes.inc_by(snapshot.len() as u64);
    s.after = tick;
    fanout.admit(&id, &room, Admission { spectator: s, live });
}

/// The room closed: the closing event (`farewell` says why), then the
/// connection closes.
pub(crate) async fn finish(mut s: Spectator, farewell: ErrorMsg) {
    let ev = closing_event_after(Some(s.after).filter(|&t| t > 0), farewell);
    if s.conn.write_all(&ev).await.is_ok() {
        let _ = s.conn.shutdown().await;
    }
}
