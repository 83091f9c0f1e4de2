//! The bookkeeping of a polled session (long poll and short poll), sans-IO:
//! the HTTP link in `http` only moves bytes between these states and the
//! network, and sleeps what they say.
//!
//! - [`Poller`] keeps the `after` cursor: every poll asks for the messages
//!   after the last one handed on. A poll that failed (reset, cut, response
//!   lost) is asked again with the same `after`, so the server re-sends what
//!   did not arrive; seqs at or below `after` (the answer of a superseded or
//!   repeated poll) are dropped as duplicates. Nothing is lost, duplicated
//!   or reordered while the server keeps the session.
//! - [`Sender`] numbers client messages (client seq from 1) and re-posts
//!   every one the server has not yet reported applied; the server applies
//!   each seq once and in order, so re-sends are harmless.
//!
//! Both retry a failed request on [`POLL_BACKOFF`] and end the link with a
//! [`Disconnect`] when the server's answer says trying again cannot help.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use protocol::codec::{self, Format};
use protocol::poll::{PollBatch, SendAck, SendBatch, Sequenced};
use protocol::{ClientMsg, ServerMsg, Welcome};

use super::{ConnectError, Disconnect, Refusal, RefusedBy};
use crate::client::backoff::{Backoff, Limit, Streak};

/// How long a long poll asks the server to hold.
pub const LONG_POLL_WAIT: Duration = Duration::from_secs(25);
/// Extra time a request may take beyond its hold before it is retried.
pub const REQUEST_SLACK: Duration = Duration::from_secs(10);
/// Retrying failed requests: quickly at first (a lost response is the
/// common case), and for ten seconds at most before the link is lost and
/// the client task reconnects.
pub const POLL_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(20),
    max: Duration::from_millis(500),
    limit: Limit::Time(Duration::from_secs(10)),
};

/// Long poll (held requests) or short poll (`wait=0` every `interval`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollMode {
    /// Each poll is held by the server up to `wait` when there is nothing new.
    Long {
        /// The hold asked for.
        wait: Duration,
    },
    /// Each poll returns at once; the next one goes after `interval`.
    Short {
        /// Time between polls.
        interval: Duration,
    },
}

/// What a polled link does after an answer or a failure.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<T> {
    /// Hand `out` on, then send the next request after `wait`.
    Next {
        /// What the answer delivered.
        out: T,
        /// Pause before the next request.
        wait: Duration,
    },
    /// The request failed: send it again after this delay.
    Retry(Duration),
    /// The link is over.
    End(Disconnect),
}

/// What a non-2xx answer to a session call means; `None`: worth a retry
/// (a proxy's 502, a 429, a 503 cap).
pub fn refusal(status: u16, body: &[u8]) -> Option<Disconnect> {
    let (code, reason) = super::error_words(status, body);
    Some(match status {
        404 => Disconnect::SessionUnknown(reason),
        503 if code.as_deref() == Some("shutting_down") => Disconnect::ShuttingDown(reason),
        400 | 401 | 403 | 413 => Disconnect::Refused(Refusal {
            by: RefusedBy::Http(status),
            code: code.unwrap_or_else(|| format!("http_{status}")),
            reason,
        }),
        _ => return None,
    })
}

/// The welcome in the answer to `POST .../sessions`, or why there is none.
pub fn opened(format: Format, status: u16, body: &[u8]) -> Result<Box<Welcome>, ConnectError> {
    if status != 201 {
        return Err(ConnectError::http(status, body));
    }
    // The welcome comes in the session's format whatever the body was.
    match codec::decode::<ServerMsg>(format, body) {
        Ok(ServerMsg::Welcome(w)) => Ok(w),
        Ok(_) => Err(ConnectError::Unreachable(
            "the answer was not a welcome".into(),
        )),
        Err(e) => Err(ConnectError::Unreachable(format!("bad welcome: {e}"))),
    }
}

/// Turns a failure into a retry or, once failing for too long, the end.
fn retry<T>(streak: &mut Streak, now: Instant, what: &str, why: String) -> Step<T> {
    match POLL_BACKOFF.next(streak, now) {
        Some(delay) => Step::Retry(delay),
        None => Step::End(Disconnect::Lost(format!(
            "{what} kept failing ({} in a row): {why}",
            streak.failures()
        ))),
    }
}

/// A non-2xx answer: the end of the link, or a retry.
fn not_ok<T>(streak: &mut Streak, now: Instant, what: &str, status: u16, body: &[u8]) -> Step<T> {
    match refusal(status, body) {
        Some(d) => Step::End(d),
        None => retry(streak, now, what, super::status_line(status)),
    }
}

