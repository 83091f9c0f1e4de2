//! One writer of one room: a task that owns its share of the room's SSE
//! spectators and, per tick, hands the room's shared bytes to each socket
//! with one non-blocking write. It is woken once per tick (by the room's
//! ring), never once per spectator.
//!
//! The ring's receivers count the room's SSE spectators and keep it awake,
//! so the shard keeps exactly one per spectator it owns: one it reads
//! (`lead`) and the others unread (`spare`, which cost a place in the
//! ring's count and nothing per tick).

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, MissedTickBehavior};

use super::{Admission, Fanout, Spectator, SseRooms, last_id, slow};
use crate::sse::{KEEPALIVE, SseChunk, SseRoom};

/// Spectators written between two yields to the runtime (a few hundred
/// microseconds of writes).
const BATCH: usize = 128;

/// What a write to one spectator came to.
enum Wrote {
    /// The whole frame.
    Whole,
    /// Part of it or none: the rest goes on in the slow path.
    Short(Bytes),
    /// The peer is gone.
    Gone,
}

fn write(s: &Spectator, bytes: &Bytes) -> Wrote {
    match s.conn.try_write(bytes) {
        Ok(n) if n == bytes.len() => Wrote::Whole,
        Ok(n) => Wrote::Short(bytes.slice(n..)),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Wrote::Short(bytes.clone()),
        Err(_) => Wrote::Gone,
    }
}

struct Shard<L: SseRooms> {
    fanout: Arc<Fanout<L>>,
    id: String,
    room: L::Room,
    spectators: Vec<Spectator>,
    /// The ring this shard reads; `None` while it has no spectator.
    lead: Option<broadcast::Receiver<SseChunk>>,
    /// One unread receiver per spectator but one (see the module docs).
    spare: Vec<broadcast::Receiver<SseChunk>>,
    /// The last tick the shard wrote.
    last: u64,
}

impl<L: SseRooms> Shard<L> {
    /// Gives up the ring place of one spectator that left.
    fn release(&mut self) {
        if self.spare.pop().is_none() {
            self.lead = None;
        }
    }

    /// Spectator `i` leaves for the slow path with `rest` to finish.
    fn slow_down(&mut self, i: usize, rest: Bytes) {
        let s = self.spectators.swap_remove(i);
        self.release();
        self.fanout.spawn(slow::catch_up(
            self.fanout.clone(),
            self.id.clone(),
            self.room.clone(),
            s,
            rest,
        ));
    }

    /// Spectator `i`'s peer is gone.
    fn gone(&mut self, i: usize) {
        self.spectators.swap_remove(i);
        self.release();
    }

    fn admit(&mut self, a: Admission) {
        let Admission {
            mut spectator,
            mut live,
        } = a;
        if self.lead.is_none() {
            self.last = spectator.after;
            self.lead = Some(live);
            self.spectators.push(spectator);
            return;
        }
        // The ticks this shard already wrote past the spectator's bytes
        // come from its own receiver, which starts where those end.
        let mut short = None;
        while spectator.after < self.last && short.is_none() {
            match live.try_recv() {
                Ok(c) if c.tick <= spectator.after => {}
                Ok(c) if c.tick == spectator.after + 1 => match write(&spectator, &c.bytes) {
                    Wrote::Whole => spectator.after = c.tick,
                    Wrote::Short(rest) => short = Some(rest),
                    Wrote::Gone => return,
                },
                // Lagged, or a gap: only a keyframe helps.
                _ => short = Some(Bytes::new()),
            }
        }
        self.spare.push(live);
        self.spectators.push(spectator);
        if let Some(rest) = short {
            self.slow_down(self.spectators.len() - 1, rest);
        }
    }

