//! Bots: brains that steer a snake from a [`GameView`], and the driver that
//! runs them over the real client stack (headless mode, the embedded game,
//! the end-to-end tests).
//!
//! A brain is deterministic given its seed and the views it is shown.

mod board;
pub mod driver;
mod greedy;
mod random;
pub mod reaction;
pub mod start;
mod survival;

use protocol::Dir;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::view::GameView;

pub use board::{Board, Move};
pub use driver::{BotConfig, BotPhase, BotStats, BotUpdate, Swarm, act, run_bot};
pub use greedy::Greedy;
pub use random::Random;
pub use reaction::Reaction;
pub use start::{SpawnWatch, Waiting, start_dir};
pub use survival::Survival;

/// Something that steers a snake.
pub trait Brain {
    /// The direction to steer after the world moved, or `None` to leave
    /// the snake alone (dead, no world yet, or nothing better to do).
    fn decide(&mut self, view: &GameView) -> Option<Dir>;

    /// Told how many cells the other snakes may have moved since the
    /// world it is shown (a reaction time), so it can keep its distance
    /// from their heads. Brains that do not care ignore it.
    fn foresee(&mut self, _cells: u32) {}
}

/// The built-in brains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BotKind {
    /// Wanders at random, never into a wall or a dead end when avoidable.
    Random,
    /// Takes the shortest path to the nearest food.
    Greedy,
    /// Keeps the most room around it and away from other heads.
    Survival,
}

impl BotKind {
    /// Every kind, in the order `mix` cycles through them.
    pub const ALL: [BotKind; 3] = [BotKind::Greedy, BotKind::Survival, BotKind::Random];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            BotKind::Random => "random",
            BotKind::Greedy => "greedy",
            BotKind::Survival => "survival",
        }
    }

    /// A brain of this kind seeded with `seed`.
    pub fn brain(self, seed: u64) -> Box<dyn Brain + Send> {
        let rng = ChaCha8Rng::seed_from_u64(seed);
        match self {
            BotKind::Random => Box::new(Random::new(rng)),
            BotKind::Greedy => Box::new(Greedy::new(rng)),
            BotKind::Survival => Box::new(Survival::new(rng)),
        }
    }
}

impl std::fmt::Display for BotKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BotKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "random" => Ok(BotKind::Random),
            "greedy" => Ok(BotKind::Greedy),
            "survival" => Ok(BotKind::Survival),
            _ => Err(format!(
                "unknown bot `{s}` (expected random, greedy or survival)"
            )),
        }
    }
}

/// Which brains a group of bots gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BotMix {
    /// Every bot the same kind.
    All(BotKind),
    /// Bot `i` gets `BotKind::ALL[i % 3]`.
    Mix,
}

impl BotMix {
    /// The kind of the `i`-th bot (from 0).
    pub fn kind(self, i: usize) -> BotKind {
        match self {
            BotMix::All(k) => k,
            BotMix::Mix => BotKind::ALL[i % BotKind::ALL.len()],
        }
    }
}

impl std::str::FromStr for BotMix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mix" => Ok(BotMix::Mix),
            _ => s.parse().map(BotMix::All).map_err(|_| {
                format!("unknown bot `{s}` (expected random, greedy, survival or mix)")
            }),
        }
    }
}

/// Picks the most survivable move: enough room first, then away from
/// enemy heads (the farther the better, up to `reach` steps: 1 counts only
/// a head next to the cell), then the most room, then straight on; equals
/// by `rng`. `None` when every move dies.
pub(crate) fn safest(
    board: &Board,
    moves: &[Move],
    reach: u16,
    rng: &mut ChaCha8Rng,
) -> Option<Dir> {
    let need = board.enough_room();
    let reach = reach.max(1);
    let key = |m: &Move| {
        let gap = board.head_gap(m.to, reach).unwrap_or(reach + 1);
        (m.room >= need, gap, m.room, m.dir == board.heading)
    };
    let best = moves.iter().map(key).max()?;
    let top: Vec<&Move> = moves.iter().filter(|m| key(m) == best).collect();
    rand::seq::IndexedRandom::choose(top.as_slice(), rng).map(|m| m.dir)
}

