//! Colors and glyphs: one place decides how a cell looks for the
//! terminal at hand (truecolor, 16 colors or none; Unicode or ASCII).

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;
use ratatui::widgets::{Block, BorderType};

/// Sparkline bars for terminals without Unicode.
const ASCII_BARS: ratatui::symbols::bar::Set<'static> = ratatui::symbols::bar::Set {
    full: "#",
    seven_eighths: "#",
    three_quarters: "=",
    five_eighths: "=",
    half: "-",
    three_eighths: "-",
    one_quarter: ".",
    one_eighth: ".",
    empty: " ",
};

/// Borders for terminals without Unicode.
const ASCII_BORDER: border::Set = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

/// How many colors the terminal gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorMode {
    /// No color at all (`NO_COLOR`): shapes and modifiers only.
    None,
    /// The 16 ANSI colors every terminal has.
    Ansi16,
    /// 24-bit colors (`COLORTERM=truecolor`).
    TrueColor,
}

impl ColorMode {
    /// Picks the mode from the environment: `NO_COLOR` (non-empty) wins,
    /// then `COLORTERM` naming truecolor/24bit, else 16 colors.
    pub fn detect(no_color: Option<&str>, colorterm: Option<&str>) -> ColorMode {
        if no_color.is_some_and(|v| !v.is_empty()) {
            return ColorMode::None;
        }
        match colorterm {
            Some(c) if c.contains("truecolor") || c.contains("24bit") => ColorMode::TrueColor,
            _ => ColorMode::Ansi16,
        }
    }

    /// [`ColorMode::detect`] on this process's environment.
    pub fn from_env() -> ColorMode {
        let no_color = std::env::var("NO_COLOR").ok();
        let colorterm = std::env::var("COLORTERM").ok();
        ColorMode::detect(no_color.as_deref(), colorterm.as_deref())
    }
}

/// Two-column glyphs for one arena cell, so cells look square.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Glyphs {
    pub wall: &'static str,
    pub floor: &'static str,
    pub food: &'static str,
    pub body: &'static str,
    pub head: &'static str,
    pub my_body: &'static str,
    pub my_head: &'static str,
    /// Box-drawing style of panel borders.
    pub unicode_borders: bool,
    /// Separator between status bar fields.
    pub sep: &'static str,
    /// Marker of the selected row and of our own scoreboard row.
    pub marker: &'static str,
    /// Connection state dot in the status bar.
    pub bullet: &'static str,
    /// Trailing dots of "connecting...".
    pub ellipsis: &'static str,
    /// Separator inside titles.
    pub mid: &'static str,
}

const UNICODE: Glyphs = Glyphs {
    wall: "██",
    floor: "  ",
    food: "▐▌",
    body: "██",
    head: "▓▓",
    my_body: "██",
    my_head: "▓▓",
    unicode_borders: true,
    sep: " │ ",
    marker: "▶",
    bullet: "●",
    ellipsis: "…",
    mid: " · ",
};

const ASCII: Glyphs = Glyphs {
    wall: "##",
    floor: "  ",
    food: "()",
    body: "oo",
    head: "OO",
    my_body: "[]",
    my_head: "@@",
    unicode_borders: false,
    sep: " | ",
    marker: ">",
    bullet: "*",
    ellipsis: "...",
    mid: " - ",
};

/// Unicode without colors: walls and food keep their blocks, snakes take
/// the ASCII letters, so nothing but shape tells them apart and every
/// shape differs (a full block would make a body look like a wall).
const UNICODE_MONO: Glyphs = Glyphs {
    body: ASCII.body,
    head: ASCII.head,
    my_body: ASCII.my_body,
    my_head: ASCII.my_head,
    ..UNICODE
};

/// Everything that decides looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub colors: ColorMode,
    pub glyphs: Glyphs,
}

/// Other snakes' colors in 16-color terminals, by player id. Green is
/// ours alone and red is food's, so neither is here.
const PALETTE_16: [Color; 8] = [
    Color::LightMagenta,
    Color::LightCyan,
    Color::LightYellow,
    Color::LightBlue,
    Color::Magenta,
    Color::Cyan,
    Color::Yellow,
    Color::Blue,
];

/// Other snakes' colors in truecolor terminals, by player id (no green,
/// no red: ours and food's).
const PALETTE_RGB: [(u8, u8, u8); 8] = [
    (235, 90, 210),
    (70, 210, 230),
    (240, 220, 70),
    (90, 140, 255),
    (255, 150, 60),
    (160, 110, 255),
    (100, 180, 255),
    (230, 180, 120),
];

/// Our own snake's color: the same green in every game, so we find
/// ourselves at a glance.
const MINE: (Color, (u8, u8, u8)) = (Color::LightGreen, (80, 230, 100));

impl Theme {
    /// A theme for the given capabilities.
    pub fn new(colors: ColorMode, ascii: bool) -> Theme {
        Theme {
            colors,
            glyphs: match (ascii, colors) {
                (true, _) => ASCII,
                (false, ColorMode::None) => UNICODE_MONO,
                (false, _) => UNICODE,
            },
        }
    }

