//! A bot's reaction time: a delay line of the worlds it received, so its
//! brain acts on what it saw `delay` ago, as a person does. Sans-IO: fed
//! each world with the client's receive time, it hands back the newest
//! world at least `delay` old; tests drive it on synthetic time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use protocol::{PlayerId, WorldState};

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
/// up: how far ahead of what a late bot sees its own snake already is.
pub fn cells_in(delay: Duration, speed: u32) -> u32 {
    (delay.as_secs_f64() * f64::from(speed)).ceil() as u32
}

/// Anticipation, as a person does it: `world` as seen, but with snake `me`
/// moved `cells` further along its heading (through free cells only), to
/// where it is by the time a decision taken now lands. Other snakes stay
/// where they were seen: what they did since is the surprise a reaction
/// time is about. `turn` is a steer we sent since that world was
/// received: the snake is already taking it.
pub fn anticipate(
    world: &mut WorldState,
    map: &protocol::Map,
    me: PlayerId,
    cells: u32,
    turn: Option<protocol::Dir>,
) {
    let blocked: std::collections::HashSet<protocol::Pos> = world
        .snakes
        .iter()
        .flat_map(|s| s.body.iter().copied())
        .collect();
    let Ok(i) = world.snakes.binary_search_by_key(&me, |s| s.id) else {
        return;
    };
    let s = &mut world.snakes[i];
    if let Some(d) = turn.filter(|d| *d != s.dir.opposite()) {
        s.dir = d;
    }
    for _ in 0..cells {
        let Some(head) = s.head() else { return };
        let next = head.step(s.dir, map.width, map.height);
        if map.is_wall(next) || blocked.contains(&next) {
            return;
        }
        s.body.push_front(next);
        s.body.pop_back();
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
        use protocol::{Dir, Map, Pos, Score, SnakeState};
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
        anticipate(&mut w, &map, 1, 2, None);
        assert_eq!(w.snakes[0].body, [Pos::new(4, 1), Pos::new(3, 1)]);
        assert_eq!(
            w.snakes[1].body,
            [Pos::new(2, 2), Pos::new(1, 2)],
            "others as seen"
        );
        anticipate(&mut w, &map, 1, 5, None);
        assert_eq!(w.snakes[0].body[0], Pos::new(5, 1), "stops before the wall");
        assert_eq!(cells_in(Duration::from_millis(250), 10), 3);
        assert_eq!(cells_in(Duration::ZERO, 10), 0);
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
