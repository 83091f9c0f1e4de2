//! A room's WebSocket spectator rings: per format, one bounded ring of
//! whole WebSocket frames (the tick's frame, then its chat lines), built
//! once per tick and only while that format has spectators. Server frames
//! are unmasked, so these bytes are what every spectator of that format
//! gets, framing included: the fan-out writes them as they are.

use bytes::Bytes;
use protocol::Format;
use tokio::sync::broadcast;

use crate::sse::SseChunk;

/// The rings, made when a format's first spectator arrives and dropped
/// while the room sleeps.
#[derive(Debug, Default)]
pub(crate) struct WsRings {
    live: [Option<broadcast::Sender<SseChunk>>; 2],
}

pub(crate) fn slot(f: Format) -> usize {
    match f {
        Format::Json => 0,
        Format::Bincode => 1,
    }
}

impl WsRings {
    /// Spectators reading either ring now.
    pub(crate) fn receivers(&self) -> usize {
        self.live
            .iter()
            .flatten()
            .map(broadcast::Sender::receiver_count)
            .sum()
    }

    /// Whether `format`'s ring has a reader (its frames are built only then).
    pub(crate) fn wanted(&self, format: Format) -> bool {
        self.live[slot(format)]
            .as_ref()
            .is_some_and(|s| s.receiver_count() > 0)
    }

    /// A reader of `format`'s ring from the next tick, making the ring if
    /// it has none yet.
    pub(crate) fn subscribe(
        &mut self,
        format: Format,
        queue: usize,
    ) -> broadcast::Receiver<SseChunk> {
        self.live[slot(format)]
            .get_or_insert_with(|| broadcast::Sender::new(queue.max(1)))
            .subscribe()
    }

    /// Sends one tick's frames to `format`'s readers.
    pub(crate) fn send(&self, format: Format, chunk: SseChunk) {
        if let Some(s) = &self.live[slot(format)] {
            // No reader left since `wanted`: nothing to do.
            let _ = s.send(chunk);
        }
    }

    /// Drops both rings (the room sleeps: nobody reads them).
    pub(crate) fn clear(&mut self) {
        self.live = [None, None];
    }
}

/// One tick's frames for one format: the tick, then each chat line.
pub(crate) fn tick_frames(format: Format, tick: &Bytes, chat: &[Bytes]) -> Bytes {
    let len = tick.len() + 10 + chat.iter().map(|c| c.len() + 10).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    let op = crate::upgrade::data_opcode(format);
    crate::upgrade::push_frame(&mut out, op, tick);
    for c in chat {
        crate::upgrade::push_frame(&mut out, op, c);
    }
    out.into()
}
