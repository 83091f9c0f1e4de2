//! Placing snakes and food on free cells.

use std::collections::VecDeque;

use protocol::{Dir, Mode, Pos};

use super::{EMPTY, World};

/// How far ahead a spawn looks when choosing its heading.
const LOOK_AHEAD: usize = 16;

/// Random probes before a placement falls back to a scan.
const PROBES: usize = 64;

impl World {
    /// True for floor not covered by a snake.
    fn free(&self, p: Pos) -> bool {
        let c = self.map_cell(p);
        !self.walls[c] && self.grid[c] == EMPTY
    }

    /// Spawns dead snake `i`: at a random free spawn point with a full body
    /// if there is one, else at a free spawn point with a shorter body,
    /// else on any free floor cell. False when the map is full.
    pub(super) fn try_spawn(&mut self, i: usize) -> bool {
        let Some((body, dir)) = self.find_spawn() else {
            return false;
        };
        for &p in &body {
            let c = self.map_cell(p);
            self.take_food(c);
            self.grid[c] = self.state.snakes[i].id;
        }
        let s = &mut self.state.snakes[i];
        s.body = body;
        s.dir = dir;
        s.alive = true;
        s.respawn_in = 0;
        s.boost = false;
        let p = &mut self.pilots[i];
        p.queue.clear();
        p.boost_count = 0;
        p.bar = self.cfg.boost_ticks;
        p.hold = match self.cfg.mode {
            Mode::Snake => self.cfg.spawn_hold,
            Mode::Tron => 0,
        };
        true
    }

    fn find_spawn(&mut self) -> Option<(VecDeque<Pos>, Dir)> {
        let n = self.map.spawns.len();
        let off = self.rng.below(n);
        let want = self.cfg.start_length.max(1) as usize;
        let mut partial = None;
        for k in 0..n {
            let p = self.map.spawns[(off + k) % n];
            if !self.free(p) {
                continue;
            }
            let laid = self.lay(p, want);
            if laid.0.len() == want {
                return Some(laid);
            }
            partial.get_or_insert(laid);
        }
        if partial.is_some() {
            return partial;
        }
        let c = self.random_cell(|w, c| !w.walls[c] && w.grid[c] == EMPTY)?;
        let p = self.cell_pos(c);
        Some(self.lay(p, want))
    }

    /// Lays a body of up to `want` cells behind `head` and picks the
    /// heading with the most open space ahead (ties: `Dir::ALL` order).
    fn lay(&self, head: Pos, want: usize) -> (VecDeque<Pos>, Dir) {
        let (w, h) = (self.map.width, self.map.height);
        let mut best: Option<(usize, usize, VecDeque<Pos>, Dir)> = None;
        for d in Dir::ALL {
            let mut body = VecDeque::from([head]);
            let mut cur = head;
            while body.len() < want {
                let back = d.opposite();
                let next = std::iter::once(back)
                    .chain(Dir::ALL)
                    .map(|nd| cur.step(nd, w, h))
                    .find(|&q| self.free(q) && !body.contains(&q));
                let Some(q) = next else { break };
                body.push_back(q);
                cur = q;
            }
            let mut run = 0;
            let mut q = head;
            while run < LOOK_AHEAD {
                q = q.step(d, w, h);
                if !self.free(q) || body.contains(&q) {
                    break;
                }
                run += 1;
            }
            let better = match &best {
                None => true,
                Some((bl, br, _, _)) => (body.len(), run) > (*bl, *br),
            };
            if better {
                best = Some((body.len(), run, body, d));
            }
        }
        match best {
            Some((_, _, body, d)) => (body, d),
            None => (VecDeque::from([head]), Dir::Up),
        }
    }

    /// Keeps `config.food` items on free floor (snake mode).
    pub(super) fn top_up_food(&mut self) {
        while self.food_count < self.cfg.food as usize {
            let Some(c) =
                self.random_cell(|w, c| !w.walls[c] && w.grid[c] == EMPTY && !w.food_grid[c])
            else {
                break;
            };
            let p = self.cell_pos(c);
            self.add_food(p);
        }
    }

    /// A random floor cell satisfying `ok`: random probes, then a scan from
    /// a random offset. `None` when no cell qualifies.
    fn random_cell(&mut self, ok: impl Fn(&World, usize) -> bool) -> Option<usize> {
        let n = self.floor.len();
        if n == 0 {
            return None;
        }
        for _ in 0..PROBES {
            let c = self.floor[self.rng.below(n)] as usize;
            if ok(self, c) {
                return Some(c);
            }
        }
        let off = self.rng.below(n);
        (0..n)
            .map(|k| self.floor[(off + k) % n] as usize)
            .find(|&c| ok(self, c))
    }

    pub(super) fn cell_pos(&self, c: usize) -> Pos {
        let w = self.map.width as usize;
        Pos::new((c % w) as u16, (c / w) as u16)
    }
}
