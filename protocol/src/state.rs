//! The world state both sides hold, the delta that moves it one tick, and
//! the checksum that proves a client rebuilt it exactly.
//!
//! The server's simulation owns a [`WorldState`] and mutates it; after each
//! tick the room computes [`WorldState::diff`] against the previous state and
//! sends the [`Delta`]. Clients start from a snapshot and call
//! [`WorldState::apply_frame`] for every tick; the checksum in the frame must
//! then equal [`WorldState::checksum`] of their copy.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::PlayerId;
use crate::geom::{Dir, Pos};
use crate::msg::{Mode, TickFrame};

/// The whole visible world after a tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldState {
    pub tick: u64,
    /// Fixed for a room's lifetime, so deltas never carry it.
    pub mode: Mode,
    /// Tron rounds played so far (snake mode: stays 0).
    pub round: u32,
    /// Every snake in the room, dead or alive, sorted by `id`.
    pub snakes: Vec<SnakeState>,
    /// Food cells, sorted.
    pub food: Vec<Pos>,
}

/// One player's snake (or light cycle).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnakeState {
    pub id: PlayerId,
    pub name: String,
    /// Head first. Empty while dead.
    pub body: VecDeque<Pos>,
    pub dir: Dir,
    pub alive: bool,
    /// Ticks until respawn while dead (0 while alive, or when waiting for
    /// the next tron round).
    pub respawn_in: u16,
    pub boost: bool,
    /// False while the player's connection is gone but its grace period runs.
    pub connected: bool,
    pub score: Score,
}

impl SnakeState {
    /// The head cell, if alive.
    pub fn head(&self) -> Option<Pos> {
        self.body.front().copied()
    }
}

/// Scoreboard figures of one player.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    /// Current length (0 while dead).
    pub length: u32,
    pub kills: u32,
    pub deaths: u32,
    /// Best length reached.
    pub best: u32,
    /// Tron rounds won.
    pub wins: u32,
}

/// What changed in one tick.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// New round number, when it changed.
    pub round: Option<u32>,
    /// Snakes that changed, by ascending id.
    pub snakes: Vec<SnakeDelta>,
    /// Snakes that left the room.
    pub removed: Vec<PlayerId>,
    pub food_added: Vec<Pos>,
    pub food_removed: Vec<Pos>,
}

/// A change to one snake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnakeDelta {
    /// A snake that joined, respawned or changed shape other than by moving.
    Full(SnakeState),
    /// A snake that moved: cells pushed at the head, cells cut from the tail.
    Moved(SnakeMove),
}

/// The common case: a snake moved (and maybe grew, boosted or scored).
/// Its small fields are always sent; its score only when it changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnakeMove {
    pub id: PlayerId,
    /// New head cells in the order they were entered (the last is the head).
    pub head: Vec<Pos>,
    /// Cells removed from the tail.
    pub trim: u32,
    pub dir: Dir,
    pub alive: bool,
    pub respawn_in: u16,
    pub boost: bool,
    pub connected: bool,
    /// The new score, only when it changed this tick (`null` otherwise).
    pub score: Option<Score>,
}

/// A delta or frame that does not fit the state it is applied to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    #[error("frame for tick {got} does not follow tick {have}")]
    Gap { have: u64, got: u64 },
    #[error("delta names snake {0}, which is not in the world")]
    UnknownSnake(PlayerId),
    #[error("delta trims {trim} cells from snake {id}, which has {len}")]
    Trim { id: PlayerId, trim: u32, len: usize },
    #[error(
        "checksum mismatch at tick {tick}: frame says {expected:#018x}, world is {actual:#018x}"
    )]
    Desync {
        tick: u64,
        expected: u64,
        actual: u64,
    },
}

/// Most head cells a snake can enter in one tick that a `Moved` delta will
/// express (boost moves two).
const MAX_HEAD_STEP: usize = 4;

impl WorldState {
    /// An empty world.
    pub fn new(mode: Mode) -> Self {
        WorldState {
            tick: 0,
            mode,
            round: 0,
            snakes: Vec::new(),
            food: Vec::new(),
        }
    }

    /// The snake with `id`.
    pub fn snake(&self, id: PlayerId) -> Option<&SnakeState> {
        self.snakes
            .binary_search_by_key(&id, |s| s.id)
            .ok()
            .map(|i| &self.snakes[i])
    }

    /// A 64-bit FNV-1a hash of the world's canonical (bincode) encoding.
    /// Equal states give equal checksums on every platform.
    pub fn checksum(&self) -> u64 {
        crate::codec::fnv1a_of(self)
    }

