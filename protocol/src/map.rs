//! ASCII arena maps: the text format, its parser, and the map type that
//! travels in `welcome`.
//!
//! Format: optional header lines `; key = value` (keys `name`, `mode`,
//! `food`; unknown keys are rejected so typos are caught), then the grid:
//! `#` wall, `.` floor, `0`-`9` a spawn point on floor. Every grid row has
//! the same width. Blank lines after the grid are ignored.

use serde::{Deserialize, Serialize};

use crate::geom::Pos;
use crate::msg::Mode;

/// The largest grid side a map may have (keeps a keyframe small and the
/// coordinates in `u16`).
pub const MAX_SIDE: usize = 512;

/// A parsed arena. Serialised as-is inside `welcome`, so clients draw the
/// exact map the server simulates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Map {
    /// Human name, from the `name` header (defaults to the file stem).
    pub name: String,
    pub width: u16,
    pub height: u16,
    /// The grid rows, each `width` bytes of `#`, `.` or a digit.
    pub rows: Vec<String>,
    /// Spawn points in reading order (top to bottom, left to right).
    pub spawns: Vec<Pos>,
    /// The mode this map was drawn for, if its header says.
    pub mode: Option<Mode>,
    /// How much food the map wants on the floor at once, if its header says.
    pub food: Option<u16>,
}

/// A map file that could not be parsed; says where and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("map error at line {line}, column {column}: {message}")]
pub struct MapError {
    /// 1-based line in the file.
    pub line: usize,
    /// 1-based column (in characters) in that line.
    pub column: usize,
    pub message: String,
}

fn err(line: usize, column: usize, message: impl Into<String>) -> MapError {
    MapError {
        line,
        column,
        message: message.into(),
    }
}

impl Map {
    /// Parses a map file. `default_name` is used when no `name` header is given.
    pub fn parse(text: &str, default_name: &str) -> Result<Map, MapError> {
        let mut name = default_name.to_string();
        let mut mode = None;
        let mut food = None;
        let mut rows: Vec<String> = Vec::new();
        let mut spawns = Vec::new();
        let mut width = 0usize;
        let mut grid_ended_at: Option<usize> = None;

        for (i, raw) in text.lines().enumerate() {
            let lineno = i + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if rows.is_empty() && line.starts_with(';') {
                let body = &line[1..];
                let Some((k, v)) = body.split_once('=') else {
                    return Err(err(lineno, 1, "header line must look like `; key = value`"));
                };
                let (k, v) = (k.trim(), v.trim());
                match k {
                    "name" => {
                        let n = crate::text::sanitize_line(v, 40);
                        if n.is_empty() {
                            return Err(err(lineno, 1, "map name is empty"));
                        }
                        name = n;
                    }
                    "mode" => {
                        mode = Some(match v {
                            "snake" => Mode::Snake,
                            "tron" => Mode::Tron,
                            _ => {
                                return Err(err(
                                    lineno,
                                    1,
                                    format!("unknown mode `{v}` (snake or tron)"),
                                ));
                            }
                        })
                    }
                    "food" => {
                        food = Some(v.parse::<u16>().map_err(|_| {
                            err(lineno, 1, format!("food must be a number, got `{v}`"))
                        })?)
                    }
                    _ => return Err(err(lineno, 1, format!("unknown header key `{k}`"))),
                }
                continue;
            }
            if line.trim().is_empty() {
                if !rows.is_empty() && grid_ended_at.is_none() {
                    grid_ended_at = Some(lineno);
                }
                continue;
            }
            if let Some(end) = grid_ended_at {
                return Err(err(
                    lineno,
                    1,
                    format!("grid continues after the blank line {end}"),
                ));
            }
            let y = rows.len();
            if y >= MAX_SIDE {
                return Err(err(
                    lineno,
                    1,
                    format!("map is taller than {MAX_SIDE} rows"),
                ));
            }
            let mut row = String::with_capacity(line.len());
            for (x, ch) in line.chars().enumerate() {
                match ch {
                    '#' | '.' => row.push(ch),
                    '0'..='9' => {
                        row.push(ch);
                        spawns.push(Pos::new(x as u16, y as u16));
                    }
                    _ => {
                        return Err(err(
                            lineno,
                            x + 1,
                            format!("unexpected character {ch:?} (use `#`, `.` or a digit)"),
                        ));
                    }
                }
                if x >= MAX_SIDE {
                    return Err(err(
                        lineno,
                        x + 1,
                        format!("map is wider than {MAX_SIDE} columns"),
                    ));
                }
            }
            let w = row.len();
            if rows.is_empty() {
                width = w;
            } else if w != width {
                return Err(err(
                    lineno,
                    w.min(width) + 1,
                    format!("row is {w} cells wide but the first row is {width}"),
                ));
            }
            rows.push(row);
        }
        if rows.is_empty() {
            return Err(err(text.lines().count().max(1), 1, "map has no grid rows"));
        }
        if spawns.is_empty() {
            return Err(err(
                1,
                1,
                "map has no spawn point (put a digit on the floor)",
            ));
        }
        Ok(Map {
            name,
            width: width as u16,
            height: rows.len() as u16,
            rows,
            spawns,
            mode,
            food,
        })
    }

