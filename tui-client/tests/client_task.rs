//! The client task against a scripted WebSocket peer on 127.0.0.1: the
//! hello, resuming with the token after a dropped connection, input
//! numbering across the resume, and what each kind of refusal ends as.
//! (The real server is covered by the workspace `tests/` crate.)

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use protocol::codec::{self, Format};
use protocol::{
    ClientMsg, Dir, ErrorMsg, Map, Mode, Score, ServerMsg, SnakeState, Snapshot, Welcome,
    WorldState,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tui_client::client::{self, ClientConfig, ClientEvent, ClosedReason};

/// Generous bound on waiting for one event; never hit when things work.
const WAIT: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<TcpStream>;

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

async fn accept(l: &TcpListener) -> Ws {
    let (tcp, _) = tokio::time::timeout(WAIT, l.accept())
        .await
        .unwrap()
        .unwrap();
    tokio_tungstenite::accept_async(tcp).await.unwrap()
}

/// The next client message that is not a ping.
async fn recv(ws: &mut Ws) -> (ClientMsg, Format) {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("client message in time")
            .expect("stream open")
            .expect("frame");
        let (msg, format) = match frame {
            Message::Text(t) => (
                codec::decode(Format::Json, t.as_bytes()).unwrap(),
                Format::Json,
            ),
            Message::Binary(b) => (codec::decode(Format::Bincode, &b).unwrap(), Format::Bincode),
            _ => continue,
        };
        if !matches!(msg, ClientMsg::Ping(_)) {
            return (msg, format);
        }
    }
}

async fn send(ws: &mut Ws, format: Format, msg: &ServerMsg) {
    let bytes = codec::encode(format, msg);
    let frame = match format {
        Format::Json => Message::Text(String::from_utf8(bytes.to_vec()).unwrap().into()),
        Format::Bincode => Message::Binary(bytes),
    };
    ws.send(frame).await.unwrap();
}

fn welcome(id: u32, token: &str, resumed: bool) -> ServerMsg {
    ServerMsg::Welcome(Box::new(Welcome {
        player_id: Some(id),
        session: "s1".into(),
        token: token.into(),
        room: "lobby".into(),
        mode: Mode::Snake,
        tick_rate: 20,
        speed: 10,
        map: Map::parse("#######\n#0...1#\n#######\n", "tiny").unwrap(),
        resumed,
        name: "alice".into(),
        server_time_us: 1,
    }))
}

fn snapshot(id: u32, ack: u64, dir: Dir) -> ServerMsg {
    let mut state = WorldState::new(Mode::Snake);
    state.tick = 5;
    state.snakes.push(SnakeState {
        id,
        name: "alice".into(),
        body: [protocol::Pos::new(3, 1)].into(),
        dir,
        alive: true,
        respawn_in: 0,
        boost: false,
        connected: true,
        score: Score::default(),
    });
    ServerMsg::Snapshot(Box::new(Snapshot {
        ack,
        tick: 5,
        checksum: state.checksum(),
        server_time_us: 2,
        state,
    }))
}

async fn next(rx: &mut mpsc::Receiver<ClientEvent>) -> ClientEvent {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("client event in time")
        .expect("events until Closed")
}

/// Skips events until one matches.
async fn until(
    rx: &mut mpsc::Receiver<ClientEvent>,
    want: impl Fn(&ClientEvent) -> bool,
) -> ClientEvent {
    loop {
        let e = next(rx).await;
        if want(&e) {
            return e;
        }
        assert!(
            !matches!(e, ClientEvent::Closed { .. }),
            "closed before the awaited event: {e:?}"
        );
    }
}

async fn closed(rx: &mut mpsc::Receiver<ClientEvent>) -> ClosedReason {
    match until(rx, |e| matches!(e, ClientEvent::Closed { .. })).await {
        ClientEvent::Closed { reason } => reason,
        _ => unreachable!(),
    }
}

fn config(url: &str, format: Format) -> ClientConfig {
    let mut c = ClientConfig::new(url, "lobby", "alice");
    c.format = format;
    c
}

