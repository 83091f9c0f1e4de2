//! One hostile client doing everything at once while two honest players
//! play: 300 spectators (SSE and WebSocket) that never read, garbage frames,
//! 2 MiB frames, an input flood and escape sequences in a name and in chat.
//! The honest players get every tick, in order, without a single resync;
//! the stalled spectators are bounded (their backlogs are dropped, again
//! and again) instead of queued for.
//!
//! What it costs in tick time and frame age is measured by the `hostile`
//! tool (see BENCHMARKS.md); a test never asserts speed.

mod common;

use std::net::SocketAddr;

use common::{RawWs, WAIT, server, small_window};
use futures_util::{SinkExt, StreamExt};
use protocol::codec::decode;
use protocol::{Format, ServerMsg};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

const NON_READERS: usize = 300;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn honest(addr: SocketAddr, name: &str) -> Ws {
    let url = format!("ws://{addr}/rooms/lobby/ws");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = serde_json::json!({"hello": {"version": 2, "name": name}});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    ws
}

/// Reads a player's frames; returns how many ticks it got, checking each
/// follows the one before (no gap) and that no keyframe came after the first.
struct Follower {
    last: Option<u64>,
    ticks: u64,
    keyframes: u32,
}

impl Follower {
    fn new() -> Follower {
        Follower {
            last: None,
            ticks: 0,
            keyframes: 0,
        }
    }

    async fn next(&mut self, ws: &mut Ws) {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("an honest player waited too long for a frame")
            .expect("open")
            .unwrap();
        let Message::Text(t) = m else { return };
        match decode::<ServerMsg>(Format::Json, t.as_bytes()).unwrap() {
            ServerMsg::Tick(t) => {
                if let Some(l) = self.last {
                    assert_eq!(t.tick, l + 1, "an honest player missed a tick");
                }
                self.last = Some(t.tick);
                self.ticks += 1;
            }
            ServerMsg::Snapshot(s) => {
                self.keyframes += 1;
                assert_eq!(self.keyframes, 1, "an honest player was resynced");
                self.last = Some(s.tick);
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_client_costs_the_honest_players_nothing() {
    // Small kernel buffers, so the non-readers stall within seconds.
    let s = server(|c| c.send_buffer = Some(4096)).await;
    let addr = s.local_addr;
    let room_metrics = s.rooms.get("lobby").unwrap().room_metrics;
    let mut alice = honest(addr, "alice").await;
    let mut bob = honest(addr, "bob").await;
    let (mut fa, mut fb) = (Follower::new(), Follower::new());

    // 300 spectators that never read a byte: half SSE, half WebSocket.
    let mut stalled = Vec::new();
    for i in 0..NON_READERS {
        let mut sock = small_window(addr).await;
        if i % 2 == 0 {
            sock.write_all(b"GET /rooms/lobby/events HTTP/1.1\r\nhost: t\r\n\r\n")
                .await
                .unwrap();
            stalled.push(sock);
        } else {
            let mut ws = RawWs::over(sock).await;
            ws.send_text(r#"{"hello":{"version":2,"name":"eye","role":"spectator"}}"#)
                .await;
            stalled.push(ws.0);
        }
    }

    // Everything else at once, from other tasks.
    let flood = tokio::spawn(async move {
        let mut ws = honest(addr, "\x1b[2J\x1b]0;pwn\x07\u{202E}flood").await;
        let chat = serde_json::json!({"chat": {"text": "\x1b]52;c;cHduZWQ=\x07\u{200B}hi"}});
        let _ = ws.send(Message::text(chat.to_string())).await;
        for seq in 1..=5000u64 {
            let input = serde_json::json!({"input": {"seq": seq, "dir": "up"}});
            if ws.feed(Message::text(input.to_string())).await.is_err() {
                break;
            }
        }
        let _ = ws.flush().await;
        // Read to the close: 1008 for the flood.
        let mut code = None;
        while let Ok(Some(Ok(m))) = tokio::time::timeout(WAIT, ws.next()).await {
            if let Message::Close(Some(c)) = m {
                code = Some(u16::from(c.code));
            }
        }
        code
    });
    let junk = tokio::spawn(async move {
        let mut codes = Vec::new();
        for i in 0..20u8 {
            let url = format!("ws://{addr}/rooms/lobby/ws");
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            let frame = if i % 4 == 0 {
                Message::binary(vec![i; 2 << 20])
            } else {
                Message::binary(
                    (0..300)
                        .map(|k| (k as u8).wrapping_mul(i))
                        .collect::<Vec<u8>>(),
                )
            };
            let _ = ws.send(frame).await;
            while let Ok(Some(Ok(m))) = tokio::time::timeout(WAIT, ws.next()).await {
                if let Message::Close(Some(c)) = m {
                    codes.push(u16::from(c.code));
                }
            }
        }
        codes
    });

    // The honest players play on until every non-reader overflowed its
    // queue at least once (the room dropped its backlog instead of keeping
    // it) and the other hostile tasks are done.
    tokio::time::timeout(std::time::Duration::from_secs(120), async {
        while room_metrics.resyncs.get() < NON_READERS as u64
            || !flood.is_finished()
            || !junk.is_finished()
        {
            tokio::select! {
                _ = fa.next(&mut alice) => {}
                _ = fb.next(&mut bob) => {}
            }
        }
    })
    .await
    .expect("the non-readers overflow and the hostile tasks end");
    // And a few more seconds of play with all 300 still connected and stalled.
    let target = fa.ticks + 180;
    while fa.ticks < target || fb.ticks < target {
        tokio::select! {
            _ = fa.next(&mut alice) => {}
            _ = fb.next(&mut bob) => {}
        }
    }
    assert_eq!((fa.keyframes, fb.keyframes), (1, 1));
    assert_eq!(flood.await.unwrap(), Some(1008));
    let codes = junk.await.unwrap();
    assert_eq!(codes.len(), 20);
    assert!(
        codes.iter().all(|c| [1002, 1007, 1009].contains(c)),
        "{codes:?}"
    );
    assert_eq!(codes.iter().filter(|c| **c == 1009).count(), 5);
    let c = s.counters.snapshot();
    assert_eq!(c.input_floods, 1);
    assert_eq!(c.ws_oversize, 5);
    // 2 players and the 300 stalled spectators are all still there.
    assert_eq!(s.connections.open(), 2 + NON_READERS);
    drop(stalled);
    s.shutdown().await;
}
