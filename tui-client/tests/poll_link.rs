//! The polled link against a real in-process server on 127.0.0.1: rooms
//! named like the server's own endpoints are played over long-poll and
//! short poll, and `--transport auto` behind something that refuses the
//! WebSocket upgrade (as a proxy stripping `Upgrade` would make the server
//! do) says why, in the refusal's own words, and plays over long-poll.

use std::time::Duration;

use protocol::{Dir, Format, ServerMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tui_client::client::{self, ClientConfig, ClientEvent, ClosedReason, TransportKind};
use tui_client::embedded::{EmbeddedOptions, EmbeddedServer};

/// Generous bound on waiting for one event; never hit when things work.
const WAIT: Duration = Duration::from_secs(20);

async fn next(rx: &mut mpsc::Receiver<ClientEvent>) -> ClientEvent {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("an event in time")
        .expect("the task reports until Closed")
}

async fn create_room(server: &str, id: &str) {
    let resp = reqwest::Client::new()
        .post(format!("{server}/api/rooms"))
        .json(&serde_json::json!({ "id": id }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{:?}", resp.text().await);
}

/// Joins `room` over `transport`, steers once and waits for a frame that
/// acknowledges that input: the room is played, not only reached. Returns
/// the `TransportChosen` reason, if any.
async fn play(server: &str, room: &str, transport: TransportKind) -> Option<String> {
    let mut config = ClientConfig::new(server, room, "walker");
    config.transport = transport;
    config.format = Format::Json;
    config.reconnect = false;
    let (handle, mut rx) = client::spawn(config);
    let mut chosen = None;
    let mut sent = None;
    loop {
        match next(&mut rx).await {
            ClientEvent::TransportChosen { reason, .. } => chosen = Some(reason),
            ClientEvent::Welcome(w) => {
                assert_eq!(w.room, room);
                // Whichever way it heads, one of these two is a turn.
                handle.steer(Dir::Up);
                handle.steer(Dir::Left);
            }
            ClientEvent::InputSent { seq, .. } => {
                sent.get_or_insert(seq);
            }
            ClientEvent::Server(ServerMsg::Tick(t)) if sent.is_some_and(|s| t.ack >= s) => break,
            ClientEvent::Closed { reason } => panic!("{room}: closed: {reason}"),
            _ => {}
        }
    }
    handle.leave();
    loop {
        if let ClientEvent::Closed { reason } = next(&mut rx).await {
            assert_eq!(reason, ClosedReason::Left);
            return chosen;
        }
    }
}

#[tokio::test]
async fn rooms_named_like_endpoints_play_over_long_poll_and_short_poll() {
    let server = EmbeddedServer::start(EmbeddedOptions::default())
        .await
        .unwrap();
    let url = server.url().to_string();
    for room in ["ws", "sessions", "events", "watch"] {
        create_room(&url, room).await;
        play(&url, room, TransportKind::LongPoll).await;
    }
    play(
        &url,
        "ws",
        TransportKind::Poll {
            interval: Duration::from_millis(50),
        },
    )
    .await;
    server.shutdown().await;
}

/// A listener that answers every request with `404 unknown_room` and
/// reports each request line it got.
async fn recording_404() -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = vec![0u8; 4096];
                let n = s.read(&mut head).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&head[..n]).to_string();
                let _ = tx.send(text.lines().next().unwrap_or_default().to_string());
                let body = r#"{"error":"no such room","code":"unknown_room"}"#;
                let answer = format!(
                    "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, rx)
}

/// Room ids are `[a-z0-9_-]` on this server, but the client must not
/// depend on it: a space and a slash travel as one encoded path segment on
/// every link, and the 404 reads as an unknown room.
#[tokio::test]
async fn a_room_with_a_space_and_a_slash_is_one_path_segment() {
    let (url, mut lines) = recording_404().await;
    let cases = [
        (
            TransportKind::Ws,
            "GET /rooms/two%20words%2Fone/ws HTTP/1.1",
        ),
        (
            TransportKind::LongPoll,
            "POST /rooms/two%20words%2Fone/sessions HTTP/1.1",
        ),
        (
            TransportKind::Sse,
            "GET /rooms/two%20words%2Fone/events HTTP/1.1",
        ),
    ];
    for (transport, want) in cases {
        let mut config = ClientConfig::new(&url, "two words/one", "walker");
        config.transport = transport;
        if transport == TransportKind::Sse {
            config.role = protocol::Role::Spectator;
        }
        let (_handle, mut rx) = client::spawn(config);
        let reason = loop {
            if let ClientEvent::Closed { reason } = next(&mut rx).await {
                break reason;
            }
        };
        assert_eq!(
            reason,
            ClosedReason::Refused {
                code: "unknown_room".into(),
                message: "no such room".into()
            },
            "{transport:?}"
        );
        let line = tokio::time::timeout(WAIT, lines.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(line, want);
    }
}

/// The refusal a proxy-mangled upgrade gets, in the server's words.
const REFUSAL: &str = "this is not a WebSocket request: the Upgrade header was missing; \
    long-poll is at /rooms/{room}/sessions";

/// A relay in front of `upstream` that answers every request for a
/// `/ws` path with `426 Upgrade Required` and a JSON reason, and passes
/// every other connection through untouched.
async fn refusing_relay(upstream: std::net::SocketAddr) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut down, _)) = listener.accept().await {
            tokio::spawn(async move {
                // The request line arrives in the first read in practice; a
                // short read only means a connection passed through.
                let mut head = vec![0u8; 4096];
                let Ok(n) = down.read(&mut head).await else {
                    return;
                };
                head.truncate(n);
                let line = String::from_utf8_lossy(&head);
                let first = line.lines().next().unwrap_or_default();
                if first.starts_with("GET ") && first.contains("/ws ") {
                    let body = serde_json::json!({ "error": REFUSAL, "code": "upgrade_required" })
                        .to_string();
                    let answer = format!(
                        "HTTP/1.1 426 Upgrade Required\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = down.write_all(answer.as_bytes()).await;
                    return;
                }
                let Ok(mut up) = TcpStream::connect(upstream).await else {
                    return;
                };
                if up.write_all(&head).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn auto_quotes_the_426_and_plays_over_long_poll() {
    let server = EmbeddedServer::start(EmbeddedOptions::default())
        .await
        .unwrap();
    let relay = refusing_relay(server.local_addr()).await;
    let chosen = play(&relay, "lobby", TransportKind::Auto).await;
    assert_eq!(
        chosen.as_deref(),
        Some(
            format!("WebSocket refused (426 Upgrade Required: {REFUSAL}): using long-poll")
                .as_str()
        )
    );
    server.shutdown().await;
}
