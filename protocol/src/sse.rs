//! The `text/event-stream` wire format, both ways: [`format_event`] for the
//! server (called once per tick, the bytes shared by every spectator) and
//! [`Parser`], an incremental parser that follows the WHATWG EventSource
//! rules for clients (TUI spectator, tests, load tool).
//!
//! Parsing rules implemented (HTML Living Standard, "Server-sent events"):
//! lines end in CRLF, LF or CR (a CR at the end of one chunk and an LF at the
//! start of the next are one line end); a leading UTF-8 BOM is dropped; a line
//! starting with `:` is a comment; `field: value` loses one leading space of
//! the value; a line without `:` is a field with an empty value; `data` lines
//! accumulate joined by LF; `id` sets the last event id (ignored if it holds
//! NUL) and persists across events; `retry` is honoured only when all ASCII
//! digits; a blank line dispatches (nothing if no `data` was seen); an event
//! without a final blank line at end of stream is discarded.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::codec::{CodecError, Format, decode};
use crate::msg::{ChatLine, ErrorMsg, ServerMsg, Snapshot, TickFrame, Welcome};

/// Reconnection delay the server announces with `retry:`, in milliseconds.
pub const RETRY_MS: u64 = 1000;

/// The data of `event: welcome`: the welcome's own fields plus the full
/// snapshot the stream starts from (`{"player_id":null,...,"snapshot":{...}}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SseWelcome {
    #[serde(flatten)]
    pub welcome: Welcome,
    pub snapshot: Snapshot,
}

/// What one SSE event means, decoded from its name and JSON data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SseMsg {
    /// `welcome`: the room and the world to start from.
    Welcome(Box<SseWelcome>),
    /// `snapshot`, `tick`, `chat` or `error`: the same message a WebSocket
    /// carries. (Since protocol 2 the scoreboard's changes ride in the
    /// tick's `delta.scores`; there is no `score` event.)
    Server(ServerMsg),
    /// An event name this version does not know (ignore it: forward compatible).
    Unknown,
}

/// Decodes a dispatched event by its name.
pub fn decode_event(ev: &Event) -> Result<SseMsg, CodecError> {
    let data = ev.data.as_bytes();
    Ok(match ev.event.as_str() {
        "welcome" => SseMsg::Welcome(Box::new(decode::<SseWelcome>(Format::Json, data)?)),
        "snapshot" => SseMsg::Server(ServerMsg::Snapshot(Box::new(decode::<Snapshot>(
            Format::Json,
            data,
        )?))),
        "tick" => SseMsg::Server(ServerMsg::Tick(Box::new(decode::<TickFrame>(
            Format::Json,
            data,
        )?))),
        "chat" => SseMsg::Server(ServerMsg::Chat(decode::<ChatLine>(Format::Json, data)?)),
        "error" => SseMsg::Server(ServerMsg::Error(decode::<ErrorMsg>(Format::Json, data)?)),
        _ => SseMsg::Unknown,
    })
}

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, `"message"` when none was given.
    pub event: String,
    /// The data lines joined by `\n`.
    pub data: String,
    /// The last event id in force when the event was dispatched (may be empty).
    pub id: String,
}

/// What the parser found in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Event(Event),
    /// A valid `retry:` field: reconnection time in milliseconds.
    Retry(u64),
    /// A comment line (text after the `:`), e.g. a keepalive.
    Comment(String),
}

/// Incremental event-stream parser: feed it chunks split anywhere.
#[derive(Clone, Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF starting this one is not a new line.
    after_cr: bool,
    started: bool,
    event: String,
    data: String,
    seen_data: bool,
    last_id: String,
}

impl Parser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last event id seen (what to send as `Last-Event-ID` on reconnect).
    pub fn last_event_id(&self) -> &str {
        &self.last_id
    }

    /// Feeds a chunk; returns what it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Item> {
        let mut out = Vec::new();
        let mut bytes = chunk;
        if bytes.is_empty() {
            return out;
        }
        if !self.started {
            // A BOM may itself arrive split: hold bytes until it is decided.
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            self.line.extend_from_slice(bytes);
            let n = self.line.len().min(3);
            if self.line[..n] == BOM[..n] && self.line.len() < 3 {
                return out;
            }
            if self.line.starts_with(BOM) {
                self.line.drain(..3);
            }
            self.started = true;
            let held = std::mem::take(&mut self.line);
            self.scan(&held, &mut out);
            return out;
        }
        if std::mem::take(&mut self.after_cr) && bytes[0] == b'\n' {
            bytes = &bytes[1..];
        }
        self.scan(bytes, &mut out);
        out
    }

    fn scan(&mut self, mut bytes: &[u8], out: &mut Vec<Item>) {
        while let Some(i) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&bytes[..i]);
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out);
            if bytes[i] == b'\r' {
                match bytes.get(i + 1) {
                    Some(b'\n') => bytes = &bytes[i + 2..],
                    Some(_) => bytes = &bytes[i + 1..],
                    None => {
                        self.after_cr = true;
                        bytes = &[];
                    }
                }
            } else {
                bytes = &bytes[i + 1..];
            }
        }
        self.line.extend_from_slice(bytes);
    }

    fn process_line(&mut self, raw: &[u8], out: &mut Vec<Item>) {
        let line = String::from_utf8_lossy(raw);
        if line.is_empty() {
            if self.seen_data {
                let event = if self.event.is_empty() {
                    "message".to_string()
                } else {
                    std::mem::take(&mut self.event)
                };
                out.push(Item::Event(Event {
                    event,
                    data: std::mem::take(&mut self.data),
                    id: self.last_id.clone(),
                }));
            }
            self.event.clear();
            self.data.clear();
            self.seen_data = false;
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            out.push(Item::Comment(
                comment.strip_prefix(' ').unwrap_or(comment).to_string(),
            ));
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.seen_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.seen_data = true;
            }
            "id" if !value.contains('\0') => self.last_id = value.to_string(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse() {
                    out.push(Item::Retry(ms));
                }
            }
            _ => {}
        }
    }
}

