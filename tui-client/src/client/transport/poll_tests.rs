//! The polled session's bookkeeping on synthetic time, no sockets.

use super::*;
use protocol::{Ping, Pong};

const JSON: Format = Format::Json;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn pong(t: u64) -> ServerMsg {
    ServerMsg::Pong(Pong {
        t,
        server_time_us: t,
    })
}

/// A poll answer carrying `seqs` (each message's pong echoes its seq).
fn answer(seqs: &[u64]) -> Vec<u8> {
    let batch = PollBatch {
        messages: seqs
            .iter()
            .map(|&seq| Sequenced {
                seq,
                msg: pong(seq),
            })
            .collect(),
        next: seqs.last().copied().unwrap_or(0),
    };
    codec::encode(JSON, &batch).to_vec()
}

fn delivered(step: Step<Vec<ServerMsg>>) -> Vec<u64> {
    match step {
        Step::Next { out, .. } => out
            .into_iter()
            .map(|m| match m {
                ServerMsg::Pong(p) => p.t,
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("expected messages, got {other:?}"),
    }
}

fn long() -> Poller {
    Poller::new(PollMode::Long {
        wait: LONG_POLL_WAIT,
    })
}

#[test]
fn each_poll_asks_after_the_last_message_handed_on() {
    let t0 = Instant::now();
    let mut p = long();
    assert_eq!(
        p.request(),
        (
            "poll?after=0&wait=25".to_string(),
            LONG_POLL_WAIT + REQUEST_SLACK
        )
    );
    assert_eq!(
        delivered(p.handle_answer(t0, JSON, 200, &answer(&[1, 2, 3]))),
        [1, 2, 3]
    );
    assert_eq!(p.request().0, "poll?after=3&wait=25");
    // An empty answer after the hold is normal.
    assert_eq!(
        delivered(p.handle_answer(t0, JSON, 200, &answer(&[]))),
        Vec::<u64>::new()
    );
    assert_eq!(p.after(), 3);
}

#[test]
fn a_lost_answer_is_asked_again_and_repeats_are_dropped() {
    let t0 = Instant::now();
    let mut p = long();
    delivered(p.handle_answer(t0, JSON, 200, &answer(&[1, 2])));
    // The answer carrying 3 and 4 was lost on the way: same `after` again.
    assert_eq!(p.handle_failure(t0, "reset".into()), Step::Retry(ms(20)));
    assert_eq!(p.request().0, "poll?after=2&wait=25");
    // The server re-sends 3 and 4 (a superseded poll may repeat 2 too).
    assert_eq!(
        delivered(p.handle_answer(t0, JSON, 200, &answer(&[2, 3, 4]))),
        [3, 4]
    );
    // The older, superseded poll returns late with what it had: nothing new.
    assert_eq!(
        delivered(p.handle_answer(t0, JSON, 200, &answer(&[3, 4]))),
        Vec::<u64>::new()
    );
    assert_eq!(p.after(), 4);
}

#[test]
fn a_gap_in_the_seqs_ends_the_link() {
    let mut p = long();
    let step = p.handle_answer(Instant::now(), JSON, 200, &answer(&[1, 3]));
    assert!(matches!(step, Step::End(Disconnect::BadFrame(m)) if m.contains("1 to 3")));
}

#[test]
fn short_polls_wait_the_interval_and_ask_for_no_hold() {
    let mut p = Poller::new(PollMode::Short { interval: ms(250) });
    assert_eq!(
        p.request(),
        ("poll?after=0&wait=0".to_string(), REQUEST_SLACK)
    );
    match p.handle_answer(Instant::now(), JSON, 200, &answer(&[1])) {
        Step::Next { wait, .. } => assert_eq!(wait, ms(250)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn failures_back_off_then_lose_the_link_after_ten_seconds() {
    let t0 = Instant::now();
    let mut p = long();
    assert_eq!(p.handle_failure(t0, "reset".into()), Step::Retry(ms(20)));
    assert_eq!(
        p.handle_answer(t0 + ms(100), JSON, 502, b"bad gateway"),
        Step::Retry(ms(40))
    );
    assert_eq!(
        p.handle_failure(t0 + ms(200), "reset".into()),
        Step::Retry(ms(80))
    );
    match p.handle_failure(t0 + ms(10_000), "reset".into()) {
        Step::End(Disconnect::Lost(why)) => assert!(why.contains("reset"), "{why}"),
        other => panic!("{other:?}"),
    }
    // A success in between starts the streak over.
    let mut p = long();
    p.handle_failure(t0, "reset".into());
    delivered(p.handle_answer(t0 + ms(9_000), JSON, 200, &answer(&[1])));
    assert_eq!(
        p.handle_failure(t0 + ms(12_000), "reset".into()),
        Step::Retry(ms(20))
    );
}

#[test]
fn what_the_server_answers_means_in_words() {
    let t0 = Instant::now();
    let gone = br#"{"error":"no such session","code":"unknown_session"}"#;
    assert_eq!(
        long().handle_answer(t0, JSON, 404, gone),
        Step::End(Disconnect::SessionUnknown("no such session".into()))
    );
    let bye = br#"{"error":"server restarting","code":"shutting_down"}"#;
    assert_eq!(
        long().handle_answer(t0, JSON, 503, bye),
        Step::End(Disconnect::ShuttingDown("server restarting".into()))
    );
    assert_eq!(
        long().handle_answer(
            t0,
            JSON,
            401,
            br#"{"error":"wrong token","code":"invalid_token"}"#
        ),
        Step::End(Disconnect::Refused(Refusal {
            by: RefusedBy::Http(401),
            code: "invalid_token".into(),
            reason: "wrong token".into(),
        }))
    );
    // Without a JSON body the status speaks.
    assert_eq!(
        long().handle_answer(t0, JSON, 413, b"<html>"),
        Step::End(Disconnect::Refused(Refusal {
            by: RefusedBy::Http(413),
            code: "http_413".into(),
            reason: "Payload Too Large".into(),
        }))
    );
    // A full server or a throttle is worth another try.
    let full = br#"{"error":"too many","code":"server_full"}"#;
    assert_eq!(
        long().handle_answer(t0, JSON, 503, full),
        Step::Retry(ms(20))
    );
    assert_eq!(
        long().handle_answer(t0, JSON, 429, b""),
        Step::Retry(ms(20))
    );
    assert!(matches!(
        long().handle_answer(t0, JSON, 200, b"{not json"),
        Step::End(Disconnect::BadFrame(_))
    ));
}

fn ping(t: u64) -> ClientMsg {
    ClientMsg::Ping(Ping { t })
}

fn ack(applied: u64) -> Vec<u8> {
    codec::encode(JSON, &SendAck { applied }).to_vec()
}

fn seqs(s: &Sender) -> Vec<u64> {
    s.batch()
        .map(|b| b.messages.iter().map(|m| m.seq).collect())
        .unwrap_or_default()
}

#[test]
fn client_messages_are_numbered_and_reposted_until_applied() {
    let t0 = Instant::now();
    let mut s = Sender::default();
    assert_eq!(s.batch(), None);
    assert_eq!(s.push(ping(10)), 1);
    assert_eq!(s.push(ping(20)), 2);
    assert_eq!(seqs(&s), [1, 2]);
    // The post was lost: the same messages go again, with the same seqs.
    assert_eq!(s.handle_failure(t0, "reset".into()), Step::Retry(ms(20)));
    assert_eq!(s.push(ping(30)), 3);
    assert_eq!(seqs(&s), [1, 2, 3]);
    // The server applied up to 2 (3 arrived after its answer was made).
    assert_eq!(
        s.handle_answer(t0, JSON, 200, &ack(2)),
        Step::Next {
            out: (),
            wait: Duration::ZERO
        }
    );
    assert_eq!(seqs(&s), [3]);
    let batch = s.batch().unwrap();
    assert_eq!(batch.messages[0].msg, ping(30));
    // An old ack (a re-sent post answered late) takes nothing back.
    s.handle_answer(t0, JSON, 200, &ack(1));
    assert_eq!(s.pending(), 1);
    s.handle_answer(t0, JSON, 200, &ack(3));
    assert_eq!(s.batch(), None);
}

#[test]
fn a_refused_send_ends_the_link() {
    let mut s = Sender::default();
    s.push(ping(1));
    let too_big = br#"{"error":"body too large","code":"too_large"}"#;
    assert!(matches!(
        s.handle_answer(Instant::now(), JSON, 413, too_big),
        Step::End(Disconnect::Refused(Refusal { code, .. })) if code == "too_large"
    ));
}

#[test]
fn opening_a_session_wants_a_welcome() {
    let e = opened(
        JSON,
        404,
        br#"{"error":"forgotten","code":"unknown_session"}"#,
    )
    .unwrap_err();
    assert_eq!(
        e,
        ConnectError::Http {
            status: 404,
            code: Some("unknown_session".into()),
            message: "forgotten".into()
        }
    );
    let not_welcome = codec::encode(JSON, &pong(1));
    assert!(matches!(
        opened(JSON, 201, &not_welcome),
        Err(ConnectError::Unreachable(_))
    ));
}
