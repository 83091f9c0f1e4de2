//! The status bar: connection state, transport, RTT, tick, server, and the
//! keys that matter most. Fields are dropped from the right when narrow.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::ui::app::{App, LinkState, Screen};

/// From this round trip on the RTT shows as slow (yellow)...
const SLOW_RTT_US: u64 = 100_000;
/// ...and from this one as bad (red).
const BAD_RTT_US: u64 = 250_000;

/// Draws the one-line status bar.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let g = &theme.glyphs;
    let (state, style) = match (&app.screen, &app.link) {
        (Screen::Lobby, _) => ("lobby".to_string(), theme.dim()),
        (Screen::Failed(_), _) => ("offline".to_string(), theme.bad()),
        (_, LinkState::Connected) => (String::new(), theme.good()),
        (_, LinkState::Connecting { attempt }) if *attempt > 1 => {
            (format!("connecting{} #{attempt}", g.ellipsis), theme.warn())
        }
        (_, LinkState::Connecting { .. }) => (format!("connecting{}", g.ellipsis), theme.warn()),
        (_, LinkState::Reconnecting { attempt, .. }) => (
            format!("reconnecting{} #{attempt}", g.ellipsis),
            theme.warn(),
        ),
    };
    let mut fields: Vec<Span> = vec![Span::styled(
        format!(
            " {} {}{}{state}",
            g.bullet,
            app.session.transport,
            if state.is_empty() { "" } else { " " }
        ),
        style,
    )];
    let rtt = match app.rtt_us {
        None => Span::raw("RTT -"),
        Some(us) => Span::styled(
            format!("RTT {} ms", rtt_ms(us)),
            match us {
                0..SLOW_RTT_US => Style::default(),
                SLOW_RTT_US..BAD_RTT_US => theme.warn(),
                _ => theme.bad(),
            },
        ),
    };
    if let Some(v) = &app.view {
        if app.spectating {
            // Whom we watch matters more than the figures: it goes first.
            let who = match app.camera {
                crate::ui::app::Camera::Free(_) => "free camera".to_string(),
                crate::ui::app::Camera::Follow => app.followed_snake().map_or_else(
                    || "watching".into(),
                    |s| format!("watching {}", app.name_of(s.id)),
                ),
            };
            fields.push(Span::styled(who, theme.accent()));
            fields.push(rtt);
            fields.push(Span::raw(format!("tick {}", v.tick())));
        } else {
            fields.push(rtt);
            fields.push(Span::raw(format!("tick {}", v.tick())));
            if let Some(s) = v.my_snake() {
                let boost = if s.boost { "  BOOST" } else { "" };
                fields.push(Span::styled(
                    format!("len {}{boost}", s.score.length),
                    theme.mine(s.id),
                ));
            }
        }
    } else {
        fields.push(rtt);
    }
    let server = app
        .session
        .server
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let embedded = if app.session.embedded {
        " (embedded)"
    } else {
        ""
    };
    fields.push(Span::styled(format!("{server}{embedded}"), theme.dim()));

    let hints = Span::styled("? help  q quit ", theme.dim());
    let width = area.width as usize;
    let budget = width.saturating_sub(hints.width() + 1);
    let mut spans: Vec<Span> = Vec::new();
    let mut used = 0;
    for (i, f) in fields.into_iter().enumerate() {
        let sep = if i == 0 { 0 } else { g.sep.chars().count() };
        if used + sep + f.width() > budget {
            break;
        }
        if i > 0 {
            spans.push(Span::styled(g.sep, theme.dim()));
        }
        used += sep + f.width();
        spans.push(f);
    }
    let pad = width.saturating_sub(used + hints.width());
    spans.push(Span::raw(" ".repeat(pad)));
    spans.push(hints);
    Line::from(spans).style(Style::default()).render(area, buf);
}

/// Milliseconds with one decimal below 10 ms.
pub fn rtt_ms(us: u64) -> String {
    if us < 10_000 {
        format!("{:.1}", us as f64 / 1000.0)
    } else {
        format!("{}", us / 1000)
    }
}
