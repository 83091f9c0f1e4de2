//! Hostile names and chat, sent over WebSocket and long-poll, checked on
//! every way out: WebSocket frames (JSON and bincode), long-poll batches,
//! the SSE stream, the watch view (plain and colored) and the server's own
//! log lines. Nothing a player typed reaches anyone raw.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use common::{Http, Sse, WAIT, server};
use futures_util::{SinkExt, StreamExt};
use protocol::codec::{decode, encode};
use protocol::sse::{SseMsg, decode_event};
use protocol::text::{is_unsafe, sanitize_chat, sanitize_name};
use protocol::{ClientMsg, Format, Hello, PROTOCOL_VERSION, Role, ServerMsg, WorldState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// A name with every trick: SGR and screen-clearing CSI, an OSC title and
/// an OSC 52 clipboard write, a C1 CSI, a bidi override and isolate, zero
/// widths, a Hangul filler, a NUL, a DEL and a line break.
const NAME: &str = "\x1b[31m\x1b]0;pwn\x07\u{202E}Ev\u{200B}il\u{2066}\u{9b}2J\u{3164}\x00\x7f\n!";
const NAME2: &str = "\x1b]52;c;cHduZWQ=\x07M\u{0336}\u{0336}\u{0336}\u{0336}al\u{FEFF}lory\u{200D}";
const CHAT: &str = "hi\x1b[2J\x1b[H \x1b]8;;http://evil\x07link\x1b]8;;\x07 \u{202E}txt.exe\u{2069}\r\nend\u{E0041}";

/// Every string a player could have put into a message.
fn player_text(msg: &ServerMsg) -> Vec<String> {
    let world = |w: &WorldState| w.snakes.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    match msg {
        ServerMsg::Welcome(w) => vec![w.name.clone()],
        ServerMsg::Snapshot(s) => world(&s.state),
        ServerMsg::Tick(t) => {
            let mut v: Vec<String> = t.delta.snakes.iter().map(|s| s.name.clone()).collect();
            for e in &t.events {
                if let protocol::GameEvent::Joined { name, .. } = e {
                    v.push(name.clone());
                }
            }
            v
        }
        ServerMsg::Chat(c) => vec![c.from.clone(), c.text.clone()],
        ServerMsg::Error(e) => vec![e.message.clone()],
        _ => Vec::new(),
    }
}

fn assert_safe(what: &str, s: &str) {
    assert!(
        !s.chars().any(|c| is_unsafe(c) || c.is_control()),
        "{what} carries an unsafe character: {s:?}"
    );
}

/// What an observer saw: every player string, and whether it saw both
/// hostile names and both chat lines.
#[derive(Default)]
struct Seen {
    strings: Vec<String>,
}

impl Seen {
    fn take(&mut self, msg: &ServerMsg) {
        self.strings.extend(player_text(msg));
    }
    fn complete(&self) -> bool {
        let has = |s: &str| self.strings.iter().any(|x| x == s);
        has(&sanitize_name(NAME))
            && has(&sanitize_name(NAME2))
            && self
                .strings
                .iter()
                .filter(|x| **x == sanitize_chat(CHAT))
                .count()
                >= 2
    }
    fn check(&self, what: &str) {
        for s in &self.strings {
            assert_safe(what, s);
        }
    }
}

/// Captures every log line of this test binary (all targets, trace level),
/// formatted the way the `game-server` binary formats them.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = buf.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .fmt_fields(game_server::logging::safe_fields())
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .init();
        buf
    })
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn ws_session(addr: SocketAddr, format: Format, name: &str, role: Role) -> WsStream {
    let url = format!("ws://{addr}/rooms/lobby/ws");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        name: name.into(),
        role,
        token: None,
    });
    ws.send(frame(format, &hello)).await.unwrap();
    ws
}

fn frame(format: Format, msg: &ClientMsg) -> Message {
    let b = encode(format, msg);
    match format {
        Format::Json => Message::text(String::from_utf8(b.to_vec()).unwrap()),
        Format::Bincode => Message::binary(b),
    }
}

fn chat(text: &str) -> ClientMsg {
    ClientMsg::Chat(protocol::ChatText { text: text.into() })
}

/// Follows a JSON WebSocket observer until it saw everything.
async fn ws_observe(mut ws: WsStream) -> Seen {
    let mut seen = Seen::default();
    tokio::time::timeout(WAIT, async {
        while !seen.complete() {
            if let Message::Text(t) = ws.next().await.expect("open").unwrap() {
                seen.take(&decode::<ServerMsg>(Format::Json, t.as_bytes()).unwrap());
            }
        }
    })
    .await
    .expect("the observer saw both names and both chat lines");
    seen
}

async fn http(addr: SocketAddr, req: String) -> serde_json::Value {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, c.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(out).expect("UTF-8 answer");
    assert_safe("an HTTP answer", &text.replace("\r\n", " "));
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    serde_json::from_str(body).unwrap()
}

