//! Boxes drawn over a screen: help, quit confirmation, the death notice,
//! the reconnect banner, and the message screens (connecting, errors,
//! terminal too small).

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

use crate::ui::app::App;

/// The help text (also in `assets/help.txt`).
pub const HELP: &str = include_str!("../../../../assets/help.txt");

/// A `w` x `h` rectangle centred in `area` (shrunk to fit).
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let (w, h) = (w.min(area.width), h.min(area.height));
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// A box with a title and lines, cleared behind, centred in `area`.
pub fn message_box(
    app: &App,
    area: Rect,
    title: Span<'_>,
    lines: Vec<Line<'_>>,
    width: u16,
    buf: &mut Buffer,
) {
    // Height: wrapped lines plus borders.
    let inner_w = width.saturating_sub(4).max(1) as usize;
    let h: usize = lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(inner_w))
        .sum::<usize>()
        + 2;
    let rect = centered(area, width, h as u16);
    let rect = Rect {
        // Boxes given a short area stick to its top.
        y: if area.height <= h as u16 + 2 {
            area.y
        } else {
            rect.y
        },
        ..rect
    };
    Clear.render(rect, buf);
    let block = app.theme.block().title(title);
    let inner = block.inner(rect);
    block.render(rect, buf);
    let inner = Rect {
        x: inner.x + 1,
        width: inner.width.saturating_sub(2),
        ..inner
    };
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}

/// The help overlay.
pub fn help(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let mut lines: Vec<Line> = HELP
        .lines()
        .map(|l| {
            // Key names left, their meaning right: accent the key column.
            match l.split_at_checked(15) {
                Some((k, rest)) if !k.trim().is_empty() => Line::from(vec![
                    Span::styled(k.to_string(), theme.accent()),
                    Span::raw(rest.to_string()),
                ]),
                _ => Line::raw(l.to_string()),
            }
        })
        .collect();
    if !theme.glyphs.unicode_borders {
        // Keep ASCII mode ASCII: the help text itself is plain.
        lines.retain(|l| l.spans.iter().all(|s| s.content.is_ascii()));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("press any key to close", theme.dim()).alignment(Alignment::Center));
    message_box(
        app,
        area,
        Span::styled(" Help ", theme.accent()),
        lines,
        62,
        buf,
    );
}

/// "Leave the game?"
pub fn confirm_quit(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let mut keys = vec![
        Span::styled("y", theme.accent()),
        Span::raw(" quit   "),
        Span::styled("n", theme.accent()),
        Span::raw(" keep playing"),
    ];
    if app.session.has_lobby {
        keys.push(Span::raw("   "));
        keys.push(Span::styled("l", theme.accent()));
        keys.push(Span::raw(" lobby"));
    }
    message_box(
        app,
        area,
        Span::styled(" Quit? ", theme.warn()),
        vec![
            Line::raw("Leave the game? Your snake is removed.").alignment(Alignment::Center),
            Line::from(keys).alignment(Alignment::Center),
        ],
        46,
        buf,
    );
}

/// The notice over the arena while our snake is dead.
pub fn death(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let Some(view) = app.view.as_ref() else {
        return;
    };
    let Some(me) = view.my_snake() else {
        return;
    };
    if me.alive {
        return;
    }
    let mut lines = Vec::new();
    if let Some(note) = &app.death_note {
        lines.push(Line::raw(note.clone()).alignment(Alignment::Center));
    }
    let wait = if me.respawn_in > 0 {
        let secs = f64::from(me.respawn_in) / f64::from(view.tick_rate.max(1));
        format!("respawn in {secs:.1} s")
    } else {
        "waiting for the next round".to_string()
    };
    lines.push(Line::styled(wait, theme.warn()).alignment(Alignment::Center));
    let top = Rect {
        height: (lines.len() as u16 + 2).min(area.height),
        ..area
    };
    message_box(
        app,
        top,
        // A tron joiner waits for the round without having died.
        if app.death_note.is_some() {
            Span::styled(" You died ", theme.bad())
        } else {
            Span::styled(" Waiting ", theme.warn())
        },
        lines,
        34,
        buf,
    );
}

/// The first screen of a fresh snake: it waits for a key, and how to play.
pub fn how_to_play(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let g = &theme.glyphs;
    let lines = vec![
        Line::styled("steer to start: arrows, WASD or hjkl", theme.accent()).centered(),
        Line::from(vec![
            Span::raw("eat "),
            Span::styled(g.food, theme.food()),
            Span::raw(" to grow, avoid walls and snakes; ? help"),
        ])
        .centered(),
    ];
    let top = Rect {
        height: 8.min(area.height),
        ..area
    };
    // Sized to the arena, so the box is as tall as its wrapped lines.
    message_box(app, top, Span::raw(""), lines, 58.min(area.width), buf);
}

/// Our snake waited at its spawn point without a key and was taken off
/// the arena; a key brings it back.
pub fn parked(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let lines = vec![
        Line::raw("Your snake waited for you and was parked.").centered(),
        Line::styled("press an arrow key (WASD, hjkl) to play", theme.accent()).centered(),
    ];
    let top = Rect {
        height: 6.min(area.height),
        ..area
    };
    message_box(
        app,
        top,
        Span::styled(" Parked ", theme.warn()),
        lines,
        46,
        buf,
    );
}

/// A one-box banner at the top of `area`.
pub fn banner(app: &App, area: Rect, text: String, style: Style, buf: &mut Buffer) {
    let w = (text.chars().count() as u16 + 4).min(area.width);
    // Up to three wrapped lines in narrow terminals.
    let top = Rect {
        height: 5.min(area.height),
        ..area
    };
    message_box(
        app,
        top,
        Span::raw(""),
        vec![Line::styled(text, style).centered()],
        w,
        buf,
    );
}

/// The screen for terminals below the minimum size.
pub fn too_small(app: &App, area: Rect, buf: &mut Buffer, min: (u16, u16)) {
    let theme = &app.theme;
    let mut lines = vec![
        Line::styled("Terminal too small", theme.bad()),
        Line::raw(format!("{}x{} here", area.width, area.height)),
        Line::raw(format!("needs {}x{}", min.0, min.1)),
        Line::styled("enlarge it, or q to quit", theme.dim()),
    ];
    // Keys still work here: a quit question must still be seen.
    if app.overlay == crate::ui::app::Overlay::ConfirmQuit {
        lines.push(Line::styled("Quit? y / n", theme.warn()));
    }
    let h = lines.len() as u16;
    let rect = Rect {
        y: area.y + area.height.saturating_sub(h) / 2,
        height: h.min(area.height),
        ..area
    };
    Paragraph::new(lines)
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true })
        .render(rect, buf);
}
