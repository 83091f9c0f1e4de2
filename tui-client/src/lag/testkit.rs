//! A lag snapshot made the honest way, for screen tests: a meter fed a
//! synthetic timeline with known figures.

use protocol::state::Delta;
use protocol::{Map, Mode, Pong, ServerMsg, TickFrame, Welcome};

use super::{LagMeter, LagSnapshot, TrafficTotals};

const MS: u64 = 1_000;
const S: u64 = 1_000_000;

/// Figures the timeline is built with, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Timeline {
    /// Round trip (plus a little per second, so sparklines move).
    pub rtt_ms: u64,
    /// Age of every frame.
    pub age_ms: u64,
    /// From each press to its frame (0: no inputs, a spectator).
    pub input_ms: u64,
    /// Frames per second arrive in bursts of this many (1: evenly).
    pub burst: u64,
    /// Bytes received per second.
    pub bytes_per_s: u64,
    /// Requests per second.
    pub requests_per_s: u64,
    /// Seconds measured.
    pub seconds: u64,
}

impl Default for Timeline {
    fn default() -> Timeline {
        Timeline {
            rtt_ms: 12,
            age_ms: 8,
            input_ms: 45,
            burst: 1,
            bytes_per_s: 2_100,
            requests_per_s: 0,
            seconds: 70,
        }
    }
}

/// The snapshot of a 20 Hz room measured along `t`.
pub fn snapshot(t: Timeline) -> LagSnapshot {
    let mut m = LagMeter::new();
    let base = 1_000 * S;
    m.handle_connected(base);
    let welcome = Welcome {
        player_id: Some(1),
        session: "s".into(),
        token: "t".into(),
        room: "lobby".into(),
        mode: Mode::Snake,
        tick_rate: 20,
        speed: 10,
        map: Map::parse("#####\n#0.1#\n#####\n", "t").expect("a valid map"),
        resumed: false,
        name: "alice".into(),
        server_time_us: base,
    };
    m.handle_server(&ServerMsg::Welcome(Box::new(welcome)), base);
    let mut seq = 0;
    let mut traffic = TrafficTotals::default();
    for sec in 0..t.seconds {
        let at = base + sec * S;
        let rtt = (t.rtt_ms + sec % 5) * MS;
        let pong = ServerMsg::Pong(Pong {
            t: at,
            server_time_us: at + rtt / 2,
        });
        m.handle_server(&pong, at + rtt);
        if t.input_ms > 0 && sec % 2 == 0 {
            seq += 1;
            m.handle_input_sent(seq, at + 100 * MS);
        }
        for k in 0..20 {
            let produced = at + k * 50 * MS;
            // A burst arrives with its last frame.
            let last_of_burst = (k / t.burst + 1) * t.burst - 1;
            let arrives = at + last_of_burst.min(19) * 50 * MS + t.age_ms * MS;
            let pressed = at + 100 * MS;
            let ack = if t.input_ms > 0 && sec % 2 == 0 && arrives < pressed + t.input_ms * MS {
                seq - 1
            } else {
                seq
            };
            let frame = TickFrame {
                ack,
                tick: sec * 20 + k + 1,
                checksum: 0,
                server_time_us: produced,
                delta: Delta::default(),
                events: vec![],
            };
            m.handle_server(&ServerMsg::Tick(Box::new(frame)), arrives);
        }
        traffic.bytes_down += t.bytes_per_s;
        traffic.bytes_up += t.bytes_per_s / 20;
        traffic.requests += t.requests_per_s;
        m.handle_traffic(traffic, at + S - 1);
    }
    m.snapshot(base + t.seconds * S)
}
