//! A client whose connection drops reconnects with its token and gets the
//! same snake back; refusals end the client without retrying.

use protocol::Format;
use tickwire_tests::{CutProxy, Probe, TestServer, player};
use tui_client::bot::BotKind;
use tui_client::client::{ClientEvent, ClosedReason};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resumes_the_same_snake() {
    let server = TestServer::start().await;
    for format in [Format::Json, Format::Bincode] {
        let proxy = CutProxy::start(server.addr).await;
        let mut p = Probe::bot(player(&proxy.url, "phoenix", format), BotKind::Survival, 9);
        p.until("30 ticks", |p| p.ticks_seen() >= 30).await;
        let id = p.player_id().expect("a player");
        let before = p.tick();

        proxy.cut();
        p.until("the drop", |p| !p.disconnects.is_empty()).await;
        assert!(
            p.disconnects[0].1,
            "it says it is retrying: {:?}",
            p.disconnects
        );
        p.until("the resume", |p| p.welcomes.len() == 2).await;
        let w = &p.welcomes[1];
        assert!(w.resumed, "welcome says resumed");
        assert_eq!(w.player_id, Some(id), "same snake");

        p.until("the world after the resume", |p| p.tick() > before + 30)
            .await;
        let world = p
            .view
            .as_ref()
            .and_then(|v| v.world.as_ref())
            .expect("world");
        let me = world.snake(id).expect("our snake is still in the world");
        assert!(me.connected, "and marked connected again");
        assert_eq!(p.problems(), (0, 0, 0));
        assert_eq!(p.leave().await, ClosedReason::Left);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn an_unknown_room_is_refused_without_retry() {
    let server = TestServer::start().await;
    let mut config = player(&server.url, "lost", Format::Json);
    config.room = "no-such-room".into();
    let mut p = Probe::spawn(config);
    let mut attempts = 0;
    loop {
        match p.step().await {
            ClientEvent::Connecting { .. } => attempts += 1,
            ClientEvent::Closed { .. } => break,
            _ => {}
        }
    }
    assert_eq!(attempts, 1);
    assert!(
        matches!(&p.closed, Some(ClosedReason::Refused { code, .. }) if code == "unknown_room"),
        "{:?}",
        p.closed
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_full_room_is_refused() {
    let server = TestServer::start_with(|c| c.max_players = 1).await;
    let mut first = Probe::spawn(player(&server.url, "first", Format::Bincode));
    first.until("a welcome", |p| !p.welcomes.is_empty()).await;
    let mut second = Probe::spawn(player(&server.url, "second", Format::Bincode));
    let reason = second.closed().await;
    assert!(
        matches!(&reason, ClosedReason::Refused { code, .. } if code == "room_full"),
        "{reason:?}"
    );
    first.leave().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_shutdown_is_reported_and_retried() {
    let server = TestServer::start().await;
    let mut config = player(&server.url, "survivor", Format::Json);
    config.retry.reconnect_tries = 3; // the server does not come back
    let mut p = Probe::spawn(config);
    p.until("a welcome", |p| !p.welcomes.is_empty()).await;
    server.shutdown().await;
    p.until("the drop", |p| !p.disconnects.is_empty()).await;
    let (reason, retrying) = &p.disconnects[0];
    assert!(
        retrying,
        "reconnect is on, so a shutdown is retried: {reason}"
    );
    assert!(reason.contains("shutting down"), "{reason}");
    // Nothing comes back on that port: the client gives up with the
    // shutdown as its reason.
    let reason = p.closed().await;
    assert!(
        matches!(reason, ClosedReason::ServerShutdown(_)),
        "{reason:?}"
    );
}
