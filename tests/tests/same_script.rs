//! One script of client messages, played over WebSocket, long-poll and
//! short poll against a fresh server each: what comes back is the same on
//! every transport (normalised for what differs by nature: server times,
//! and how a transport says "ended"). Every rule the client meets after
//! its bytes are framed (pong, a second hello, the chat limit, leave) is
//! the server's one connection layer, so it cannot differ.

use futures_util::{SinkExt, StreamExt};
use protocol::codec::{decode, encode};
use protocol::poll::{PollBatch, SendBatch, Sequenced};
use protocol::{
    ChatText, ClientMsg, Dir, Format, Hello, Input, PROTOCOL_VERSION, Ping, Role, ServerMsg,
};
use tickwire_tests::{TestServer, WAIT};
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Ws,
    LongPoll,
    ShortPoll,
}

/// A raw client of one transport, in JSON: it sends client messages and
/// returns server messages in the order they arrive; `None` once the
/// server ended the session.
enum Link {
    Ws(
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    ),
    Polled(Polled),
}

struct Polled {
    http: reqwest::Client,
    base: String,
    token: String,
    wait: &'static str,
    after: u64,
    seq: u64,
    got: std::collections::VecDeque<ServerMsg>,
}

fn hello() -> ClientMsg {
    ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        name: "alice".into(),
        role: Role::Player,
        token: None,
    })
}

impl Link {
    async fn open(kind: Kind, server: &TestServer) -> (Link, ServerMsg) {
        match kind {
            Kind::Ws => {
                let url = format!("ws://{}/rooms/lobby/ws", server.addr);
                let (mut ws, _) = tokio_tungstenite::connect_async(url)
                    .await
                    .expect("upgrade");
                let text = String::from_utf8(encode(Format::Json, &hello()).to_vec()).unwrap();
                ws.send(Message::text(text)).await.unwrap();
                let mut link = Link::Ws(ws);
                let welcome = link.next().await.expect("a welcome");
                (link, welcome)
            }
            Kind::LongPoll | Kind::ShortPoll => {
                let http = reqwest::Client::new();
                let r = http
                    .post(format!("{}/rooms/lobby/sessions", server.url))
                    .body(encode(Format::Json, &hello()))
                    .send()
                    .await
                    .expect("session created");
                assert_eq!(r.status().as_u16(), 201);
                let welcome: ServerMsg = decode(Format::Json, &r.bytes().await.unwrap()).unwrap();
                let ServerMsg::Welcome(w) = &welcome else {
                    panic!("{welcome:?}")
                };
                let link = Polled {
                    http,
                    base: format!("{}/rooms/lobby/sessions/{}", server.url, w.session),
                    token: w.token.clone(),
                    wait: if matches!(kind, Kind::LongPoll) {
                        "5"
                    } else {
                        "0"
                    },
                    after: 0,
                    seq: 0,
                    got: Default::default(),
                };
                (Link::Polled(link), welcome)
            }
        }
    }

    async fn send(&mut self, msg: ClientMsg) {
        match self {
            Link::Ws(ws) => {
                let text = String::from_utf8(encode(Format::Json, &msg).to_vec()).unwrap();
                ws.send(Message::text(text)).await.expect("sent");
            }
            Link::Polled(p) => {
                p.seq += 1;
                let batch = SendBatch {
                    messages: vec![Sequenced { seq: p.seq, msg }],
                };
                let r = p
                    .http
                    .post(format!("{}/send", p.base))
                    .bearer_auth(&p.token)
                    .body(encode(Format::Json, &batch))
                    .send()
                    .await
                    .expect("sent");
                assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
            }
        }
    }

