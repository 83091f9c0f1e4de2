//! Inputs are numbered by the client from 1 and acknowledged in order.

use protocol::{Dir, Format};
use tickwire_tests::{Probe, TestServer, player};

/// Inputs each client sends.
const INPUTS: usize = 8;

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
async fn inputs_are_numbered_from_one_and_acked_in_order_in_both_formats() {
    let server = TestServer::start().await;
    for format in [Format::Json, Format::Bincode] {
        let mut p = Probe::spawn(player(&server.url, "turner", format));
        p.until("a welcome", |p| !p.welcomes.is_empty()).await;
        let mut rounds = 0;
        while p.sent.len() < INPUTS {
            rounds += 1;
            assert!(
                rounds < 200,
                "only {} inputs went out in {rounds} rounds",
                p.sent.len()
            );
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
            let (sent, tick) = (p.sent.len(), p.tick());
            // A turn away from the heading the client knows is always a
            // change, so it is sent unless the client already saw newer
            // frames (then the next round tries again).
            p.handle.steer(left_of(heading));
            p.until("the input or two ticks", |p| {
                p.sent.len() > sent || p.tick() >= tick + 2
            })
            .await;
            if p.sent.len() > sent {
                let last = *p.sent.last().expect("sent");
                p.until("its ack", |p| p.acks.last().is_some_and(|&a| a >= last))
                    .await;
                assert_eq!(
                    p.acks.last(),
                    Some(&last),
                    "the ack names the input just sent"
                );
            }
        }
        let expected: Vec<u64> = (1..=INPUTS as u64).collect();
        assert_eq!(p.sent, expected, "seqs count from 1 without holes");
        assert!(
            p.acks.windows(2).all(|w| w[0] <= w[1]),
            "acks never go back: {:?}",
            p.acks
        );
        assert!(
            p.ack_vs_sent.iter().all(|&(ack, sent)| ack <= sent),
            "nothing is acked before it was sent: {:?}",
            p.ack_vs_sent
        );
        assert_eq!(p.problems(), (0, 0, 0));
        p.leave().await;
    }
    server.shutdown().await;
}