#[tokio::test]
async fn resumes_with_the_token_and_keeps_numbering_inputs() {
    for format in [Format::Json, Format::Bincode] {
        let (l, url) = listener().await;
        let (handle, mut rx) = client::spawn(config(&url, format));

        let mut ws = accept(&l).await;
        let (hello, got_format) = recv(&mut ws).await;
        assert_eq!(got_format, format, "frames are in the configured format");
        let ClientMsg::Hello(h) = hello else {
            panic!("first frame {hello:?}")
        };
        assert_eq!(
            (h.version, h.name.as_str(), h.token),
            (protocol::PROTOCOL_VERSION, "alice", None)
        );
        send(&mut ws, format, &welcome(5, "tok-1", false)).await;
        send(&mut ws, format, &snapshot(5, 0, Dir::Up)).await;
        until(&mut rx, |e| {
            matches!(e, ClientEvent::Server(ServerMsg::Snapshot(_)))
        })
        .await;

        handle.steer(Dir::Left);
        handle.steer(Dir::Left);
        handle.steer(Dir::Down);
        let ClientMsg::Input(a) = recv(&mut ws).await.0 else {
            panic!()
        };
        let ClientMsg::Input(b) = recv(&mut ws).await.0 else {
            panic!()
        };
        assert_eq!((a.seq, a.dir, b.seq, b.dir), (1, Dir::Left, 2, Dir::Down));
        match until(&mut rx, |e| {
            matches!(e, ClientEvent::InputSent { seq: 2, .. })
        })
        .await
        {
            ClientEvent::InputSent { dir, boost, .. } => {
                assert_eq!((dir, boost), (Dir::Down, false))
            }
            _ => unreachable!(),
        }

        // The connection drops without a close frame.
        drop(ws);
        match until(&mut rx, |e| matches!(e, ClientEvent::Disconnected { .. })).await {
            ClientEvent::Disconnected { retrying, .. } => assert!(retrying),
            _ => unreachable!(),
        }
        let mut ws = accept(&l).await;
        let ClientMsg::Hello(h) = recv(&mut ws).await.0 else {
            panic!()
        };
        assert_eq!(
            h.token.as_deref(),
            Some("tok-1"),
            "the resume carries the token"
        );
        send(&mut ws, format, &welcome(5, "tok-1", true)).await;
        match until(&mut rx, |e| matches!(e, ClientEvent::Welcome(_))).await {
            ClientEvent::Welcome(w) => assert!(w.resumed && w.player_id == Some(5)),
            _ => unreachable!(),
        }
        send(&mut ws, format, &snapshot(5, 2, Dir::Down)).await;
        until(&mut rx, |e| {
            matches!(e, ClientEvent::Server(ServerMsg::Snapshot(_)))
        })
        .await;
        handle.steer(Dir::Right);
        let ClientMsg::Input(c) = recv(&mut ws).await.0 else {
            panic!()
        };
        assert_eq!(
            (c.seq, c.dir),
            (3, Dir::Right),
            "numbering continues after the resume"
        );

        handle.chat("gg".into());
        assert!(matches!(recv(&mut ws).await.0, ClientMsg::Chat(t) if t.text == "gg"));
        handle.resync();
        assert_eq!(recv(&mut ws).await.0, ClientMsg::Resync {});
        handle.leave();
        assert_eq!(recv(&mut ws).await.0, ClientMsg::Leave {});
        assert_eq!(closed(&mut rx).await, ClosedReason::Left);
        assert!(rx.recv().await.is_none(), "Closed is the last event");
    }
}

#[tokio::test]
async fn pings_carry_the_client_clock() {
    let (l, url) = listener().await;
    let (_handle, _rx) = client::spawn(config(&url, Format::Json));
    let mut ws = accept(&l).await;
    recv(&mut ws).await;
    send(&mut ws, Format::Json, &welcome(1, "t", false)).await;
    let ping = loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("stream ended")
        };
        if let ClientMsg::Ping(p) = codec::decode::<ClientMsg>(Format::Json, t.as_bytes()).unwrap()
        {
            break p;
        }
    };
    // Unix micros after 2020-01-01.
    assert!(ping.t > 1_577_836_800_000_000, "{}", ping.t);
}

