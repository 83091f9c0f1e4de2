//! A subscriber's bounded queue of encoded frames.
//!
//! The room pushes shared `Bytes` (never blocking, never awaiting); the
//! subscriber's transport pops them. When the queue is full the backlog is
//! dropped and the push reports it, so the room sends that subscriber a
//! keyframe next: a slow reader costs at most `capacity` frames of memory and
//! never slows the tick.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Frames a subscriber may have queued before its backlog is dropped.
pub const DEFAULT_CAPACITY: usize = 64;

/// A bounded, closable frame queue shared by a room and one transport.
#[derive(Debug)]
pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    capacity: usize,
}

/// A queued frame and when its tick was produced (for send latency).
///
/// A player's tick or snapshot is queued in two parts, its own small
/// `head` (which carries its `ack`) and the room's shared `bytes`, so the
/// shared tail is never copied per player: the WebSocket writes both in
/// one vectored write. `head` is empty for everything else.
#[derive(Clone, Debug)]
pub struct Queued {
    pub head: Bytes,
    pub bytes: Bytes,
    pub produced: Instant,
}

impl Queued {
    /// The frame in one piece (`head` then `bytes`; a copy only if there
    /// is a head).
    pub fn whole(&self) -> Bytes {
        if self.head.is_empty() {
            self.bytes.clone()
        } else {
            [&self.head[..], &self.bytes[..]].concat().into()
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<Queued>,
    closed: bool,
    dropped: u64,
}

/// What happened to a pushed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The queue was full: it was emptied and this frame dropped too; send a
    /// keyframe next.
    Overflowed,
    /// The reader is gone.
    Closed,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` frames.
    pub fn new(capacity: usize) -> Self {
        Outbox {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-push; the
        // queue itself is still a valid VecDeque, so keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame produced now, without waiting.
    pub fn push(&self, frame: Bytes) -> Pushed {
        self.push_at(frame, Instant::now())
    }

    /// Queues a frame whose tick was produced at `produced`, without waiting.
    pub fn push_at(&self, bytes: Bytes, produced: Instant) -> Pushed {
        self.push_parts(Bytes::new(), bytes, produced)
    }

    /// Queues a frame in two parts (see [`Queued`]), produced at `produced`.
    pub fn push_parts(&self, head: Bytes, bytes: Bytes, produced: Instant) -> Pushed {
        let mut g = self.lock();
        if g.closed {
            return Pushed::Closed;
        }
        if g.queue.len() >= self.capacity {
            g.dropped += g.queue.len() as u64 + 1;
            g.queue.clear();
            return Pushed::Overflowed;
        }
        g.queue.push_back(Queued {
            head,
            bytes,
            produced,
        });
        drop(g);
        self.notify.notify_one();
        Pushed::Queued
    }

    /// The next frame; `None` once closed and drained.
    pub async fn pop(&self) -> Option<Bytes> {
        self.pop_queued().await.map(|(q, _)| q.whole())
    }

    /// The next frame with its production time, and how many frames were
    /// queued behind it; `None` once closed and drained.
    pub async fn pop_queued(&self) -> Option<(Queued, usize)> {
        loop {
            {
                let mut g = self.lock();
                if let Some(q) = g.queue.pop_front() {
                    return Some((q, g.queue.len()));
                }
                if g.closed {
                    return None;
                }
            }
            // notify_one stores a permit when nobody waits, so a push between
            // the unlock above and this await is not lost.
            self.notify.notified().await;
        }
    }

    /// The next frame if one is queued now (never waits).
    pub fn try_pop(&self) -> Option<Bytes> {
        self.try_pop_queued().map(|q| q.bytes)
    }

    /// The next frame with its production time if one is queued now.
    pub fn try_pop_queued(&self) -> Option<Queued> {
        self.lock().queue.pop_front()
    }

    /// True once the room closed this queue (frames may still be queued).
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Closes the queue: pushes fail, `pop` drains what is left then ends.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    /// Most frames it holds before an overflow.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Frames queued now.
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frames dropped by overflows so far.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_then_ends_after_close() {
        let o = Outbox::new(4);
        assert_eq!(o.push(Bytes::from_static(b"a")), Pushed::Queued);
        assert_eq!(o.push(Bytes::from_static(b"b")), Pushed::Queued);
        o.close();
        assert_eq!(o.push(Bytes::from_static(b"c")), Pushed::Closed);
        assert_eq!(o.pop().await.as_deref(), Some(&b"a"[..]));
        assert_eq!(o.pop().await.as_deref(), Some(&b"b"[..]));
        assert_eq!(o.pop().await, None);
    }

    #[test]
    fn overflow_drops_the_backlog_and_stays_bounded() {
        let o = Outbox::new(3);
        for _ in 0..3 {
            assert_eq!(o.push(Bytes::from_static(b"x")), Pushed::Queued);
        }
        assert_eq!(o.push(Bytes::from_static(b"y")), Pushed::Overflowed);
        assert_eq!(o.len(), 0);
        assert_eq!(o.dropped(), 4);
        for _ in 0..1000 {
            o.push(Bytes::from_static(b"z"));
            assert!(o.len() <= 3);
        }
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_on_push() {
        let o = std::sync::Arc::new(Outbox::new(4));
        let reader = tokio::spawn({
            let o = o.clone();
            async move { o.pop().await }
        });
        tokio::task::yield_now().await;
        o.push(Bytes::from_static(b"hi"));
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), reader).await;
        assert_eq!(got.unwrap().unwrap().as_deref(), Some(&b"hi"[..]));
    }
}
