//! The connection's rules on synthetic time: no socket, no clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::codec::encode;
use protocol::{ChatText, ClientMsg, Dir, Format, Hello, Input, PROTOCOL_VERSION, Ping, Role};

use super::*;

fn limits() -> Arc<Limits> {
    Arc::new(Limits::default())
}

fn conn(spectator: bool, t0: Instant) -> Connection {
    Connection::new(7, spectator, limits(), Arc::default(), t0)
}

fn at(t0: Instant, ms: u64) -> Now {
    Now {
        at: t0 + Duration::from_millis(ms),
        unix_us: 1_000_000 + ms * 1000,
    }
}

fn input(seq: u64) -> ClientMsg {
    ClientMsg::Input(Input {
        seq,
        dir: Dir::Up,
        boost: false,
    })
}

fn hello(version: u32) -> ClientMsg {
    ClientMsg::Hello(Hello {
        version,
        name: "alice".into(),
        role: Role::Player,
        token: None,
    })
}

#[test]
fn a_hello_of_this_version_opens_and_anything_else_is_refused_in_words() {
    for format in [Format::Json, Format::Bincode] {
        let ok = on_hello(format, &encode(format, &hello(PROTOCOL_VERSION)));
        assert_eq!(ok.map(|h| h.name), Ok("alice".to_string()));
        let old = on_hello(format, &encode(format, &hello(PROTOCOL_VERSION + 1)));
        let e = old.unwrap_err();
        assert_eq!(e.code(), "version_mismatch");
        // Both versions, in the words the TUI shows.
        assert_eq!(
            e.to_string(),
            format!(
                "this server speaks protocol {PROTOCOL_VERSION}; you have {}",
                PROTOCOL_VERSION + 1
            )
        );
        let e = on_hello(format, &encode(format, &input(1))).unwrap_err();
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            ("bad_message", "the first message must be hello")
        );
    }
    let e = on_hello(Format::Json, b"{nope").unwrap_err();
    assert_eq!(e.code(), "bad_message");
    assert!(e.to_string().starts_with("bad hello: "), "{e}");
}

#[test]
fn a_players_input_goes_to_the_room_and_a_spectators_is_dropped() {
    let t0 = Instant::now();
    let mut player = conn(false, t0);
    assert!(matches!(
        player.on_message(at(t0, 1), input(1)),
        Some(Action::Room(RoomCmd::Input { sub: 7, .. }))
    ));
    let mut spectator = conn(true, t0);
    assert!(spectator.on_message(at(t0, 1), input(1)).is_none());
}

#[test]
fn a_ping_is_answered_with_the_servers_time() {
    let t0 = Instant::now();
    let mut c = conn(false, t0);
    match c.on_message(at(t0, 5), ClientMsg::Ping(Ping { t: 42 })) {
        Some(Action::Reply(ServerMsg::Pong(p))) => {
            assert_eq!((p.t, p.server_time_us), (42, 1_005_000));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn chat_over_its_limit_is_answered_with_an_error_and_counted() {
    let t0 = Instant::now();
    let counters = Arc::new(Counters::default());
    let l = limits();
    let mut c = Connection::new(1, false, l.clone(), counters.clone(), t0);
    let chat = || ClientMsg::Chat(ChatText { text: "hi".into() });
    let mut sent = 0;
    let mut refused = Vec::new();
    for _ in 0..(l.chat_burst as usize + 2) {
        match c.on_message(at(t0, 0), chat()) {
            Some(Action::Room(RoomCmd::Chat { .. })) => sent += 1,
            Some(Action::Reply(ServerMsg::Error(e))) => refused.push(e),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sent, l.chat_burst as usize);
    assert_eq!(refused.len(), 2);
    assert_eq!(refused[0].code, "rate_limited");
    assert_eq!(refused[0].message, l.chat_limit_message());
    assert_eq!(counters.snapshot().chat_dropped, 2);
    // Time refills the bucket.
    assert!(matches!(
        c.on_message(at(t0, 60_000), chat()),
        Some(Action::Room(RoomCmd::Chat { .. }))
    ));
}

#[test]
fn a_second_hello_is_an_error_and_the_session_stays() {
    let t0 = Instant::now();
    let mut c = conn(false, t0);
    match c.on_message(at(t0, 1), hello(PROTOCOL_VERSION)) {
        Some(Action::Reply(ServerMsg::Error(e))) => {
            assert_eq!(e.code, "bad_message");
            assert!(e.message.starts_with("already welcomed"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    assert!(!c.is_over());
}

#[test]
fn leave_ends_the_session_once_and_nothing_detaches_it_after() {
    let t0 = Instant::now();
    let mut c = conn(false, t0);
    match c.on_message(at(t0, 1), ClientMsg::Leave {}) {
        Some(Action::End(Ended {
            cmd: RoomCmd::Leave { sub: 7 },
            why: Ending::Left,
        })) => {}
        other => panic!("{other:?}"),
    }
    assert!(c.is_over());
    assert!(c.detach().is_none());
    assert!(c.leave().is_none());
}

#[test]
fn detach_is_sent_once() {
    let t0 = Instant::now();
    let mut c = conn(false, t0);
    assert!(matches!(c.detach(), Some(RoomCmd::Detach { sub: 7 })));
    assert!(c.detach().is_none());
}

#[test]
fn a_flood_ends_the_session_with_a_detach_and_a_reason() {
    let t0 = Instant::now();
    let l = limits();
    let counters = Arc::new(Counters::default());
    let mut c = Connection::new(3, false, l.clone(), counters.clone(), t0);
    let mut passed = 0;
    let ended = loop {
        match c.admit(t0) {
            Ok(true) => passed += 1,
            Ok(false) => {}
            Err(e) => break e,
        }
        assert!(passed < 100_000, "never flooded");
    };
    assert_eq!(passed, l.input_burst as usize);
    assert!(matches!(ended.cmd, RoomCmd::Detach { sub: 3 }));
    match ended.why {
        Ending::Refused(r) => {
            assert_eq!(r.code(), "rate_limited");
            assert!(r.to_string().starts_with("input flood"), "{r}");
        }
        other => panic!("{other:?}"),
    }
    assert!(c.is_over());
    assert!(c.detach().is_none(), "the room already heard");
    assert_eq!(counters.snapshot().input_floods, 1);
}
