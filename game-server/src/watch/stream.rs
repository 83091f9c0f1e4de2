//! The watch transport, `GET /rooms/{room}/watch`: samples the room's
//! latest world at most [`MAX_FPS`] times a second and writes it rendered
//! (see [`super::render`]) for `curl -N`. It sees its room only through
//! [`WatchedRoom`], which the room implements, so `watch` sits below `room`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use protocol::{Map, WorldState};
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use warp::reply::Response;

use super::render::{MAX_COLS, MAX_ROWS, MIN_COLS, MIN_ROWS, RoomLabel, WatchOptions, render};
use crate::metrics::ConnMetrics;

/// What a watcher needs of its room.
pub trait WatchedRoom: Clone + Send + Sync + 'static {
    /// The room's id, shown in the frame.
    fn id(&self) -> &str;
    /// The room's map.
    fn map(&self) -> &Map;
    /// Spectators of every kind, watchers included, shown in the frame.
    fn spectators(&self) -> u32;
    /// The world after the room's latest tick; `changed()` fails once the
    /// room has closed.
    fn world(&self) -> watch::Receiver<Arc<WorldState>>;
    /// The room's rendered frames, shared by its watchers.
    fn frames(&self) -> &FrameCache;
    /// The room's count of watchers, kept by the watchers themselves.
    fn watchers(&self) -> &AtomicU32;
    /// Wakes the room if it sleeps (a watcher sends it no command).
    fn wake(&self);
}

/// Most frames a watcher gets per second.
pub const MAX_FPS: u32 = 10;

/// Parses `?color=&cols=&rows=`; the error is a message for a 400.
pub fn parse_options(query: &HashMap<String, String>) -> Result<WatchOptions, String> {
    let mut opts = WatchOptions::default();
    if let Some(c) = query.get("color") {
        opts.color = match c.as_str() {
            "never" | "no" | "off" | "false" => false,
            "always" | "auto" | "yes" | "on" | "true" => true,
            other => {
                return Err(format!(
                    "color must be never or always, got {:?}",
                    protocol::text::sanitize_line(other, 20)
                ));
            }
        };
    }
    let size = |name: &str, min: u16, max: u16, default: u16| -> Result<u16, String> {
        match query.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u16>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    format!(
                        "{name} must be a number from {min} to {max}, got {:?}",
                        protocol::text::sanitize_line(v, 20)
                    )
                }),
        }
    };
    opts.cols = size("cols", MIN_COLS, MAX_COLS, opts.cols)?;
    opts.rows = size("rows", MIN_ROWS, MAX_ROWS, opts.rows)?;
    Ok(opts)
}

/// Most option sets a room keeps rendered frames for.
const CACHED_OPTIONS: usize = 64;

/// A room's latest rendered frame per set of options: watchers that asked
/// for the same view share one render per world instead of one each.
#[derive(Debug, Default)]
pub struct FrameCache {
    frames: Mutex<HashMap<WatchOptions, CachedFrame>>,
}

#[derive(Debug)]
struct CachedFrame {
    tick: u64,
    spectators: u32,
    bytes: Bytes,
}

impl FrameCache {
    /// The frame for `opts` of `world`, rendering it only if no watcher did yet.
    fn frame(&self, room: &impl WatchedRoom, world: &WorldState, opts: WatchOptions) -> Bytes {
        let spectators = room.spectators();
        let fresh = |c: &CachedFrame| c.tick == world.tick && c.spectators == spectators;
        if let Some(c) = self.lock().get(&opts).filter(|c| fresh(c)) {
            return c.bytes.clone();
        }
        // Rendered outside the lock: watchers of other views never wait.
        let label = RoomLabel {
            room: room.id(),
            spectators,
        };
        let bytes = Bytes::from(render(room.map(), world, label, opts));
        let mut frames = self.lock();
        if frames.len() >= CACHED_OPTIONS && !frames.contains_key(&opts) {
            frames.clear();
        }
        frames.insert(
            opts,
            CachedFrame {
                tick: world.tick,
                spectators,
                bytes: bytes.clone(),
            },
        );
        bytes
    }

