//! The compare view: every transport on one room, side by side. A column
//! per transport with the mechanism in one line, then the figures of its
//! observer over the last few seconds (RTT, frame age p50/p99, input
//! latency, jitter, requests/s, bytes/s, resyncs, reconnects), then
//! sparklines of the last minute on one scale across columns, so the
//! difference shows at a glance. Rows are dropped by priority when the
//! terminal is short, and text is cut to the column when it is narrow.

use protocol::text::sanitize_line;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::figures::{self, Kind};
use super::net::sparkline;
use crate::bot::BotPhase;
use crate::client::TransportKind;
use crate::lag::{HISTORY_SECS, LagSnapshot, Second};
use crate::ui::app::{App, Column, Compare};
use crate::ui::theme::Theme;

/// How each transport carries a frame here, in one line (the compare
/// view prints it under the transport's name).
pub fn mechanism(t: TransportKind) -> String {
    match t {
        TransportKind::Ws => "one socket both ways; frames pushed each tick".into(),
        TransportKind::Sse => "one held GET; events pushed; no upstream".into(),
        TransportKind::LongPoll => "GET held until a tick; POST to send".into(),
        TransportKind::Poll { interval } => {
            format!("GET every {} ms; POST to send", interval.as_millis())
        }
        TransportKind::Auto => "WebSocket, else long-poll".into(),
    }
}

/// What a row shows in a column `width` cells wide.
type Cell = fn(&Column, &Theme, u16) -> Span<'static>;

/// Columns narrower than this get the short forms.
const NARROW: u16 = 16;

/// A row of the table: its label, what it needs, how important it is.
struct Row {
    label: &'static str,
    kind: RowKind,
    /// Lower goes first when rows must be dropped.
    priority: u8,
}

enum RowKind {
    /// The transport's name.
    Title,
    /// The mechanism, line `n` (0 to 2) of it wrapped to the column.
    Mechanism(usize),
    /// A figure per column.
    Figure(Cell),
    /// A sparkline per column, on one scale (logarithmic for times, so
    /// a millisecond still shows next to a second), at least `h` rows.
    Spark(fn(&Second) -> Option<u64>, u16, Scale),
    /// A note under the table.
    Note(&'static str),
}

/// How a sparkline row maps values to bar heights.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scale {
    Linear,
    /// For microseconds: 0.1 ms to a minute on one logarithmic scale.
    Log,
}

impl Scale {
    fn map(self, v: u64) -> u64 {
        match self {
            Scale::Linear => v,
            // log2(1 + v / 100 us), in hundredths.
            Scale::Log => ((1.0 + v as f64 / 100.0).log2() * 100.0) as u64,
        }
    }
}

fn lag(c: &Column) -> Option<&LagSnapshot> {
    c.lag.as_deref()
}

fn dash(theme: &Theme) -> &'static str {
    if theme.glyphs.unicode_borders {
        "—"
    } else {
        "-"
    }
}

fn timed(us: Option<u64>, kind: Kind, theme: &Theme, mark: &str) -> Span<'static> {
    match us {
        None => Span::styled(dash(theme), theme.dim()),
        Some(us) => Span::styled(
            format!("{} ms{mark}", figures::ms(us)),
            kind.style(us, theme),
        ),
    }
}

