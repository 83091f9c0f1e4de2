//! The world state both sides hold, the delta that moves it one tick, and
//! the checksum that proves a client rebuilt it exactly.
//!
//! The server's simulation owns a [`WorldState`] and mutates it; after each
//! tick the room computes [`WorldState::diff`] against the previous state and
//! sends the [`Delta`]. Clients start from a snapshot and call
//! [`WorldState::apply_frame`] for every tick; the checksum in the frame must
//! then equal [`WorldState::checksum`] of their copy. The delta itself,
//! and how it is computed and applied, is in [`delta`]; its compact wire
//! forms are in `crate::wire`.

mod delta;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::PlayerId;
use crate::geom::{Dir, Pos};
use crate::msg::{Mode, TickFrame};

pub use delta::{Delta, MAX_HEAD_STEP, SnakeMove};

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