    /// The delta that turns `old` into `self` (ticks are not compared: the
    /// frame carries its own tick).
    pub fn diff(&self, old: &WorldState) -> Delta {
        let mut d = Delta {
            round: (self.round != old.round).then_some(self.round),
            ..Delta::default()
        };
        for new in &self.snakes {
            match old.snake(new.id) {
                Some(prev) if prev == new => {}
                Some(prev) => d.snakes.push(snake_delta(prev, new)),
                None => d.snakes.push(SnakeDelta::Full(new.clone())),
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
    pub fn apply(&mut self, d: &Delta) -> Result<(), DeltaError> {
        if let Some(r) = d.round {
            self.round = r;
        }
        self.snakes.retain(|s| !d.removed.contains(&s.id));
        for sd in &d.snakes {
            match sd {
                SnakeDelta::Full(s) => match self.snakes.binary_search_by_key(&s.id, |x| x.id) {
                    Ok(i) => self.snakes[i] = s.clone(),
                    Err(i) => self.snakes.insert(i, s.clone()),
                },
                SnakeDelta::Moved(m) => {
                    let i = self
                        .snakes
                        .binary_search_by_key(&m.id, |x| x.id)
                        .map_err(|_| DeltaError::UnknownSnake(m.id))?;
                    let s = &mut self.snakes[i];
                    if m.trim as usize > s.body.len() {
                        return Err(DeltaError::Trim {
                            id: m.id,
                            trim: m.trim,
                            len: s.body.len(),
                        });
                    }
                    for _ in 0..m.trim {
                        s.body.pop_back();
                    }
                    for &p in &m.head {
                        s.body.push_front(p);
                    }
                    s.dir = m.dir;
                    s.alive = m.alive;
                    s.respawn_in = m.respawn_in;
                    s.boost = m.boost;
                    s.connected = m.connected;
                    if let Some(score) = m.score {
                        s.score = score;
                    }
                }
            }
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

    /// Applies a tick frame: checks it follows this state's tick, applies
    /// its delta and verifies the checksum.
    pub fn apply_frame(&mut self, f: &TickFrame) -> Result<(), DeltaError> {
        if f.tick != self.tick + 1 {
            return Err(DeltaError::Gap {
                have: self.tick,
                got: f.tick,
            });
        }
        self.apply(&f.delta)?;
        self.tick = f.tick;
        let actual = self.checksum();
        if actual != f.checksum {
            return Err(DeltaError::Desync {
                tick: f.tick,
                expected: f.checksum,
                actual,
            });
        }
        Ok(())
    }
}

fn snake_delta(prev: &SnakeState, new: &SnakeState) -> SnakeDelta {
    if prev.name == new.name
        && let Some((pushed, trim)) = body_move(&prev.body, &new.body)
    {
        return SnakeDelta::Moved(SnakeMove {
            id: new.id,
            head: new.body.iter().take(pushed).rev().copied().collect(),
            trim: trim as u32,
            dir: new.dir,
            alive: new.alive,
            respawn_in: new.respawn_in,
            boost: new.boost,
            connected: new.connected,
            score: (new.score != prev.score).then_some(new.score),
        });
    }
    SnakeDelta::Full(new.clone())
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
    while i < a.len() || j < b.len() {
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
            (None, None) => unreachable!("loop condition"),
        }
    }
    (only_a, only_b)
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

    fn only_move(d: &Delta) -> &SnakeMove {
        match d.snakes.as_slice() {
            [SnakeDelta::Moved(m)] => m,
            other => panic!("expected one move, got {other:?}"),
        }
    }

    #[test]
    fn a_plain_move_omits_the_unchanged_score() {
        let old = world(snake(&[(2, 1), (1, 1)], 2));
        let new = world(snake(&[(3, 1), (2, 1)], 2));
        let d = new.diff(&old);
        let m = only_move(&d);
        assert_eq!((m.head.len(), m.trim, m.score), (1, 1, None));
        let mut rebuilt = old.clone();
        rebuilt.apply(&d).unwrap();
        assert_eq!(rebuilt, new);
    }

    #[test]
    fn a_move_that_grows_carries_the_new_score() {
        let old = world(snake(&[(2, 1), (1, 1)], 2));
        let new = world(snake(&[(3, 1), (2, 1), (1, 1)], 3));
        let d = new.diff(&old);
        let m = only_move(&d);
        assert_eq!(m.trim, 0);
        assert_eq!(m.score.map(|s| s.length), Some(3));
        let mut rebuilt = old.clone();
        rebuilt.apply(&d).unwrap();
        assert_eq!(rebuilt, new);
    }
}
