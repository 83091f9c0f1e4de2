//! The last minute, second by second, for sparklines: the mean of each
//! figure over each second, and the bytes and requests of that second.

use std::collections::VecDeque;

use serde::Serialize;

/// Seconds of history kept.
pub const HISTORY_SECS: usize = 60;
const SECOND_US: u64 = 1_000_000;

/// Sum, count and maximum of the samples of one second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Acc {
    sum: u64,
    count: u64,
    max: u64,
}

impl Acc {
    fn add(&mut self, v: u64) {
        self.sum = self.sum.saturating_add(v);
        self.count += 1;
        self.max = self.max.max(v);
    }
    fn mean(&self) -> Option<u64> {
        (self.count > 0).then(|| self.sum / self.count)
    }
}

/// Which figure a sample belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    Rtt,
    FrameAge,
    Input,
    Jitter,
}

/// One second of figures. `None`: no sample that second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Second {
    /// Mean round trip.
    pub rtt_us: Option<u64>,
    /// Mean frame age.
    pub frame_age_us: Option<u64>,
    /// Oldest frame of the second.
    pub frame_age_max_us: Option<u64>,
    /// Mean input latency.
    pub input_us: Option<u64>,
    /// Mean jitter.
    pub jitter_us: Option<u64>,
    /// Frames received.
    pub frames: u64,
    /// Bytes received.
    pub bytes_down: u64,
    /// Bytes sent.
    pub bytes_up: u64,
    /// HTTP requests made (a WebSocket counts its upgrade).
    pub requests: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Open {
    rtt: Acc,
    age: Acc,
    input: Acc,
    jitter: Acc,
    frames: u64,
    bytes_down: u64,
    bytes_up: u64,
    requests: u64,
}

impl Open {
    fn close(&self) -> Second {
        Second {
            rtt_us: self.rtt.mean(),
            frame_age_us: self.age.mean(),
            frame_age_max_us: (self.age.count > 0).then_some(self.age.max),
            input_us: self.input.mean(),
            jitter_us: self.jitter.mean(),
            frames: self.frames,
            bytes_down: self.bytes_down,
            bytes_up: self.bytes_up,
            requests: self.requests,
        }
    }
}

/// Seconds since the meter started, closed as time passes.
#[derive(Clone, Debug, Default)]
pub struct History {
    closed: VecDeque<Second>,
    open: Open,
    /// Start of the open second (client unix micros); `None` before the first event.
    open_since: Option<u64>,
}

impl History {
    /// Closes the seconds that ended by `now_us` (empty ones included, so
    /// a silent link shows as a gap).
    pub fn advance(&mut self, now_us: u64) {
        let Some(since) = self.open_since else {
            self.open_since = Some(now_us);
            return;
        };
        let elapsed = now_us.saturating_sub(since) / SECOND_US;
        if elapsed == 0 {
            return;
        }
        self.push(self.open.close());
        self.open = Open::default();
        for _ in 1..elapsed.min(HISTORY_SECS as u64) {
            self.push(Second::default());
        }
        self.open_since = Some(since + elapsed * SECOND_US);
    }

    fn push(&mut self, s: Second) {
        if self.closed.len() == HISTORY_SECS {
            self.closed.pop_front();
        }
        self.closed.push_back(s);
    }

    /// Adds a sample to the open second.
    pub fn record(&mut self, figure: Figure, us: u64) {
        match figure {
            Figure::Rtt => self.open.rtt.add(us),
            Figure::FrameAge => self.open.age.add(us),
            Figure::Input => self.open.input.add(us),
            Figure::Jitter => self.open.jitter.add(us),
        }
    }

    /// Counts a frame in the open second.
    pub fn frame(&mut self) {
        self.open.frames += 1;
    }

    /// Adds traffic to the open second.
    pub fn traffic(&mut self, bytes_down: u64, bytes_up: u64, requests: u64) {
        self.open.bytes_down += bytes_down;
        self.open.bytes_up += bytes_up;
        self.open.requests += requests;
    }

    /// The closed seconds, oldest first (at most [`HISTORY_SECS`]).
    pub fn seconds(&self) -> Vec<Second> {
        self.closed.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_second_keeps_its_own_means_and_silent_seconds_are_gaps() {
        let mut h = History::default();
        h.advance(0);
        h.record(Figure::FrameAge, 10);
        h.record(Figure::FrameAge, 30);
        h.frame();
        h.traffic(100, 10, 1);
        h.advance(999_999);
        assert!(h.seconds().is_empty(), "the first second is still open");
        h.advance(1_000_000);
        h.record(Figure::Rtt, 500);
        h.advance(3_500_000);
        let s = h.seconds();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].frame_age_us, Some(20));
        assert_eq!(s[0].frame_age_max_us, Some(30));
        assert_eq!((s[0].frames, s[0].bytes_down, s[0].requests), (1, 100, 1));
        assert_eq!(s[0].rtt_us, None);
        assert_eq!(s[1].rtt_us, Some(500));
        assert_eq!(s[2], Second::default(), "a second with nothing");
    }

    #[test]
    fn only_the_last_minute_is_kept() {
        let mut h = History::default();
        h.advance(0);
        for i in 1..=90u64 {
            h.record(Figure::Input, i);
            h.advance(i * 1_000_000);
        }
        let s = h.seconds();
        assert_eq!(s.len(), HISTORY_SECS);
        assert_eq!(s.last().unwrap().input_us, Some(90));
        assert_eq!(s[0].input_us, Some(31));
        // A long silence does not loop a million times.
        h.advance(u64::MAX / 2);
        assert!(h.seconds().iter().all(|s| *s == Second::default()));
    }
}
