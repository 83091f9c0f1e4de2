//! Bots play over long-poll and short poll against a real server: every
//! tick's checksum is verified by the client's view, two clients agree on
//! every tick they share, and a cut connection loses nothing.

use std::time::Duration;

use protocol::Format;
use tickwire_tests::proxy::{FaultProxy, Faults};
use tickwire_tests::{CutProxy, Probe, TestServer, disagreements, player, spectator};
use tui_client::bot::BotKind;
use tui_client::client::{ClientConfig, ClosedReason, TransportKind};

fn over(mut c: ClientConfig, transport: TransportKind) -> ClientConfig {
    c.transport = transport;
    c
}

/// Every tick from the first one reached to the last, with no hole.
fn contiguous(p: &Probe) -> bool {
    let (Some(first), Some(last)) = (p.checksums.keys().next(), p.checksums.keys().last()) else {
        return false;
    };
    p.checksums.len() as u64 == last - first + 1
}

async fn two_bots_play(server: &TestServer, transport: TransportKind, format: Format) {
    let url = &server.url;
    let mut a = Probe::bot(
        over(player(url, "lp-a", format), transport),
        BotKind::Greedy,
        1,
    );
    let mut b = Probe::bot(
        over(player(url, "lp-b", format), transport),
        BotKind::Survival,
        2,
    );
    // Steps both until each has verified 150 ticks and sent some inputs.
    while a.ticks_seen() < 150 || b.ticks_seen() < 150 || a.sent.len() < 3 {
        tokio::select! {
            _ = a.step() => {}
            _ = b.step() => {}
        }
    }
    // Then until the inputs sent so far are all acknowledged.
    let sent = *a.sent.last().expect("inputs sent");
    a.until("the last input acked", |p| {
        p.acks.last().is_some_and(|&ack| ack >= sent)
    })
    .await;
    for p in [&a, &b] {
        assert_eq!(p.problems(), (0, 0, 0), "no desync, gap or lost frame");
        assert!(contiguous(p), "every tick, in order");
        assert_eq!(p.welcomes.len(), 1);
        assert!(p.disconnects.is_empty(), "{:?}", p.disconnects);
        assert!(
            p.acks.windows(2).all(|w| w[0] <= w[1]),
            "acks never go back"
        );
        assert!(
            p.ack_vs_sent.iter().all(|(ack, sent)| ack <= sent),
            "nothing acked before it was sent"
        );
    }
    let (common, differ) = disagreements(&a, &b);
    assert!(common >= 100, "{common} ticks in common");
    assert!(differ.is_empty(), "checksums differ at {differ:?}");
    assert_eq!(a.leave().await, ClosedReason::Left);
    assert_eq!(b.leave().await, ClosedReason::Left);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_play_over_long_poll_in_both_formats() {
    let server = TestServer::start().await;
    for format in [Format::Json, Format::Bincode] {
        two_bots_play(&server, TransportKind::LongPoll, format).await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_play_over_short_poll() {
    let server = TestServer::start().await;
    let poll = TransportKind::Poll {
        interval: Duration::from_millis(20),
    };
    two_bots_play(&server, poll, Format::Bincode).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_long_poll_connection_loses_nothing_and_keeps_the_session() {
    let server = TestServer::start().await;
    let proxy = CutProxy::start(server.addr).await;
    let config = over(
        player(&proxy.url, "phoenix", Format::Json),
        TransportKind::LongPoll,
    );
    let mut p = Probe::bot(config, BotKind::Survival, 9);
    for round in 1..=5 {
        let goal = p.ticks_seen() + 30;
        p.until("30 more ticks", |p| p.ticks_seen() >= goal).await;
        proxy.cut();
        let _ = round;
    }
    let goal = p.ticks_seen() + 30;
    p.until("30 ticks after the last cut", |p| p.ticks_seen() >= goal)
        .await;
    assert_eq!(p.problems(), (0, 0, 0));
    assert!(contiguous(&p), "no tick lost across the cuts");
    assert_eq!(p.welcomes.len(), 1, "the same session all along");
    assert!(p.disconnects.is_empty(), "{:?}", p.disconnects);
    assert_eq!(p.leave().await, ClosedReason::Left);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_poll_session_resumes_the_same_snake_with_the_token() {
    let server = TestServer::start_with(|c| c.poll_idle_timeout = Duration::from_millis(300)).await;
    let proxy = FaultProxy::start(server.addr, Faults::default()).await;
    let poll = TransportKind::Poll {
        interval: Duration::from_millis(20),
    };
    let mut p = Probe::bot(
        over(player(&proxy.url, "lazarus", Format::Json), poll),
        BotKind::Survival,
        4,
    );
    p.until("30 ticks", |p| p.ticks_seen() >= 30).await;
    let id = p.player_id().expect("a player");
    // A spectator straight to the server watches the snake.
    let mut w = Probe::spawn(spectator(&server.url, "watcher", Format::Json));
    let connected = |w: &Probe, want: bool| {
        w.view
            .as_ref()
            .and_then(|v| v.world.as_ref())
            .and_then(|world| world.snake(id))
            .is_some_and(|s| s.connected == want)
    };
    w.until("the snake on screen", |w| connected(w, true)).await;

    // The network goes dark long enough for the server to expire the session.
    proxy.blackout(true);
    w.until("the snake disconnected", |w| connected(w, false))
        .await;
    proxy.blackout(false);

    p.until("the resume", |p| p.welcomes.len() == 2).await;
    assert!(p.welcomes[1].resumed, "welcome says resumed");
    assert_eq!(p.player_id(), Some(id), "the same snake");
    let goal = p.ticks_seen() + 30;
    p.until("30 ticks after the resume", |p| p.ticks_seen() >= goal)
        .await;
    w.until("the snake connected again", |w| connected(w, true))
        .await;
    assert_eq!(p.problems(), (0, 0, 0));
    assert!(!p.disconnects.is_empty() && p.disconnects.iter().all(|(_, retrying)| *retrying));
    assert_eq!(p.leave().await, ClosedReason::Left);
    assert_eq!(w.leave().await, ClosedReason::Left);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_bots_report_ok_over_every_http_transport() {
    use tui_client::bot::BotMix;
    use tui_client::embedded::EmbeddedOptions;
    use tui_client::headless::{self, HeadlessOptions};

    let server = TestServer::start().await;
    let refusing = FaultProxy::start(
        server.addr,
        Faults {
            refuse_websocket: true,
            ..Faults::default()
        },
    )
    .await;
    let runs = [
        (TransportKind::LongPoll, "longpoll"),
        (
            TransportKind::Poll {
                interval: Duration::from_millis(50),
            },
            "poll",
        ),
        // Behind a proxy that refuses upgrades, auto ends up on long-poll.
        (TransportKind::Auto, "longpoll"),
    ];
    for (transport, name) in runs {
        let opts = HeadlessOptions {
            server: Some(refusing.url.clone()),
            room: tickwire_tests::LOBBY.into(),
            bots: 3,
            mix: BotMix::Mix,
            name_prefix: name.into(),
            duration: Duration::from_secs(2),
            format: Format::Json,
            transports: vec![transport],
            conditioner: None,
            reaction: Duration::ZERO,
            seed: 5,
            embedded: EmbeddedOptions::default(),
        };
        let report = headless::run(opts, std::future::pending())
            .await
            .expect("run");
        assert!(report.ok, "{report:#?}");
        for b in &report.bots {
            assert_eq!(b.transport, name, "{b:?}");
            assert!(b.ticks_seen > 0 && b.keyframes >= 1, "{b:?}");
            assert_eq!((b.desyncs, b.gaps), (0, 0), "{b:?}");
        }
    }
    server.shutdown().await;
}
