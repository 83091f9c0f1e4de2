//! Every limit the server enforces, in one place, with its default. Each
//! one is a field of [`Limits`] (and a `game-server` flag); `SECURITY.md`
//! lists them with what a client sees when it hits one.
//!
//! [`throttle`] is the sans-IO rate limiter the transports run per session;
//! [`creation`] the per-address room creation rate the registry runs;
//! [`counters`] counts every time a limit bit, for operators.

pub mod counters;
pub mod creation;
pub mod throttle;

use std::time::Duration;

pub use counters::Counters;
pub use creation::CreationRate;
pub use throttle::{Throttle, Verdict};

/// The limits of one server.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Open connections of every kind (HTTP, WebSocket, SSE, watch) at once.
    /// Beyond it a new connection gets `503 server_full`. The server lowers
    /// it at start to what its open-file limit allows.
    pub max_connections: usize,
    /// Open connections from one IP address at once; beyond it `429
    /// too_many_connections`. 0 turns the per-address cap off.
    pub max_connections_per_ip: usize,
    /// Apply the per-address cap to loopback peers too. Off by default:
    /// loopback is this machine (local bots, the embedded game) or a
    /// reverse proxy in front, where every client shares one address.
    pub per_ip_loopback: bool,
    /// Largest WebSocket message (and frame) a client may send, in bytes;
    /// a bigger one closes the connection with 1009.
    pub ws_max_message: usize,
    /// Largest HTTP request body, in bytes; a bigger one is `413 too_large`.
    pub max_body: u64,
    /// A request's head must arrive within this (from the connection's
    /// start, or from the end of the previous response on a kept-alive
    /// connection), and its body within this again; otherwise the
    /// connection closes (head) or the request is `408 request_timeout`
    /// (body). Against slowloris, on every endpoint.
    pub request_timeout: Duration,
    /// A connection whose writes make no progress for this long (the peer
    /// stopped reading, or vanished without a reset) is closed.
    pub write_stall_timeout: Duration,
    /// Client messages per second a session may send (inputs, pings, chat,
    /// WebSocket control frames), sustained; 0 turns the limit off.
    pub input_rate: f64,
    /// Messages a session may send in a burst above `input_rate`. Messages
    /// beyond it are dropped and counted; a session that keeps sending at
    /// well over its rate (its dropped messages outrun the rate by another
    /// burst) is closed: WebSocket 1008, long-poll `429 rate_limited`.
    pub input_burst: f64,
    /// Chat lines per second a session may send, sustained (0: no limit).
    pub chat_rate: f64,
    /// Chat lines a session may send in a burst; beyond it a line is dropped
    /// and its sender gets `error {code: rate_limited}`.
    pub chat_burst: f64,
    /// How long a new WebSocket may take to send its hello (close 1008).
    pub ws_hello_timeout: Duration,
    /// WebSocket ping interval.
    pub ws_ping_interval: Duration,
    /// A WebSocket that sent nothing (pongs included) for this long is
    /// closed with 1008.
    pub ws_idle_timeout: Duration,
    /// How long a graceful shutdown may take before the connections still
    /// open are dropped.
    pub shutdown_grace: Duration,
    /// Rooms open at once, the default room and the operator's included;
    /// beyond it `POST /api/rooms` gets `503 too_many_rooms`. The
    /// operator's own rooms (the default room, `--room`) are always made.
    pub max_rooms: usize,
    /// Rooms one address may create per minute over `POST /api/rooms`,
    /// sustained (every address, loopback included; IPv6 by /64); beyond
    /// it `429 room_create_rate`. 0 turns the limit off.
    pub room_create_rate: f64,
    /// Rooms one address may create at once before the rate applies.
    pub room_create_burst: f64,
    /// A room with no players and no spectators for this long closes and
    /// leaves `/api/rooms`; the default room and the operator's
    /// persistent rooms never do.
    pub room_idle: Duration,
}