/// The cap on flood fills: enough to tell a dead end from open floor.
pub(crate) fn room_cap(board: &Board) -> usize {
    board.enough_room() * 3 + 32
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Hand-made views for brain tests.

    use protocol::{
        Dir, Map, Mode, Pos, Score, ServerMsg, SnakeState, Snapshot, Welcome, WorldState,
    };

    use crate::view::GameView;

    /// A snake: `(id, body head first, heading)`.
    pub type Spec<'a> = (u32, &'a [(u16, u16)], Dir);

    /// A view of `map` as player `me` with `snakes` and `food`.
    pub fn view(map: &str, me: u32, snakes: &[Spec<'_>], food: &[(u16, u16)]) -> GameView {
        let map = Map::parse(map, "test").expect("test map parses");
        let mut v = GameView::new(&Welcome {
            player_id: Some(me),
            session: "s".into(),
            token: "t".into(),
            room: "test".into(),
            mode: Mode::Snake,
            tick_rate: 20,
            speed: 10,
            map,
            resumed: false,
            name: "me".into(),
            server_time_us: 0,
        });
        let mut state = WorldState::new(Mode::Snake);
        for &(id, body, dir) in snakes {
            state.snakes.push(SnakeState {
                id,
                name: format!("s{id}"),
                body: body.iter().map(|&(x, y)| Pos::new(x, y)).collect(),
                dir,
                alive: true,
                respawn_in: 0,
                boost: false,
                connected: true,
                score: Score::default(),
            });
        }
        state.snakes.sort_by_key(|s| s.id);
        state.food = food.iter().map(|&(x, y)| Pos::new(x, y)).collect();
        state.food.sort();
        let snap = Snapshot {
            ack: 0,
            tick: 1,
            checksum: state.checksum(),
            server_time_us: 0,
            state,
        };
        v.handle(&ServerMsg::Snapshot(Box::new(snap)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::view;
    use super::*;

    /// Head at (3,3) going up into a two-cell pocket; left and right open.
    const POCKET: &str = "\
#########
###.#####
###.#####
#0.....1#
#.......#
#########
";

    #[test]
    fn nobody_walks_into_a_dead_end_when_an_open_side_exists() {
        let v = view(POCKET, 1, &[(1, &[(3, 3), (3, 4)], Dir::Up)], &[]);
        for kind in [BotKind::Random, BotKind::Greedy, BotKind::Survival] {
            for seed in 0..50 {
                let d = kind.brain(seed).decide(&v);
                assert!(
                    matches!(d, Some(Dir::Left | Dir::Right)),
                    "{kind} seed {seed} chose {d:?}"
                );
            }
        }
    }

    #[test]
    fn nobody_turns_into_a_wall_when_avoidable() {
        // Head in the bottom-left corner going left: only down... is a
        // wall too, so only up is alive. Food tempts straight ahead.
        let map = "\
#######
#.....#
#0....#
#######
";
        let v = view(map, 1, &[(1, &[(1, 2), (2, 2)], Dir::Left)], &[(1, 1)]);
        for kind in [BotKind::Random, BotKind::Greedy, BotKind::Survival] {
            for seed in 0..50 {
                assert_eq!(kind.brain(seed).decide(&v), Some(Dir::Up), "{kind} {seed}");
            }
        }
    }

    #[test]
    fn brains_are_deterministic_given_a_seed() {
        // Against the top wall going up: left and right are equally good.
        let map = "#########\n#...0...#\n#.......#\n#########\n";
        let v = view(map, 1, &[(1, &[(4, 1), (4, 2)], Dir::Up)], &[]);
        for kind in [BotKind::Random, BotKind::Survival] {
            let run = |seed| {
                let mut b = kind.brain(seed);
                (0..20).map(|_| b.decide(&v)).collect::<Vec<_>>()
            };
            assert_eq!(run(7), run(7), "{kind}");
            let all: std::collections::HashSet<_> = (0..20).flat_map(run).collect();
            assert_eq!(all.len(), 2, "{kind}: seeds vary the choice between equals");
        }
    }

    #[test]
    fn a_dead_or_absent_snake_is_left_alone() {
        let v = view(POCKET, 9, &[(1, &[(3, 3), (3, 4)], Dir::Up)], &[]);
        for kind in BotKind::ALL {
            assert_eq!(kind.brain(1).decide(&v), None, "{kind}");
        }
    }

    #[test]
    fn kinds_parse_and_mix_cycles() {
        assert_eq!("greedy".parse::<BotMix>(), Ok(BotMix::All(BotKind::Greedy)));
        assert_eq!("mix".parse::<BotMix>(), Ok(BotMix::Mix));
        assert!("smart".parse::<BotMix>().is_err());
        let kinds: Vec<_> = (0..4).map(|i| BotMix::Mix.kind(i)).collect();
        assert_eq!(
            kinds,
            [
                BotKind::Greedy,
                BotKind::Survival,
                BotKind::Random,
                BotKind::Greedy
            ]
        );
    }
}
