//! Every figure against a synthetic timeline: times are plain numbers (the
//! client's unix microseconds), so nothing sleeps and every value is known.

use protocol::state::Delta;
use protocol::{Map, Mode, Pong, ServerMsg, Snapshot, TickFrame, Welcome, WorldState};

use super::*;

const MS: u64 = 1_000;
const S: u64 = 1_000_000;
/// The client's clock is this far ahead of the server's.
const AHEAD: u64 = 5 * S;

fn welcome(tick_rate: u32, resumed: bool) -> ServerMsg {
    ServerMsg::Welcome(Box::new(Welcome {
        player_id: Some(1),
        session: "s".into(),
        token: "t".into(),
        room: "lobby".into(),
        mode: Mode::Snake,
        tick_rate,
        speed: 10,
        map: Map::parse("#####\n#0.1#\n#####\n", "t").unwrap(),
        resumed,
        name: "alice".into(),
        server_time_us: 0,
    }))
}

fn tick(tick: u64, server_time_us: u64, ack: u64) -> ServerMsg {
    ServerMsg::Tick(Box::new(TickFrame {
        ack,
        tick,
        checksum: 0,
        server_time_us,
        delta: Delta::default(),
        events: vec![],
    }))
}

fn snapshot(tick: u64, server_time_us: u64, ack: u64) -> ServerMsg {
    ServerMsg::Snapshot(Box::new(Snapshot {
        ack,
        tick,
        checksum: 0,
        server_time_us,
        state: WorldState::new(Mode::Snake),
    }))
}

/// A ping sent at client time `t0`, `up` to reach the server and `down` back.
fn pong(m: &mut LagMeter, t0: u64, up: u64, down: u64) {
    let ts = t0 + up - AHEAD;
    let msg = ServerMsg::Pong(Pong {
        t: t0,
        server_time_us: ts,
    });
    m.handle_server(&msg, t0 + up + down);
}

/// A meter welcomed at 20 Hz at client time 10 s, its offset known from
/// one symmetric 10 ms + 10 ms ping.
fn welcomed() -> LagMeter {
    let mut m = LagMeter::new();
    m.handle_connected(10 * S);
    m.handle_server(&welcome(20, false), 10 * S);
    pong(&mut m, 10 * S, 10 * MS, 10 * MS);
    m
}

fn near(got: u64, want: u64) -> bool {
    // HDR histograms are exact to 1 %.
    got.abs_diff(want) * 100 <= want.max(100)
}

#[test]
fn rtt_is_the_round_trip_of_the_transports_own_ping() {
    let mut m = welcomed();
    pong(&mut m, 11 * S, 15 * MS, 25 * MS);
    pong(&mut m, 12 * S, 30 * MS, 30 * MS);
    let s = m.snapshot(12 * S + 100 * MS);
    assert_eq!(s.last_rtt_us, Some(60 * MS));
    assert_eq!(s.counts.pongs, 3);
    assert_eq!(s.window.rtt.count, 3);
    assert!(near(s.window.rtt.p50_us, 40 * MS), "{:?}", s.window.rtt);
    assert!(near(s.window.rtt.max_us, 60 * MS), "{:?}", s.window.rtt);
    assert_eq!(s.run.rtt, s.window.rtt);
}

#[test]
fn the_offset_comes_from_the_fastest_recent_pong() {
    let mut m = welcomed();
    // A slow, lopsided ping (40 ms up, 10 down) would put the offset off
    // by 15 ms; the earlier 10 + 10 one is faster and wins.
    pong(&mut m, 11 * S, 40 * MS, 10 * MS);
    let s = m.snapshot(11 * S + 50 * MS);
    assert_eq!(s.offset_us, Some(AHEAD as i64));
}

#[test]
fn frame_age_is_receive_time_minus_server_time_plus_offset() {
    let mut m = welcomed();
    // Produced at server time T, received 15 ms later (client clock T + AHEAD + 15 ms).
    let t = 20 * S;
    m.handle_server(&snapshot(100, t, 0), t + AHEAD + 15 * MS);
    for i in 1..=9u64 {
        let produced = t + i * 50 * MS;
        m.handle_server(&tick(100 + i, produced, 0), produced + AHEAD + 15 * MS);
    }
    let s = m.snapshot(t + AHEAD + S);
    assert_eq!(s.window.frame_age.count, 10);
    assert!(
        near(s.window.frame_age.p50_us, 15 * MS),
        "{:?}",
        s.window.frame_age
    );
    assert!(
        near(s.window.frame_age.p99_us, 15 * MS),
        "{:?}",
        s.window.frame_age
    );
    assert_eq!(s.counts.frames, 10);
    assert_eq!(s.counts.unmeasured_frames, 0);
}

#[test]
fn frames_before_any_pong_have_no_age() {
    let mut m = LagMeter::new();
    m.handle_connected(0);
    m.handle_server(&welcome(20, false), 0);
    m.handle_server(&snapshot(1, 0, 0), 5 * MS);
    let s = m.snapshot(10 * MS);
    assert_eq!(s.counts.unmeasured_frames, 1);
    assert_eq!(s.window.frame_age.count, 0);
    assert_eq!(s.offset_us, None);
}

