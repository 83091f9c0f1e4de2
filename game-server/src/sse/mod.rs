//! The SSE spectator transport, `GET /rooms/{room}/events`: a thin shell
//! that writes the bytes the room formatted (see [`feed`]) to the socket,
//! with the `retry:` line first and `: keepalive` comments on a timer.

pub mod feed;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use protocol::ErrorMsg;
use protocol::codec::{Format, encode};
use protocol::sse::{Parser, RETRY_MS, format_event};
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use warp::http::StatusCode;
use warp::reply::Response;

use crate::metrics::{ConnMetrics, Transport};
use crate::outbox::Outbox;
use crate::room::{RoomCmd, RoomHandle, SubId};
use crate::routes::error_reply;

const KEEPALIVE: Bytes = Bytes::from_static(b": keepalive\n\n");

/// A spectator's place in its room; leaving it (dropping) unsubscribes,
/// whether the stream ended or the client went away.
struct Subscription {
    room: RoomHandle,
    sub: SubId,
    outbox: Arc<Outbox>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Closing the outbox is enough on its own (the room drops a
        // subscriber whose outbox is closed at its next tick); the detach
        // just does it sooner when the queue has room.
        self.outbox.close();
        self.room.try_send(RoomCmd::Detach { sub: self.sub });
    }
}

struct Pump {
    subscription: Subscription,
    pending: VecDeque<Bytes>,
    keepalive: Interval,
    shutdown: watch::Receiver<bool>,
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

/// Serves one SSE spectator of `room`. `last_event_id` is the raw header.
pub async fn serve(
    room: RoomHandle,
    last_event_id: Option<String>,
    keepalive: Duration,
    shutdown: watch::Receiver<bool>,
) -> Response {
    let last = last_event_id.and_then(|s| s.trim().parse::<u64>().ok());
    let Ok(joined) = room.spectate_sse(last).await else {
        return error_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        );
    };
    tracing::debug!(room = %room.config.id, sub = joined.sub, ?last, "sse spectator");
    let mut pending = VecDeque::with_capacity(joined.preamble.len() + 1);
    pending.push_back(Bytes::from(format!("retry: {RETRY_MS}\n\n")));
    pending.extend(joined.preamble);
    let mut ticker = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let conn = room.metrics.conn(Transport::Sse, &room.config.id);
    let pump = Pump {
        conn,
        subscription: Subscription {
            room,
            sub: joined.sub,
            outbox: joined.outbox,
        },
        pending,
        keepalive: ticker,
        shutdown,
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
        // Frames first: at shutdown the room closes our outbox after the
        // signal, so what it already queued still goes out before the end.
        let out = tokio::select! {
            biased;
            b = p.subscription.outbox.pop_queued() => match b {
                Some((q, behind)) => {
                    // Recorded as the chunk goes to hyper, which writes it
                    // to the socket before it asks for the next one.
                    p.conn.sent.depth.observe_int(behind as u64 + 1);
                    p.conn.sent.sent(1, q.bytes.len(), q.produced);
                    p.last_events = Some(q.bytes.clone());
                    Some(q.bytes)
                }
                None => None,
            },
            _ = crate::clock::until_shutdown(&mut p.shutdown) => None,
            _ = p.keepalive.tick() => Some(KEEPALIVE),
        };
        let out = out.unwrap_or_else(|| {
            p.ended = true;
            closing_event(p.last_events.as_ref())
        });
        Some((out, p))
    });
    crate::streaming::reply(chunks, "text/event-stream")
}
