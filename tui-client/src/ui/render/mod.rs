//! Drawing: a pure function from the [`App`] and an area to a buffer (and
//! where the cursor goes). No I/O, so every screen is snapshot-tested.

mod arena;
mod compare;
pub mod figures;
mod lobby;
mod net;
mod panel;
mod popups;
mod status;
#[cfg(test)]
mod tests;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

pub use arena::origin;
pub use compare::mechanism;
pub use popups::HELP;

use super::app::{App, LinkState, Overlay, Screen};
use crate::bot::Waiting;

/// Smallest terminal the game draws in.
pub const MIN_SIZE: (u16, u16) = (60, 20);
/// From this width on the side panel is wide.
const WIDE: u16 = 100;

/// Draws `app` on a ratatui frame.
pub fn draw(app: &App, frame: &mut Frame) {
    let area = frame.area();
    if let Some(cursor) = render(app, area, frame.buffer_mut()) {
        frame.set_cursor_position(cursor);
    }
}

/// Draws `app` into `buf` over `area`; returns the cursor position while
/// a text field has focus.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) -> Option<Position> {
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        popups::too_small(app, area, buf, MIN_SIZE);
        return None;
    }
    let [main, bar] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let mut cursor = None;
    match &app.screen {
        Screen::Lobby => lobby::render(app, main, buf),
        Screen::Compare => compare::render(app, main, buf),
        Screen::Connecting => connecting(app, main, buf),
        Screen::Game => cursor = game(app, main, buf),
        Screen::Failed(f) => {
            let theme = &app.theme;
            let mut keys = vec![Span::styled("r", theme.accent()), Span::raw(" retry   ")];
            if app.session.has_lobby {
                keys.push(Span::styled("l", theme.accent()));
                keys.push(Span::raw(" lobby   "));
            }
            keys.push(Span::styled("q", theme.accent()));
            keys.push(Span::raw(" quit"));
            popups::message_box(
                app,
                main,
                Span::styled(format!(" {} ", f.title), theme.bad()),
                vec![
                    Line::raw(f.message.clone()),
                    Line::raw(""),
                    Line::from(keys).centered(),
                ],
                56,
                buf,
            );
        }
    }
    status::render(app, bar, buf);
    match app.overlay {
        Overlay::None => {}
        Overlay::Help => popups::help(app, main, buf),
        Overlay::ConfirmQuit => popups::confirm_quit(app, main, buf),
    }
    if app.overlay != Overlay::None {
        return None;
    }
    cursor
}

fn connecting(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let attempt = match app.link {
        LinkState::Connecting { attempt } if attempt > 1 => format!(" (attempt {attempt})"),
        _ => String::new(),
    };
    let role = if app.spectating { "watch" } else { "play" };
    popups::message_box(
        app,
        area,
        Span::styled(" Tickwire ", theme.accent()),
        vec![
            Line::raw(format!(
                "Connecting to {}{}",
                app.session.server, theme.glyphs.ellipsis
            ))
            .centered(),
            Line::raw(format!(
                "room {} to {role}{attempt}",
                app.room.as_deref().unwrap_or("-")
            ))
            .centered(),
        ],
        56,
        buf,
    );
}

fn game(app: &App, area: Rect, buf: &mut Buffer) -> Option<Position> {
    let theme = &app.theme;
    let panel_w = if area.width >= WIDE { 34 } else { 24 };
    let [left, panel_area] =
        Layout::horizontal([Constraint::Min(10), Constraint::Length(panel_w)]).areas(area);
    // The net panel takes the bottom of the arena's side, leaving the
    // arena at least 8 rows.
    let net_h = if app.net_panel {
        net::HEIGHT.min(left.height.saturating_sub(8))
    } else {
        0
    };
    let [arena_area, net_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(net_h)]).areas(left);
    if net_h >= 3 {
        net::render(app, net_area, buf);
    }
    let title = match &app.view {
        Some(v) => format!(
            " Tickwire{mid}{}{mid}{} ",
            protocol::text::sanitize_line(&v.room, 32),
            v.mode,
            mid = theme.glyphs.mid
        ),
        None => " Tickwire ".to_string(),
    };
    let block = theme.block().title(Span::styled(title, theme.accent()));
    let inner = block.inner(arena_area);
    block.render(arena_area, buf);
    arena::render(app, inner, buf);
    let waiting = app.view.as_ref().is_none_or(|v| v.world.is_none());
    if let LinkState::Reconnecting { attempt, reason } = &app.link {
        popups::banner(
            app,
            inner,
            format!(
                "reconnecting{} attempt {attempt}: {}",
                theme.glyphs.ellipsis,
                protocol::text::sanitize_line(once(reason), 60)
            ),
            theme.warn(),
            buf,
        );
    } else if waiting {
        popups::banner(
            app,
            inner,
            format!("waiting for the first frame{}", theme.glyphs.ellipsis),
            theme.dim(),
            buf,
        );
    } else if app.spawn.waiting() == Waiting::AtSpawn {
        popups::how_to_play(app, inner, buf);
    } else if app.spawn.waiting() == Waiting::Parked {
        popups::parked(app, inner, buf);
    } else {
        popups::death(app, inner, buf);
    }
    panel::render(app, panel_area, buf)
}

/// "x: x" (a reason that repeats its cause) as "x".
fn once(reason: &str) -> &str {
    match reason.split_once(": ") {
        Some((a, b)) if a == b => a,
        _ => reason,
    }
}