#[test]
fn input_latency_runs_from_the_key_press_to_the_first_frame_that_acks_it() {
    let mut m = welcomed();
    let t = 20 * S;
    m.handle_input_sent(1, t);
    m.handle_input_sent(2, t + 10 * MS);
    // Not yet applied...
    m.handle_server(&tick(1, t - AHEAD, 0), t + 30 * MS);
    // ...one frame acks both: 70 ms and 60 ms.
    m.handle_server(&tick(2, t - AHEAD, 2), t + 70 * MS);
    // A later frame with the same ack adds nothing.
    m.handle_server(&tick(3, t - AHEAD, 2), t + 120 * MS);
    m.handle_input_sent(3, t + 200 * MS);
    m.handle_server(&tick(4, t - AHEAD, 3), t + 245 * MS);
    let s = m.snapshot(t + S);
    let p = s.window.input_latency;
    assert_eq!((p.count, s.counts.inputs), (3, 3));
    assert!(near(p.p50_us, 60 * MS), "{p:?}");
    assert!(near(p.max_us, 70 * MS), "{p:?}");
    assert!(near(p.mean_us, (70 + 60 + 45) * MS / 3), "{p:?}");
}

#[test]
fn an_input_sent_on_a_lost_link_is_not_timed() {
    let mut m = welcomed();
    m.handle_input_sent(1, 20 * S);
    m.handle_disconnected(20 * S + 5 * MS);
    m.handle_connected(21 * S);
    m.handle_server(&welcome(20, true), 21 * S);
    m.handle_server(&snapshot(50, 21 * S - AHEAD, 1), 21 * S + 10 * MS);
    assert_eq!(m.snapshot(22 * S).window.input_latency.count, 0);
}

#[test]
fn jitter_is_the_spread_of_arrivals_around_the_tick_interval() {
    let mut m = welcomed();
    let t = 20 * S;
    // 20 Hz: 50 ms apart. Arrivals 0, 50, 105, 150, then tick 6 skips
    // tick 5 and lands 100 ms later, right on time.
    for (tick_no, at) in [(1, 0), (2, 50), (3, 105), (4, 150), (6, 250)] {
        m.handle_server(&tick(tick_no, t - AHEAD, 0), t + at * MS);
    }
    // A re-sent old frame is not an arrival.
    m.handle_server(&tick(4, t - AHEAD, 0), t + 260 * MS);
    let s = m.snapshot(t + S);
    let j = s.window.jitter;
    assert_eq!(j.count, 4, "{j:?}");
    assert!(near(j.max_us, 5 * MS), "{j:?}");
    assert!(near(j.mean_us, 2_500), "{j:?}");
    // Four at once (what a short poll delivers) are far off the interval.
    let mut m = welcomed();
    for tick_no in 1..=4 {
        m.handle_server(&tick(tick_no, t - AHEAD, 0), t + 200 * MS);
    }
    let j = m.snapshot(t + S).window.jitter;
    assert_eq!(j.count, 3);
    assert!(near(j.p50_us, 50 * MS), "{j:?}");
}

#[test]
fn resyncs_are_keyframes_after_the_first_and_reconnects_are_welcomes_after_the_first() {
    let mut m = welcomed();
    let t = 20 * S;
    m.handle_server(&snapshot(1, t, 0), t + AHEAD);
    m.handle_server(&tick(2, t, 0), t + AHEAD);
    m.handle_server(&snapshot(9, t, 0), t + AHEAD); // fell behind
    m.handle_disconnected(t + AHEAD);
    m.handle_connected(t + AHEAD + S);
    m.handle_server(&welcome(20, true), t + AHEAD + S);
    m.handle_server(&snapshot(30, t, 0), t + AHEAD + S); // the resume's keyframe
    let s = m.snapshot(t + AHEAD + 2 * S);
    assert_eq!(s.counts.keyframes, 3);
    assert_eq!(s.counts.resyncs, 1);
    assert_eq!(s.counts.reconnects, 1);
    // A stream the link resumed by itself is a reconnect too.
    m.handle_traffic(
        TrafficTotals {
            resumes: 2,
            ..TrafficTotals::default()
        },
        t + AHEAD + 3 * S,
    );
    assert_eq!(m.snapshot(t + AHEAD + 3 * S).counts.reconnects, 3);
    // A stream restarted on the same link (SSE's resync) is a resync.
    m.handle_server(&welcome(20, false), t + AHEAD + 4 * S);
    m.handle_server(&snapshot(90, t, 0), t + AHEAD + 4 * S);
    let c = m.snapshot(t + AHEAD + 5 * S).counts;
    assert_eq!((c.resyncs, c.reconnects), (2, 3));
}

