//! The room side of the SSE stream, sans-IO: every tick's events are
//! formatted here once, in the room task, and the same `Bytes` go to every
//! SSE spectator. A ring of recent ticks lets a reconnecting client resume
//! with `Last-Event-ID` without a gap.
//!
//! Formatting only runs while the room has SSE spectators, and for one ring's
//! length after the last one left (so a brief drop still resumes); then the
//! ring is emptied, which keeps it gap-free by construction: it always holds
//! consecutive ticks ending at the room's current tick, or nothing.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use protocol::codec::{Format, encode};
use protocol::sse::format_event;
use protocol::{ChatLine, TickFrame, Welcome, WorldState};
use serde::Serialize;

/// A `Snapshot` serialised from a borrowed world (same JSON as a
/// spectator's `protocol::Snapshot`, which has no `ack`, without cloning
/// the world to build one).
#[derive(Serialize)]
struct SnapshotRef<'a> {
    tick: u64,
    checksum: u64,
    server_time_us: u64,
    state: &'a WorldState,
}

/// A `protocol::sse::SseWelcome` serialised from borrowed parts.
#[derive(Serialize)]
struct WelcomeRef<'a> {
    #[serde(flatten)]
    welcome: &'a Welcome,
    snapshot: SnapshotRef<'a>,
}

/// Join answers already formatted for the current tick: a burst of
/// spectators joining in one tick formats the welcome once.
#[derive(Default)]
struct JoinCache {
    tick: Option<u64>,
    welcome: Option<Bytes>,
    snapshot: Option<Bytes>,
}

/// One room's SSE formatting and replay ring.
pub struct SseFeed {
    ring: VecDeque<(u64, Bytes)>,
    capacity: usize,
    /// Ticks formatted in a row without any SSE spectator.
    idle: usize,
    cache: JoinCache,
}

fn concat(parts: &[&Bytes]) -> Bytes {
    let mut b = BytesMut::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        b.put_slice(p);
    }
    b.freeze()
}

fn snapshot_ref(state: &WorldState, checksum: u64, server_time_us: u64) -> SnapshotRef<'_> {
    SnapshotRef {
        tick: state.tick,
        checksum,
        server_time_us,
        state,
    }
}

fn snapshot_event(state: &WorldState, checksum: u64, server_time_us: u64) -> Bytes {
    let data = encode(Format::Json, &snapshot_ref(state, checksum, server_time_us));
    format_event("snapshot", Some(state.tick), &data)
}

impl SseFeed {
    /// A feed whose ring holds at least `replay` of ticks at `tick_rate`.
    pub fn new(tick_rate: u32, replay: Duration) -> SseFeed {
        let capacity = (replay.as_secs_f64() * f64::from(tick_rate)).ceil() as usize;
        let capacity = capacity.max(1);
        SseFeed {
            ring: VecDeque::new(),
            capacity,
            // A room nobody has watched yet formats nothing.
            idle: capacity,
            cache: JoinCache::default(),
        }
    }

    /// Formats a tick, once, when anyone may want it: `event: tick` (its
    /// delta carries the scoreboard rows that changed) plus this tick's
    /// chat events. `None` when nobody has watched over SSE lately.
    pub fn tick(
        &mut self,
        subscribers: bool,
        frame: &TickFrame,
        chat: &[ChatLine],
    ) -> Option<Bytes> {
        self.idle = if subscribers {
            0
        } else {
            self.idle.saturating_add(1)
        };
        if self.idle > self.capacity {
            self.ring.clear();
            return None;
        }
        let tick = frame.tick;
        let tick_ev = format_event("tick", Some(tick), &encode(Format::Json, frame));
        let mut extras = BytesMut::new();
        for c in chat {
            extras.put_slice(&format_event("chat", Some(tick), &encode(Format::Json, c)));
        }
        let extras = extras.freeze();
        let bundle = if extras.is_empty() {
            tick_ev
        } else {
            concat(&[&tick_ev, &extras])
        };
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back((tick, bundle.clone()));
        Some(bundle)
    }

    /// `event: snapshot` of `state`, the room's world now, formatted once
    /// per tick however many spectators ask (after a lag, or a resume from
    /// an id the ring no longer holds).
    pub fn keyframe(&mut self, state: &WorldState, server_time_us: u64) -> Bytes {
        self.fresh_cache(state.tick);
        self.cache
            .snapshot
            .get_or_insert_with(|| snapshot_event(state, state.checksum(), server_time_us))
            .clone()
    }

    fn fresh_cache(&mut self, now: u64) {
        if self.cache.tick != Some(now) {
            self.cache = JoinCache {
                tick: Some(now),
                ..JoinCache::default()
            };
        }
    }

    /// What a new SSE spectator gets before the live ticks, `state` being
    /// the room's world now: after `Last-Event-ID: N`, the buffered ticks
    /// after N (nothing if N is now); if N is not buffered, a snapshot;
    /// without an id, the welcome (map and snapshot).
    pub fn join(
        &mut self,
        last_event_id: Option<u64>,
        state: &WorldState,
        server_time_us: u64,
        welcome: impl FnOnce() -> Welcome,
    ) -> Vec<Bytes> {
        let now = state.tick;
        self.fresh_cache(now);
        match last_event_id {
            Some(n) if n == now => Vec::new(),
            Some(n)
                if n < now
                    && self.ring.front().is_some_and(|(first, _)| *first <= n + 1)
                    && self.ring.back().is_some_and(|(last, _)| *last == now) =>
            {
                self.ring
                    .iter()
                    .filter(|(t, _)| *t > n)
                    .map(|(_, b)| b.clone())
                    .collect()
            }
            Some(_) => vec![self.keyframe(state, server_time_us)],
            None => {
                let w = self.cache.welcome.get_or_insert_with(|| {
                    let welcome = welcome();
                    let data = encode(
                        Format::Json,
                        &WelcomeRef {
                            welcome: &welcome,
                            snapshot: snapshot_ref(state, state.checksum(), server_time_us),
                        },
                    );
                    format_event("welcome", Some(now), &data)
                });
                vec![w.clone()]
            }
        }
    }

