//! The per-address room creation rate, sans-IO: told who asks and when, it
//! answers yes, or no with how long until yes.
//!
//! One token bucket per address (an IPv6 address counts by its /64, which
//! is what one host or home usually gets): `burst` rooms at once, then
//! `rate` per second. Only addresses whose bucket is not full are worth
//! remembering, so the table is bounded: past [`MAX_ADDRESSES`] the full
//! buckets are forgotten, and if every one is still draining the table is
//! cleared. Forgetting only ever lets a creation through, and the
//! server-wide room cap holds regardless.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Addresses remembered at once (a few hundred KiB at most).
pub const MAX_ADDRESSES: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Room creations per address, with a burst.
#[derive(Debug)]
pub struct CreationRate {
    /// Tokens per second; 0 lets everything through.
    rate: f64,
    burst: f64,
    buckets: HashMap<IpAddr, Bucket>,
}

/// What one address is counted as: itself, or its /64 for IPv6.
fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

impl CreationRate {
    /// `rate` creations per second per address, `burst` at once.
    pub fn new(rate: f64, burst: f64) -> CreationRate {
        CreationRate {
            rate,
            burst,
            buckets: HashMap::new(),
        }
    }

    /// Takes one creation for `addr` at `now`: `Ok` if within its rate,
    /// else `Err(wait)` with the time until it would be (nothing taken).
    pub fn take(&mut self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let k = key(addr);
        if !self.buckets.contains_key(&k) && self.buckets.len() >= MAX_ADDRESSES {
            self.forget_full(now);
        }
        let (rate, burst) = (self.rate, self.burst);
        let b = self.buckets.entry(k).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let dt = now.saturating_duration_since(b.last).as_secs_f64();
        b.last = b.last.max(now);
        b.tokens = (b.tokens + dt * rate).min(burst);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }

    /// Addresses remembered now.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    fn forget_full(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
        });
        if self.buckets.len() >= MAX_ADDRESSES {
            self.buckets.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_then_the_rate_and_the_wait_says_when() {
        let t0 = Instant::now();
        // 6 a minute, 5 at once.
        let mut r = CreationRate::new(0.1, 5.0);
        for _ in 0..5 {
            assert_eq!(r.take(ip("10.0.0.1"), t0), Ok(()));
        }
        let wait = r.take(ip("10.0.0.1"), t0).unwrap_err();
        assert!((9.9..=10.0).contains(&wait.as_secs_f64()), "{wait:?}");
        // Another address has its own bucket.
        assert_eq!(r.take(ip("10.0.0.2"), t0), Ok(()));
        // Refused attempts take nothing: after the wait, one more passes.
        assert!(r.take(ip("10.0.0.1"), t0 + wait / 2).is_err());
        assert_eq!(r.take(ip("10.0.0.1"), t0 + wait), Ok(()));
        assert!(r.take(ip("10.0.0.1"), t0 + wait).is_err());
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_v4_as_v4() {
        let t0 = Instant::now();
        let mut r = CreationRate::new(0.1, 2.0);
        assert!(r.take(ip("2001:db8:1:2::1"), t0).is_ok());
        assert!(r.take(ip("2001:db8:1:2:ffff::9"), t0).is_ok());
        assert!(r.take(ip("2001:db8:1:2::77"), t0).is_err(), "same /64");
        assert!(r.take(ip("2001:db8:1:3::1"), t0).is_ok(), "another /64");
        assert!(r.take(ip("::ffff:10.1.1.1"), t0).is_ok());
        assert!(r.take(ip("10.1.1.1"), t0).is_ok());
        assert!(
            r.take(ip("10.1.1.1"), t0).is_err(),
            "mapped is the same host"
        );
    }

    #[test]
    fn the_table_stays_bounded_and_zero_rate_is_no_limit() {
        let t0 = Instant::now();
        let mut r = CreationRate::new(1.0, 1.0);
        for i in 0..(3 * MAX_ADDRESSES as u32) {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(i + 1));
            assert!(r.take(a, t0).is_ok());
            assert!(r.tracked() <= MAX_ADDRESSES);
        }
        // Buckets that refilled are forgotten first, the draining kept.
        let later = t0 + Duration::from_secs(10);
        assert!(r.take(ip("192.168.0.1"), later).is_ok());
        assert!(r.take(ip("192.168.0.1"), later).is_err());
        let mut free = CreationRate::new(0.0, 0.0);
        for _ in 0..10_000 {
            assert!(free.take(ip("10.0.0.1"), t0).is_ok());
        }
        assert_eq!(free.tracked(), 0);
    }
}
