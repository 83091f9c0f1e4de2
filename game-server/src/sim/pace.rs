//! Pace: how many cells a snake moves in a tick, apart from the tick rate.
//!
//! A room ticks at `tick_rate` Hz (input latency) while its snakes move at
//! `speed` cells per second (what a person can steer). The cells moved by
//! the end of tick `t` are `floor(t * speed / tick_rate)`, so a tick moves
//! the difference: 0, 1 or more cells. Derived from the world tick alone,
//! the schedule keeps nothing per snake that would change on a tick without
//! a move (a delta of such a tick stays empty), and a client needs nothing
//! beyond the tick it already has to rebuild the same world.

use protocol::Mode;

/// Default snake speed, cells per second: classic snake games move 8 to
/// 12; 10 was picked by playing it (see README).
pub const SNAKE_SPEED: u32 = 10;
/// Default light-cycle speed: a trail never shrinks, so rounds end by
/// boxing in rather than by reflexes; a little faster keeps them short.
pub const TRON_SPEED: u32 = 12;
/// Fastest a room may ask for (boosting doubles it).
pub const MAX_SPEED: u32 = 30;
/// Boost multiplies the room's speed by this.
pub const BOOST_FACTOR: u32 = 2;

/// The default speed of a mode, in cells per second.
pub fn default_speed(mode: Mode) -> u32 {
    match mode {
        Mode::Snake => SNAKE_SPEED,
        Mode::Tron => TRON_SPEED,
    }
}

/// Cells a snake at `speed` cells/s has moved by the end of `tick`.
fn cells_by(tick: u64, speed: u32, tick_rate: u32) -> u64 {
    tick * u64::from(speed) / u64::from(tick_rate.max(1))
}

/// Cells a snake at `speed` cells/s moves in `tick` (ticks count from 1).
pub fn cells_in(tick: u64, speed: u32, tick_rate: u32) -> u32 {
    let now = cells_by(tick, speed, tick_rate);
    let before = cells_by(tick.saturating_sub(1), speed, tick_rate);
    // At most `speed` per tick (tick_rate >= 1), which fits a u32.
    (now - before) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_speed_that_does_not_divide_the_tick_rate_moves_exactly_over_time() {
        for (speed, rate) in [(7, 20), (13, 30), (10, 20), (30, 7), (1, 60), (20, 20)] {
            let mut moved = 0u64;
            for t in 1..=10_000u64 {
                let n = cells_in(t, speed, rate);
                assert!(n <= speed.div_ceil(rate), "{speed}/{rate}: {n} at {t}");
                moved += u64::from(n);
                assert_eq!(moved, t * u64::from(speed) / u64::from(rate));
            }
        }
    }

    #[test]
    fn ten_cells_a_second_at_20_hz_move_every_other_tick() {
        let moves: Vec<u32> = (1..=6).map(|t| cells_in(t, 10, 20)).collect();
        assert_eq!(moves, [0, 1, 0, 1, 0, 1]);
    }
}
