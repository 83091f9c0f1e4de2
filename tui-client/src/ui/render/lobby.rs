//! The lobby: the server's rooms, and the create-room form.

use protocol::text::sanitize_line;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Widget};

use super::popups::message_box;
use crate::ui::app::{App, MAPS};

/// Draws the lobby screen.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let [main, hints] = Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).areas(area);
    let block = theme.block().title(Span::styled(
        format!(" Tickwire lobby{}{} ", theme.glyphs.mid, app.session.server),
        theme.accent(),
    ));
    let inner = block.inner(main);
    block.render(main, buf);
    match &app.lobby.rooms {
        None => Paragraph::new(Line::styled(
            format!("loading rooms{}", theme.glyphs.ellipsis),
            theme.dim(),
        ))
        .render(inner, buf),
        Some(rooms) if rooms.is_empty() => {
            Paragraph::new(Line::raw("No rooms yet: press c to create one.")).render(inner, buf)
        }
        Some(rooms) => {
            let header = Row::new([
                "room", "mode", "map", "players", "watching", "tick", "speed",
            ])
            .style(theme.dim());
            let rows = rooms.iter().enumerate().map(|(i, r)| {
                let style = if i == app.lobby.selected {
                    theme.selected()
                } else {
                    ratatui::style::Style::default()
                };
                let marker = if i == app.lobby.selected {
                    theme.glyphs.marker
                } else {
                    " "
                };
                Row::new([
                    Cell::from(format!("{marker} {}", sanitize_line(&r.id, 32))),
                    Cell::from(r.mode.to_string()),
                    Cell::from(sanitize_line(&r.map, 24)),
                    Cell::from(format!("{}/{}", r.players, r.max_players)),
                    Cell::from(r.spectators.to_string()),
                    Cell::from(format!("{} Hz", r.tick_rate)),
                    Cell::from(format!("{}/s", r.speed)),
                ])
                .style(style)
            });
            Table::new(
                rows,
                [
                    Constraint::Min(12),
                    Constraint::Length(6),
                    Constraint::Min(8),
                    Constraint::Length(8),
                    Constraint::Length(9),
                    Constraint::Length(6),
                    Constraint::Length(5),
                ],
            )
            .header(header)
            .render(inner, buf);
        }
    }
    let mut lines = vec![Line::from(vec![
        Span::styled(
            if app.session.watch { "p" } else { "Enter" },
            theme.accent(),
        ),
        Span::raw(" play  "),
        Span::styled(
            if app.session.watch { "Enter/v" } else { "v" },
            theme.accent(),
        ),
        Span::raw(" watch  "),
        Span::styled("t", theme.accent()),
        Span::raw(" compare  "),
        Span::styled("c", theme.accent()),
        Span::raw(" create  "),
        Span::styled("r", theme.accent()),
        Span::raw(" refresh  "),
        Span::styled("q", theme.accent()),
        Span::raw(" quit"),
    ])];
    if let Some(note) = &app.lobby.note {
        lines.push(Line::styled(sanitize_line(note, 200), theme.warn()));
    }
    Paragraph::new(lines).render(hints, buf);

    if let Some(form) = &app.lobby.create {
        let id = if form.id.is_empty() {
            "(automatic)".to_string()
        } else {
            form.id.clone()
        };
        let lines = vec![
            Line::from(vec![Span::styled("id    ", theme.dim()), Span::raw(id)]),
            Line::from(vec![
                Span::styled("mode  ", theme.dim()),
                Span::raw(form.mode.to_string()),
                Span::styled("  (Tab)", theme.dim()),
            ]),
            Line::from(vec![
                Span::styled("map   ", theme.dim()),
                Span::raw(MAPS[form.map % MAPS.len()]),
                Span::styled("  (Left/Right)", theme.dim()),
            ]),
            Line::from(vec![
                Span::styled("speed ", theme.dim()),
                Span::raw(format!("{} cells/s", form.speed_or_default())),
                Span::styled("  (Up/Down)", theme.dim()),
            ]),
            Line::raw(""),
            Line::styled("type an id, Enter create, Esc cancel", theme.dim()),
        ];
        message_box(
            app,
            area,
            Span::styled(" Create a room ", theme.accent()),
            lines,
            44,
            buf,
        );
    }
}
