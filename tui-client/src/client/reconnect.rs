//! What to do when a connection attempt fails or a link ends: retry after a
//! backoff, or stop with a [`ClosedReason`]. Sans-IO: it is told what
//! happened and answers with a decision and a delay.
//!
//! The choices, in one place:
//! - a refusal (HTTP 4xx at the upgrade, close codes 1002/1003/1007/1008/
//!   1009/1010, or an `error` just before the close) stops at once: trying
//!   again cannot help. A 404 is `unknown_room`.
//! - close 1001 (server shutting down) retries when reconnecting is on: a
//!   restarted server takes the player back (as a resume if it still knows
//!   the token, else as a fresh join). Without reconnect it stops with
//!   [`ClosedReason::ServerShutdown`].
//! - any other loss retries with a backoff of 100 ms doubling to 2 s,
//!   a few times before the first welcome (a wrong address fails fast) and
//!   longer after one (a resume grace is 30 s).
//! - an `error` about the token before the welcome (the server forgot the
//!   session) retries at once without the token.

use std::time::Duration;

use protocol::ErrorMsg;

use super::ClosedReason;
use super::transport::{ConnectError, Disconnect};

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
        code: e.code.clone(),
        message: e.message.clone(),
    }
}

/// Reconnect state of one client task.
#[derive(Clone, Debug)]
pub struct Reconnect {
    policy: RetryPolicy,
    enabled: bool,
    attempts: u32,
    failures: u32,
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
            failures: 0,
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
        self.failures = 0;
        self.ever_welcomed = true;
        self.shutdown = None;
        self.last_http = None;
    }

    /// Opening a link failed.
    pub fn handle_connect_error(&mut self, e: &ConnectError) -> Next {
        match e {
            ConnectError::InvalidUrl(m) => Next::Stop(ClosedReason::Unreachable(m.clone())),
            ConnectError::Unsupported(m) => Next::Stop(ClosedReason::Refused {
                code: "unsupported_transport".into(),
                message: m.clone(),
            }),
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
                self.failed(e.to_string())
            }
            ConnectError::Unreachable(m) => self.failed(m.clone()),
        }
    }

    /// An open link ended. `last_error` is the server's last `error` on
    /// it, `welcomed` whether it got that far, `left` whether we left.
    pub fn handle_disconnect(
        &mut self,
        d: &Disconnect,
        last_error: Option<&ErrorMsg>,
        welcomed: bool,
        left: bool,
    ) -> Next {
        if left {
            return Next::Stop(ClosedReason::Left);
        }
        if let Some(e) = last_error {
            if e.code == "shutting_down" {
                return self.shutdown(e.message.clone());
            }
            if !welcomed && STALE_TOKEN_CODES.contains(&e.code.as_str()) {
                return Next::Retry {
                    after: Duration::ZERO,
                    reason: format!("session unknown to the server ({}): joining afresh", e.code),
                    forget_token: true,
                };
            }
            if FINAL_CODES.contains(&e.code.as_str()) {
                return Next::Stop(refused(e));
            }
        }
        match d {
            Disconnect::Closed { code: 1001, reason } => self.shutdown(reason.clone()),
            Disconnect::Closed { code, reason } if refusal_code(*code).is_some() => {
                Next::Stop(match last_error {
                    Some(e) => refused(e),
                    None => ClosedReason::Refused {
                        code: refusal_code(*code).unwrap_or("refused").to_string(),
                        message: reason.clone(),
                    },
                })
            }
            Disconnect::Closed { .. } | Disconnect::Lost(_) => match last_error {
                // The hello itself was answered with an error.
                Some(e) if !welcomed => Next::Stop(refused(e)),
                _ => self.dropped(d.to_string()),
            },
            Disconnect::BadFrame(why) => Next::Stop(ClosedReason::Refused {
                code: "bad_server_message".into(),
                message: why.clone(),
            }),
        }
    }

    fn shutdown(&mut self, reason: String) -> Next {
        if !self.enabled {
            return Next::Stop(ClosedReason::ServerShutdown(reason));
        }
        self.shutdown = Some(reason.clone());
        self.failures += 1;
        Next::Retry {
            after: self.backoff(),
            reason: format!("server shutting down: {reason}"),
            forget_token: false,
        }
    }

    fn dropped(&mut self, reason: String) -> Next {
        if !self.enabled {
            return Next::Stop(ClosedReason::ConnectionLost(reason));
        }
        self.failed(reason)
    }

    fn failed(&mut self, reason: String) -> Next {
        self.failures += 1;
        let limit = if self.ever_welcomed && self.enabled {
            self.policy.reconnect_tries
        } else {
            self.policy.connect_tries
        };
        if self.failures >= limit {
            let why = if let Some(r) = self.shutdown.take() {
                ClosedReason::ServerShutdown(r)
            } else if let Some((code, message)) = self.last_http.take() {
                ClosedReason::Refused { code, message }
            } else {
                ClosedReason::Unreachable(format!(
                    "{reason} (gave up after {} tries)",
                    self.failures
                ))
            };
            return Next::Stop(why);
        }
        Next::Retry {
            after: self.backoff(),
            reason,
            forget_token: false,
        }
    }

    /// Delay after the current streak of failures.
    fn backoff(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(16);
        (self.policy.initial_backoff * 2u32.pow(doublings)).min(self.policy.max_backoff)
    }
}