fn post(path: &str, token: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_and_chat_reach_every_output_sanitised() {
    let logs = logs();
    let s = server(|_| {}).await;
    let addr = s.local_addr;

    // Observers on every transport, before the hostile players arrive.
    let json_eye = ws_session(addr, Format::Json, "json-eye", Role::Spectator).await;
    let bin_eye = ws_session(addr, Format::Bincode, "bin-eye", Role::Player).await;
    let mut sse = Sse::open(addr, "lobby", None).await;
    let mut plain = Http::get(addr, "/rooms/lobby/watch?color=never", &[]).await;
    let mut colored = Http::get(addr, "/rooms/lobby/watch", &[]).await;
    let hello = serde_json::json!({"hello": {"version": 2, "name": "poll-eye"}}).to_string();
    let w = http(addr, post("/rooms/lobby/sessions", "", &hello)).await;
    let (poll_session, poll_token) = (
        w["welcome"]["session"].as_str().unwrap().to_string(),
        w["welcome"]["token"].as_str().unwrap().to_string(),
    );

    // The hostile players: one over WebSocket, one over long-poll.
    let mut evil = ws_session(addr, Format::Json, NAME, Role::Player).await;
    evil.send(frame(Format::Json, &chat(CHAT))).await.unwrap();
    let hello = serde_json::to_string(&ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        name: NAME2.into(),
        role: Role::Player,
        token: None,
    }))
    .unwrap();
    let w = http(addr, post("/rooms/lobby/sessions", "", &hello)).await;
    assert_eq!(w["welcome"]["name"], sanitize_name(NAME2));
    let (sess, token) = (
        w["welcome"]["session"].as_str().unwrap(),
        w["welcome"]["token"].as_str().unwrap(),
    );
    let batch = serde_json::json!({"messages": [{"seq": 1, "msg": {"chat": {"text": CHAT}}}]});
    let ack = http(
        addr,
        post(
            &format!("/rooms/lobby/sessions/{sess}/send"),
            token,
            &batch.to_string(),
        ),
    )
    .await;
    assert_eq!(ack["applied"], 1);

    // WebSocket, JSON and bincode.
    let json_seen = ws_observe(json_eye);
    let bin_seen = async {
        let mut ws = bin_eye;
        let mut seen = Seen::default();
        tokio::time::timeout(WAIT, async {
            while !seen.complete() {
                if let Message::Binary(b) = ws.next().await.expect("open").unwrap() {
                    seen.take(&decode::<ServerMsg>(Format::Bincode, &b).unwrap());
                }
            }
        })
        .await
        .expect("the bincode observer saw everything");
        seen
    };
    let (json_seen, bin_seen) = tokio::join!(json_seen, bin_seen);
    json_seen.check("a JSON WebSocket frame");
    bin_seen.check("a bincode WebSocket frame");

    // Long-poll.
    let mut seen = Seen::default();
    let mut after = 0;
    tokio::time::timeout(WAIT, async {
        while !seen.complete() {
            let req = format!(
                "GET /rooms/lobby/sessions/{poll_session}/poll?after={after}&wait=5 HTTP/1.1\r\n\
                 host: t\r\nconnection: close\r\nauthorization: Bearer {poll_token}\r\n\r\n"
            );
            let b = http(addr, req).await;
            for m in b["messages"].as_array().unwrap() {
                let msg: ServerMsg = serde_json::from_value(m["msg"].clone()).unwrap();
                seen.take(&msg);
            }
            after = b["next"].as_u64().unwrap();
        }
    })
    .await
    .expect("the long-poll observer saw everything");
    seen.check("a long-poll batch");

    // SSE: the decoded events and the raw text.
    let mut seen = Seen::default();
    let mut raw_before = 0;
    tokio::time::timeout(WAIT, async {
        while !seen.complete() {
            let ev = sse.event().await;
            match decode_event(&ev).unwrap() {
                SseMsg::Welcome(w) => {
                    seen.take(&ServerMsg::Snapshot(Box::new(w.snapshot)));
                }
                SseMsg::Server(m) => seen.take(&m),
                SseMsg::Unknown => {}
            }
            raw_before = sse.bytes;
        }
    })
    .await
    .expect("the SSE spectator saw everything");
    assert!(raw_before > 0);
    seen.check("an SSE event");

    // Watch, plain: not a single escape byte; colored: only our own SGR and
    // cursor sequences.
    let mut text = String::new();
    let clean = sanitize_name(NAME);
    let needle: String = clean.chars().skip(4).take(6).collect();
    tokio::time::timeout(WAIT, async {
        while !text.contains(&needle) {
            text.push_str(&String::from_utf8(plain.chunk().await.unwrap()).unwrap());
        }
    })
    .await
    .expect("the plain view names the player");
    assert!(!text.contains('\x1b'), "no escape byte in the plain view");
    assert_safe("the plain watch view", &text.replace('\n', " "));
    let mut bytes = Vec::new();
    tokio::time::timeout(WAIT, async {
        while !String::from_utf8_lossy(&bytes).contains(&needle) {
            bytes.extend(colored.chunk().await.unwrap());
        }
    })
    .await
    .expect("the colored view names the player");
    let view = String::from_utf8(bytes).unwrap();
    for (i, _) in view.match_indices('\x1b') {
        let seq: String = view[i + 1..]
            .chars()
            .take_while(|c| !c.is_ascii_alphabetic())
            .collect();
        let fin = view[i + 1 + seq.len()..].chars().next();
        assert!(
            seq.starts_with('[')
                && seq[1..].chars().all(|c| c.is_ascii_digit() || c == ';')
                && matches!(fin, Some('m' | 'H' | 'J' | 'K')),
            "an escape the server did not write: {:?}",
            &view[i..(i + 12).min(view.len())]
        );
    }
    assert_safe("the colored watch view", &view.replace(['\n', '\x1b'], " "));

    drop(evil);
    s.shutdown().await;

    // The logs: the sanitised names are there, nothing raw is.
    let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains(&clean),
        "the session log line names the player"
    );
    assert_safe("a log line", &logged.replace('\n', " "));
}
