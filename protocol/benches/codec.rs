//! Codec micro-benchmarks: a keyframe and a delta of 16 snakes on a
//! 200x100 map, encoded in JSON and bincode; the per-player ack splice;
//! SSE event formatting. `cargo bench -p protocol --bench codec`.
//! (The sim step and the delta share of a real game are in
//! `game-server/benches/server.rs`.)

use std::collections::VecDeque;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use protocol::codec::encode;
use protocol::sse::format_event;
use protocol::{
    Dir, Format, Mode, Pos, Score, ServerMsg, SharedFrame, SnakeState, Snapshot, TickFrame,
    WorldState,
};

/// 16 snakes of 40 cells spread over a 200x100 map, and 60 food cells.
fn world() -> WorldState {
    let mut w = WorldState::new(Mode::Snake);
    w.tick = 1000;
    for id in 1..=16u32 {
        let y = (id as u16) * 6;
        let body: VecDeque<Pos> = (0..40).map(|i| Pos { x: 150 - i, y }).collect();
        w.snakes.push(SnakeState {
            id,
            name: format!("player{id}"),
            body,
            dir: Dir::Right,
            alive: true,
            respawn_in: 0,
            boost: false,
            connected: true,
            score: Score {
                length: 40,
                kills: 2,
                deaths: 1,
                best: 44,
                wins: 0,
            },
        });
    }
    w.food = (0..60)
        .map(|i| Pos {
            x: 3 * i + 1,
            y: 99 - i,
        })
        .collect();
    w
}

/// The world one tick later: every snake moved one cell right.
fn moved(w: &WorldState) -> WorldState {
    let mut n = w.clone();
    n.tick += 1;
    for s in &mut n.snakes {
        let head = s.body[0];
        s.body.push_front(Pos {
            x: head.x + 1,
            y: head.y,
        });
        s.body.pop_back();
    }
    n
}

fn frames() -> (ServerMsg, ServerMsg) {
    let before = world();
    let after = moved(&before);
    let snapshot = ServerMsg::Snapshot(Box::new(Snapshot {
        ack: 0,
        tick: after.tick,
        checksum: after.checksum(),
        server_time_us: 1_700_000_000_000_000,
        state: after.clone(),
    }));
    let tick = ServerMsg::Tick(Box::new(TickFrame {
        ack: 0,
        tick: after.tick,
        checksum: after.checksum(),
        server_time_us: 1_700_000_000_000_000,
        delta: after.diff(&before),
        events: Vec::new(),
    }));
    (snapshot, tick)
}

fn codec(c: &mut Criterion) {
    let (snapshot, tick) = frames();
    for (name, format) in [("json", Format::Json), ("bincode", Format::Bincode)] {
        let k = encode(format, &snapshot).len();
        let d = encode(format, &tick).len();
        println!(
            "sizes ({name}): keyframe {k} B, delta {d} B ({:.1}% of the keyframe)",
            d as f64 * 100.0 / k as f64
        );
        c.bench_function(&format!("encode keyframe 16 snakes {name}"), |b| {
            b.iter(|| SharedFrame::new(format, black_box(snapshot.clone())))
        });
        c.bench_function(&format!("encode delta 16 snakes {name}"), |b| {
            b.iter(|| SharedFrame::new(format, black_box(tick.clone())))
        });
        let shared = SharedFrame::new(format, tick.clone());
        c.bench_function(&format!("splice ack into shared delta {name}"), |b| {
            b.iter(|| black_box(&shared).with_ack(black_box(12345)))
        });
    }
    let data = encode(Format::Json, &tick);
    c.bench_function("sse format tick event (pre-encoded JSON)", |b| {
        b.iter(|| format_event("tick", Some(1001), black_box(&data)))
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
