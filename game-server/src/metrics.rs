//! The server's Prometheus metrics, served as OpenMetrics text at
//! `GET /metrics`.
//!
//! Recording is cheap on the hot path: a transport resolves its labelled
//! counters and histograms once per connection ([`Metrics::conn`]) and then
//! only does relaxed atomic adds; the room resolves its own once at start
//! ([`Metrics::room`]). Histograms here are [`AtomicHistogram`]s (fixed
//! buckets, one atomic add per bucket hit) rather than prometheus-client's
//! lock-per-observation histogram, because the fan-out records one
//! observation per frame per subscriber.
//!
//! Adding a metric: give [`Metrics`] a field and register it in
//! [`Metrics::new`], or register it from elsewhere at start with
//! [`Metrics::register`] (a family of counters is a
//! `Family<Labels, Counter>` with a `#[derive(EncodeLabelSet)]` label struct).
//!
//! Over 400 lines on purpose: the registry, its histogram type and the
//! scrape-time collector are one exposition format, tested together below.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
    MetricEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Metric, Registry, Unit};

/// How a connection reaches the server.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket (players and spectators).
    Ws,
    /// `text/event-stream` spectators.
    Sse,
    /// `curl -N` ANSI watchers.
    Watch,
    /// A long-poll or short-poll session (connections are sessions).
    Polled,
    /// Poll responses that were held (`wait > 0`).
    Longpoll,
    /// Poll responses that answered at once (`wait = 0`).
    Poll,
}

impl Transport {
    /// The label value: `ws`, `sse`, `watch`, `polled`, `longpoll`, `poll`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Ws => "ws",
            Transport::Sse => "sse",
            Transport::Watch => "watch",
            Transport::Polled => "polled",
            Transport::Longpoll => "longpoll",
            Transport::Poll => "poll",
        }
    }
}

impl EncodeLabelValue for Transport {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// Labels of a per-transport metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabel {
    pub transport: Transport,
}

/// Labels of a per-room metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoomLabel {
    pub room: String,
}

/// Labels of the connection gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnLabel {
    pub transport: Transport,
    pub room: String,
}

/// A histogram with fixed bucket bounds and lock-free observation: one
/// relaxed add to the bucket, one to the count, one to the sum (kept in
/// nanoseconds or plain units, as integers, so no float CAS loop).
#[derive(Clone, Debug)]
pub struct AtomicHistogram(Arc<HistInner>);

#[derive(Debug)]
struct HistInner {
    /// Upper bounds, ascending, in the observed unit (seconds for times).
    bounds: &'static [f64],
    /// Upper bounds scaled to integers (the unit / `scale`).
    int_bounds: Vec<u64>,
    /// One per bound, plus `+Inf`; not cumulative.
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum: AtomicU64,
    /// Integer units per observed unit (1e9 for seconds kept as ns).
    scale: f64,
}

impl AtomicHistogram {
    /// A histogram over `bounds` (ascending), observed in integer steps
    /// of `1 / scale` units.
    pub fn new(bounds: &'static [f64], scale: f64) -> Self {
        AtomicHistogram(Arc::new(HistInner {
            bounds,
            int_bounds: bounds.iter().map(|b| (b * scale).round() as u64).collect(),
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            scale,
        }))
    }

    /// A histogram of durations, in seconds with nanosecond resolution.
    pub fn seconds(bounds: &'static [f64]) -> Self {
        Self::new(bounds, 1e9)
    }

    /// Observes `v` integer steps (nanoseconds for [`Self::seconds`]).
    pub fn observe_int(&self, v: u64) {
        let h = &self.0;
        let i = h.int_bounds.partition_point(|&b| b < v);
        h.buckets[i].fetch_add(1, Ordering::Relaxed);
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum.fetch_add(v, Ordering::Relaxed);
    }