    /// Drops every frame (the room fell asleep: nobody watches).
    pub fn clear(&self) {
        *self.lock() = HashMap::new();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WatchOptions, CachedFrame>> {
        // A poisoned cache only lost a frame; the map is still valid.
        self.frames.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Counts a watcher in its room's spectators while it lives.
struct Watcher<R: WatchedRoom>(R);

impl<R: WatchedRoom> Watcher<R> {
    /// Counts the watcher in, then wakes the room if it sleeps (in that
    /// order, so the room sees the watcher when it looks).
    fn new(room: R) -> Watcher<R> {
        room.watchers().fetch_add(1, Ordering::Relaxed);
        room.wake();
        Watcher(room)
    }
}

impl<R: WatchedRoom> Drop for Watcher<R> {
    fn drop(&mut self) {
        self.0.watchers().fetch_sub(1, Ordering::Relaxed);
    }
}

enum Phase {
    First,
    Running,
    Ended,
}

struct Pump<R: WatchedRoom> {
    conn: ConnMetrics,
    world: watch::Receiver<Arc<WorldState>>,
    opts: WatchOptions,
    pace: Interval,
    shutdown: watch::Receiver<bool>,
    phase: Phase,
    watcher: Watcher<R>,
}

impl<R: WatchedRoom> Pump<R> {
    fn frame(&mut self) -> Bytes {
        let world = self.world.borrow_and_update().clone();
        let room = &self.watcher.0;
        room.frames().frame(room, &world, self.opts)
    }

    fn goodbye(&self) -> Bytes {
        let text = "room closed: the server is shutting down\n";
        if self.opts.color {
            Bytes::from(format!("\x1b[0m\n{text}"))
        } else {
            Bytes::from(text)
        }
    }
}

/// Serves one watcher of `room` with `opts`, counted in `conn`.
pub fn serve(
    room: impl WatchedRoom,
    conn: ConnMetrics,
    opts: WatchOptions,
    shutdown: watch::Receiver<bool>,
) -> Response {
    let period = Duration::from_secs(1) / MAX_FPS;
    let mut pace = tokio::time::interval_at(Instant::now() + period, period);
    pace.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let pump = Pump {
        conn,
        world: room.world(),
        watcher: Watcher::new(room),
        opts,
        pace,
        shutdown,
        phase: Phase::First,
    };
    let chunks = futures_util::stream::unfold(pump, |mut p| async move {
        match p.phase {
            Phase::Ended => return None,
            Phase::First => {
                p.phase = Phase::Running;
                let frame = p.frame();
                // Clear the screen once; every frame then homes and redraws.
                let out = if p.opts.color {
                    let mut b = b"\x1b[2J".to_vec();
                    b.extend_from_slice(&frame);
                    Bytes::from(b)
                } else {
                    frame
                };
                return Some((out, p));
            }
            Phase::Running => {}
        }
        // Pace first (at most MAX_FPS), then wait for a newer world.
        let paced = tokio::select! {
            biased;
            _ = crate::clock::until_shutdown(&mut p.shutdown) => false,
            _ = p.pace.tick() => true,
        };
        let alive = paced
            && tokio::select! {
                biased;
                _ = crate::clock::until_shutdown(&mut p.shutdown) => false,
                changed = p.world.changed() => changed.is_ok(),
            };
        if !alive {
            p.phase = Phase::Ended;
            let bye = p.goodbye();
            return Some((bye, p));
        }
        let frame = p.frame();
        p.conn.sent.frames.inc();
        p.conn.sent.bytes.inc_by(frame.len() as u64);
        Some((frame, p))
    });
    crate::streaming::reply(chunks, "text/plain; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::RoomHandle;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn watchers_with_the_same_view_share_one_render() {
        let (_stop, shutdown) = watch::channel(false);
        let map = protocol::map::builtin("small").unwrap();
        let room = RoomHandle::spawn(
            crate::room::RoomConfig {
                id: "t".into(),
                mode: protocol::Mode::Snake,
                map_name: "small".into(),
                map: map.into(),
                tick_rate: 20,
                speed: 10,
                max_players: 4,
                seed: 1,
                resume_grace: Duration::from_secs(1),
                spectators: crate::SpectatorConfig::default(),
            },
            shutdown,
            Arc::default(),
        );
        let world = room.world().borrow().clone();
        let plain = WatchOptions {
            color: false,
            ..WatchOptions::default()
        };
        let a = room.frames().frame(&room, &world, plain);
        let b = room.frames().frame(&room, &world, plain);
        assert_eq!(a.as_ptr(), b.as_ptr(), "the same bytes, rendered once");
        let c = room.frames().frame(&room, &world, WatchOptions::default());
        assert_ne!(a, c);
    }

    #[test]
    fn options_parse_and_bad_values_are_refused() {
        let o = parse_options(&q(&[("color", "never"), ("cols", "60"), ("rows", "20")])).unwrap();
        assert_eq!((o.color, o.cols, o.rows), (false, 60, 20));
        assert_eq!(parse_options(&q(&[])).unwrap(), WatchOptions::default());
        for bad in [
            ("cols", "abc"),
            ("cols", "5"),
            ("rows", "100000"),
            ("rows", "-3"),
            ("color", "purple"),
        ] {
            let e = parse_options(&q(&[bad])).unwrap_err();
            assert!(e.starts_with(bad.0), "{e}");
        }
    }
}
