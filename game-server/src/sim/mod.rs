//! The simulation: pure, deterministic game rules.
//!
//! No clock, no I/O, no async. `World::step` takes this tick's inputs and
//! returns what happened; the same seed and the same inputs give the same
//! world, bit for bit, on every machine.
//!
//! Layout: this file holds the public API and the order of a tick;
//! [`rules`] moves snakes and resolves collisions, [`spawn`] places snakes
//! and food, [`pace`] turns a speed in cells per second into cells per
//! tick, [`rng`] is the seeded PRNG.
//!
//! The file is over 400 lines because the order of a tick (inputs, the
//! wait at the spawn point, sub-steps, boost, respawns) reads best in one
//! place.

mod dormant;
pub mod pace;
mod rng;
mod rules;
mod spawn;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use protocol::{Dir, GameEvent, Map, Mode, PlayerId, Pos, Score, SnakeState, WorldState};

pub use rng::SplitMix64;

/// Occupancy grid value of a cell no snake covers. A player id equal to
/// this value is refused by `Join`.
const EMPTY: u32 = u32::MAX;

/// Snake: extra cells moved by boosting per tail cell it costs. Tron:
/// idle ticks per tick of boost refilled.
const BOOST_PERIOD: u32 = 4;

/// Seconds a dead snake waits before it respawns.
const RESPAWN_SECS: u32 = 2;
/// Seconds of boost a full tron boost bar holds.
const BOOST_SECS: u32 = 2;
/// Seconds a fresh snake waits at its spawn point for its player's first
/// input before it is parked (taken off the arena until a key).
pub const WAIT_SECS: u32 = 10;

/// Tunables of a world; fixed for its lifetime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Snake (food, growth, respawn) or tron (trails, rounds).
    pub mode: Mode,
    /// Food kept on the floor (snake mode); tron uses none.
    pub food: u16,
    /// Ticks a dead snake waits before respawning (snake mode; in tron a
    /// rider who crashed alone waits this long before riding again).
    pub respawn_ticks: u16,
    /// Length of a newly spawned snake.
    pub start_length: u16,
    /// Ticks of boost a full boost bar holds.
    pub boost_ticks: u16,
    /// Snake mode: ticks a newly (re)spawned snake waits in place for its
    /// player's first input, so a person has time to see where they are.
    /// A snake still waiting when they run out is parked: taken off the
    /// arena (no death counted) until its player's next input, which
    /// brings it back at a spawn point, waiting again. 0: never waits.
    pub spawn_hold: u16,
    /// Ticks per second the world is stepped at (the pace's time base).
    pub tick_rate: u32,
    /// Cells per second a snake moves.
    pub speed: u32,
    /// Cells per second a boosting snake moves.
    pub boost_speed: u32,
}

impl SimConfig {
    /// Defaults for a mode on a map at 20 Hz and the mode's speed (the
    /// map's `food` header wins).
    pub fn for_map(mode: Mode, map: &Map) -> Self {
        Self::for_room(mode, map, 20, pace::default_speed(mode))
    }