/// The refusal a close code stands for; `None` for codes worth a retry.
fn refusal_code(code: u16) -> Option<&'static str> {
    Some(match code {
        1002 => "protocol_error",
        1003 => "unsupported_data",
        1007 => "bad_message",
        1008 => "policy_violation",
        1009 => "message_too_big",
        1010 => "extension_required",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn after(n: Next) -> Duration {
        match n {
            Next::Retry { after, .. } => after,
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    fn stop(n: Next) -> ClosedReason {
        match n {
            Next::Stop(r) => r,
            other => panic!("expected a stop, got {other:?}"),
        }
    }

    fn lost() -> Disconnect {
        Disconnect::Lost("reset".into())
    }

    fn err(code: &str) -> ErrorMsg {
        ErrorMsg {
            code: code.into(),
            message: format!("{code}!"),
        }
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_on_welcome() {
        let mut r = Reconnect::new(RetryPolicy::default(), true);
        r.handle_welcome();
        let delays: Vec<_> = (0..7)
            .map(|_| after(r.handle_disconnect(&lost(), None, false, false)))
            .collect();
        assert_eq!(
            delays,
            [
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(2000),
                ms(2000)
            ]
        );
        r.handle_welcome();
        assert_eq!(
            after(r.handle_disconnect(&lost(), None, true, false)),
            ms(100)
        );
    }

    #[test]
    fn an_unreachable_server_is_given_up_after_a_few_tries() {
        let mut r = Reconnect::new(RetryPolicy::default(), true);
        let e = ConnectError::Unreachable("connection refused".into());
        assert_eq!(after(r.handle_connect_error(&e)), ms(100));
        assert_eq!(after(r.handle_connect_error(&e)), ms(200));
        match stop(r.handle_connect_error(&e)) {
            ClosedReason::Unreachable(m) => assert!(m.contains("refused"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn after_a_welcome_reconnecting_keeps_trying_longer() {
        let mut r = Reconnect::new(RetryPolicy::default(), true);
        r.handle_welcome();
        r.handle_disconnect(&lost(), None, true, false);
        let e = ConnectError::Unreachable("refused".into());
        for _ in 2..RetryPolicy::default().reconnect_tries {
            after(r.handle_connect_error(&e));
        }
        assert!(matches!(
            stop(r.handle_connect_error(&e)),
            ClosedReason::Unreachable(_)
        ));
    }

    #[test]
    fn http_refusals_stop_at_once_and_404_is_an_unknown_room() {
        let mut r = Reconnect::new(RetryPolicy::default(), true);
        let e = ConnectError::Http {
            status: 404,
            code: None,
            message: "Not Found".into(),
        };
        assert_eq!(
            stop(r.handle_connect_error(&e)),
            ClosedReason::Refused {
                code: "unknown_room".into(),
                message: "Not Found".into()
            }
        );
        let e = ConnectError::Http {
            status: 403,
            code: Some("banned".into()),
            message: "no".into(),
        };
        assert!(
            matches!(stop(r.handle_connect_error(&e)), ClosedReason::Refused { code, .. } if code == "banned")
        );
        // 503 (connection cap) is worth a retry, and named if it persists.
        let e = ConnectError::Http {
            status: 503,
            code: Some("server_full".into()),
            message: "too many connections".into(),
        };
        after(r.handle_connect_error(&e));
        after(r.handle_connect_error(&e));
        assert!(
            matches!(stop(r.handle_connect_error(&e)), ClosedReason::Refused { code, .. } if code == "server_full")
        );
    }

    #[test]
    fn errors_before_a_close_name_the_refusal() {
        let mut r = Reconnect::new(RetryPolicy::default(), true);
        let close = |code| Disconnect::Closed {
            code,
            reason: "x".into(),
        };
        for code in ["version_mismatch", "room_full", "kicked"] {
            assert_eq!(
                stop(r.handle_disconnect(&close(1008), Some(&err(code)), false, false)),
                ClosedReason::Refused {
                    code: code.into(),
                    message: format!("{code}!")
                }
            );
        }
        // Without an error message the close code still refuses.
        assert!(matches!(
            stop(r.handle_disconnect(&close(1002), None, true, false)),
            ClosedReason::Refused { code, .. } if code == "protocol_error"
        ));
        assert!(matches!(
            stop(r.handle_disconnect(&close(1009), None, true, false)),
            ClosedReason::Refused { code, .. } if code == "message_too_big"
        ));
    }

    #[test]
    fn a_stale_token_retries_at_once_without_it() {
        let mut r = Reconnect::new(RetryPolicy::default(), true);
        r.handle_welcome();
        let close = Disconnect::Closed {
            code: 1008,
            reason: "unknown session".into(),
        };
        match r.handle_disconnect(&close, Some(&err("unknown_session")), false, false) {
            Next::Retry {
                after,
                forget_token,
                ..
            } => {
                assert_eq!(after, Duration::ZERO);
                assert!(forget_token);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_shutdown_retries_only_when_reconnecting() {
        let bye = Disconnect::Closed {
            code: 1001,
            reason: "server shutting down".into(),
        };
        let mut off = Reconnect::new(RetryPolicy::default(), false);
        off.handle_welcome();
        assert!(matches!(
            stop(off.handle_disconnect(&bye, None, true, false)),
            ClosedReason::ServerShutdown(_)
        ));
        let mut on = Reconnect::new(RetryPolicy::default(), true);
        on.handle_welcome();
        assert_eq!(
            after(on.handle_disconnect(&bye, None, true, false)),
            ms(100)
        );
        // If it never comes back, the reason is still the shutdown.
        let refused = ConnectError::Unreachable("refused".into());
        let mut last = None;
        for _ in 0..RetryPolicy::default().reconnect_tries {
            if let Next::Stop(r) = on.handle_connect_error(&refused) {
                last = Some(r);
                break;
            }
        }
        assert!(
            matches!(last, Some(ClosedReason::ServerShutdown(_))),
            "{last:?}"
        );
    }

    #[test]
    fn without_reconnect_a_drop_ends_the_task_and_leaving_always_does() {
        let mut r = Reconnect::new(RetryPolicy::default(), false);
        r.handle_welcome();
        assert!(matches!(
            stop(r.handle_disconnect(&lost(), None, true, false)),
            ClosedReason::ConnectionLost(_)
        ));
        let mut r = Reconnect::new(RetryPolicy::default(), true);
        assert_eq!(
            stop(r.handle_disconnect(&lost(), None, true, true)),
            ClosedReason::Left
        );
        assert_eq!(r.next_attempt(), 1);
        assert_eq!(r.next_attempt(), 2);
    }
}
