//! Every client rebuilds the server's world exactly, tick after tick, in
//! both wire formats, and a spectator sees the same world as the players.

use protocol::Format;
use tickwire_tests::{Probe, TestServer, disagreements, player, spectator};
use tui_client::bot::BotKind;

/// Ticks every client must follow without a single desync.
const TICKS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_in_json_and_bincode_rebuild_the_same_world_every_tick() {
    let server = TestServer::start().await;
    let mut probes = vec![
        Probe::bot(
            player(&server.url, "json-1", Format::Json),
            BotKind::Greedy,
            1,
        ),
        Probe::bot(
            player(&server.url, "bin-1", Format::Bincode),
            BotKind::Survival,
            2,
        ),
        Probe::bot(
            player(&server.url, "json-2", Format::Json),
            BotKind::Random,
            3,
        ),
        Probe::bot(
            player(&server.url, "bin-2", Format::Bincode),
            BotKind::Greedy,
            4,
        ),
    ];
    for p in &mut probes {
        p.until("a welcome", |p| !p.welcomes.is_empty()).await;
    }
    // Drive them all until each has followed TICKS ticks.
    let mut tasks = Vec::new();
    for mut p in probes {
        tasks.push(tokio::spawn(async move {
            p.until("enough ticks", |p| p.ticks_seen() >= TICKS).await;
            p
        }));
    }
    let mut probes = Vec::new();
    for t in tasks {
        probes.push(t.await.expect("probe task"));
    }

    for p in &probes {
        let name = &p.welcomes[0].name;
        assert_eq!(
            p.problems(),
            (0, 0, 0),
            "{name}: desyncs, gaps, lost frames"
        );
        // Every tick from the first keyframe on, none skipped.
        let first = *p.checksums.keys().next().expect("ticks");
        let last = *p.checksums.keys().last().expect("ticks");
        assert_eq!(
            (last - first + 1) as usize,
            p.checksums.len(),
            "{name}: ticks are contiguous"
        );
        assert!(p.player_id().is_some(), "{name} plays");
    }
    // The worlds they rebuilt agree on every tick they share.
    for pair in probes.windows(2) {
        let (common, differ) = disagreements(&pair[0], &pair[1]);
        assert!(common >= TICKS / 2, "clients overlap on {common} ticks");
        assert!(differ.is_empty(), "checksums differ at ticks {differ:?}");
    }
    // And the world really moved: snakes went somewhere.
    let p = &probes[0];
    let v = p.view.as_ref().expect("view");
    let world = v.world.as_ref().expect("world");
    assert!(world.snakes.len() >= 4, "all four players are in the world");
    assert!(
        p.checksums
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len()
            > TICKS / 2,
        "the world changes from tick to tick"
    );
    for p in probes {
        p.leave().await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spectator_sees_the_same_world_as_the_players() {
    let server = TestServer::start().await;
    let mut play = Probe::bot(
        player(&server.url, "runner", Format::Bincode),
        BotKind::Survival,
        5,
    );
    let mut watch_json = Probe::spawn(spectator(&server.url, "watcher", Format::Json));
    let mut watch_bin = Probe::spawn(spectator(&server.url, "watcher2", Format::Bincode));
    play.until("a welcome", |p| !p.welcomes.is_empty()).await;
    let me = play.player_id().expect("player id");
    watch_json
        .until("a welcome", |p| !p.welcomes.is_empty())
        .await;
    assert_eq!(watch_json.player_id(), None, "spectators have no snake");

    let (play, watch_json, watch_bin) = tokio::join!(
        async move {
            play.until("ticks", |p| p.ticks_seen() >= 200).await;
            play
        },
        async move {
            watch_json.until("ticks", |p| p.ticks_seen() >= 200).await;
            watch_json
        },
        async move {
            watch_bin.until("ticks", |p| p.ticks_seen() >= 200).await;
            watch_bin
        },
    );
    for w in [&watch_json, &watch_bin] {
        assert_eq!(w.problems(), (0, 0, 0));
        let (common, differ) = disagreements(&play, w);
        assert!(
            common >= 100,
            "player and spectator overlap on {common} ticks"
        );
        assert!(differ.is_empty(), "checksums differ at {differ:?}");
        let world = w
            .view
            .as_ref()
            .and_then(|v| v.world.as_ref())
            .expect("world");
        assert!(
            world.snake(me).is_some(),
            "the spectator sees the player's snake"
        );
    }
    play.leave().await;
    watch_json.leave().await;
    watch_bin.leave().await;
    server.shutdown().await;
}
