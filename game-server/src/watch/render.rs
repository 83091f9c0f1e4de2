//! Renders a room as text for `curl -N /rooms/{room}/watch`: a pure function
//! of the map and the world, so it is unit-tested without a server.
//!
//! One character per cell keeps an 80-column terminal useful; a map larger
//! than `cols`/`rows` is cropped to a window centred on the leading snake.
//! Names are sanitised again here (defence in depth): no byte a player typed
//! reaches a spectator's terminal raw.

use std::fmt::Write as _;

use protocol::text::sanitize_line;
use protocol::{Map, Pos, WorldState};

/// How to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WatchOptions {
    /// ANSI colors and cursor control; `false` gives plain text frames.
    pub color: bool,
    /// Terminal width in columns.
    pub cols: u16,
    /// Terminal height in rows.
    pub rows: u16,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            color: true,
            cols: 100,
            rows: 40,
        }
    }
}

/// The smallest and largest terminal sizes accepted.
pub const MIN_COLS: u16 = 20;
pub const MIN_ROWS: u16 = 8;
pub const MAX_COLS: u16 = 500;
pub const MAX_ROWS: u16 = 300;

/// Foreground colors (ANSI 256) given to snakes by id.
const PALETTE: [u8; 12] = [46, 201, 51, 226, 208, 129, 39, 196, 118, 213, 87, 220];

const RESET: &str = "\x1b[0m";

fn color_of(id: u32) -> u8 {
    PALETTE[id as usize % PALETTE.len()]
}

/// Everything the header line shows besides the world.
#[derive(Clone, Copy, Debug)]
pub struct RoomLabel<'a> {
    pub room: &'a str,
    pub spectators: u32,
}

/// Renders one frame. With color, the frame starts by homing the cursor and
/// ends by clearing the rest of the screen, so successive frames redraw in
/// place without flicker; without color, frames are separated by a rule line.
pub fn render(map: &Map, world: &WorldState, label: RoomLabel<'_>, opts: WatchOptions) -> String {
    let cols = opts.cols.clamp(MIN_COLS, MAX_COLS) as usize;
    let rows = opts.rows.clamp(MIN_ROWS, MAX_ROWS) as usize;
    let board_w = 26usize;
    let side = cols >= map.width as usize + board_w + 2;
    let view_w = if side {
        map.width as usize
    } else {
        (map.width as usize).min(cols)
    };
    let reserved = if side {
        2
    } else {
        2 + world.snakes.len().min(8) + 1
    };
    let view_h = (map.height as usize).min(rows.saturating_sub(reserved).max(1));
    let (x0, y0) = window(map, world, view_w, view_h);

    // Owner of each visible cell: 0 empty, id+1 body, with heads marked.
    let mut cell: Vec<(u8, u32)> = vec![(b' ', 0); view_w * view_h];
    let visible = |p: Pos| {
        let (x, y) = (p.x as usize, p.y as usize);
        (x >= x0 && x < x0 + view_w && y >= y0 && y < y0 + view_h)
            .then(|| (y - y0) * view_w + (x - x0))
    };
    for p in &world.food {
        if let Some(i) = visible(*p) {
            cell[i] = (b'*', 0);
        }
    }
    for s in &world.snakes {
        for (k, p) in s.body.iter().enumerate() {
            if let Some(i) = visible(*p) {
                cell[i] = (if k == 0 { b'@' } else { b'o' }, s.id + 1);
            }
        }
    }

    let mut out = String::with_capacity((view_w + 16) * (view_h + 4) * 2);
    if opts.color {
        out.push_str("\x1b[H");
    } else {
        out.push_str(&"-".repeat(cols.min(80)));
        out.push('\n');
    }
    let players = world.snakes.len();
    let mut header = format!(
        "Tickwire  room {}  {} on {}  tick {}  {} player{}, {} spectator{}",
        sanitize_line(label.room, 32),
        world.mode,
        sanitize_line(&map.name, 40),
        world.tick,
        players,
        if players == 1 { "" } else { "s" },
        label.spectators,
        if label.spectators == 1 { "" } else { "s" },
    );
    truncate(&mut header, cols);
    line(&mut out, opts, &header, true);

    let board = scoreboard(world);
    for vy in 0..view_h {
        let mut l = String::with_capacity(view_w * 8);
        let mut current: Option<u8> = None;
        for vx in 0..view_w {
            let (glyph, owner) = cell[vy * view_w + vx];
            let p = Pos::new((x0 + vx) as u16, (y0 + vy) as u16);
            let (ch, col) = match glyph {
                b' ' if map.is_wall(p) => ('#', Some(240)),
                b' ' => ('.', Some(236)),
                b'*' => ('*', Some(203)),
                g => (g as char, Some(color_of(owner - 1))),
            };
            if opts.color && col != current {
                let _ = write!(l, "\x1b[38;5;{}m", col.unwrap_or(7));
                current = col;
            }
            l.push(ch);
        }
        if opts.color {
            l.push_str(RESET);
        }
        if side && let Some(row) = board.get(vy) {
            l.push_str("  ");
            l.push_str(&styled_row(row, opts.color));
        }
        line(&mut out, opts, &l, false);
    }
    if !side {
        for row in board.iter().take(rows.saturating_sub(view_h + 2)) {
            line(&mut out, opts, &styled_row(row, opts.color), false);
        }
    }
    if opts.color {
        out.push_str("\x1b[J");
    }
    out
}

