//! A bounded fuzz of the same entry points `cargo fuzz` runs (see
//! `protocol::fuzz` and the README): arbitrary bytes and mutations of valid
//! inputs, a few hundred cases each so it stays fast in `cargo test`.

#[allow(dead_code)] // each test file uses some of the shared strategies
mod strategies;

use proptest::prelude::*;
use protocol::codec::{Format, encode};
use strategies::{client_msg, map, server_msg, tick_frame};

/// Bytes that look like an event stream: field lines, comments, every kind
/// of line end, a BOM, stray bytes.
fn sse_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data: ".to_vec()),
        Just(b"data:".to_vec()),
        Just(b"event: tick".to_vec()),
        Just(b"event: welcome".to_vec()),
        Just(b"id: 17".to_vec()),
        Just(b"id: a\0b".to_vec()),
        Just(b"retry: 1000".to_vec()),
        Just(b"retry: 1x".to_vec()),
        Just(b": keepalive".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"{\"tick\":1}".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

/// Text that looks like a map file.
fn map_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just("#".to_string()),
        Just(".".to_string()),
        Just("0".to_string()),
        Just("7".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("; name = x\n".to_string()),
        Just("; mode = tron\n".to_string()),
        Just("; food = 3\n".to_string()),
        Just("; food = -1\n".to_string()),
        Just(";\n".to_string()),
        Just("é".to_string()),
        "[ -~]{0,3}",
    ];
    proptest::collection::vec(piece, 0..200).prop_map(|v| v.concat().into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn codecs_take_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        protocol::fuzz::codec(Format::Json, &bytes);
        protocol::fuzz::codec(Format::Bincode, &bytes);
    }

    #[test]
    fn codecs_take_mutated_messages(
        c in client_msg(),
        s in server_msg(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        for f in [Format::Json, Format::Bincode] {
            for mut bytes in [encode(f, &c).to_vec(), encode(f, &s).to_vec()] {
                protocol::fuzz::codec(f, &bytes);
                let i = at.index(bytes.len());
                bytes[i] = byte;
                protocol::fuzz::codec(f, &bytes);
                protocol::fuzz::codec(f, &bytes[..cut.index(bytes.len() + 1)]);
            }
        }
    }

    #[test]
    fn deltas_apply_from_any_bytes(
        t in tick_frame(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        noise in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        for f in [Format::Json, Format::Bincode] {
            let mut bytes = encode(f, &t).to_vec();
            protocol::fuzz::delta(f, &bytes);
            let i = at.index(bytes.len());
            bytes[i] = byte;
            protocol::fuzz::delta(f, &bytes);
            protocol::fuzz::delta(f, &noise);
        }
    }

    #[test]
    fn the_sse_parser_takes_any_stream(seed in any::<u8>(), stream in sse_like()) {
        let mut data = vec![seed];
        data.extend(stream);
        protocol::fuzz::sse(&data);
    }

    #[test]
    fn the_sse_parser_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        protocol::fuzz::sse(&bytes);
    }

    #[test]
    fn the_map_parser_takes_any_text(text in map_like()) {
        protocol::fuzz::map(&text);
    }

    #[test]
    fn the_map_parser_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        protocol::fuzz::map(&bytes);
    }

    #[test]
    fn the_map_parser_takes_mutated_maps(m in map(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = m.rows.join("\n").into_bytes();
        protocol::fuzz::map(&bytes);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        protocol::fuzz::map(&bytes);
    }
}

#[test]
fn the_built_in_maps_pass_the_map_checks() {
    for (_, text) in protocol::map::BUILTIN_MAPS {
        protocol::fuzz::map(text.as_bytes());
    }
}
