//! The delivery guarantees of a polled session, sans-IO.
//!
//! [`ServerLog`] numbers the messages a session sends (seq from 1,
//! contiguous) and keeps every one the client has not acknowledged, so a
//! poll response lost on the way is simply sent again by the next poll with
//! the same `after`. [`ClientLog`] applies the client's messages once and in
//! their client seq order, whatever order and however often the requests
//! that carry them arrive.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

/// Unacknowledged messages a session keeps. When it is full the session
/// stops taking frames from its room outbox; that bounded outbox then
/// overflows and the room sends a keyframe next, so a client that stops
/// polling costs at most this many messages plus the outbox.
pub const SERVER_LOG_CAPACITY: usize = 256;

/// Client messages that may wait for an earlier seq still on its way.
pub const CLIENT_EARLY_CAPACITY: usize = 256;

/// The session's outgoing messages, numbered.
#[derive(Debug, Default)]
pub struct ServerLog {
    /// Unacknowledged messages, oldest first; seqs are contiguous.
    kept: VecDeque<(u64, Bytes)>,
    /// The last seq handed out (0 before the first message).
    last: u64,
}

/// `after` names a seq the session never sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("after={after} is beyond the last message of this session ({last})")]
pub struct AheadError {
    pub after: u64,
    pub last: u64,
}

impl ServerLog {
    /// True when no more messages may be taken until the client acknowledges.
    pub fn is_full(&self) -> bool {
        self.kept.len() >= SERVER_LOG_CAPACITY
    }

    /// Numbers and keeps a message; returns its seq.
    pub fn push(&mut self, msg: Bytes) -> u64 {
        self.last += 1;
        self.kept.push_back((self.last, msg));
        self.last
    }

    /// The client has everything up to `after`: forget it.
    pub fn ack(&mut self, after: u64) -> Result<(), AheadError> {
        if after > self.last {
            return Err(AheadError {
                after,
                last: self.last,
            });
        }
        while self.kept.front().is_some_and(|(s, _)| *s <= after) {
            self.kept.pop_front();
        }
        Ok(())
    }

    /// The kept messages after `after`, in order, at most `max`.
    pub fn after(&self, after: u64, max: usize) -> Vec<(u64, Bytes)> {
        self.kept
            .iter()
            .filter(|(s, _)| *s > after)
            .take(max)
            .cloned()
            .collect()
    }

    /// The last seq handed out.
    pub fn last(&self) -> u64 {
        self.last
    }
}

/// Why a client message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientSeqError {
    #[error("client seq 0 is invalid: seqs start at 1")]
    Zero,
    #[error(
        "client seq {seq} is too far ahead of {applied} (a gap of more than {CLIENT_EARLY_CAPACITY})"
    )]
    TooFarAhead { seq: u64, applied: u64 },
}

/// The session's incoming messages: applied once, in client seq order.
#[derive(Debug)]
pub struct ClientLog<T> {
    applied: u64,
    early: BTreeMap<u64, T>,
}

impl<T> Default for ClientLog<T> {
    fn default() -> Self {
        ClientLog {
            applied: 0,
            early: BTreeMap::new(),
        }
    }
}

impl<T> ClientLog<T> {
    /// Takes in a message with client seq `seq`; returns the messages that
    /// are now due, in order (none for a duplicate or one that waits for an
    /// earlier seq).
    pub fn accept(&mut self, seq: u64, msg: T) -> Result<Vec<T>, ClientSeqError> {
        if seq == 0 {
            return Err(ClientSeqError::Zero);
        }
        if seq <= self.applied || self.early.contains_key(&seq) {
            return Ok(Vec::new());
        }
        if seq - self.applied > CLIENT_EARLY_CAPACITY as u64 {
            return Err(ClientSeqError::TooFarAhead {
                seq,
                applied: self.applied,
            });
        }
        self.early.insert(seq, msg);
        let mut due = Vec::new();
        while let Some(m) = self.early.remove(&(self.applied + 1)) {
            self.applied += 1;
            due.push(m);
        }
        Ok(due)
    }

    /// Highest client seq applied (all below it were applied too).
    pub fn applied(&self) -> u64 {
        self.applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_are_contiguous_and_kept_until_acknowledged() {
        let mut log = ServerLog::default();
        for b in ["a", "b", "c"] {
            log.push(Bytes::from(b));
        }
        let seqs = |v: Vec<(u64, Bytes)>| v.into_iter().map(|(s, _)| s).collect::<Vec<_>>();
        assert_eq!(seqs(log.after(0, 10)), vec![1, 2, 3]);
        // A lost response: the same `after` gets the same messages again.
        assert_eq!(seqs(log.after(0, 10)), vec![1, 2, 3]);
        log.ack(2).unwrap();
        assert_eq!(seqs(log.after(2, 10)), vec![3]);
        assert_eq!(seqs(log.after(0, 10)), vec![3], "acked ones are gone");
        assert_eq!(log.ack(4), Err(AheadError { after: 4, last: 3 }));
        assert_eq!(seqs(log.after(0, 1)), vec![3]);
    }

    #[test]
    fn the_log_reports_full_at_capacity() {
        let mut log = ServerLog::default();
        for _ in 0..SERVER_LOG_CAPACITY {
            assert!(!log.is_full());
            log.push(Bytes::new());
        }
        assert!(log.is_full());
        log.ack(1).unwrap();
        assert!(!log.is_full());
    }

    #[test]
    fn client_messages_apply_once_and_in_order() {
        let mut log = ClientLog::default();
        assert_eq!(log.accept(1, 'a'), Ok(vec!['a']));
        assert_eq!(log.accept(1, 'a'), Ok(vec![]), "duplicate");
        assert_eq!(log.accept(3, 'c'), Ok(vec![]), "waits for 2");
        assert_eq!(log.accept(3, 'c'), Ok(vec![]), "duplicate while waiting");
        assert_eq!(log.accept(2, 'b'), Ok(vec!['b', 'c']));
        assert_eq!(log.applied(), 3);
        assert_eq!(log.accept(0, 'z'), Err(ClientSeqError::Zero));
        assert!(matches!(
            log.accept(3 + CLIENT_EARLY_CAPACITY as u64 + 1, 'z'),
            Err(ClientSeqError::TooFarAhead { .. })
        ));
    }
}