/// The top-left of a `w` x `h` window: the whole map when it fits, else
/// centred on the longest live snake's head (ties: lowest id).
fn window(map: &Map, world: &WorldState, w: usize, h: usize) -> (usize, usize) {
    let focus = world
        .snakes
        .iter()
        .filter(|s| s.alive)
        .max_by_key(|s| (s.body.len(), std::cmp::Reverse(s.id)))
        .and_then(|s| s.head())
        .unwrap_or(Pos::new(map.width / 2, map.height / 2));
    let clamp = |c: usize, size: usize, full: usize| c.saturating_sub(size / 2).min(full - size);
    (
        clamp(focus.x as usize, w, map.width as usize),
        clamp(focus.y as usize, h, map.height as usize),
    )
}

struct BoardRow {
    color: Option<u8>,
    text: String,
}

fn scoreboard(world: &WorldState) -> Vec<BoardRow> {
    let mut snakes: Vec<_> = world.snakes.iter().collect();
    snakes.sort_by_key(|s| (std::cmp::Reverse(s.score.length), s.id));
    let mut rows = vec![BoardRow {
        color: None,
        text: format!("{:<16} {:>3} {:>2} {:>2}", "player", "len", "k", "d"),
    }];
    rows.extend(snakes.into_iter().map(|s| {
        let mut name = sanitize_line(&s.name, 16);
        if !s.alive {
            name = format!("{name:.14} \u{2020}");
        }
        BoardRow {
            color: Some(color_of(s.id)),
            text: format!(
                "{:<16} {:>3} {:>2} {:>2}",
                name, s.score.length, s.score.kills, s.score.deaths
            ),
        }
    }));
    rows
}

fn styled_row(row: &BoardRow, color: bool) -> String {
    match (color, row.color) {
        (true, Some(c)) => format!("\x1b[38;5;{c}m{}{RESET}", row.text),
        (true, None) => format!("\x1b[1m{}{RESET}", row.text),
        (false, _) => row.text.clone(),
    }
}

fn line(out: &mut String, opts: WatchOptions, text: &str, bold: bool) {
    if opts.color && bold {
        out.push_str("\x1b[1m");
        out.push_str(text);
        out.push_str(RESET);
    } else {
        out.push_str(text);
    }
    if opts.color {
        out.push_str("\x1b[K");
    }
    out.push('\n');
}