    /// Defaults for a room ticking at `tick_rate` Hz whose snakes move
    /// `speed` cells per second: waits and boost last the same seconds at
    /// any tick rate.
    pub fn for_room(mode: Mode, map: &Map, tick_rate: u32, speed: u32) -> Self {
        let food = match mode {
            Mode::Snake => map
                .food
                .unwrap_or_else(|| (map.area() / 150).clamp(1, 200) as u16),
            Mode::Tron => 0,
        };
        let rate = tick_rate.max(1);
        let ticks = |secs: u32| (secs * rate).clamp(1, u32::from(u16::MAX)) as u16;
        SimConfig {
            mode,
            food,
            respawn_ticks: ticks(RESPAWN_SECS),
            start_length: 3,
            boost_ticks: ticks(BOOST_SECS),
            spawn_hold: match mode {
                Mode::Snake => ticks(WAIT_SECS),
                Mode::Tron => 0,
            },
            tick_rate: rate,
            speed,
            boost_speed: speed * pace::BOOST_FACTOR,
        }
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

/// Per-snake state that is not part of the visible world.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Pilot {
    /// Queued turns, oldest first; at most 2.
    queue: Vec<Dir>,
    /// The player wants to boost.
    boost_req: bool,
    /// Snake: boosted ticks since spawn. Tron: idle ticks (refill clock).
    boost_count: u32,
    /// Tron boost bar, in ticks of boost left.
    bar: u16,
    /// While the snake waits at its spawn point for a first input: the
    /// ticks left before it is parked (see `SimConfig::spawn_hold`).
    hold: Option<u16>,
    /// Taken off the arena for never steering: comes back on the next
    /// input.
    parked: bool,
}

/// A deterministic world.
#[derive(Clone, Debug)]
pub struct World {
    /// Shared: every room on a built-in map holds the same one.
    map: Arc<Map>,
    cfg: SimConfig,
    state: WorldState,
    rng: SplitMix64,
    /// Parallel to `state.snakes` (same index, same order).
    pilots: Vec<Pilot>,
    /// Owner id per cell (`EMPTY` when free), row-major.
    grid: Vec<u32>,
    /// Wall per cell, row-major.
    walls: Vec<bool>,
    /// Food per cell, mirroring the sorted `state.food`.
    food_grid: Vec<bool>,
    food_count: usize,
    /// Indices of floor cells, for random placement.
    floor: Vec<u32>,
    /// Tron: riders who have ridden in the current round.
    round_riders: u32,
}

impl World {
    /// A new, empty world on `map`.
    pub fn new(map: impl Into<Arc<Map>>, config: SimConfig, seed: u64) -> World {
        let map = map.into();
        let area = map.area();
        let mut walls = vec![true; area];
        let mut floor = Vec::new();
        for y in 0..map.height {
            for x in 0..map.width {
                let i = y as usize * map.width as usize + x as usize;
                if !map.is_wall(Pos::new(x, y)) {
                    walls[i] = false;
                    floor.push(i as u32);
                }
            }
        }
        World {
            state: WorldState::new(config.mode),
            cfg: config,
            rng: SplitMix64::new(seed),
            pilots: Vec::new(),
            grid: vec![EMPTY; area],
            walls,
            food_grid: vec![false; area],
            food_count: 0,
            floor,
            round_riders: 0,
            map,
        }
    }

    /// The visible state (what frames carry).
    pub fn state(&self) -> &WorldState {
        &self.state
    }

    /// The map.
    pub fn map(&self) -> &Map {
        &self.map
    }

    /// The configuration this world runs with.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Tron: ticks of boost left in `id`'s bar (`None` for an unknown id).
    pub fn boost_bar(&self, id: PlayerId) -> Option<u16> {
        self.index_of(id).map(|i| self.pilots[i].bar)
    }

    /// Advances one tick: applies `inputs` in order, moves every snake the
    /// cells its pace gives this tick, resolves collisions, food, respawns
    /// and rounds.
    pub fn step(&mut self, inputs: &[SimInput]) -> Vec<GameEvent> {
        let mut ev = Vec::new();
        self.state.tick += 1;
        for input in inputs {
            self.apply_input(input, &mut ev);
        }
        let (tick, rate) = (self.state.tick, self.cfg.tick_rate);
        let (base, fast) = (
            pace::cells_in(tick, self.cfg.speed, rate),
            pace::cells_in(tick, self.cfg.boost_speed, rate),
        );
        let n = self.state.snakes.len();
        let mut died = vec![false; n];
        let mut boosting = vec![false; n];
        let mut cells = vec![0u32; n];
        for i in 0..n {
            if !self.state.snakes[i].alive {
                self.state.snakes[i].boost = false;
                continue;
            }
            match self.pilots[i].hold {
                Some(0) => {
                    self.park(i);
                    continue;
                }
                Some(left) => {
                    self.pilots[i].hold = Some(left - 1);
                    continue;
                }
                None => {}
            }
            let (s, p) = (&mut self.state.snakes[i], &mut self.pilots[i]);
            boosting[i] = p.boost_req
                && match self.cfg.mode {
                    Mode::Snake => s.body.len() > self.cfg.start_length as usize,
                    Mode::Tron => p.bar > 0,
                };
            s.boost = boosting[i];
            cells[i] = if boosting[i] { fast } else { base };
        }
        // Sub-steps: every snake with cells left moves one at a time, all
        // at once, so a fast snake cannot jump over a body.
        let most = cells.iter().copied().max().unwrap_or(0);
        for k in 0..most {
            let movers: Vec<usize> = (0..n)
                .filter(|&i| cells[i] > k && self.state.snakes[i].alive)
                .collect();
            for &i in &movers {
                // A queued turn takes effect on the next cell entered, so a
                // quick double turn is two cells, never a lost key.
                let p = &mut self.pilots[i];
                if !p.queue.is_empty() {
                    self.state.snakes[i].dir = p.queue.remove(0);
                }
            }
            self.substep(&movers, &mut died, &mut ev);
        }
        let extra: Vec<u32> = (0..n)
            .map(|i| {
                if boosting[i] {
                    fast.saturating_sub(base)
                } else {
                    0
                }
            })
            .collect();
        self.boost_upkeep(&boosting, &extra);
        for (s, &d) in self.state.snakes.iter_mut().zip(&died) {
            if !s.alive && !d && s.respawn_in > 0 {
                s.respawn_in -= 1;
            }
        }
        match self.cfg.mode {
            Mode::Snake => {
                for (i, &d) in died.iter().enumerate() {
                    let s = &self.state.snakes[i];
                    if !s.alive
                        && !d
                        && s.respawn_in == 0
                        && !self.pilots[i].parked
                        && self.try_spawn(i)
                    {
                        ev.push(GameEvent::Respawned {
                            id: self.state.snakes[i].id,
                        });
                    }
                }
                self.top_up_food();
            }
            Mode::Tron => self.tron_rounds(&died, &mut ev),
        }
        self.finish_step();
        ev
    }

