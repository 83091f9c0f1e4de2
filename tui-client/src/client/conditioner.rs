//! The link conditioner: a bad network on demand, on the client side, for
//! every transport.
//!
//! `--conditioner latency=40ms,jitter=10ms` puts an in-process relay on
//! 127.0.0.1 between the client's links and the server. Every byte the
//! relay reads, in either direction, goes on after `latency ± jitter`
//! (uniformly drawn per read): **the latency is one-way and applies to
//! each direction**, so a round trip grows by twice it and a frame's age
//! by once it. Like TCP, the relay never reorders: a piece whose draw is
//! shorter than its predecessor's waits for it. TCP handshakes are not
//! delayed, only what flows over the connections.
//!
//! [`DelayLine`] is the sans-IO part (when may each piece go on); the
//! relay only moves bytes and sleeps until then.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::endpoint::Endpoint;
use super::transport::ConnectError;

/// Pieces in flight per direction before the relay stops reading (the
/// sender then feels TCP's backpressure, as behind a slow link).
const IN_FLIGHT: usize = 1024;
/// Bytes read at once.
const READ_SIZE: usize = 16 * 1024;

/// What the conditioner does to traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conditioner {
    /// Added one way, to each direction.
    pub latency: Duration,
    /// Each piece's delay is drawn uniformly from `latency ± jitter`
    /// (never below zero).
    pub jitter: Duration,
}

/// Why a conditioner setting was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConditionerError {
    /// A `key=value` with an unknown key.
    #[error("unknown setting `{0}` (expected latency=..., jitter=...)")]
    UnknownKey(String),
    /// A value that is not a duration.
    #[error("`{0}` is not a duration (e.g. 40ms, 0.5s, 800us)")]
    BadDuration(String),
    /// Nothing to do.
    #[error("empty conditioner (e.g. latency=40ms,jitter=10ms)")]
    Empty,
}

fn parse_duration(s: &str) -> Result<Duration, ConditionerError> {
    let bad = || ConditionerError::BadDuration(s.to_string());
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(bad());
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !(0.0..=60.0).contains(&(v * scale)) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(v * scale))
}

impl FromStr for Conditioner {
    type Err = ConditionerError;

    /// `latency=40ms,jitter=10ms`; either part may be left out.
    fn from_str(s: &str) -> Result<Conditioner, ConditionerError> {
        let mut c = Conditioner::default();
        let mut any = false;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| ConditionerError::UnknownKey(part.to_string()))?;
            match key.trim() {
                "latency" | "delay" => c.latency = parse_duration(value)?,
                "jitter" => c.jitter = parse_duration(value)?,
                other => return Err(ConditionerError::UnknownKey(other.to_string())),
            }
            any = true;
        }
        if !any {
            return Err(ConditionerError::Empty);
        }
        Ok(c)
    }
}

impl fmt::Display for Conditioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(f, "+{} ms each way", ms(self.latency))?;
        if !self.jitter.is_zero() {
            write!(f, " ±{} ms", ms(self.jitter))?;
        }
        Ok(())
    }
}

/// One direction's delay line: when each piece read may be passed on.
#[derive(Clone, Debug)]
pub struct DelayLine {
    latency_us: i64,
    jitter_us: i64,
    /// When the previous piece goes on (order is kept).
    last_us: u64,
}

impl DelayLine {
    /// A line for `c`.
    pub fn new(c: Conditioner) -> DelayLine {
        DelayLine {
            latency_us: c.latency.as_micros() as i64,
            jitter_us: c.jitter.as_micros() as i64,
            last_us: 0,
        }
    }

    /// A piece read at `arrival_us`, with `roll` drawn uniformly from
    /// -1..=1, goes on at the returned time: `arrival + latency + roll ×
    /// jitter` (at least `arrival`), and never before the piece before it.
    pub fn release_at(&mut self, arrival_us: u64, roll: f64) -> u64 {
        let delay = (self.latency_us as f64 + roll.clamp(-1.0, 1.0) * self.jitter_us as f64)
            .max(0.0) as u64;
        let at = (arrival_us + delay).max(self.last_us);
        self.last_us = at;
        at
    }
}

