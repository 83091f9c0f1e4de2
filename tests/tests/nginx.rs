//! Behind a real reverse proxy: Debian's nginx (`/usr/sbin/nginx`, installed
//! by `.ci/install-tools`) on a free loopback port, with a generated config,
//! in front of a real server on 127.0.0.1:0.
//!
//! - With nginx's default proxying (`proxy_pass` only: HTTP/1.0 upstream,
//!   the hop-by-hop `Upgrade`/`Connection` headers dropped), the server
//!   answers the WebSocket request `426`, `--transport auto` falls back to
//!   long-poll and says so, and SSE events arrive while the stream is open
//!   (the server also sends `X-Accel-Buffering: no`).
//! - With WebSocket proxying configured (the README's config), the game
//!   plays over WebSocket.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use protocol::Format;
use tickwire_tests::{Probe, TestServer, WAIT, player};
use tui_client::bot::BotKind;
use tui_client::client::{ClosedReason, TransportKind};

const NGINX: &str = "/usr/sbin/nginx";

/// nginx's default proxying: what an operator gets who only wrote `proxy_pass`.
const DEFAULT_LOCATION: &str = "proxy_pass http://UPSTREAM;";

/// The README's "Behind a reverse proxy" location, as tested.
const WEBSOCKET_LOCATION: &str = "
            proxy_pass http://UPSTREAM;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_read_timeout 120s;
            proxy_send_timeout 120s;";

/// A running nginx, stopped and its files removed when dropped.
struct Nginx {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Nginx {
    /// Starts nginx on a free loopback port with `location` (its
    /// `UPSTREAM` replaced by `upstream`) as the only location.
    async fn start(upstream: SocketAddr, location: &str) -> Nginx {
        tickwire_tests::ensure_installed(NGINX, "nginx-light");
        let dir = std::env::temp_dir().join(format!(
            "tickwire-nginx-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        // A port the kernel says is free; nginx binds it right after.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let location = location.replace("UPSTREAM", &upstream.to_string());
        let d = dir.display();
        let config = format!(
            "daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            {location}
        }}
    }}
}}
"
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config).expect("nginx.conf");
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        let mut nginx = Nginx {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        };
        nginx.until_listening(port).await;
        nginx
    }

    /// nginx says nothing when it is ready, so its port is the event:
    /// retried until it accepts (or nginx exited, which fails the test
    /// with its error log).
    async fn until_listening(&mut self, port: u16) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                panic!("nginx exited ({status}): {err}\n{log}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nginx did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_default_nginx_auto_falls_back_to_long_poll_and_says_why() {
    let server = TestServer::start().await;
    let nginx = Nginx::start(server.addr, DEFAULT_LOCATION).await;

    // What the client reads: the server's own words, passed on by nginx.
    let r = reqwest::Client::new()
        .get(format!("{}/rooms/lobby/ws", nginx.url))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("an answer through nginx");
    assert_eq!(r.status().as_u16(), 426);
    let body: serde_json::Value = r.json().await.expect("a JSON error");
    assert_eq!(body["code"], "upgrade_required");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Upgrade") && error.contains("POST /rooms/lobby/sessions"),
        "{error}"
    );

    let p = Probe::after_fallback(&nginx.url, "proxied", Format::Json, "426").await;
    assert_eq!(p.leave().await, ClosedReason::Left);
    drop(nginx);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_default_nginx_sse_streams_unbuffered() {
    let server = TestServer::start().await;
    // A slow room (2 ticks a second): four tick events read while the
    // stream is open, a few hundred bytes in all, arrived one by one as the
    // room produced them; a proxy that held the stream until a buffer
    // filled or the response ended would deliver none of them in time.
    // (Tried: nginx 1.22 forwards them promptly even when told to ignore
    // the server's `X-Accel-Buffering: no`, since this reader keeps up.)
    let created = reqwest::Client::new()
        .post(format!("{}/api/rooms", server.url))
        .body(r#"{"id":"slow","tick_rate":2}"#)
        .send()
        .await
        .expect("room created");
    assert_eq!(created.status().as_u16(), 201);
    let nginx = Nginx::start(server.addr, DEFAULT_LOCATION).await;

    let r = reqwest::Client::new()
        .get(format!("{}/rooms/slow/events", nginx.url))
        .send()
        .await
        .expect("the stream opens through nginx");
    assert_eq!(r.status().as_u16(), 200);
    let mut stream = r.bytes_stream();
    let mut text = String::new();
    let ticks = |t: &str| t.matches("event: tick\n").count();
    tokio::time::timeout(WAIT, async {
        while ticks(&text) < 4 {
            let chunk = stream
                .next()
                .await
                .expect("the stream stays open")
                .expect("bytes");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("4 tick events while the stream is open; got {text:?}"));
    assert!(text.starts_with("retry: "), "{text}");
    assert!(text.contains("event: welcome\n"));
    assert!(
        text.len() < 4096,
        "the ticks came before any buffer filled: {} bytes",
        text.len()
    );
    drop(stream);
    drop(nginx);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_an_nginx_configured_for_websockets_the_game_plays_over_websocket() {
    let server = TestServer::start().await;
    let nginx = Nginx::start(server.addr, WEBSOCKET_LOCATION).await;
    let mut c = player(&nginx.url, "upgraded", Format::Bincode);
    c.transport = TransportKind::Auto;
    let mut p = Probe::bot(c, BotKind::Greedy, 6);
    p.until("120 ticks", |p| p.ticks_seen() >= 120).await;
    let (kind, reason) = p
        .transports
        .first()
        .cloned()
        .expect("the choice is reported");
    assert_eq!(kind, TransportKind::Ws, "{reason}");
    let sent = *p.sent.last().expect("the bot steered");
    p.until("its last input acked", |p| {
        p.acks.last().is_some_and(|&ack| ack >= sent)
    })
    .await;
    assert_eq!(p.problems(), (0, 0, 0), "no desync, gap or lost frame");
    assert!(p.disconnects.is_empty(), "{:?}", p.disconnects);
    assert_eq!(p.leave().await, ClosedReason::Left);
    drop(nginx);
    server.shutdown().await;
}
