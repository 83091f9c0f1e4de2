//! The bots' picture of the arena for one decision: which cells are free,
//! where our head is, where the other heads and the food are, and the
//! searches the brains share (flood fill, breadth-first path to food).

use std::collections::VecDeque;

use protocol::{Dir, Pos};

use crate::view::GameView;

/// A snapshot of the arena from our snake's point of view.
#[derive(Clone, Debug)]
pub struct Board {
    width: u16,
    height: u16,
    /// Walls and every snake cell.
    blocked: Vec<bool>,
    /// Our head.
    pub head: Pos,
    /// Our heading.
    pub heading: Dir,
    /// Our length.
    pub length: usize,
    /// Heads of the other living snakes.
    pub other_heads: Vec<Pos>,
    /// Food cells.
    pub food: Vec<Pos>,
}

/// A candidate move, scored by the searches every brain wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    /// The direction.
    pub dir: Dir,
    /// The cell it enters.
    pub to: Pos,
    /// Cells reachable from there (the entered cell included), capped.
    pub room: usize,
    /// An enemy head could enter the same cell this tick.
    pub near_head: bool,
}

impl Board {
    /// The board for `view`'s own snake; `None` when we have no living snake.
    pub fn from_view(view: &GameView) -> Option<Board> {
        let world = view.world.as_ref()?;
        let me = view.my_snake().filter(|s| s.alive)?;
        let head = me.head()?;
        let (w, h) = (view.map.width, view.map.height);
        let mut blocked = vec![false; usize::from(w) * usize::from(h)];
        for (y, row) in view.map.rows.iter().enumerate() {
            for (x, b) in row.bytes().enumerate() {
                if b == b'#' {
                    blocked[y * usize::from(w) + x] = true;
                }
            }
        }
        let mut board = Board {
            width: w,
            height: h,
            blocked,
            head,
            heading: me.dir,
            length: me.body.len(),
            other_heads: Vec::new(),
            food: world.food.clone(),
        };
        for s in &world.snakes {
            // Every body cell blocks, tails included: a tail that is about
            // to move is the one gamble a cautious bot does not take.
            for &p in &s.body {
                board.block(p);
            }
            if s.id != me.id && s.alive {
                board.other_heads.extend(s.head());
            }
        }
        Some(board)
    }

    fn index(&self, p: Pos) -> Option<usize> {
        (p.x < self.width && p.y < self.height)
            .then(|| usize::from(p.y) * usize::from(self.width) + usize::from(p.x))
    }

    fn block(&mut self, p: Pos) {
        if let Some(i) = self.index(p) {
            self.blocked[i] = true;
        }
    }

    /// True for a floor cell no snake is on.
    pub fn is_free(&self, p: Pos) -> bool {
        self.index(p).is_some_and(|i| !self.blocked[i])
    }

    /// The neighbour of `p` in `dir`.
    pub fn step(&self, p: Pos, dir: Dir) -> Pos {
        p.step(dir, self.width, self.height)
    }

    /// The moves that do not die at once (free cell, no reversal), in
    /// [`Dir::ALL`] order, with their room capped at `cap`.
    pub fn safe_moves(&self, cap: usize) -> Vec<Move> {
        Dir::ALL
            .into_iter()
            .filter(|&d| d != self.heading.opposite())
            .filter_map(|dir| {
                let to = self.step(self.head, dir);
                self.is_free(to).then(|| Move {
                    dir,
                    to,
                    room: self.room_from(to, cap),
                    near_head: self.near_other_head(to),
                })
            })
            .collect()
    }

    /// True when an enemy head is next to `p` (it may move there too).
    pub fn near_other_head(&self, p: Pos) -> bool {
        self.other_heads
            .iter()
            .any(|&h| Dir::ALL.into_iter().any(|d| self.step(h, d) == p))
    }

    /// Free cells reachable from `from` once our head stands there (the
    /// cell itself counts), counting at most `cap`.
    pub fn room_from(&self, from: Pos, cap: usize) -> usize {
        let Some(start) = self.index(from) else {
            return 0;
        };
        let mut seen = vec![false; self.blocked.len()];
        seen[start] = true;
        let mut queue = VecDeque::from([from]);
        let mut count = 0;
        while let Some(p) = queue.pop_front() {
            count += 1;
            if count >= cap {
                break;
            }
            for d in Dir::ALL {
                let n = self.step(p, d);
                if let Some(i) = self.index(n)
                    && !seen[i]
                    && !self.blocked[i]
                {
                    seen[i] = true;
                    queue.push_back(n);
                }
            }
        }
        count
    }

    /// Breadth-first search from each first move in `firsts` (tried in
    /// that order) to the nearest food: `(first move, distance)`.
    pub fn path_to_food(&self, firsts: &[Move]) -> Option<(Move, usize)> {
        if self.food.is_empty() {
            return None;
        }
        let mut seen = vec![false; self.blocked.len()];
        let mut queue = VecDeque::new();
        for (k, m) in firsts.iter().enumerate() {
            if let Some(i) = self.index(m.to)
                && !seen[i]
            {
                seen[i] = true;
                queue.push_back((m.to, k, 1usize));
            }
        }
        while let Some((p, k, dist)) = queue.pop_front() {
            if self.food.binary_search(&p).is_ok() {
                return Some((firsts[k], dist));
            }
            for d in Dir::ALL {
                let n = self.step(p, d);
                if let Some(i) = self.index(n)
                    && !seen[i]
                    && !self.blocked[i]
                {
                    seen[i] = true;
                    queue.push_back((n, k, dist + 1));
                }
            }
        }
        None
    }

    /// Steps from the nearest other head to `p` through free cells (the
    /// head's own cell is 0), or `None` beyond `limit` steps: how soon
    /// another snake could be there. A late player keeps this large, since
    /// the heads it sees have already moved on.
    pub fn head_gap(&self, p: Pos, limit: u16) -> Option<u16> {
        let target = self.index(p)?;
        let mut seen = vec![false; self.blocked.len()];
        let mut queue = VecDeque::new();
        for &h in &self.other_heads {
            if let Some(i) = self.index(h)
                && !seen[i]
            {
                seen[i] = true;
                queue.push_back((h, i, 0u16));
            }
        }
        while let Some((q, i, dist)) = queue.pop_front() {
            if i == target {
                return Some(dist);
            }
            if dist >= limit {
                continue;
            }
            for d in Dir::ALL {
                let n = self.step(q, d);
                if let Some(j) = self.index(n)
                    && !seen[j]
                    && (!self.blocked[j] || j == target)
                {
                    seen[j] = true;
                    queue.push_back((n, j, dist + 1));
                }
            }
        }
        None
    }

    /// Room a move needs not to be a dead end: our length plus a margin.
    pub fn enough_room(&self) -> usize {
        self.length + 2
    }
}
