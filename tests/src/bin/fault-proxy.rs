//! A hostile network between a client and a Tickwire server, for trying the
//! fallbacks by hand: `--refuse-websocket` answers upgrades with 403 like a
//! restrictive corporate proxy, so `--transport auto` falls back to
//! long-poll; the other flags drop, cut and delay traffic. Every few seconds
//! it prints what went through (requests/s and bytes/s each way).
//!
//! ```sh
//! cargo run --release -p tickwire-tests --bin fault-proxy -- \
//!     --upstream 127.0.0.1:7878 --listen 127.0.0.1:7879 --refuse-websocket
//! cargo run --release -- --server http://127.0.0.1:7879 --transport auto
//! ```

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use tickwire_tests::proxy::{FaultProxy, Faults};

#[derive(Parser, Debug)]
#[command(about = "A loopback fault-injection proxy in front of a Tickwire server")]
struct Args {
    /// The server to forward to.
    #[arg(long, default_value = "127.0.0.1:7878")]
    upstream: SocketAddr,
    /// Where clients connect.
    #[arg(long, default_value = "127.0.0.1:7879")]
    listen: SocketAddr,
    /// Answer WebSocket upgrades with 403.
    #[arg(long)]
    refuse_websocket: bool,
    /// Share (0..1) of long-poll responses dropped after the server sent them.
    #[arg(long, default_value_t = 0.0)]
    drop_polls: f64,
    /// Share (0..1) of send responses dropped after the server sent them.
    #[arg(long, default_value_t = 0.0)]
    drop_sends: f64,
    /// Share (0..1) of responses cut mid-body.
    #[arg(long, default_value_t = 0.0)]
    cut: f64,
    /// Each new connection waits a random time up to this (ms) first.
    #[arg(long, default_value_t = 0)]
    max_connect_delay_ms: u64,
    /// Seed of the fault dice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds between the printed counters (0: never).
    #[arg(long, default_value_t = 5)]
    every: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for (name, p) in [
        ("--drop-polls", args.drop_polls),
        ("--drop-sends", args.drop_sends),
        ("--cut", args.cut),
    ] {
        anyhow::ensure!((0.0..=1.0).contains(&p), "{name} is a share from 0 to 1");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let proxy = FaultProxy::serve_on(
        listener,
        args.upstream,
        Faults {
            drop_poll_responses: args.drop_polls,
            drop_send_responses: args.drop_sends,
            cut_mid_response: args.cut,
            max_connect_delay: Duration::from_millis(args.max_connect_delay_ms),
            refuse_websocket: args.refuse_websocket,
            seed: args.seed,
        },
    );
    println!("fault proxy on {} -> {}", proxy.url, args.upstream);
    if args.every == 0 {
        tokio::signal::ctrl_c().await?;
        return Ok(());
    }
    let every = Duration::from_secs(args.every);
    let mut last = (Instant::now(), [0u64; 3]);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
        let c = &proxy.counters;
        let now = [
            c.requests.load(Ordering::Relaxed),
            c.bytes_down.load(Ordering::Relaxed),
            c.bytes_up.load(Ordering::Relaxed),
        ];
        let secs = last.0.elapsed().as_secs_f64();
        let rate = |i: usize| (now[i] - last.1[i]) as f64 / secs;
        println!(
            "{:>7.1} req/s {:>9.0} B/s down {:>8.0} B/s up | refused upgrades {} dropped {} cut {}",
            rate(0),
            rate(1),
            rate(2),
            c.refused_upgrades.load(Ordering::Relaxed),
            c.dropped.load(Ordering::Relaxed),
            c.cut.load(Ordering::Relaxed),
        );
        last = (Instant::now(), now);
    }
}