/// Formats one event: `event: NAME`, `id: ID` (when given), then `data:`
/// lines (one per line of `data`), then the blank line. Called once per tick
/// by the server; the returned bytes are shared by every spectator.
pub fn format_event(event: &str, id: Option<u64>, data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(data.len() + event.len() + 32);
    b.put_slice(b"event: ");
    b.put_slice(event.as_bytes());
    b.put_u8(b'\n');
    if let Some(id) = id {
        b.put_slice(b"id: ");
        b.put_slice(id.to_string().as_bytes());
        b.put_u8(b'\n');
    }
    for line in data.split(|&c| c == b'\n') {
        b.put_slice(b"data: ");
        b.put_slice(line.strip_suffix(b"\r").unwrap_or(line));
        b.put_u8(b'\n');
    }
    b.put_u8(b'\n');
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(event: &str, data: &str, id: &str) -> Item {
        Item::Event(Event {
            event: event.into(),
            data: data.into(),
            id: id.into(),
        })
    }

    const TRICKY: &[u8] = b"\xEF\xBB\xBFretry: 2500\r\n: keepalive\r\n\r\nevent: welcome\r\nid: 7\r\ndata: {\"a\":1}\r\n\r\ndata:first\rdata: second\r\rdata\n\nevent: tick\nid: 8\ndata: x\n\n: bye\nretry: 12a\nid: a\0b\ndata: after bad id\n\nevent: cut\ndata: never dispatched";

    fn expected() -> Vec<Item> {
        vec![
            Item::Retry(2500),
            Item::Comment("keepalive".into()),
            ev("welcome", "{\"a\":1}", "7"),
            ev("message", "first\nsecond", "7"),
            ev("message", "", "7"),
            ev("tick", "x", "8"),
            Item::Comment("bye".into()),
            ev("message", "after bad id", "8"),
        ]
    }

    #[test]
    fn parses_a_tricky_stream_in_one_chunk() {
        let mut p = Parser::new();
        assert_eq!(p.push(TRICKY), expected());
        assert_eq!(p.last_event_id(), "8");
    }

    #[test]
    fn parses_the_same_stream_byte_by_byte() {
        let mut p = Parser::new();
        let items: Vec<_> = TRICKY.iter().flat_map(|b| p.push(&[*b])).collect();
        assert_eq!(items, expected());
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_items(cuts in proptest::collection::vec(0usize..TRICKY.len(), 0..12)) {
            let mut cuts = cuts;
            cuts.sort();
            let mut p = Parser::new();
            let mut items = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([TRICKY.len()]) {
                items.extend(p.push(&TRICKY[at..c]));
                at = c;
            }
            prop_assert_eq!(items, expected());
        }

        #[test]
        fn formatted_events_parse_back(name in "[a-z]{1,10}", id in any::<u64>(), data in "[^\r]{0,60}") {
            let mut p = Parser::new();
            let items = p.push(&format_event(&name, Some(id), data.as_bytes()));
            prop_assert_eq!(items, vec![ev(&name, &data, &id.to_string())]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Parser::new().push(&bytes);
        }
    }

    #[test]
    fn empty_chunk_between_cr_and_lf_is_one_line_end() {
        let mut p = Parser::new();
        let mut items = p.push(b"event: a\r");
        items.extend(p.push(b""));
        items.extend(p.push(b"\ndata: 1\r\n\r\n"));
        assert_eq!(items, vec![ev("a", "1", "")]);
    }

    #[test]
    fn a_welcome_event_round_trips_with_its_snapshot() {
        let map = crate::Map::parse("#####\n#0.1#\n#####\n", "t").unwrap();
        let state = crate::WorldState::new(crate::Mode::Snake);
        let w = SseWelcome {
            welcome: Welcome {
                player_id: None,
                session: String::new(),
                token: String::new(),
                room: "lobby".into(),
                mode: crate::Mode::Snake,
                tick_rate: 20,
                speed: 10,
                map,
                resumed: false,
                name: "spectator".into(),
                server_time_us: 5,
            },
            snapshot: Snapshot {
                ack: 0,
                tick: 0,
                checksum: u64::MAX - 1,
                server_time_us: 5,
                state,
            },
        };
        let bytes = format_event("welcome", Some(0), &crate::codec::encode(Format::Json, &w));
        let items = Parser::new().push(&bytes);
        let [Item::Event(ev)] = &items[..] else {
            panic!("{items:?}")
        };
        assert!(ev.data.starts_with("{\"player_id\":null,"), "{}", ev.data);
        assert_eq!(decode_event(ev).unwrap(), SseMsg::Welcome(Box::new(w)));
    }

    #[test]
    fn multi_line_data_becomes_several_data_lines() {
        assert_eq!(
            &format_event("chat", None, b"a\nb")[..],
            b"event: chat\ndata: a\ndata: b\n\n"
        );
    }
}
