//! A bot's reaction time: a delay line of the worlds it received, so its
//! brain acts on what it saw `delay` ago, as a person does. Sans-IO: fed
//! each world with the client's receive time, it hands back the newest
//! world at least `delay` old; tests drive it on synthetic time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use protocol::{Dir, PlayerId, WorldState};

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
    /// Also returns when that world was received.
    pub fn handle_world(
        &mut self,
        now: Instant,
        world: &WorldState,
    ) -> Option<(Instant, WorldState)> {
        self.line.push_back((now, world.clone()));
        let mut due = None;
        while let Some((at, _)) = self.line.front() {
            if now.saturating_duration_since(*at) < self.delay {
                break;
            }
            due = self.line.pop_front();
        }
        due
    }

    /// Forgets what is in flight (a new welcome: another world).
    pub fn clear(&mut self) {
        self.line.clear();
    }
}

/// Cells a snake moving `speed` cells a second covers in `delay`, rounded
/// up: how far another snake may have come since what a late bot sees.
pub fn cells_in(delay: Duration, speed: u32) -> u32 {
    (delay.as_secs_f64() * f64::from(speed)).ceil() as u32
}

/// The room's pace, as a late bot needs it to see ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// Ticks a second.
    pub tick_rate: u32,
    /// Cells a second.
    pub speed: u32,
}

/// One tick between the world a late bot sees and the one its decision
/// lands in: the cells its snake moves in it, and the steers that reach
/// the server before it (oldest first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lap {
    /// Cells moved in this tick (0 on a still tick).
    pub cells: u32,
    /// Steers drained at the start of this tick.
    pub turns: Vec<Dir>,
}

/// The ticks a world of tick `tick`, received at `seen_at`, still has to
/// run before a decision taken `delay` later lands: the room's own move
/// schedule ([`game_server::sim::pace`], derived from the tick alone) and,
/// for each tick, the steers in `steers` (sent at, direction; oldest
/// first) that arrive before it. Tick `tick + j` runs about `j` tick
/// intervals after `seen_at`, so a decision taken `delay` later lands in
/// the tick after the last lap. A steer sent after the last tick that
/// moved but before `seen_at` is still queued at the server (a still tick
/// does not show it), so it counts as arriving before the first lap.
pub fn laps(
    seen_at: Instant,
    tick: u64,
    pace: Pace,
    delay: Duration,
    steers: &[(Instant, Dir)],
) -> Vec<Lap> {
    let rate = pace.tick_rate.max(1);
    let interval = Duration::from_secs(1) / rate;
    let cells = |t: u64| game_server::sim::pace::cells_in(t, pace.speed, rate);
    // Ticks since the last one that moved (0 when `tick` itself moved).
    let still = (0..u64::from(rate))
        .take_while(|k| tick > *k && cells(tick - k) == 0)
        .count() as u32;
    let queued_since = seen_at.checked_sub(interval * still).unwrap_or(seen_at);
    let n = (delay.as_secs_f64() * f64::from(rate)).round() as u32;
    (1..=n)
        .map(|j| {
            // Tick `tick + j` runs about `j` intervals after `seen_at`:
            // it drains what was sent in the interval before it.
            let until = seen_at + interval * j;
            let from = if j == 1 {
                queued_since
            } else {
                seen_at + interval * (j - 1)
            };
            let turns = steers
                .iter()
                .filter(|(at, _)| *at > from && *at <= until)
                .map(|(_, d)| *d)
                .collect();
            Lap {
                cells: cells(tick + u64::from(j)),
                turns,
            }
        })
        .collect()
}

