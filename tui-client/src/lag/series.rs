//! One measured figure (RTT, frame age, ...): its samples in a sliding
//! window of HDR histograms and over the whole run, and the percentiles
//! read from them.

use hdrhistogram::Histogram;
use serde::{Serialize, Serializer};

/// Largest value a histogram tells apart: a minute, in microseconds.
/// Anything slower is recorded as a minute (it is broken either way).
pub const MAX_US: u64 = 60_000_000;
/// Significant decimal digits kept: values are exact to 1 %.
const SIGFIG: u8 = 2;
/// Sub-histograms the sliding window rotates through.
pub const SLOTS: usize = 4;

fn histogram() -> Histogram<u32> {
    // Invariant: constant bounds that hdrhistogram accepts (1 <= low,
    // high >= 2 * low, sigfig <= 5); `bounds_are_valid` tests them.
    Histogram::new_with_bounds(1, MAX_US, SIGFIG).expect("valid histogram bounds")
}

/// The distribution of one figure, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 95th percentile.
    pub p95_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest sample.
    pub max_us: u64,
    /// Mean.
    pub mean_us: u64,
}

impl Percentiles {
    /// Reads a histogram.
    pub fn of(h: &Histogram<u32>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p95_us: h.value_at_quantile(0.95),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
            mean_us: h.mean().round() as u64,
        }
    }

    /// The median, when there is any sample.
    pub fn p50(&self) -> Option<u64> {
        (self.count > 0).then_some(self.p50_us)
    }

    /// The 99th percentile, when there is any sample.
    pub fn p99(&self) -> Option<u64> {
        (self.count > 0).then_some(self.p99_us)
    }

    /// The mean, when there is any sample.
    pub fn mean(&self) -> Option<u64> {
        (self.count > 0).then_some(self.mean_us)
    }
}

/// Milliseconds with microsecond precision, for reports.
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// In reports: `{"count", "p50_ms", "p95_ms", "p99_ms", "max_ms",
/// "mean_ms"}`, the figures `null` without samples.
impl Serialize for Percentiles {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Ms {
            count: u64,
            p50_ms: Option<f64>,
            p95_ms: Option<f64>,
            p99_ms: Option<f64>,
            max_ms: Option<f64>,
            mean_ms: Option<f64>,
        }
        let some = |v: u64| (self.count > 0).then(|| ms(v));
        Ms {
            count: self.count,
            p50_ms: some(self.p50_us),
            p95_ms: some(self.p95_us),
            p99_ms: some(self.p99_us),
            max_ms: some(self.max_us),
            mean_ms: some(self.mean_us),
        }
        .serialize(s)
    }
}

/// The samples of one figure: a window of [`SLOTS`] sub-histograms that
/// the meter rotates (the oldest is emptied and becomes the current one),
/// and one histogram of the whole run. Histograms are allocated at the
/// first sample, so a figure that never happens (a spectator's input
/// latency) costs nothing.
#[derive(Clone, Debug, Default)]
pub struct Series {
    slots: [Option<Histogram<u32>>; SLOTS],
    current: usize,
    run: Option<Histogram<u32>>,
    /// Only the run is kept (a report needs no live window).
    run_only: bool,
}

impl Series {
    /// A series that keeps only the whole run: a quarter of the memory.
    pub fn run_only() -> Series {
        Series {
            run_only: true,
            ..Series::default()
        }
    }

    /// Records one sample (clamped to `0..=MAX_US`).
    pub fn record(&mut self, us: u64) {
        let us = us.min(MAX_US);
        if !self.run_only {
            self.slots[self.current]
                .get_or_insert_with(histogram)
                .saturating_record(us);
        }
        self.run.get_or_insert_with(histogram).saturating_record(us);
    }

    /// Moves the window on by one slot: the oldest slot's samples go.
    pub fn rotate(&mut self) {
        self.current = (self.current + 1) % SLOTS;
        if let Some(h) = self.slots[self.current].as_mut() {
            h.reset();
        }
    }

