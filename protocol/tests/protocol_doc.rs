//! Keeps docs/PROTOCOL.md true: every example tagged `json client` must decode
//! as a client message and every `json server` one as a server message, and
//! every message variant must have at least one example; every `sse` example
//! must parse as an event stream whose events all decode.

use protocol::codec::{decode, encode};
use protocol::{ClientMsg, Format, ServerMsg};

const DOC: &str = include_str!("../../docs/PROTOCOL.md");

fn blocks(tag: &str) -> Vec<String> {
    fenced(&format!("json {tag}"))
}

fn fenced(info: &str) -> Vec<String> {
    let fence = format!("\n```{info}\n");
    let mut out = Vec::new();
    let mut rest = DOC;
    while let Some(start) = rest.find(&fence) {
        let body = &rest[start + fence.len()..];
        let end = body.find("```").expect("unterminated code block");
        out.push(body[..end].trim().to_string());
        rest = &body[end + 3..];
    }
    out
}

fn variant(json: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(json).unwrap();
    v.as_object().unwrap().keys().next().unwrap().clone()
}

#[test]
fn every_client_example_decodes_and_every_variant_has_one() {
    let examples = blocks("client");
    let mut seen = std::collections::BTreeSet::new();
    for ex in &examples {
        let msg: ClientMsg =
            decode(Format::Json, ex.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{ex}"));
        // The example survives bincode too.
        let back: ClientMsg = decode(Format::Bincode, &encode(Format::Bincode, &msg)).unwrap();
        assert_eq!(back, msg);
        seen.insert(variant(ex.as_bytes()));
    }
    let all = ["hello", "input", "ping", "chat", "leave", "resync"];
    assert_eq!(
        seen,
        all.iter().map(|s| s.to_string()).collect(),
        "client examples"
    );
}

#[test]
fn every_server_example_decodes_and_every_variant_has_one() {
    let mut seen = std::collections::BTreeSet::new();
    for ex in blocks("server") {
        let msg: ServerMsg =
            decode(Format::Json, ex.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{ex}"));
        let back: ServerMsg = decode(Format::Bincode, &encode(Format::Bincode, &msg)).unwrap();
        assert_eq!(back, msg);
        seen.insert(variant(ex.as_bytes()));
    }
    let all = ["welcome", "snapshot", "tick", "pong", "chat", "error"];
    assert_eq!(
        seen,
        all.iter().map(|s| s.to_string()).collect(),
        "server examples"
    );
}

#[test]
fn every_sse_example_parses_and_decodes() {
    use protocol::sse::{Item, Parser, SseMsg, decode_event};
    let examples = fenced("sse");
    assert!(!examples.is_empty());
    let mut names = std::collections::BTreeSet::new();
    for ex in examples {
        let mut text = ex.clone();
        text.push_str("\n\n");
        for item in Parser::new().push(text.as_bytes()) {
            if let Item::Event(ev) = item {
                let msg = decode_event(&ev).unwrap_or_else(|e| panic!("{e}\n{}", ev.data));
                assert_ne!(msg, SseMsg::Unknown, "{}", ev.event);
                names.insert(ev.event);
            }
        }
    }
    for n in ["welcome", "tick", "chat", "error"] {
        assert!(names.contains(n), "an example of event: {n}");
    }
    assert!(!names.contains("score"), "protocol 2 has no score event");
}

#[test]
fn the_session_examples_decode_as_poll_and_send_batches() {
    use protocol::poll::{PollBatch, SendBatch};
    let polls = blocks("poll");
    assert!(!polls.is_empty(), "a poll example");
    for ex in polls {
        let b: PollBatch =
            decode(Format::Json, ex.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{ex}"));
        assert_eq!(b.next, b.messages.last().map_or(b.next, |m| m.seq));
    }
    let sends = blocks("send");
    assert!(!sends.is_empty(), "a send example");
    for ex in sends {
        let b: SendBatch =
            decode(Format::Json, ex.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{ex}"));
        assert!(b.messages.windows(2).all(|w| w[0].seq < w[1].seq));
    }
}
