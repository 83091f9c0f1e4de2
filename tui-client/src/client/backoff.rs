//! The one retry policy of the client: how long to wait after a failure and
//! when to stop trying. Every link uses it (the client task between
//! connections, the poll link between requests, the SSE link between
//! stream reopens), each with its own figures. Sans-IO: the time is given.

use std::time::{Duration, Instant};

/// When a streak of failures ends the trying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Give up at this many failures in a row.
    Tries(u32),
    /// Give up at a failure this long after the streak's first one.
    Time(Duration),
}

/// Delays that double from `first` up to `max`, and a [`Limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure of a streak.
    pub first: Duration,
    /// Longest delay.
    pub max: Duration,
    /// When to give up.
    pub limit: Limit,
}

impl Backoff {
    /// A constant delay (`first == max`), as an SSE `retry:` asks for.
    pub fn constant(delay: Duration, limit: Limit) -> Backoff {
        Backoff {
            first: delay,
            max: delay,
            limit,
        }
    }

    /// The delay after the `failures`-th failure in a row (from 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }

    /// Counts a failure at `now`: the delay before the next try, or `None`
    /// when the streak has reached the limit.
    pub fn next(&self, streak: &mut Streak, now: Instant) -> Option<Duration> {
        let failures = streak.fail(now);
        let exhausted = match self.limit {
            Limit::Tries(n) => failures >= n,
            Limit::Time(t) => streak.since.is_some_and(|s| now.duration_since(s) >= t),
        };
        (!exhausted).then(|| self.delay(failures))
    }
}

/// Failures in a row, and when the streak began.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Streak {
    failures: u32,
    since: Option<Instant>,
}

impl Streak {
    /// Counts a failure at `now`; returns the failures in a row so far.
    pub fn fail(&mut self, now: Instant) -> u32 {
        self.since.get_or_insert(now);
        self.failures = self.failures.saturating_add(1);
        self.failures
    }

    /// A success: the streak is over.
    pub fn reset(&mut self) {
        *self = Streak::default();
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn delays_double_to_the_cap() {
        let b = Backoff {
            first: ms(100),
            max: ms(2000),
            limit: Limit::Tries(100),
        };
        let got: Vec<_> = (1..=7).map(|n| b.delay(n)).collect();
        assert_eq!(
            got,
            [
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(2000),
                ms(2000)
            ]
        );
        // Far past the cap nothing overflows.
        assert_eq!(b.delay(u32::MAX), ms(2000));
    }

    #[test]
    fn a_try_limit_gives_up_at_the_nth_failure() {
        let b = Backoff {
            first: ms(10),
            max: ms(40),
            limit: Limit::Tries(3),
        };
        let t0 = Instant::now();
        let mut s = Streak::default();
        assert_eq!(b.next(&mut s, t0), Some(ms(10)));
        assert_eq!(b.next(&mut s, t0), Some(ms(20)));
        assert_eq!(b.next(&mut s, t0), None);
        s.reset();
        assert_eq!(b.next(&mut s, t0), Some(ms(10)), "a success starts over");
    }

    #[test]
    fn a_time_limit_counts_from_the_first_failure_of_the_streak() {
        let b = Backoff {
            first: ms(20),
            max: ms(500),
            limit: Limit::Time(Duration::from_secs(10)),
        };
        let t0 = Instant::now();
        let mut s = Streak::default();
        assert_eq!(b.next(&mut s, t0), Some(ms(20)));
        assert_eq!(b.next(&mut s, t0 + ms(9_999)), Some(ms(40)));
        assert_eq!(b.next(&mut s, t0 + ms(10_000)), None);
        assert_eq!(s.failures(), 3);
        s.reset();
        let t1 = t0 + ms(60_000);
        assert_eq!(b.next(&mut s, t1), Some(ms(20)));
        assert_eq!(b.next(&mut s, t1 + ms(5_000)), Some(ms(40)));
    }

    #[test]
    fn a_constant_backoff_never_grows() {
        let b = Backoff::constant(ms(3000), Limit::Tries(5));
        let t0 = Instant::now();
        let mut s = Streak::default();
        let got: Vec<_> = (0..5).map(|_| b.next(&mut s, t0)).collect();
        assert_eq!(
            got,
            [
                Some(ms(3000)),
                Some(ms(3000)),
                Some(ms(3000)),
                Some(ms(3000)),
                None
            ]
        );
    }
}
