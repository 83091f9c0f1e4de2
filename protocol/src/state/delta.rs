//! The delta: what changed in one tick, as little of it as says it exactly.
//!
//! Protocol v2 keeps the common case small: a snake that moved is its id,
//! the cells it entered and how many tail cells it lost; its other small
//! fields travel only in the tick they change, and the scoreboard only as
//! the rows that changed. Snakes that joined (or changed in a way a move
//! cannot say) travel whole. How these look on the wire (fields left out of
//! JSON when empty, a packed binary move) is `crate::wire`.

use std::collections::{BTreeMap, VecDeque};

use serde::Deserialize;

use super::{DeltaError, Score, SnakeState, WorldState};
use crate::PlayerId;
use crate::geom::{Dir, Pos};
use crate::msg::Mode;

/// Most head cells a snake can enter in one tick that a [`SnakeMove`] will
/// express (boost moves two); a longer jump travels as a whole snake.
pub const MAX_HEAD_STEP: usize = 4;

/// What changed in one tick. Every list is sorted (snakes by id, cells by
/// position); an empty delta (nothing moved) is a few bytes.
///
/// Deserialize is derived (absent fields are empty); Serialize is written
/// in `crate::wire`, which leaves empty fields out of JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Delta {
    /// New round number, when it changed.
    #[serde(default)]
    pub round: Option<u32>,
    /// Snakes that moved or changed a small field, by ascending id.
    #[serde(default)]
    pub moved: Vec<SnakeMove>,
    /// Whole snakes: ones that joined, and ones that changed in a way a
    /// move cannot say (a new name, a jump); they replace what the client
    /// holds. By ascending id.
    #[serde(default)]
    pub snakes: Vec<SnakeState>,
    /// Snakes that left the room.
    #[serde(default)]
    pub removed: Vec<PlayerId>,
    #[serde(default)]
    pub food_added: Vec<Pos>,
    #[serde(default)]
    pub food_removed: Vec<Pos>,
    /// The scoreboard's rows that changed this tick (of snakes not in
    /// `snakes`, which carry their own).
    #[serde(default)]
    pub scores: BTreeMap<PlayerId, Score>,
}

impl Delta {
    /// True when the tick changed nothing (no snake moved).
    pub fn is_empty(&self) -> bool {
        self == &Delta::default()
    }
}

/// A snake that moved, or changed one of its small fields: cells pushed at
/// the head, cells cut from the tail, and each other field only when it
/// changed this tick (`None`: as before).
///
/// Two things go without saying, because they are what every tick does:
/// a `trim` of `None` is the mode's usual one (snake: as many cells as the
/// head entered, the tail follows; tron: none, the trail stays), and a dead
/// snake's `respawn_in` counts down by one every tick (see
/// [`WorldState::apply`]); the fields say only when something else happened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnakeMove {
    pub id: PlayerId,
    /// New head cells in the order they were entered (the last is the head).
    pub head: Vec<Pos>,
    /// Cells removed from the tail (before the new head cells are pushed);
    /// `None`: the mode's usual trim ([`usual_trim`]).
    pub trim: Option<u32>,
    pub dir: Option<Dir>,
    pub alive: Option<bool>,
    pub respawn_in: Option<u16>,
    pub boost: Option<bool>,
    pub connected: Option<bool>,
}

impl SnakeMove {
    /// A move that changes nothing.
    fn is_noop(&self) -> bool {
        self.head.is_empty()
            && self.trim.is_none_or(|t| t == 0)
            && self.dir.is_none()
            && self.alive.is_none()
            && self.respawn_in.is_none()
            && self.boost.is_none()
            && self.connected.is_none()
    }
}

impl WorldState {
    /// The delta that turns `old` into `self` (ticks are not compared: the
    /// frame carries its own tick).
    pub fn diff(&self, old: &WorldState) -> Delta {
        let mut d = Delta {
            round: (self.round != old.round).then_some(self.round),
            ..Delta::default()
        };
        for new in &self.snakes {
            let Some(prev) = old.snake(new.id) else {
                d.snakes.push(new.clone());
                continue;
            };
            if prev == new && !counts_down(prev) {
                continue;
            }
            match snake_move(self.mode, prev, new) {
                Some(m) => {
                    if !m.is_noop() {
                        d.moved.push(m);
                    }
                    if new.score != prev.score {
                        d.scores.insert(new.id, new.score);
                    }
                }
                None => d.snakes.push(new.clone()),
            }
        }
        d.removed = old
            .snakes
            .iter()
            .filter(|s| self.snake(s.id).is_none())
            .map(|s| s.id)
            .collect();
        let (added, removed) = sorted_difference(&self.food, &old.food);
        d.food_added = added;
        d.food_removed = removed;
        d
    }

