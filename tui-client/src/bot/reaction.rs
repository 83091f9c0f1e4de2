//! A bot's reaction time: a delay line of the worlds it received, so its
//! brain acts on what it saw `delay` ago, as a person does. Sans-IO: fed
//! each world with the client's receive time, it hands back the newest
//! world at least `delay` old; tests drive it on synthetic time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use protocol::WorldState;

/// Worlds in flight between the eye and the hand.
#[derive(Clone, Debug)]
pub struct Reaction {
    delay: Duration,
    line: VecDeque<(Instant, WorldState)>,
}

impl Reaction {
    /// A delay line of `delay` (zero: every world is due at once).
    pub fn new(delay: Duration) -> Reaction {
        Reaction {
            delay,
            line: VecDeque::new(),
        }
    }

    /// The delay.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Takes in the world as received at `now`, and returns the newest
    /// world that is at least `delay` old by `now`, if one came due since
    /// the last call (older due worlds are skipped: a person sees the
    /// latest picture, not every one).
    pub fn handle_world(&mut self, now: Instant, world: &WorldState) -> Option<WorldState> {
        self.line.push_back((now, world.clone()));
        let mut due = None;
        while let Some((at, _)) = self.line.front() {
            if now.saturating_duration_since(*at) < self.delay {
                break;
            }
            due = self.line.pop_front().map(|(_, w)| w);
        }
        due
    }

    /// Forgets what is in flight (a new welcome: another world).
    pub fn clear(&mut self) {
        self.line.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Mode;

    fn at(tick: u64) -> WorldState {
        WorldState {
            tick,
            ..WorldState::new(Mode::Snake)
        }
    }

    #[test]
    fn a_world_comes_out_once_it_is_old_enough() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut r = Reaction::new(Duration::from_millis(250));
        // One world every 50 ms: the first is due at 250 ms.
        for k in 0..5 {
            assert_eq!(r.handle_world(ms(k * 50), &at(k + 1)), None, "{k}");
        }
        assert_eq!(r.handle_world(ms(250), &at(6)).map(|w| w.tick), Some(1));
        assert_eq!(r.handle_world(ms(300), &at(7)).map(|w| w.tick), Some(2));
        // A stall, then a burst: only the newest due world is acted on.
        assert_eq!(r.handle_world(ms(600), &at(8)).map(|w| w.tick), Some(7));
        assert_eq!(r.handle_world(ms(610), &at(9)), None);
        assert_eq!(r.handle_world(ms(850), &at(10)).map(|w| w.tick), Some(8));
    }

    #[test]
    fn no_delay_passes_every_world_through() {
        let t0 = Instant::now();
        let mut r = Reaction::new(Duration::ZERO);
        assert_eq!(r.handle_world(t0, &at(1)).map(|w| w.tick), Some(1));
        assert_eq!(r.handle_world(t0, &at(2)).map(|w| w.tick), Some(2));
        r.clear();
        assert_eq!(r.handle_world(t0, &at(3)).map(|w| w.tick), Some(3));
    }
}
