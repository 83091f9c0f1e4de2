//! The lag meter: what this client's transport costs, measured where every
//! transport passes (the client task), so the TUI, the compare view and
//! the headless bots show the same figures.
//!
//! Sans-IO, quinn-style: [`LagMeter`] holds no clock and no socket. It is
//! fed events with the client time (unix microseconds) at which they
//! happened (`handle_*`) and queried with [`LagMeter::snapshot`]; the
//! tests drive it with a synthetic timeline. What it measures:
//!
//! - **RTT**: a `ping {t}` carried by the transport itself comes back as
//!   `pong {t, server_time_us}` (long-poll: the ping goes by POST, the pong
//!   comes by poll; SSE has no upstream, so its link answers pings with a
//!   `GET /api/time` probe).
//! - **Clock offset** (client minus server), NTP-style: the pong with the
//!   shortest round trip among the recent ones ([`ClockOffset`]).
//! - **Frame age**, for every frame: receive time - (server send time +
//!   offset). It is how old the world on screen is.
//! - **Input latency**: from the key press to the first frame whose `ack`
//!   covers that input.
//! - **Jitter**: how far each frame's arrival is from where the tick
//!   interval says it should be: `|Δarrival - Δtick × interval|` between
//!   consecutive frames.
//! - Bytes and requests (counted by the link), keyframe resyncs (a
//!   keyframe other than the one after a welcome) and reconnects.
//!
//! Percentiles come from HDR histograms over a sliding window of about
//! [`WINDOW`] (a few sub-histograms rotated in turn) and over the whole run.

mod history;
mod offset;
mod series;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::Duration;

use hdrhistogram::Histogram;
use protocol::ServerMsg;
use serde::Serialize;

pub use history::{HISTORY_SECS, Second};
pub use offset::{ClockOffset, OFFSET_SAMPLES, OffsetSample};
pub use series::{MAX_US, Percentiles};

use history::{Figure, History};
use series::{SLOTS, Series};

/// The sliding window live figures are read over: samples older than
/// this are gone, samples younger than three quarters of it are in.
pub const WINDOW: Duration = Duration::from_secs(10);
const WINDOW_US: u64 = WINDOW.as_micros() as u64;
const SLOT_US: u64 = WINDOW_US / SLOTS as u64;
/// Inputs waiting for their ack, at most (older ones are forgotten).
pub const PENDING_INPUTS: usize = 256;

/// What a client's links read and wrote, counted by the transports
/// themselves: totals since the client started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrafficTotals {
    /// Bytes received: WebSocket frames and the upgrade as read from the
    /// socket; HTTP status lines, headers, bodies (and chunk framing).
    pub bytes_down: u64,
    /// Bytes sent, counted the same way.
    pub bytes_up: u64,
    /// HTTP requests made (a WebSocket counts its upgrade once).
    pub requests: u64,
    /// Streams the link resumed on its own (SSE `Last-Event-ID`), which
    /// the client task never sees as a reconnect.
    pub resumes: u64,
}

impl TrafficTotals {
    fn since(&self, earlier: &TrafficTotals) -> TrafficTotals {
        TrafficTotals {
            bytes_down: self.bytes_down.saturating_sub(earlier.bytes_down),
            bytes_up: self.bytes_up.saturating_sub(earlier.bytes_up),
            requests: self.requests.saturating_sub(earlier.requests),
            resumes: self.resumes.saturating_sub(earlier.resumes),
        }
    }
}

/// The four timed figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Round trip of ping/pong (or of `GET /api/time` over SSE).
    pub rtt: Percentiles,
    /// Receive time - (server send time + offset), every frame.
    pub frame_age: Percentiles,
    /// Key press to the first frame whose `ack` covers it.
    pub input_latency: Percentiles,
    /// `|Δarrival - Δtick × interval|` between consecutive frames.
    pub jitter: Percentiles,
}

/// Things counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Frames (ticks and keyframes).
    pub frames: u64,
    /// Keyframes (snapshots).
    pub keyframes: u64,
    /// Keyframes other than the first after a welcome: the client fell
    /// behind, lost track of the world, or a resume could not be served.
    pub resyncs: u64,
    /// Welcomes after the first, plus streams the link resumed on its own.
    pub reconnects: u64,
    /// Pongs (RTT samples).
    pub pongs: u64,
    /// Inputs sent.
    pub inputs: u64,
    /// Frames that arrived before any clock offset was known (no age).
    pub unmeasured_frames: u64,
}

/// Traffic per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Rates {
    /// Bytes received per second.
    pub bytes_down_per_s: f64,
    /// Bytes sent per second.
    pub bytes_up_per_s: f64,
    /// Requests per second.
    pub requests_per_s: f64,
}

