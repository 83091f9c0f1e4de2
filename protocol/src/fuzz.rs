//! The fuzz entry points: what `cargo fuzz` (the `fuzz/` directory) and the
//! bounded property tests in `protocol/tests/fuzz.rs` feed arbitrary bytes
//! to. Each one must never panic on any input (decode errors are values)
//! and checks what should hold of whatever does decode; a panic here is a
//! finding.

use crate::codec::{Format, decode, encode};
use crate::map::{MAX_SIDE, Map};
use crate::msg::{ClientMsg, ServerMsg};
use crate::poll::{PollBatch, SendBatch};
use crate::sse::{Item, Parser, decode_event};
use crate::text::{is_unsafe, sanitize_chat, sanitize_name};

/// Decodes `data` as every message type a peer can send in `format`;
/// whatever decodes must re-encode to something that decodes to the same
/// value, and what the server would show of it must be sanitised.
pub fn codec(format: Format, data: &[u8]) {
    if let Ok(msg) = decode::<ClientMsg>(format, data) {
        round_trip(format, &msg);
        let shown = match &msg {
            ClientMsg::Hello(h) => Some(sanitize_name(&h.name)),
            ClientMsg::Chat(c) => Some(sanitize_chat(&c.text)),
            _ => None,
        };
        if let Some(s) = shown {
            assert!(!s.chars().any(is_unsafe), "unsanitised: {s:?}");
        }
    }
    if let Ok(msg) = decode::<ServerMsg>(format, data) {
        round_trip(format, &msg);
    }
    if let Ok(batch) = decode::<SendBatch>(format, data) {
        round_trip(format, &batch);
    }
    if let Ok(batch) = decode::<PollBatch>(format, data) {
        round_trip(format, &batch);
    }
}

fn round_trip<T>(format: Format, value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = encode(format, value);
    let back: T = decode(format, &bytes)
        .unwrap_or_else(|e| panic!("re-encoding of {value:?} does not decode: {e}"));
    assert_eq!(&back, value, "{format:?} round trip changed the value");
}

/// Parses `data` as an event stream twice, whole and cut into chunks (the
/// first byte picks the cut sizes): both must give the same items and the
/// same last event id, and decoding any event never panics.
pub fn sse(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let mut whole = Parser::new();
    let all = whole.push(stream);
    let mut cut = Parser::new();
    let mut pieces = Vec::new();
    let mut rest = stream;
    let mut k = usize::from(seed);
    while !rest.is_empty() {
        let n = (k % 7 + 1).min(rest.len());
        let (a, b) = rest.split_at(n);
        pieces.extend(cut.push(a));
        rest = b;
        k = k.wrapping_mul(31).wrapping_add(17);
    }
    assert_eq!(all, pieces, "chunking changed what the parser saw");
    assert_eq!(whole.last_event_id(), cut.last_event_id());
    for item in &all {
        if let Item::Event(ev) = item {
            let _ = decode_event(ev);
        }
    }
}

/// Parses `data` as a map file; a map that parses is well formed (every
/// row as wide as the first, spawns on floor, within [`MAX_SIDE`]) and
/// parses again, from its own rows, to the same grid.
pub fn map(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(m) = Map::parse(&text, "fuzz") else {
        return;
    };
    assert!(m.width as usize <= MAX_SIDE && m.height as usize <= MAX_SIDE);
    assert_eq!(m.rows.len(), m.height as usize);
    assert!(m.rows.iter().all(|r| r.len() == m.width as usize));
    assert!(!m.spawns.is_empty());
    for s in &m.spawns {
        assert!(!m.is_wall(*s), "a spawn in a wall: {s:?}");
    }
    assert!(!m.name.chars().any(is_unsafe), "unsanitised map name");
    let again = Map::parse(&m.rows.join("\n"), &m.name).expect("its own rows parse");
    assert_eq!((again.rows, again.spawns), (m.rows, m.spawns));
}

/// Decodes `data` as a tick frame in `format` and applies it to a small
/// world: applying never panics whatever the frame says, and a world it
/// produced is rebuilt from the first one by its own diff.
pub fn delta(format: Format, data: &[u8]) {
    use crate::msg::TickFrame;
    use crate::state::{Score, SnakeState, WorldState};
    let Ok(frame) = decode::<TickFrame>(format, data) else {
        return;
    };
    let mut world = WorldState::new(crate::msg::Mode::Snake);
    world.snakes = (1..=3)
        .map(|id| SnakeState {
            id,
            name: format!("s{id}"),
            body: (0..4).map(|k| crate::Pos::new(k, id as u16)).collect(),
            dir: crate::Dir::Left,
            alive: true,
            respawn_in: 0,
            boost: false,
            connected: true,
            score: Score::default(),
        })
        .collect();
    world.food = vec![crate::Pos::new(5, 5), crate::Pos::new(9, 1)];
    let before = world.clone();
    if world.apply(&frame.delta).is_err() {
        return;
    }
    // A hostile delta can leave lists unsorted; diff is defined on sorted
    // worlds (what the server sends), so only check those.
    let sorted = world.snakes.windows(2).all(|w| w[0].id < w[1].id)
        && world.food.windows(2).all(|w| w[0] < w[1]);
    if sorted {
        let mut again = before.clone();
        again
            .apply(&world.diff(&before))
            .expect("a diff applies to the world it was taken from");
        assert_eq!(again, world, "diff then apply rebuilt another world");
    }
}
