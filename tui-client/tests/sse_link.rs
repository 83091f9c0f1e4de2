//! The SSE transport against a scripted HTTP peer on 127.0.0.1: CRLF line
//! ends split across reads, comments and `retry`, the welcome turned into
//! `Welcome` + `Snapshot`, and an `EventSource`-style reconnect that sends
//! `Last-Event-ID` and continues without a second welcome; its pings turn
//! into `GET /api/time` probes answered as pongs.

use std::time::Duration;

use protocol::codec::{Format, encode};
use protocol::sse::{SseWelcome, format_event};
use protocol::state::Delta;
use protocol::{Map, Mode, Role, ServerMsg, Snapshot, TickFrame, Welcome, WorldState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tui_client::client::{self, ClientConfig, ClientEvent, TransportKind};

const WAIT: Duration = Duration::from_secs(10);

fn world(tick: u64) -> WorldState {
    let mut w = WorldState::new(Mode::Snake);
    w.tick = tick;
    w
}

fn tick_event(tick: u64) -> Vec<u8> {
    let t = TickFrame {
        ack: 0,
        tick,
        checksum: world(tick).checksum(),
        server_time_us: 3,
        delta: Delta::default(),
        events: Vec::new(),
    };
    format_event("tick", Some(tick), &encode(Format::Json, &t)).to_vec()
}

fn welcome_event(tick: u64) -> Vec<u8> {
    let w = SseWelcome {
        welcome: Welcome {
            player_id: None,
            session: String::new(),
            token: String::new(),
            room: "lobby".into(),
            mode: Mode::Snake,
            tick_rate: 20,
            speed: 10,
            map: Map::parse("#######\n#0...1#\n#######\n", "tiny").unwrap(),
            resumed: false,
            name: "spectator".into(),
            server_time_us: 1,
        },
        snapshot: Snapshot {
            ack: 0,
            tick,
            checksum: world(tick).checksum(),
            server_time_us: 1,
            state: world(tick),
        },
    };
    format_event("welcome", Some(tick), &encode(Format::Json, &w)).to_vec()
}

/// Accepts the next stream request, answering clock probes on the way
/// (and counting them); returns the socket and the request head, lower-cased.
async fn accept(l: &TcpListener, probes: &mut u32) -> (TcpStream, String) {
    loop {
        let (mut s, _) = tokio::time::timeout(WAIT, l.accept())
            .await
            .unwrap()
            .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            assert_eq!(s.read(&mut b).await.unwrap(), 1, "request cut short");
            head.push(b[0]);
        }
        let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
        if head.starts_with("get /api/time ") {
            *probes += 1;
            let body = r#"{"server_time_us":2}"#;
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(resp.as_bytes()).await.unwrap();
            continue;
        }
        s.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        return (s, head);
    }
}

/// The next event that is not about connecting, lag figures or a probe's pong.
async fn next(rx: &mut tokio::sync::mpsc::Receiver<ClientEvent>) -> ClientEvent {
    loop {
        let ev = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        if !matches!(
            ev,
            ClientEvent::Connecting { .. }
                | ClientEvent::Lag(_)
                | ClientEvent::Server(ServerMsg::Pong(_))
        ) {
            return ev;
        }
    }
}

#[tokio::test]
async fn crlf_split_stream_then_a_reconnect_with_last_event_id() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let mut config = ClientConfig::new(url, "lobby", "eye");
    config.role = Role::Spectator;
    config.format = Format::Json;
    config.transport = TransportKind::Sse;
    let (handle, mut events) = client::spawn(config);
    let mut probes = 0;

    let (mut s, head) = accept(&l, &mut probes).await;
    assert!(head.starts_with("get /rooms/lobby/events "), "{head}");
    assert!(head.contains("accept: text/event-stream"), "{head}");
    assert!(!head.contains("last-event-id"), "{head}");
    // CRLF line ends, a comment, a short retry, split mid-line and between
    // CR and LF.
    let mut body = b"retry: 20\n\n: hello\n\n".to_vec();
    body.extend(welcome_event(5));
    body.extend(tick_event(6));
    let body = String::from_utf8(body).unwrap().replace('\n', "\r\n");
    let body = body.as_bytes();
    let cr = body.iter().position(|&b| b == b'\r').unwrap();
    for piece in [&body[..cr + 1], &body[cr + 1..40], &body[40..]] {
        s.write_all(piece).await.unwrap();
        s.flush().await.unwrap();
    }
    assert!(matches!(next(&mut events).await, ClientEvent::Welcome(w) if w.room == "lobby"));
    assert!(
        matches!(next(&mut events).await, ClientEvent::Server(ServerMsg::Snapshot(s)) if s.tick == 5)
    );
    assert!(
        matches!(next(&mut events).await, ClientEvent::Server(ServerMsg::Tick(t)) if t.tick == 6)
    );
    drop(s);

    // The link reconnects by itself with the last id and carries on.
    let (mut s, head) = accept(&l, &mut probes).await;
    assert!(head.contains("last-event-id: 6\r\n"), "{head}");
    s.write_all(&tick_event(7)).await.unwrap();
    match next(&mut events).await {
        ClientEvent::Server(ServerMsg::Tick(t)) => assert_eq!(t.tick, 7),
        other => panic!("expected tick 7 without a disconnect, got {other:?}"),
    }
    handle.leave();
    assert!(matches!(
        next(&mut events).await,
        ClientEvent::Closed { .. }
    ));
}

#[tokio::test]
async fn a_ping_over_sse_is_a_clock_probe_answered_as_a_pong() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let mut config = ClientConfig::new(url, "lobby", "eye");
    config.role = Role::Spectator;
    config.transport = TransportKind::Sse;
    config.lag_every = None;
    let (handle, mut events) = client::spawn(config);
    let mut probes = 0;
    let (mut s, _) = accept(&l, &mut probes).await;
    s.write_all(&welcome_event(5)).await.unwrap();
    // The session pings at once; the link asks the server clock.
    let server = tokio::spawn(async move {
        let mut probes = 0;
        let _ = accept(&l, &mut probes).await;
        probes
    });
    let pong = loop {
        match tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            ClientEvent::Server(ServerMsg::Pong(p)) => break p,
            _ => continue,
        }
    };
    assert_eq!(pong.server_time_us, 2, "the server clock of GET /api/time");
    handle.leave();
    let lag = loop {
        match tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            ClientEvent::Lag(l) => break l,
            _ => continue,
        }
    };
    assert!(lag.counts.pongs >= 1, "{:?}", lag.counts);
    assert!(lag.traffic.requests >= 2, "the stream and the probe");
    server.abort();
    drop(s);
}