impl Rates {
    fn of(t: &TrafficTotals, secs: f64) -> Rates {
        if secs <= 0.0 {
            return Rates::default();
        }
        Rates {
            bytes_down_per_s: t.bytes_down as f64 / secs,
            bytes_up_per_s: t.bytes_up as f64 / secs,
            requests_per_s: t.requests as f64 / secs,
        }
    }
}

/// The whole run's histograms of one client, to merge with other clients'
/// (percentiles of a merged distribution, not means of percentiles).
#[derive(Clone, Debug, Default)]
pub struct RunHistograms {
    rtt: Option<Histogram<u32>>,
    frame_age: Option<Histogram<u32>>,
    input_latency: Option<Histogram<u32>>,
    jitter: Option<Histogram<u32>>,
}

impl RunHistograms {
    /// Adds another client's run.
    pub fn merge(&mut self, other: &RunHistograms) {
        series::merge(&mut self.rtt, other.rtt.as_ref());
        series::merge(&mut self.frame_age, other.frame_age.as_ref());
        series::merge(&mut self.input_latency, other.input_latency.as_ref());
        series::merge(&mut self.jitter, other.jitter.as_ref());
    }

    /// The percentiles of everything merged.
    pub fn figures(&self) -> Figures {
        let p = |h: &Option<Histogram<u32>>| h.as_ref().map(Percentiles::of).unwrap_or_default();
        Figures {
            rtt: p(&self.rtt),
            frame_age: p(&self.frame_age),
            input_latency: p(&self.input_latency),
            jitter: p(&self.jitter),
        }
    }
}

/// Everything the meter knows at one instant.
#[derive(Clone, Debug, Default)]
pub struct LagSnapshot {
    /// Tick rate of the room (from the welcome; 0 before it).
    pub tick_rate: u32,
    /// Over the sliding window ([`WINDOW`]).
    pub window: Figures,
    /// Over the whole run.
    pub run: Figures,
    /// The latest round trip.
    pub last_rtt_us: Option<u64>,
    /// Client clock minus server clock, as best known.
    pub offset_us: Option<i64>,
    /// Counters.
    pub counts: Counts,
    /// Traffic since the start.
    pub traffic: TrafficTotals,
    /// Traffic per second over the window.
    pub rates: Rates,
    /// Traffic per second over the run.
    pub run_rates: Rates,
    /// Seconds since the first connection.
    pub run_secs: f64,
    /// The last minute, oldest first.
    pub history: Vec<Second>,
    /// The run's histograms, for merging with other clients.
    pub histograms: RunHistograms,
}

impl LagSnapshot {
    /// The figures a report prints for this client.
    pub fn summary(&self) -> LagSummary {
        LagSummary {
            rtt: self.run.rtt,
            frame_age: self.run.frame_age,
            input_latency: self.run.input_latency,
            jitter: self.run.jitter,
            offset_ms: self.offset_us.map(|us| us as f64 / 1000.0),
            counts: self.counts,
            traffic: self.traffic,
            rates: self.run_rates,
            seconds: self.run_secs,
        }
    }
}

/// What a report says about one client's lag (whole run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LagSummary {
    /// Round trip.
    pub rtt: Percentiles,
    /// Frame age.
    pub frame_age: Percentiles,
    /// Input latency.
    pub input_latency: Percentiles,
    /// Jitter of frame arrivals.
    pub jitter: Percentiles,
    /// Client clock minus server clock at the end, in milliseconds.
    pub offset_ms: Option<f64>,
    /// Counters.
    #[serde(flatten)]
    pub counts: Counts,
    /// Traffic.
    #[serde(flatten)]
    pub traffic: TrafficTotals,
    /// Traffic per second.
    #[serde(flatten)]
    pub rates: Rates,
    /// Seconds measured.
    pub seconds: f64,
}

/// The sans-IO lag meter of one client (it outlives reconnects).
#[derive(Clone, Debug, Default)]
pub struct LagMeter {
    tick_rate: u32,
    offset: ClockOffset,
    last_rtt_us: Option<u64>,
    rtt: Series,
    frame_age: Series,
    input: Series,
    jitter: Series,
    /// Inputs sent and not yet acknowledged: `(seq, pressed at)`.
    pending: VecDeque<(u64, u64)>,
    /// The last frame on this link: `(tick, received at)`.
    last_frame: Option<(u64, u64)>,
    /// The next keyframe is the welcome's, not a resync.
    awaiting_keyframe: bool,
    counts: Counts,
    /// Welcomes on distinct links.
    welcomes: u64,
    /// The current link was welcomed already (a second welcome on it is a
    /// restarted stream: SSE's resync).
    link_welcomed: bool,
    traffic: TrafficTotals,
    /// `(at, totals)`, oldest first, spanning about the window.
    traffic_samples: VecDeque<(u64, TrafficTotals)>,
    history: History,
    /// Start of the current window slot.
    slot_start: Option<u64>,
    /// First connection.
    started: Option<u64>,
}

