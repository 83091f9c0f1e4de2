//! The server over real sockets on 127.0.0.1:0: HTTP API and WebSocket play.

use std::time::Duration;

mod common;

use common::ws_recv as recv;

use futures_util::{SinkExt, StreamExt};
use game_server::{RunningServer, ServerConfig, start};
use protocol::codec::encode;
use protocol::*;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(20);
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn server(max_players: u32) -> RunningServer {
    start(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tick_rate: 60,
        map: "small".into(),
        max_players,
        seed: Some(7),
        ..ServerConfig::default()
    })
    .await
    .unwrap()
}

async fn http(s: &RunningServer, method: &str, path: &str, body: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = TcpStream::connect(s.local_addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, c.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn json_body(body: &str) -> serde_json::Value {
    // Bodies may be chunked: take the JSON between the first { or [ and the last } or ].
    let start = body.find(['{', '[']).unwrap();
    let end = body.rfind(['}', ']']).unwrap();
    serde_json::from_str(&body[start..=end]).unwrap()
}

#[tokio::test]
async fn http_api_answers_per_the_contract() {
    let s = server(16).await;
    let (st, head, body) = http(&s, "GET", "/healthz", "").await;
    assert_eq!(st, 200);
    assert!(body.contains("ok"));
    assert!(head.contains("access-control-allow-origin: *"));

    let (st, head, body) = http(&s, "GET", "/api/rooms", "").await;
    assert_eq!(st, 200);
    assert!(head.contains("access-control-allow-origin: *"));
    let rooms = json_body(&body);
    assert_eq!(rooms[0]["id"], "lobby");
    assert_eq!(rooms[0]["map"], "small");
    assert_eq!(rooms[0]["tick_rate"], 60);

    let (st, _, body) = http(&s, "GET", "/api/time", "").await;
    assert_eq!(st, 200);
    assert!(json_body(&body)["server_time_us"].as_u64().unwrap() > 1_600_000_000_000_000);

    let (st, _, body) = http(
        &s,
        "POST",
        "/api/rooms",
        r#"{"id":"duel","mode":"tron","map":"maze","tick_rate":30,"max_players":4}"#,
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let room = json_body(&body);
    assert_eq!(
        (
            room["id"].as_str(),
            room["mode"].as_str(),
            room["max_players"].as_u64()
        ),
        (Some("duel"), Some("tron"), Some(4))
    );
    let (st, _, body) = http(&s, "POST", "/api/rooms", r#"{"id":"duel"}"#).await;
    assert_eq!(st, 409);
    assert_eq!(json_body(&body)["code"], "room_exists");
    let (st, _, body) = http(&s, "POST", "/api/rooms", r#"{"tick_rate":99}"#).await;
    assert_eq!(st, 400);
    assert!(
        json_body(&body)["error"]
            .as_str()
            .unwrap()
            .contains("tick_rate")
    );
    let (st, _, body) = http(&s, "POST", "/api/rooms", r#"{"map":"nowhere"}"#).await;
    assert_eq!(st, 400);
    assert!(
        json_body(&body)["error"]
            .as_str()
            .unwrap()
            .contains("nowhere")
    );
    let (st, _, body) = http(&s, "POST", "/api/rooms", "{not json").await;
    assert_eq!(st, 400);
    assert_eq!(json_body(&body)["code"], "bad_request");

    let (st, _, body) = http(&s, "GET", "/nope", "").await;
    assert_eq!(st, 404);
    assert_eq!(json_body(&body)["code"], "not_found");
    let (st, _, body) = http(&s, "GET", "/rooms/nope/ws", "").await;
    assert_eq!(st, 404);
    assert_eq!(json_body(&body)["code"], "unknown_room");

    let (st, _, body) = http(&s, "GET", "/", "").await;
    assert_eq!(st, 200);
    assert!(body.contains("lobby") && body.contains("duel"));
    s.shutdown().await;
}

async fn connect(s: &RunningServer) -> Ws {
    let url = format!("ws://{}/rooms/lobby/ws", s.local_addr);
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn send(ws: &mut Ws, f: Format, msg: &ClientMsg) {
    let b = encode(f, msg);
    let m = match f {
        Format::Json => Message::text(String::from_utf8(b.to_vec()).unwrap()),
        Format::Bincode => Message::binary(b),
    };
    ws.send(m).await.unwrap();
}

fn hello(name: &str, token: Option<String>) -> ClientMsg {
    ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        name: name.into(),
        role: Role::Player,
        token,
    })
}

async fn join(s: &RunningServer, f: Format, name: &str, token: Option<String>) -> (Ws, Welcome) {
    let mut ws = connect(s).await;
    send(&mut ws, f, &hello(name, token)).await;
    match recv(&mut ws, f).await.unwrap() {
        ServerMsg::Welcome(w) => (ws, *w),
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// Follows the stream for `ticks` ticks, checking every checksum; returns
/// the world and every ack seen.
async fn follow(
    ws: &mut Ws,
    f: Format,
    ticks: u64,
    world: &mut Option<WorldState>,
) -> (WorldState, Vec<u64>) {
    let mut acks = Vec::new();
    let mut seen = 0;
    while seen < ticks {
        match recv(ws, f).await.unwrap() {
            ServerMsg::Snapshot(s) => {
                assert_eq!(s.state.checksum(), s.checksum);
                acks.push(s.ack);
                *world = Some(s.state);
            }
            ServerMsg::Tick(t) => {
                let w = world.as_mut().expect("a snapshot comes first");
                w.apply_frame(&t)
                    .unwrap_or_else(|e| panic!("tick {}: {e}", t.tick));
                acks.push(t.ack);
                seen += 1;
            }
            _ => {}
        }
    }
    (world.clone().unwrap(), acks)
}

#[tokio::test]
async fn both_formats_rebuild_the_world_and_ack_inputs_in_order() {
    let s = server(16).await;
    for f in [Format::Json, Format::Bincode] {
        let (mut ws, w) = join(&s, f, "alice", None).await;
        let mut w_ws = None;
        let me = w.player_id.unwrap();
        assert_eq!(w.token.len(), 32);
        assert_eq!(w.map.name, "Small Box");
        let (world, _) = follow(&mut ws, f, 5, &mut w_ws).await;
        assert!(world.snake(me).is_some(), "our snake is in the world");
        for (seq, dir) in [(1, Dir::Up), (2, Dir::Left), (3, Dir::Down)] {
            send(
                &mut ws,
                f,
                &ClientMsg::Input(Input {
                    seq,
                    dir,
                    boost: false,
                }),
            )
            .await;
        }
        // Replays and stale seqs are ignored.
        send(
            &mut ws,
            f,
            &ClientMsg::Input(Input {
                seq: 2,
                dir: Dir::Right,
                boost: false,
            }),
        )
        .await;
        let (_, acks) = follow(&mut ws, f, 30, &mut w_ws).await;
        assert!(
            acks.windows(2).all(|w| w[0] <= w[1]),
            "acks never go back: {acks:?}"
        );
        assert_eq!(*acks.last().unwrap(), 3);
        send(&mut ws, f, &ClientMsg::Ping(Ping { t: 42 })).await;
        loop {
            if let ServerMsg::Pong(p) = recv(&mut ws, f).await.unwrap() {
                assert_eq!(p.t, 42);
                assert!(p.server_time_us > 0);
                break;
            }
        }
        send(&mut ws, f, &ClientMsg::Leave {}).await;
        loop {
            if let Err((code, _)) = recv(&mut ws, f).await {
                assert_eq!(code, 1000);
                break;
            }
        }
    }
    s.shutdown().await;
}

#[tokio::test]
async fn a_dropped_player_resumes_its_snake_with_the_token() {
    let s = server(16).await;
    let (mut ws, w) = join(&s, Format::Json, "bob", None).await;
    let mut w_ws = None;
    let me = w.player_id.unwrap();
    follow(&mut ws, Format::Json, 3, &mut w_ws).await;
    send(
        &mut ws,
        Format::Json,
        &ClientMsg::Input(Input {
            seq: 1,
            dir: Dir::Up,
            boost: false,
        }),
    )
    .await;
    follow(&mut ws, Format::Json, 5, &mut w_ws).await;
    drop(ws); // the connection dies without a leave

    let (mut ws, w2) = join(&s, Format::Bincode, "ignored", Some(w.token.clone())).await;
    let mut w_ws = None;
    assert!(w2.resumed);
    assert_eq!(w2.player_id, Some(me));
    assert_eq!(w2.name, "bob");
    let (world, acks) = follow(&mut ws, Format::Bincode, 3, &mut w_ws).await;
    assert_eq!(acks[0], 1, "the ack continues from the last applied seq");
    assert!(world.snake(me).is_some());
    assert_eq!(
        world.snakes.iter().filter(|s| s.name == "bob").count(),
        1,
        "no ghost snake"
    );

    let mut bad = connect(&s).await;
    send(&mut bad, Format::Json, &hello("x", Some("00".repeat(16)))).await;
    match recv(&mut bad, Format::Json).await {
        Ok(ServerMsg::Error(e)) => assert_eq!(e.code, "unknown_session"),
        other => panic!("{other:?}"),
    }
    assert_eq!(recv(&mut bad, Format::Json).await.unwrap_err().0, 1008);
    s.shutdown().await;
}

#[tokio::test]
async fn bad_input_closes_with_a_specific_code_and_reason() {
    let s = server(1).await;
    // Wrong version: error naming both versions, then 1002.
    let mut ws = connect(&s).await;
    send(
        &mut ws,
        Format::Json,
        &ClientMsg::Hello(Hello {
            version: 99,
            name: "v".into(),
            role: Role::Player,
            token: None,
        }),
    )
    .await;
    match recv(&mut ws, Format::Json).await {
        Ok(ServerMsg::Error(e)) => {
            assert_eq!(e.code, "version_mismatch");
            assert_eq!(e.message, "this server speaks protocol 2; you have 99");
        }
        other => panic!("{other:?}"),
    }
    let (code, reason) = recv(&mut ws, Format::Json).await.unwrap_err();
    assert_eq!(code, 1002);
    assert!(reason.contains("99"));

    // Garbage after a good hello: 1007.
    let (mut ws, _) = join(&s, Format::Json, "g", None).await;
    ws.send(Message::text("{\"input\": nonsense"))
        .await
        .unwrap();
    loop {
        if let Err((code, _)) = recv(&mut ws, Format::Json).await {
            assert_eq!(code, 1007);
            break;
        }
    }
    // That player is in grace, so the 1-player room is full for a newcomer.
    let mut ws = connect(&s).await;
    send(&mut ws, Format::Json, &hello("late", None)).await;
    match recv(&mut ws, Format::Json).await {
        Ok(ServerMsg::Error(e)) => assert_eq!(e.code, "room_full"),
        other => panic!("{other:?}"),
    }
    assert_eq!(recv(&mut ws, Format::Json).await.unwrap_err().0, 1008);

    // Oversize frame: 1009. (A spectator, so the full room does not matter.)
    let mut ws = connect(&s).await;
    send(
        &mut ws,
        Format::Bincode,
        &ClientMsg::Hello(Hello {
            version: PROTOCOL_VERSION,
            name: "s".into(),
            role: Role::Spectator,
            token: None,
        }),
    )
    .await;
    assert!(matches!(
        recv(&mut ws, Format::Bincode).await,
        Ok(ServerMsg::Welcome(_))
    ));
    let _ = ws.send(Message::binary(vec![0u8; 64 * 1024])).await;
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(c)))) => {
                assert_eq!(c.code, CloseCode::Size);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a 1009 close, got {other:?}"),
        }
    }
    // A text frame on a bincode session: 1003.
    let mut ws = connect(&s).await;
    send(
        &mut ws,
        Format::Bincode,
        &ClientMsg::Hello(Hello {
            version: PROTOCOL_VERSION,
            name: "s".into(),
            role: Role::Spectator,
            token: None,
        }),
    )
    .await;
    assert!(matches!(
        recv(&mut ws, Format::Bincode).await,
        Ok(ServerMsg::Welcome(_))
    ));
    ws.send(Message::text("{}")).await.unwrap();
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(c)))) => {
                assert_eq!(u16::from(c.code), 1003);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a 1003 close, got {other:?}"),
        }
    }
    s.shutdown().await;
}

