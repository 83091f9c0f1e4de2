//! The survival brain: maximise the room to move, keep away from heads.

use protocol::Dir;
use rand_chacha::ChaCha8Rng;

use super::{Board, Brain, room_cap, safest};
use crate::view::GameView;

/// Picks the move with the most reachable floor (flood fill), never a dead
/// end when an open side exists, and avoids cells other heads could reach
/// first (next to them; farther when it acts late).
#[derive(Clone, Debug)]
pub struct Survival {
    rng: ChaCha8Rng,
    /// Steps from another head it keeps clear of.
    reach: u16,
}

impl Survival {
    /// A survival brain breaking ties with `rng`.
    pub fn new(rng: ChaCha8Rng) -> Survival {
        Survival { rng, reach: 1 }
    }
}

impl Brain for Survival {
    fn decide(&mut self, view: &GameView) -> Option<Dir> {
        let board = Board::from_view(view)?;
        let moves = board.safe_moves(room_cap(&board));
        Some(safest(&board, &moves, self.reach, &mut self.rng).unwrap_or(board.heading))
    }

    fn foresee(&mut self, cells: u32) {
        // A head seen `cells` ago may be `cells` nearer by now, and moves
        // once more before our turn lands.
        self.reach = u16::try_from(cells).unwrap_or(u16::MAX).saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::testkit::view;
    use rand::SeedableRng;

    const OPEN: &str = "\
#########
#.......#
#.......#
#...0...#
#.......#
#.......#
#########
";

    #[test]
    fn keeps_away_from_cells_next_to_another_head() {
        // Our head (4,3) going up; an enemy head at (6,3) could enter (5,3).
        let v = view(
            OPEN,
            1,
            &[
                (1, &[(4, 3), (4, 4)], Dir::Up),
                (2, &[(6, 3), (7, 3)], Dir::Left),
            ],
            &[],
        );
        for seed in 0..50 {
            let d = Survival::new(ChaCha8Rng::seed_from_u64(seed)).decide(&v);
            assert!(matches!(d, Some(Dir::Up | Dir::Left)), "seed {seed}: {d:?}");
        }
    }

    #[test]
    fn a_late_bot_keeps_farther_from_heads() {
        // Our head (2,3) going right, straight at an enemy head (6,3)
        // going left: 3 steps from (3,3), so not next to it, and an
        // instant bot keeps straight on. One that sees 3 cells late knows
        // that head may be there by now, and turns away.
        let v = view(
            OPEN,
            1,
            &[
                (1, &[(2, 3), (1, 3)], Dir::Right),
                (2, &[(6, 3), (7, 3)], Dir::Left),
            ],
            &[],
        );
        for seed in 0..50 {
            let mut late = Survival::new(ChaCha8Rng::seed_from_u64(seed));
            late.foresee(3);
            let d = late.decide(&v);
            assert!(matches!(d, Some(Dir::Up | Dir::Down)), "seed {seed}: {d:?}");
            let d = Survival::new(ChaCha8Rng::seed_from_u64(seed)).decide(&v);
            assert_eq!(d, Some(Dir::Right), "seed {seed}: the instant bot");
        }
    }

    #[test]
    fn prefers_the_larger_area() {
        let map = "\
#########
#0..#.#.#
#...#.#.#
#.......#
#...#.#.#
#########
";
        // Head (5,3) going left: up is a 2-cell column, down a 1-cell
        // pocket, left the open side.
        let v = view(map, 1, &[(1, &[(5, 3), (6, 3), (7, 3)], Dir::Left)], &[]);
        for seed in 0..20 {
            let d = Survival::new(ChaCha8Rng::seed_from_u64(seed)).decide(&v);
            assert_eq!(d, Some(Dir::Left), "seed {seed}");
        }
    }

    #[test]
    fn with_no_way_out_it_keeps_going() {
        let map = "\
#####
#0..#
#####
";
        let v = view(map, 1, &[(1, &[(1, 1), (2, 1), (3, 1)], Dir::Left)], &[]);
        let d = Survival::new(ChaCha8Rng::seed_from_u64(1)).decide(&v);
        assert_eq!(d, Some(Dir::Left));
    }
}
