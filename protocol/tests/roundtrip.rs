//! Every message survives both formats; deltas rebuild worlds exactly; the
//! shared-frame ack splice equals a direct encoding; decoding junk never panics.

mod strategies;

use proptest::prelude::*;
use protocol::codec::{decode, encode};
use protocol::*;
use strategies::*;

const FORMATS: [Format; 2] = [Format::Json, Format::Bincode];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn client_messages_round_trip(msg in client_msg()) {
        for f in FORMATS {
            let bytes = encode(f, &msg);
            let back: ClientMsg = decode(f, &bytes).unwrap();
            prop_assert_eq!(&back, &msg, "{:?}", f);
        }
    }

    #[test]
    fn server_messages_round_trip(msg in server_msg()) {
        for f in FORMATS {
            let bytes = encode(f, &msg);
            let back: ServerMsg = decode(f, &bytes).unwrap();
            prop_assert_eq!(&back, &msg, "{:?}", f);
        }
    }

    #[test]
    fn diff_then_apply_rebuilds_the_next_world((old, new) in world_and_next()) {
        let delta = new.diff(&old);
        let mut rebuilt = old.clone();
        rebuilt.apply(&delta).unwrap();
        rebuilt.tick = new.tick;
        prop_assert_eq!(rebuilt.checksum(), new.checksum());
        prop_assert_eq!(rebuilt, new);
    }

    #[test]
    fn a_delta_through_either_format_rebuilds_the_next_world((old, new) in world_and_next()) {
        for f in FORMATS {
            let frame = TickFrame {
                ack: 0,
                tick: new.tick,
                checksum: new.checksum(),
                server_time_us: 1,
                delta: new.diff(&old),
                events: vec![],
            };
            let back: ServerMsg = decode(f, &encode(f, &ServerMsg::Tick(Box::new(frame)))).unwrap();
            let ServerMsg::Tick(back) = back else { panic!("a tick") };
            let mut rebuilt = old.clone();
            rebuilt.apply(&back.delta).unwrap();
            rebuilt.tick = back.tick;
            prop_assert_eq!(rebuilt.checksum(), back.checksum, "{:?}", f);
            prop_assert_eq!(&rebuilt, &new, "{:?}", f);
        }
    }

    #[test]
    fn diff_between_unrelated_worlds_still_rebuilds(old in world(), mut new in world()) {
        new.mode = old.mode; // a room's mode never changes
        let mut rebuilt = old.clone();
        rebuilt.apply(&new.diff(&old)).unwrap();
        rebuilt.tick = new.tick;
        prop_assert_eq!(rebuilt, new);
    }

    #[test]
    fn shared_frame_with_ack_equals_direct_encoding(frame in tick_frame(), snap in snapshot(), ack in any::<u64>()) {
        for f in FORMATS {
            for msg in [ServerMsg::Tick(Box::new(frame.clone())), ServerMsg::Snapshot(Box::new(snap.clone()))] {
                let shared = SharedFrame::new(f, msg.clone());
                let mut direct = msg.clone();
                match &mut direct {
                    ServerMsg::Tick(t) => t.ack = ack,
                    ServerMsg::Snapshot(s) => s.ack = ack,
                    _ => unreachable!(),
                }
                prop_assert_eq!(shared.with_ack(ack), encode(f, &direct), "{:?}", f);
                let (head, tail) = shared.parts(ack);
                prop_assert_eq!([&head[..], &tail[..]].concat(), shared.with_ack(ack).to_vec());
                let back: ServerMsg = decode(f, &shared.with_ack(ack)).unwrap();
                prop_assert_eq!(back, direct);
            }
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for f in FORMATS {
            let _ = decode::<ClientMsg>(f, &bytes);
            let _ = decode::<ServerMsg>(f, &bytes);
        }
    }

    #[test]
    fn mutated_valid_messages_never_panic(msg in server_msg(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        for f in FORMATS {
            let mut bytes = encode(f, &msg).to_vec();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let _ = decode::<ServerMsg>(f, &bytes);
            let _ = decode::<ServerMsg>(f, &bytes[..i]);
        }
    }
}

#[test]
fn json_shape_matches_the_contract() {
    let hello: ClientMsg = decode(
        Format::Json,
        br#"{"hello": {"version": 1, "name": "alice"}}"#,
    )
    .unwrap();
    assert_eq!(
        hello,
        ClientMsg::Hello(Hello {
            version: 1,
            name: "alice".into(),
            role: Role::Player,
            token: None
        })
    );
    let spect: ClientMsg = decode(
        Format::Json,
        br#"{"hello": {"version": 1, "name": "eve", "role": "spectator"}}"#,
    )
    .unwrap();
    assert!(matches!(
        spect,
        ClientMsg::Hello(Hello {
            role: Role::Spectator,
            ..
        })
    ));
    let input: ClientMsg =
        decode(Format::Json, br#"{"input": {"seq": 3, "dir": "left"}}"#).unwrap();
    assert_eq!(
        input,
        ClientMsg::Input(Input {
            seq: 3,
            dir: Dir::Left,
            boost: false
        })
    );
    let leave: ClientMsg = decode(Format::Json, br#"{"leave": {}}"#).unwrap();
    assert_eq!(leave, ClientMsg::Leave {});
    let pong = encode(
        Format::Json,
        &ServerMsg::Pong(Pong {
            t: 5,
            server_time_us: 9,
        }),
    );
    assert_eq!(&pong[..], br#"{"pong":{"t":5,"server_time_us":9}}"#);
    let tick = encode(
        Format::Json,
        &ServerMsg::Tick(Box::new(TickFrame {
            ack: 2,
            tick: 17,
            checksum: 1,
            server_time_us: 3,
            delta: Delta::default(),
            events: vec![],
        })),
    );
    let text = std::str::from_utf8(&tick).unwrap();
    assert_eq!(
        text,
        r#"{"tick":{"ack":2,"tick":17,"checksum":1,"server_time_us":3,"delta":{}}}"#
    );
    // A spectator's frame (ack 0) carries no ack; cells are pairs.
    let mut delta = Delta::default();
    delta.food_added.push(Pos::new(4, 1));
    let tick = encode(
        Format::Json,
        &ServerMsg::Tick(Box::new(TickFrame {
            ack: 0,
            tick: 18,
            checksum: 1,
            server_time_us: 3,
            delta,
            events: vec![],
        })),
    );
    assert_eq!(
        std::str::from_utf8(&tick).unwrap(),
        r#"{"tick":{"tick":18,"checksum":1,"server_time_us":3,"delta":{"food_added":[[4,1]]}}}"#
    );
}

#[test]
fn a_v1_hello_is_told_both_versions() {
    assert_eq!(PROTOCOL_VERSION, 2);
    assert_eq!(
        version_mismatch(1),
        "this server speaks protocol 2; you have 1"
    );
}

#[test]
fn bincode_trailing_bytes_and_huge_lengths_are_errors() {
    let mut bytes = encode(Format::Bincode, &ClientMsg::Ping(Ping { t: 1 })).to_vec();
    bytes.push(0);
    assert!(matches!(
        decode::<ClientMsg>(Format::Bincode, &bytes),
        Err(CodecError::Trailing(1))
    ));
    // A chat claiming a 2^60-byte string must fail fast, not allocate.
    let mut evil = vec![3u8, 253];
    evil.extend_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(decode::<ClientMsg>(Format::Bincode, &evil).is_err());
}

#[test]
fn checksum_changes_with_any_visible_change() {
    let mut w = WorldState::new(Mode::Snake);
    let a = w.checksum();
    w.food.push(Pos::new(1, 2));
    let b = w.checksum();
    w.tick += 1;
    let c = w.checksum();
    assert!(a != b && b != c && a != c);
}

#[test]
fn apply_frame_detects_gaps_and_desyncs() {
    let w0 = WorldState::new(Mode::Snake);
    let mut w1 = w0.clone();
    w1.tick = 1;
    w1.food.push(Pos::new(4, 4));
    let frame = TickFrame {
        ack: 0,
        tick: 1,
        checksum: w1.checksum(),
        server_time_us: 0,
        delta: w1.diff(&w0),
        events: vec![],
    };
    let mut client = w0.clone();
    client.apply_frame(&frame).unwrap();
    assert_eq!(client, w1);
    // Same frame again: it no longer follows.
    assert!(matches!(
        client.apply_frame(&frame),
        Err(state::DeltaError::Gap { have: 1, got: 1 })
    ));
    let mut wrong = frame.clone();
    wrong.checksum ^= 1;
    let mut client = w0;
    assert!(matches!(
        client.apply_frame(&wrong),
        Err(state::DeltaError::Desync { .. })
    ));
}