fn truncate(s: &mut String, cols: usize) {
    if let Some((i, _)) = s.char_indices().nth(cols) {
        s.truncate(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Dir, Mode, Score, SnakeState};

    fn world_with(names: &[&str]) -> (Map, WorldState) {
        let map = Map::parse(
            "; name = T\n##########\n#0......1#\n#........#\n##########\n",
            "t",
        )
        .unwrap();
        let mut w = WorldState::new(Mode::Snake);
        w.tick = 42;
        w.food = vec![Pos::new(5, 2)];
        for (i, n) in names.iter().enumerate() {
            w.snakes.push(SnakeState {
                id: i as u32 + 1,
                name: n.to_string(),
                body: [Pos::new(3, 1 + i as u16), Pos::new(2, 1 + i as u16)]
                    .into_iter()
                    .collect(),
                dir: Dir::Right,
                alive: true,
                respawn_in: 0,
                boost: false,
                connected: true,
                score: Score {
                    length: 2,
                    ..Score::default()
                },
            });
        }
        (map, w)
    }

    const LABEL: RoomLabel<'static> = RoomLabel {
        room: "lobby",
        spectators: 1,
    };

    #[test]
    fn plain_frame_shows_map_snakes_food_and_scores() {
        let (map, w) = world_with(&["alice", "bob"]);
        let opts = WatchOptions {
            color: false,
            cols: 80,
            rows: 24,
        };
        let out = render(&map, &w, LABEL, opts);
        assert!(!out.contains('\x1b'), "plain text has no escapes");
        let lines: Vec<_> = out.lines().collect();
        assert!(
            lines[1].contains("room lobby") && lines[1].contains("tick 42"),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("2 players, 1 spectator"), "{}", lines[1]);
        assert_eq!(&lines[2][..10], "##########");
        assert!(lines[3].starts_with("#.o@.....#  alice"), "{}", lines[3]);
        assert!(lines[4].starts_with("#.o@.*...#  bob"), "{}", lines[4]);
        assert!(out.contains("alice"));
        assert!(out.contains("bob"));
    }

    #[test]
    fn colored_frame_homes_cursor_and_colors_snakes() {
        let (map, w) = world_with(&["alice"]);
        let out = render(&map, &w, LABEL, WatchOptions::default());
        assert!(out.starts_with("\x1b[H"));
        assert!(out.ends_with("\x1b[J"));
        assert!(out.contains(&format!("\x1b[38;5;{}m", color_of(1))));
    }

    #[test]
    fn hostile_names_are_inert() {
        let (map, w) = world_with(&["\x1b]0;pwn\x07\x1b[2J", "a\u{202E}b"]);
        for color in [false, true] {
            let out = render(
                &map,
                &w,
                LABEL,
                WatchOptions {
                    color,
                    ..Default::default()
                },
            );
            assert!(!out.contains("\x1b]"), "no OSC");
            assert!(!out.contains("\x1b[2J"), "no clear from a name");
            assert!(!out.contains('\x07') && !out.contains('\u{202E}'));
            if !color {
                assert!(!out.contains('\x1b'));
            }
        }
    }

    #[test]
    fn large_map_is_cropped_to_the_terminal_around_the_leader() {
        let map = protocol::map::builtin("big").unwrap();
        let mut w = WorldState::new(Mode::Snake);
        w.snakes.push(SnakeState {
            id: 1,
            name: "far".into(),
            body: [Pos::new(150, 80)].into_iter().collect(),
            dir: Dir::Up,
            alive: true,
            respawn_in: 0,
            boost: false,
            connected: true,
            score: Score::default(),
        });
        let opts = WatchOptions {
            color: false,
            cols: 60,
            rows: 20,
        };
        let out = render(&map, &w, LABEL, opts);
        assert!(out.lines().count() <= 20, "fits the rows");
        assert!(
            out.lines().skip(1).all(|l| l.chars().count() <= 60),
            "fits the cols"
        );
        assert!(out.contains('@'), "the leader is in view");
    }
}
