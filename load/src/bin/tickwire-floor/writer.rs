//! The floor's fan-out: one pre-built frame per tick and wire, one writer
//! thread per core, one non-blocking `write` per socket per tick.

use std::collections::VecDeque;
use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use protocol::codec::encode;
use protocol::sse::format_event;
use protocol::{Format, GameEvent, Mode, ServerMsg, TickFrame, Welcome};

/// How a subscriber reads frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    Sse,
    WsJson,
    WsBincode,
}

/// Padding that brings a tick frame to the asked-for size: a `joined`
/// event whose name is that many bytes long (a real `GameEvent`, so the
/// load tool decodes the frame as it decodes the server's).
#[derive(Clone, Copy, Debug, Default)]
pub struct Shape {
    sse_pad: Option<usize>,
    ws_pad: Option<usize>,
}

fn frame(tick: u64, now: u64, pad: Option<usize>) -> TickFrame {
    TickFrame {
        ack: 0,
        tick,
        checksum: 0x5eed_5eed_5eed_5eed,
        server_time_us: now,
        delta: Default::default(),
        events: pad
            .map(|n| {
                vec![GameEvent::Joined {
                    id: 1,
                    name: "x".repeat(n),
                }]
            })
            .unwrap_or_default(),
    }
}

impl Shape {
    /// The padding that makes an SSE tick event `sse_bytes` long and a JSON
    /// WebSocket tick payload `ws_bytes` long (measured on a frame with a
    /// six-digit tick, as in a run; 0 or too small: no padding).
    pub fn fitted(sse_bytes: usize, ws_bytes: usize) -> Shape {
        let now = protocol_now_us();
        let sse_len = |pad| {
            let data = encode(Format::Json, &frame(100_000, now, pad));
            format_event("tick", Some(100_000), &data).len()
        };
        let ws_len = |pad| {
            encode(
                Format::Json,
                &ServerMsg::Tick(Box::new(frame(100_000, now, pad))),
            )
            .len()
        };
        let fit = |want: usize, len: &dyn Fn(Option<usize>) -> usize| {
            let base = len(Some(0));
            (want >= base).then(|| want - base)
        };
        Shape {
            sse_pad: fit(sse_bytes, &sse_len),
            ws_pad: fit(ws_bytes, &ws_len),
        }
    }
}

