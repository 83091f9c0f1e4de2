//! The clock offset between this client and the server, estimated the way
//! NTP does: each ping/pong (or `GET /api/time` probe) is a sample, and
//! the sample with the shortest round trip among the recent ones wins,
//! because the less time a probe spent on the network, the less room
//! there was for the two directions to differ.

use std::collections::VecDeque;

/// Recent samples the best is chosen from (one per ping: ~8 s).
pub const OFFSET_SAMPLES: usize = 8;

/// One probe: sent at `t0` and answered at `t1` (client clock), stamped
/// `ts` by the server in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetSample {
    /// Round trip `t1 - t0`, in microseconds.
    pub rtt_us: u64,
    /// Client clock minus server clock, in microseconds: the server's
    /// stamp is taken to be halfway through the round trip.
    pub offset_us: i64,
}

impl OffsetSample {
    /// The sample of a probe sent at `t0`, stamped `ts` by the server and
    /// answered at `t1`; `None` when the answer came "before" the probe
    /// (the client clock stepped back).
    pub fn new(t0: u64, ts: u64, t1: u64) -> Option<OffsetSample> {
        let rtt_us = t1.checked_sub(t0)?;
        let mid = t0 as i128 + rtt_us as i128 / 2;
        let offset_us = (mid - ts as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        Some(OffsetSample { rtt_us, offset_us })
    }
}

/// The estimator: the best of the last [`OFFSET_SAMPLES`] samples.
#[derive(Clone, Debug, Default)]
pub struct ClockOffset {
    recent: VecDeque<OffsetSample>,
}

impl ClockOffset {
    /// Takes in one sample.
    pub fn push(&mut self, s: OffsetSample) {
        if self.recent.len() == OFFSET_SAMPLES {
            self.recent.pop_front();
        }
        self.recent.push_back(s);
    }

    /// The recent sample with the shortest round trip (the newest among
    /// equals); `None` before the first.
    pub fn best(&self) -> Option<OffsetSample> {
        self.recent.iter().rev().min_by_key(|s| s.rtt_us).copied()
    }

    /// Client clock minus server clock, as best known.
    pub fn offset_us(&self) -> Option<i64> {
        self.best().map(|s| s.offset_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symmetric_probe_finds_the_offset_exactly() {
        // The client is 5 s ahead; 10 ms each way.
        let ahead = 5_000_000i64;
        let t0 = 100_000_000u64;
        let ts = (t0 as i64 + 10_000 - ahead) as u64;
        let s = OffsetSample::new(t0, ts, t0 + 20_000).unwrap();
        assert_eq!(s.rtt_us, 20_000);
        assert_eq!(s.offset_us, ahead);
    }

    #[test]
    fn the_shortest_round_trip_wins_over_recent_samples() {
        let mut c = ClockOffset::default();
        assert_eq!(c.offset_us(), None);
        // Asymmetric delays skew a slow sample by half the asymmetry.
        c.push(OffsetSample::new(0, 30_000, 40_000).unwrap()); // 30 up, 10 down
        c.push(OffsetSample::new(100_000, 101_000, 102_000).unwrap()); // 1 + 1
        c.push(OffsetSample::new(200_000, 205_000, 215_000).unwrap());
        assert_eq!(c.best().unwrap().rtt_us, 2_000);
        assert_eq!(c.offset_us(), Some(0));
        // Once it is older than the last OFFSET_SAMPLES, it no longer counts.
        for i in 0..OFFSET_SAMPLES as u64 {
            let t0 = 1_000_000 * (i + 1);
            c.push(OffsetSample::new(t0, t0 + 2_000, t0 + 6_000).unwrap());
        }
        let best = c.best().unwrap();
        assert_eq!((best.rtt_us, best.offset_us), (6_000, 1_000));
    }

    #[test]
    fn an_answer_before_its_probe_is_no_sample() {
        assert_eq!(OffsetSample::new(10, 5, 9), None);
    }
}
