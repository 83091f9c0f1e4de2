//! Rooms that cannot be used to take the server down, over real sockets:
//! the room cap (503), the creation rate (429), persistent rooms being the
//! operator's alone (403), idle close, the default and the operator's
//! rooms staying, and a room that sleeps while empty and wakes on its tick
//! grid with consecutive, checksummed ticks.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Sse, WAIT, get, http_raw, server};
use futures_util::{SinkExt, StreamExt};
use protocol::codec::decode;
use protocol::sse::{SseMsg, decode_event};
use protocol::{Format, PROTOCOL_VERSION, ServerMsg, WorldState};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// One request on its own connection; status and body.
async fn call(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, _, json) = http_raw(addr, &req).await;
    (status, json)
}

async fn create(addr: SocketAddr, body: &str) -> (u16, serde_json::Value) {
    call(addr, "POST", "/api/rooms", body).await
}

/// The ids of `GET /api/rooms`.
async fn room_ids(addr: SocketAddr) -> Vec<String> {
    let (status, rooms) = call(addr, "GET", "/api/rooms", "").await;
    assert_eq!(status, 200);
    rooms
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// Polls `/api/rooms` until `room` is gone (never longer than [`WAIT`]).
async fn until_gone(addr: SocketAddr, room: &str) {
    tokio::time::timeout(WAIT, async {
        while room_ids(addr).await.iter().any(|r| r == room) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("room {room} never closed"));
}

/// The value of one `/metrics` line (by its exact series name).
async fn metric(addr: SocketAddr, series: &str) -> f64 {
    let (_, _, text) = get(addr, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A JSON WebSocket client in `room` (player or spectator), after its welcome.
async fn ws_join(addr: SocketAddr, room: &str, name: &str, role: &str) -> Ws {
    let url = format!("ws://{addr}/rooms/{room}/ws");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello =
        serde_json::json!({"hello": {"version": PROTOCOL_VERSION, "name": name, "role": role}});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    match next_msg(&mut ws).await {
        ServerMsg::Welcome(_) => ws,
        other => panic!("expected a welcome, got {other:?}"),
    }
}

async fn next_msg(ws: &mut Ws) -> ServerMsg {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("the stream goes on")
            .unwrap();
        if let Message::Text(t) = m {
            return decode(Format::Json, t.as_bytes()).unwrap();
        }
    }
}

/// Leaves on purpose and waits for the server to close, so the leave is in.
async fn ws_leave(mut ws: Ws) {
    let leave = serde_json::json!({"leave": {}});
    ws.send(Message::text(leave.to_string())).await.unwrap();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, ws.next()).await {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_cap_answers_503_and_metrics_count_it() {
    let s = server(|c| {
        c.limits.max_rooms = 3;
        c.limits.room_create_rate = 0.0;
    })
    .await;
    assert_eq!(create(s.local_addr, r#"{"id":"a"}"#).await.0, 201);
    assert_eq!(create(s.local_addr, r#"{"id":"b"}"#).await.0, 201);
    // The lobby counts: three rooms are open.
    let (status, err) = create(s.local_addr, r#"{"id":"c","map":"big"}"#).await;
    assert_eq!(status, 503, "{err}");
    assert_eq!(err["code"], "too_many_rooms");
    assert!(err["error"].as_str().unwrap().contains('3'), "{err}");
    // A bad request is still a 400, and a taken name still a 409.
    assert_eq!(create(s.local_addr, r#"{"tick_rate":99}"#).await.0, 400);
    assert_eq!(create(s.local_addr, r#"{"id":"a"}"#).await.0, 409);
    assert_eq!(room_ids(s.local_addr).await, ["a", "b", "lobby"]);
    let addr = s.local_addr;
    assert_eq!(metric(addr, "tickwire_rooms_open").await, 3.0);
    assert_eq!(metric(addr, "tickwire_rooms_max").await, 3.0);
    assert_eq!(
        metric(
            addr,
            "tickwire_rooms_refused_total{reason=\"too_many_rooms\"}"
        )
        .await,
        1.0
    );
    // Nobody is in any of them: all three sleep.
    assert_eq!(metric(addr, "tickwire_rooms_asleep").await, 3.0);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_creation_rate_answers_429_and_persistent_is_the_operators() {
    let s = server(|c| {
        c.limits.room_create_rate = 6.0;
        c.limits.room_create_burst = 2.0;
    })
    .await;
    assert_eq!(create(s.local_addr, "").await.0, 201);
    assert_eq!(create(s.local_addr, r#"{"mode":"tron"}"#).await.0, 201);
    let (status, err) = create(s.local_addr, r#"{"id":"third"}"#).await;
    assert_eq!(status, 429, "{err}");
    assert_eq!(err["code"], "room_create_rate");
    assert!(
        err["error"].as_str().unwrap().contains("try again in 10 s"),
        "{err}"
    );
    // Refused attempts take nothing and make nothing.
    assert_eq!(create(s.local_addr, r#"{"id":"third"}"#).await.0, 429);
    assert_eq!(room_ids(s.local_addr).await.len(), 3);
    assert_eq!(
        metric(
            s.local_addr,
            "tickwire_rooms_refused_total{reason=\"room_create_rate\"}"
        )
        .await,
        2.0
    );
    // No HTTP client makes a room that never closes.
    let (status, err) = create(s.local_addr, r#"{"id":"mine","persistent":true}"#).await;
    assert_eq!(status, 403, "{err}");
    assert_eq!(err["code"], "forbidden");
    assert!(err["error"].as_str().unwrap().contains("operator"), "{err}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_room_closes_and_the_lobby_and_persistent_rooms_stay() {
    let s = server(|c| {
        c.limits.room_idle = Duration::from_secs(2);
        c.rooms = vec![game_server::rooms::spec::parse("id=keep,map=small").unwrap()];
    })
    .await;
    let addr = s.local_addr;
    assert_eq!(create(addr, r#"{"id":"brief","map":"small"}"#).await.0, 201);
    assert_eq!(
        create(addr, r#"{"id":"watched","map":"small"}"#).await.0,
        201
    );
    // Someone plays in "brief", then leaves: its idle time starts then.
    let ws = ws_join(addr, "brief", "alice", "player").await;
    // "watched" has a spectator all along: it is not idle.
    let mut sse = Sse::open(addr, "watched", None).await;
    ws_leave(ws).await;

    until_gone(addr, "brief").await;
    let ids = room_ids(addr).await;
    assert_eq!(ids, ["keep", "lobby", "watched"], "{ids:?}");
    assert_eq!(
        metric(addr, "tickwire_rooms_closed_total{reason=\"idle\"}").await,
        1.0
    );
    // Whoever comes late gets a clear answer.
    let (status, err) = call(addr, "GET", "/rooms/brief/events", "").await;
    assert_eq!((status, err["code"].as_str()), (404, Some("unknown_room")));
    let (status, _) = call(
        addr,
        "POST",
        "/rooms/brief/sessions",
        &format!(r#"{{"hello":{{"version":{PROTOCOL_VERSION},"name":"late"}}}}"#),
    )
    .await;
    assert_eq!(status, 404);

    // The spectator still gets live ticks; once it goes, the room closes too.
    let mut ticks = 0;
    while ticks < 5 {
        ticks += usize::from(sse.event().await.event == "tick");
    }
    drop(sse);
    until_gone(addr, "watched").await;
    // The lobby and the operator's room slept longer than the idle time.
    assert_eq!(room_ids(addr).await, ["keep", "lobby"]);
    // A closed room's name is free again.
    assert_eq!(create(addr, r#"{"id":"brief"}"#).await.0, 201);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleeping_room_wakes_on_its_grid_with_consecutive_checksummed_ticks() {
    let s = server(|_| {}).await;
    let addr = s.local_addr;
    let lobby = s.rooms.get("lobby").unwrap();
    let stats = lobby.stats.clone();
    assert!(stats.asleep.load(Ordering::Relaxed), "nobody came yet");

    // A player plays a while and leaves: the room ticks, then sleeps.
    let mut ws = ws_join(addr, "lobby", "alice", "player").await;
    while stats.tick.load(Ordering::Relaxed) < 30 {
        next_msg(&mut ws).await;
    }
    assert!(!stats.asleep.load(Ordering::Relaxed));
    ws_leave(ws).await;
    tokio::time::timeout(WAIT, async {
        while !stats.asleep.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the room sleeps once everyone left");
    let slept_at = stats.tick.load(Ordering::Relaxed);
    let world = lobby.world().borrow().clone();
    assert_eq!(world.tick, slept_at);
    assert!(world.snakes.is_empty());

    // Let real time pass, measured by another room's ticks: 30 ticks at
    // 60 Hz are half a second, 30 of the lobby's tick intervals.
    assert_eq!(
        create(addr, r#"{"id":"clock","tick_rate":60}"#).await.0,
        201
    );
    let ws_clock = ws_join(addr, "clock", "clock", "spectator").await;
    let mut clock = ws_clock;
    let mut seen = 0;
    while seen < 30 {
        seen += usize::from(matches!(next_msg(&mut clock).await, ServerMsg::Tick(_)));
    }
    assert_eq!(
        stats.tick.load(Ordering::Relaxed),
        slept_at,
        "asleep, it did not step"
    );
    assert!(stats.asleep.load(Ordering::Relaxed));

    // An SSE spectator resuming from the last tick misses nothing: its
    // first event is the tick after, whenever the room wakes.
    let mut sse = Sse::open(addr, "lobby", Some(&slept_at.to_string())).await;
    let ev = sse.event().await;
    assert_eq!(ev.event, "tick", "{ev:?}");
    assert_eq!(
        ev.id,
        (slept_at + 1).to_string(),
        "no tick skipped, none run twice"
    );
    let mut sse_world = WorldState::clone(&world);
    let SseMsg::Server(ServerMsg::Tick(t)) = decode_event(&ev).unwrap() else {
        panic!("{ev:?}")
    };
    sse_world
        .apply_frame(&t)
        .expect("the delta applies to the world it slept with");
    // No catch-up burst: from now on the lobby advances with the clock
    // room (same rate), not 30 ticks at once for the time it slept.
    let clock_stats = s.rooms.get("clock").unwrap().stats.clone();
    let clock_from = clock_stats.tick.load(Ordering::Relaxed);
    let mut last = slept_at + 1;
    while last < slept_at + 21 {
        let ev = sse.event().await;
        if ev.event == "tick" {
            assert_eq!(ev.id, (last + 1).to_string());
            let SseMsg::Server(ServerMsg::Tick(t)) = decode_event(&ev).unwrap() else {
                panic!("{ev:?}")
            };
            sse_world.apply_frame(&t).unwrap_or_else(|e| panic!("{e}"));
            last += 1;
        }
    }
    let clock_moved = clock_stats.tick.load(Ordering::Relaxed) - clock_from;
    assert!(
        clock_moved + 10 >= 20,
        "the lobby ran 20 ticks while the clock room ran {clock_moved}: a burst"
    );

    // A player joining gets a keyframe of the next tick and consecutive
    // ticks from it, each checksum verified.
    let mut ws = ws_join(addr, "lobby", "bob", "player").await;
    let mut rebuilt: Option<WorldState> = None;
    let mut ticks = Vec::new();
    while ticks.len() < 20 {
        match next_msg(&mut ws).await {
            ServerMsg::Snapshot(snap) => {
                assert_eq!(snap.state.checksum(), snap.checksum);
                assert!(snap.tick > last, "{} after {last}", snap.tick);
                ticks.push(snap.tick);
                rebuilt = Some(snap.state);
            }
            ServerMsg::Tick(t) => {
                let w = rebuilt.as_mut().expect("a snapshot first");
                w.apply_frame(&t)
                    .unwrap_or_else(|e| panic!("tick {}: {e}", t.tick));
                ticks.push(t.tick);
            }
            _ => {}
        }
    }
    assert!(
        ticks.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive: {ticks:?}"
    );
    assert!(!stats.asleep.load(Ordering::Relaxed));
    s.shutdown().await;
}