#[test]
fn bytes_and_requests_per_second_over_the_window_and_the_run() {
    let mut m = LagMeter::new();
    m.handle_connected(0);
    // 1,000 B/s down, 100 B/s up, 4 requests/s for 20 s, then 5,000 B/s for 10 s.
    let mut total = TrafficTotals::default();
    for sec in 0..=30u64 {
        if sec > 0 {
            let down = if sec <= 20 { 1_000 } else { 5_000 };
            total.bytes_down += down;
            total.bytes_up += 100;
            total.requests += 4;
        }
        m.handle_traffic(total, sec * S);
    }
    let s = m.snapshot(30 * S);
    assert_eq!(s.traffic.bytes_down, 70_000);
    assert!(
        (s.rates.bytes_down_per_s - 5_000.0).abs() < 1.0,
        "{:?}",
        s.rates
    );
    assert!((s.rates.requests_per_s - 4.0).abs() < 0.01, "{:?}", s.rates);
    assert!((s.run_rates.bytes_down_per_s - 70_000.0 / 30.0).abs() < 1.0);
    assert!((s.run_rates.bytes_up_per_s - 100.0).abs() < 0.01);
    assert!((s.run_secs - 30.0).abs() < 1e-9);
    // The history has each second's own bytes.
    let last = s.history.last().unwrap();
    assert_eq!((last.bytes_down, last.requests), (5_000, 4));
    assert_eq!(s.history[5].bytes_down, 1_000);
}

#[test]
fn the_window_slides_while_the_run_keeps_everything() {
    let mut m = welcomed();
    // 10 pongs of 100 ms long ago, then 10 of 2 ms now.
    for i in 0..10u64 {
        pong(&mut m, 11 * S + i * 100 * MS, 50 * MS, 50 * MS);
    }
    let later = 40 * S;
    for i in 0..10u64 {
        pong(&mut m, later + i * 100 * MS, MS, MS);
    }
    let s = m.snapshot(later + S);
    assert_eq!(s.window.rtt.count, 10, "{:?}", s.window.rtt);
    assert!(near(s.window.rtt.p99_us, 2 * MS), "{:?}", s.window.rtt);
    assert_eq!(s.run.rtt.count, 21);
    assert!(near(s.run.rtt.p99_us, 100 * MS), "{:?}", s.run.rtt);
}

#[test]
fn the_history_is_a_sparkline_of_each_second() {
    let mut m = welcomed();
    let t = 20 * S;
    m.handle_server(&tick(1, t - AHEAD, 0), t + 4 * MS);
    m.handle_server(&tick(2, t - AHEAD + 50 * MS, 0), t + 56 * MS);
    m.handle_server(&tick(3, t - AHEAD + S, 0), t + S + 30 * MS);
    let s = m.snapshot(t + 3 * S);
    let secs: Vec<_> = s.history.iter().rev().take(3).rev().collect();
    assert_eq!(secs[0].frame_age_us, Some(5 * MS));
    assert_eq!(secs[0].frame_age_max_us, Some(6 * MS));
    assert_eq!(secs[0].frames, 2);
    assert_eq!(secs[1].frame_age_us, Some(30 * MS));
    assert_eq!(secs[2].frames, 0);
}

#[test]
fn clients_add_up_to_one_distribution_per_transport() {
    let mut a = welcomed();
    pong(&mut a, 11 * S, MS, MS);
    let mut b = welcomed();
    pong(&mut b, 11 * S, 50 * MS, 50 * MS);
    b.handle_traffic(
        TrafficTotals {
            bytes_down: 500,
            requests: 3,
            ..TrafficTotals::default()
        },
        12 * S,
    );
    let mut all = LagTotals::default();
    all.add(&a.snapshot(12 * S));
    all.add(&b.snapshot(12 * S));
    assert_eq!(all.clients(), 2);
    let f = all.figures();
    assert_eq!(f.rtt.count, 4);
    assert!(near(f.rtt.max_us, 100 * MS), "{:?}", f.rtt);
    assert_eq!(all.counts().pongs, 4);
    assert_eq!(all.traffic().requests, 3);
    // 500 bytes over 2 clients x 2 s.
    assert!((all.rates_per_client().bytes_down_per_s - 125.0).abs() < 1e-9);
}

#[test]
fn a_report_summary_is_the_whole_run() {
    let mut m = welcomed();
    let s = m.snapshot(11 * S);
    let v = serde_json::to_value(s.summary()).unwrap();
    for key in [
        "rtt",
        "frame_age",
        "input_latency",
        "jitter",
        "offset_ms",
        "frames",
        "resyncs",
        "reconnects",
        "bytes_down",
        "bytes_up",
        "requests",
        "bytes_down_per_s",
        "requests_per_s",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["rtt"]["count"], 1);
    assert_eq!(v["offset_ms"], 5_000.0);
}

#[test]
fn a_report_only_meter_keeps_the_run_and_no_window() {
    let mut m = LagMeter::run_only();
    m.handle_connected(10 * S);
    m.handle_server(&welcome(20, false), 10 * S);
    pong(&mut m, 10 * S, 5 * MS, 5 * MS);
    let s = m.snapshot(11 * S);
    assert_eq!(s.run.rtt.count, 1);
    assert_eq!(s.window.rtt.count, 0);
}
