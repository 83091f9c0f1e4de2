//! Headless bots play a bounded run against a real server and report ok.

use std::future::pending;
use std::time::Duration;

use protocol::Format;
use tickwire_tests::{FAST_TICKS, LOBBY, TestServer};
use tui_client::bot::BotMix;
use tui_client::client::TransportKind;
use tui_client::embedded::EmbeddedOptions;
use tui_client::headless::{self, HeadlessOptions};

fn options(server: Option<String>, format: Format) -> HeadlessOptions {
    HeadlessOptions {
        server,
        room: LOBBY.into(),
        bots: 4,
        mix: BotMix::Mix,
        name_prefix: "bot".into(),
        duration: Duration::from_secs(2),
        format,
        transports: vec![TransportKind::Ws],
        conditioner: None,
        reaction: Duration::ZERO,
        seed: 11,
        embedded: EmbeddedOptions {
            tick_rate: Some(FAST_TICKS),
            seed: Some(11),
            ..EmbeddedOptions::default()
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_bots_report_ok_against_a_real_server() {
    let server = TestServer::start().await;
    for format in [Format::Json, Format::Bincode] {
        let report = headless::run(options(Some(server.url.clone()), format), pending())
            .await
            .expect("run");
        assert!(report.ok, "{report:#?}");
        assert_eq!(report.bots.len(), 4);
        assert!(!report.embedded && !report.interrupted);
        for b in &report.bots {
            assert!(b.connected && b.player_id.is_some(), "{b:?}");
            assert!(b.ticks_seen > 0 && b.keyframes >= 1, "{b:?}");
            assert_eq!((b.desyncs, b.gaps), (0, 0), "{b:?}");
        }
        let names: Vec<_> = report.bots.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["bot-1", "bot-2", "bot-3", "bot-4"]);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_without_a_server_embeds_one() {
    let report = headless::run(options(None, Format::Bincode), pending())
        .await
        .expect("run");
    assert!(report.ok, "{report:#?}");
    assert!(report.embedded);
    assert!(
        report.server.starts_with("http://127.0.0.1:"),
        "{}",
        report.server
    );
}

#[tokio::test]
async fn headless_can_be_interrupted_and_still_reports() {
    let server = TestServer::start().await;
    let mut opts = options(Some(server.url.clone()), Format::Json);
    opts.duration = Duration::from_secs(3600);
    // Interrupt as soon as the run has started: the report comes back at
    // once instead of after an hour.
    let report = headless::run(opts, std::future::ready(()))
        .await
        .expect("run");
    assert!(report.interrupted);
    assert_eq!(report.bots.len(), 4);
    server.shutdown().await;
}

#[tokio::test]
async fn headless_against_a_wrong_room_is_not_ok() {
    let server = TestServer::start().await;
    let mut opts = options(Some(server.url.clone()), Format::Json);
    opts.room = "nowhere".into();
    let report = headless::run(opts, pending()).await.expect("run");
    assert!(!report.ok);
    assert!(
        report
            .bots
            .iter()
            .all(|b| b.errors.iter().any(|e| e.contains("unknown_room"))),
        "{report:#?}"
    );
    server.shutdown().await;
}
