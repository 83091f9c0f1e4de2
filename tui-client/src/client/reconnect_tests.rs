//! The reconnect decisions, each on its own synthetic failure.

use super::*;
use crate::client::transport::{Refusal, RefusedBy};

fn now() -> Instant {
    Instant::now()
}

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
        .map(|_| after(r.handle_disconnect(&lost(), None, false, false, now())))
        .collect();
    // The policy's own doubling (tested in `backoff`), from 100 ms.
    let policy = RetryPolicy::default().backoff(true);
    let want: Vec<_> = (1..=7).map(|n| policy.delay(n)).collect();
    assert_eq!(delays, want);
    assert_eq!((delays[0], delays[6]), (ms(100), ms(2000)));
    r.handle_welcome();
    assert_eq!(
        after(r.handle_disconnect(&lost(), None, true, false, now())),
        ms(100)
    );
}

#[test]
fn an_unreachable_server_is_given_up_after_a_few_tries() {
    let mut r = Reconnect::new(RetryPolicy::default(), true);
    let e = ConnectError::Unreachable("connection refused".into());
    assert_eq!(after(r.handle_connect_error(&e, now())), ms(100));
    assert_eq!(after(r.handle_connect_error(&e, now())), ms(200));
    match stop(r.handle_connect_error(&e, now())) {
        ClosedReason::Unreachable(m) => assert!(m.contains("refused"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn after_a_welcome_reconnecting_keeps_trying_longer() {
    let mut r = Reconnect::new(RetryPolicy::default(), true);
    r.handle_welcome();
    r.handle_disconnect(&lost(), None, true, false, now());
    let e = ConnectError::Unreachable("refused".into());
    for _ in 2..RetryPolicy::default().reconnect_tries {
        after(r.handle_connect_error(&e, now()));
    }
    assert!(matches!(
        stop(r.handle_connect_error(&e, now())),
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
        stop(r.handle_connect_error(&e, now())),
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
        matches!(stop(r.handle_connect_error(&e, now())), ClosedReason::Refused { code, .. } if code == "banned")
    );
    // 503 (connection cap) is worth a retry, and named if it persists.
    let e = ConnectError::Http {
        status: 503,
        code: Some("server_full".into()),
        message: "too many connections".into(),
    };
    after(r.handle_connect_error(&e, now()));
    after(r.handle_connect_error(&e, now()));
    assert!(
        matches!(stop(r.handle_connect_error(&e, now())), ClosedReason::Refused { code, .. } if code == "server_full")
    );
}

#[test]
fn errors_before_a_close_name_the_refusal() {
    let mut r = Reconnect::new(RetryPolicy::default(), true);
    let close = |code| {
        Disconnect::Refused(Refusal {
            by: RefusedBy::Close(code),
            code: "policy_violation".into(),
            reason: "x".into(),
        })
    };
    for code in ["version_mismatch", "room_full", "kicked"] {
        assert_eq!(
            stop(r.handle_disconnect(&close(1008), Some(&err(code)), false, false, now())),
            ClosedReason::Refused {
                code: code.into(),
                message: format!("{code}!")
            }
        );
    }
    // Without an error message the refusal speaks for itself.
    assert_eq!(
        stop(r.handle_disconnect(&close(1008), None, true, false, now())),
        ClosedReason::Refused {
            code: "policy_violation".into(),
            message: "x".into()
        }
    );
    let http = Disconnect::Refused(Refusal {
        by: RefusedBy::Http(401),
        code: "invalid_token".into(),
        reason: "wrong token".into(),
    });
    assert!(matches!(
        stop(r.handle_disconnect(&http, None, true, false, now())),
        ClosedReason::Refused { code, .. } if code == "invalid_token"
    ));
}

#[test]
fn a_stale_token_retries_at_once_without_it() {
    let mut r = Reconnect::new(RetryPolicy::default(), true);
    r.handle_welcome();
    let close = Disconnect::Lost("closed by the server (code 1000)".into());
    match r.handle_disconnect(&close, Some(&err("unknown_session")), false, false, now()) {
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
    let bye = Disconnect::ShuttingDown("server shutting down".into());
    let mut off = Reconnect::new(RetryPolicy::default(), false);
    off.handle_welcome();
    assert!(matches!(
        stop(off.handle_disconnect(&bye, None, true, false, now())),
        ClosedReason::ServerShutdown(_)
    ));
    let mut on = Reconnect::new(RetryPolicy::default(), true);
    on.handle_welcome();
    assert_eq!(
        after(on.handle_disconnect(&bye, None, true, false, now())),
        ms(100)
    );
    // If it never comes back, the reason is still the shutdown.
    let refused = ConnectError::Unreachable("refused".into());
    let mut last = None;
    for _ in 0..RetryPolicy::default().reconnect_tries {
        if let Next::Stop(r) = on.handle_connect_error(&refused, now()) {
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
        stop(r.handle_disconnect(&lost(), None, true, false, now())),
        ClosedReason::ConnectionLost(_)
    ));
    let mut r = Reconnect::new(RetryPolicy::default(), true);
    assert_eq!(
        stop(r.handle_disconnect(&lost(), None, true, true, now())),
        ClosedReason::Left
    );
    assert_eq!(r.next_attempt(), 1);
    assert_eq!(r.next_attempt(), 2);
}

#[test]
fn an_unknown_session_rejoins_without_the_token_only_before_a_welcome() {
    let mut r = Reconnect::new(RetryPolicy::default(), true);
    r.handle_welcome();
    // Opening a polled session with a token the server forgot.
    let e = ConnectError::Http {
        status: 404,
        code: Some("unknown_session".into()),
        message: "no such session".into(),
    };
    assert!(matches!(
        r.handle_connect_error(&e, now()),
        Next::Retry { after, forget_token: true, .. } if after == Duration::ZERO
    ));
    // A poll of a welcomed session 404s: the snake may still be in its
    // grace, so reconnect with the token, on the backoff.
    let gone = Disconnect::SessionUnknown("no such session".into());
    assert_eq!(
        r.handle_disconnect(&gone, None, true, false, now()),
        Next::Retry {
            after: ms(100),
            reason: "session unknown to the server: no such session".into(),
            forget_token: false
        }
    );
    assert!(matches!(
        r.handle_disconnect(&gone, None, false, false, now()),
        Next::Retry {
            forget_token: true,
            ..
        }
    ));
}

#[test]
fn a_refusal_by_status_stops_with_the_servers_words() {
    let mut r = Reconnect::new(RetryPolicy::default(), true);
    let e = ConnectError::Http {
        status: 426,
        code: Some("upgrade_required".into()),
        message: "not a WebSocket request".into(),
    };
    assert_eq!(
        stop(r.handle_connect_error(&e, now())),
        ClosedReason::Refused {
            code: "upgrade_required".into(),
            message: "not a WebSocket request".into()
        }
    );
}