#[tokio::test]
async fn an_error_then_a_policy_close_is_a_refusal_without_retry() {
    let (l, url) = listener().await;
    let (_handle, mut rx) = client::spawn(config(&url, Format::Json));
    let mut ws = accept(&l).await;
    recv(&mut ws).await;
    let e = ErrorMsg {
        code: "room_full".into(),
        message: "room lobby is full (16 players)".into(),
    };
    send(&mut ws, Format::Json, &ServerMsg::Error(e)).await;
    ws.close(Some(CloseFrame {
        code: 1008.into(),
        reason: "room full".into(),
    }))
    .await
    .unwrap();
    let mut attempts = 0;
    let reason = loop {
        match next(&mut rx).await {
            ClientEvent::Connecting { .. } => attempts += 1,
            ClientEvent::Closed { reason } => break reason,
            _ => {}
        }
    };
    assert_eq!(attempts, 1, "a refusal is not retried");
    assert_eq!(
        reason,
        ClosedReason::Refused {
            code: "room_full".into(),
            message: "room lobby is full (16 players)".into()
        }
    );
}

#[tokio::test]
async fn an_unknown_room_is_refused_from_the_404() {
    let (l, url) = listener().await;
    tokio::spawn(async move {
        let (mut tcp, _) = l.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = tcp.read(&mut buf).await.unwrap();
        let body = r#"{"error":"no room named \"lobby\"","code":"unknown_room"}"#;
        let resp = format!(
            "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(resp.as_bytes()).await.unwrap();
    });
    let (_handle, mut rx) = client::spawn(config(&url, Format::Bincode));
    assert_eq!(
        closed(&mut rx).await,
        ClosedReason::Refused {
            code: "unknown_room".into(),
            message: "no room named \"lobby\"".into()
        }
    );
}

#[tokio::test]
async fn an_unreachable_server_is_given_up_after_a_few_tries() {
    let (l, url) = listener().await;
    drop(l); // nothing listens on that port any more
    let (_handle, mut rx) = client::spawn(config(&url, Format::Bincode));
    let mut attempts = 0;
    let reason = loop {
        match next(&mut rx).await {
            ClientEvent::Connecting { attempt } => {
                attempts += 1;
                assert_eq!(attempt, attempts);
            }
            // The final figures (nothing measured) come before the close.
            ClientEvent::Lag(lag) => assert_eq!(lag.counts.frames, 0),
            ClientEvent::Closed { reason } => break reason,
            e => panic!("unexpected {e:?}"),
        }
    };
    assert_eq!(attempts, client::RetryPolicy::default().connect_tries);
    assert!(matches!(reason, ClosedReason::Unreachable(_)), "{reason:?}");
}

#[tokio::test]
async fn going_away_is_a_server_shutdown_when_not_reconnecting() {
    let (l, url) = listener().await;
    let mut c = config(&url, Format::Json);
    c.reconnect = false;
    let (_handle, mut rx) = client::spawn(c);
    let mut ws = accept(&l).await;
    recv(&mut ws).await;
    send(&mut ws, Format::Json, &welcome(1, "t", false)).await;
    ws.close(Some(CloseFrame {
        code: 1001.into(),
        reason: "server shutting down".into(),
    }))
    .await
    .unwrap();
    match until(&mut rx, |e| matches!(e, ClientEvent::Disconnected { .. })).await {
        ClientEvent::Disconnected { retrying, .. } => assert!(!retrying),
        _ => unreachable!(),
    }
    assert_eq!(
        closed(&mut rx).await,
        ClosedReason::ServerShutdown("server shutting down".into())
    );
}

#[tokio::test]
async fn dropping_every_handle_leaves_the_room() {
    let (l, url) = listener().await;
    let (handle, mut rx) = client::spawn(config(&url, Format::Json));
    let mut ws = accept(&l).await;
    recv(&mut ws).await;
    send(&mut ws, Format::Json, &welcome(1, "t", false)).await;
    until(&mut rx, |e| matches!(e, ClientEvent::Welcome(_))).await;
    drop(handle);
    assert_eq!(recv(&mut ws).await.0, ClientMsg::Leave {});
    assert_eq!(closed(&mut rx).await, ClosedReason::Left);
}
