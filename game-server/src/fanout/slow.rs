//! The slow path: a spectator whose socket could not take a whole frame.
//! Its own task finishes that frame under the connection's write-stall
//! timeout (a reader that stopped is dropped then), writes a keyframe of
//! the room now and hands it back to a shard. Only spectators that fell
//! behind (or asked for a resync) come here, so it is bounded by them,
//! never per tick.

use std::sync::Arc;

use bytes::Bytes;

use super::{Admission, Fanout, Feed, Spectator};

/// Finishes `rest`, resyncs `s` with a keyframe and re-admits it.
pub(crate) async fn catch_up<F: Feed>(
    fanout: Arc<Fanout<F>>,
    key: String,
    feed: F,
    mut s: Spectator,
    rest: Bytes,
) {
    if !rest.is_empty() && s.conn.write_all_shared(&rest).await.is_err() {
        return;
    }
    let Some((snapshot, tick, live)) = feed.resync().await else {
        let words = feed.closing(s.after);
        close(s, words).await;
        return;
    };
    // Counted as a resync when it left the fast path (`shard`).
    s.room_metrics
        .dropped
        .inc_by(tick.saturating_sub(s.after + 1));
    if s.conn.write_all_shared(&snapshot).await.is_err() {
        return;
    }
    s.metrics.sent.frames.inc();
    s.metrics.sent.bytes.inc_by(snapshot.len() as u64);
    s.after = tick;
    fanout.admit(&key, &feed, Admission { spectator: s, live });
}

/// Writes `words` (the closing event or frames), then the connection
/// closes: dropping the spectator lets its reader, if any, go, and the
/// last holder of the socket closes it.
pub(crate) async fn close(s: Spectator, words: Bytes) {
    let _ = s.conn.write_all_shared(&words).await;
}