    /// Observes a duration (for histograms made with [`Self::seconds`]).
    pub fn observe_duration(&self, d: Duration) {
        self.observe_int(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let h = &self.0;
        let mut count = 0;
        // Per-bucket counts: the text encoder makes them cumulative.
        let mut buckets = Vec::with_capacity(h.buckets.len());
        for (i, b) in h.buckets.iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            count += n;
            buckets.push((h.bounds.get(i).copied().unwrap_or(f64::MAX), n));
        }
        let sum = h.sum.load(Ordering::Relaxed) as f64 / h.scale;
        // The count is the sum of the buckets read, so the exposition stays
        // consistent even while observations land between the loads above.
        encoder
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Tick durations: fine below a millisecond, where a healthy room lives.
const TICK_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_2, 0.000_5, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05, 0.1,
];
/// Send latency (tick produced -> bytes handed to the socket).
const SEND_BUCKETS: &[f64] = &[
    0.000_1, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];
/// Queue depth (frames waiting in a subscriber's outbox when one is taken).
const DEPTH_BUCKETS: &[f64] = &[0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

type HistFamily<L> = Family<L, AtomicHistogram, fn() -> AtomicHistogram>;

/// Every metric of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Open connections (WebSocket, SSE, watch; polled sessions) by room.
    pub connections: Family<ConnLabel, Gauge>,
    /// Time one tick took: drain, step, diff, encode, fan-out.
    pub tick_duration: HistFamily<RoomLabel>,
    /// Ticks that started late because an earlier one overran.
    pub overruns: Family<RoomLabel, Counter>,
    /// Frames (server messages) handed to sockets.
    pub frames_sent: Family<TransportLabel, Counter>,
    /// Payload bytes handed to sockets (before WebSocket/HTTP framing).
    pub bytes_sent: Family<TransportLabel, Counter>,
    /// Subscribers whose queue overflowed and who got a keyframe instead.
    pub resyncs: Family<RoomLabel, Counter>,
    /// Frames dropped by those overflows.
    pub dropped: Family<RoomLabel, Counter>,
    /// Players admitted to a room (connected or within their resume grace).
    pub sessions: Family<RoomLabel, Gauge>,
    /// Tick produced -> its bytes handed to the socket.
    pub send_latency: HistFamily<TransportLabel>,
    /// Frames waiting in a subscriber's queue when its transport takes one.
    pub queue_depth: HistFamily<TransportLabel>,
}

fn tick_hist() -> AtomicHistogram {
    AtomicHistogram::seconds(TICK_BUCKETS)
}
fn send_hist() -> AtomicHistogram {
    AtomicHistogram::seconds(SEND_BUCKETS)
}
fn depth_hist() -> AtomicHistogram {
    AtomicHistogram::new(DEPTH_BUCKETS, 1.0)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry (prefix `tickwire`) holding every server metric.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("tickwire");
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            connections: Family::default(),
            tick_duration: Family::new_with_constructor(tick_hist),
            overruns: Family::default(),
            frames_sent: Family::default(),
            bytes_sent: Family::default(),
            resyncs: Family::default(),
            dropped: Family::default(),
            sessions: Family::default(),
            send_latency: Family::new_with_constructor(send_hist),
            queue_depth: Family::new_with_constructor(depth_hist),
        };
        r.register(
            "connections",
            "Open connections by transport and room (polled = long-poll/poll sessions)",
            m.connections.clone(),
        );
        r.register_with_unit(
            "tick_duration",
            "Time one room tick took: inputs, sim step, diff, encoding and fan-out",
            Unit::Seconds,
            m.tick_duration.clone(),
        );
        r.register(
            "tick_overruns",
            "Ticks that started late because an earlier one overran",
            m.overruns.clone(),
        );
        r.register(
            "frames_sent",
            "Server messages handed to sockets",
            m.frames_sent.clone(),
        );
        r.register_with_unit(
            "sent",
            "Payload bytes handed to sockets, before WebSocket or HTTP framing",
            Unit::Bytes,
            m.bytes_sent.clone(),
        );
        r.register(
            "resyncs",
            "Subscribers whose queue overflowed; they get a keyframe next",
            m.resyncs.clone(),
        );
        r.register(
            "frames_dropped",
            "Queued frames dropped by overflows",
            m.dropped.clone(),
        );
        r.register(
            "sessions",
            "Players admitted to a room, connected or within their resume grace",
            m.sessions.clone(),
        );
        r.register_with_unit(
            "send_latency",
            "Tick produced to its bytes handed to the socket, by transport",
            Unit::Seconds,
            m.send_latency.clone(),
        );
        r.register(
            "queue_depth",
            "Frames waiting in a subscriber's queue when its transport takes one",
            m.queue_depth.clone(),
        );
        *m.registry.lock().unwrap_or_else(|e| e.into_inner()) = r;
        m
    }

    /// Registers one more metric (under the `tickwire_` prefix), e.g. a
    /// counter family kept by another module.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(name, help, metric);
    }

    /// Registers a collector, read on every scrape (under the `tickwire_`
    /// prefix).
    pub fn register_collector(&self, collector: impl Collector) {
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register_collector(Box::new(collector));
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing into a String never fails.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }

    /// The handles a room records into, resolved once.
    pub fn room(&self, room: &str) -> RoomMetrics {
        let l = RoomLabel { room: room.into() };
        RoomMetrics {
            tick_duration: self.tick_duration.get_or_create_owned(&l),
            overruns: self.overruns.get_or_create_owned(&l),
            resyncs: self.resyncs.get_or_create_owned(&l),
            dropped: self.dropped.get_or_create_owned(&l),
            sessions: self.sessions.get_or_create_owned(&l),
        }
    }

    /// The handles one connection records into, resolved once; the
    /// connection counts as open until the returned value is dropped.
    pub fn conn(&self, transport: Transport, room: &str) -> ConnMetrics {
        let open = self.connections.get_or_create_owned(&ConnLabel {
            transport,
            room: room.into(),
        });
        open.inc();
        ConnMetrics {
            open,
            sent: self.sender(transport),
        }
    }

    /// The send counters of a transport, resolved once.
    pub fn sender(&self, transport: Transport) -> SendMetrics {
        let l = TransportLabel { transport };
        SendMetrics {
            frames: self.frames_sent.get_or_create_owned(&l),
            bytes: self.bytes_sent.get_or_create_owned(&l),
            latency: self.send_latency.get_or_create_owned(&l),
            depth: self.queue_depth.get_or_create_owned(&l),
        }
    }
}

