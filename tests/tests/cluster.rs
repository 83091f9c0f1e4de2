//! The cluster on a real `nats-server`: one origin and two edges in child
//! processes. Spectators on both edges rebuild the world and check every
//! checksum; a player sent from an edge to the origin plays; an edge killed
//! mid-stream is resumed on the other with `Last-Event-ID` and no gap;
//! NATS restarted mid-game costs the player nothing while edge spectators
//! are told and resynced; an origin that dies leaves the directory within
//! its TTL and its spectators are told why. WebSocket spectators
//! (`?role=spectator`, JSON and bincode) are served by the edges from
//! their mirrors through all of it; a player is still sent to the origin.
//!
//! A missing `nats-server` fails these tests (see `tickwire_tests::cluster`).

use std::time::Duration;

use protocol::{ClientMsg, Dir, Format, Input, Role, ServerMsg};
use tickwire_tests::cluster::{NatsServer, Node, Spectator, WsSpectator, rooms, until};

const NODE: &str = env!("CARGO_BIN_EXE_cluster-node");

/// Short enough that the origin-death test takes seconds.
const TTL: Duration = Duration::from_secs(2);

struct Cluster {
    nats: NatsServer,
    origin: Node,
    edges: [Node; 2],
}

async fn cluster() -> Cluster {
    let nats = NatsServer::start();
    let origin = Node::start(NODE, &nats.url, "origin", false, TTL);
    let edges = [
        Node::start(NODE, &nats.url, "edge-a", true, TTL),
        Node::start(NODE, &nats.url, "edge-b", true, TTL),
    ];
    for e in &edges {
        until("the edge lists the origin's lobby", || async {
            rooms(&e.url).await.iter().any(|r| r["id"] == "lobby")
        })
        .await;
    }
    Cluster {
        nats,
        origin,
        edges,
    }
}

/// A player over long-poll, created through `via` (an edge: 307 to the
/// origin, which reqwest follows with the same method and body).
struct Player {
    base: String,
    session: String,
    token: String,
    seq: u64,
    http: reqwest::Client,
}

