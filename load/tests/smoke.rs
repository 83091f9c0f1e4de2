//! The load tool against a real in-process server: every kind of
//! connection opens, receives frames and reports sane figures. No timing
//! asserts: speed is for the scenarios in `bench/`.

use std::time::Duration;

use clap::Parser as _;
use game_server::{ServerConfig, start};
use tickwire_load::{Config, run};

async fn server() -> game_server::RunningServer {
    start(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        seed: Some(7),
        ..ServerConfig::default()
    })
    .await
    .unwrap()
}

fn config(addr: std::net::SocketAddr, args: &[&str]) -> Config {
    let server = format!("http://{addr}");
    let mut argv = vec!["tickwire-load", "--server", &server];
    argv.extend_from_slice(args);
    Config::parse_from(argv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_opens_and_receives_frames() {
    let srv = server().await;
    let cfg = config(
        srv.local_addr,
        &[
            "--duration",
            "2s",
            "--ramp",
            "2000",
            "--rooms",
            "4",
            "--room",
            "smoke",
            "--ws",
            "10",
            "--ws-spectators",
            "4",
            "--sse",
            "10",
            "--longpoll",
            "10",
            "--poll",
            "6",
            "--poll-every",
            "100ms",
            "--idle-ws",
            "4",
            "--idle-sse",
            "4",
            "--idle-tick-rate",
            "5",
            "--stalled-sse",
            "1",
            "--stalled-ws",
            "1",
            "--input-every",
            "100ms",
            "--server-pid",
            &std::process::id().to_string(),
        ],
    );
    let report = tokio::time::timeout(Duration::from_secs(60), run(cfg))
        .await
        .expect("the run is bounded")
        .expect("the run starts");
    let table = report.table();
    assert_eq!(report.kinds.len(), 9, "{table}");
    for k in &report.kinds {
        assert_eq!(k.opened as usize, k.wanted, "{}: {table}", k.kind);
        assert_eq!(
            (k.failed, k.closed_early, k.errors),
            (0, 0, 0),
            "{}: {table}",
            k.kind
        );
        if k.kind.starts_with("stalled") {
            continue;
        }
        assert!(k.bytes_per_client_s > 0.0, "{}: {table}", k.kind);
        if k.kind.starts_with("idle") {
            continue;
        }
        assert!(k.frames > 0, "{}: {table}", k.kind);
        assert_eq!(k.frame_age_ms.count, k.frames, "{}: {table}", k.kind);
        if k.kind.contains("player") {
            assert!(k.input_latency_ms.count > 0, "{}: {table}", k.kind);
            assert!(k.requests_per_client_s > 0.0, "{}: {table}", k.kind);
        }
    }
    let m = report.server_metrics.as_ref().expect("/metrics scraped");
    assert!(m.ticks > 0, "{table}");
    assert!(report.server_process.is_some(), "{table}");
    assert!(table.contains("sse-spectator"), "{table}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["kinds"][0]["kind"], "ws-player (json)");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bincode_players_play_over_websocket_and_long_poll() {
    let srv = server().await;
    let cfg = config(
        srv.local_addr,
        &[
            "--duration",
            "1s",
            "--format",
            "bincode",
            "--ws",
            "4",
            "--longpoll",
            "4",
            "--input-every",
            "100ms",
        ],
    );
    let report = run(cfg).await.unwrap();
    let table = report.table();
    for k in &report.kinds {
        assert!(k.kind.contains("bincode"), "{table}");
        assert_eq!(k.opened, 4, "{table}");
        assert!(k.frames > 0 && k.input_latency_ms.count > 0, "{table}");
    }
    srv.shutdown().await;
}
