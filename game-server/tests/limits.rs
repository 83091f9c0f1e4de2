//! Every limit over real sockets: what a misbehaving client gets (a close
//! code or a JSON status), that it is counted, and that the others keep
//! playing. Timeouts are configured short so each test takes a second or
//! so; every wait is on an event (a close, an answer, a counter's cause)
//! with a generous deadline, never a sleep.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Http, RawWs, WAIT, http_raw, parse_answer, server, small_window};
use futures_util::{SinkExt, StreamExt};
use game_server::RunningServer;
use game_server::limits::counters::CountersSnapshot;
use protocol::codec::{decode, encode};
use protocol::{ClientMsg, Dir, Format, Input, PROTOCOL_VERSION, ServerMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn counters(s: &RunningServer) -> CountersSnapshot {
    s.counters.snapshot()
}

async fn ws(addr: SocketAddr) -> Ws {
    let url = format!("ws://{addr}/rooms/lobby/ws");
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

fn hello_json(name: &str, role: &str) -> Message {
    let v = serde_json::json!({"hello": {"version": PROTOCOL_VERSION, "name": name, "role": role}});
    Message::text(v.to_string())
}

/// A JSON session that got its welcome.
async fn joined(addr: SocketAddr, name: &str, role: &str) -> Ws {
    let mut ws = ws(addr).await;
    ws.send(hello_json(name, role)).await.unwrap();
    match next_msg(&mut ws).await {
        Ok(ServerMsg::Welcome(_)) => ws,
        other => panic!("no welcome: {other:?}"),
    }
}

/// The next server message, or the close `(code, reason)`.
async fn next_msg(ws: &mut Ws) -> Result<ServerMsg, (u16, String)> {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("nothing from the server in time");
        match m {
            Some(Ok(Message::Text(t))) => return Ok(decode(Format::Json, t.as_bytes()).unwrap()),
            Some(Ok(Message::Binary(b))) => return Ok(decode(Format::Bincode, &b).unwrap()),
            Some(Ok(Message::Close(Some(c)))) => return Err((c.code.into(), c.reason.to_string())),
            Some(Ok(Message::Close(None))) => return Err((1005, String::new())),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("connection failed before a close frame: {e}"),
            None => panic!("connection ended without a close frame"),
        }
    }
}

/// Reads until the close frame; returns it and every error message before.
/// Ticks keep coming while it waits, so the wait is bounded as a whole.
async fn until_close(ws: &mut Ws) -> ((u16, String), Vec<protocol::ErrorMsg>) {
    let mut errors = Vec::new();
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match next_msg(ws).await {
                Ok(ServerMsg::Error(e)) => errors.push(e),
                Ok(_) => continue,
                Err(close) => return close,
            }
        }
    })
    .await
    .expect("no close frame in time");
    (closed, errors)
}

/// Follows `n` ticks of a JSON session; panics on a gap or a keyframe
/// after the first frame (which may be the join snapshot).
async fn ticks_flow(ws: &mut Ws, n: usize) {
    let mut last: Option<u64> = None;
    let mut seen = 0;
    while seen < n {
        match next_msg(ws).await.unwrap() {
            ServerMsg::Tick(t) => {
                if let Some(l) = last {
                    assert_eq!(t.tick, l + 1, "a gap in the ticks");
                }
                last = Some(t.tick);
                seen += 1;
            }
            ServerMsg::Snapshot(s) => {
                assert!(
                    last.is_none(),
                    "a keyframe mid-stream: this reader fell behind"
                );
                last = Some(s.tick);
            }
            _ => {}
        }
    }
}