impl Player {
    async fn join(via: &str) -> Player {
        let http = reqwest::Client::new();
        let resp = http
            .post(format!("{via}/rooms/lobby/sessions"))
            .body(r#"{"hello":{"version":2,"name":"alice"}}"#)
            .send()
            .await
            .expect("session create");
        assert_eq!(resp.status(), 201, "joined after the redirect");
        let final_url = resp.url().clone();
        let base = format!(
            "{}://{}",
            final_url.scheme(),
            final_url
                .host_str()
                .zip(final_url.port())
                .map_or(String::new(), |(h, p)| format!("{h}:{p}"))
        );
        let w: serde_json::Value = resp.json().await.expect("welcome");
        let w = &w["welcome"];
        Player {
            base,
            session: w["session"].as_str().expect("session").into(),
            token: w["token"].as_str().expect("token").into(),
            seq: 0,
            http,
        }
    }

    /// Steers (turning every call), then polls: the highest tick seen.
    async fn play(&mut self) -> u64 {
        self.seq += 1;
        let dir = [Dir::Up, Dir::Left, Dir::Down, Dir::Right][self.seq as usize % 4];
        let msg = ClientMsg::Input(Input {
            seq: self.seq,
            dir,
            boost: false,
        });
        let body = serde_json::json!({ "messages": [{ "seq": self.seq, "msg": msg }] });
        let url = format!("{}/rooms/lobby/sessions/{}", self.base, self.session);
        let sent = self
            .http
            .post(format!("{url}/send"))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("send");
        assert!(sent.status().is_success(), "send: {}", sent.status());
        let polled: serde_json::Value = self
            .http
            .get(format!("{url}/poll?after=0&wait=1"))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("poll")
            .json()
            .await
            .expect("poll body");
        polled["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let msg = &m["msg"];
                msg["tick"]["tick"]
                    .as_u64()
                    .or(msg["snapshot"]["tick"].as_u64())
            })
            .max()
            .unwrap_or(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_serve_checked_frames_and_send_players_to_the_origin() {
    let c = cluster().await;
    // The room is listed everywhere with its owner's URL.
    let listed = rooms(&c.edges[0].url).await;
    assert_eq!(listed[0]["url"], c.origin.url.as_str(), "{listed:?}");
    assert_eq!(listed[0]["node"], "origin");
    let page = reqwest::get(format!("{}/", c.edges[0].url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let owner_line = format!("node origin at {}", c.origin.url);
    assert!(page.contains(&owner_line), "{page}");
    // A player asking an edge is sent to the origin and plays there.
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/rooms/lobby/ws", c.edges[0].url))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 307);
    assert_eq!(
        redirect.headers()["location"],
        format!("{}/rooms/lobby/ws", c.origin.url).as_str()
    );
    let mut player = Player::join(&c.edges[0].url).await;
    assert_eq!(player.base, c.origin.url);
    let mut a = Spectator::open(&c.edges[0].url, None).await;
    let mut b = Spectator::open(&c.edges[1].url, None).await;
    // WebSocket spectators on both edges, in both formats, served there.
    let mut wa = WsSpectator::open(&c.edges[0].url, Format::Json).await;
    let mut wb = WsSpectator::open(&c.edges[1].url, Format::Bincode).await;
    for _ in 0..5 {
        player.play().await;
        a.ticks(10).await;
        b.ticks(10).await;
        wa.ticks(10).await;
        wb.ticks(10).await;
    }
    // Both edges' worlds are the origin's, checked at every tick; the
    // player's snake is in them.
    let snakes = |s: &Spectator| s.world.as_ref().map_or(0, |w| w.snakes.len());
    assert_eq!((snakes(&a), snakes(&b)), (1, 1));
    for ws in [&wa, &wb] {
        let w = ws.welcome.as_ref().expect("welcomed");
        assert_eq!((w.player_id, w.room.as_str()), (None, "lobby"));
        assert_eq!(ws.world.as_ref().map(|w| w.snakes.len()), Some(1));
        assert!(
            ws.ticks.windows(2).all(|t| t[1] == t[0] + 1),
            "{:?}",
            ws.ticks
        );
    }
    // The edge's WebSocket frames are the origin's bytes (there the query
    // is ignored: the hello decides).
    let mut o = WsSpectator::open(&c.origin.url, Format::Json).await;
    o.ticks(10).await;
    while wa.ticks.last() < o.ticks.last() {
        wa.next().await.expect("the socket stays open");
    }
    let same: Vec<_> = o
        .raw
        .iter()
        .filter(|(t, _)| wa.raw.contains_key(t))
        .collect();
    assert!(same.len() >= 5, "{} ticks in common", same.len());
    for (t, bytes) in same {
        assert_eq!(&wa.raw[t], bytes, "tick {t}");
    }
    // `ping` -> `pong` (the lag panel's RTT) and `resync` -> a keyframe.
    wa.send(&ClientMsg::Ping(protocol::Ping { t: 42 })).await;
    wa.until("the pong", |m| matches!(m, ServerMsg::Pong(p) if p.t == 42))
        .await;
    let keyframes = wb.snapshots;
    wb.send(&ClientMsg::Resync {}).await;
    wb.until("the keyframe", |m| matches!(m, ServerMsg::Snapshot(_)))
        .await;
    assert_eq!(wb.snapshots, keyframes + 1);
    wb.ticks(5).await;
    // A player on the spectators' socket is refused in words that name
    // the origin.
    let mut p = WsSpectator::hello(&c.edges[1].url, Format::Json, Role::Player).await;
    let closed = p.until_closed().await;
    assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
    assert_eq!(p.errors[0].code, "elsewhere");
    assert!(
        p.errors[0].message.contains(&c.origin.url),
        "{}",
        p.errors[0].message
    );
    assert_eq!(closed.map(|c| c.0), Some(1008));
    // A socket that never says hello is closed after the hello timeout.
    let mut quiet = WsSpectator::silent(&c.edges[0].url, Format::Json).await;
    let closed = quiet.until_closed().await.expect("a close frame");
    assert_eq!(closed.0, 1008);
    assert!(closed.1.contains("no hello within"), "{}", closed.1);
    // The edge's SSE spectators are on the fan-out: its hand-written,
    // close-delimited answer (hyper would send a chunked body).
    let sse = reqwest::get(format!("{}/rooms/lobby/events", c.edges[1].url))
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    assert_eq!(sse.headers()["connection"], "close", "{:?}", sse.headers());
    assert!(sse.headers().get("transfer-encoding").is_none());
    // No edge may serve a player, nor create a room.
    let create = reqwest::Client::new()
        .post(format!("{}/api/rooms", c.edges[1].url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 403);
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_killed_mid_stream_resumes_on_the_other_with_no_gap() {
    let mut c = cluster().await;
    let mut a = Spectator::open(&c.edges[0].url, None).await;
    // A spectator on the other edge keeps the room mirrored there.
    let mut b = Spectator::open(&c.edges[1].url, None).await;
    a.ticks(20).await;
    b.ticks(1).await;
    c.edges[0].kill();
    // Whatever edge A had sent before it died.
    while a.next().await.is_some() {}
    let last = *a.ticks.last().expect("ticks");
    let world = a.world.take();
    let mut resumed = Spectator::open(&c.edges[1].url, Some(last)).await;
    resumed.world = world;
    resumed.ticks(20).await;
    assert_eq!(
        resumed.names.first().map(String::as_str),
        Some("tick"),
        "resumed from the ring, not a snapshot"
    );
    assert_eq!(resumed.ticks[0], last + 1, "no gap after tick {last}");
    assert!(resumed.ticks.windows(2).all(|w| w[1] == w[0] + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restarting_costs_players_nothing_and_edges_resync() {
    let mut c = cluster().await;
    let mut player = Player::join(&c.origin.url).await;
    let mut s = Spectator::open(&c.edges[0].url, None).await;
    let mut wj = WsSpectator::open(&c.edges[0].url, Format::Json).await;
    let mut wb = WsSpectator::open(&c.edges[0].url, Format::Bincode).await;
    s.ticks(10).await;
    wj.ticks(10).await;
    wb.ticks(10).await;
    let keyframes = (wj.snapshots, wb.snapshots);
    c.nats.kill();
    // The edge tells its spectators it lost the cluster.
    let status = s.until_event("status").await;
    assert!(status.data.contains("reconnecting"), "{}", status.data);
    // A spectator who comes meanwhile is told too (on the fan-out, whose
    // rings are already past the status).
    let mut late = Spectator::open(&c.edges[0].url, None).await;
    let told = late.until_event("status").await;
    assert_eq!(late.names[0], "welcome");
    assert!(told.data.contains("reconnecting"), "{}", told.data);
    // The origin's room goes on ticking for its player meanwhile.
    let before = player.play().await;
    let mut after = before;
    while after < before + 30 {
        after = player.play().await;
    }
    c.nats.restart();
    // Back: a keyframe, then checked ticks again, on SSE and on both
    // WebSockets (no `error` there: their frames pause, then the keyframe).
    s.until_event("snapshot").await;
    s.ticks(20).await;
    late.until_event("snapshot").await;
    late.ticks(20).await;
    for ws in [&mut wj, &mut wb] {
        let before = ws.ticks.len();
        ws.until("the keyframe", |m| matches!(m, ServerMsg::Snapshot(_)))
            .await;
        ws.ticks(20).await;
        assert!(ws.ticks.len() >= before + 20);
        assert!(ws.errors.is_empty(), "{:?}", ws.errors);
    }
    assert!(wj.snapshots > keyframes.0 && wb.snapshots > keyframes.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_dies_leaves_the_directory_and_its_spectators_are_told() {
    let mut c = cluster().await;
    let mut s = Spectator::open(&c.edges[0].url, None).await;
    let mut ws = WsSpectator::open(&c.edges[0].url, Format::Bincode).await;
    s.ticks(5).await;
    ws.ticks(5).await;
    c.origin.kill();
    let edge = c.edges[1].url.clone();
    until("the dead origin's room leaves the directory", || async {
        rooms(&edge).await.is_empty()
    })
    .await;
    let err = s.until_event("error").await;
    assert!(err.data.contains("origin_gone"), "{}", err.data);
    assert!(err.data.contains("node origin"), "{}", err.data);
    assert!(s.next().await.is_none(), "the stream ends after the error");
    // The WebSocket spectator: the same words, then close 1001.
    let closed = ws.until_closed().await;
    assert_eq!(ws.errors.len(), 1, "{:?}", ws.errors);
    assert_eq!(ws.errors[0].code, "origin_gone");
    assert!(ws.errors[0].message.contains("node origin"));
    assert_eq!(closed.map(|c| c.0), Some(1001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_follows_an_edge_to_the_origin_on_every_transport() {
    use tickwire_tests::{Probe, player};
    use tui_client::client::TransportKind;
    let c = cluster().await;
    let kinds = [
        TransportKind::Ws,
        TransportKind::Auto,
        TransportKind::LongPoll,
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        let mut config = player(
            &c.edges[i % 2].url,
            &format!("p{i}"),
            protocol::Format::Json,
        );
        config.transport = kind;
        let mut p = Probe::spawn(config);
        p.until("welcomed and 20 ticks in sync", |p| {
            p.welcomes.len() == 1 && p.ticks_seen() >= 20
        })
        .await;
        assert!(
            p.player_id().is_some(),
            "{kind:?}: a player, not a spectator"
        );
        assert_eq!(p.problems(), (0, 0, 0), "{kind:?}");
        if kind == TransportKind::Auto {
            assert_eq!(p.transports[0].0, TransportKind::Ws, "{:?}", p.transports);
        }
        p.leave().await;
    }
    // A spectator over WebSocket stays on the edge (`?role=spectator`)
    // and verifies every tick there.
    let mut config = player(&c.edges[1].url, "w", protocol::Format::Bincode);
    config.transport = TransportKind::Ws;
    config.role = Role::Spectator;
    let mut w = Probe::spawn(config);
    w.until("welcomed and 20 ticks in sync", |p| {
        p.welcomes.len() == 1 && p.ticks_seen() >= 20
    })
    .await;
    assert_eq!(w.player_id(), None);
    assert_eq!(w.problems(), (0, 0, 0));
    w.leave().await;
}
