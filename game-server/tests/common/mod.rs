//! Test support shared by the streaming tests: a raw HTTP/1.1 client that
//! reads a streaming (chunked) body incrementally, an SSE reader on top of
//! it, and a server on 127.0.0.1:0. Every wait has a generous deadline.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use game_server::{RunningServer, ServerConfig, start};
use protocol::sse::{Event, Item, Parser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// Bound on any single wait; only reached when something is broken.
pub const WAIT: Duration = Duration::from_secs(30);

/// A server on 127.0.0.1:0 at 60 Hz on the small map, seeded.
pub async fn server(tweak: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    let mut config = ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tick_rate: 60,
        map: "small".into(),
        seed: Some(7),
        ..ServerConfig::default()
    };
    tweak(&mut config);
    start(config).await.unwrap()
}

/// One HTTP response being read as it streams.
pub struct Http {
    sock: TcpStream,
    buf: Vec<u8>,
    pub status: u16,
    /// The status line and headers, lower-cased.
    pub head: String,
    chunked: bool,
    remaining: Option<usize>,
    ended: bool,
}

impl Http {
    /// Sends `GET path` with extra headers and reads the response head.
    pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Http {
        let sock = TcpStream::connect(addr).await.unwrap();
        Http::get_on(sock, path, headers).await
    }

    /// Like [`Http::get`] over a socket with a small receive buffer, so a
    /// reader that stops reading makes the server's writes stall quickly.
    pub async fn get_small_window(addr: SocketAddr, path: &str) -> Http {
        let s = TcpSocket::new_v4().unwrap();
        s.set_recv_buffer_size(4096).unwrap();
        let sock = s.connect(addr).await.unwrap();
        Http::get_on(sock, path, &[]).await
    }

    async fn get_on(mut sock: TcpStream, path: &str, headers: &[(&str, &str)]) -> Http {
        let mut req = format!("GET {path} HTTP/1.1\r\nhost: test\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut h = Http {
            sock,
            buf: Vec::new(),
            status: 0,
            head: String::new(),
            chunked: false,
            remaining: None,
            ended: false,
        };
        let end = loop {
            if let Some(i) = h.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            assert!(h.fill().await, "connection closed before the response head");
        };
        h.head = String::from_utf8_lossy(&h.buf[..end]).to_ascii_lowercase();
        h.buf.drain(..end + 4);
        h.status = h.head[9..12].parse().unwrap();
        h.chunked = h.head.contains("transfer-encoding: chunked");
        h.remaining = h.head.lines().find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        });
        h
    }

    async fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 16 * 1024];
        let n = tokio::time::timeout(WAIT, self.sock.read(&mut tmp))
            .await
            .expect("no bytes from the server in time")
            .unwrap_or(0);
        self.buf.extend_from_slice(&tmp[..n]);
        n > 0
    }

    /// The value of a response header.
    pub fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.head
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()).map(str::trim))
    }

    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Option<Vec<u8>> {
        if self.ended {
            return None;
        }
        if !self.chunked {
            let Some(rem) = self.remaining else {
                // Until close.
                if self.buf.is_empty() && !self.fill().await {
                    self.ended = true;
                    return None;
                }
                return Some(std::mem::take(&mut self.buf));
            };
            while self.buf.len() < rem {
                assert!(self.fill().await, "body cut short");
            }
            self.ended = true;
            return Some(self.buf.drain(..rem).collect());
        }
        let line_end = loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            if !self.fill().await {
                self.ended = true;
                return None;
            }
        };
        let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
        while self.buf.len() < line_end + 2 + size + 2 {
            if !self.fill().await {
                self.ended = true;
                return None;
            }
        }
        let data = self.buf[line_end + 2..line_end + 2 + size].to_vec();
        self.buf.drain(..line_end + 2 + size + 2);
        if size == 0 {
            self.ended = true;
            return None;
        }
        Some(data)
    }

    /// The whole (remaining) body.
    pub async fn body(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(c) = self.chunk().await {
            out.extend(c);
        }
        out
    }
}

/// An SSE stream, item by item.
pub struct Sse {
    pub http: Http,
    parser: Parser,
    items: VecDeque<Item>,
    /// Body bytes read so far.
    pub bytes: usize,
}

impl Sse {
    /// Opens `/rooms/{room}/events`, optionally with `Last-Event-ID`.
    pub async fn open(addr: SocketAddr, room: &str, last_event_id: Option<&str>) -> Sse {
        let mut headers = vec![("accept", "text/event-stream")];
        if let Some(id) = last_event_id {
            headers.push(("last-event-id", id));
        }
        let http = Http::get(addr, &format!("/rooms/{room}/events"), &headers).await;
        Sse::over(http)
    }

    /// Reads an already opened response as SSE.
    pub fn over(http: Http) -> Sse {
        assert_eq!(http.status, 200, "{}", http.head);
        Sse {
            http,
            parser: Parser::new(),
            items: VecDeque::new(),
            bytes: 0,
        }
    }

    /// The next item; `None` when the stream ended.
    pub async fn item(&mut self) -> Option<Item> {
        loop {
            if let Some(i) = self.items.pop_front() {
                return Some(i);
            }
            let chunk = self.http.chunk().await?;
            self.bytes += chunk.len();
            self.items.extend(self.parser.push(&chunk));
        }
    }

    /// The next event, skipping comments and `retry`.
    pub async fn event(&mut self) -> Event {
        loop {
            match self.item().await.expect("the stream ended") {
                Item::Event(e) => return e,
                _ => continue,
            }
        }
    }
}

