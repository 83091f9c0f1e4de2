//! The SSE spectator transport, `GET /rooms/{room}/events`: a thin shell
//! that writes the bytes the room formatted (see [`feed`]) to the socket,
//! with the `retry:` line first and `: keepalive` comments on a timer.
//!
//! The types the room and this shell share ([`SseChunk`], [`Spectating`])
//! live here, and the shell reaches its room only through [`SseRoom`],
//! which the room implements: `sse` sits below `room`.

pub mod feed;

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use protocol::ErrorMsg;
use protocol::codec::{Format, encode};
use protocol::sse::{Parser, RETRY_MS, format_event};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use warp::http::StatusCode;
use warp::reply::Response;

use crate::http::error_reply;
use crate::metrics::{ConnMetrics, RoomMetrics};

/// The comment an idle stream gets (see `SpectatorConfig::keepalive`).
pub(crate) const KEEPALIVE: Bytes = Bytes::from_static(b": keepalive\n\n");

/// One tick's SSE bytes (`event: tick`, whose delta carries the
/// scoreboard rows that changed, plus that tick's chat events), shared by
/// every SSE spectator of the room.
#[derive(Clone, Debug)]
pub struct SseChunk {
    /// The tick, which is every event's `id`.
    pub tick: u64,
    /// The formatted events.
    pub bytes: Bytes,
    /// When the room produced the tick (for the send latency metric).
    pub produced: Instant,
}

/// An SSE spectator that joined: what it gets before the live ticks
/// (welcome, replayed ticks or a snapshot; see [`feed::SseFeed::join`]),
/// and the room's live ring from the tick after those.
///
/// The ring is one bounded `broadcast` channel per room: the room formats
/// and sends each tick once however many spectators watch, and a spectator
/// that falls a whole ring behind learns it (`Lagged`) and asks for a
/// keyframe ([`SseRoom::resync`]). A slow reader costs nothing but its
/// place in the ring.
#[derive(Debug)]
pub struct Spectating {
    /// The room's ring of live ticks.
    pub live: broadcast::Receiver<SseChunk>,
    /// What to send before them.
    pub preamble: Vec<Bytes>,
}

/// What an SSE spectator needs of its room. `None`: the room has closed.
pub trait SseRoom: Send + Sync + 'static {
    /// Joins as an SSE spectator, resuming after `last_event_id` if given.
    fn spectate(
        &self,
        last_event_id: Option<u64>,
    ) -> impl Future<Output = Option<Spectating>> + Send;
    /// A snapshot of the room now and its ring from the next tick, for a
    /// spectator that lagged a whole ring behind.
    fn resync(&self)
    -> impl Future<Output = Option<(Bytes, broadcast::Receiver<SseChunk>)>> + Send;
    /// Why the stream ends when the room drops its ring (a cluster's
    /// mirror says its origin left); by default, the server shutting down.
    fn farewell(&self) -> ErrorMsg {
        shutting_down()
    }
}

/// The reason a stream ends when its server shuts down.
pub fn shutting_down() -> ErrorMsg {
    ErrorMsg {
        code: "shutting_down".into(),
        message: "the room has closed: the server is shutting down".into(),
    }
}

struct Pump<R> {
    room: R,
    /// The room's overflow counters (a lag is one).
    room_metrics: RoomMetrics,
    /// The room's live ring (see [`Spectating`]).
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
fn closing_event(last_events: Option<&Bytes>, err: ErrorMsg) -> Bytes {
    let id = last_events.and_then(|b| {
        let mut p = Parser::new();
        p.push(b);
        p.last_event_id().parse().ok()
    });
    closing_event_after(id, err)
}

/// The closing event `err` of a stream whose last event had id `id`.
pub(crate) fn closing_event_after(id: Option<u64>, err: ErrorMsg) -> Bytes {
    format_event("error", id, &encode(Format::Json, &err))
}

impl<R: SseRoom> Pump<R> {
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
                    self.room_metrics.resyncs.inc();
                    self.room_metrics.dropped.inc_by(missed);
                    let (snapshot, live) = self.room.resync().await?;
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

/// What an SSE stream is counted in: the connection, and the room's
/// overflows.
pub struct SseMetrics {
    /// This spectator's connection and sends.
    pub conn: ConnMetrics,
    /// Its room's resyncs and drops.
    pub room: RoomMetrics,
}

/// Serves one SSE spectator of `room`. `last_event_id` is the raw header.
pub async fn serve(
    room: impl SseRoom,
    metrics: SseMetrics,
    last_event_id: Option<String>,
    keepalive: Duration,
) -> Response {
    let last = last_event_id.and_then(|s| s.trim().parse::<u64>().ok());
    let Some(joined) = room.spectate(last).await else {
        return error_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        );
    };
    tracing::debug!(?last, "sse spectator");
    let mut pending = VecDeque::with_capacity(joined.preamble.len() + 1);
    pending.push_back(Bytes::from(format!("retry: {RETRY_MS}\n\n")));
    pending.extend(joined.preamble);
    let mut ticker = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let pump = Pump {
        conn: metrics.conn,
        room_metrics: metrics.room,
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
                closing_event(p.last_events.as_ref(), p.room.farewell())
            }
        };
        Some((out, p))
    });
    crate::streaming::reply(chunks, "text/event-stream")
}
