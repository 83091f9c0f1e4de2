//! The greedy brain: shortest path to the nearest food.

use protocol::Dir;
use rand_chacha::ChaCha8Rng;

use super::{Board, Brain, Move, room_cap, safest};
use crate::view::GameView;

/// Breadth-first search to the nearest food, avoiding walls and bodies,
/// through first moves that are not dead ends and not next to another
/// head when such moves exist; without reachable food it plays survival.
#[derive(Clone, Debug)]
pub struct Greedy {
    rng: ChaCha8Rng,
}

impl Greedy {
    /// A greedy brain; `rng` breaks ties when it falls back to survival.
    pub fn new(rng: ChaCha8Rng) -> Greedy {
        Greedy { rng }
    }
}

impl Brain for Greedy {
    fn decide(&mut self, view: &GameView) -> Option<Dir> {
        let board = Board::from_view(view)?;
        let mut moves = board.safe_moves(room_cap(&board));
        // Straight on first, so equal paths keep the heading.
        moves.sort_by_key(|m| m.dir != board.heading);
        let need = board.enough_room();
        let tiers: [&dyn Fn(&Move) -> bool; 2] =
            [&|m| m.room >= need && !m.near_head, &|m| m.room >= need];
        for tier in tiers {
            let firsts: Vec<Move> = moves.iter().copied().filter(|m| tier(m)).collect();
            if firsts.is_empty() {
                continue;
            }
            if let Some((m, _)) = board.path_to_food(&firsts) {
                return Some(m.dir);
            }
            break;
        }
        Some(safest(&board, &moves, 1, &mut self.rng).unwrap_or(board.heading))
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

    fn greedy() -> Greedy {
        Greedy::new(ChaCha8Rng::seed_from_u64(0))
    }

    #[test]
    fn steps_toward_the_nearest_food() {
        let me = (1, &[(4, 3), (4, 4)][..], Dir::Up);
        assert_eq!(
            greedy().decide(&view(OPEN, 1, &[me], &[(7, 3)])),
            Some(Dir::Right)
        );
        assert_eq!(
            greedy().decide(&view(OPEN, 1, &[me], &[(1, 3)])),
            Some(Dir::Left)
        );
        assert_eq!(
            greedy().decide(&view(OPEN, 1, &[me], &[(4, 1)])),
            Some(Dir::Up)
        );
        // The nearer of two wins.
        assert_eq!(
            greedy().decide(&view(OPEN, 1, &[me], &[(1, 3), (6, 3)])),
            Some(Dir::Right)
        );
    }

    #[test]
    fn walks_around_bodies_on_the_way() {
        // Food straight up behind another snake's body lying across x=3..5.
        let v = view(
            OPEN,
            1,
            &[
                (1, &[(4, 3), (4, 4)], Dir::Up),
                (2, &[(3, 2), (4, 2), (5, 2)], Dir::Left),
            ],
            &[(4, 1)],
        );
        let d = greedy().decide(&v);
        assert!(matches!(d, Some(Dir::Left | Dir::Right)), "{d:?}");
    }

    #[test]
    fn does_not_chase_food_into_a_dead_end() {
        // Food at the bottom of a one-cell pocket above the head.
        let map = "\
#########
###.#####
###.#####
#0.....1#
#.......#
#########
";
        let v = view(
            map,
            1,
            &[(1, &[(3, 3), (3, 4), (4, 4)], Dir::Up)],
            &[(3, 1)],
        );
        let d = greedy().decide(&v);
        assert!(matches!(d, Some(Dir::Left | Dir::Right)), "{d:?}");
    }
}
