//! The simulation: pure, deterministic game rules.
//!
//! No clock, no I/O, no async. `World::step` takes this tick's inputs and
//! returns what happened; the same seed and the same inputs give the same
//! world, bit for bit, on every machine.

use protocol::{Dir, GameEvent, Map, Mode, PlayerId, WorldState};

/// Tunables of a world; fixed for its lifetime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    pub mode: Mode,
    /// Food kept on the floor (snake mode); tron uses none.
    pub food: u16,
    /// Ticks a dead snake waits before respawning (snake mode).
    pub respawn_ticks: u16,
    /// Length of a newly spawned snake.
    pub start_length: u16,
    /// Ticks of boost a full boost bar holds.
    pub boost_ticks: u16,
}

impl SimConfig {
    /// Defaults for a mode on a map (the map's `food` header wins).
    pub fn for_map(mode: Mode, map: &Map) -> Self {
        todo!("{mode:?} {}", map.name)
    }
}

/// One input to a tick. The room turns session messages into these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimInput {
    /// A player enters the world (spawns at a free spawn point).
    Join { id: PlayerId, name: String },
    /// A player leaves for good: its snake is removed.
    Leave { id: PlayerId },
    /// The player's connection dropped or came back (grace period).
    Connected { id: PlayerId, connected: bool },
    /// Queue a turn (at most 2 queued; a reversal is ignored).
    Turn { id: PlayerId, dir: Dir },
    /// Boost on or off.
    Boost { id: PlayerId, on: bool },
}

/// A deterministic world.
#[derive(Clone, Debug)]
pub struct World {
    _private: (),
}

impl World {
    /// A new, empty world on `map`.
    pub fn new(map: Map, config: SimConfig, seed: u64) -> World {
        let _ = (map, config, seed);
        todo!()
    }

    /// The visible state (what frames carry).
    pub fn state(&self) -> &WorldState {
        todo!()
    }

    /// The map.
    pub fn map(&self) -> &Map {
        todo!()
    }

    /// Advances one tick: applies `inputs` in order, moves every snake,
    /// resolves collisions, food, respawns and rounds.
    pub fn step(&mut self, inputs: &[SimInput]) -> Vec<GameEvent> {
        let _ = inputs;
        todo!()
    }
}