    /// Writes one tick to every spectator that has the one before. It
    /// yields to the runtime every [`BATCH`] writes, so a big room's
    /// fan-out never holds a worker for long: the room's tick and the
    /// players' connections run between batches.
    async fn tick(&mut self, chunk: &SseChunk) {
        self.last = chunk.tick;
        let mut whole = 0u64;
        let mut i = 0;
        let mut tried = 0usize;
        while i < self.spectators.len() {
            tried += 1;
            if tried.is_multiple_of(BATCH) {
                tokio::task::yield_now().await;
            }
            let s = &mut self.spectators[i];
            if chunk.tick <= s.after {
                i += 1;
                continue;
            }
            if chunk.tick > s.after + 1 {
                self.slow_down(i, Bytes::new());
                continue;
            }
            match write(s, &chunk.bytes) {
                Wrote::Whole => {
                    s.after = chunk.tick;
                    whole += 1;
                    i += 1;
                }
                Wrote::Short(rest) => self.slow_down(i, rest),
                Wrote::Gone => self.gone(i),
            }
        }
        // Counted once per tick for the whole shard, not per spectator.
        if let Some(s) = self.spectators.first() {
            s.metrics
                .sent
                .sent(whole, whole as usize * chunk.bytes.len(), chunk.produced);
        }
    }

    fn keepalive(&mut self) {
        let mut i = 0;
        while i < self.spectators.len() {
            match write(&self.spectators[i], &KEEPALIVE) {
                Wrote::Whole => i += 1,
                // A comment cut short still needs finishing first.
                Wrote::Short(rest) => self.slow_down(i, rest),
                Wrote::Gone => self.gone(i),
            }
        }
    }

    /// The room closed: every spectator gets the closing event, with the
    /// id of the last tick it got, written under the stall timeout.
    fn close(&mut self) {
        for s in self.spectators.drain(..) {
            self.fanout.spawn(slow::finish(s, self.room.farewell()));
        }
        self.lead = None;
        self.spare.clear();
    }

    /// The shard itself fell a ring behind: one keyframe of the room now,
    /// shared by all its spectators (one resync per shard, not one per
    /// spectator), and the ring from the tick after it.
    async fn resync(&mut self) {
        let Some((snapshot, live)) = self.room.resync().await else {
            self.close();
            return;
        };
        let Some(tick) = last_id(&snapshot) else {
            return;
        };
        self.lead = Some(live);
        self.last = tick;
        let mut i = 0;
        while i < self.spectators.len() {
            let s = &mut self.spectators[i];
            if s.after >= tick {
                i += 1;
                continue;
            }
            s.room_metrics.resyncs.inc();
            s.room_metrics
                .dropped
                .inc_by(tick.saturating_sub(s.after + 1));
            match write(s, &snapshot) {
                Wrote::Whole => {
                    s.after = tick;
                    s.metrics.sent.frames.inc();
                    s.metrics.sent.bytes.inc_by(snapshot.len() as u64);
                    i += 1;
                }
                Wrote::Short(rest) => self.slow_down(i, rest),
                Wrote::Gone => self.gone(i),
            }
        }
    }
}

/// Runs one shard of room `id` until its last spectator leaves or the
/// room closes.
pub(crate) async fn run<L: SseRooms>(
    fanout: Arc<Fanout<L>>,
    id: String,
    room: L::Room,
    mut inbox: mpsc::UnboundedReceiver<Admission>,
    keepalive: Duration,
) {
    let mut shard = Shard {
        fanout,
        id,
        room,
        spectators: Vec::new(),
        lead: None,
        spare: Vec::new(),
        last: 0,
    };
    let mut ticker = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            a = inbox.recv(), if open => match a {
                Some(a) => shard.admit(a),
                None => open = false,
            },
            r = async { Some(shard.lead.as_mut()?.recv().await) }, if shard.lead.is_some() => {
                match r {
                    // The keepalive ticks on regardless, as on every SSE
                    // stream: a comment at least every period.
                    Some(Ok(chunk)) => shard.tick(&chunk).await,
                    Some(Err(RecvError::Lagged(_))) => shard.resync().await,
                    Some(Err(RecvError::Closed)) | None => {
                        shard.close();
                    }
                }
            }
            _ = ticker.tick() => shard.keepalive(),
        }
        if shard.spectators.is_empty() {
            // Take no more (the fan-out starts a new shard for the next
            // one); whatever is queued already is still served.
            inbox.close();
            open = false;
            while let Ok(a) = inbox.try_recv() {
                shard.admit(a);
            }
            if shard.spectators.is_empty() {
                break;
            }
        }
    }
    shard.fanout.forget_ended(&shard.id);
}
