//! What to do when a connection attempt fails or a link ends: retry after a
//! backoff, or stop with a [`ClosedReason`]. Sans-IO: it is told what
//! happened (a transport-neutral [`Disconnect`] or [`ConnectError`]) and
//! when, and answers with a decision and a delay.
//!
//! The choices, in one place:
//! - a refusal (an HTTP 4xx when opening, a [`Disconnect::Refused`], or an
//!   `error` just before the end) stops at once: trying again cannot help.
//!   A 404 when opening is `unknown_room`.
//! - [`Disconnect::ShuttingDown`] retries when reconnecting is on: a
//!   restarted server takes the player back (as a resume if it still knows
//!   the token, else as a fresh join). Without reconnect it stops with
//!   [`ClosedReason::ServerShutdown`].
//! - any other loss retries on the [`RetryPolicy`]'s [`Backoff`]: a few
//!   times before the first welcome (a wrong address fails fast) and longer
//!   after one (a resume grace is 30 s).
//! - the server not knowing our session or token before the welcome
//!   retries at once without the token.

use std::time::{Duration, Instant};

use protocol::ErrorMsg;

use super::ClosedReason;
use super::backoff::{Backoff, Limit, Streak};
use super::transport::{ConnectError, Disconnect, server_words};

/// Limits of reconnecting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry; doubles with each failure in a row.
    pub initial_backoff: Duration,
    /// Longest delay between tries.
    pub max_backoff: Duration,
    /// Failures in a row before giving up while never welcomed.
    pub connect_tries: u32,
    /// Failures in a row before giving up after having been welcomed.
    pub reconnect_tries: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            connect_tries: 3,
            // About 35 s of trying at the 2 s cap: longer than the resume grace.
            reconnect_tries: 20,
        }
    }
}

impl RetryPolicy {
    /// The backoff between connections: before any welcome, or after one.
    pub fn backoff(&self, welcomed: bool) -> Backoff {
        Backoff {
            first: self.initial_backoff,
            max: self.max_backoff,
            limit: Limit::Tries(if welcomed {
                self.reconnect_tries
            } else {
                self.connect_tries
            }),
        }
    }
}

/// The decision after a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Connect again after `after`.
    Retry {
        /// Backoff delay.
        after: Duration,
        /// What went wrong (for `Disconnected { reason }`).
        reason: String,
        /// Hello without the token: the server no longer knows it.
        forget_token: bool,
    },
    /// Give up.
    Stop(ClosedReason),
}

/// `error` codes that mean the server does not know our token any more.
const STALE_TOKEN_CODES: &[&str] = &[
    "unknown_session",
    "invalid_token",
    "bad_token",
    "unknown_token",
    "session_expired",
    "expired",
];

/// `error` codes after which trying again cannot help.
const FINAL_CODES: &[&str] = &["version_mismatch", "room_full", "unknown_room", "kicked"];

fn refused(e: &ErrorMsg) -> ClosedReason {
    ClosedReason::Refused {
        code: server_words(&e.code),
        message: server_words(&e.message),
    }
}

/// Join again at once, without the token the server no longer knows.
fn afresh(code: &str) -> Next {
    Next::Retry {
        after: Duration::ZERO,
        reason: format!("session unknown to the server ({code}): joining afresh"),
        forget_token: true,
    }
}

/// Reconnect state of one client task.
#[derive(Clone, Debug)]
pub struct Reconnect {
    policy: RetryPolicy,
    enabled: bool,
    attempts: u32,
    streak: Streak,
    ever_welcomed: bool,
    /// Set when the server said it was shutting down; the reason if we
    /// then run out of tries.
    shutdown: Option<String>,
    /// The last refusal-looking HTTP answer, reported if we run out of tries.
    last_http: Option<(String, String)>,
}

impl Reconnect {
    /// Reconnect state; `enabled` is `ClientConfig::reconnect`.
    pub fn new(policy: RetryPolicy, enabled: bool) -> Reconnect {
        Reconnect {
            policy,
            enabled,
            attempts: 0,
            streak: Streak::default(),
            ever_welcomed: false,
            shutdown: None,
            last_http: None,
        }
    }

    /// Counts a connection attempt; returns its number (1 for the first).
    pub fn next_attempt(&mut self) -> u32 {
        self.attempts += 1;
        self.attempts
    }

    /// A welcome arrived: the failure streak is over.
    pub fn handle_welcome(&mut self) {
        self.streak.reset();
        self.ever_welcomed = true;
        self.shutdown = None;
        self.last_http = None;
    }

