//! Placing snakes and food on free cells.

use std::collections::VecDeque;

use protocol::{Dir, Mode, Pos};

use super::{EMPTY, World};

/// How far ahead a spawn looks when choosing its heading.
const LOOK_AHEAD: usize = 16;

/// A laid body (head first) and its heading.
type Laid = (VecDeque<Pos>, Dir);

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
            Mode::Snake if self.cfg.spawn_hold > 0 => Some(self.cfg.spawn_hold),
            _ => None,
        };
        true
    }

    /// The spawn point farthest from every live head (so nobody appears
    /// in front of someone else), a full body first; ties go to a random
    /// one. Any free floor cell when no spawn point is free.
    fn find_spawn(&mut self) -> Option<(VecDeque<Pos>, Dir)> {
        let n = self.map.spawns.len();
        let off = self.rng.below(n);
        let want = self.cfg.start_length.max(1) as usize;
        let heads: Vec<Pos> = self.state.snakes.iter().filter_map(|s| s.head()).collect();
        let mut best: Option<((bool, u32), Laid)> = None;
        for k in 0..n {
            let p = self.map.spawns[(off + k) % n];
            if !self.free(p) {
                continue;
            }
            let laid = self.lay(p, want);
            let key = (laid.0.len() == want, nearest(p, &heads));
            if best.as_ref().is_none_or(|(b, _)| key > *b) {
                best = Some((key, laid));
            }
        }
        if let Some((_, laid)) = best {
            return Some(laid);
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

    /// The position of row-major cell `c`.
    pub(super) fn cell_pos(&self, c: usize) -> Pos {
        let w = self.map.width as usize;
        Pos::new((c % w) as u16, (c / w) as u16)
    }
}

/// Manhattan distance from `p` to the nearest of `heads` (`u32::MAX` when
/// there is none).
fn nearest(p: Pos, heads: &[Pos]) -> u32 {
    heads
        .iter()
        .map(|h| u32::from(p.x.abs_diff(h.x)) + u32::from(p.y.abs_diff(h.y)))
        .min()
        .unwrap_or(u32::MAX)
}