    /// Ticks buffered for resumes now.
    pub fn buffered(&self) -> usize {
        self.ring.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Mode;
    use protocol::sse::{Item, Parser, SseMsg, decode_event};

    fn frame(state: &WorldState, prev: &WorldState) -> TickFrame {
        TickFrame {
            ack: 0,
            tick: state.tick,
            checksum: state.checksum(),
            server_time_us: 1,
            delta: state.diff(prev),
            events: Vec::new(),
        }
    }

    fn world(tick: u64) -> WorldState {
        let mut w = WorldState::new(Mode::Snake);
        w.tick = tick;
        w
    }

    fn ids(chunks: &[Bytes]) -> Vec<String> {
        let mut p = Parser::new();
        chunks
            .iter()
            .flat_map(|c| p.push(c))
            .filter_map(|i| match i {
                Item::Event(e) => Some(format!("{}:{}", e.event, e.id)),
                _ => None,
            })
            .collect()
    }

    fn welcome() -> Welcome {
        Welcome {
            player_id: None,
            session: String::new(),
            token: String::new(),
            room: "lobby".into(),
            mode: Mode::Snake,
            tick_rate: 10,
            speed: 10,
            map: protocol::map::builtin("small").unwrap(),
            resumed: false,
            name: "spectator".into(),
            server_time_us: 1,
        }
    }

    /// Runs ticks 1..=n with a subscriber, returning the feed.
    fn fed(n: u64, capacity_secs: u64) -> SseFeed {
        let mut feed = SseFeed::new(1, Duration::from_secs(capacity_secs));
        for t in 1..=n {
            let (prev, now) = (world(t - 1), world(t));
            assert!(feed.tick(true, &frame(&now, &prev), &[]).is_some());
        }
        feed
    }

    #[test]
    fn resume_replays_exactly_the_ticks_after_the_id() {
        let mut feed = fed(10, 5);
        assert_eq!(feed.buffered(), 5);
        let now = world(10);
        let got = ids(&feed.join(Some(7), &now, 1, welcome));
        assert_eq!(got, ["tick:8", "tick:9", "tick:10"]);
        assert!(feed.join(Some(10), &now, 1, welcome).is_empty());
        assert_eq!(ids(&feed.join(Some(5), &now, 1, welcome)).len(), 5);
    }

    #[test]
    fn too_old_or_future_ids_get_a_snapshot_and_no_id_a_welcome() {
        let mut feed = fed(10, 5);
        let now = world(10);
        assert_eq!(ids(&feed.join(Some(4), &now, 1, welcome)), ["snapshot:10"]);
        assert_eq!(ids(&feed.join(Some(99), &now, 1, welcome)), ["snapshot:10"]);
        let w = feed.join(None, &now, 1, welcome);
        assert_eq!(ids(&w), ["welcome:10"]);
        let items = Parser::new().push(&w[0]);
        let Item::Event(ev) = &items[0] else { panic!() };
        let SseMsg::Welcome(sw) = decode_event(ev).unwrap() else {
            panic!()
        };
        assert_eq!(sw.snapshot.state, now);
        assert_eq!(sw.snapshot.checksum, now.checksum());
    }

    #[test]
    fn nobody_watching_stops_formatting_and_empties_the_ring() {
        let mut feed = fed(3, 2);
        let mut formatted = 0;
        for t in 4..=10 {
            let (prev, now) = (world(t - 1), world(t));
            formatted += usize::from(feed.tick(false, &frame(&now, &prev), &[]).is_some());
        }
        assert_eq!(formatted, 2, "one ring's length of grace, then nothing");
        assert_eq!(feed.buffered(), 0);
        assert_eq!(
            ids(&feed.join(Some(3), &world(10), 1, welcome)),
            ["snapshot:10"]
        );
    }

    #[test]
    fn a_room_nobody_watched_formats_nothing() {
        let mut feed = SseFeed::new(60, Duration::from_secs(12));
        let (prev, now) = (world(0), world(1));
        assert!(feed.tick(false, &frame(&now, &prev), &[]).is_none());
        assert_eq!(feed.buffered(), 0);
    }

    #[test]
    fn chat_rides_with_the_tick_and_scores_in_it() {
        let mut feed = SseFeed::new(10, Duration::from_secs(1));
        let prev = world(0);
        let mut now = world(1);
        now.snakes.push(protocol::SnakeState {
            id: 1,
            name: "a".into(),
            body: Default::default(),
            dir: protocol::Dir::Up,
            alive: false,
            respawn_in: 3,
            boost: false,
            connected: true,
            score: Default::default(),
        });
        let chat = [ChatLine {
            from: "a".into(),
            text: "hi".into(),
        }];
        let bundle = feed.tick(true, &frame(&now, &prev), &chat).unwrap();
        assert_eq!(ids(std::slice::from_ref(&bundle)), ["tick:1", "chat:1"]);
        // The joined snake (and so its scoreboard row) is in the tick.
        let text = std::str::from_utf8(&bundle).unwrap();
        assert!(text.contains(r#""snakes":[{"id":1,"name":"a""#), "{text}");
        let key = feed.keyframe(&now, 1);
        assert_eq!(ids(std::slice::from_ref(&key)), ["snapshot:1"]);
        assert_eq!(
            key.as_ptr(),
            feed.keyframe(&now, 1).as_ptr(),
            "once per tick"
        );
    }
}