/// A room's metric handles.
#[derive(Clone, Debug)]
pub struct RoomMetrics {
    pub tick_duration: AtomicHistogram,
    pub overruns: Counter,
    pub resyncs: Counter,
    pub dropped: Counter,
    pub sessions: Gauge,
}

/// What a transport records per frame it sends.
#[derive(Clone, Debug)]
pub struct SendMetrics {
    pub frames: Counter,
    pub bytes: Counter,
    pub latency: AtomicHistogram,
    pub depth: AtomicHistogram,
}

impl SendMetrics {
    /// Records `frames` messages in `bytes` bytes handed to the socket,
    /// `since` the oldest one's tick was produced.
    pub fn sent(&self, frames: u64, bytes: usize, since: tokio::time::Instant) {
        self.frames.inc_by(frames);
        self.bytes.inc_by(bytes as u64);
        self.latency.observe_duration(since.elapsed());
    }
}

/// One open connection's metric handles; dropping it closes it in the gauge.
#[derive(Debug)]
pub struct ConnMetrics {
    open: Gauge,
    /// Its transport's send counters.
    pub sent: SendMetrics,
}

impl Drop for ConnMetrics {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// The accept layer's and the limits' figures, read on each scrape from
/// the atomics and registries that already keep them (so the hot paths
/// record nothing twice).
#[derive(Debug)]
pub struct ServerCollector {
    /// How often each limit bit.
    pub counters: Arc<crate::limits::Counters>,
    /// The gauges of the layers above (connections, polled sessions).
    pub gauges: Box<dyn ServerGauges>,
}

/// Gauges that layers above this one keep (the accept layer's connection
/// tracker, the polled sessions), read at each scrape. They implement it,
/// so `metrics` imports none of them.
pub trait ServerGauges: std::fmt::Debug + Send + Sync + 'static {
    /// Open TCP connections.
    fn connections(&self) -> usize;
    /// The server-wide connection cap.
    fn max_connections(&self) -> usize;
    /// Long-poll and short-poll sessions held.
    fn polled_sessions(&self) -> usize;
    /// Polls being held or answered now.
    fn polls_in_flight(&self) -> usize;
}

/// Writes one counter family: `name_total{label="value"} n` per entry.
pub(crate) fn counter_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for &(value, n) in values {
        let labels = [(label, value)];
        ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes one unlabelled metric.
pub(crate) fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let m = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(m)
}

