//! The side panel: scoreboard, room info and chat.

use protocol::text::sanitize_line;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::ui::app::{App, LogLine};

/// Draws the panel; returns where the cursor goes while typing chat.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) -> Option<Position> {
    let snakes = app
        .view
        .as_ref()
        .and_then(|v| v.world.as_ref())
        .map_or(0, |w| w.snakes.len()) as u16;
    let board_h = (snakes.max(1) + 3).min(area.height / 2).max(4);
    let info_h = if area.height >= 30 { 6 } else { 5 };
    let [board, info, chat] = Layout::vertical([
        Constraint::Length(board_h),
        Constraint::Length(info_h),
        Constraint::Min(3),
    ])
    .areas(area);
    scoreboard(app, board, buf);
    room_info(app, info, buf);
    chat_box(app, chat, buf)
}

fn scoreboard(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let block = theme
        .block()
        .title(Span::styled(" Scores ", theme.accent()));
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(view) = app.view.as_ref() else {
        return;
    };
    let Some(world) = view.world.as_ref() else {
        return;
    };
    let mut rows: Vec<_> = world.snakes.iter().collect();
    rows.sort_by(|a, b| {
        b.score
            .length
            .cmp(&a.score.length)
            .then(b.score.best.cmp(&a.score.best))
            .then(a.id.cmp(&b.id))
    });
    // name gets what the figures leave.
    let wide = inner.width >= 28;
    let figures = if wide { 17 } else { 10 };
    let name_w = inner.width.saturating_sub(figures + 2) as usize;
    let header = if wide {
        format!(
            "  {:<name_w$} {:>3} {:>3} {:>3} {:>4}",
            "name", "len", "K", "D", "best"
        )
    } else {
        format!("  {:<name_w$} {:>3} {:>5}", "name", "len", "K/D")
    };
    let mut lines = vec![Line::styled(header, theme.dim())];
    for s in rows {
        let mine = Some(s.id) == view.me;
        let followed = !mine && app.spectating && app.followed_snake().map(|f| f.id) == Some(s.id);
        let marker = if mine || followed {
            theme.glyphs.marker
        } else {
            " "
        };
        let name: String = sanitize_line(&s.name, 16).chars().take(name_w).collect();
        let figs = if wide {
            format!(
                " {:>3} {:>3} {:>3} {:>4}",
                s.score.length, s.score.kills, s.score.deaths, s.score.best
            )
        } else {
            format!(
                " {:>3} {:>5}",
                s.score.length,
                format!("{}/{}", s.score.kills, s.score.deaths)
            )
        };
        let mut name_style = if mine {
            theme.mine(s.id)
        } else {
            theme.snake(s.id)
        };
        if !s.alive {
            name_style = name_style.add_modifier(Modifier::DIM);
        }
        lines.push(Line::from(vec![
            Span::styled(format!("{marker} "), theme.accent()),
            Span::styled(format!("{name:<name_w$}"), name_style),
            Span::raw(figs),
        ]));
    }
    Paragraph::new(lines).render(inner, buf);
}

fn room_info(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let room = app.room.as_deref().unwrap_or("-");
    let block = theme
        .block()
        .title(Span::styled(format!(" Room {room} "), theme.accent()));
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(view) = app.view.as_ref() else {
        return;
    };
    let mid = theme.glyphs.mid;
    let mut lines = vec![Line::from(format!(
        "{} on {}",
        view.mode,
        sanitize_line(&view.map.name, 24)
    ))];
    let mut second = format!(
        "{}x{}{mid}{} Hz",
        view.map.width, view.map.height, view.tick_rate
    );
    if let Some(w) = view.world.as_ref()
        && w.mode == protocol::Mode::Tron
    {
        second.push_str(&format!("{mid}round {}", w.round + 1));
    }
    lines.push(Line::from(second));
    let third = match &app.room_info {
        Some(info) if inner.width >= 26 => format!(
            "{}/{} playing{mid}{} watching",
            info.players, info.max_players, info.spectators
        ),
        Some(info) => format!(
            "{}/{} play{mid}{} watch",
            info.players, info.max_players, info.spectators
        ),
        None => format!(
            "{} playing",
            view.world.as_ref().map_or(0, |w| w.snakes.len())
        ),
    };
    lines.push(Line::from(third));
    let text_h = lines.len() as u16;
    Paragraph::new(lines).render(inner, buf);
    // RTT history (a bar per second) under the text, when there is room.
    let history = app.lag.as_ref().map(|l| &l.history);
    if inner.height > text_h
        && let Some(h) = history
        && h.iter().any(|s| s.rtt_us.is_some())
    {
        let spark = Rect {
            y: inner.y + text_h,
            height: inner.height - text_h,
            ..inner
        };
        let data: Vec<Option<u64>> = h.iter().map(|s| s.rtt_us).collect();
        super::net::sparkline(&data, None, theme, spark, buf);
    }
}

fn chat_box(app: &App, area: Rect, buf: &mut Buffer) -> Option<Position> {
    let theme = &app.theme;
    let title = if app.chat_input.is_some() {
        " Chat (Enter send, Esc cancel) "
    } else {
        " Chat (Enter to talk) "
    };
    let block = theme.block().title(Span::styled(title, theme.accent()));
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 || inner.width == 0 {
        return None;
    }
    let (log_area, input_area) = if app.chat_input.is_some() && inner.height >= 2 {
        let [a, b] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
        (a, Some(b))
    } else {
        (inner, None)
    };
    // Newest at the bottom: build lines from the end until the area is full.
    let width = log_area.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    let mut used = 0usize;
    for entry in app.log.iter().rev() {
        let line = match entry {
            LogLine::Chat { from, text } => {
                let color = color_of(app, from);
                Line::from(vec![
                    Span::styled(format!("{from}: "), color.add_modifier(Modifier::BOLD)),
                    Span::raw(text.clone()),
                ])
            }
            LogLine::Event(text) => Line::styled(text.clone(), theme.dim()),
        };
        let h = line.width().max(1).div_ceil(width.max(1));
        if used + h > log_area.height as usize {
            break;
        }
        used += h;
        lines.push(line);
    }
    lines.reverse();
    let pad = log_area.height as usize - used;
    let mut all = vec![Line::raw(""); pad];
    all.extend(lines);
    Paragraph::new(all)
        .wrap(Wrap { trim: false })
        .render(log_area, buf);
    let input_area = input_area?;
    let input = app.chat_input.as_deref().unwrap_or("");
    let room = (input_area.width as usize).saturating_sub(3);
    // Show the end of a long line.
    let shown: String = {
        let n = input.chars().count();
        input.chars().skip(n.saturating_sub(room)).collect()
    };
    let prompt = Line::from(vec![
        Span::styled("> ", theme.accent()),
        Span::raw(shown.clone()),
    ]);
    Paragraph::new(prompt).render(input_area, buf);
    Some(Position::new(
        input_area.x + 2 + shown.chars().count() as u16,
        input_area.y,
    ))
}

/// The color of the snake with this name, for chat senders.
fn color_of(app: &App, name: &str) -> Style {
    app.view
        .as_ref()
        .and_then(|v| v.world.as_ref())
        .and_then(|w| w.snakes.iter().find(|s| s.name == name))
        .map_or_else(
            || app.theme.accent(),
            |s| match app.view.as_ref().and_then(|v| v.me) {
                Some(me) if me == s.id => app.theme.mine(s.id),
                _ => app.theme.snake(s.id),
            },
        )
}
