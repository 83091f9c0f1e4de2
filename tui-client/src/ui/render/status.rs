//! The status bar: connection state, transport, and what it costs (RTT,
//! frame age, input latency: medians of the last few seconds, colored by
//! [`figures::Kind`]'s thresholds), tick, server, and the keys that matter
//! most. Fields are dropped from the right when narrow.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::figures::{self, Kind};
use crate::ui::app::{App, LinkState, Screen};
use crate::ui::theme::Theme;

/// `label value ms`, colored by its thresholds; `label -` when unknown.
fn figure(label: &str, us: Option<u64>, kind: Kind, theme: &Theme) -> Span<'static> {
    match us {
        None => Span::raw(format!("{label} -")),
        Some(us) => Span::styled(
            format!("{label} {} ms", figures::ms(us)),
            kind.style(us, theme),
        ),
    }
}

/// Draws the one-line status bar.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let g = &theme.glyphs;
    let (state, style) = match (&app.screen, &app.link) {
        (Screen::Lobby, _) => ("lobby".to_string(), theme.dim()),
        (Screen::Compare, _) => ("compared".to_string(), theme.accent()),
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
    let conditioned = app
        .session
        .conditioner
        .map_or_else(String::new, |c| format!(" ({c})"));
    let mut fields: Vec<Span> = vec![Span::styled(
        format!(
            " {} {}{conditioned}{}{state}",
            g.bullet,
            if app.screen == Screen::Compare {
                "4 transports"
            } else {
                app.session.transport
            },
            if state.is_empty() { "" } else { " " }
        ),
        style,
    )];
    let lag = app.lag.as_deref();
    let window = lag.map(|l| l.window);
    let rtt_us = window
        .and_then(|w| w.rtt.p50())
        .or_else(|| lag.and_then(|l| l.last_rtt_us));
    let rtt = figure("RTT", rtt_us, Kind::Rtt, theme);
    let age = figure(
        "age",
        window.and_then(|w| w.frame_age.p50()),
        Kind::FrameAge,
        theme,
    );
    let input = figure(
        "input",
        window.and_then(|w| w.input_latency.p50()),
        Kind::Input,
        theme,
    );
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
            fields.push(age);
            fields.push(Span::raw(format!("tick {}", v.tick())));
        } else {
            fields.push(rtt);
            fields.push(age);
            fields.push(input);
            fields.push(Span::raw(format!("tick {}", v.tick())));
            if let Some(s) = v.my_snake() {
                let boost = if s.boost { "  BOOST" } else { "" };
                fields.push(Span::styled(
                    format!("len {}{boost}", s.score.length),
                    theme.mine(s.id),
                ));
            }
        }
    } else if app.screen != Screen::Compare {
        fields.push(rtt);
    }
    let bare = |s: &str| {
        s.trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string()
    };
    // A cluster's redirect: the node asked, and the one that plays the room.
    let server = match &app.moved {
        Some(to) if bare(to) != bare(&app.session.server) => {
            format!("{} -> origin {}", bare(&app.session.server), bare(to))
        }
        _ => bare(&app.session.server),
    };
    let embedded = if app.session.embedded {
        " (embedded)"
    } else {
        ""
    };
    fields.push(Span::styled(format!("{server}{embedded}"), theme.dim()));

    let hints = Span::styled(
        if app.screen == Screen::Game {
            "n net  ? help  q quit "
        } else {
            "? help  q quit "
        },
        theme.dim(),
    );
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