    /// The next server message; `None`: the server ended the session.
    async fn next(&mut self) -> Option<ServerMsg> {
        match self {
            Link::Ws(ws) => loop {
                match ws.next().await? {
                    Ok(Message::Text(t)) => {
                        return Some(decode(Format::Json, t.as_bytes()).unwrap());
                    }
                    Ok(Message::Close(_)) | Err(_) => return None,
                    Ok(_) => {}
                }
            },
            Link::Polled(p) => loop {
                if let Some(m) = p.got.pop_front() {
                    return Some(m);
                }
                if p.wait == "0" {
                    // A short-poll client's own cadence, not a wait for an event.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                let r = p
                    .http
                    .get(format!("{}/poll?after={}&wait={}", p.base, p.after, p.wait))
                    .bearer_auth(&p.token)
                    .send()
                    .await
                    .expect("polled");
                if r.status().as_u16() == 404 {
                    return None;
                }
                assert_eq!(r.status().as_u16(), 200);
                let batch: PollBatch = decode(Format::Json, &r.bytes().await.unwrap()).unwrap();
                p.after = batch.next;
                p.got.extend(batch.messages.into_iter().map(|m| m.msg));
            },
        }
    }
}

/// What came back, normalised: direct answers (pongs and errors) in
/// order, the room's chat lines in order, and how the session ended.
#[derive(Debug, Default, PartialEq)]
struct Transcript {
    answers: Vec<String>,
    chat: Vec<String>,
    ended: bool,
}

impl Transcript {
    fn note(&mut self, msg: &ServerMsg) {
        match msg {
            ServerMsg::Pong(p) => self.answers.push(format!("pong {}", p.t)),
            ServerMsg::Error(e) => self
                .answers
                .push(format!("error {}: {}", e.code, e.message)),
            ServerMsg::Chat(c) => self.chat.push(format!("{}: {}", c.from, c.text)),
            ServerMsg::Welcome(_) => self.answers.push("welcome".into()),
            ServerMsg::Snapshot(_) | ServerMsg::Tick(_) => {}
        }
    }

    /// Reads until `done` says so, noting everything.
    async fn until(&mut self, link: &mut Link, what: &str, done: impl Fn(&ServerMsg) -> bool) {
        tokio::time::timeout(WAIT, async {
            loop {
                let msg = link
                    .next()
                    .await
                    .unwrap_or_else(|| panic!("ended before {what}"));
                self.note(&msg);
                if done(&msg) {
                    return;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: {self:?}"));
    }
}

/// Plays the script over `kind` and returns what came back.
async fn play(kind: Kind) -> Transcript {
    let server = TestServer::start().await;
    let (mut link, welcome) = Link::open(kind, &server).await;
    let mut t = Transcript::default();
    t.note(&welcome);
    // Every message of the script, then a barrier: a resync (the room
    // handles it after every chat sent before it, so the snapshot it
    // causes comes with or after their lines) and a ping whose pong comes
    // after everything queued so far.
    let script = [
        ClientMsg::Ping(Ping { t: 1 }),
        hello(),
        ClientMsg::Input(Input {
            seq: 1,
            dir: Dir::Up,
            boost: false,
        }),
    ]
    .into_iter()
    .chain((1..=6).map(|i| {
        ClientMsg::Chat(ChatText {
            text: format!("line {i}"),
        })
    }));
    for msg in script {
        link.send(msg).await;
    }
    t.until(&mut link, "the first snapshot", |m| {
        matches!(m, ServerMsg::Snapshot(_))
    })
    .await;
    link.send(ClientMsg::Resync {}).await;
    t.until(&mut link, "the resync's snapshot", |m| {
        matches!(m, ServerMsg::Snapshot(_))
    })
    .await;
    link.send(ClientMsg::Ping(Ping { t: 2 })).await;
    t.until(
        &mut link,
        "the barrier's pong",
        |m| matches!(m, ServerMsg::Pong(p) if p.t == 2),
    )
    .await;
    link.send(ClientMsg::Leave {}).await;
    tokio::time::timeout(WAIT, async {
        while let Some(msg) = link.next().await {
            t.note(&msg);
        }
    })
    .await
    .expect("the session ends after leave");
    t.ended = true;
    server.shutdown().await;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_script_gets_the_same_answers_over_every_playable_transport() {
    let ws = play(Kind::Ws).await;
    // The rules themselves, once: a pong, a second hello refused in words,
    // the sixth chat line over the limit of five, the rest in the room.
    assert_eq!(ws.answers[0], "welcome");
    assert_eq!(ws.answers[1], "pong 1");
    assert!(
        ws.answers[2].starts_with("error bad_message: already welcomed"),
        "{ws:?}"
    );
    assert!(
        ws.answers[3].starts_with("error rate_limited: chat rate limit"),
        "{ws:?}"
    );
    assert_eq!(ws.answers[4], "pong 2");
    assert_eq!(ws.answers.len(), 5, "{ws:?}");
    let lines: Vec<String> = (1..=5).map(|i| format!("alice: line {i}")).collect();
    assert_eq!(ws.chat, lines);
    for kind in [Kind::LongPoll, Kind::ShortPoll] {
        let other = play(kind).await;
        assert_eq!(other, ws, "{kind:?} differs from WebSocket");
    }
}