/// The receiving half: the `after` cursor.
#[derive(Clone, Debug)]
pub struct Poller {
    mode: PollMode,
    after: u64,
    streak: Streak,
}

impl Poller {
    /// A poller from the start of a session (nothing received yet).
    pub fn new(mode: PollMode) -> Poller {
        Poller {
            mode,
            after: 0,
            streak: Streak::default(),
        }
    }

    /// The highest seq handed on.
    pub fn after(&self) -> u64 {
        self.after
    }

    /// The next poll: its path and query below the session URL, and how
    /// long the request may take before it counts as failed.
    pub fn request(&self) -> (String, Duration) {
        let wait = match self.mode {
            PollMode::Long { wait } => wait,
            PollMode::Short { .. } => Duration::ZERO,
        };
        let query = format!("poll?after={}&wait={}", self.after, wait.as_secs_f64());
        (query, wait + REQUEST_SLACK)
    }

    /// The server answered the poll: the messages to hand on, in order.
    pub fn handle_answer(
        &mut self,
        now: Instant,
        format: Format,
        status: u16,
        body: &[u8],
    ) -> Step<Vec<ServerMsg>> {
        if status != 200 {
            return not_ok(&mut self.streak, now, "polls", status, body);
        }
        let batch: PollBatch = match codec::decode(format, body) {
            Ok(b) => b,
            Err(e) => return Step::End(Disconnect::BadFrame(e.to_string())),
        };
        self.streak.reset();
        let mut out = Vec::with_capacity(batch.messages.len());
        for m in batch.messages {
            // An answer to a superseded or repeated poll: already handed on.
            if m.seq <= self.after {
                continue;
            }
            if m.seq != self.after + 1 {
                return Step::End(Disconnect::BadFrame(format!(
                    "session seq jumped from {} to {}",
                    self.after, m.seq
                )));
            }
            self.after = m.seq;
            out.push(m.msg);
        }
        let wait = match self.mode {
            PollMode::Long { .. } => Duration::ZERO,
            PollMode::Short { interval } => interval,
        };
        Step::Next { out, wait }
    }

    /// The poll got no answer (`why`): ask again with the same `after`.
    pub fn handle_failure(&mut self, now: Instant, why: String) -> Step<Vec<ServerMsg>> {
        retry(&mut self.streak, now, "polls", why)
    }
}

/// The sending half: client seqs and what is not yet applied.
#[derive(Clone, Debug)]
pub struct Sender {
    unacked: VecDeque<Sequenced<ClientMsg>>,
    next_seq: u64,
    streak: Streak,
}

impl Default for Sender {
    fn default() -> Self {
        Sender {
            unacked: VecDeque::new(),
            next_seq: 1,
            streak: Streak::default(),
        }
    }
}

impl Sender {
    /// Numbers a message for sending; returns its client seq.
    pub fn push(&mut self, msg: ClientMsg) -> u64 {
        let seq = self.next_seq;
        self.unacked.push_back(Sequenced { seq, msg });
        self.next_seq += 1;
        seq
    }

    /// Messages not yet applied by the server.
    pub fn pending(&self) -> usize {
        self.unacked.len()
    }

    /// The next `POST .../send` body: every message not yet applied, in
    /// seq order; `None` when all are.
    pub fn batch(&self) -> Option<SendBatch> {
        (!self.unacked.is_empty()).then(|| SendBatch {
            messages: self.unacked.iter().cloned().collect(),
        })
    }

    /// The server answered a send.
    pub fn handle_answer(
        &mut self,
        now: Instant,
        format: Format,
        status: u16,
        body: &[u8],
    ) -> Step<()> {
        if status != 200 {
            return not_ok(&mut self.streak, now, "sends", status, body);
        }
        match codec::decode::<SendAck>(format, body) {
            Ok(ack) => {
                self.streak.reset();
                while self.unacked.front().is_some_and(|m| m.seq <= ack.applied) {
                    self.unacked.pop_front();
                }
                Step::Next {
                    out: (),
                    wait: Duration::ZERO,
                }
            }
            Err(e) => Step::End(Disconnect::BadFrame(e.to_string())),
        }
    }

    /// The send got no answer (`why`): post the same messages again.
    pub fn handle_failure(&mut self, now: Instant, why: String) -> Step<()> {
        retry(&mut self.streak, now, "sends", why)
    }
}

#[cfg(test)]
#[path = "poll_tests.rs"]
mod tests;
