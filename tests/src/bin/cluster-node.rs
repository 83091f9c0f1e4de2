//! One node of a test cluster in its own process, so a test can kill it
//! with SIGKILL (a real crash, not a graceful stop): a game server on
//! 127.0.0.1:0 in a cluster on `--nats`. It prints `{"addr": "..."}` on
//! stdout once it listens, then runs until killed or its stdin closes.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use game_server::cluster::ClusterConfig;
use game_server::{ServerConfig, SpectatorConfig};
use protocol::Mode;

/// A cluster node for the end-to-end tests.
#[derive(Debug, Parser)]
struct Args {
    /// The NATS server.
    #[arg(long)]
    nats: String,
    /// The node's id.
    #[arg(long)]
    node_id: String,
    /// An edge (owns no rooms).
    #[arg(long)]
    edge: bool,
    /// The directory TTL, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    ttl_ms: u64,
    /// Tick rate of the lobby.
    #[arg(long, default_value_t = tickwire_tests::FAST_TICKS)]
    tick_rate: u32,
    /// How long a WebSocket may take to say hello, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    ws_hello_timeout_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let server = game_server::start(ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        tick_rate: args.tick_rate,
        map: "small".into(),
        mode: Mode::Snake,
        seed: Some(7),
        spectators: SpectatorConfig::default(),
        limits: game_server::limits::Limits {
            ws_hello_timeout: Duration::from_millis(args.ws_hello_timeout_ms),
            ..Default::default()
        },
        cluster: Some(ClusterConfig {
            nats: args.nats,
            creds: None,
            public_url: None,
            node_id: Some(args.node_id),
            edge: args.edge,
            ttl: Duration::from_millis(args.ttl_ms),
        }),
        ..ServerConfig::default()
    })
    .await
    .context("starting the node")?;
    println!(
        "{}",
        serde_json::json!({ "addr": server.local_addr.to_string() })
    );
    // Until the test closes our stdin (or kills us).
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
    })
    .await;
    server.shutdown().await;
    Ok(())
}
