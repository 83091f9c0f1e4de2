//! What the load tool reads from the server's `GET /metrics`: the tick
//! duration histogram (summed over rooms) and a few counters, so a run can
//! report the tick's p99 over exactly its measurement window.

use serde::Serialize;

/// The counters of one scrape.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    /// `(le, cumulative count)`, ascending, summed over rooms.
    pub tick_buckets: Vec<(f64, f64)>,
    pub tick_sum_s: f64,
    pub overruns: f64,
    pub resyncs: f64,
    pub dropped: f64,
}

fn value(line: &str) -> Option<f64> {
    line.rsplit_once(' ')?.1.parse().ok()
}

fn label<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let at = line.find(&key)? + key.len();
    let end = line[at..].find('"')?;
    Some(&line[at..at + end])
}

/// Parses the OpenMetrics text of `/metrics`.
pub fn parse(text: &str) -> Scrape {
    let mut s = Scrape::default();
    for line in text.lines() {
        if line.starts_with("tickwire_tick_duration_seconds_bucket{") {
            let (Some(le), Some(v)) = (label(line, "le"), value(line)) else {
                continue;
            };
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            match s.tick_buckets.iter_mut().find(|(b, _)| *b == le) {
                Some((_, n)) => *n += v,
                None => s.tick_buckets.push((le, v)),
            }
        } else if line.starts_with("tickwire_tick_duration_seconds_sum") {
            s.tick_sum_s += value(line).unwrap_or(0.0);
        } else if line.starts_with("tickwire_tick_overruns_total") {
            s.overruns += value(line).unwrap_or(0.0);
        } else if line.starts_with("tickwire_resyncs_total") {
            s.resyncs += value(line).unwrap_or(0.0);
        } else if line.starts_with("tickwire_frames_dropped_total") {
            s.dropped += value(line).unwrap_or(0.0);
        }
    }
    s.tick_buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    s
}

/// The server's figures over a window, from two scrapes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerWindow {
    /// Ticks run in the window (every room).
    pub ticks: u64,
    /// Tick duration percentiles, interpolated within histogram buckets as
    /// Prometheus' `histogram_quantile` does, in milliseconds.
    pub tick_p50_ms: f64,
    pub tick_p99_ms: f64,
    pub tick_mean_ms: f64,
    pub overruns: u64,
    pub resyncs: u64,
    pub frames_dropped: u64,
}

fn quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let Some(&(_, total)) = buckets.last() else {
        return 0.0;
    };
    if total <= 0.0 {
        return 0.0;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, n) in buckets {
        if n >= rank {
            if le.is_infinite() {
                return prev.0;
            }
            let span = n - prev.1;
            let frac = if span > 0.0 {
                (rank - prev.1) / span
            } else {
                1.0
            };
            return prev.0 + (le - prev.0) * frac;
        }
        prev = (le, n);
    }
    prev.0
}

impl ServerWindow {
    /// The window between scrapes `a` and `b`.
    pub fn between(a: &Scrape, b: &Scrape) -> Self {
        let delta: Vec<(f64, f64)> = b
            .tick_buckets
            .iter()
            .map(|&(le, n)| {
                let before = a
                    .tick_buckets
                    .iter()
                    .find(|(l, _)| *l == le)
                    .map_or(0.0, |x| x.1);
                (le, n - before)
            })
            .collect();
        let ticks = delta.last().map_or(0.0, |x| x.1);
        ServerWindow {
            ticks: ticks as u64,
            tick_p50_ms: quantile(0.5, &delta) * 1000.0,
            tick_p99_ms: quantile(0.99, &delta) * 1000.0,
            tick_mean_ms: if ticks > 0.0 {
                (b.tick_sum_s - a.tick_sum_s) / ticks * 1000.0
            } else {
                0.0
            },
            overruns: (b.overruns - a.overruns) as u64,
            resyncs: (b.resyncs - a.resyncs) as u64,
            frames_dropped: (b.dropped - a.dropped) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_rooms_and_interpolates_the_window() {
        let a = parse(
            "tickwire_tick_duration_seconds_bucket{le=\"0.001\",room=\"a\"} 0\n\
             tickwire_tick_duration_seconds_bucket{le=\"0.002\",room=\"a\"} 0\n\
             tickwire_tick_duration_seconds_bucket{le=\"+Inf\",room=\"a\"} 0\n",
        );
        let b = parse(
            "tickwire_tick_duration_seconds_bucket{le=\"0.001\",room=\"a\"} 50\n\
             tickwire_tick_duration_seconds_bucket{le=\"0.002\",room=\"a\"} 100\n\
             tickwire_tick_duration_seconds_bucket{le=\"+Inf\",room=\"a\"} 100\n\
             tickwire_tick_duration_seconds_bucket{le=\"0.001\",room=\"b\"} 100\n\
             tickwire_tick_duration_seconds_bucket{le=\"0.002\",room=\"b\"} 100\n\
             tickwire_tick_duration_seconds_bucket{le=\"+Inf\",room=\"b\"} 100\n\
             tickwire_tick_duration_seconds_sum{room=\"a\"} 0.2\n\
             tickwire_tick_overruns_total{room=\"a\"} 3\n",
        );
        let w = ServerWindow::between(&a, &b);
        assert_eq!(w.ticks, 200);
        assert!((w.tick_p50_ms - 2.0 / 3.0).abs() < 1e-9, "{w:?}");
        assert!((w.tick_p99_ms - 1.96).abs() < 1e-9, "{w:?}");
        assert!((w.tick_mean_ms - 1.0).abs() < 1e-9, "{w:?}");
        assert_eq!(w.overruns, 3);
    }
}