/// A relay on 127.0.0.1 that conditions every connection through it.
/// Dropping it cuts them all.
pub struct Relay {
    endpoint: Endpoint,
    accept: JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Relay {
    /// Starts relaying to the server at `server`.
    pub async fn start(server: &Endpoint, c: Conditioner) -> Result<Relay, ConnectError> {
        let upstream = server.authority();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| ConnectError::Unreachable(format!("conditioner: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ConnectError::Unreachable(format!("conditioner: {e}")))?;
        let accept = tokio::spawn(accept_loop(listener, upstream, c));
        Ok(Relay {
            endpoint: server.at(&addr.to_string()),
            accept,
        })
    }

    /// The server as links reach it: through the relay, under the
    /// server's path.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

async fn accept_loop(listener: TcpListener, upstream: String, c: Conditioner) {
    // Owned here: aborting the accept task drops the set and every pipe.
    let mut pipes = JoinSet::new();
    while let Ok((down, _)) = listener.accept().await {
        while pipes.try_join_next().is_some() {}
        let upstream = upstream.clone();
        pipes.spawn(async move {
            let up = match TcpStream::connect(&upstream).await {
                Ok(up) => up,
                Err(e) => {
                    tracing::debug!(%upstream, error = %e, "conditioner cannot reach the server");
                    return;
                }
            };
            let _ = (down.set_nodelay(true), up.set_nodelay(true));
            let (down_r, down_w) = down.into_split();
            let (up_r, up_w) = up.into_split();
            let base = Instant::now();
            tokio::join!(
                pump(down_r, up_w, DelayLine::new(c), base),
                pump(up_r, down_w, DelayLine::new(c), base),
            );
        });
    }
}

/// Moves one direction: reads as fast as the peer writes, passes each
/// piece on when its delay line says.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut line: DelayLine, base: Instant) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let reader = async move {
        let mut rng = ChaCha8Rng::seed_from_u64(rand::random());
        let mut buf = vec![0u8; READ_SIZE];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let now = base.elapsed().as_micros() as u64;
            let at = line.release_at(now, rng.random_range(-1.0..=1.0));
            let when = base + Duration::from_micros(at);
            if tx.send((when, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
        // Dropping `tx` lets the writer drain and then shut down.
    };
    let writer = async move {
        while let Some((when, piece)) = rx.recv().await {
            tokio::time::sleep_until(when).await;
            if to.write_all(&piece).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_with_units() {
        let c: Conditioner = "latency=40ms,jitter=10ms".parse().unwrap();
        assert_eq!(c.latency, Duration::from_millis(40));
        assert_eq!(c.jitter, Duration::from_millis(10));
        let c: Conditioner = " latency = 0.5s ".parse().unwrap();
        assert_eq!(
            (c.latency, c.jitter),
            (Duration::from_millis(500), Duration::ZERO)
        );
        let c: Conditioner = "jitter=800us".parse().unwrap();
        assert_eq!(c.jitter, Duration::from_micros(800));
        assert_eq!(
            "latency=40ms,jitter=10ms"
                .parse::<Conditioner>()
                .unwrap()
                .to_string(),
            "+40 ms each way ±10 ms"
        );
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        assert_eq!(
            "loss=1%".parse::<Conditioner>(),
            Err(ConditionerError::UnknownKey("loss".into()))
        );
        assert_eq!(
            "latency=40".parse::<Conditioner>(),
            Err(ConditionerError::BadDuration("40".into()))
        );
        assert!("latency=-5ms".parse::<Conditioner>().is_err());
        assert!("latency=2h".parse::<Conditioner>().is_err());
        assert_eq!("".parse::<Conditioner>(), Err(ConditionerError::Empty));
    }

    #[test]
    fn each_piece_waits_latency_plus_or_minus_jitter() {
        let c = Conditioner {
            latency: Duration::from_millis(40),
            jitter: Duration::from_millis(10),
        };
        let mut line = DelayLine::new(c);
        assert_eq!(line.release_at(0, 0.0), 40_000);
        assert_eq!(line.release_at(100_000, 1.0), 150_000);
        assert_eq!(line.release_at(200_000, -1.0), 230_000);
    }

    #[test]
    fn order_is_kept_as_tcp_would() {
        let c = Conditioner {
            latency: Duration::from_millis(40),
            jitter: Duration::from_millis(30),
        };
        let mut line = DelayLine::new(c);
        // The first draws the longest delay, the next the shortest: the
        // second may not overtake.
        assert_eq!(line.release_at(0, 1.0), 70_000);
        assert_eq!(line.release_at(1_000, -1.0), 70_000);
        assert_eq!(line.release_at(80_000, -1.0), 90_000);
        // Jitter beyond the latency never makes a negative delay.
        let mut wide = DelayLine::new(Conditioner {
            latency: Duration::from_millis(5),
            jitter: Duration::from_millis(20),
        });
        assert_eq!(wide.release_at(10_000, -1.0), 10_000);
    }

    #[tokio::test]
    async fn the_relay_delays_both_directions_and_keeps_order() {
        // An echo server: one round trip through the relay crosses it twice.
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).await.unwrap();
            }
        });
        let latency = Duration::from_millis(30);
        let relay = Relay::start(
            &Endpoint::parse(&format!("http://{addr}")).unwrap(),
            Conditioner {
                latency,
                jitter: Duration::from_millis(5),
            },
        )
        .await
        .unwrap();
        let mut s = TcpStream::connect(relay.endpoint().authority())
            .await
            .unwrap();
        let started = std::time::Instant::now();
        for i in 0..20u8 {
            s.write_all(&[i]).await.unwrap();
        }
        let mut got = [0u8; 20];
        s.read_exact(&mut got).await.unwrap();
        let rtt = started.elapsed();
        let want: Vec<u8> = (0..20).collect();
        assert_eq!(got.to_vec(), want, "in order");
        // Twice (latency - jitter) at the least; no upper bound is asserted.
        assert!(rtt >= Duration::from_millis(50), "{rtt:?}");
    }
}
