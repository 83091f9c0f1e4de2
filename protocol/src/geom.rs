//! Grid positions and directions.

use serde::{Deserialize, Serialize};

/// A cell on the grid; `x` grows right, `y` grows down.
///
/// On the wire a pair, `[x, y]` in JSON (cells are most of a frame's
/// bytes); bincode encodes a pair exactly as it did the struct, so the
/// checksum does not depend on this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "(u16, u16)", into = "(u16, u16)")]
pub struct Pos {
    pub x: u16,
    pub y: u16,
}

impl From<(u16, u16)> for Pos {
    fn from((x, y): (u16, u16)) -> Pos {
        Pos { x, y }
    }
}

impl From<Pos> for (u16, u16) {
    fn from(p: Pos) -> (u16, u16) {
        (p.x, p.y)
    }
}

impl Pos {
    /// Creates a position.
    pub const fn new(x: u16, y: u16) -> Self {
        Pos { x, y }
    }

    /// The neighbouring cell in `dir` on a `width` x `height` grid that wraps
    /// at its edges (maps normally close their border with walls, so wrapping
    /// only matters on open maps).
    pub fn step(self, dir: Dir, width: u16, height: u16) -> Pos {
        let (w, h) = (width.max(1), height.max(1));
        match dir {
            Dir::Up => Pos::new(self.x, (self.y + h - 1) % h),
            Dir::Down => Pos::new(self.x, (self.y + 1) % h),
            Dir::Left => Pos::new((self.x + w - 1) % w, self.y),
            Dir::Right => Pos::new((self.x + 1) % w, self.y),
        }
    }
}

/// A heading on the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    Up,
    Down,
    Left,
    Right,
}

impl Dir {
    /// All four directions, in a fixed order.
    pub const ALL: [Dir; 4] = [Dir::Up, Dir::Down, Dir::Left, Dir::Right];

    /// The direction pointing back the way this one came.
    pub fn opposite(self) -> Dir {
        match self {
            Dir::Up => Dir::Down,
            Dir::Down => Dir::Up,
            Dir::Left => Dir::Right,
            Dir::Right => Dir::Left,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_wraps_at_every_edge() {
        assert_eq!(Pos::new(0, 0).step(Dir::Up, 5, 4), Pos::new(0, 3));
        assert_eq!(Pos::new(0, 3).step(Dir::Down, 5, 4), Pos::new(0, 0));
        assert_eq!(Pos::new(0, 1).step(Dir::Left, 5, 4), Pos::new(4, 1));
        assert_eq!(Pos::new(4, 1).step(Dir::Right, 5, 4), Pos::new(0, 1));
        assert_eq!(Pos::new(2, 2).step(Dir::Right, 5, 4), Pos::new(3, 2));
    }

    #[test]
    fn opposite_is_an_involution() {
        for d in Dir::ALL {
            assert_ne!(d, d.opposite());
            assert_eq!(d, d.opposite().opposite());
        }
    }
}
