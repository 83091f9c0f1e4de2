//! The net panel (`n`): the last minute of this client's lag, one
//! sparkline per figure (a bar per second, newest on the right), with the
//! current medians beside them.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, Widget};

use super::figures::{self, Kind};
use crate::lag::{HISTORY_SECS, LagSnapshot, Second};
use crate::ui::app::App;
use crate::ui::theme::Theme;

/// Rows the panel wants: borders, six figures, a footer.
pub const HEIGHT: u16 = 9;
/// Width of the label column.
const LABEL: u16 = 8;
/// Width of the value column.
const VALUE: u16 = 19;

/// One sparkline row: a label, one value per second, the figure now.
pub struct Row<'a> {
    /// Left of the sparkline.
    pub label: &'a str,
    /// Oldest first; `None` where that second had no sample.
    pub data: Vec<Option<u64>>,
    /// Right of it.
    pub value: Span<'static>,
}

/// The rows of a snapshot (shared with the compare view's sparklines).
pub fn rows(lag: &LagSnapshot, theme: &Theme, playing: bool) -> Vec<Row<'static>> {
    let h = &lag.history;
    let series = |f: fn(&Second) -> Option<u64>| h.iter().map(f).collect::<Vec<_>>();
    let w = &lag.window;
    let timed = |p50: Option<u64>, kind: Kind, tail: String| match p50 {
        None => Span::raw("-"),
        Some(us) => Span::styled(
            format!("{} ms{tail}", figures::ms(us)),
            kind.style(us, theme),
        ),
    };
    let age_tail = w
        .frame_age
        .p99()
        .map_or_else(String::new, |p| format!(" p99 {}", figures::ms(p)));
    let input = if playing {
        timed(w.input_latency.p50(), Kind::Input, String::new())
    } else {
        Span::styled("- (no upstream)", theme.dim())
    };
    vec![
        Row {
            label: "RTT",
            data: series(|s| s.rtt_us),
            value: timed(w.rtt.p50(), Kind::Rtt, String::new()),
        },
        Row {
            label: "age",
            data: series(|s| s.frame_age_us),
            value: timed(w.frame_age.p50(), Kind::FrameAge, age_tail),
        },
        Row {
            label: "input",
            data: series(|s| s.input_us),
            value: input,
        },
        Row {
            label: "jitter",
            data: series(|s| s.jitter_us),
            value: timed(w.jitter.mean(), Kind::Jitter, " mean".into()),
        },
        Row {
            label: "down",
            data: series(|s| Some(s.bytes_down)),
            value: Span::raw(figures::rate(lag.rates.bytes_down_per_s)),
        },
        Row {
            label: "req/s",
            data: series(|s| Some(s.requests)),
            value: Span::raw(format!("{:.1}/s", lag.rates.requests_per_s)),
        },
    ]
}

/// A sparkline of the newest `area.width` values.
pub fn sparkline(
    data: &[Option<u64>],
    max: Option<u64>,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
) {
    let skip = data.len().saturating_sub(area.width as usize);
    let mut s = Sparkline::default()
        .data(data[skip..].iter().copied())
        .bar_set(theme.bars())
        .style(theme.good());
    if let Some(m) = max {
        s = s.max(m.max(1));
    }
    s.render(area, buf);
}

/// Draws the panel in `area` (as many rows as fit).
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let mid = theme.glyphs.mid;
    let block = theme.block().title(Span::styled(
        format!(
            " Net{mid}{}{mid}last {HISTORY_SECS} s ",
            app.session.transport
        ),
        theme.accent(),
    ));
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(lag) = app.lag.as_deref() else {
        Paragraph::new(Line::styled(
            format!("measuring{}", theme.glyphs.ellipsis),
            theme.dim(),
        ))
        .render(inner, buf);
        return;
    };
    let rows = rows(lag, theme, !app.spectating);
    let footer = footer(lag, theme);
    let mut y = inner.y;
    let last = inner.y + inner.height;
    for row in rows {
        // The footer keeps the last line when there is room for it.
        if y >= last || (y + 1 == last && inner.height > 1) {
            break;
        }
        let [label, spark, value] = Layout::horizontal([
            Constraint::Length(LABEL),
            Constraint::Min(1),
            Constraint::Length(VALUE),
        ])
        .areas(Rect {
            y,
            height: 1,
            ..inner
        });
        Paragraph::new(Span::styled(row.label, theme.dim())).render(label, buf);
        sparkline(&row.data, None, theme, spark, buf);
        Paragraph::new(Line::from(row.value).right_aligned()).render(value, buf);
        y += 1;
    }
    if y < last {
        Paragraph::new(footer).render(
            Rect {
                y: last - 1,
                height: 1,
                ..inner
            },
            buf,
        );
    }
}

fn footer(lag: &LagSnapshot, theme: &Theme) -> Line<'static> {
    let mid = theme.glyphs.mid;
    let offset = lag.offset_us.map_or_else(
        || "offset -".to_string(),
        |o| format!("offset {:+.1} ms", o as f64 / 1000.0),
    );
    let c = &lag.counts;
    Line::styled(
        format!(
            "{offset}{mid}{} frames{mid}{} resyncs{mid}{} reconnects{mid}{} down",
            c.frames,
            c.resyncs,
            c.reconnects,
            figures::bytes(lag.traffic.bytes_down)
        ),
        Style::default(),
    )
}
