//! Sessions through a fault-injection proxy (`tickwire_tests::proxy`):
//! responses dropped after the server sent them, connections delayed and
//! reordered, cut mid-body, WebSocket upgrades refused. Over thousands of
//! messages nothing may be lost, duplicated or reordered.

use std::time::Duration;

use protocol::Format;
use tickwire_tests::proxy::{FaultProxy, Faults};
use tickwire_tests::{Probe, TestServer, disagreements, player};
use tui_client::bot::BotKind;
use tui_client::client::{ClosedReason, TransportKind};

fn contiguous(p: &Probe) -> bool {
    let (Some(first), Some(last)) = (p.checksums.keys().next(), p.checksums.keys().last()) else {
        return false;
    };
    p.checksums.len() as u64 == last - first + 1
}

/// Ticks each client must verify.
const TICKS: usize = 900;
/// Chat lines the first client sends (each must arrive exactly once, in order).
const CHATS: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_delivers_everything_exactly_once_through_a_hostile_proxy() {
    // Six chat lines a second, far over the chat rate limit: turn it off,
    // the limit is not what this test is about.
    let server = TestServer::start_with(|c| c.limits.chat_rate = 0.0).await;
    let proxy = FaultProxy::start(
        server.addr,
        Faults {
            drop_poll_responses: 0.15,
            drop_send_responses: 0.25,
            cut_mid_response: 0.05,
            max_connect_delay: Duration::from_millis(20),
            refuse_websocket: true,
            seed: 2026,
        },
    )
    .await;
    let mut probes: Vec<Probe> = [(Format::Json, 1), (Format::Bincode, 2)]
        .into_iter()
        .map(|(format, seed)| {
            let mut c = player(&proxy.url, &format!("hostile-{seed}"), format);
            c.transport = TransportKind::LongPoll;
            Probe::bot(c, BotKind::Survival, seed)
        })
        .collect();
    let [a, b] = &mut probes[..] else {
        unreachable!("two probes")
    };
    let mut chats_sent = 0;
    while a.ticks_seen() < TICKS || b.ticks_seen() < TICKS || chats_sent < CHATS {
        tokio::select! {
            _ = a.step() => {
                // One chat line every 10 ticks, through the same send path as inputs.
                if a.ticks_seen() >= (chats_sent + 1) * 10 && chats_sent < CHATS {
                    chats_sent += 1;
                    a.handle.chat(format!("line {chats_sent}"));
                }
            }
            _ = b.step() => {}
        }
    }
    let want: Vec<String> = (1..=CHATS).map(|i| format!("line {i}")).collect();
    for p in [&mut *a, &mut *b] {
        p.until("every chat line", |p| p.chats.len() >= CHATS).await;
    }
    let sent = *a.sent.last().expect("the bot steered");
    a.until("its last input acked", |p| {
        p.acks.last().is_some_and(|&ack| ack >= sent)
    })
    .await;

    for p in [&*a, &*b] {
        assert_eq!(p.problems(), (0, 0, 0), "no desync, gap or lost frame");
        assert!(contiguous(p), "every tick, in order");
        let texts: Vec<String> = p.chats.iter().map(|(_, t)| t.clone()).collect();
        assert_eq!(texts, want, "each chat line exactly once, in order");
        assert!(
            p.acks.windows(2).all(|w| w[0] <= w[1]),
            "acks never go back"
        );
        assert!(p.ack_vs_sent.iter().all(|(ack, sent)| ack <= sent));
        assert_eq!(
            p.welcomes.len(),
            1,
            "the session survived: {:?}",
            p.disconnects
        );
    }
    let (common, differ) = disagreements(a, b);
    assert!(common >= TICKS / 2, "{common} ticks in common");
    assert!(differ.is_empty(), "checksums differ at {differ:?}");
    // The proxy really was hostile.
    assert!(
        proxy.get(|c| &c.dropped) > 10,
        "dropped {}",
        proxy.get(|c| &c.dropped)
    );
    assert!(proxy.get(|c| &c.cut) > 0);
    for p in probes {
        assert_eq!(p.leave().await, ClosedReason::Left);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_long_poll_when_a_proxy_refuses_websocket() {
    let server = TestServer::start().await;
    let refusing = FaultProxy::start(
        server.addr,
        Faults {
            refuse_websocket: true,
            ..Faults::default()
        },
    )
    .await;
    let p = Probe::after_fallback(&refusing.url, "auto", Format::Bincode, "403").await;
    assert_eq!(refusing.get(|c| &c.refused_upgrades), 1);
    assert_eq!(p.leave().await, ClosedReason::Left);

    // Where the upgrade goes through, auto is a WebSocket.
    let open = FaultProxy::start(server.addr, Faults::default()).await;
    let mut c = player(&open.url, "auto-ws", Format::Bincode);
    c.transport = TransportKind::Auto;
    let mut p = Probe::spawn(c);
    p.until("a welcome", |p| !p.welcomes.is_empty()).await;
    assert_eq!(p.transports[0].0, TransportKind::Ws);
    assert_eq!(p.leave().await, ClosedReason::Left);
    server.shutdown().await;
}