fn get_req(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_mib_frame_closes_with_1009_before_and_after_the_hello() {
    let s = server(|_| {}).await;
    let big = vec![7u8; 2 << 20];

    let mut first = ws(s.local_addr).await;
    let _ = first.send(Message::binary(big.clone())).await;
    let ((code, reason), _) = until_close(&mut first).await;
    assert_eq!(code, 1009, "{reason}");
    assert!(
        reason.contains("4096"),
        "the reason names the limit: {reason}"
    );
    // The server read (and dropped) the rest of the frame before it closed,
    // so the connection ends cleanly instead of with a reset.
    let end = tokio::time::timeout(WAIT, first.next()).await.unwrap();
    assert!(
        !matches!(end, Some(Err(tokio_tungstenite::tungstenite::Error::Io(_)))),
        "{end:?}"
    );

    let mut player = joined(s.local_addr, "big", "player").await;
    let _ = player.send(Message::binary(big)).await;
    let ((code, _), _) = until_close(&mut player).await;
    assert_eq!(code, 1009);

    // The server did not buffer 2 MiB for it, and others still play.
    assert_eq!(counters(&s).ws_oversize, 2);
    let mut other = joined(s.local_addr, "other", "player").await;
    ticks_flow(&mut other, 10).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_flood_is_dropped_and_counted_then_closed_with_1008_while_others_play() {
    let s = server(|_| {}).await;
    let mut honest = joined(s.local_addr, "honest", "player").await;
    let mut flooder = joined(s.local_addr, "flood", "player").await;

    // 5,000 inputs as fast as the socket takes them: far over 5,000 a second.
    let sending = tokio::spawn(async move {
        for seq in 1..=5000u64 {
            let dir = [Dir::Up, Dir::Left, Dir::Down, Dir::Right][seq as usize % 4];
            let input = ClientMsg::Input(Input {
                seq,
                dir,
                boost: false,
            });
            let text = String::from_utf8(encode(Format::Json, &input).to_vec()).unwrap();
            if flooder.feed(Message::text(text)).await.is_err() {
                break;
            }
        }
        let _ = flooder.flush().await;
        flooder
    });
    // The honest player's ticks keep coming, in order, without a resync.
    ticks_flow(&mut honest, 60).await;
    let mut flooder = sending.await.unwrap();
    let ((code, reason), errors) = until_close(&mut flooder).await;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("flood"), "{reason}");
    assert_eq!(errors.last().map(|e| e.code.as_str()), Some("rate_limited"));

    let c = counters(&s);
    assert_eq!(c.input_floods, 1);
    // The burst (240) passed, the next 241 were dropped and counted, then it closed.
    assert!((200..=300).contains(&c.inputs_dropped), "{c:?}");
    ticks_flow(&mut honest, 30).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_rate_is_dropped_but_the_session_stays() {
    // No refill to speak of, so exactly the burst passes.
    let s = server(|c| {
        c.limits.input_rate = 0.001;
        c.limits.input_burst = 5.0;
    })
    .await;
    let mut p = joined(s.local_addr, "eager", "player").await;
    for t in 1..=8u64 {
        let ping = serde_json::json!({"ping": {"t": t}});
        p.send(Message::text(ping.to_string())).await.unwrap();
    }
    let mut pongs = Vec::new();
    let mut ticks = 0;
    // 8 pings, 5 answered; the connection stays open and ticks keep coming.
    while pongs.len() < 5 || ticks < 30 {
        match next_msg(&mut p).await {
            Ok(ServerMsg::Pong(pong)) => pongs.push(pong.t),
            Ok(ServerMsg::Tick(_)) => ticks += 1,
            Ok(_) => {}
            Err(close) => panic!("closed: {close:?}"),
        }
    }
    assert_eq!(pongs, vec![1, 2, 3, 4, 5]);
    let c = counters(&s);
    assert_eq!((c.inputs_dropped, c.input_floods), (3, 0));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_over_its_limit_is_dropped_and_the_sender_is_told() {
    let s = server(|c| {
        c.limits.chat_rate = 0.001;
        c.limits.chat_burst = 2.0;
    })
    .await;
    let mut listener = joined(s.local_addr, "ear", "spectator").await;
    let mut talker = joined(s.local_addr, "talker", "player").await;
    for i in 1..=4 {
        let chat = serde_json::json!({"chat": {"text": format!("line {i}")}});
        talker.send(Message::text(chat.to_string())).await.unwrap();
    }
    let mut told = 0;
    while told < 2 {
        if let Ok(ServerMsg::Error(e)) = next_msg(&mut talker).await {
            assert_eq!(e.code, "rate_limited");
            assert!(e.message.contains("chat"), "{}", e.message);
            told += 1;
        }
    }
    // A marker from someone else, sent after the talker's lines were judged:
    // when it arrives, every line that passed has arrived before it.
    let mut marker = joined(s.local_addr, "marker", "player").await;
    let chat = serde_json::json!({"chat": {"text": "marker"}});
    marker.send(Message::text(chat.to_string())).await.unwrap();
    let mut lines = Vec::new();
    loop {
        if let Ok(ServerMsg::Chat(c)) = next_msg(&mut listener).await {
            if c.from == "marker" {
                break;
            }
            lines.push(c.text);
        }
    }
    assert_eq!(lines, ["line 1", "line 2"]);
    assert_eq!(counters(&s).chat_dropped, 2);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_cap_answers_429_json_and_frees_places_as_connections_close() {
    let s = server(|c| {
        c.limits.max_connections_per_ip = 3;
        c.limits.per_ip_loopback = true;
    })
    .await;
    let mut held = Vec::new();
    for i in 0..3 {
        held.push(joined(s.local_addr, &format!("h{i}"), "spectator").await);
    }
    let (status, head, body) = http_raw(s.local_addr, &get_req("/healthz")).await;
    assert_eq!(status, 429, "{head}");
    assert_eq!(body["code"], "too_many_connections");
    assert!(body["error"].as_str().unwrap().contains('3'), "{body}");
    assert!(head.contains("retry-after:"), "{head}");
    // A WebSocket upgrade over the cap gets the same answer.
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/rooms/lobby/ws", s.local_addr))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("429"), "{refused}");
    assert_eq!(counters(&s).refused_per_ip, 2);

    drop(held.pop());
    tokio::time::timeout(WAIT, s.connections.until_open_at_most(2))
        .await
        .expect("the closed connection frees its place");
    let (status, _, _) = http_raw(s.local_addr, &get_req("/healthz")).await;
    assert_eq!(status, 200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_wide_cap_answers_503_json() {
    let s = server(|c| c.limits.max_connections = 2).await;
    let _a = joined(s.local_addr, "a", "spectator").await;
    let _b = joined(s.local_addr, "b", "spectator").await;
    let (status, _, body) = http_raw(s.local_addr, &get_req("/api/rooms")).await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], "server_full");
    assert_eq!(counters(&s).refused_server_full, 1);
    assert_eq!(s.connections.open(), 2);
    s.shutdown().await;
}

/// Resolves when the server closes `c` (EOF or reset), after reading what it sent.
async fn closed_by_server(c: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, c.read(&mut buf)).await {
            Err(_) => panic!("the server kept the connection open"),
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_and_idle_connections_are_closed_after_the_request_timeout() {
    let s = server(|c| c.limits.request_timeout = Duration::from_millis(300)).await;
    // Slowloris on SSE and on long-poll: a head that never ends.
    for path in ["/rooms/lobby/events", "/rooms/lobby/sessions/x/poll"] {
        let mut c = TcpStream::connect(s.local_addr).await.unwrap();
        c.write_all(format!("GET {path} HTTP/1.1\r\nhost: t\r\nx-slow: a").as_bytes())
            .await
            .unwrap();
        let answer = closed_by_server(&mut c).await;
        assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    }
    // A connection that never sends a byte.
    let mut silent = TcpStream::connect(s.local_addr).await.unwrap();
    closed_by_server(&mut silent).await;
    // A kept-alive connection that goes quiet after one request.
    let mut kept = TcpStream::connect(s.local_addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_by_server(&mut kept).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert_eq!(counters(&s).header_timeouts, 4);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_is_408_json() {
    let s = server(|c| c.limits.request_timeout = Duration::from_millis(300)).await;
    let mut c = TcpStream::connect(s.local_addr).await.unwrap();
    c.write_all(
        b"POST /rooms/lobby/sessions HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n\
          content-length: 100\r\n\r\n{\"hello\":",
    )
    .await
    .unwrap();
    let answer = closed_by_server(&mut c).await;
    let (status, _, body) = parse_answer(&answer);
    assert_eq!(status, 408);
    assert_eq!(body["code"], "request_timeout");
    assert_eq!(counters(&s).body_timeouts, 1);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_413_json_and_the_answer_arrives() {
    let s = server(|_| {}).await;
    for (path, size) in [
        ("/rooms/lobby/sessions", 2 << 20),
        ("/api/rooms", 20 * 1024),
    ] {
        let mut c = TcpStream::connect(s.local_addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: {size}\r\n\r\n"
        );
        c.write_all(head.as_bytes()).await.unwrap();
        let (mut rd, mut wr) = c.into_split();
        // The client keeps sending its body while the answer comes back.
        let writer = tokio::spawn(async move {
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < size {
                let n = chunk.len().min(size - sent);
                if wr.write_all(&chunk[..n]).await.is_err() {
                    break;
                }
                sent += n;
            }
            wr
        });
        let mut out = Vec::new();
        tokio::time::timeout(WAIT, rd.read_to_end(&mut out))
            .await
            .expect("an answer in time")
            .unwrap();
        let (status, _, body) = parse_answer(&out);
        assert_eq!(status, 413, "{path}");
        assert_eq!(body["code"], "too_large");
        assert!(body["error"].as_str().unwrap().contains("16384"), "{body}");
        drop(writer.await);
    }
    assert_eq!(counters(&s).bodies_too_large, 2);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_that_stop_reading_are_closed_after_the_write_stall_timeout() {
    let s = server(|c| {
        c.send_buffer = Some(4096);
        c.limits.write_stall_timeout = Duration::from_millis(500);
    })
    .await;
    let _player = joined(s.local_addr, "p", "player").await;
    // An SSE spectator and a WebSocket spectator that never read.
    let mut sse = small_window(s.local_addr).await;
    sse.write_all(b"GET /rooms/lobby/events HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let sock = small_window(s.local_addr).await;
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("ws://{}/rooms/lobby/ws", s.local_addr), sock)
            .await
            .unwrap();
    ws.send(hello_json("lazy", "spectator")).await.unwrap();
    // Only the player stays once both stalled out.
    tokio::time::timeout(WAIT, s.connections.until_open_at_most(1))
        .await
        .expect("the stalled readers are closed");
    assert_eq!(counters(&s).write_stalls, 2);
    // What the kernel still held arrives, then the end.
    let got = closed_by_server(&mut sse).await;
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_hello_and_idle_timeouts_close_with_1008() {
    let s = server(|c| {
        c.limits.ws_hello_timeout = Duration::from_millis(300);
        c.limits.ws_ping_interval = Duration::from_millis(100);
        c.limits.ws_idle_timeout = Duration::from_millis(400);
    })
    .await;
    let mut mute = RawWs::open(s.local_addr).await;
    let (code, reason) = mute.close_frame().await;
    assert_eq!(code, 1008);
    assert!(reason.contains("hello"), "{reason}");

    let mut idle = RawWs::open(s.local_addr).await;
    idle.send_text(r#"{"hello":{"version":2,"name":"idle","role":"spectator"}}"#)
        .await;
    let (code, reason) = idle.close_frame().await;
    assert_eq!(code, 1008);
    assert!(reason.contains("idle"), "{reason}");
    let c = counters(&s);
    assert_eq!((c.ws_hello_timeouts, c.ws_idle_timeouts), (1, 1));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_gets_a_close_code_and_the_server_keeps_serving() {
    use rand::{Rng, SeedableRng};
    let s = server(|_| {}).await;
    let mut watcher = joined(s.local_addr, "watcher", "player").await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut frames: Vec<Message> = (0..40)
        .map(|i| {
            let len = rng.random_range(0..600);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if i % 2 == 0 {
                Message::binary(bytes)
            } else {
                Message::text(String::from_utf8_lossy(&bytes).into_owned())
            }
        })
        .collect();
    // A bincode hello whose name claims to be 2^60 bytes long.
    frames.push(Message::binary(vec![0, 1, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0x10]));
    frames.push(Message::text(r#"{"hello": {"version": "one"}}"#));
    frames.push(Message::text(r#"{"input": {"seq": 1, "dir": "up"}}"#));
    for (i, frame) in frames.into_iter().enumerate() {
        let mut c = ws(s.local_addr).await;
        c.send(frame).await.unwrap();
        let ((code, _), _) = until_close(&mut c).await;
        assert!(
            [1002, 1003, 1007].contains(&code),
            "frame {i}: close {code}"
        );
        // And after a good hello.
        let mut p = joined(s.local_addr, "g", "spectator").await;
        let garbage: Vec<u8> = (0..i * 7 % 300).map(|k| (k * 31 + i) as u8).collect();
        p.send(Message::binary(garbage)).await.unwrap();
        let ((code, _), _) = until_close(&mut p).await;
        assert!(
            [1003, 1007].contains(&code),
            "garbage {i} after hello: close {code}"
        );
    }
    ticks_flow(&mut watcher, 10).await;
    let (status, _, _) = http_raw(s.local_addr, &get_req("/healthz")).await;
    assert_eq!(status, 200);
    s.shutdown().await;
}

/// Reads a whole streaming response in the background.
fn read_all(mut h: Http) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move { String::from_utf8_lossy(&h.body().await).into_owned() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_every_client_why_and_ends_despite_one_that_never_reads() {
    let s = server(|c| {
        c.send_buffer = Some(4096);
        c.limits.shutdown_grace = Duration::from_secs(1);
    })
    .await;
    let mut player = joined(s.local_addr, "p", "player").await;
    let sse = read_all(Http::get(s.local_addr, "/rooms/lobby/events", &[]).await);
    let watch = read_all(Http::get(s.local_addr, "/rooms/lobby/watch?color=never", &[]).await);
    // A spectator that never reads, stalled by the time we stop.
    let mut stuck = small_window(s.local_addr).await;
    stuck
        .write_all(b"GET /rooms/lobby/events HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    ticks_flow(&mut player, 120).await;

    let connections = s.connections.clone();
    tokio::time::timeout(WAIT, s.shutdown())
        .await
        .expect("shutdown ends within its grace");
    let ((code, reason), _) = until_close(&mut player).await;
    assert_eq!(code, 1001);
    assert!(reason.contains("shutting down"), "{reason}");
    let events = tokio::time::timeout(WAIT, sse).await.unwrap().unwrap();
    let last = events.trim_end().rsplit("\n\n").next().unwrap();
    assert!(
        last.starts_with("event: error") && last.contains("shutting_down"),
        "the stream ends with the shutdown event: {last:?}"
    );
    let view = tokio::time::timeout(WAIT, watch).await.unwrap().unwrap();
    assert!(
        view.trim_end()
            .ends_with("room closed: the server is shutting down")
    );
    tokio::time::timeout(WAIT, connections.until_open_at_most(0))
        .await
        .expect("every connection is gone, the stalled one too");
    drop(stuck);
}

/// `(status, json)` of a request on its own connection.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, _, json) = http_raw(addr, &req).await;
    (status, json)
}

/// Opens a long-poll session in `room`; its welcome (`201`).
async fn polled_session(addr: SocketAddr, room: &str, name: &str) -> serde_json::Value {
    let hello = serde_json::json!({"hello": {"version": PROTOCOL_VERSION, "name": name}});
    let path = format!("/rooms/{room}/sessions");
    let (st, w) = call(addr, "POST", &path, "", &hello.to_string()).await;
    assert_eq!(st, 201, "{w}");
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_held_at_shutdown_answers_503_shutting_down() {
    let s = server(|_| {}).await;
    // A room that ticks once a second, so a poll holds between its ticks.
    let (st, _) = call(
        s.local_addr,
        "POST",
        "/api/rooms",
        "",
        r#"{"id":"slow","tick_rate":1}"#,
    )
    .await;
    assert_eq!(st, 201);
    let w = polled_session(s.local_addr, "slow", "poller").await;
    let (session, token) = (
        w["welcome"]["session"].as_str().unwrap().to_string(),
        w["welcome"]["token"].as_str().unwrap().to_string(),
    );
    let poll = |after: u64| {
        let (session, token) = (session.clone(), token.clone());
        let addr = s.local_addr;
        async move {
            let path = format!("/rooms/slow/sessions/{session}/poll?after={after}&wait=50");
            call(addr, "GET", &path, &token, "").await
        }
    };
    // Twice, so the second answer comes right at a tick: the next one is
    // a whole second away when the third poll goes out and holds.
    let (_, b) = poll(0).await;
    let (_, b) = poll(b["next"].as_u64().unwrap()).await;
    let held = tokio::spawn(poll(b["next"].as_u64().unwrap()));
    // Once the server holds it.
    tokio::time::timeout(WAIT, async {
        while s.sessions.polls_in_flight() < 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the poll is held");
    s.shutdown().await;
    let (status, body) = held.await.unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("shutting_down")),
        "{body}"
    );
}

/// The value of the exposition line that starts with `series ` (a metric
/// name with its labels), or a panic that shows the whole text.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {series:?} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_limits_connections_sessions_and_ticks() {
    let s = server(|_| {}).await;
    let mut player = joined(s.local_addr, "watched", "player").await;
    ticks_flow(&mut player, 5).await;
    // One limit that bites: a frame over the size limit.
    let mut big = ws(s.local_addr).await;
    let _ = big.send(Message::binary(vec![0u8; 64 << 10])).await;
    assert_eq!(until_close(&mut big).await.0.0, 1009);
    // One polled session.
    polled_session(s.local_addr, "lobby", "poller").await;

    let (status, head, text) = common::get(s.local_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    let m = |series: &str| metric(&text, series);
    assert_eq!(m("tickwire_rejected_total{reason=\"ws_oversize\"}"), 1.0);
    assert_eq!(m("tickwire_rejected_total{reason=\"body_too_large\"}"), 0.0);
    assert_eq!(m("tickwire_rate_limited_total{limit=\"input\"}"), 0.0);
    assert_eq!(m("tickwire_input_floods_total"), 0.0);
    assert_eq!(m("tickwire_tcp_refused_total{reason=\"server_full\"}"), 0.0);
    assert_eq!(m("tickwire_timeouts_total{kind=\"ws_idle\"}"), 0.0);
    assert_eq!(m("tickwire_polled_sessions"), 1.0);
    assert_eq!(m("tickwire_polls_in_flight"), 0.0);
    // The player's WebSocket and this request, at least.
    assert!(m("tickwire_tcp_connections") >= 2.0);
    assert_eq!(
        m("tickwire_tcp_connections_max"),
        s.connections.max() as f64
    );
    // Player, oversize socket, session POST, this GET.
    assert!(m("tickwire_tcp_accepted_total") >= 4.0);
    assert_eq!(
        m("tickwire_connections{transport=\"ws\",room=\"lobby\"}"),
        1.0
    );
    assert_eq!(
        m("tickwire_connections{transport=\"polled\",room=\"lobby\"}"),
        1.0
    );
    assert_eq!(m("tickwire_sessions{room=\"lobby\"}"), 2.0);
    assert!(m("tickwire_tick_duration_seconds_count{room=\"lobby\"}") >= 5.0);
    assert!(m("tickwire_frames_sent_total{transport=\"ws\"}") >= 5.0);
    assert!(m("tickwire_send_latency_seconds_count{transport=\"ws\"}") >= 5.0);
    drop(player);
    s.shutdown().await;
}
