//! Long-poll and short-poll sessions over real sockets on 127.0.0.1:0:
//! the endpoints of CONTRACT.md, their delivery guarantees and their errors.

use std::time::Duration;

use game_server::{RunningServer, ServerConfig, start};
use protocol::codec::{decode, encode};
use protocol::poll::{PollBatch, SendAck};
use protocol::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(30);

async fn server() -> RunningServer {
    start(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tick_rate: 60,
        map: "small".into(),
        seed: Some(7),
        ..ServerConfig::default()
    })
    .await
    .unwrap()
}

struct Resp {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One HTTP/1.1 request on a fresh connection; `headers` are extra lines.
async fn http(
    s: &RunningServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut c = TcpStream::connect(s.local_addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    c.write_all(req.as_bytes()).await.unwrap();
    c.write_all(body).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, c.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    Resp {
        status,
        head,
        body: out[split + 4..].to_vec(),
    }
}

/// A JSON session: id, token, player id.
struct Sess {
    id: String,
    token: String,
    player: Option<u64>,
    welcome: Value,
}

impl Sess {
    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }
    fn url(&self, tail: &str) -> String {
        format!("/rooms/lobby/sessions/{}{tail}", self.id)
    }
}

async fn join(s: &RunningServer, hello: Value) -> Sess {
    let r = http(
        s,
        "POST",
        "/rooms/lobby/sessions",
        &[("content-type", "application/json")],
        hello.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.head.contains("content-type: application/json"));
    let w = r.json()["welcome"].clone();
    Sess {
        id: w["session"].as_str().unwrap().to_string(),
        token: w["token"].as_str().unwrap().to_string(),
        player: w["player_id"].as_u64(),
        welcome: w,
    }
}

async fn poll(s: &RunningServer, sess: &Sess, after: u64, wait: &str) -> Resp {
    let url = sess.url(&format!("/poll?after={after}&wait={wait}"));
    http(s, "GET", &url, &[("authorization", &sess.bearer())], b"").await
}

async fn send(s: &RunningServer, sess: &Sess, body: Value) -> Resp {
    http(
        s,
        "POST",
        &sess.url("/send"),
        &[
            ("authorization", &sess.bearer()),
            ("content-type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
    .await
}

fn hello(name: &str) -> Value {
    json!({"hello": {"version": PROTOCOL_VERSION, "name": name}})
}

/// Polls (following `after`) until `pred` holds for a message; returns every
/// message seen, checking seqs are contiguous from `after + 1`.
async fn poll_until(
    s: &RunningServer,
    sess: &Sess,
    after: &mut u64,
    mut pred: impl FnMut(&Value) -> bool,
) -> Vec<Value> {
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            let r = poll(s, sess, *after, "1").await;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            let v = r.json();
            for m in v["messages"].as_array().unwrap() {
                let seq = m["seq"].as_u64().unwrap();
                assert_eq!(seq, *after + 1, "seqs are contiguous");
                *after = seq;
                seen.push(m["msg"].clone());
                if pred(&m["msg"]) {
                    return;
                }
            }
            assert_eq!(v["next"].as_u64().unwrap(), *after);
        }
    })
    .await
    .expect("the awaited message came");
    seen
}

#[tokio::test]
async fn a_json_session_joins_polls_in_order_and_applies_inputs_once() {
    let s = server().await;
    let a = join(&s, hello("alice")).await;
    assert_eq!(a.token.len(), 32, "128-bit token as hex");
    assert!(a.player.is_some());
    assert_eq!(a.welcome["room"], "lobby");

    let mut after = 0;
    let first = poll_until(&s, &a, &mut after, |_| true).await;
    assert!(first[0].get("snapshot").is_some(), "a keyframe first");

    // A lost response: polling again with the same `after` re-sends the same
    // messages with the same seqs.
    let again = poll(&s, &a, 0, "0").await.json();
    assert_eq!(again["messages"][0]["seq"], 1);
    assert!(again["messages"][0]["msg"].get("snapshot").is_some());

    // Client messages: seq 2 before seq 1 still applies in order; re-sends are ignored.
    let chat = |seq: u64, text: &str| json!({"seq": seq, "msg": {"chat": {"text": text}}});
    let r = send(&s, &a, json!({"messages": [chat(2, "second")]})).await;
    assert_eq!((r.status, r.json()["applied"].as_u64()), (200, Some(0)));
    let input = json!({"seq": 1, "msg": {"input": {"seq": 1, "dir": "left"}}});
    let r = send(
        &s,
        &a,
        json!({"messages": [input.clone(), chat(2, "second")]}),
    )
    .await;
    assert_eq!(r.json()["applied"], 2);
    let r = send(
        &s,
        &a,
        json!({"messages": [input, chat(2, "second"), chat(3, "third")]}),
    )
    .await;
    assert_eq!(r.json()["applied"], 3);

    let seen = poll_until(&s, &a, &mut after, |m| m["chat"]["text"] == "third").await;
    let chats: Vec<_> = seen
        .iter()
        .filter_map(|m| m["chat"]["text"].as_str())
        .collect();
    assert_eq!(
        chats,
        vec!["second", "third"],
        "each applied once, in order"
    );
    poll_until(&s, &a, &mut after, |m| m["tick"]["ack"] == 1).await;

    // Pings are answered through the same numbered stream.
    send(
        &s,
        &a,
        json!({"messages": [{"seq": 4, "msg": {"ping": {"t": 99}}}]}),
    )
    .await;
    poll_until(&s, &a, &mut after, |m| m["pong"]["t"] == 99).await;

    let r = http(
        &s,
        "DELETE",
        &a.url(""),
        &[("authorization", &a.bearer())],
        b"",
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(poll(&s, &a, after, "0").await.status, 404);
    s.shutdown().await;
}

#[tokio::test]
async fn bad_calls_get_json_errors_with_fitting_statuses() {
    let s = server().await;
    let a = join(&s, hello("alice")).await;
    let check = |r: Resp, status: u16, code: &str| {
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["code"], code);
    };
    let url = a.url("/poll?wait=0");
    check(http(&s, "GET", &url, &[], b"").await, 401, "unauthorized");
    let wrong = format!("Bearer {}", "0".repeat(32));
    check(
        http(&s, "GET", &url, &[("authorization", &wrong)], b"").await,
        401,
        "unauthorized",
    );
    let other = Sess {
        id: "0123456789abcdef".into(),
        token: a.token.clone(),
        player: None,
        welcome: Value::Null,
    };
    check(poll(&s, &other, 0, "0").await, 404, "unknown_session");
    check(poll(&s, &a, 0, "99").await, 400, "bad_request");
    check(poll(&s, &a, 1_000_000, "0").await, 400, "bad_request");
    check(send(&s, &a, json!({"nope": 1})).await, 400, "bad_message");
    check(
        send(
            &s,
            &a,
            json!({"messages": [{"seq": 0, "msg": {"leave": {}}}]}),
        )
        .await,
        400,
        "bad_seq",
    );
    let big = vec![b' '; 64 * 1024];
    check(
        http(
            &s,
            "POST",
            &a.url("/send"),
            &[("authorization", &a.bearer())],
            &big,
        )
        .await,
        413,
        "too_large",
    );
    let r = http(
        &s,
        "POST",
        "/rooms/nowhere/sessions",
        &[],
        hello("x").to_string().as_bytes(),
    )
    .await;
    check(r, 404, "unknown_room");
    let old = json!({"hello": {"version": 0, "name": "x"}});
    let r = http(
        &s,
        "POST",
        "/rooms/lobby/sessions",
        &[],
        old.to_string().as_bytes(),
    )
    .await;
    check(r, 400, "version_mismatch");
    let stale =
        json!({"hello": {"version": PROTOCOL_VERSION, "name": "x", "token": "f".repeat(32)}});
    let r = http(
        &s,
        "POST",
        "/rooms/lobby/sessions",
        &[],
        stale.to_string().as_bytes(),
    )
    .await;
    check(r, 404, "unknown_session");
    // None of it hurt the session.
    assert_eq!(poll(&s, &a, 0, "1").await.status, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn a_newer_poll_makes_the_older_one_return_at_once() {
    let s = server().await;
    // One tick a second: a held poll waits long enough to be superseded.
    let r = http(
        &s,
        "POST",
        "/api/rooms",
        &[],
        br#"{"id":"slow","tick_rate":1}"#,
    )
    .await;
    assert_eq!(r.status, 201);
    let r = http(
        &s,
        "POST",
        "/rooms/slow/sessions",
        &[],
        hello("alice").to_string().as_bytes(),
    )
    .await;
    let w = r.json()["welcome"].clone();
    let a = Sess {
        id: w["session"].as_str().unwrap().into(),
        token: w["token"].as_str().unwrap().into(),
        player: None,
        welcome: w,
    };
    let url = |after: u64| format!("/rooms/slow/sessions/{}/poll?after={after}&wait=30", a.id);
    let auth = a.bearer();
    // Start right after a tick, so the next one is a second away.
    let mut after = 0;
    for _ in 0..2 {
        let v = http(&s, "GET", &url(after), &[("authorization", &auth)], b"")
            .await
            .json();
        after = v["next"].as_u64().unwrap();
    }
    let (held, headers) = (url(after), [("authorization", auth.as_str())]);
    let older = http(&s, "GET", &held, &headers, b"");
    let newer = http(&s, "GET", &held, &headers, b"");
    let (older, newer) = tokio::join!(older, newer);
    let counts = [older.json(), newer.json()].map(|v| v["messages"].as_array().unwrap().len());
    // The superseded poll answered at once with nothing new; the other one
    // got the next tick. Without supersede both would end up with frames.
    assert!(
        counts.contains(&0) && counts.iter().any(|&n| n > 0),
        "{counts:?}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_bincode_session_decodes_as_poll_batches() {
    let s = server().await;
    let hello = encode(
        Format::Bincode,
        &ClientMsg::Hello(Hello {
            version: PROTOCOL_VERSION,
            name: "bin".into(),
            role: Role::Player,
            token: None,
        }),
    );
    let r = http(
        &s,
        "POST",
        "/rooms/lobby/sessions",
        &[("content-type", "application/octet-stream")],
        &hello,
    )
    .await;
    assert_eq!(r.status, 201);
    assert!(r.head.contains("content-type: application/octet-stream"));
    let Ok(ServerMsg::Welcome(w)) = decode::<ServerMsg>(Format::Bincode, &r.body) else {
        panic!("not a welcome");
    };
    let auth = format!("Bearer {}", w.token);
    let url = format!("/rooms/lobby/sessions/{}/poll?after=0&wait=5", w.session);
    let r = http(&s, "GET", &url, &[("authorization", &auth)], b"").await;
    let batch: PollBatch = decode(Format::Bincode, &r.body).unwrap();
    assert_eq!(batch.messages[0].seq, 1);
    assert!(matches!(batch.messages[0].msg, ServerMsg::Snapshot(_)));
    assert_eq!(batch.next, batch.messages.last().unwrap().seq);

    let send = protocol::poll::SendBatch {
        messages: vec![protocol::poll::Sequenced {
            seq: 1,
            msg: ClientMsg::Ping(Ping { t: 5 }),
        }],
    };
    let r = http(
        &s,
        "POST",
        &format!("/rooms/lobby/sessions/{}/send", w.session),
        &[
            ("authorization", &auth),
            ("content-type", "application/octet-stream"),
        ],
        &encode(Format::Bincode, &send),
    )
    .await;
    let ack: SendAck = decode(Format::Bincode, &r.body).unwrap();
    assert_eq!(ack.applied, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn a_hello_with_the_token_resumes_the_snake_and_ends_the_old_session() {
    let s = server().await;
    let a = join(&s, hello("alice")).await;
    let mut after = 0;
    poll_until(&s, &a, &mut after, |_| true).await;
    let resume = json!({"hello": {"version": PROTOCOL_VERSION, "name": "alice", "token": a.token}});
    let b = join(&s, resume).await;
    assert_eq!(b.welcome["resumed"], true);
    assert_eq!(b.player, a.player, "the same snake");
    // The new session starts a fresh numbered stream with a keyframe.
    let mut after_b = 0;
    let first = poll_until(&s, &b, &mut after_b, |_| true).await;
    assert!(first[0].get("snapshot").is_some());
    s.shutdown().await;
}

/// True when `m` shows snake `id` with `connected == want`.
fn shows_connected(m: &Value, id: u64, want: bool) -> bool {
    // Protocol 2: `connected` is in a move only when it changed, and in a
    // whole snake always.
    let delta = &m["tick"]["delta"];
    ["moved", "snakes"].iter().any(|list| {
        delta[*list]
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s["id"] == id && s["connected"] == want))
    })
}

#[tokio::test]
async fn an_unpolled_session_expires_and_its_token_resumes_the_snake() {
    let s = start(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tick_rate: 60,
        map: "small".into(),
        seed: Some(7),
        poll_idle_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let a = join(&s, hello("sleepy")).await;
    let id = a.player.unwrap();
    let watcher = json!({"hello": {"version": PROTOCOL_VERSION, "name": "w", "role": "spectator"}});
    let w = join(&s, watcher).await;
    assert_eq!(w.player, None);
    // Nobody polls for `a`: the watcher sees its snake go disconnected.
    let mut after = 0;
    poll_until(&s, &w, &mut after, |m| shows_connected(m, id, false)).await;
    let r = poll(&s, &a, 0, "0").await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (404, Some("unknown_session"))
    );
    // Within the grace, a hello with the token resumes the same snake.
    let resume =
        json!({"hello": {"version": PROTOCOL_VERSION, "name": "sleepy", "token": a.token}});
    let b = join(&s, resume).await;
    assert_eq!(b.welcome["resumed"], true);
    assert_eq!(b.player, Some(id));
    let mut after_b = 0;
    poll_until(&s, &b, &mut after_b, |_| true).await;
    poll_until(&s, &w, &mut after, |m| shows_connected(m, id, true)).await;
    s.shutdown().await;
}

#[tokio::test]
async fn a_polled_sessions_own_replies_overflowing_its_outbox_bring_a_keyframe() {
    let s = server().await;
    // A room so slow that its own ticks never fill the outbox (64 frames).
    s.rooms
        .create(
            protocol::api::CreateRoom {
                id: Some("calm".into()),
                tick_rate: Some(1),
                ..Default::default()
            },
            Some(1),
        )
        .unwrap();
    let r = http(
        &s,
        "POST",
        "/rooms/calm/sessions",
        &[],
        json!({"hello": {"version": PROTOCOL_VERSION, "name": "pinger"}})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201);
    let w = r.json()["welcome"].clone();
    let base = format!("/rooms/calm/sessions/{}", w["session"].as_str().unwrap());
    let bearer = format!("Bearer {}", w["token"].as_str().unwrap());
    let auth = [("authorization", bearer.as_str())];
    let mut after = 0;
    // The join's keyframe first.
    while !poll_msgs(&s, &base, &auth, &mut after)
        .await
        .iter()
        .any(|m| m.get("snapshot").is_some())
    {}
    // 70 pings in one batch: their pongs overflow the outbox.
    let pings: Vec<Value> = (1..=70)
        .map(|i| json!({"seq": i, "msg": {"ping": {"t": i}}}))
        .collect();
    let body = json!({ "messages": pings }).to_string();
    let r = http(&s, "POST", &format!("{base}/send"), &auth, body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // A keyframe comes within a few ticks (without the fix: deltas forever).
    let (mut ticks, mut pongs) = (0, 0);
    'polling: loop {
        for m in poll_msgs(&s, &base, &auth, &mut after).await {
            if m.get("snapshot").is_some() {
                break 'polling;
            }
            pongs += usize::from(m.get("pong").is_some());
            ticks += usize::from(m.get("tick").is_some());
            assert!(ticks < 3, "no keyframe after the overflow");
        }
    }
    assert!(
        pongs < 70,
        "the overflow dropped the backlog: {pongs} pongs"
    );
    assert!(s.rooms.get("calm").unwrap().room_metrics.resyncs.get() >= 1);
    s.shutdown().await;
}

/// One held poll of the JSON session at `base`; moves `after` on.
async fn poll_msgs(
    s: &RunningServer,
    base: &str,
    auth: &[(&str, &str)],
    after: &mut u64,
) -> Vec<Value> {
    let r = http(
        s,
        "GET",
        &format!("{base}/poll?after={after}&wait=5"),
        auth,
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    *after = v["next"].as_u64().unwrap();
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["msg"].clone())
        .collect()
}
