//! How lag figures read on screen: units, and the thresholds at which a
//! figure turns yellow (slow) and red (bad). One place, so the status bar,
//! the net panel and the compare view agree.

use ratatui::style::Style;

use crate::ui::theme::Theme;

/// A timed figure and its thresholds, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Round trip: slow from 100 ms, bad from 250 ms.
    Rtt,
    /// Frame age: slow from 100 ms, bad from 250 ms (a world that old
    /// plays visibly behind).
    FrameAge,
    /// Key press to the acknowledging frame: slow from 150 ms, bad from
    /// 300 ms (where a turn starts to feel late).
    Input,
    /// Arrival spread: slow from 20 ms, bad from 50 ms (a whole tick at
    /// the default 20 Hz).
    Jitter,
}

impl Kind {
    /// `(slow, bad)` thresholds in microseconds.
    pub fn thresholds(self) -> (u64, u64) {
        match self {
            Kind::Rtt | Kind::FrameAge => (100_000, 250_000),
            Kind::Input => (150_000, 300_000),
            Kind::Jitter => (20_000, 50_000),
        }
    }

    /// The style of `us` (plain when fine).
    pub fn style(self, us: u64, theme: &Theme) -> Style {
        let (slow, bad) = self.thresholds();
        if us >= bad {
            theme.bad()
        } else if us >= slow {
            theme.warn()
        } else {
            Style::default()
        }
    }
}

/// Milliseconds: one decimal below 10 ms, whole ones above.
pub fn ms(us: u64) -> String {
    if us < 10_000 {
        format!("{:.1}", us as f64 / 1000.0)
    } else {
        format!("{}", us / 1000)
    }
}

/// Bytes per second, short: `812 B/s`, `2.1 kB/s`, `1.3 MB/s`.
pub fn rate(bytes_per_s: f64) -> String {
    if bytes_per_s < 999.5 {
        format!("{bytes_per_s:.0} B/s")
    } else if bytes_per_s < 1_000_000.0 {
        format!("{:.1} kB/s", bytes_per_s / 1000.0)
    } else {
        format!("{:.1} MB/s", bytes_per_s / 1e6)
    }
}

/// Bytes, short: `812 B`, `2.1 kB`, `1.3 MB`.
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    if n < 999.5 {
        format!("{n:.0} B")
    } else if n < 1e6 {
        format!("{:.1} kB", n / 1000.0)
    } else {
        format!("{:.1} MB", n / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::theme::ColorMode;

    #[test]
    fn units_read_short() {
        assert_eq!(ms(420), "0.4");
        assert_eq!(ms(12_345), "12");
        assert_eq!(rate(812.4), "812 B/s");
        assert_eq!(rate(2_140.0), "2.1 kB/s");
        assert_eq!(rate(1_300_000.0), "1.3 MB/s");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(52_000), "52.0 kB");
    }

    #[test]
    fn thresholds_color_figures() {
        let t = Theme::new(ColorMode::Ansi16, false);
        assert_eq!(Kind::Rtt.style(99_999, &t), Style::default());
        assert_eq!(Kind::Rtt.style(100_000, &t), t.warn());
        assert_eq!(Kind::FrameAge.style(300_000, &t), t.bad());
        assert_eq!(Kind::Input.style(200_000, &t), t.warn());
        assert_eq!(Kind::Jitter.style(60_000, &t), t.bad());
        let mono = Theme::new(ColorMode::None, false);
        assert_eq!(Kind::Rtt.style(1_000_000, &mono).fg, None, "NO_COLOR");
    }
}