    /// Takes a snake that never steered off the arena without a death:
    /// its cells free, it waits for its player's next input.
    fn park(&mut self, i: usize) {
        self.clear_body(i, false);
        let p = &mut self.pilots[i];
        p.hold = None;
        p.parked = true;
        p.queue.clear();
        p.boost_req = false;
    }

    /// The player is there: a waiting snake goes, a parked one comes back.
    fn rouse(&mut self, i: usize) {
        let p = &mut self.pilots[i];
        p.hold = None;
        p.parked = false;
    }

    fn apply_input(&mut self, input: &SimInput, ev: &mut Vec<GameEvent>) {
        match input {
            SimInput::Join { id, name } => {
                let id = *id;
                if id == EMPTY {
                    return;
                }
                let Err(i) = self.state.snakes.binary_search_by_key(&id, |s| s.id) else {
                    return;
                };
                self.state.snakes.insert(
                    i,
                    SnakeState {
                        id,
                        name: name.clone(),
                        body: Default::default(),
                        dir: Dir::Up,
                        alive: false,
                        respawn_in: 0,
                        boost: false,
                        connected: true,
                        score: Score::default(),
                    },
                );
                self.pilots.insert(
                    i,
                    Pilot {
                        bar: self.cfg.boost_ticks,
                        ..Pilot::default()
                    },
                );
                ev.push(GameEvent::Joined {
                    id,
                    name: name.clone(),
                });
            }
            SimInput::Leave { id } => {
                if let Some(i) = self.index_of(*id) {
                    self.clear_body(i, self.cfg.mode == Mode::Snake);
                    self.state.snakes.remove(i);
                    self.pilots.remove(i);
                    ev.push(GameEvent::Left { id: *id });
                }
            }
            SimInput::Connected { id, connected } => {
                if let Some(i) = self.index_of(*id) {
                    self.state.snakes[i].connected = *connected;
                }
            }
            SimInput::Turn { id, dir } => {
                if let Some(i) = self.index_of(*id) {
                    // Any steer (even a reversal, ignored below) ends the
                    // wait at the spawn point, or brings a parked snake back.
                    self.rouse(i);
                    let (s, p) = (&self.state.snakes[i], &mut self.pilots[i]);
                    let last = p.queue.last().copied().unwrap_or(s.dir);
                    if s.alive && p.queue.len() < 2 && *dir != last && *dir != last.opposite() {
                        p.queue.push(*dir);
                    }
                }
            }
            SimInput::Boost { id, on } => {
                if let Some(i) = self.index_of(*id) {
                    if *on {
                        self.rouse(i);
                    }
                    self.pilots[i].boost_req = *on;
                }
            }
        }
    }