fn state(c: &Column, theme: &Theme, width: u16) -> Span<'static> {
    let e = theme.glyphs.ellipsis;
    let narrow = width < NARROW;
    match &c.phase {
        BotPhase::Connecting(_) if narrow => Span::styled(format!("conn{e}"), theme.warn()),
        BotPhase::Connecting(1) => Span::styled(format!("connecting{e}"), theme.warn()),
        BotPhase::Connecting(n) => Span::styled(format!("connecting{e} #{n}"), theme.warn()),
        BotPhase::Playing if narrow => Span::styled("playing", theme.good()),
        BotPhase::Playing if c.length > 0 => {
            Span::styled(format!("playing, len {}", c.length), theme.good())
        }
        BotPhase::Playing => Span::styled("playing (dead)", theme.good()),
        BotPhase::Watching => Span::styled("watching", theme.good()),
        BotPhase::Reconnecting(_) if narrow => Span::styled(format!("reconn{e}"), theme.warn()),
        BotPhase::Reconnecting(_) => Span::styled(format!("reconnecting{e}"), theme.warn()),
        BotPhase::Closed(_) if narrow => Span::styled("closed", theme.bad()),
        BotPhase::Closed(why) => {
            Span::styled(format!("closed: {}", sanitize_line(why, 60)), theme.bad())
        }
    }
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            label: "",
            kind: RowKind::Title,
            priority: 0,
        },
        Row {
            label: "",
            kind: RowKind::Mechanism(0),
            priority: 2,
        },
        Row {
            label: "",
            kind: RowKind::Mechanism(1),
            priority: 4,
        },
        Row {
            label: "",
            kind: RowKind::Mechanism(2),
            priority: 7,
        },
        Row {
            label: "state",
            kind: RowKind::Figure(state),
            priority: 5,
        },
        Row {
            label: "RTT p50",
            kind: RowKind::Figure(|c, t, _| {
                let mark = if c.transport == TransportKind::Sse {
                    "*"
                } else {
                    ""
                };
                timed(lag(c).and_then(|l| l.window.rtt.p50()), Kind::Rtt, t, mark)
            }),
            priority: 1,
        },
        Row {
            label: "age p50",
            kind: RowKind::Figure(|c, t, _| {
                let us = lag(c).and_then(|l| l.window.frame_age.p50());
                timed(us, Kind::FrameAge, t, "")
            }),
            priority: 1,
        },
        Row {
            label: "age p99",
            kind: RowKind::Figure(|c, t, _| {
                let us = lag(c).and_then(|l| l.window.frame_age.p99());
                timed(us, Kind::FrameAge, t, "")
            }),
            priority: 1,
        },
        Row {
            label: "input p50",
            kind: RowKind::Figure(|c, t, w| {
                if !c.transport.can_play() {
                    let why = if w < NARROW { "*" } else { " no upstream*" };
                    return Span::styled(format!("{}{why}", dash(t)), t.dim());
                }
                let us = lag(c).and_then(|l| l.window.input_latency.p50());
                timed(us, Kind::Input, t, "")
            }),
            priority: 1,
        },
        Row {
            label: "jitter",
            kind: RowKind::Figure(|c, t, _| {
                let us = lag(c).and_then(|l| l.window.jitter.mean());
                timed(us, Kind::Jitter, t, "")
            }),
            priority: 1,
        },
        Row {
            label: "req/s",
            kind: RowKind::Figure(|c, t, _| match lag(c) {
                Some(l) => Span::raw(format!("{:.1}", l.rates.requests_per_s)),
                None => Span::styled(dash(t), t.dim()),
            }),
            priority: 1,
        },
        Row {
            label: "down",
            kind: RowKind::Figure(|c, t, _| match lag(c) {
                Some(l) => Span::raw(figures::rate(l.rates.bytes_down_per_s)),
                None => Span::styled(dash(t), t.dim()),
            }),
            priority: 1,
        },
        Row {
            label: "up",
            kind: RowKind::Figure(|c, t, _| match lag(c) {
                Some(l) => Span::raw(figures::rate(l.rates.bytes_up_per_s)),
                None => Span::styled(dash(t), t.dim()),
            }),
            priority: 6,
        },
        Row {
            label: "resyncs",
            kind: RowKind::Figure(|c, t, _| match lag(c) {
                Some(l) => Span::raw(l.counts.resyncs.to_string()),
                None => Span::styled(dash(t), t.dim()),
            }),
            priority: 6,
        },
        Row {
            label: "reconnects",
            kind: RowKind::Figure(|c, t, _| match lag(c) {
                Some(l) => Span::raw(l.counts.reconnects.to_string()),
                None => Span::styled(dash(t), t.dim()),
            }),
            priority: 6,
        },
        Row {
            label: "age 60 s",
            kind: RowKind::Spark(|s| s.frame_age_us, 2, Scale::Log),
            priority: 3,
        },
        Row {
            label: "RTT 60 s",
            kind: RowKind::Spark(|s| s.rtt_us, 2, Scale::Log),
            priority: 7,
        },
        Row {
            label: "B/s 60 s",
            kind: RowKind::Spark(|s| Some(s.bytes_down), 2, Scale::Linear),
            priority: 8,
        },
        Row {
            label: "",
            kind: RowKind::Note(
                "* SSE has no upstream: no input to time; its RTT and clock offset come from GET /api/time probes.",
            ),
            priority: 3,
        },
        Row {
            label: "",
            kind: RowKind::Note(
                "Figures: the last 10 s. Sparklines: a bar per second, one scale per row (log for times). q/Esc: back.",
            ),
            priority: 8,
        },
    ]
}

/// Rows of `text` wrapped to `width` (at most `max`), cut at the last.
fn wrap(text: &str, width: usize, max: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let len = cur.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    if lines.len() > max {
        let rest = lines.split_off(max - 1).join(" ");
        lines.push(rest);
    }
    lines
        .into_iter()
        .map(|l| l.chars().take(width).collect())
        .collect()
}

fn row_height(r: &Row, inner_w: u16) -> u16 {
    match r.kind {
        RowKind::Spark(_, h, _) => h,
        RowKind::Note(text) => wrap(text, inner_w as usize, 2).len() as u16,
        _ => 1,
    }
}

