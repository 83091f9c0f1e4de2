//! A per-session rate limit with a burst, sans-IO: it is told the time of
//! every message and answers pass, drop or flood.
//!
//! A token bucket holds up to `burst` messages and refills at `rate` per
//! second; a message takes a token or is dropped. Dropped messages fill a
//! second bucket, the *excess*, which drains at `rate` too: a client a
//! little over its rate only loses the extra messages, but one whose drops
//! outrun the rate by another `burst` is flooding, and its session is
//! closed. A client sending `k` times its rate is closed after about
//! `burst / ((k - 2) * rate)` seconds once its burst is spent (never for
//! `k <= 2`); 5,000 messages at once with the defaults: 240 pass, 241 are
//! dropped, then the session closes.

use std::time::Instant;

/// What to do with one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: handle it.
    Pass,
    /// Over the limit: drop it (and count it).
    Drop,
    /// Over the limit for long enough: drop it and close the session.
    Flood,
}

/// The rate limit of one session.
#[derive(Clone, Debug)]
pub struct Throttle {
    rate: f64,
    burst: f64,
    tokens: f64,
    excess: f64,
    last: Instant,
    dropped: u64,
}

impl Throttle {
    /// A full bucket at `now`. A `rate` of 0 lets everything pass.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Throttle {
        Throttle {
            rate,
            burst,
            tokens: burst,
            excess: 0.0,
            last: now,
            dropped: 0,
        }
    }

    /// Judges one message arriving at `now` (times never go back: an
    /// earlier `now` counts as no time passed).
    pub fn check(&mut self, now: Instant) -> Verdict {
        if self.rate <= 0.0 {
            return Verdict::Pass;
        }
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.excess = (self.excess - dt * self.rate).max(0.0);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Pass;
        }
        self.dropped += 1;
        self.excess += 1.0;
        if self.excess > self.burst {
            Verdict::Flood
        } else {
            Verdict::Drop
        }
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn verdicts(t: &mut Throttle, start: Instant, n: usize, every: Duration) -> Vec<Verdict> {
        (0..n).map(|i| t.check(start + every * i as u32)).collect()
    }

    #[test]
    fn a_burst_passes_then_drops_then_a_flood_closes() {
        let now = Instant::now();
        let mut t = Throttle::new(120.0, 240.0, now);
        let v = verdicts(&mut t, now, 5000, Duration::ZERO);
        assert!(v[..240].iter().all(|v| *v == Verdict::Pass));
        assert!(v[240..480].iter().all(|v| *v == Verdict::Drop));
        assert_eq!(
            v[480],
            Verdict::Flood,
            "the first message beyond two bursts"
        );
        assert_eq!(t.dropped(), 5000 - 240);
    }

    #[test]
    fn within_the_rate_everything_passes_forever() {
        let now = Instant::now();
        let mut t = Throttle::new(10.0, 5.0, now);
        let v = verdicts(&mut t, now, 10_000, Duration::from_millis(100));
        assert!(v.iter().all(|v| *v == Verdict::Pass));
    }

    #[test]
    fn a_little_over_the_rate_drops_the_extra_but_never_closes() {
        // 15 a second against a rate of 10: a third is dropped, forever.
        let now = Instant::now();
        let mut t = Throttle::new(10.0, 5.0, now);
        let v = verdicts(&mut t, now, 15 * 600, Duration::from_micros(66_667));
        assert!(!v.contains(&Verdict::Flood));
        let dropped = v.iter().filter(|v| **v == Verdict::Drop).count();
        assert!((2800..=3100).contains(&dropped), "{dropped}");
    }

    #[test]
    fn far_over_the_rate_for_long_enough_is_a_flood() {
        // 40 a second against 10 (k = 4): closes after about
        // burst / ((k - 2) * rate) = 5 / 20 s once the burst is spent.
        let now = Instant::now();
        let mut t = Throttle::new(10.0, 5.0, now);
        let v = verdicts(&mut t, now, 400, Duration::from_millis(25));
        let first = v.iter().position(|v| *v == Verdict::Flood).unwrap();
        assert!((10..=40).contains(&first), "flood at message {first}");
    }

    #[test]
    fn the_bucket_refills_with_time_and_zero_rate_is_unlimited() {
        let now = Instant::now();
        let mut t = Throttle::new(1.0, 2.0, now);
        assert_eq!(t.check(now), Verdict::Pass);
        assert_eq!(t.check(now), Verdict::Pass);
        assert_eq!(t.check(now), Verdict::Drop);
        assert_eq!(t.check(now + Duration::from_secs(1)), Verdict::Pass);
        assert_eq!(t.check(now), Verdict::Drop, "time never goes back");
        let mut free = Throttle::new(0.0, 0.0, now);
        assert!(
            verdicts(&mut free, now, 100_000, Duration::ZERO)
                .iter()
                .all(|v| *v == Verdict::Pass)
        );
    }
}
