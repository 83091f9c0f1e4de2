//! The TUI's SSE transport against a real server: a spectator rebuilds the
//! world from the event stream with every checksum matching, agrees with a
//! WebSocket spectator, and rides out a cut connection by resuming with
//! `Last-Event-ID`, without a gap, a second welcome or a keyframe.

use protocol::Format;
use tickwire_tests::{CutProxy, Probe, TestServer, disagreements, player, spectator};
use tui_client::bot::BotKind;
use tui_client::client::{ClientConfig, ClosedReason, TransportKind};

fn sse_spectator(url: &str) -> ClientConfig {
    let mut c = spectator(url, "eye", Format::Json);
    c.transport = TransportKind::Sse;
    c
}

/// True when the world reached every tick from its first to its last.
fn contiguous(p: &Probe) -> bool {
    let ticks: Vec<u64> = p.checksums.keys().copied().collect();
    ticks.windows(2).all(|w| w[1] == w[0] + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_spectator_rebuilds_the_world_with_every_checksum() {
    let server = TestServer::start().await;
    // The bots' brains only steer when stepped; unstepped they run
    // straight, die and respawn, which keeps the world changing anyway.
    let mut bots: Vec<Probe> = (0..3)
        .map(|i| {
            Probe::bot(
                player(&server.url, &format!("b{i}"), Format::Bincode),
                BotKind::Greedy,
                i,
            )
        })
        .collect();
    for b in &mut bots {
        b.until("a welcome", |p| !p.welcomes.is_empty()).await;
    }
    let mut eye = Probe::spawn(sse_spectator(&server.url));
    let mut ws_eye = Probe::spawn(spectator(&server.url, "ws-eye", Format::Json));
    eye.until("200 ticks", |p| p.ticks_seen() >= 200).await;
    ws_eye
        .until("the same ticks", |p| p.tick() >= eye.tick())
        .await;

    assert_eq!(eye.welcomes.len(), 1);
    assert_eq!(eye.welcomes[0].player_id, None);
    assert_eq!(eye.problems(), (0, 0, 0), "no desync, no gap");
    assert!(contiguous(&eye));
    let world = eye.view.as_ref().and_then(|v| v.world.as_ref()).unwrap();
    assert_eq!(world.snakes.len(), 3, "the bots are in the world");
    let (common, differ) = disagreements(&eye, &ws_eye);
    assert!(common >= 100, "{common} ticks in common");
    assert!(differ.is_empty(), "SSE and WebSocket agree: {differ:?}");
    assert_eq!(eye.leave().await, ClosedReason::Left);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_stream_resumes_with_last_event_id_without_a_gap() {
    let server = TestServer::start().await;
    let mut bot = Probe::bot(
        player(&server.url, "runner", Format::Bincode),
        BotKind::Survival,
        3,
    );
    bot.until("a welcome", |p| !p.welcomes.is_empty()).await;
    let proxy = CutProxy::start(server.addr).await;
    let mut eye = Probe::spawn(sse_spectator(&proxy.url));
    eye.until("60 ticks", |p| p.ticks_seen() >= 60).await;
    let before = eye.tick();
    // The stream, and the connection of its `GET /api/time` clock probes.
    let opened = proxy.accepted();
    assert!((1..=2).contains(&opened), "{opened}");

    proxy.cut();
    eye.until("well past the cut", |p| p.tick() > before + 120)
        .await;
    let reopened = proxy.accepted() - opened;
    assert!(
        (1..=2).contains(&reopened),
        "the stream was reopened once (and the probes' connection): {reopened}"
    );
    assert_eq!(eye.welcomes.len(), 1, "resumed, not joined again");
    let stats = eye.view.as_ref().unwrap().stats;
    assert_eq!(stats.keyframes, 1, "only the welcome's snapshot: no resync");
    assert_eq!(eye.problems(), (0, 0, 0));
    assert!(contiguous(&eye), "every tick across the cut");
    assert!(eye.disconnects.is_empty(), "{:?}", eye.disconnects);
    assert_eq!(eye.leave().await, ClosedReason::Left);
    server.shutdown().await;
}

#[tokio::test]
async fn sse_cannot_play_and_unknown_rooms_are_refused() {
    let server = TestServer::start().await;
    let mut c = player(&server.url, "hopeful", Format::Json);
    c.transport = TransportKind::Sse;
    let reason = Probe::spawn(c).closed().await;
    assert!(
        matches!(&reason, ClosedReason::Refused { code, .. } if code == "unsupported_transport"),
        "{reason:?}"
    );
    let mut c = sse_spectator(&server.url);
    c.room = "nowhere".into();
    let reason = Probe::spawn(c).closed().await;
    assert!(
        matches!(&reason, ClosedReason::Refused { code, .. } if code == "unknown_room"),
        "{reason:?}"
    );
    server.shutdown().await;
}