    /// True for a wall, and for any position outside the grid.
    pub fn is_wall(&self, p: Pos) -> bool {
        self.rows
            .get(p.y as usize)
            .and_then(|r| r.as_bytes().get(p.x as usize))
            .is_none_or(|&b| b == b'#')
    }

    /// Number of cells.
    pub fn area(&self) -> usize {
        self.width as usize * self.height as usize
    }
}

/// The maps shipped in `assets/maps/`, embedded in every binary:
/// `(file stem, file text)`.
pub const BUILTIN_MAPS: &[(&str, &str)] = &[
    ("small", include_str!("../../assets/maps/small.txt")),
    ("arena", include_str!("../../assets/maps/arena.txt")),
    ("maze", include_str!("../../assets/maps/maze.txt")),
    ("big", include_str!("../../assets/maps/big.txt")),
];

/// Looks up and parses a built-in map by its file stem.
pub fn builtin(name: &str) -> Option<Map> {
    BUILTIN_MAPS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| Map::parse(text, n).expect("built-in maps are checked by a unit test"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_map_parses() {
        for (name, text) in BUILTIN_MAPS {
            let m = Map::parse(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(m.spawns.len() >= 2, "{name} needs spawns");
            assert!(builtin(name).is_some());
        }
        let sizes: std::collections::BTreeSet<_> = BUILTIN_MAPS
            .iter()
            .map(|(n, _)| builtin(n).unwrap().area())
            .collect();
        assert_eq!(sizes.len(), BUILTIN_MAPS.len(), "maps have different sizes");
    }

    #[test]
    fn parses_header_grid_and_spawns() {
        let m = Map::parse(
            "; name = Box\n; mode = tron\n; food = 4\n#####\n#0.1#\n#####\n",
            "x",
        )
        .unwrap();
        assert_eq!(m.name, "Box");
        assert_eq!(m.mode, Some(Mode::Tron));
        assert_eq!(m.food, Some(4));
        assert_eq!((m.width, m.height), (5, 3));
        assert_eq!(m.spawns, vec![Pos::new(1, 1), Pos::new(3, 1)]);
        assert!(m.is_wall(Pos::new(0, 0)));
        assert!(!m.is_wall(Pos::new(2, 1)));
        assert!(m.is_wall(Pos::new(9, 9)), "outside the grid is a wall");
    }

    #[test]
    fn bad_character_reports_line_and_column() {
        let e = Map::parse("#####\n#0x.#\n#####\n", "x").unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));
        assert!(e.to_string().contains("line 2, column 3"), "{e}");
    }

    #[test]
    fn ragged_row_is_rejected_with_position() {
        let e = Map::parse("; name = r\n#####\n#0.#\n", "x").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("4 cells wide"), "{}", e.message);
    }

    #[test]
    fn missing_spawn_unknown_header_and_empty_are_rejected() {
        assert!(
            Map::parse("###\n#.#\n###\n", "x")
                .unwrap_err()
                .message
                .contains("spawn")
        );
        assert_eq!(
            Map::parse("; colour = red\n#0#\n", "x").unwrap_err().line,
            1
        );
        assert!(
            Map::parse("; mode = pong\n#0#\n", "x")
                .unwrap_err()
                .message
                .contains("pong")
        );
        assert!(Map::parse("", "x").is_err());
        let e = Map::parse("#0#\n\n#.#\n", "x").unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn crlf_files_parse() {
        let m = Map::parse("#0.#\r\n#..#\r\n", "x").unwrap();
        assert_eq!(m.width, 4);
    }
}