/// Draws the compare view in `area`.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let Some(cmp) = app.compare.as_ref() else {
        return;
    };
    let mid = theme.glyphs.mid;
    let rate = match cmp.tick_rate() {
        0 => String::new(),
        r => format!("{mid}{r} Hz"),
    };
    let conditioned = app
        .session
        .conditioner
        .map_or_else(String::new, |c| format!("{mid}conditioner {c}"));
    let title = format!(
        " Compare transports{mid}room {}{rate}{conditioned} ",
        sanitize_line(&cmp.room, 32)
    );
    let block = theme.block().title(Span::styled(title, theme.accent()));
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.width < 20 || inner.height < 3 {
        return;
    }
    let label_w: u16 = if inner.width >= 100 { 12 } else { 10 };
    let mut constraints = vec![Constraint::Length(label_w)];
    constraints.extend(cmp.columns.iter().map(|_| Constraint::Fill(1)));
    let cols = Layout::horizontal(constraints)
        .spacing(1)
        .split(Rect { height: 1, ..inner });

    // Keep the most important rows that fit, in display order; a
    // mechanism line no column needs is no row.
    let label_cols: Vec<u16> = cols[1..].iter().map(|r| r.width).collect();
    let mech_lines = cmp
        .columns
        .iter()
        .zip(&label_cols)
        .map(|(c, &w)| wrap(&mechanism(c.transport), w as usize, 3).len())
        .max()
        .unwrap_or(0);
    let all: Vec<Row> = rows()
        .into_iter()
        .filter(|r| !matches!(r.kind, RowKind::Mechanism(n) if n >= mech_lines))
        .collect();
    let mut keep = vec![false; all.len()];
    let mut budget = inner.height;
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by_key(|&i| all[i].priority);
    for i in order {
        let h = row_height(&all[i], inner.width);
        if h <= budget {
            keep[i] = true;
            budget -= h;
        }
    }
    // Room left over makes the sparklines taller (up to 4 rows each).
    let sparks = all
        .iter()
        .zip(&keep)
        .filter(|(r, k)| **k && matches!(r.kind, RowKind::Spark(..)))
        .count() as u16;
    let extra = budget.checked_div(sparks).unwrap_or(0).min(2);
    let mut y = inner.y;
    for (row, _) in all.iter().zip(&keep).filter(|(_, k)| **k) {
        let mut h = row_height(row, inner.width);
        if matches!(row.kind, RowKind::Spark(..)) {
            h += extra;
        }
        let at = |r: Rect| Rect { y, height: h, ..r };
        if !row.label.is_empty() {
            Paragraph::new(Span::styled(row.label, theme.dim())).render(at(cols[0]), buf);
        }
        draw_row(cmp, row, &cols, theme, inner, y, h, buf);
        y += h;
    }
}

#[allow(clippy::too_many_arguments)]
fn draw_row(
    cmp: &Compare,
    row: &Row,
    cols: &[Rect],
    theme: &Theme,
    inner: Rect,
    y: u16,
    h: u16,
    buf: &mut Buffer,
) {
    let at = |r: Rect| Rect { y, height: h, ..r };
    match row.kind {
        RowKind::Note(text) => {
            let lines: Vec<Line> = wrap(text, inner.width as usize, 2)
                .into_iter()
                .map(|l| Line::styled(l, theme.dim()))
                .collect();
            Paragraph::new(lines).render(at(inner), buf);
        }
        RowKind::Spark(value, _, scale) => {
            let data: Vec<Vec<Option<u64>>> = cmp
                .columns
                .iter()
                .map(|c| {
                    c.lag
                        .as_ref()
                        .map(|l| {
                            l.history
                                .iter()
                                .map(|s| value(s).map(|v| scale.map(v)))
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect();
            // One scale across columns: the difference is the point.
            let max = data
                .iter()
                .enumerate()
                .flat_map(|(i, d)| {
                    let w = cols.get(i + 1).map_or(0, |r| r.width as usize);
                    d.iter().rev().take(w.min(HISTORY_SECS)).flatten()
                })
                .copied()
                .max();
            for (i, d) in data.iter().enumerate() {
                if let Some(r) = cols.get(i + 1) {
                    sparkline(d, max, theme, at(*r), buf);
                }
            }
        }
        RowKind::Title => {
            for (c, r) in cmp.columns.iter().zip(&cols[1..]) {
                let name: String = c.transport.title().chars().take(r.width as usize).collect();
                Paragraph::new(Span::styled(name, theme.accent())).render(at(*r), buf);
            }
        }
        RowKind::Mechanism(n) => {
            for (c, r) in cmp.columns.iter().zip(&cols[1..]) {
                let lines = wrap(&mechanism(c.transport), r.width as usize, 3);
                if let Some(line) = lines.get(n) {
                    Paragraph::new(Span::styled(line.clone(), Style::default()))
                        .render(at(*r), buf);
                }
            }
        }
        RowKind::Figure(cell) => {
            for (c, r) in cmp.columns.iter().zip(&cols[1..]) {
                let mut span = cell(c, theme, r.width);
                let text: String = span.content.chars().take(r.width as usize).collect();
                span.content = text.into();
                Paragraph::new(span).render(at(*r), buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_wrap_to_two_lines_and_cut() {
        assert_eq!(wrap("a bb ccc", 4, 2), ["a bb", "ccc"]);
        assert_eq!(wrap("aa bb cc dd", 5, 2), ["aa bb", "cc dd"]);
        assert_eq!(wrap("aa bb cc dd ee", 5, 2), ["aa bb", "cc dd"]);
        assert_eq!(wrap("short", 20, 2), ["short"]);
        for t in TransportKind::ALL {
            assert!(mechanism(t).len() <= 60, "{t:?}");
        }
    }
}
