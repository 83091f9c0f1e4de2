//! The SSE spectator transport, `GET /rooms/{room}/events`: a thin shell
//! that writes the bytes the room formatted (see [`feed`]) to the socket,
//! with the `retry:` line first and `: keepalive` comments on a timer.

pub mod feed;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use protocol::ErrorMsg;
use protocol::codec::{Format, encode};
use protocol::sse::{Parser, RETRY_MS, format_event};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use warp::http::StatusCode;
use warp::reply::Response;

use crate::metrics::{ConnMetrics, Transport};
use crate::room::{RoomHandle, SseChunk};
use crate::routes::error_reply;

const KEEPALIVE: Bytes = Bytes::from_static(b": keepalive\n\n");

struct Pump {
    room: RoomHandle,
    /// The room's live ring (see [`crate::room::Spectating`]).
    live: broadcast::Receiver<SseChunk>,
    pending: VecDeque<Bytes>,
    keepalive: Interval,
    ended: bool,
    /// The last chunk of events written (whole events, never a comment),
    /// for the id of the closing event.
    last_events: Option<Bytes>,
    conn: ConnMetrics,
}

/// The last event of a stream that the server ends. It carries the id of
/// the last event this spectator got (every event has an id), which is
/// only parsed here, once, never per tick.
fn closing_event(last_events: Option<&Bytes>) -> Bytes {
    let id = last_events.and_then(|b| {
        let mut p = Parser::new();
        p.push(b);
        p.last_event_id().parse().ok()
    });
    let err = ErrorMsg {
        code: "shutting_down".into(),
        message: "the room has closed: the server is shutting down".into(),
    };
    format_event("error", id, &encode(Format::Json, &err))
}

impl Pump {
    /// The next chunk: a live tick, a keyframe after a lag, a keepalive, or
    /// `None` once the room has closed (it drops its ring at shutdown,
    /// after the ticks already sent, so those still go out first).
    async fn next_chunk(&mut self) -> Option<Bytes> {
        tokio::select! {
            biased;
            r = self.live.recv() => match r {
                Ok(chunk) => {
                    // Recorded as the chunk goes to hyper, which writes it
                    // to the socket before it asks for the next one.
                    self.conn.sent.depth.observe_int(self.live.len() as u64 + 1);
                    self.conn.sent.sent(1, chunk.bytes.len(), chunk.produced);
                    self.last_events = Some(chunk.bytes.clone());
                    Some(chunk.bytes)
                }
                Err(RecvError::Lagged(missed)) => {
                    // A whole ring behind: skip to a snapshot of now.
                    let stats = &self.room.stats;
                    stats.resyncs.fetch_add(1, Ordering::Relaxed);
                    stats.dropped.fetch_add(missed, Ordering::Relaxed);
                    self.room.room_metrics.resyncs.inc();
                    self.room.room_metrics.dropped.inc_by(missed);
                    let (snapshot, live) = self.room.sse_resync().await.ok()?;
                    self.live = live;
                    self.conn.sent.frames.inc();
                    self.conn.sent.bytes.inc_by(snapshot.len() as u64);
                    self.last_events = Some(snapshot.clone());
                    Some(snapshot)
                }
                Err(RecvError::Closed) => None,
            },
            _ = self.keepalive.tick() => Some(KEEPALIVE),
        }
    }
}

/// Serves one SSE spectator of `room`. `last_event_id` is the raw header.
pub async fn serve(
    room: RoomHandle,
    last_event_id: Option<String>,
    keepalive: Duration,
) -> Response {
    let last = last_event_id.and_then(|s| s.trim().parse::<u64>().ok());
    let Ok(joined) = room.spectate_sse(last).await else {
        return error_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        );
    };
    tracing::debug!(room = %room.config.id, ?last, "sse spectator");
    let mut pending = VecDeque::with_capacity(joined.preamble.len() + 1);
    pending.push_back(Bytes::from(format!("retry: {RETRY_MS}\n\n")));
    pending.extend(joined.preamble);
    let mut ticker = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let pump = Pump {
        conn: room.metrics.conn(Transport::Sse, &room.config.id),
        room,
        live: joined.live,
        pending,
        keepalive: ticker,
        ended: false,
        last_events: None,
    };
    let chunks = futures_util::stream::unfold(pump, |mut p| async move {
        if let Some(b) = p.pending.pop_front() {
            if b.starts_with(b"event:") {
                p.last_events = Some(b.clone());
                p.conn.sent.frames.inc();
                p.conn.sent.bytes.inc_by(b.len() as u64);
            }
            return Some((b, p));
        }
        if p.ended {
            return None;
        }
        let out = match p.next_chunk().await {
            Some(b) => b,
            None => {
                p.ended = true;
                closing_event(p.last_events.as_ref())
            }
        };
        Some((out, p))
    });
    crate::streaming::reply(chunks, "text/event-stream")
}