    /// Applies a delta in place. On error the state may be partly changed;
    /// callers resync from a snapshot.
    ///
    /// Every dead snake's `respawn_in` counts down by one first (the delta
    /// names it only when it does something else).
    pub fn apply(&mut self, d: &Delta) -> Result<(), DeltaError> {
        for s in self.snakes.iter_mut().filter(|s| counts_down(s)) {
            s.respawn_in -= 1;
        }
        if let Some(r) = d.round {
            self.round = r;
        }
        self.snakes.retain(|s| !d.removed.contains(&s.id));
        for s in &d.snakes {
            match self.snakes.binary_search_by_key(&s.id, |x| x.id) {
                Ok(i) => self.snakes[i] = s.clone(),
                Err(i) => self.snakes.insert(i, s.clone()),
            }
        }
        let mode = self.mode;
        for m in &d.moved {
            apply_move(mode, self.snake_mut(m.id)?, m)?;
        }
        for (&id, &score) in &d.scores {
            self.snake_mut(id)?.score = score;
        }
        if !d.food_removed.is_empty() {
            self.food
                .retain(|p| d.food_removed.binary_search(p).is_err());
        }
        for &p in &d.food_added {
            if let Err(i) = self.food.binary_search(&p) {
                self.food.insert(i, p);
            }
        }
        Ok(())
    }

    fn snake_mut(&mut self, id: PlayerId) -> Result<&mut SnakeState, DeltaError> {
        let i = self
            .snakes
            .binary_search_by_key(&id, |x| x.id)
            .map_err(|_| DeltaError::UnknownSnake(id))?;
        Ok(&mut self.snakes[i])
    }
}

/// The trim a move of `pushed` head cells has unless it says otherwise.
pub fn usual_trim(mode: Mode, pushed: usize) -> u32 {
    match mode {
        Mode::Snake => pushed as u32,
        Mode::Tron => 0,
    }
}

/// A dead snake waiting to respawn: its countdown runs by itself.
fn counts_down(s: &SnakeState) -> bool {
    !s.alive && s.respawn_in > 0
}

fn apply_move(mode: Mode, s: &mut SnakeState, m: &SnakeMove) -> Result<(), DeltaError> {
    let trim = m.trim.unwrap_or_else(|| usual_trim(mode, m.head.len()));
    if trim as usize > s.body.len() {
        return Err(DeltaError::Trim {
            id: m.id,
            trim,
            len: s.body.len(),
        });
    }
    s.body.truncate(s.body.len() - trim as usize);
    for &p in &m.head {
        s.body.push_front(p);
    }
    s.dir = m.dir.unwrap_or(s.dir);
    s.alive = m.alive.unwrap_or(s.alive);
    s.respawn_in = m.respawn_in.unwrap_or(s.respawn_in);
    s.boost = m.boost.unwrap_or(s.boost);
    s.connected = m.connected.unwrap_or(s.connected);
    Ok(())
}

/// The move from `prev` to `new` (score aside), or `None` when a move
/// cannot say it (a new name, or a body that is not the old one with cells
/// pushed at the head and cut from the tail).
fn snake_move(mode: Mode, prev: &SnakeState, new: &SnakeState) -> Option<SnakeMove> {
    if prev.name != new.name {
        return None;
    }
    let (pushed, trim) = body_move(&prev.body, &new.body)?;
    let counted = prev.respawn_in - u16::from(counts_down(prev));
    Some(SnakeMove {
        id: new.id,
        head: new.body.iter().take(pushed).rev().copied().collect(),
        trim: changed(usual_trim(mode, pushed), trim as u32),
        dir: changed(prev.dir, new.dir),
        alive: changed(prev.alive, new.alive),
        respawn_in: changed(counted, new.respawn_in),
        boost: changed(prev.boost, new.boost),
        connected: changed(prev.connected, new.connected),
    })
}

/// `Some(new)` when it differs from `old`.
fn changed<T: PartialEq>(old: T, new: T) -> Option<T> {
    (old != new).then_some(new)
}

/// Finds `(pushed, trimmed)` such that `new` is `old` with `trimmed` cells cut
/// from the tail and `pushed` cells put at the head.
fn body_move(old: &VecDeque<Pos>, new: &VecDeque<Pos>) -> Option<(usize, usize)> {
    for pushed in 0..=MAX_HEAD_STEP.min(new.len()) {
        let kept = new.len() - pushed;
        if kept > old.len() {
            continue;
        }
        if new.iter().skip(pushed).eq(old.iter().take(kept)) {
            return Some((pushed, old.len() - kept));
        }
    }
    None
}

