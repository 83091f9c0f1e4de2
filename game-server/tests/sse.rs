//! The SSE spectator stream over real sockets: headers, event order, ids,
//! a checksum-verified rebuild, Last-Event-ID resume, keepalives, a reader
//! that stops reading, errors and shutdown.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Http, Sse, WAIT, get, server, ws_chat, ws_player};
use protocol::sse::{Event, Item, SseMsg, decode_event};
use protocol::{ServerMsg, WorldState};

fn msg(ev: &Event) -> SseMsg {
    decode_event(ev).unwrap_or_else(|e| panic!("{e}: {ev:?}"))
}

/// Applies one event to the world being rebuilt, checking ids and checksums.
fn apply(world: &mut WorldState, ev: &Event) {
    match msg(ev) {
        SseMsg::Server(ServerMsg::Tick(t)) => {
            assert_eq!(ev.id, t.tick.to_string(), "id is the tick");
            world.apply_frame(&t).unwrap_or_else(|e| panic!("{e}"));
        }
        SseMsg::Server(ServerMsg::Snapshot(s)) => {
            assert_eq!(ev.id, s.tick.to_string());
            assert_eq!(s.state.checksum(), s.checksum);
            *world = s.state;
        }
        SseMsg::Server(ServerMsg::Chat(_)) => {
            assert_eq!(
                ev.id,
                world.tick.to_string(),
                "extras carry their tick's id"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Reads the welcome; returns the world it starts from.
async fn welcome(sse: &mut Sse) -> WorldState {
    assert_eq!(sse.item().await, Some(Item::Retry(protocol::sse::RETRY_MS)));
    let ev = sse.event().await;
    assert_eq!(ev.event, "welcome", "{ev:?}");
    let SseMsg::Welcome(w) = msg(&ev) else {
        panic!("{ev:?}")
    };
    assert_eq!(ev.id, w.snapshot.tick.to_string());
    assert_eq!(w.welcome.room, "lobby");
    assert_eq!(w.welcome.player_id, None);
    assert!(
        !w.welcome.map.rows.is_empty(),
        "the welcome carries the map"
    );
    assert_eq!(w.snapshot.state.checksum(), w.snapshot.checksum);
    w.snapshot.state
}

/// Follows the stream until the world reaches `tick`.
async fn follow_to(sse: &mut Sse, world: &mut WorldState, tick: u64) -> Vec<String> {
    let mut names = Vec::new();
    while world.tick < tick {
        let ev = sse.event().await;
        apply(world, &ev);
        names.push(ev.event);
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_rebuild_the_world_tick_by_tick() {
    let s = server(|_| {}).await;
    let _a = ws_player(s.local_addr, "alice").await;
    let mut sse = Sse::open(s.local_addr, "lobby", None).await;
    assert_eq!(sse.http.header("content-type"), Some("text/event-stream"));
    assert_eq!(sse.http.header("cache-control"), Some("no-cache"));
    assert_eq!(sse.http.header("x-accel-buffering"), Some("no"));
    assert_eq!(sse.http.header("access-control-allow-origin"), Some("*"));

    let mut world = welcome(&mut sse).await;
    let start = world.tick;
    let _b = ws_player(s.local_addr, "bob").await;
    ws_chat(s.local_addr, "carol", "hi \x1b[2Jthere").await;
    let mut names = follow_to(&mut sse, &mut world, start + 60).await;
    // The chat may land a little later than the player's leave.
    while !names.iter().any(|n| n == "chat") {
        let ev = sse.event().await;
        apply(&mut world, &ev);
        if ev.event == "chat" {
            assert!(!ev.data.contains('\x1b'), "chat is sanitised: {}", ev.data);
            assert!(ev.data.contains("carol"), "{}", ev.data);
        }
        names.push(ev.event);
    }
    assert!(
        !names.iter().any(|n| n == "score"),
        "protocol 2: scoreboard changes ride in the tick, not in events of their own"
    );
    assert_eq!(world.snakes.iter().filter(|s| s.name == "bob").count(), 1);
    s.shutdown().await;
}

/// The fan-out answers the head itself: a body that ends with the
/// connection (no chunking), and spectators that join while others watch
/// (spread over the room's shards, each filling the ticks its shard wrote
/// before it came) all get every tick after their welcome, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spectators_joining_one_after_another_each_get_every_tick() {
    let s = server(|_| {}).await;
    let _a = ws_player(s.local_addr, "alice").await;
    let mut watchers = Vec::new();
    for _ in 0..6 {
        let mut sse = Sse::open(s.local_addr, "lobby", None).await;
        assert_eq!(sse.http.header("connection"), Some("close"));
        assert_eq!(sse.http.header("transfer-encoding"), None);
        let mut world = welcome(&mut sse).await;
        // Let the room move on a little before the next one joins.
        let t = world.tick + 3;
        follow_to(&mut sse, &mut world, t).await;
        watchers.push((sse, world));
    }
    let end = watchers.iter().map(|(_, w)| w.tick).max().unwrap() + 40;
    let mut checksums = Vec::new();
    for (sse, world) in &mut watchers {
        // `apply` fails on a gap (a delta on the wrong base) or a bad checksum.
        let names = follow_to(sse, world, end).await;
        assert!(
            !names.iter().any(|n| n == "snapshot"),
            "a reader that keeps up is never resynced: {names:?}"
        );
        checksums.push(world.checksum());
    }
    assert!(checksums.windows(2).all(|w| w[0] == w[1]), "{checksums:?}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_resumes_without_a_gap_or_falls_back_to_a_snapshot() {
    let s = server(|c| c.spectators.replay = Duration::from_secs(1)).await;
    let _a = ws_player(s.local_addr, "alice").await;
    let mut first = Sse::open(s.local_addr, "lobby", None).await;
    let mut world = welcome(&mut first).await;
    let t = world.tick + 20;
    follow_to(&mut first, &mut world, t).await;
    drop(first);

    // Resume: the next event is tick t + 1, and the world keeps its checksums.
    let mut again = Sse::open(s.local_addr, "lobby", Some(&t.to_string())).await;
    assert_eq!(
        again.item().await,
        Some(Item::Retry(protocol::sse::RETRY_MS))
    );
    let ev = again.event().await;
    assert_eq!(
        (ev.event.as_str(), ev.id.clone()),
        ("tick", (t + 1).to_string())
    );
    apply(&mut world, &ev);
    follow_to(&mut again, &mut world, t + 90).await;

    // Tick t is now older than the 1 s (60 tick) ring: a snapshot instead.
    let mut old = Sse::open(s.local_addr, "lobby", Some(&t.to_string())).await;
    let ev = old.event().await;
    assert_eq!(ev.event, "snapshot", "{ev:?}");
    let mut w2 = WorldState::new(world.mode);
    apply(&mut w2, &ev);
    assert!(w2.tick >= t + 90);
    let next = old.event().await;
    apply(&mut w2, &next);

    // An id from the future (e.g. a restarted server) also gets a snapshot,
    // and one that is not a number starts afresh with a welcome.
    let mut future = Sse::open(s.local_addr, "lobby", Some("99999999999")).await;
    assert_eq!(future.event().await.event, "snapshot");
    let mut junk = Sse::open(s.local_addr, "lobby", Some("abc")).await;
    welcome(&mut junk).await;
    s.shutdown().await;
}

#[tokio::test]
async fn keepalive_comments_arrive_at_the_configured_interval() {
    let s = server(|c| c.spectators.keepalive = Duration::from_millis(100)).await;
    let mut sse = Sse::open(s.local_addr, "lobby", None).await;
    loop {
        match sse.item().await.expect("stream ended") {
            Item::Comment(c) => {
                assert_eq!(c, "keepalive");
                break;
            }
            _ => continue,
        }
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_is_bounded_then_resynced() {
    let s = server(|c| {
        c.spectators.queue = 8;
        c.send_buffer = Some(8 * 1024);
        c.tick_rate = 60;
    })
    .await;
    let mut players = Vec::new();
    for i in 0..6 {
        players.push(ws_player(s.local_addr, &format!("p{i}")).await);
    }
    let lobby = s.rooms.get("lobby").unwrap();
    let (stats, room_metrics) = (lobby.stats, lobby.room_metrics);
    let http = Http::get_small_window(s.local_addr, "/rooms/lobby/events").await;
    // Read nothing while the room runs far more ticks than the ring, the
    // socket buffers and hyper's write buffer can hold: the room never
    // queues for this reader (its ring is shared and bounded). Protocol 2's
    // ticks of six players are ~300 B, so that takes some 150 KB: 480 ticks.
    let from = stats.tick.load(Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(60), async {
        while stats.tick.load(Ordering::Relaxed) < from + 480 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the room keeps ticking past a stalled reader");

    // Reading again: what was in flight, then (after the gap the overflow
    // left) a snapshot, then live ticks that follow from it.
    let mut sse = Sse::over(http);
    let mut world = welcome(&mut sse).await;
    let (mut keyframes, mut synced, mut run) = (0, true, 0);
    tokio::time::timeout(WAIT, async {
        while run < 30 {
            let ev = sse.event().await;
            match ev.event.as_str() {
                "snapshot" => {
                    keyframes += 1;
                    synced = true;
                    run = 0;
                    apply(&mut world, &ev);
                }
                "tick" if ev.id != (world.tick + 1).to_string() => synced = false,
                "tick" if synced => {
                    apply(&mut world, &ev);
                    run += usize::from(keyframes > 0);
                }
                _ => {}
            }
        }
    })
    .await
    .expect("a snapshot after the overflow, then live ticks");
    assert!(keyframes >= 1);
    assert!(room_metrics.resyncs.get() >= 1);
    assert!(room_metrics.dropped.get() >= 1);
    s.shutdown().await;
}

#[tokio::test]
async fn unknown_room_is_a_json_404() {
    let s = server(|_| {}).await;
    let (st, head, body) = get(s.local_addr, "/rooms/nope/events").await;
    assert_eq!(st, 404);
    assert!(head.contains("access-control-allow-origin: *"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "unknown_room");
    assert!(v["error"].as_str().unwrap().contains("nope"));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_stream_with_a_reason() {
    let s = server(|_| {}).await;
    let mut sse = Sse::open(s.local_addr, "lobby", None).await;
    let mut world = welcome(&mut sse).await;
    let t = world.tick;
    follow_to(&mut sse, &mut world, t + 5).await;
    let stopping = tokio::spawn(s.shutdown());
    let mut events = tokio::time::timeout(WAIT, async {
        let mut events = Vec::new();
        while let Some(item) = sse.item().await {
            if let Item::Event(e) = item {
                events.push(e);
            }
        }
        events
    })
    .await
    .expect("the stream ends");
    let last = events.pop().expect("events");
    assert_eq!(last.event, "error");
    let id_before = events
        .last()
        .map_or(world.tick.to_string(), |e| e.id.clone());
    assert_eq!(last.id, id_before, "it has the id of the last event");
    let SseMsg::Server(ServerMsg::Error(e)) = msg(&last) else {
        panic!()
    };
    assert_eq!(e.code, "shutting_down");
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_spectator_is_counted() {
    let s = server(|_| {}).await;
    let mut sse = Sse::open(s.local_addr, "lobby", None).await;
    welcome(&mut sse).await;
    let mut watch = Http::get(s.local_addr, "/rooms/lobby/watch?color=never", &[]).await;
    watch.chunk().await.expect("a frame");
    let url = format!("ws://{}/rooms/lobby/ws", s.local_addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    use futures_util::{SinkExt, StreamExt};
    let hello = r#"{"hello": {"version": 2, "name": "w", "role": "spectator"}}"#;
    ws.send(tokio_tungstenite::tungstenite::Message::text(hello))
        .await
        .unwrap();
    tokio::time::timeout(WAIT, ws.next()).await.unwrap();
    let (_, _, body) = get(s.local_addr, "/api/rooms").await;
    let rooms: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rooms[0]["spectators"], 3, "{rooms}");
    let (_, _, page) = get(s.local_addr, "/").await;
    assert!(page.contains("3 spectators"), "{page}");

    drop(sse);
    drop(watch);
    drop(ws);
    tokio::time::timeout(WAIT, async {
        loop {
            let (_, _, body) = get(s.local_addr, "/api/rooms").await;
            let rooms: serde_json::Value = serde_json::from_str(&body).unwrap();
            if rooms[0]["spectators"] == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("spectators that left are no longer counted");
    s.shutdown().await;
}
