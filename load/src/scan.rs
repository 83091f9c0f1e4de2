//! A lean reader of the server's SSE stream, sans-IO: it finds each
//! event's name, id and `server_time_us` without allocating or decoding the
//! JSON, because ten thousand spectators at 20 Hz are 200,000 events a
//! second and the load tool must cost less than the server it measures.
//!
//! It relies on what the server promises (CONTRACT.md): LF line ends,
//! `event:` then `id:` then one `data:` line per event, and
//! `server_time_us` as a top-level field of ticks and snapshots. A test
//! checks it against `protocol::sse::Parser` on the server's own formatting.

/// One event as the scanner saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub kind: Kind,
    /// The `id:` (the tick), if any.
    pub id: Option<u64>,
    /// The first `"server_time_us":` of the data, if any.
    pub server_time_us: Option<u64>,
}

/// Event names the load tool cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Welcome,
    Snapshot,
    Tick,
    Error,
    Other,
}

/// Accumulates chunks and yields complete events.
#[derive(Debug, Default)]
pub struct Scanner {
    /// An event split across chunks (usually empty: the server writes each
    /// tick's events as one chunk, which is scanned in place).
    buf: Vec<u8>,
}

/// How far into a `data:` line `server_time_us` can be for a tick or a
/// snapshot (`data: {"tick":N,"checksum":N,"server_time_us":`, with an
/// `"ack":N,` first on a player's frames);
/// only a welcome, which has the map first, needs the whole line.
const EARLY: usize = 160;

fn number_after(hay: &[u8], key: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(&hay[..hay.len().min(EARLY)], key)
        .or_else(|| memchr::memmem::find(hay, key))?
        + key.len();
    let digits = hay[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&hay[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

fn event(block: &[u8]) -> Option<Seen> {
    let mut kind = None;
    let mut id = None;
    let mut server_time_us = None;
    let lines = std::iter::successors(Some(block), |rest| {
        memchr::memchr(b'\n', rest).map(|i| &rest[i + 1..])
    })
    .map(|rest| &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())]);
    for line in lines {
        if let Some(name) = line.strip_prefix(b"event:") {
            kind = Some(match name.trim_ascii() {
                b"welcome" => Kind::Welcome,
                b"snapshot" => Kind::Snapshot,
                b"tick" => Kind::Tick,
                b"error" => Kind::Error,
                _ => Kind::Other,
            });
        } else if let Some(v) = line.strip_prefix(b"id:") {
            id = std::str::from_utf8(v.trim_ascii()).ok()?.parse().ok();
        } else if line.starts_with(b"data:") {
            if matches!(kind, Some(Kind::Other | Kind::Error)) {
                // Chat and error events: nothing to find in their data.
                continue;
            }
            server_time_us = number_after(line, b"\"server_time_us\":");
        }
    }
    // Comments-only blocks (keepalives) and `retry:` are not events.
    kind.map(|kind| Seen {
        kind,
        id,
        server_time_us,
    })
}

/// Calls `each` for every complete event in `bytes`; returns how many
/// bytes it consumed (the rest is an incomplete event).
fn events(bytes: &[u8], each: &mut impl FnMut(Seen)) -> usize {
    let mut start = 0;
    for end in memchr::memmem::find_iter(bytes, b"\n\n") {
        if end < start {
            // The second LF of a blank-line run already consumed.
            continue;
        }
        if let Some(seen) = event(&bytes[start..end]) {
            each(seen);
        }
        start = end + 2;
    }
    start
}

impl Scanner {
    /// Feeds a chunk; calls `each` for every event it completes.
    pub fn push(&mut self, chunk: &[u8], mut each: impl FnMut(Seen)) {
        if self.buf.is_empty() {
            let used = events(chunk, &mut each);
            self.buf.extend_from_slice(&chunk[used..]);
            return;
        }
        self.buf.extend_from_slice(chunk);
        let used = events(&self.buf, &mut each);
        self.buf.drain(..used);
        if self.buf.capacity() > 64 * 1024 && self.buf.len() < 1024 {
            // A keyframe grew the buffer: give the memory back.
            self.buf.shrink_to(4 * 1024);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::sse::{Item, Parser, SseMsg, decode_event, format_event};
    use protocol::{ServerMsg, TickFrame};

    fn tick(t: u64) -> Vec<u8> {
        let frame = TickFrame {
            ack: 0,
            tick: t,
            checksum: 7,
            server_time_us: 1_000_000 + t,
            delta: Default::default(),
            events: Vec::new(),
        };
        let data = protocol::codec::encode(protocol::Format::Json, &frame);
        format_event("tick", Some(t), &data).to_vec()
    }

    #[test]
    fn agrees_with_the_protocol_parser_on_split_chunks() {
        let mut stream = b"retry: 1000\n\n: keepalive\n\n".to_vec();
        for t in 1..=5 {
            stream.extend(tick(t));
        }
        let mut want = Vec::new();
        for item in Parser::new().push(&stream) {
            if let Item::Event(ev) = item
                && let Ok(SseMsg::Server(ServerMsg::Tick(f))) = decode_event(&ev)
            {
                want.push((f.tick, f.server_time_us));
            }
        }
        for split in [1, 7, 50, stream.len()] {
            let mut s = Scanner::default();
            let mut got = Vec::new();
            for chunk in stream.chunks(split) {
                s.push(chunk, |e| {
                    assert_eq!(e.kind, Kind::Tick);
                    got.push((e.id.unwrap(), e.server_time_us.unwrap()));
                });
            }
            assert_eq!(got, want, "split {split}");
        }
        assert_eq!(want.len(), 5);
    }
}
