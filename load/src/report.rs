//! The report of a run: one JSON document and a readable table.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use protocol::api::RoomInfo;
use serde::Serialize;

use crate::procstat::{Sample, cpu_percent};
use crate::scrape::ServerWindow;
use crate::stats::{KindStats, Percentiles};

/// Everything a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub label: String,
    pub server: String,
    /// Length of the measurement window, in seconds.
    pub window_s: f64,
    /// Time the ramp took to open every connection, in seconds.
    pub ramp_s: f64,
    /// Connections asked for.
    pub connections: usize,
    /// This process's open-file limit after raising it.
    pub fd_limit: u64,
    pub rooms: Vec<RoomRow>,
    pub kinds: Vec<KindReport>,
    /// The server process (with `--server-pid`).
    pub server_process: Option<ProcReport>,
    /// This load tool.
    pub load_process: Option<ProcReport>,
    /// From the server's `/metrics` over the window.
    pub server_metrics: Option<ServerWindow>,
}

/// A room at the end of the run.
#[derive(Clone, Debug, Serialize)]
pub struct RoomRow {
    pub id: String,
    pub tick_rate: u32,
    pub players: u32,
    pub spectators: u32,
}

impl From<RoomInfo> for RoomRow {
    fn from(r: RoomInfo) -> Self {
        RoomRow {
            id: r.id,
            tick_rate: r.tick_rate,
            players: r.players,
            spectators: r.spectators,
        }
    }
}

/// The figures of one kind of connection.
#[derive(Clone, Debug, Serialize)]
pub struct KindReport {
    pub kind: String,
    pub wanted: usize,
    pub opened: u64,
    pub failed: u64,
    pub closed_early: u64,
    pub frames: u64,
    pub missed: u64,
    pub resyncs: u64,
    /// Requests that failed or were refused.
    pub errors: u64,
    /// Receive time minus the frame's `server_time_us`, in ms.
    pub frame_age_ms: Percentiles,
    /// Input sent to the first frame acknowledging it, in ms.
    pub input_latency_ms: Percentiles,
    pub bytes_per_client_s: f64,
    pub requests_per_client_s: f64,
    pub frames_per_client_s: f64,
}

impl KindReport {
    /// The report of `stats` over a window of `window_s` seconds.
    pub fn from_stats(kind: String, wanted: usize, s: &KindStats, window_s: f64) -> Self {
        let opened = s.opened.load(Ordering::Relaxed);
        let per = |n: u64| {
            if opened == 0 || window_s <= 0.0 {
                0.0
            } else {
                n as f64 / opened as f64 / window_s
            }
        };
        let frames = s.frames.load(Ordering::Relaxed);
        KindReport {
            kind,
            wanted,
            opened,
            failed: s.failed.load(Ordering::Relaxed),
            closed_early: s.closed_early.load(Ordering::Relaxed),
            frames,
            missed: s.missed.load(Ordering::Relaxed),
            resyncs: s.resyncs.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            frame_age_ms: Percentiles::of(&s.frame_age.merged()),
            input_latency_ms: Percentiles::of(&s.input_latency.merged()),
            bytes_per_client_s: per(s.bytes.load(Ordering::Relaxed)),
            requests_per_client_s: per(s.requests.load(Ordering::Relaxed)),
            frames_per_client_s: per(frames),
        }
    }
}

/// CPU and memory of a process over the window.
#[derive(Clone, Debug, Serialize)]
pub struct ProcReport {
    /// Percent of one core (200 = both cores of a 2-core machine).
    pub cpu_percent: f64,
    /// RSS before any connection opened, in MiB (server only).
    pub rss_before_mib: Option<f64>,
    pub rss_start_mib: f64,
    pub rss_end_mib: f64,
    pub rss_max_mib: Option<f64>,
}

impl ProcReport {
    /// From samples at both ends of the window.
    pub fn new(a: &Sample, b: &Sample, before_kib: Option<u64>, max_kib: Option<u64>) -> Self {
        let mib = |k: u64| k as f64 / 1024.0;
        ProcReport {
            cpu_percent: cpu_percent(a, b),
            rss_before_mib: before_kib.map(mib),
            rss_start_mib: mib(a.rss_kib),
            rss_end_mib: mib(b.rss_kib),
            rss_max_mib: max_kib.map(mib),
        }
    }
}

fn fmt_p(p: &Percentiles) -> String {
    if p.count == 0 {
        "-".into()
    } else {
        format!("{:.1}/{:.1}/{:.1}/{:.1}", p.p50, p.p95, p.p99, p.max)
    }
}

impl Report {
    /// The readable table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "tickwire-load {}{}: {} connections, ramp {:.1} s, window {:.1} s, fd limit {}",
            self.server,
            if self.label.is_empty() {
                String::new()
            } else {
                format!(" [{}]", self.label)
            },
            self.connections,
            self.ramp_s,
            self.window_s,
            self.fd_limit
        );
        let _ = writeln!(
            t,
            "{:<24} {:>6} {:>6} {:>5} {:>5} {:>9} {:>7} {:>6} {:>5} {:>26} {:>22} {:>9} {:>7}",
            "kind",
            "wanted",
            "opened",
            "fail",
            "early",
            "frames",
            "missed",
            "resync",
            "err",
            "frame age ms p50/95/99/max",
            "input ms p50/95/99/max",
            "B/cl/s",
            "req/cl/s"
        );
        for k in &self.kinds {
            let _ = writeln!(
                t,
                "{:<24} {:>6} {:>6} {:>5} {:>5} {:>9} {:>7} {:>6} {:>5} {:>26} {:>22} {:>9.0} {:>7.2}",
                k.kind,
                k.wanted,
                k.opened,
                k.failed,
                k.closed_early,
                k.frames,
                k.missed,
                k.resyncs,
                k.errors,
                fmt_p(&k.frame_age_ms),
                fmt_p(&k.input_latency_ms),
                k.bytes_per_client_s,
                k.requests_per_client_s
            );
        }
        if let Some(m) = &self.server_metrics {
            let _ = writeln!(
                t,
                "server ticks {}: tick p50 {:.3} ms, p99 {:.3} ms, mean {:.3} ms; overruns {}, resyncs {}, frames dropped {}",
                m.ticks,
                m.tick_p50_ms,
                m.tick_p99_ms,
                m.tick_mean_ms,
                m.overruns,
                m.resyncs,
                m.frames_dropped
            );
        }
        for (name, p) in [
            ("server", &self.server_process),
            ("load tool", &self.load_process),
        ] {
            if let Some(p) = p {
                let _ = writeln!(
                    t,
                    "{name} process: CPU {:.0}% of one core, RSS {}{:.1} -> {:.1} MiB{}",
                    p.cpu_percent,
                    p.rss_before_mib
                        .map_or(String::new(), |b| format!("{b:.1} before connections, ")),
                    p.rss_start_mib,
                    p.rss_end_mib,
                    p.rss_max_mib
                        .map_or(String::new(), |m| format!(" (max {m:.1})"))
                );
            }
        }
        if let Some((sp, before)) = self
            .server_process
            .as_ref()
            .and_then(|p| p.rss_before_mib.map(|b| (p, b)))
        {
            let opened: u64 = self.kinds.iter().map(|k| k.opened).sum();
            if opened > 0 {
                let _ = writeln!(
                    t,
                    "server RSS per connection: {:.1} KiB ((start - before) / opened)",
                    (sp.rss_start_mib - before) * 1024.0 / opened as f64
                );
            }
        }
        t
    }
}