#[tokio::test]
async fn spectators_see_the_same_world_and_shutdown_closes_with_1001() {
    let s = server(16).await;
    let (mut player, w) = join(&s, Format::Bincode, "p", None).await;
    let mut spec = connect(&s).await;
    send(
        &mut spec,
        Format::Json,
        &ClientMsg::Hello(Hello {
            version: PROTOCOL_VERSION,
            name: "s".into(),
            role: Role::Spectator,
            token: None,
        }),
    )
    .await;
    let sw = match recv(&mut spec, Format::Json).await.unwrap() {
        ServerMsg::Welcome(w) => w,
        other => panic!("{other:?}"),
    };
    assert_eq!(sw.player_id, None);
    let (mut w_player, mut w_spec) = (None, None);
    let (pw, _) = follow(&mut player, Format::Bincode, 10, &mut w_player).await;
    let (sworld, acks) = follow(&mut spec, Format::Json, 10, &mut w_spec).await;
    assert!(acks.iter().all(|a| *a == 0), "spectators have no ack");
    assert!(sworld.snake(w.player_id.unwrap()).is_some());
    // Joined later, it sees as far; its first snapshot is the world when it
    // joined (the fan-out's), a player's the tick after its join.
    assert!(sworld.tick + 1 >= pw.tick);
    // Chat reaches everyone, sanitised.
    send(
        &mut player,
        Format::Bincode,
        &ClientMsg::Chat(ChatText {
            text: "hi\x1b[2J there".into(),
        }),
    )
    .await;
    loop {
        if let ServerMsg::Chat(c) = recv(&mut spec, Format::Json).await.unwrap() {
            assert_eq!(c.from, "p");
            assert_eq!(c.text, "hi there");
            break;
        }
    }
    let shutdown = tokio::spawn(s.shutdown());
    loop {
        if let Err((code, reason)) = recv(&mut spec, Format::Json).await {
            assert_eq!(code, 1001);
            assert!(reason.contains("shutting down"));
            break;
        }
    }
    tokio::time::timeout(WAIT, shutdown).await.unwrap().unwrap();
}
