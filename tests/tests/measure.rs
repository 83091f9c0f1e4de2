//! What each transport costs one player: requests per second and bytes per
//! second each way, counted by the proxy. A measurement, not a check: run it
//! with `cargo test -p tickwire-tests --test measure -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use protocol::Format;
use tickwire_tests::proxy::{FaultProxy, Faults};
use tickwire_tests::{Probe, TestServer, player};
use tui_client::bot::BotKind;
use tui_client::client::{ClosedReason, TransportKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; prints figures"]
async fn one_player_per_transport() {
    // The default 20 Hz room, as players see it.
    let server = TestServer::start_with(|c| c.tick_rate = 20).await;
    let transports = [
        TransportKind::Ws,
        TransportKind::LongPoll,
        TransportKind::Poll {
            interval: Duration::from_millis(250),
        },
    ];
    for format in [Format::Bincode, Format::Json] {
        for transport in transports {
            let proxy = FaultProxy::start(server.addr, Faults::default()).await;
            let mut c = player(&proxy.url, "meter", format);
            c.transport = transport;
            let mut p = Probe::bot(c, BotKind::Survival, 1);
            p.until("a welcome", |p| !p.welcomes.is_empty()).await;
            let start = Instant::now();
            let ticks0 = p.ticks_seen();
            p.until("10 s of play", |_| {
                start.elapsed() >= Duration::from_secs(10)
            })
            .await;
            let ticks = p.ticks_seen() - ticks0;
            assert_eq!(p.leave().await, ClosedReason::Left);
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{:<9} {:?}: {:>6.1} req/s, {:>8.0} B/s down, {:>6.0} B/s up, {} ticks in {:.1} s",
                transport.name(),
                format,
                proxy.get(|c| &c.requests) as f64 / secs,
                proxy.get(|c| &c.bytes_down) as f64 / secs,
                proxy.get(|c| &c.bytes_up) as f64 / secs,
                ticks,
                secs,
            );
        }
    }
    server.shutdown().await;
}
