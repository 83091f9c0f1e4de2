//! The lifecycle of a polled session, sans-IO: which poll is the newest
//! (an older one answers at once with what it has), how many are in flight,
//! and when a session nobody polls is idle and gets reaped. The handlers
//! feed it the instants things happen at; it never reads a clock.

use std::time::{Duration, Instant};

/// Polls in flight and the last sign of life of one session.
#[derive(Debug)]
pub struct Lifecycle {
    in_flight: u32,
    last_active: Instant,
    /// Number of the newest poll (polls are numbered from 1).
    newest: u64,
}

impl Lifecycle {
    /// A session opened at `now`, with no poll yet.
    pub fn new(now: Instant) -> Self {
        Lifecycle {
            in_flight: 0,
            last_active: now,
            newest: 0,
        }
    }

    /// A poll arrives at `now`: it is the newest from here on, so every
    /// older poll still held should answer now. Returns its number.
    pub fn poll_begins(&mut self, now: Instant) -> u64 {
        self.in_flight += 1;
        self.last_active = self.last_active.max(now);
        self.newest += 1;
        self.newest
    }

    /// A poll answered (or its client went away) at `now`.
    pub fn poll_ends(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.last_active = self.last_active.max(now);
    }

    /// True while no newer poll than `poll` arrived.
    pub fn is_newest(&self, poll: u64) -> bool {
        poll == self.newest
    }

    /// Anything else the client did at `now` (a send) keeps it alive.
    pub fn touch(&mut self, now: Instant) {
        self.last_active = self.last_active.max(now);
    }

    /// Polls being held or answered right now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// True when no poll is in flight and none ended, nor anything else
    /// happened, for `idle` up to `now`: the client is gone.
    pub fn is_idle(&self, now: Instant, idle: Duration) -> bool {
        self.in_flight == 0 && now.saturating_duration_since(self.last_active) >= idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(15);

    #[test]
    fn a_session_nobody_polls_is_idle_after_the_timeout_and_not_before() {
        let t0 = Instant::now();
        let l = Lifecycle::new(t0);
        assert!(!l.is_idle(t0 + IDLE - Duration::from_millis(1), IDLE));
        assert!(l.is_idle(t0 + IDLE, IDLE));
    }

    #[test]
    fn a_held_poll_keeps_the_session_alive_however_long_it_holds() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(t0);
        l.poll_begins(t0);
        assert!(!l.is_idle(t0 + IDLE * 10, IDLE));
        // The idle time counts from when the poll was answered.
        l.poll_ends(t0 + IDLE * 10);
        assert!(!l.is_idle(t0 + IDLE * 11 - Duration::from_millis(1), IDLE));
        assert!(l.is_idle(t0 + IDLE * 11, IDLE));
    }

    #[test]
    fn a_newer_poll_supersedes_the_older_and_both_count_in_flight() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(t0);
        let first = l.poll_begins(t0);
        assert!(l.is_newest(first));
        let second = l.poll_begins(t0 + Duration::from_secs(1));
        assert!(!l.is_newest(first));
        assert!(l.is_newest(second));
        assert_eq!(l.in_flight(), 2);
        l.poll_ends(t0 + Duration::from_secs(1));
        l.poll_ends(t0 + Duration::from_secs(2));
        assert_eq!(l.in_flight(), 0);
        assert!(!l.is_idle(t0 + Duration::from_secs(2) + IDLE / 2, IDLE));
    }

    #[test]
    fn a_send_counts_as_life_and_time_never_goes_back() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(t0);
        l.touch(t0 + Duration::from_secs(10));
        // A late report of an earlier instant does not rewind the timer.
        l.poll_begins(t0);
        l.poll_ends(t0);
        assert!(!l.is_idle(t0 + IDLE, IDLE));
        assert!(l.is_idle(t0 + Duration::from_secs(10) + IDLE, IDLE));
    }
}
