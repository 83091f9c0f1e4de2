//! `game-server`: runs a Tickwire server until Ctrl-C or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use game_server::{ServerConfig, start};
use protocol::Mode;

/// Tickwire game server: rooms of snakes and light cycles for terminals.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:7878")]
    bind: SocketAddr,
    /// Ticks per second of the default room (1 to 60).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=60))]
    tick_rate: u32,
    /// Built-in map of the default room: small, arena, maze or big.
    #[arg(long, default_value = "arena")]
    map: String,
    /// Game mode of the default room: snake or tron.
    #[arg(long, default_value = "snake")]
    mode: Mode,
    /// Player cap of the default room.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=64))]
    max_players: u32,
    /// Seed of the default room (random if absent): same seed and inputs, same game.
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds a dropped player's snake waits for its owner to resume.
    #[arg(long, default_value_t = 30)]
    resume_grace_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let server = start(ServerConfig {
        bind: args.bind,
        tick_rate: args.tick_rate,
        map: args.map,
        mode: args.mode,
        max_players: args.max_players,
        seed: args.seed,
        resume_grace: Duration::from_secs(args.resume_grace_secs),
        poll_idle_timeout: game_server::longpoll::IDLE_TIMEOUT,
        ..ServerConfig::default()
    })
    .await
    .context("starting the server")?;

    let port = server.local_addr.port();
    println!("Tickwire server listening on {}", server.local_addr);
    if server.local_addr.ip().is_loopback() {
        println!(
            "Bound to loopback: only this machine can join (use --bind 0.0.0.0:{port} for a LAN)."
        );
    } else {
        println!("Share one of these with players on your network:");
    }
    for ip in share_addresses(server.local_addr.ip()) {
        let host = match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        println!("  http://{host}:{port}");
    }
    println!("Join:   cargo run --release -- --server http://HOST:{port}");
    println!("Rooms:  curl http://HOST:{port}/api/rooms");
    println!("Ctrl-C stops the server.");

    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// The addresses others can reach: every non-loopback IPv4 address when
/// bound to the unspecified address, else the bound address itself.
fn share_addresses(bound: IpAddr) -> Vec<IpAddr> {
    if !bound.is_unspecified() {
        return vec![bound];
    }
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
        .collect();
    ips.sort();
    ips.dedup();
    if ips.is_empty() {
        ips.push(IpAddr::from([127, 0, 0, 1]));
    }
    ips
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
