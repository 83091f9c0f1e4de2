//! The random brain: wanders, but never into a wall, a body or a dead end
//! when another move is open.

use protocol::Dir;
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

use super::{Board, Brain, Move, room_cap};
use crate::view::GameView;

/// Chance of keeping the heading when it is among the best moves, so the
/// snake wanders instead of wriggling.
const KEEP_GOING: f64 = 0.75;

/// A random walker that avoids every avoidable death.
#[derive(Clone, Debug)]
pub struct Random {
    rng: ChaCha8Rng,
}

impl Random {
    /// A random brain drawing from `rng`.
    pub fn new(rng: ChaCha8Rng) -> Random {
        Random { rng }
    }
}

impl Brain for Random {
    fn decide(&mut self, view: &GameView) -> Option<Dir> {
        let board = Board::from_view(view)?;
        let moves = board.safe_moves(room_cap(&board));
        let need = board.enough_room();
        // The best non-empty tier: roomy and clear of heads, roomy, alive.
        let tiers: [&dyn Fn(&Move) -> bool; 3] = [
            &|m| m.room >= need && !m.near_head,
            &|m| m.room >= need,
            &|_| true,
        ];
        let pool: Vec<Dir> = tiers
            .iter()
            .map(|t| {
                moves
                    .iter()
                    .filter(|m| t(m))
                    .map(|m| m.dir)
                    .collect::<Vec<_>>()
            })
            .find(|p| !p.is_empty())
            .unwrap_or_default();
        if pool.contains(&board.heading) && self.rng.random_bool(KEEP_GOING) {
            return Some(board.heading);
        }
        Some(pool.choose(&mut self.rng).copied().unwrap_or(board.heading))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::testkit::view;
    use rand::SeedableRng;

    #[test]
    fn wanders_among_safe_moves_only() {
        let map = "\
#######
#.....#
#..0..#
#.....#
#######
";
        // Head (3,2) going right; up/down/right are all open.
        let v = view(map, 1, &[(1, &[(3, 2), (2, 2)], Dir::Right)], &[]);
        let mut b = Random::new(ChaCha8Rng::seed_from_u64(3));
        let seen: std::collections::HashSet<_> = (0..200).filter_map(|_| b.decide(&v)).collect();
        assert!(!seen.contains(&Dir::Left), "never reverses");
        assert_eq!(seen.len(), 3, "uses every open move: {seen:?}");
    }
}