/// A WebSocket player (JSON) that joins `lobby` and then only keeps the
/// connection alive; its snake moves on its own.
pub async fn ws_player(addr: SocketAddr, name: &str) -> tokio::task::JoinHandle<()> {
    let url = format!("ws://{addr}/rooms/lobby/ws");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = serde_json::json!({"hello": {"version": 2, "name": name}});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    // Wait for the welcome so the player is in before we go on.
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) if t.contains("welcome") => break,
            Some(Ok(_)) => continue,
            other => panic!("no welcome: {other:?}"),
        }
    }
    tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m
                && t.starts_with("{\"tick\"")
            {
                n += 1;
                if n.is_multiple_of(30) {
                    let ping = serde_json::json!({"ping": {"t": n}});
                    if ws.send(Message::text(ping.to_string())).await.is_err() {
                        break;
                    }
                }
            }
        }
    })
}

/// Sends one chat line as a new JSON WebSocket player.
pub async fn ws_chat(addr: SocketAddr, name: &str, text: &str) {
    let url = format!("ws://{addr}/rooms/lobby/ws");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = serde_json::json!({"hello": {"version": 2, "name": name}});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    let chat = serde_json::json!({"chat": {"text": text}});
    ws.send(Message::text(chat.to_string())).await.unwrap();
    let leave = serde_json::json!({"leave": {}});
    ws.send(Message::text(leave.to_string())).await.unwrap();
    // Read until the server closes, so the chat was taken in.
    while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, ws.next()).await {}
}

/// Sends a raw HTTP request and reads the whole answer (`connection: close`).
pub async fn http_raw(addr: SocketAddr, request: &str) -> (u16, String, serde_json::Value) {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, c.read_to_end(&mut out))
        .await
        .expect("an answer in time")
        .unwrap();
    parse_answer(&out)
}

pub fn parse_answer(out: &[u8]) -> (u16, String, serde_json::Value) {
    let text = String::from_utf8_lossy(out).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head[9..12].parse().unwrap();
    // Bodies may be chunked: the JSON lies between the first `{` or `[`
    // and the last `}` or `]`.
    let json = body
        .find(['{', '['])
        .and_then(|i| serde_json::from_str(&body[i..=body.rfind(['}', ']'])?]).ok())
        .unwrap_or(serde_json::Value::Null);
    (status, head.to_ascii_lowercase(), json)
}

/// GET `path` and the whole body, for short replies.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut h = Http::get(addr, path, &[("connection", "close")]).await;
    let body = String::from_utf8_lossy(&h.body().await).into_owned();
    (h.status, h.head.clone(), body)
}

/// A WebSocket client written by hand, so it can be idle the way a dead
/// peer is: it sends its hello and then nothing, not even pongs (a real
/// client library answers pings while it reads).
pub struct RawWs(pub TcpStream);

impl RawWs {
    pub async fn open(addr: SocketAddr) -> RawWs {
        RawWs::over(TcpStream::connect(addr).await.unwrap()).await
    }

    /// Like [`RawWs::open`] over a socket the caller made.
    pub async fn over(mut c: TcpStream) -> RawWs {
        let req = "GET /rooms/lobby/ws HTTP/1.1\r\nhost: t\r\nupgrade: websocket\r\n\
                   connection: upgrade\r\nsec-websocket-version: 13\r\n\
                   sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        c.write_all(req.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            let n = tokio::time::timeout(WAIT, c.read(&mut b))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(n, 1, "closed during the handshake");
            head.push(b[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        RawWs(c)
    }

    /// Sends one masked text frame (under 126 bytes).
    pub async fn send_text(&mut self, text: &str) {
        let mask = [1u8, 2, 3, 4];
        let mut f = vec![0x81, 0x80 | text.len() as u8];
        f.extend_from_slice(&mask);
        f.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.0.write_all(&f).await.unwrap();
    }

    /// Reads frames until the close frame; returns its code and reason.
    pub async fn close_frame(&mut self) -> (u16, String) {
        loop {
            let mut h = [0u8; 2];
            tokio::time::timeout(WAIT, self.0.read_exact(&mut h))
                .await
                .expect("no close frame in time")
                .unwrap();
            let len = match h[1] & 0x7F {
                126 => u64::from(self.0.read_u16().await.unwrap()),
                127 => self.0.read_u64().await.unwrap(),
                n => u64::from(n),
            };
            let mut payload = vec![0u8; len as usize];
            self.0.read_exact(&mut payload).await.unwrap();
            if h[0] & 0x0F == 0x8 {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return (code, String::from_utf8_lossy(&payload[2..]).into_owned());
            }
        }
    }
}

/// A socket with a tiny receive window, so a reader that stops reading
/// stalls the server's writes after a few KiB.
pub async fn small_window(addr: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(addr).await.unwrap()
}

/// The next server message of a WebSocket session (skipping pings and
/// pongs), decoded in `f`, whose frame type it must have; `Err` with the
/// close frame's `(code, reason)`.
pub async fn ws_recv<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    f: protocol::Format,
) -> Result<protocol::ServerMsg, (u16, String)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("timed out")
            .expect("stream ended")
            .unwrap();
        match m {
            Message::Text(t) => {
                assert_eq!(f, protocol::Format::Json, "text frame on a bincode session");
                return Ok(protocol::codec::decode(f, t.as_bytes()).unwrap());
            }
            Message::Binary(b) => {
                assert_eq!(
                    f,
                    protocol::Format::Bincode,
                    "binary frame on a JSON session"
                );
                return Ok(protocol::codec::decode(f, &b).unwrap());
            }
            Message::Close(c) => {
                let c = c.expect("close frame with a code");
                return Err((u16::from(c.code), c.reason.to_string()));
            }
            _ => continue,
        }
    }
}
