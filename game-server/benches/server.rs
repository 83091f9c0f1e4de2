//! Server micro-benchmarks: one sim step with 16 snakes on the 200x100
//! map, and the room's per-tick encoding of a real game (delta share of
//! the keyframe). `cargo bench -p game-server --bench server`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use game_server::sim::{SimConfig, SimInput, SplitMix64, World};
use protocol::codec::encode;
use protocol::sse::format_event;
use protocol::{Dir, Format, Mode, ServerMsg, Snapshot, TickFrame};

const DIRS: [Dir; 4] = [Dir::Up, Dir::Right, Dir::Down, Dir::Left];

/// The big map with 16 snakes that have played `warm` ticks.
fn game(warm: u64) -> (World, SplitMix64) {
    let map = protocol::map::builtin("big").expect("the big map is built in");
    assert_eq!((map.width, map.height), (200, 100));
    let mut world = World::new(map.clone(), SimConfig::for_map(Mode::Snake, &map), 42);
    let joins: Vec<SimInput> = (1..=16)
        .map(|id| SimInput::Join {
            id,
            name: format!("bot{id}"),
        })
        .collect();
    world.step(&joins);
    let mut rng = SplitMix64::new(7);
    for _ in 0..warm {
        let inputs = turns(&world, &mut rng);
        world.step(&inputs);
    }
    (world, rng)
}

/// Each snake steers like a cautious bot: now and then a random turn, and
/// away from a wall or a body straight ahead, so snakes live and grow as
/// in a real game.
fn turns(world: &World, rng: &mut SplitMix64) -> Vec<SimInput> {
    let (map, state) = (world.map(), world.state());
    let taken: std::collections::HashSet<protocol::Pos> = state
        .snakes
        .iter()
        .flat_map(|s| s.body.iter().copied())
        .collect();
    let free = |p: protocol::Pos| !map.is_wall(p) && !taken.contains(&p);
    let mut out = Vec::new();
    for s in &state.snakes {
        let Some(head) = s.head() else { continue };
        let ahead = head.step(s.dir, map.width, map.height);
        let wander = rng.next_u64().is_multiple_of(10);
        if free(ahead) && !wander {
            continue;
        }
        let start = rng.next_u64() as usize;
        let pick = (0..4)
            .map(|k| DIRS[(start + k) % 4])
            .filter(|d| *d != s.dir.opposite())
            .find(|d| free(head.step(*d, map.width, map.height)));
        if let Some(dir) = pick {
            out.push(SimInput::Turn { id: s.id, dir });
        }
    }
    out
}

fn sim(c: &mut Criterion) {
    let (mut world, mut rng) = game(400);
    let cells: usize = world.state().snakes.iter().map(|s| s.body.len()).sum();
    let alive = world.state().snakes.iter().filter(|s| s.alive).count();
    println!("sim bench world: 16 snakes ({alive} alive, {cells} cells in all) after 400 ticks");
    let inputs: Vec<Vec<SimInput>> = (0..256).map(|_| turns(&world, &mut rng)).collect();
    let mut i = 0;
    // Every iteration steps the same warmed-up world (cloned outside the
    // timing), so the figure does not drift as a long run grows snakes.
    c.bench_function("sim step 16 snakes 200x100", |b| {
        b.iter_batched_ref(
            || world.clone(),
            |w| {
                i = (i + 1) % inputs.len();
                black_box(w.step(black_box(&inputs[i])))
            },
            BatchSize::SmallInput,
        )
    });
    let before = world.state().clone();
    world.step(&inputs[0]);
    let after = world.state().clone();
    c.bench_function("diff + checksum 16 snakes", |b| {
        b.iter(|| (black_box(&after).diff(black_box(&before)), after.checksum()))
    });
}

/// The average delta against the keyframe of the same tick, over 1,000
/// ticks of a game, in both formats (printed; criterion measures times).
fn delta_share() {
    let (mut world, mut rng) = game(400);
    let mut sums = [[0u64; 2]; 2];
    for _ in 0..1000 {
        let before = world.state().clone();
        let inputs = turns(&world, &mut rng);
        let events = world.step(&inputs);
        let s = world.state();
        let tick = ServerMsg::Tick(Box::new(TickFrame {
            ack: 0,
            tick: s.tick,
            checksum: s.checksum(),
            server_time_us: 1_700_000_000_000_000,
            delta: s.diff(&before),
            events,
        }));
        let key = ServerMsg::Snapshot(Box::new(Snapshot {
            ack: 0,
            tick: s.tick,
            checksum: s.checksum(),
            server_time_us: 1_700_000_000_000_000,
            state: s.clone(),
        }));
        for (i, f) in [Format::Json, Format::Bincode].into_iter().enumerate() {
            sums[i][0] += encode(f, &tick).len() as u64;
            sums[i][1] += encode(f, &key).len() as u64;
        }
    }
    for (i, name) in ["json", "bincode"].iter().enumerate() {
        println!(
            "delta share ({name}, 1000 ticks, 16 snakes, 200x100): average delta {} B, keyframe {} B: {:.1}%",
            sums[i][0] / 1000,
            sums[i][1] / 1000,
            sums[i][0] as f64 * 100.0 / sums[i][1] as f64
        );
    }
}

fn encoding(c: &mut Criterion) {
    delta_share();
    let (mut world, mut rng) = game(200);
    let before = world.state().clone();
    let inputs = turns(&world, &mut rng);
    let events = world.step(&inputs);
    let s = world.state().clone();
    let tick = TickFrame {
        ack: 0,
        tick: s.tick,
        checksum: s.checksum(),
        server_time_us: 1_700_000_000_000_000,
        delta: s.diff(&before),
        events,
    };
    c.bench_function("sse tick event: encode JSON + format (real game)", |b| {
        b.iter(|| {
            let data = encode(Format::Json, black_box(&tick));
            format_event("tick", Some(tick.tick), &data)
        })
    });
}

criterion_group!(benches, sim, encoding);
criterion_main!(benches);