    /// Opening a link failed at `now`.
    pub fn handle_connect_error(&mut self, e: &ConnectError, now: Instant) -> Next {
        match e {
            ConnectError::InvalidUrl(m) => Next::Stop(ClosedReason::Unreachable(m.clone())),
            ConnectError::Unsupported(m) => Next::Stop(ClosedReason::Refused {
                code: "unsupported_transport".into(),
                message: m.clone(),
            }),
            ConnectError::Http {
                code: Some(code), ..
            } if STALE_TOKEN_CODES.contains(&code.as_str()) => afresh(code),
            ConnectError::Http {
                status,
                code,
                message,
            } => {
                let code = code.clone().unwrap_or_else(|| match status {
                    404 => "unknown_room".to_string(),
                    s => format!("http_{s}"),
                });
                if (400..500).contains(status) && !matches!(status, 408 | 429) {
                    return Next::Stop(ClosedReason::Refused {
                        code,
                        message: message.clone(),
                    });
                }
                self.last_http = Some((code, message.clone()));
                self.failed(e.to_string(), now)
            }
            ConnectError::Unreachable(m) => self.failed(m.clone(), now),
            // Followed by the link itself; one left over is a loop.
            ConnectError::Moved(m) => Next::Stop(ClosedReason::Unreachable(m.clone())),
        }
    }

    /// An open link ended at `now`. `last_error` is the server's last
    /// `error` on it, `welcomed` whether it got that far, `left` whether
    /// we left.
    pub fn handle_disconnect(
        &mut self,
        d: &Disconnect,
        last_error: Option<&ErrorMsg>,
        welcomed: bool,
        left: bool,
        now: Instant,
    ) -> Next {
        if left {
            return Next::Stop(ClosedReason::Left);
        }
        if let Some(e) = last_error {
            if e.code == "shutting_down" {
                return self.shutdown(server_words(&e.message), now);
            }
            if !welcomed && STALE_TOKEN_CODES.contains(&e.code.as_str()) {
                return afresh(&e.code);
            }
            if FINAL_CODES.contains(&e.code.as_str()) {
                return Next::Stop(refused(e));
            }
        }
        match d {
            Disconnect::ShuttingDown(reason) => self.shutdown(reason.clone(), now),
            Disconnect::Refused(r) => Next::Stop(match last_error {
                Some(e) => refused(e),
                None => ClosedReason::Refused {
                    code: r.code.clone(),
                    message: r.reason.clone(),
                },
            }),
            Disconnect::SessionUnknown(_) if !welcomed => afresh("unknown_session"),
            // The snake may still be in its resume grace: keep the token.
            Disconnect::SessionUnknown(_) | Disconnect::Lost(_) => match last_error {
                // The hello itself was answered with an error.
                Some(e) if !welcomed => Next::Stop(refused(e)),
                _ => self.dropped(d.to_string(), now),
            },
            Disconnect::BadFrame(why) => Next::Stop(ClosedReason::Refused {
                code: "bad_server_message".into(),
                message: why.clone(),
            }),
        }
    }

    fn shutdown(&mut self, reason: String, now: Instant) -> Next {
        if !self.enabled {
            return Next::Stop(ClosedReason::ServerShutdown(reason));
        }
        self.shutdown = Some(reason.clone());
        let failures = self.streak.fail(now);
        Next::Retry {
            after: self.backoff().delay(failures),
            reason: format!("server shutting down: {reason}"),
            forget_token: false,
        }
    }

    fn dropped(&mut self, reason: String, now: Instant) -> Next {
        if !self.enabled {
            return Next::Stop(ClosedReason::ConnectionLost(reason));
        }
        self.failed(reason, now)
    }

    fn failed(&mut self, reason: String, now: Instant) -> Next {
        let Some(after) = self.backoff().next(&mut self.streak, now) else {
            let why = if let Some(r) = self.shutdown.take() {
                ClosedReason::ServerShutdown(r)
            } else if let Some((code, message)) = self.last_http.take() {
                ClosedReason::Refused { code, message }
            } else {
                ClosedReason::Unreachable(format!(
                    "{reason} (gave up after {} tries)",
                    self.streak.failures()
                ))
            };
            return Next::Stop(why);
        };
        Next::Retry {
            after,
            reason,
            forget_token: false,
        }
    }

    /// The backoff that applies now.
    fn backoff(&self) -> Backoff {
        self.policy.backoff(self.ever_welcomed && self.enabled)
    }
}

#[cfg(test)]
#[path = "reconnect_tests.rs"]
mod tests;
