//! How often each limit bit, as plain atomics an operator (or `/metrics`)
//! reads with [`Counters::snapshot`]. One set per server.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of limits that bit and connections the accept layer handled.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted and served (not counting refused ones).
    pub accepted: AtomicU64,
    /// Refused with `503 server_full`: the server-wide cap was reached.
    pub refused_server_full: AtomicU64,
    /// Refused with `429 too_many_connections`: the per-address cap.
    pub refused_per_ip: AtomicU64,
    /// Closed at once without an answer: too many refusals in flight.
    pub refused_unanswered: AtomicU64,
    /// Connections closed because a request head did not arrive in time
    /// (slowloris, or an idle kept-alive connection).
    pub header_timeouts: AtomicU64,
    /// Requests answered `408`: the body did not arrive in time.
    pub body_timeouts: AtomicU64,
    /// Requests answered `413`: the body was over the limit.
    pub bodies_too_large: AtomicU64,
    /// Connections closed because writes made no progress (a peer that
    /// stopped reading, or is gone).
    pub write_stalls: AtomicU64,
    /// WebSockets closed with 1009 (a message over the size limit).
    pub ws_oversize: AtomicU64,
    /// WebSockets closed for a frame that was not a valid message (1002,
    /// 1003, 1007).
    pub ws_bad_frames: AtomicU64,
    /// WebSockets closed for sending no hello in time.
    pub ws_hello_timeouts: AtomicU64,
    /// WebSockets closed for sending nothing for the idle timeout.
    pub ws_idle_timeouts: AtomicU64,
    /// Client messages dropped by the input rate limit.
    pub inputs_dropped: AtomicU64,
    /// Sessions closed for flooding (WebSocket 1008, long-poll 429).
    pub input_floods: AtomicU64,
    /// Chat lines dropped by the chat rate limit.
    pub chat_dropped: AtomicU64,
}

/// The counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CountersSnapshot {
    pub accepted: u64,
    pub refused_server_full: u64,
    pub refused_per_ip: u64,
    pub refused_unanswered: u64,
    pub header_timeouts: u64,
    pub body_timeouts: u64,
    pub bodies_too_large: u64,
    pub write_stalls: u64,
    pub ws_oversize: u64,
    pub ws_bad_frames: u64,
    pub ws_hello_timeouts: u64,
    pub ws_idle_timeouts: u64,
    pub inputs_dropped: u64,
    pub input_floods: u64,
    pub chat_dropped: u64,
}

/// Adds one to a counter.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// Counts what the input rate limit said of one message (a drop, or
    /// the drop that makes a flood) and passes the verdict on.
    pub fn input_verdict(&self, v: super::Verdict) -> super::Verdict {
        match v {
            super::Verdict::Pass => {}
            super::Verdict::Drop => bump(&self.inputs_dropped),
            super::Verdict::Flood => {
                bump(&self.inputs_dropped);
                bump(&self.input_floods);
            }
        }
        v
    }

    /// Every counter, read now (each one atomically, not all together).
    pub fn snapshot(&self) -> CountersSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersSnapshot {
            accepted: r(&self.accepted),
            refused_server_full: r(&self.refused_server_full),
            refused_per_ip: r(&self.refused_per_ip),
            refused_unanswered: r(&self.refused_unanswered),
            header_timeouts: r(&self.header_timeouts),
            body_timeouts: r(&self.body_timeouts),
            bodies_too_large: r(&self.bodies_too_large),
            write_stalls: r(&self.write_stalls),
            ws_oversize: r(&self.ws_oversize),
            ws_bad_frames: r(&self.ws_bad_frames),
            ws_hello_timeouts: r(&self.ws_hello_timeouts),
            ws_idle_timeouts: r(&self.ws_idle_timeouts),
            inputs_dropped: r(&self.inputs_dropped),
            input_floods: r(&self.input_floods),
            chat_dropped: r(&self.chat_dropped),
        }
    }
}