    /// Snake: boosting costs a tail cell every `BOOST_PERIOD` extra cells
    /// it moved (`extra`, per snake this tick). Tron: the bar drains a tick
    /// per boosted tick and refills while idle.
    fn boost_upkeep(&mut self, boosting: &[bool], extra: &[u32]) {
        let start = self.cfg.start_length as usize;
        for (i, &boosted) in boosting.iter().enumerate() {
            if !self.state.snakes[i].alive {
                continue;
            }
            let p = &mut self.pilots[i];
            match self.cfg.mode {
                Mode::Snake if boosted => {
                    let s = &mut self.state.snakes[i];
                    for _ in 0..extra[i] {
                        p.boost_count += 1;
                        if p.boost_count.is_multiple_of(BOOST_PERIOD)
                            && s.body.len() > start
                            && let Some(t) = s.body.pop_back()
                        {
                            let c = t.y as usize * self.map.width as usize + t.x as usize;
                            self.grid[c] = EMPTY;
                        }
                    }
                    if s.body.len() <= start {
                        s.boost = false;
                    }
                }
                Mode::Snake => {}
                Mode::Tron if boosted => p.bar = p.bar.saturating_sub(1),
                Mode::Tron => {
                    p.boost_count += 1;
                    if p.boost_count.is_multiple_of(BOOST_PERIOD) {
                        p.bar = (p.bar + 1).min(self.cfg.boost_ticks);
                    }
                }
            }
        }
    }

    /// Tron: ends the round when at most one of >= 2 riders remains, and
    /// lets waiting players ride while fewer than two are riding.
    fn tron_rounds(&mut self, died: &[bool], ev: &mut Vec<GameEvent>) {
        let alive = || self.state.snakes.iter().filter(|s| s.alive);
        let mut riding = alive().count();
        if self.round_riders >= 2 && riding <= 1 {
            let winner = alive().next().map(|s| s.id);
            ev.push(GameEvent::RoundOver {
                round: self.state.round,
                winner,
            });
            if let Some(w) = winner.and_then(|w| self.index_of(w)) {
                self.state.snakes[w].score.wins += 1;
            }
            self.state.round += 1;
            for i in 0..self.state.snakes.len() {
                self.clear_body(i, false);
                let s = &mut self.state.snakes[i];
                s.alive = false;
                s.respawn_in = 0;
            }
            self.round_riders = 0;
            for i in 0..self.state.snakes.len() {
                if self.try_spawn(i) {
                    self.round_riders += 1;
                    ev.push(GameEvent::Respawned {
                        id: self.state.snakes[i].id,
                    });
                }
            }
            return;
        }
        for (i, &d) in died.iter().enumerate() {
            if riding >= 2 {
                break;
            }
            let s = &self.state.snakes[i];
            if !s.alive && !d && s.respawn_in == 0 && self.try_spawn(i) {
                riding += 1;
                self.round_riders += 1;
                ev.push(GameEvent::Respawned {
                    id: self.state.snakes[i].id,
                });
            }
        }
    }

    /// Brings the score figures up to date after a step.
    fn finish_step(&mut self) {
        for s in &mut self.state.snakes {
            s.score.length = s.body.len() as u32;
            s.score.best = s.score.best.max(s.score.length);
        }
    }

    /// Index of snake `id` in `state.snakes` (and `pilots`).
    fn index_of(&self, id: PlayerId) -> Option<usize> {
        self.state.snakes.binary_search_by_key(&id, |s| s.id).ok()
    }

    /// Row-major index of a cell on the map (`p` must be on the grid).
    fn map_cell(&self, p: Pos) -> usize {
        p.y as usize * self.map.width as usize + p.x as usize
    }

    /// Removes snake `i`'s body from the grid (turning it into food when
    /// `to_food`) and marks it dead without counting a death.
    fn clear_body(&mut self, i: usize, to_food: bool) {
        let body = std::mem::take(&mut self.state.snakes[i].body);
        for &p in &body {
            let c = self.map_cell(p);
            self.grid[c] = EMPTY;
        }
        if to_food {
            for p in body {
                self.add_food(p);
            }
        }
        let s = &mut self.state.snakes[i];
        s.alive = false;
        s.boost = false;
    }

    /// Puts food on `p` if it is free floor without food.
    fn add_food(&mut self, p: Pos) {
        let c = self.map_cell(p);
        if !self.walls[c] && self.grid[c] == EMPTY && !self.food_grid[c] {
            self.food_grid[c] = true;
            self.food_count += 1;
            if let Err(at) = self.state.food.binary_search(&p) {
                self.state.food.insert(at, p);
            }
        }
    }

    /// Removes food from cell `c`; true if there was some.
    fn take_food(&mut self, c: usize) -> bool {
        if self.food_grid[c] {
            self.food_grid[c] = false;
            self.food_count -= 1;
            if let Ok(at) = self.state.food.binary_search(&self.cell_pos(c)) {
                self.state.food.remove(at);
            }
            true
        } else {
            false
        }
    }
}