    fn color(&self, ansi: Color, rgb: (u8, u8, u8)) -> Style {
        match self.colors {
            ColorMode::None => Style::default(),
            ColorMode::Ansi16 => Style::default().fg(ansi),
            ColorMode::TrueColor => Style::default().fg(Color::Rgb(rgb.0, rgb.1, rgb.2)),
        }
    }

    /// Another snake's body, by player id.
    pub fn snake(&self, id: u32) -> Style {
        let i = id as usize;
        let rgb = PALETTE_RGB[i % PALETTE_RGB.len()];
        self.color(PALETTE_16[i % PALETTE_16.len()], rgb)
    }

    /// Another snake's head: its color, bold.
    pub fn head(&self, id: u32) -> Style {
        self.snake(id).add_modifier(Modifier::BOLD)
    }

    /// Our own snake: green (a color no other snake has), bold.
    pub fn mine(&self, _id: u32) -> Style {
        self.color(MINE.0, MINE.1).add_modifier(Modifier::BOLD)
    }

    /// Our own head: white and bold on the green body.
    pub fn my_head(&self, id: u32) -> Style {
        match self.colors {
            ColorMode::None => self.mine(id),
            _ => self
                .color(Color::White, (255, 255, 255))
                .add_modifier(Modifier::BOLD),
        }
    }

    /// Our name over our head: reversed, like a name tag.
    pub fn my_label(&self, id: u32) -> Style {
        self.mine(id).add_modifier(Modifier::REVERSED)
    }

    /// Walls: gray, the only gray blocks in the arena.
    pub fn wall(&self) -> Style {
        self.color(Color::DarkGray, (95, 95, 120))
    }

    /// Food: red, the only red thing in the arena.
    pub fn food(&self) -> Style {
        self.color(Color::LightRed, (255, 70, 70))
            .add_modifier(Modifier::BOLD)
    }

    /// Headings, titles, keys in the help.
    pub fn accent(&self) -> Style {
        self.color(Color::LightCyan, (120, 200, 255))
            .add_modifier(Modifier::BOLD)
    }

    /// Secondary text.
    pub fn dim(&self) -> Style {
        match self.colors {
            ColorMode::None => Style::default(),
            _ => self.color(Color::DarkGray, (130, 130, 140)),
        }
    }

    /// Good news (connected, RTT fine).
    pub fn good(&self) -> Style {
        self.color(Color::LightGreen, (110, 230, 110))
    }

    /// Attention (reconnecting, slow).
    pub fn warn(&self) -> Style {
        self.color(Color::LightYellow, (250, 210, 80))
            .add_modifier(Modifier::BOLD)
    }

    /// Errors and deaths.
    pub fn bad(&self) -> Style {
        self.color(Color::LightRed, (255, 90, 90))
            .add_modifier(Modifier::BOLD)
    }

    /// The selected row of a list.
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    /// Sparkline bars (plain characters in ASCII).
    pub fn bars(&self) -> ratatui::symbols::bar::Set<'static> {
        if self.glyphs.unicode_borders {
            ratatui::symbols::bar::NINE_LEVELS
        } else {
            ASCII_BARS
        }
    }

    /// A bordered block in this theme (rounded, or `+-|` in ASCII).
    pub fn block<'a>(&self) -> Block<'a> {
        let b = Block::bordered().border_style(self.dim());
        if self.glyphs.unicode_borders {
            b.border_type(BorderType::Rounded)
        } else {
            b.border_set(ASCII_BORDER)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_wins_and_truecolor_is_detected() {
        assert_eq!(
            ColorMode::detect(Some("1"), Some("truecolor")),
            ColorMode::None
        );
        assert_eq!(ColorMode::detect(Some(""), None), ColorMode::Ansi16);
        assert_eq!(ColorMode::detect(None, Some("24bit")), ColorMode::TrueColor);
        assert_eq!(ColorMode::detect(None, None), ColorMode::Ansi16);
    }

    #[test]
    fn no_color_theme_has_no_colors() {
        let t = Theme::new(ColorMode::None, false);
        for id in 0..20 {
            assert_eq!(t.snake(id).fg, None);
        }
        assert_eq!(t.food().fg, None);
        assert_eq!(t.wall().fg, None);
    }

    #[test]
    fn food_heads_ours_others_and_walls_differ_in_16_colors_and_in_shapes() {
        let t = Theme::new(ColorMode::Ansi16, false);
        let others: Vec<_> = (0..32).map(|id| t.snake(id).fg).collect();
        for fg in &others {
            assert_ne!(*fg, t.mine(1).fg, "another snake looks like ours");
            assert_ne!(*fg, t.food().fg, "a snake looks like food");
            assert_ne!(*fg, t.wall().fg, "a snake looks like a wall");
        }
        assert_ne!(t.food().fg, t.wall().fg);
        assert_ne!(t.my_head(1).fg, t.mine(1).fg, "our head stands out");
        // Without colors (and in ASCII) shapes alone tell them apart.
        for theme in [
            Theme::new(ColorMode::None, false),
            Theme::new(ColorMode::None, true),
            Theme::new(ColorMode::Ansi16, true),
        ] {
            let g = theme.glyphs;
            let shapes = [g.wall, g.food, g.body, g.head, g.my_body, g.my_head];
            for (i, a) in shapes.iter().enumerate() {
                for b in &shapes[i + 1..] {
                    assert_ne!(a, b, "{theme:?}");
                }
            }
        }
    }
}
