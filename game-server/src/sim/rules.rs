//! Movement and collisions: one simultaneous move of a set of snakes.

use protocol::{DeathCause, GameEvent, Mode, PlayerId, Pos};

use super::{EMPTY, World};

/// What one moving snake will do in a sub-step.
struct Plan {
    /// Index in `state.snakes`.
    idx: usize,
    target: Pos,
    cell: usize,
    /// The tail stays (food eaten, or tron).
    grows: bool,
    death: Option<(DeathCause, Option<PlayerId>)>,
}

const NO_PLAN: usize = usize::MAX;

impl World {
    /// Moves every snake in `movers` (indices of live snakes, ascending) one
    /// cell at the same time and resolves what they run into. Marks the
    /// snakes that die in `died` and reports events in snake order.
    pub(super) fn substep(&mut self, movers: &[usize], died: &mut [bool], ev: &mut Vec<GameEvent>) {
        let (w, h) = (self.map.width, self.map.height);
        let tron = self.cfg.mode == Mode::Tron;
        let mut plan_of = vec![NO_PLAN; self.state.snakes.len()];
        let mut plans: Vec<Plan> = Vec::with_capacity(movers.len());
        for &i in movers {
            let s = &self.state.snakes[i];
            let Some(head) = s.head() else { continue };
            let target = head.step(s.dir, w, h);
            let cell = self.map_cell(target);
            plan_of[i] = plans.len();
            plans.push(Plan {
                idx: i,
                target,
                cell,
                grows: tron || self.food_grid[cell],
                death: None,
            });
        }

        // Walls, bodies, head swaps.
        for k in 0..plans.len() {
            let (i, target, cell) = (plans[k].idx, plans[k].target, plans[k].cell);
            if self.walls[cell] {
                plans[k].death = Some((DeathCause::Wall, None));
                continue;
            }
            let owner = self.grid[cell];
            if owner == EMPTY {
                continue;
            }
            let Some(oi) = self.index_of(owner) else {
                // Invariant: every grid owner is a snake in the world.
                debug_assert!(false, "grid names a missing snake {owner}");
                continue;
            };
            let other = &self.state.snakes[oi];
            let oplan = plans.get(plan_of[oi]);
            let swap = oi != i
                && other.head() == Some(target)
                && oplan.is_some_and(|o| Some(o.target) == self.state.snakes[i].head());
            let tail_leaves = oplan.is_some_and(|o| !o.grows)
                && other.body.len() > 1
                && other.body.back() == Some(&target);
            plans[k].death = if swap {
                Some((DeathCause::HeadOn, None))
            } else if tail_leaves {
                None
            } else if oi == i {
                Some((DeathCause::Own, None))
            } else {
                Some((DeathCause::Body, Some(owner)))
            };
        }

        // Two or more heads entering the same free cell.
        let mut order: Vec<usize> = (0..plans.len()).collect();
        order.sort_unstable_by_key(|&k| plans[k].cell);
        for pair in order.windows(2) {
            if plans[pair[0]].cell == plans[pair[1]].cell {
                for &k in pair {
                    if plans[k].death.is_none() {
                        plans[k].death = Some((DeathCause::HeadOn, None));
                    }
                }
            }
        }

        // Deaths: credit kills, clear bodies.
        let mut corpses = Vec::new();
        for plan in &plans {
            let Some((cause, killer)) = plan.death else {
                continue;
            };
            if let Some(ki) = killer.and_then(|k| self.index_of(k)) {
                self.state.snakes[ki].score.kills += 1;
            }
            let s = &mut self.state.snakes[plan.idx];
            for &p in &s.body {
                let c = p.y as usize * w as usize + p.x as usize;
                self.grid[c] = EMPTY;
            }
            if tron {
                s.body.clear();
            } else {
                corpses.extend(s.body.drain(..));
            }
            s.alive = false;
            s.boost = false;
            s.score.deaths += 1;
            s.respawn_in = self.cfg.respawn_ticks;
            died[plan.idx] = true;
            ev.push(GameEvent::Died {
                id: s.id,
                killer,
                cause,
            });
        }

        // Survivors: all tails leave first, then all heads enter.
        for plan in plans.iter().filter(|p| p.death.is_none() && !p.grows) {
            if let Some(t) = self.state.snakes[plan.idx].body.pop_back() {
                let c = self.map_cell(t);
                self.grid[c] = EMPTY;
            }
        }
        for plan in plans.iter().filter(|p| p.death.is_none()) {
            let s = &mut self.state.snakes[plan.idx];
            s.body.push_front(plan.target);
            let id = s.id;
            self.grid[plan.cell] = id;
            if !tron && self.take_food(plan.cell) {
                ev.push(GameEvent::Ate { id });
            }
        }
        for p in corpses {
            self.add_food(p);
        }
    }
}