/// `(in a not in b, in b not in a)` for two sorted slices.
fn sorted_difference(a: &[Pos], b: &[Pos]) -> (Vec<Pos>, Vec<Pos>) {
    let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    loop {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                only_a.push(*x);
                i += 1;
            }
            (Some(_), Some(y)) => {
                only_b.push(*y);
                j += 1;
            }
            (Some(x), None) => {
                only_a.push(*x);
                i += 1;
            }
            (None, Some(y)) => {
                only_b.push(*y);
                j += 1;
            }
            (None, None) => return (only_a, only_b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snake(body: &[(u16, u16)], length: u32) -> SnakeState {
        SnakeState {
            id: 1,
            name: "a".into(),
            body: body.iter().map(|&(x, y)| Pos { x, y }).collect(),
            dir: Dir::Right,
            alive: true,
            respawn_in: 0,
            boost: false,
            connected: true,
            score: Score {
                length,
                best: length,
                ..Score::default()
            },
        }
    }

    fn world(s: SnakeState) -> WorldState {
        WorldState {
            snakes: vec![s],
            ..WorldState::new(Mode::Snake)
        }
    }

    fn rebuilds(old: &WorldState, new: &WorldState) -> Delta {
        let d = new.diff(old);
        let mut rebuilt = old.clone();
        rebuilt.apply(&d).unwrap();
        assert_eq!(&rebuilt, new);
        d
    }

    #[test]
    fn a_plain_move_is_id_head_and_trim_only() {
        let old = world(snake(&[(2, 1), (1, 1)], 2));
        let new = world(snake(&[(3, 1), (2, 1)], 2));
        let d = rebuilds(&old, &new);
        let want = SnakeMove {
            id: 1,
            head: vec![Pos::new(3, 1)],
            trim: None, // snake mode: the tail follows the head
            ..SnakeMove::default()
        };
        assert_eq!(d.moved, [want]);
        assert!(d.scores.is_empty() && d.snakes.is_empty());
    }

    #[test]
    fn a_move_that_grows_and_turns_carries_the_score_row_and_the_dir() {
        let old = world(snake(&[(2, 1), (1, 1)], 2));
        let mut grown = snake(&[(2, 2), (2, 1), (1, 1)], 3);
        grown.dir = Dir::Down;
        let new = world(grown);
        let d = rebuilds(&old, &new);
        assert_eq!(
            (d.moved[0].trim, d.moved[0].dir),
            (Some(0), Some(Dir::Down))
        );
        assert_eq!(d.scores.get(&1).map(|s| s.length), Some(3));
    }

    #[test]
    fn a_score_change_alone_is_a_row_without_a_move() {
        let old = world(snake(&[(2, 1)], 1));
        let mut s = snake(&[(2, 1)], 1);
        s.score.kills = 1;
        let new = world(s);
        let d = rebuilds(&old, &new);
        assert!(d.moved.is_empty());
        assert_eq!(d.scores.len(), 1);
    }

    #[test]
    fn a_respawn_countdown_goes_without_saying_and_a_tron_move_trims_nothing() {
        let mut dead = snake(&[], 0);
        (dead.alive, dead.respawn_in) = (false, 5);
        let mut later = dead.clone();
        later.respawn_in = 4;
        assert!(rebuilds(&world(dead.clone()), &world(later)).is_empty());
        // A countdown that did not run is said.
        let d = rebuilds(&world(dead.clone()), &world(dead));
        assert_eq!(d.moved[0].respawn_in, Some(5));
        let mut old = world(snake(&[(2, 1), (1, 1)], 2));
        old.mode = Mode::Tron;
        let mut new = world(snake(&[(3, 1), (2, 1), (1, 1)], 2));
        new.mode = Mode::Tron;
        assert_eq!(rebuilds(&old, &new).moved[0].trim, None);
    }

    #[test]
    fn nothing_moved_is_an_empty_delta() {
        let w = world(snake(&[(2, 1), (1, 1)], 2));
        assert!(rebuilds(&w, &w).is_empty());
    }

    #[test]
    fn a_rename_or_a_jump_travels_whole() {
        let old = world(snake(&[(2, 1), (1, 1)], 2));
        let mut renamed = snake(&[(2, 1), (1, 1)], 2);
        renamed.name = "b".into();
        assert_eq!(rebuilds(&old, &world(renamed)).snakes.len(), 1);
        // Short bodies always read as a move (cut all, push all); a jump
        // of more than MAX_HEAD_STEP new cells cannot.
        let jumped = world(snake(&[(9, 9), (9, 8), (9, 7), (9, 6), (9, 5)], 2));
        assert_eq!(rebuilds(&old, &jumped).snakes.len(), 1);
    }

    #[test]
    fn a_move_of_an_unknown_snake_or_too_long_a_trim_is_an_error() {
        let mut w = world(snake(&[(2, 1)], 1));
        let mut d = Delta::default();
        d.moved.push(SnakeMove {
            id: 9,
            ..SnakeMove::default()
        });
        assert_eq!(w.apply(&d), Err(DeltaError::UnknownSnake(9)));
        d.moved[0] = SnakeMove {
            id: 1,
            trim: Some(2),
            ..SnakeMove::default()
        };
        assert!(matches!(w.apply(&d), Err(DeltaError::Trim { .. })));
        let mut d = Delta::default();
        d.scores.insert(9, Score::default());
        assert_eq!(w.apply(&d), Err(DeltaError::UnknownSnake(9)));
    }
}
