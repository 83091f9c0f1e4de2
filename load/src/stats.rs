//! What the connections of one kind record, shared by all of them: atomic
//! counters and sharded `hdrhistogram`s (a shard per few connections, so
//! recording rarely contends and memory does not grow per connection).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Histogram shards per kind of connection.
const SHARDS: usize = 8;
/// Largest recordable value, in microseconds (a minute).
const MAX_US: u64 = 60_000_000;

/// Unix time in microseconds (the clock frames carry in `server_time_us`).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A histogram of microsecond values, sharded by connection index.
#[derive(Debug)]
pub struct Sharded(Vec<Mutex<Histogram<u64>>>);

impl Default for Sharded {
    fn default() -> Self {
        Sharded(
            (0..SHARDS)
                .map(|_| {
                    // Invariant: 1..MAX_US with 3 significant digits is a valid range.
                    Mutex::new(Histogram::new_with_bounds(1, MAX_US, 3).expect("valid bounds"))
                })
                .collect(),
        )
    }
}

impl Sharded {
    /// Records `us` microseconds for connection `conn`.
    pub fn record(&self, conn: usize, us: u64) {
        let mut h = self.0[conn % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        h.saturating_record(us.clamp(1, MAX_US));
    }

    /// Every shard merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = Histogram::new_with_bounds(1, MAX_US, 3).expect("valid bounds");
        for s in &self.0 {
            let h = s.lock().unwrap_or_else(|e| e.into_inner());
            // Same bounds on both sides: adding cannot fail.
            let _ = all.add(&*h);
        }
        all
    }

    /// Forgets everything recorded so far.
    pub fn reset(&self) {
        for s in &self.0 {
            s.lock().unwrap_or_else(|e| e.into_inner()).reset();
        }
    }
}

/// Percentiles of a distribution, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of a microsecond histogram.
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// Everything the connections of one kind record.
#[derive(Debug, Default)]
pub struct KindStats {
    /// Connections that completed their handshake (and hello).
    pub opened: AtomicU64,
    /// Connections that could not open.
    pub failed: AtomicU64,
    /// Open connections that ended before the run did.
    pub closed_early: AtomicU64,
    /// Frames (ticks and keyframes) received in the window.
    pub frames: AtomicU64,
    /// Ticks that never arrived (gaps in tick numbers).
    pub missed: AtomicU64,
    /// Keyframes received after the first one (the server resynced us).
    pub resyncs: AtomicU64,
    /// Bytes received in the window (payload: WebSocket message or HTTP body).
    pub bytes: AtomicU64,
    /// Requests or messages sent in the window.
    pub requests: AtomicU64,
    /// Requests that failed or were refused in the window.
    pub errors: AtomicU64,
    /// Receive time minus `server_time_us`, per frame.
    pub frame_age: Sharded,
    /// Input sent until the first frame whose `ack` covers it.
    pub input_latency: Sharded,
}

/// Counters of one run, shared by every connection task.
#[derive(Debug, Default)]
pub struct Window {
    /// True while the measurement window is open; before it (the ramp)
    /// frames are handled but not counted.
    pub open: AtomicBool,
}

impl Window {
    /// True while figures count.
    pub fn counting(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }
}

/// Per-connection tracking of tick numbers, for missed frames.
#[derive(Debug, Default)]
pub struct TickTrack {
    last: Option<u64>,
    keyframes: u64,
}

impl TickTrack {
    /// A delta for `tick`: returns the ticks missed since the last frame.
    pub fn delta(&mut self, tick: u64) -> u64 {
        let missed = match self.last {
            Some(l) if tick > l + 1 => tick - l - 1,
            _ => 0,
        };
        self.last = Some(tick.max(self.last.unwrap_or(0)));
        missed
    }

    /// A keyframe for `tick`: returns (ticks skipped, whether it is a
    /// resync rather than the first keyframe).
    pub fn keyframe(&mut self, tick: u64) -> (u64, bool) {
        self.keyframes += 1;
        let missed = self.delta(tick);
        (missed, self.keyframes > 1)
    }
}

impl KindStats {
    /// Records one frame received now for `tick`, produced at `server_time_us`.
    pub fn frame(&self, w: &Window, conn: usize, missed: u64, server_time_us: u64) {
        if !w.counting() {
            return;
        }
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.missed.fetch_add(missed, Ordering::Relaxed);
        self.frame_age
            .record(conn, now_us().saturating_sub(server_time_us));
    }

    /// Clears the window figures (the ramp is over).
    pub fn reset_window(&self) {
        for c in [
            &self.frames,
            &self.missed,
            &self.resyncs,
            &self.bytes,
            &self.requests,
            &self.errors,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.frame_age.reset();
        self.input_latency.reset();
    }

    /// Adds `n` to a counter while the window is open.
    pub fn add(&self, w: &Window, counter: &AtomicU64, n: u64) {
        if w.counting() {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_count_missing_ticks_and_keyframes_after_the_first_are_resyncs() {
        let mut t = TickTrack::default();
        assert_eq!(t.keyframe(10), (0, false));
        assert_eq!(t.delta(11), 0);
        assert_eq!(t.delta(14), 2);
        assert_eq!(t.delta(13), 0, "late frames are not gaps");
        assert_eq!(t.keyframe(20), (5, true));
        assert_eq!(t.delta(21), 0);
    }

    #[test]
    fn sharded_percentiles_merge_every_shard() {
        let s = Sharded::default();
        for i in 1..=100u64 {
            s.record(i as usize, i * 1000);
        }
        let p = Percentiles::of(&s.merged());
        assert_eq!(p.count, 100);
        assert!((p.p50 - 50.0).abs() < 0.5, "{p:?}");
        assert!((p.max - 100.0).abs() < 0.5, "{p:?}");
    }
}