/// Unix microseconds now (the frames' `server_time_us`).
fn protocol_now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A server WebSocket frame (unmasked, so one copy serves every socket).
pub fn ws_frame(wire: Wire, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(if wire == Wire::WsBincode { 0x82 } else { 0x81 });
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n < 65_536 => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// One tick's bytes, built once for every subscriber.
#[derive(Debug)]
pub struct Frames {
    pub tick: u64,
    pub server_time_us: u64,
    pub sse: Vec<u8>,
    pub ws_json: Vec<u8>,
    pub ws_bincode: Vec<u8>,
    /// Length of the JSON WebSocket payload (without framing).
    pub ws_json_payload: usize,
}

impl Frames {
    /// Tick `tick`'s frames, stamped now.
    pub fn build(tick: u64, shape: &Shape) -> Arc<Frames> {
        let now = protocol_now_us();
        let sse_data = encode(Format::Json, &frame(tick, now, shape.sse_pad));
        let ws = ServerMsg::Tick(Box::new(frame(tick, now, shape.ws_pad)));
        let ws_json = encode(Format::Json, &ws);
        Arc::new(Frames {
            tick,
            server_time_us: now,
            sse: format_event("tick", Some(tick), &sse_data).to_vec(),
            ws_json_payload: ws_json.len(),
            ws_json: ws_frame(Wire::WsJson, &ws_json),
            ws_bincode: ws_frame(Wire::WsBincode, &encode(Format::Bincode, &ws)),
        })
    }

    fn bytes(&self, wire: Wire) -> &[u8] {
        match wire {
            Wire::Sse => &self.sse,
            Wire::WsJson => &self.ws_json,
            Wire::WsBincode => &self.ws_bincode,
        }
    }
}

/// Ticks a writer that fell behind can still catch up on: like the
/// server's ring, a late writer sends every tick late rather than skip one.
const HISTORY: usize = 100;

/// The latest frames (and a short history) and a wake-up for the writers.
pub struct Beat {
    latest: Mutex<VecDeque<Arc<Frames>>>,
    ticked: Condvar,
    welcome_json: Vec<u8>,
    welcome_bincode: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A writer that panicked leaves plain data behind: keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Beat {
    /// A beat starting at `first`; the WebSocket welcome (on `map`) is built once.
    pub fn new(first: Arc<Frames>, map: protocol::Map) -> Beat {
        let welcome = ServerMsg::Welcome(Box::new(Welcome {
            player_id: None,
            session: "floor".into(),
            token: String::new(),
            room: "floor".into(),
            mode: Mode::Snake,
            tick_rate: 20,
            speed: 0,
            map,
            resumed: false,
            name: "floor".into(),
            server_time_us: first.server_time_us,
        }));
        Beat {
            latest: Mutex::new(VecDeque::from([first])),
            ticked: Condvar::new(),
            welcome_json: ws_frame(Wire::WsJson, &encode(Format::Json, &welcome)),
            welcome_bincode: ws_frame(Wire::WsBincode, &encode(Format::Bincode, &welcome)),
        }
    }

    /// Publishes a tick's frames and wakes every writer.
    pub fn publish(&self, frames: Arc<Frames>) {
        {
            let mut h = lock(&self.latest);
            if h.len() >= HISTORY {
                h.pop_front();
            }
            h.push_back(frames);
        }
        self.ticked.notify_all();
    }

    /// The latest frames.
    pub fn latest(&self) -> Arc<Frames> {
        let h = lock(&self.latest);
        // Invariant: the history starts with one frame and never empties.
        h.back().cloned().expect("the beat always has a frame")
    }

    /// The frames after tick `after` still in the history, in order,
    /// waiting for at least one.
    fn after(&self, after: u64, out: &mut Vec<Arc<Frames>>) {
        let mut h = lock(&self.latest);
        while h.back().is_none_or(|f| f.tick <= after) {
            h = self.ticked.wait(h).unwrap_or_else(|e| e.into_inner());
        }
        out.extend(h.iter().filter(|f| f.tick > after).cloned());
    }

    /// The WebSocket welcome in `wire`.
    pub fn welcome(&self, wire: Wire) -> Vec<u8> {
        match wire {
            Wire::WsBincode => self.welcome_bincode.clone(),
            _ => self.welcome_json.clone(),
        }
    }
}

/// One subscriber socket.
pub struct Sub {
    stream: TcpStream,
    wire: Wire,
    /// The rest of a frame the socket could not take whole (empty on the
    /// fast path; the only per-socket allocation, and only when slow).
    rest: Vec<u8>,
}

impl Sub {
    /// A subscriber, switched to non-blocking writes.
    pub fn new(stream: TcpStream, wire: Wire) -> std::io::Result<Sub> {
        stream.set_nonblocking(true)?;
        Ok(Sub {
            stream,
            wire,
            rest: Vec::new(),
        })
    }

    /// Writes `bytes` (or first the rest of an earlier frame); false when
    /// the peer is gone.
    fn write(&mut self, bytes: &[u8]) -> bool {
        if !self.rest.is_empty() {
            match self.stream.write(&self.rest) {
                Ok(n) => {
                    self.rest.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
            if !self.rest.is_empty() {
                // Still behind: this frame is skipped (the reader sees a gap).
                return true;
            }
        }
        match self.stream.write(bytes) {
            Ok(n) if n == bytes.len() => true,
            Ok(n) => {
                self.rest.extend_from_slice(&bytes[n..]);
                true
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => true,
            Err(_) => false,
        }
    }
}

/// The writer threads, each with its own inbox of new subscribers.
pub struct Writers {
    inboxes: Vec<Arc<Mutex<Vec<Sub>>>>,
    next: std::sync::atomic::AtomicUsize,
}

impl Writers {
    /// Starts `n` writer threads on `beat`.
    pub fn start(n: usize, beat: Arc<Beat>) -> Writers {
        let inboxes: Vec<_> = (0..n).map(|_| Arc::new(Mutex::new(Vec::new()))).collect();
        for (i, inbox) in inboxes.iter().enumerate() {
            let inbox = inbox.clone();
            let beat = beat.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("floor-writer-{i}"))
                .spawn(move || write_loop(&beat, &inbox));
            if let Err(e) = spawned {
                eprintln!("tickwire-floor: cannot start writer {i}: {e}");
            }
        }
        Writers {
            inboxes,
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Hands a subscriber to the next writer in turn.
    pub fn add(&self, sub: Sub) {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.inboxes.len();
        lock(&self.inboxes[i]).push(sub);
    }
}

fn write_loop(beat: &Beat, inbox: &Mutex<Vec<Sub>>) {
    let mut subs: Vec<Sub> = Vec::new();
    let mut last = beat.latest().tick;
    let mut due = Vec::new();
    loop {
        beat.after(last, &mut due);
        subs.append(&mut lock(inbox));
        for frames in due.drain(..) {
            last = frames.tick;
            subs.retain_mut(|s| s.write(frames.bytes(s.wire)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_padded_to_the_asked_size() {
        let shape = Shape::fitted(300, 280);
        let f = Frames::build(123_456, &shape);
        assert_eq!(f.sse.len(), 300);
        assert_eq!(f.ws_json_payload, 280);
        // The payload decodes as the server's own tick frame would.
        let payload = &f.ws_json[4..];
        assert!(matches!(
            protocol::codec::decode::<ServerMsg>(Format::Json, payload),
            Ok(ServerMsg::Tick(t)) if t.tick == 123_456
        ));
    }

    #[test]
    fn a_frame_too_small_to_pad_is_left_bare() {
        let f = Frames::build(1, &Shape::fitted(10, 10));
        assert!(f.sse.len() > 10);
        assert!(f.sse.starts_with(b"event: tick\nid: 1\ndata: {"));
    }
}