/// Anticipation, as a person does it: `world` as seen, but with snake `me`
/// moved through `laps` (the steers it already sent queued as the server
/// queues them: at most 2, none equal to or reversing the last), through
/// free cells only, to where it is by the time a decision taken now lands.
/// Other snakes stay where they were seen: what they did since is the
/// surprise a reaction time is about (a brain keeps its distance instead).
pub fn anticipate(world: &mut WorldState, map: &protocol::Map, me: PlayerId, laps: &[Lap]) {
    let blocked: std::collections::HashSet<protocol::Pos> = world
        .snakes
        .iter()
        .flat_map(|s| s.body.iter().copied())
        .collect();
    let Ok(i) = world.snakes.binary_search_by_key(&me, |s| s.id) else {
        return;
    };
    let s = &mut world.snakes[i];
    let mut queue: VecDeque<Dir> = VecDeque::new();
    for lap in laps {
        for &d in &lap.turns {
            let last = queue.back().copied().unwrap_or(s.dir);
            if queue.len() < 2 && d != last && d != last.opposite() {
                queue.push_back(d);
            }
        }
        for _ in 0..lap.cells {
            if let Some(d) = queue.pop_front() {
                s.dir = d;
            }
            let Some(head) = s.head() else { return };
            let next = head.step(s.dir, map.width, map.height);
            if map.is_wall(next) || blocked.contains(&next) {
                return;
            }
            s.body.push_front(next);
            s.body.pop_back();
        }
    }
    // Turns still queued when the decision lands are the snake's heading
    // by then, as far as the brain's next steer is concerned.
    if let Some(&d) = queue.back() {
        s.dir = d;
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
        assert_eq!(
            r.handle_world(ms(250), &at(6)).map(|(_, w)| w.tick),
            Some(1)
        );
        assert_eq!(
            r.handle_world(ms(300), &at(7)).map(|(_, w)| w.tick),
            Some(2)
        );
        // A stall, then a burst: only the newest due world is acted on.
        assert_eq!(
            r.handle_world(ms(600), &at(8)).map(|(_, w)| w.tick),
            Some(7)
        );
        assert_eq!(r.handle_world(ms(610), &at(9)), None);
        assert_eq!(
            r.handle_world(ms(850), &at(10)).map(|(_, w)| w.tick),
            Some(8)
        );
    }

    #[test]
    fn anticipation_moves_only_our_snake_and_stops_at_a_wall() {
        use protocol::{Map, Pos, Score, SnakeState};
        let map = Map::parse("#######\n#0....#\n#.....#\n#######\n", "t").unwrap();
        let snake = |id, cells: &[(u16, u16)]| SnakeState {
            id,
            name: "s".into(),
            body: cells.iter().map(|&(x, y)| Pos::new(x, y)).collect(),
            dir: Dir::Right,
            alive: true,
            respawn_in: 0,
            boost: false,
            connected: true,
            score: Score::default(),
        };
        let mut w = at(1);
        w.snakes = vec![snake(1, &[(2, 1), (1, 1)]), snake(2, &[(2, 2), (1, 2)])];
        let straight = |cells| Lap {
            cells,
            turns: vec![],
        };
        anticipate(&mut w, &map, 1, &[straight(1), straight(0), straight(1)]);
        assert_eq!(w.snakes[0].body, [Pos::new(4, 1), Pos::new(3, 1)]);
        assert_eq!(
            w.snakes[1].body,
            [Pos::new(2, 2), Pos::new(1, 2)],
            "others as seen"
        );
        anticipate(&mut w, &map, 1, &[straight(5)]);
        assert_eq!(w.snakes[0].body[0], Pos::new(5, 1), "stops before the wall");
        assert_eq!(cells_in(Duration::from_millis(250), 10), 3);
        assert_eq!(cells_in(Duration::ZERO, 10), 0);
    }

    #[test]
    fn laps_follow_the_move_schedule_and_place_each_steer_in_its_tick() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let pace = Pace {
            tick_rate: 20,
            speed: 10,
        };
        // Tick 4 moved (4 * 10 / 20 = 2 cells by then, 1.5 by tick 3).
        let steers = [
            (
                ms(0).checked_sub(Duration::from_millis(10)).unwrap(),
                Dir::Up,
            ),
            (ms(60), Dir::Left),
            (ms(240), Dir::Down),
        ];
        let l = laps(t0, 4, pace, Duration::from_millis(250), &steers);
        let cells: Vec<u32> = l.iter().map(|l| l.cells).collect();
        assert_eq!(cells, [0, 1, 0, 1, 0], "ticks 5 to 9 at 10 cells/s, 20 Hz");
        // Sent before tick 4 was seen, which moved: already in the world.
        assert_eq!(l[0].turns, []);
        assert_eq!(l[1].turns, [Dir::Left], "sent 60 ms after: tick 6");
        assert_eq!(l[4].turns, [Dir::Down], "sent 240 ms after: tick 9");
        // Tick 5 did not move: a steer sent just before it was seen is
        // still queued at the server, so it comes first.
        let l = laps(t0, 5, pace, Duration::from_millis(250), &steers);
        assert_eq!(l[0].turns, [Dir::Up]);
    }

    #[test]
    fn anticipation_queues_steers_as_the_server_does() {
        use protocol::{Map, Pos, Score, SnakeState};
        let map = Map::parse("#######\n#0....#\n#.....#\n#.....#\n#######\n", "t").unwrap();
        let mut w = at(1);
        w.snakes = vec![SnakeState {
            id: 1,
            name: "s".into(),
            body: [(2, 1), (1, 1)]
                .iter()
                .map(|&(x, y)| Pos::new(x, y))
                .collect(),
            dir: Dir::Right,
            alive: true,
            respawn_in: 0,
            boost: false,
            connected: true,
            score: Score::default(),
        }];
        let lap = |cells, turns: &[Dir]| Lap {
            cells,
            turns: turns.to_vec(),
        };
        // Down and Left sent in one tick: two cells, one turn each; the
        // Up (a reversal of the queued Down) and the third are dropped.
        anticipate(
            &mut w,
            &map,
            1,
            &[
                lap(0, &[Dir::Down, Dir::Up, Dir::Left, Dir::Right]),
                lap(1, &[]),
                lap(1, &[]),
            ],
        );
        assert_eq!(w.snakes[0].body, [Pos::new(1, 2), Pos::new(2, 2)]);
        assert_eq!(w.snakes[0].dir, Dir::Left);
        // A steer not yet taken by the time the decision lands is the
        // heading the brain starts from.
        anticipate(&mut w, &map, 1, &[lap(0, &[Dir::Down])]);
        assert_eq!(w.snakes[0].body[0], Pos::new(1, 2));
        assert_eq!(w.snakes[0].dir, Dir::Down);
    }

    #[test]
    fn no_delay_passes_every_world_through() {
        let t0 = Instant::now();
        let mut r = Reaction::new(Duration::ZERO);
        assert_eq!(r.handle_world(t0, &at(1)).map(|(_, w)| w.tick), Some(1));
        assert_eq!(r.handle_world(t0, &at(2)).map(|(_, w)| w.tick), Some(2));
        r.clear();
        assert_eq!(r.handle_world(t0, &at(3)).map(|(_, w)| w.tick), Some(3));
    }
}