impl LagMeter {
    /// A meter with nothing measured.
    pub fn new() -> LagMeter {
        LagMeter::default()
    }

    /// A meter for reports only: whole-run figures, no sliding window (its
    /// `window` figures stay empty), a quarter of the memory (about 40 KiB
    /// once every figure has samples), for runs of many bots.
    pub fn run_only() -> LagMeter {
        LagMeter {
            rtt: Series::run_only(),
            frame_age: Series::run_only(),
            input: Series::run_only(),
            jitter: Series::run_only(),
            ..LagMeter::default()
        }
    }

    /// Moves the window and the history on to `now`.
    fn advance(&mut self, now: u64) {
        self.history.advance(now);
        let Some(start) = self.slot_start else {
            self.slot_start = Some(now);
            return;
        };
        let slots = now.saturating_sub(start) / SLOT_US;
        if slots == 0 {
            return;
        }
        for _ in 0..slots.min(SLOTS as u64) {
            for s in [
                &mut self.rtt,
                &mut self.frame_age,
                &mut self.input,
                &mut self.jitter,
            ] {
                s.rotate();
            }
        }
        self.slot_start = Some(start + slots * SLOT_US);
    }

    fn record(&mut self, figure: Figure, us: u64) {
        let series = match figure {
            Figure::Rtt => &mut self.rtt,
            Figure::FrameAge => &mut self.frame_age,
            Figure::Input => &mut self.input,
            Figure::Jitter => &mut self.jitter,
        };
        series.record(us);
        self.history.record(figure, us);
    }

    /// A link opened at `now`.
    pub fn handle_connected(&mut self, now: u64) {
        self.advance(now);
        self.started.get_or_insert(now);
        self.last_frame = None;
        self.link_welcomed = false;
    }

    /// The link ended at `now`: inputs sent on it may never be applied, so
    /// they are not waited for.
    pub fn handle_disconnected(&mut self, now: u64) {
        self.advance(now);
        self.pending.clear();
        self.last_frame = None;
    }

    /// An input with `seq` went out for a key pressed at `pressed`.
    pub fn handle_input_sent(&mut self, seq: u64, pressed: u64) {
        self.advance(pressed);
        if self.pending.len() == PENDING_INPUTS {
            self.pending.pop_front();
        }
        self.pending.push_back((seq, pressed));
        self.counts.inputs += 1;
    }

    /// A server message arrived at `now`.
    pub fn handle_server(&mut self, msg: &ServerMsg, now: u64) {
        self.advance(now);
        match msg {
            ServerMsg::Welcome(w) => {
                if std::mem::replace(&mut self.link_welcomed, true) {
                    // The stream restarted on the same link: a resync.
                    self.counts.resyncs += 1;
                } else {
                    self.welcomes += 1;
                }
                self.tick_rate = w.tick_rate;
                self.awaiting_keyframe = true;
                self.last_frame = None;
            }
            ServerMsg::Pong(p) => {
                let Some(sample) = OffsetSample::new(p.t, p.server_time_us, now) else {
                    return;
                };
                self.counts.pongs += 1;
                self.last_rtt_us = Some(sample.rtt_us);
                self.offset.push(sample);
                self.record(Figure::Rtt, sample.rtt_us);
            }
            ServerMsg::Snapshot(s) => self.frame(s.tick, s.server_time_us, s.ack, true, now),
            ServerMsg::Tick(t) => self.frame(t.tick, t.server_time_us, t.ack, false, now),
            ServerMsg::Chat(_) | ServerMsg::Error(_) => {}
        }
    }

    fn frame(&mut self, tick: u64, server_time_us: u64, ack: u64, keyframe: bool, now: u64) {
        self.counts.frames += 1;
        self.history.frame();
        if keyframe {
            self.counts.keyframes += 1;
            if !std::mem::take(&mut self.awaiting_keyframe) {
                self.counts.resyncs += 1;
            }
        }
        match self.offset.offset_us() {
            Some(offset) => {
                let age = now as i128 - (server_time_us as i128 + offset as i128);
                // A negative age is the offset's error, not time travel.
                self.record(Figure::FrameAge, age.clamp(0, MAX_US as i128) as u64);
            }
            None => self.counts.unmeasured_frames += 1,
        }
        if self.tick_rate > 0 {
            match self.last_frame {
                Some((last_tick, last_at)) if tick > last_tick => {
                    let expected = (tick - last_tick).saturating_mul(self.interval_us());
                    let actual = now.saturating_sub(last_at);
                    self.record(Figure::Jitter, actual.abs_diff(expected));
                    self.last_frame = Some((tick, now));
                }
                // A frame we already had (re-sent after a resume): no arrival to time.
                Some(_) => {}
                None => self.last_frame = Some((tick, now)),
            }
        }
        while let Some(&(seq, pressed)) = self.pending.front() {
            if seq > ack {
                break;
            }
            self.pending.pop_front();
            self.record(Figure::Input, now.saturating_sub(pressed));
        }
    }

