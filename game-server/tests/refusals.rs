//! Refusals in words: a request to a WebSocket endpoint that is not a
//! handshake is a `426` that says what was missing and where long-poll
//! lives; no error reply carries an internal type's debug text; `GET /`
//! names the host it was asked by.

use std::time::Duration;

use game_server::{RunningServer, ServerConfig, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);

async fn server() -> RunningServer {
    start(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        map: "small".into(),
        seed: Some(7),
        ..ServerConfig::default()
    })
    .await
    .unwrap()
}

/// Sends `head` (the request line and headers, without the blank line) and
/// returns the status, the lower-cased head and the body of the answer.
async fn ask(s: &RunningServer, head: &str) -> (u16, String, String) {
    let mut c = TcpStream::connect(s.local_addr).await.unwrap();
    let request = format!("{head}\r\nconnection: close\r\n\r\n");
    c.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, c.read_to_string(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    let (h, body) = answer.split_once("\r\n\r\n").unwrap();
    (
        h[9..12].parse().unwrap(),
        h.to_ascii_lowercase(),
        body.to_string(),
    )
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn a_websocket_endpoint_asked_without_an_upgrade_answers_426_in_words() {
    let s = server().await;
    let cases = [
        // What nginx's default proxying sends on: the upgrade headers gone.
        (
            "GET /rooms/lobby/ws HTTP/1.1\r\nhost: x",
            426,
            "'Upgrade: websocket'",
        ),
        (
            "GET /rooms/lobby/ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket",
            426,
            "Connection header",
        ),
        (
            "GET /rooms/lobby/ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-version: 8",
            426,
            "version 13",
        ),
        (
            "GET /rooms/lobby/ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-version: 13",
            400,
            "Sec-WebSocket-Key",
        ),
    ];
    for (head, status, names) in cases {
        let (st, h, body) = ask(&s, head).await;
        assert_eq!(st, status, "{head}: {body}");
        let v = json(&body);
        let code = if status == 426 {
            "upgrade_required"
        } else {
            "bad_request"
        };
        assert_eq!(v["code"], code, "{body}");
        let error = v["error"].as_str().unwrap();
        assert!(error.contains(names), "{error}");
        assert!(error.contains("POST /rooms/lobby/sessions"), "{error}");
        assert!(h.contains("upgrade: websocket"), "{h}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn no_error_reply_carries_an_internal_types_debug_text() {
    let s = server().await;
    let heads = [
        "GET /rooms/lobby/ws HTTP/1.1\r\nhost: x",
        "POST /rooms/lobby/ws HTTP/1.1\r\nhost: x\r\ncontent-length: 0",
        "GET /rooms/lobby/watch?cols=abc HTTP/1.1\r\nhost: x",
        "GET /rooms/lobby/sessions/nope/poll?after=x HTTP/1.1\r\nhost: x",
        "POST /api/rooms HTTP/1.1\r\nhost: x",
        "PUT /api/rooms HTTP/1.1\r\nhost: x\r\ncontent-length: 0",
        "GET /nowhere HTTP/1.1\r\nhost: x",
    ];
    for head in heads {
        let (st, _, body) = ask(&s, head).await;
        assert!(st >= 400, "{head}: {st}");
        let v = json(&body);
        let error = v["error"].as_str().unwrap();
        assert!(v["code"].as_str().is_some_and(|c| !c.is_empty()), "{body}");
        for internal in ["Rejection", "NotUpgrade", "MissingHeader", "Some(", "{ "] {
            assert!(!error.contains(internal), "{head}: {error}");
        }
    }
    s.shutdown().await;
}

#[tokio::test]
async fn the_usage_page_names_the_host_it_was_asked_by() {
    let s = server().await;
    let (st, _, page) = ask(&s, "GET / HTTP/1.1\r\nhost: game.example:9999").await;
    assert_eq!(st, 200);
    assert!(
        page.contains("curl -N http://game.example:9999/rooms/lobby/watch"),
        "{page}"
    );
    assert!(page.contains("--server http://game.example:9999"), "{page}");
    assert!(!page.contains("THIS-HOST"));
    s.shutdown().await;
}
