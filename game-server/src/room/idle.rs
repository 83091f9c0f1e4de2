//! A room's idle path: when it is empty, how it sleeps (no tick, no timer,
//! no per-tick buffers), how it wakes (on its tick grid, no catch-up
//! ticks), and how it leaves its registry once it slept long enough.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;

use super::{RoomCmd, RoomConfig, RoomTask};
use crate::sse::feed::SseFeed;

/// How a room that nobody uses leaves its registry.
pub struct IdleClose {
    /// How long the room sleeps before it tries to close.
    pub after: Duration,
    /// Called by the room task with its config once it slept `after`:
    /// removes the room from its registry and returns true, or returns
    /// false when it cannot close yet (a handle to it is still out there,
    /// so a client may be about to use it); it is asked again later.
    pub leave: LeaveRegistry,
}

/// See [`IdleClose::leave`].
pub type LeaveRegistry = Box<dyn Fn(&Arc<RoomConfig>) -> bool + Send + Sync>;

impl std::fmt::Debug for IdleClose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleClose")
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

/// How soon a room that could not close yet asks again.
pub(super) const CLOSE_RETRY: Duration = Duration::from_secs(5);

impl RoomTask {
    /// Nobody is in the room and nothing is left for the next tick to do:
    /// no player (a dropped one waiting for its resume counts), no
    /// subscriber of any transport, no input or chat pending.
    pub(super) fn is_empty(&self) -> bool {
        self.players.len() == 0
            && self.subs.is_empty()
            && self.sse_receivers() == 0
            && self.ws_live.receivers() == 0
            && self.stats.watchers.load(Ordering::Relaxed) == 0
            && self.pending.is_empty()
            && self.chat.is_empty()
    }

    /// Falls asleep: the world stays as it is (it does not step while
    /// nobody is in it), and everything kept per tick goes: the SSE ring
    /// and replay buffer, the watch renders, the queues' capacity, the
    /// world's lookup grids.
    pub(super) fn sleep(&mut self) {
        self.asleep = true;
        self.world.rest();
        self.sse = SseFeed::new(self.config.tick_rate, self.config.spectators.replay);
        self.sse_live = None;
        self.ws_live.clear();
        self.subs = BTreeMap::new();
        self.pending = Vec::new();
        self.pending_acks = BTreeMap::new();
        self.chat = Vec::new();
        self.idle.frames.clear();
        self.idle.deadline = self.idle.close.as_ref().map(|c| Instant::now() + c.after);
        self.stats.asleep.store(true, Ordering::Relaxed);
        debug!(tick = self.world.state().tick, "asleep");
    }

    /// Wakes from sleep: the grids come back and the next tick is the next
    /// point of the room's tick grid, so the ticks it slept through are
    /// neither run nor counted as overruns (no burst of catch-up ticks).
    pub(super) fn wake_up(&mut self, next: &mut Instant, period: Duration) {
        if !self.asleep {
            return;
        }
        self.asleep = false;
        self.world.wake();
        self.idle.deadline = None;
        *next = next_on_grid(*next, period, Instant::now());
        self.stats.asleep.store(false, Ordering::Relaxed);
        debug!(tick = self.world.state().tick, "awake");
    }

    /// A room asleep for its idle time closes, if its registry lets it go
    /// (see [`IdleClose::leave`]). Commands still queued then have nobody
    /// waiting for them: every sender is gone.
    pub(super) fn try_close(&mut self, commands: &mut mpsc::Receiver<RoomCmd>) -> bool {
        let Some(close) = &self.idle.close else {
            return false;
        };
        if !commands.is_empty() || !(close.leave)(&self.config) {
            return false;
        }
        commands.close();
        while commands.try_recv().is_ok() {}
        tracing::info!(tick = self.world.state().tick, "room closed: idle");
        true
    }
}

/// Resolves at `deadline`, or never without one.
pub(super) async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The first point of the tick grid (`next`, `next + period`, ...) after
/// `now`: where a room that slept resumes.
fn next_on_grid(next: Instant, period: Duration, now: Instant) -> Instant {
    if next > now {
        return next;
    }
    let period_ns = period.as_nanos().max(1);
    let behind = (now - next).as_nanos();
    let steps = behind / period_ns + 1;
    next + Duration::from_nanos(u64::try_from(period_ns * steps).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_that_slept_resumes_on_its_grid_without_catching_up() {
        let t0 = Instant::now();
        let p = Duration::from_millis(50);
        // Not yet due: unchanged.
        assert_eq!(next_on_grid(t0 + p, p, t0), t0 + p);
        // Due exactly now: the next point, not now (no tick twice).
        assert_eq!(next_on_grid(t0, p, t0), t0 + p);
        // Slept 10.3 periods past the deadline: the 11th point after it.
        let now = t0 + p * 10 + Duration::from_millis(15);
        assert_eq!(next_on_grid(t0, p, now), t0 + p * 11);
        // An hour at 60 Hz.
        let p60 = Duration::from_secs(1) / 60;
        let now = t0 + Duration::from_secs(3600) + Duration::from_micros(1);
        let n = next_on_grid(t0, p60, now);
        assert!(n > now && n <= now + p60, "{:?}", n - now);
    }
}