    fn interval_us(&self) -> u64 {
        1_000_000 / u64::from(self.tick_rate.max(1))
    }

    /// The link counters as of `now` (totals since the client started).
    pub fn handle_traffic(&mut self, totals: TrafficTotals, now: u64) {
        self.advance(now);
        let delta = totals.since(&self.traffic);
        self.history
            .traffic(delta.bytes_down, delta.bytes_up, delta.requests);
        self.traffic = totals;
        self.traffic_samples.push_back((now, totals));
        // Keep one sample at or before the window's start as the baseline.
        let start = now.saturating_sub(WINDOW_US);
        while self.traffic_samples.len() > 2 && self.traffic_samples[1].0 <= start {
            self.traffic_samples.pop_front();
        }
    }

    /// Everything measured, as of `now`.
    pub fn snapshot(&mut self, now: u64) -> LagSnapshot {
        self.advance(now);
        let rates = match (self.traffic_samples.front(), self.traffic_samples.back()) {
            (Some((t0, a)), Some((t1, b))) if t1 > t0 => {
                Rates::of(&b.since(a), (t1 - t0) as f64 / 1e6)
            }
            _ => Rates::default(),
        };
        let run_secs = self
            .started
            .map_or(0.0, |s| now.saturating_sub(s) as f64 / 1e6);
        let mut counts = self.counts;
        counts.reconnects = self.welcomes.saturating_sub(1) + self.traffic.resumes;
        LagSnapshot {
            tick_rate: self.tick_rate,
            window: Figures {
                rtt: self.rtt.window(),
                frame_age: self.frame_age.window(),
                input_latency: self.input.window(),
                jitter: self.jitter.window(),
            },
            run: Figures {
                rtt: self.rtt.run(),
                frame_age: self.frame_age.run(),
                input_latency: self.input.run(),
                jitter: self.jitter.run(),
            },
            last_rtt_us: self.last_rtt_us,
            offset_us: self.offset.offset_us(),
            counts,
            traffic: self.traffic,
            rates,
            run_rates: Rates::of(&self.traffic, run_secs),
            run_secs,
            history: self.history.seconds(),
            histograms: RunHistograms {
                rtt: self.rtt.run_histogram().cloned(),
                frame_age: self.frame_age.run_histogram().cloned(),
                input_latency: self.input.run_histogram().cloned(),
                jitter: self.jitter.run_histogram().cloned(),
            },
        }
    }
}

/// Several clients' runs added up (a transport's line in a report).
#[derive(Clone, Debug, Default)]
pub struct LagTotals {
    clients: u32,
    histograms: RunHistograms,
    counts: Counts,
    traffic: TrafficTotals,
    seconds: f64,
}

impl LagTotals {
    /// Adds one client's final snapshot.
    pub fn add(&mut self, s: &LagSnapshot) {
        self.clients += 1;
        self.histograms.merge(&s.histograms);
        let (a, b) = (&mut self.counts, &s.counts);
        a.frames += b.frames;
        a.keyframes += b.keyframes;
        a.resyncs += b.resyncs;
        a.reconnects += b.reconnects;
        a.pongs += b.pongs;
        a.inputs += b.inputs;
        a.unmeasured_frames += b.unmeasured_frames;
        let (a, b) = (&mut self.traffic, &s.traffic);
        a.bytes_down += b.bytes_down;
        a.bytes_up += b.bytes_up;
        a.requests += b.requests;
        a.resumes += b.resumes;
        self.seconds += s.run_secs;
    }

    /// Clients added.
    pub fn clients(&self) -> u32 {
        self.clients
    }

    /// The merged figures.
    pub fn figures(&self) -> Figures {
        self.histograms.figures()
    }

    /// Summed counters.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Summed traffic.
    pub fn traffic(&self) -> TrafficTotals {
        self.traffic
    }

    /// Traffic per second of one client (totals over client-seconds).
    pub fn rates_per_client(&self) -> Rates {
        Rates::of(&self.traffic, self.seconds)
    }
}