    /// Percentiles over the window.
    pub fn window(&self) -> Percentiles {
        let mut filled = self.slots.iter().flatten().filter(|h| !h.is_empty());
        let Some(first) = filled.next() else {
            return Percentiles::default();
        };
        let mut merged = first.clone();
        for h in filled {
            // Invariant: every slot has the same bounds, so adding fits.
            let _ = merged.add(h);
        }
        Percentiles::of(&merged)
    }

    /// Percentiles over the whole run.
    pub fn run(&self) -> Percentiles {
        self.run.as_ref().map(Percentiles::of).unwrap_or_default()
    }

    /// The whole run's histogram (`None` before the first sample).
    pub fn run_histogram(&self) -> Option<&Histogram<u32>> {
        self.run.as_ref()
    }
}

/// Adds `other` into `into` (allocating it when empty): the run of several
/// clients as one distribution.
pub fn merge(into: &mut Option<Histogram<u32>>, other: Option<&Histogram<u32>>) {
    let Some(other) = other else { return };
    match into {
        // Invariant: every histogram here has the same bounds.
        Some(h) => {
            let _ = h.add(other);
        }
        None => *into = Some(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_valid() {
        let mut h = histogram();
        h.saturating_record(MAX_US);
        h.saturating_record(0);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn percentiles_are_exact_to_one_percent() {
        let mut s = Series::default();
        for us in 1..=1000u64 {
            s.record(us * 100); // 0.1 ms .. 100 ms
        }
        let p = s.window();
        assert_eq!(p.count, 1000);
        let near = |got: u64, want: u64| got.abs_diff(want) * 100 <= want;
        assert!(near(p.p50_us, 50_000), "{p:?}");
        assert!(near(p.p95_us, 95_000), "{p:?}");
        assert!(near(p.p99_us, 99_000), "{p:?}");
        assert!(near(p.max_us, 100_000), "{p:?}");
        assert!(near(p.mean_us, 50_050), "{p:?}");
        assert_eq!(s.run(), p);
    }

    #[test]
    fn the_window_forgets_after_a_full_rotation_and_the_run_never_does() {
        let mut s = Series::default();
        s.record(5_000);
        for _ in 0..SLOTS - 1 {
            s.rotate();
            assert_eq!(s.window().count, 1, "still inside the window");
        }
        s.rotate();
        assert_eq!(s.window(), Percentiles::default());
        assert_eq!(s.run().count, 1);
        s.record(7_000);
        assert_eq!(s.window().count, 1);
        assert_eq!(s.run().count, 2);
    }

    #[test]
    fn a_run_only_series_has_no_window() {
        let mut s = Series::run_only();
        s.record(1_000);
        assert_eq!(s.window().count, 0);
        assert_eq!(s.run().count, 1);
    }

    #[test]
    fn slow_samples_are_clamped_not_lost() {
        let mut s = Series::default();
        s.record(u64::MAX);
        assert_eq!(s.run().count, 1);
        assert!(s.run().max_us >= MAX_US);
    }

    #[test]
    fn reports_say_milliseconds_and_null_without_samples() {
        let v = serde_json::to_value(Percentiles::default()).unwrap();
        assert_eq!(v["count"], 0);
        assert!(v["p50_ms"].is_null());
        let p = Percentiles {
            count: 2,
            p50_us: 1_500,
            p95_us: 2_000,
            p99_us: 2_000,
            max_us: 2_000,
            mean_us: 1_750,
        };
        let v = serde_json::to_value(p).unwrap();
        assert_eq!(v["p50_ms"], 1.5);
        assert_eq!(v["mean_ms"], 1.75);
    }

    #[test]
    fn merged_runs_are_one_distribution() {
        let (mut a, mut b) = (Series::default(), Series::default());
        a.record(1_000);
        b.record(3_000);
        b.record(3_000);
        let mut all = None;
        merge(&mut all, a.run_histogram());
        merge(&mut all, b.run_histogram());
        merge(&mut all, None);
        let p = Percentiles::of(all.as_ref().unwrap());
        assert_eq!(p.count, 3);
        assert!(p.p50_us.abs_diff(3_000) <= 30, "{p:?}");
    }
}
