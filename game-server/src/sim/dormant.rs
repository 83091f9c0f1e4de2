//! A world nobody is in can put its lookup grids away and rebuild them
//! later, so an empty room holds its visible state and little else.
//!
//! The grids (`grid`, `walls`, `food_grid`, `floor`) are derived data: the
//! walls and floor come from the map, the occupancy grid from the snakes'
//! bodies (none in an empty world), the food grid from `state.food`. A world
//! that rests and wakes therefore steps exactly as one that never rested:
//! same state, same RNG, same checksums.

use super::{EMPTY, World};

impl World {
    /// Frees the lookup grids of a world with no snakes (its room is empty)
    /// and returns true; a world that still has snakes keeps them and
    /// returns false. [`World::wake`] must run before the next
    /// [`World::step`].
    pub fn rest(&mut self) -> bool {
        if !self.state.snakes.is_empty() || !self.pilots.is_empty() {
            return false;
        }
        self.grid = Vec::new();
        self.walls = Vec::new();
        self.food_grid = Vec::new();
        self.floor = Vec::new();
        self.pilots = Vec::new();
        true
    }

    /// True while the grids are put away.
    pub fn is_resting(&self) -> bool {
        self.walls.is_empty() && self.map.area() > 0
    }

    /// Rebuilds what [`World::rest`] freed; does nothing to a world that is
    /// not resting.
    pub fn wake(&mut self) {
        if !self.is_resting() {
            return;
        }
        // A fresh world on the same map builds the terrain the one way it
        // is built; its own state, RNG and food are discarded.
        let fresh = World::new(self.map.clone(), self.cfg.clone(), 0);
        self.walls = fresh.walls;
        self.floor = fresh.floor;
        // No snakes while resting, so no cell is owned.
        self.grid = vec![EMPTY; self.map.area()];
        let mut food_grid = vec![false; self.map.area()];
        for &p in &self.state.food {
            food_grid[self.map_cell(p)] = true;
        }
        self.food_grid = food_grid;
    }
}

#[cfg(test)]
mod tests {
    use protocol::{Dir, Mode};

    use super::super::{SimConfig, SimInput, World};

    fn world(mode: Mode) -> World {
        let map = protocol::map::builtin("arena").unwrap();
        let cfg = SimConfig::for_map(mode, &map);
        World::new(map, cfg, 42)
    }

    /// Plays a few players in and out, so the world has food, scores and
    /// an RNG far from its seed, and ends with nobody in it.
    fn play(w: &mut World) {
        w.step(&[
            SimInput::Join {
                id: 1,
                name: "a".into(),
            },
            SimInput::Join {
                id: 2,
                name: "b".into(),
            },
        ]);
        for t in 0..200u32 {
            let dir = [Dir::Up, Dir::Left, Dir::Down, Dir::Right][(t / 7 % 4) as usize];
            w.step(&[SimInput::Turn { id: 1, dir }, SimInput::Turn { id: 2, dir }]);
        }
        w.step(&[SimInput::Leave { id: 1 }, SimInput::Leave { id: 2 }]);
    }

    #[test]
    fn a_world_that_rested_steps_exactly_like_one_that_did_not() {
        for mode in [Mode::Snake, Mode::Tron] {
            let (mut a, mut b) = (world(mode), world(mode));
            play(&mut a);
            play(&mut b);
            assert!(a.state().snakes.is_empty());
            assert!(b.rest(), "an empty world rests");
            assert!(b.is_resting());
            b.wake();
            assert!(!b.is_resting());
            for t in 0..300u32 {
                let inputs = match t {
                    0 => vec![SimInput::Join {
                        id: 3,
                        name: "c".into(),
                    }],
                    _ => vec![SimInput::Turn {
                        id: 3,
                        dir: [Dir::Right, Dir::Down, Dir::Left, Dir::Up][(t / 5 % 4) as usize],
                    }],
                };
                assert_eq!(a.step(&inputs), b.step(&inputs), "{mode:?} tick {t}");
                assert_eq!(a.state(), b.state(), "{mode:?} tick {t}");
                assert_eq!(a.state().checksum(), b.state().checksum());
            }
            assert_eq!(a.grid, b.grid);
            assert_eq!(a.food_grid, b.food_grid);
            assert_eq!(a.food_count, b.food_count);
        }
    }

    #[test]
    fn a_world_with_snakes_does_not_rest() {
        let mut w = world(Mode::Snake);
        w.step(&[SimInput::Join {
            id: 1,
            name: "a".into(),
        }]);
        assert!(!w.rest());
        assert!(!w.is_resting());
        w.step(&[]);
    }
}