impl Collector for ServerCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = self.counters.snapshot();
        let gauge = |n: usize| ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX));
        single(
            &mut e,
            "tcp_connections",
            "Open TCP connections held by the accept layer (any route).",
            gauge(self.gauges.connections()),
        )?;
        single(
            &mut e,
            "tcp_connections_max",
            "The server-wide connection cap (option and open-file limit).",
            gauge(self.gauges.max_connections()),
        )?;
        single(
            &mut e,
            "tcp_accepted",
            "TCP connections accepted and served.",
            ConstCounter::new(c.accepted),
        )?;
        counter_family(
            &mut e,
            "tcp_refused",
            "TCP connections refused: server_full (503), per_ip (429), unanswered (closed at once).",
            "reason",
            &[
                ("server_full", c.refused_server_full),
                ("per_ip", c.refused_per_ip),
                ("unanswered", c.refused_unanswered),
            ],
        )?;
        counter_family(
            &mut e,
            "timeouts",
            "Connections or requests ended by a timeout.",
            "kind",
            &[
                ("request_head", c.header_timeouts),
                ("request_body", c.body_timeouts),
                ("write_stall", c.write_stalls),
                ("ws_hello", c.ws_hello_timeouts),
                ("ws_idle", c.ws_idle_timeouts),
            ],
        )?;
        counter_family(
            &mut e,
            "rejected",
            "Input refused: body_too_large (413), ws_oversize (1009), ws_bad_frame (1002/1003/1007).",
            "reason",
            &[
                ("body_too_large", c.bodies_too_large),
                ("ws_oversize", c.ws_oversize),
                ("ws_bad_frame", c.ws_bad_frames),
            ],
        )?;
        counter_family(
            &mut e,
            "rate_limited",
            "Client messages dropped by a rate limit.",
            "limit",
            &[("input", c.inputs_dropped), ("chat", c.chat_dropped)],
        )?;
        single(
            &mut e,
            "input_floods",
            "Sessions closed for flooding (WebSocket 1008, long-poll 429).",
            ConstCounter::new(c.input_floods),
        )?;
        single(
            &mut e,
            "polled_sessions",
            "Long-poll and short-poll sessions the server holds.",
            gauge(self.gauges.polled_sessions()),
        )?;
        single(
            &mut e,
            "polls_in_flight",
            "Poll requests being held open right now.",
            gauge(self.gauges.polls_in_flight()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_family_and_counts_observations() {
        let m = Metrics::new();
        let room = m.room("lobby");
        room.tick_duration
            .observe_duration(Duration::from_micros(300));
        room.tick_duration
            .observe_duration(Duration::from_millis(7));
        room.overruns.inc();
        let conn = m.conn(Transport::Sse, "lobby");
        conn.sent.sent(
            3,
            1200,
            tokio::time::Instant::now() - Duration::from_millis(2),
        );
        conn.sent.depth.observe_int(5);
        let text = m.encode();
        for want in [
            "tickwire_tick_duration_seconds_bucket{le=\"0.0005\",room=\"lobby\"} 1",
            "tickwire_tick_duration_seconds_bucket{le=\"0.01\",room=\"lobby\"} 2",
            "tickwire_tick_duration_seconds_count{room=\"lobby\"} 2",
            "tickwire_tick_overruns_total{room=\"lobby\"} 1",
            "tickwire_connections{transport=\"sse\",room=\"lobby\"} 1",
            "tickwire_frames_sent_total{transport=\"sse\"} 3",
            "tickwire_sent_bytes_total{transport=\"sse\"} 1200",
            "tickwire_queue_depth_bucket{le=\"8.0\",transport=\"sse\"} 1",
            "# EOF",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        drop(conn);
        assert!(
            m.encode()
                .contains("tickwire_connections{transport=\"sse\",room=\"lobby\"} 0")
        );
    }

    #[test]
    fn buckets_are_cumulative_and_the_sum_is_in_seconds() {
        let h = AtomicHistogram::seconds(&[0.001, 0.01]);
        for us in [500, 5_000, 50_000] {
            h.observe_duration(Duration::from_micros(us));
        }
        let m = Metrics::new();
        m.register("probe", "a probe", h.clone());
        let text = m.encode();
        assert!(
            text.contains("tickwire_probe_bucket{le=\"0.001\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tickwire_probe_bucket{le=\"0.01\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("tickwire_probe_bucket{le=\"+Inf\"} 3"),
            "{text}"
        );
        assert!(text.contains("tickwire_probe_sum 0.0555"), "{text}");
    }
}