/// Default cap on open connections (before the open-file limit lowers it).
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Default cap on open connections per IP address.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 128;
/// Default cap on rooms open at once. An empty room costs a few KiB and
/// no CPU (it sleeps), so the cap is about what busy rooms cost: each
/// ticks, and 256 busy rooms at 60 Hz are more than two cores can run.
pub const DEFAULT_MAX_ROOMS: usize = 256;
/// Default rooms per minute per address (sustained).
pub const DEFAULT_ROOM_CREATE_RATE: f64 = 6.0;
/// Default rooms per address at once.
pub const DEFAULT_ROOM_CREATE_BURST: f64 = 5.0;
/// Default time an empty room waits before it closes.
pub const DEFAULT_ROOM_IDLE: Duration = Duration::from_secs(300);

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            per_ip_loopback: false,
            // A hello, an input, a 200-character chat line in JSON with
            // every character escaped: all well under 4 KiB.
            ws_max_message: 4 * 1024,
            max_body: 16 * 1024,
            request_timeout: Duration::from_secs(15),
            write_stall_timeout: Duration::from_secs(30),
            // Two turns per tick at the fastest tick rate (60 Hz), which is
            // more than any client can use; humans send a few a second.
            input_rate: 120.0,
            input_burst: 240.0,
            chat_rate: 1.0,
            chat_burst: 5.0,
            ws_hello_timeout: Duration::from_secs(10),
            ws_ping_interval: Duration::from_secs(5),
            ws_idle_timeout: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(5),
            max_rooms: DEFAULT_MAX_ROOMS,
            room_create_rate: DEFAULT_ROOM_CREATE_RATE,
            room_create_burst: DEFAULT_ROOM_CREATE_BURST,
            room_idle: DEFAULT_ROOM_IDLE,
        }
    }
}

impl Limits {
    /// Checks the values make sense together; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        if self.max_rooms == 0 {
            return Err("max_rooms must be at least 1 (the default room)".into());
        }
        if self.ws_max_message < 256 {
            return Err("ws_max_message must be at least 256 bytes (a hello must fit)".into());
        }
        if self.max_body < 256 {
            return Err("max_body must be at least 256 bytes (a hello must fit)".into());
        }
        for (name, v) in [
            ("input_rate", self.input_rate),
            ("input_burst", self.input_burst),
            ("chat_rate", self.chat_rate),
            ("chat_burst", self.chat_burst),
            ("room_create_rate", self.room_create_rate),
            ("room_create_burst", self.room_create_burst),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name} must be a number >= 0, got {v}"));
            }
        }
        if self.input_rate > 0.0 && self.input_burst < 1.0 {
            return Err("input_burst must be at least 1".into());
        }
        if self.chat_rate > 0.0 && self.chat_burst < 1.0 {
            return Err("chat_burst must be at least 1".into());
        }
        if self.room_create_rate > 0.0 && self.room_create_burst < 1.0 {
            return Err("room_create_burst must be at least 1".into());
        }
        for (name, d) in [
            ("request_timeout", self.request_timeout),
            ("write_stall_timeout", self.write_stall_timeout),
            ("ws_hello_timeout", self.ws_hello_timeout),
            ("ws_ping_interval", self.ws_ping_interval),
            ("ws_idle_timeout", self.ws_idle_timeout),
            ("room_idle", self.room_idle),
        ] {
            if d.is_zero() {
                return Err(format!("{name} must be longer than 0"));
            }
        }
        Ok(())
    }

    /// What a sender over the chat limit is told.
    pub fn chat_limit_message(&self) -> String {
        format!(
            "chat rate limit: {} lines at once, then one every {:.1} s; that line was dropped",
            self.chat_burst,
            1.0 / self.chat_rate.max(f64::MIN_POSITIVE)
        )
    }

    /// A fresh input throttle for a session starting at `now`.
    pub fn input_throttle(&self, now: tokio::time::Instant) -> Throttle {
        Throttle::new(self.input_rate, self.input_burst, now.into_std())
    }

    /// The room creation rate this server runs, empty.
    pub fn creation_rate(&self) -> CreationRate {
        CreationRate::new(self.room_create_rate / 60.0, self.room_create_burst)
    }

    /// A fresh chat throttle for a session starting at `now`.
    pub fn chat_throttle(&self, now: tokio::time::Instant) -> Throttle {
        Throttle::new(self.chat_rate, self.chat_burst, now.into_std())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_field() {
        assert_eq!(Limits::default().validate(), Ok(()));
        let bad = Limits {
            input_rate: f64::NAN,
            ..Limits::default()
        };
        assert!(bad.validate().unwrap_err().contains("input_rate"));
        let bad = Limits {
            request_timeout: Duration::ZERO,
            ..Limits::default()
        };
        assert!(bad.validate().unwrap_err().contains("request_timeout"));
        let bad = Limits {
            ws_max_message: 10,
            ..Limits::default()
        };
        assert!(bad.validate().unwrap_err().contains("ws_max_message"));
        let bad = Limits {
            max_rooms: 0,
            ..Limits::default()
        };
        assert!(bad.validate().unwrap_err().contains("max_rooms"));
        let bad = Limits {
            room_create_burst: 0.5,
            ..Limits::default()
        };
        assert!(bad.validate().unwrap_err().contains("room_create_burst"));
        let bad = Limits {
            room_idle: Duration::ZERO,
            ..Limits::default()
        };
        assert!(bad.validate().unwrap_err().contains("room_idle"));
    }
}
