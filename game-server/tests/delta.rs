//! Protocol 2's lean deltas carry a real game exactly: 10,000 ticks of the
//! simulation with players joining, turning, boosting, dropping and leaving,
//! each tick's frame built and encoded as the room does it (once per format,
//! a player's `ack` spliced in), decoded and applied by a client in each
//! format, whose checksum must match on every tick.

use game_server::sim::{SimConfig, SimInput, SplitMix64, World};
use protocol::codec::decode;
use protocol::{Dir, Format, Mode, ServerMsg, SharedFrame, TickFrame, WorldState};

/// Scripted players 1..=8: join, leave, drop and come back, turn, boost.
fn inputs(r: &mut SplitMix64, present: &mut [bool; 8]) -> Vec<SimInput> {
    let mut out = Vec::new();
    for (k, here) in present.iter_mut().enumerate() {
        let id = k as u32 + 1;
        match r.next_u64() % 200 {
            0 if *here => {
                *here = false;
                out.push(SimInput::Leave { id });
            }
            0..=4 if !*here => {
                *here = true;
                out.push(SimInput::Join {
                    id,
                    name: format!("p{id}"),
                });
            }
            5 if *here => out.push(SimInput::Connected {
                id,
                connected: r.next_u64().is_multiple_of(2),
            }),
            6..=40 if *here => out.push(SimInput::Turn {
                id,
                dir: Dir::ALL[(r.next_u64() % 4) as usize],
            }),
            41..=44 if *here => out.push(SimInput::Boost {
                id,
                on: r.next_u64().is_multiple_of(2),
            }),
            _ => {}
        }
    }
    out
}

fn play(mode: Mode, ticks: u64) -> (u64, [u64; 2]) {
    let map = protocol::map::builtin("arena").unwrap();
    let mut world = World::new(map.clone(), SimConfig::for_map(mode, &map), 42);
    let mut r = SplitMix64::new(0x5eed);
    let mut present = [false; 8];
    let mut clients = [world.state().clone(), world.state().clone()];
    let mut bytes = [0u64; 2];
    let mut prev = world.state().clone();
    for _ in 0..ticks {
        let events = world.step(&inputs(&mut r, &mut present));
        let s = world.state();
        let frame = ServerMsg::Tick(Box::new(TickFrame {
            ack: 0,
            tick: s.tick,
            checksum: s.checksum(),
            server_time_us: 1_700_000_000_000_000 + s.tick,
            delta: s.diff(&prev),
            events,
        }));
        for (i, f) in [Format::Json, Format::Bincode].into_iter().enumerate() {
            let shared = SharedFrame::new(f, frame.clone());
            // Client 0 of each format plays (ack spliced), and checks it;
            // the spectator bytes must decode to the same frame without it.
            let wire = shared.with_ack(s.tick);
            bytes[i] += shared.bytes().len() as u64;
            let Ok(ServerMsg::Tick(t)) = decode::<ServerMsg>(f, &wire) else {
                panic!("{f:?} tick {} does not decode", s.tick);
            };
            assert_eq!(t.ack, s.tick);
            let Ok(ServerMsg::Tick(spect)) = decode::<ServerMsg>(f, &shared.bytes()) else {
                panic!("{f:?} spectator tick {} does not decode", s.tick);
            };
            assert_eq!((spect.ack, &spect.delta), (0, &t.delta));
            clients[i]
                .apply_frame(&t)
                .unwrap_or_else(|e| panic!("{f:?}: {e}"));
        }
        assert_eq!(&clients[0], s);
        prev = s.clone();
    }
    let last = world.state();
    assert!(last.snakes.iter().map(|s| s.score.deaths).sum::<u32>() > 0);
    (last.checksum(), bytes)
}

#[test]
fn ten_thousand_ticks_of_snake_rebuild_exactly_in_both_formats() {
    let (a, bytes) = play(Mode::Snake, 10_000);
    let (b, _) = play(Mode::Snake, 10_000);
    assert_eq!(a, b, "same seed, same game");
    // Lean: bincode is far smaller than JSON, and neither is empty.
    assert!(bytes[1] > 0 && bytes[1] * 3 < bytes[0], "{bytes:?}");
}

#[test]
fn tron_rounds_rebuild_exactly_in_both_formats() {
    play(Mode::Tron, 3_000);
}

#[test]
fn an_empty_world_state_diff_is_an_empty_delta() {
    let w = WorldState::new(Mode::Snake);
    assert!(w.diff(&w).is_empty());
}
