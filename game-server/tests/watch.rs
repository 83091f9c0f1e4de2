//! The `curl -N` watch view over real sockets: plain and ANSI frames,
//! option validation, unknown rooms, hostile names and shutdown.

mod common;

use common::{Http, WAIT, get, server, ws_player};

/// Reads until `n` plain frames (each starts with a rule line) arrived.
async fn frames(h: &mut Http, n: usize) -> String {
    let mut text = String::new();
    tokio::time::timeout(WAIT, async {
        while text.matches("Tickwire  room").count() < n {
            let c = h.chunk().await.expect("the stream ended");
            text.push_str(&String::from_utf8(c).expect("UTF-8"));
        }
    })
    .await
    .expect("frames in time");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_frames_show_the_map_fit_the_terminal_and_have_no_escapes() {
    let s = server(|_| {}).await;
    let _p = ws_player(s.local_addr, "\x1b]0;pwn\x07evil").await;
    let mut h = Http::get(
        s.local_addr,
        "/rooms/lobby/watch?color=never&cols=60&rows=20",
        &[],
    )
    .await;
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(h.header("access-control-allow-origin"), Some("*"));
    assert_eq!(h.header("cache-control"), Some("no-cache"));
    let text = frames(&mut h, 3).await;
    assert!(!text.contains('\x1b'), "no escape bytes at all");
    assert!(!text.contains('\x07'));
    assert!(text.contains("room lobby"), "{text}");
    assert!(text.contains("tick "), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("####")),
        "the map: {text}"
    );
    assert!(
        text.contains("evil"),
        "the scoreboard names the player: {text}"
    );
    assert!(
        text.lines().all(|l| l.chars().count() <= 60),
        "fits 60 cols"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn colored_frames_clear_once_then_home_and_redraw() {
    let s = server(|_| {}).await;
    let mut h = Http::get(s.local_addr, "/rooms/lobby/watch", &[]).await;
    let mut bytes = Vec::new();
    tokio::time::timeout(WAIT, async {
        while bytes.windows(3).filter(|w| w == b"\x1b[H").count() < 2 {
            bytes.extend(h.chunk().await.expect("stream"));
        }
    })
    .await
    .unwrap();
    assert!(
        bytes.starts_with(b"\x1b[2J\x1b[H"),
        "clears once, then homes"
    );
    assert_eq!(bytes.windows(4).filter(|w| w == b"\x1b[2J").count(), 1);
    assert!(bytes.windows(2).any(|w| w == b"\x1b[") && bytes.windows(3).any(|w| w == b"\x1b[J"));
    s.shutdown().await;
}

#[tokio::test]
async fn bad_options_are_400_and_unknown_rooms_404() {
    let s = server(|_| {}).await;
    for q in ["cols=abc", "cols=5", "rows=0", "rows=99999", "color=purple"] {
        let (st, head, body) = get(s.local_addr, &format!("/rooms/lobby/watch?{q}")).await;
        assert_eq!(st, 400, "{q}: {body}");
        assert!(head.contains("application/json"), "{head}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["code"], "bad_request", "{q}");
        let key = q.split('=').next().unwrap();
        assert!(v["error"].as_str().unwrap().contains(key), "{q}: {body}");
    }
    let (st, _, body) = get(s.local_addr, "/rooms/nope/watch").await;
    assert_eq!(st, 404);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "unknown_room");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_view_cleanly() {
    let s = server(|_| {}).await;
    let mut h = Http::get(s.local_addr, "/rooms/lobby/watch?color=never", &[]).await;
    frames(&mut h, 1).await;
    let stopping = tokio::spawn(s.shutdown());
    let rest = tokio::time::timeout(WAIT, h.body())
        .await
        .expect("the body ends");
    let rest = String::from_utf8(rest).unwrap();
    assert!(
        rest.ends_with("room closed: the server is shutting down\n"),
        "{rest}"
    );
    stopping.await.unwrap();
}
