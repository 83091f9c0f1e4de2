//! Inputs are numbered by the client and acknowledged in order.

use protocol::{Dir, Format};
use tickwire_tests::{Probe, TestServer, player};

/// The direction a quarter turn to the left of `d`.
fn left_of(d: Dir) -> Dir {
    match d {
        Dir::Up => Dir::Left,
        Dir::Left => Dir::Down,
        Dir::Down => Dir::Right,
        Dir::Right => Dir::Up,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_are_acked_in_order_in_both_formats() {
    let server = TestServer::start().await;
    for format in [Format::Json, Format::Bincode] {
        let mut p = Probe::spawn(player(&server.url, "turner", format));
        p.until("a welcome", |p| !p.welcomes.is_empty()).await;
        const TURNS: u64 = 8;
        for sent in 1..=TURNS {
            // Turn only while alive, with the previous turn applied, so the
            // turn is a change (the client sends only changes) and counts.
            p.until("our snake alive", |p| {
                p.view
                    .as_ref()
                    .and_then(|v| v.my_snake())
                    .is_some_and(|s| s.alive)
            })
            .await;
            let heading = p
                .view
                .as_ref()
                .and_then(|v| v.my_snake())
                .expect("alive")
                .dir;
            p.handle.steer(left_of(heading));
            p.until("the ack", |p| p.acks.last().is_some_and(|&a| a >= sent))
                .await;
            assert_eq!(
                *p.acks.last().expect("acks"),
                sent,
                "ack names the input just sent"
            );
        }
        assert!(
            p.acks.windows(2).all(|w| w[0] <= w[1]),
            "acks never go back: {:?}",
            p.acks
        );
        assert_eq!(p.acks.iter().max(), Some(&TURNS));
        assert_eq!(p.problems(), (0, 0, 0));
        p.leave().await;
    }
    server.shutdown().await;
}
