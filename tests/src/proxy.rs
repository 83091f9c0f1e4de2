//! A loopback fault-injection HTTP proxy: what a hostile network does to a
//! session, on purpose and reproducibly (seeded), over real sockets.
//!
//! It understands just enough HTTP/1.1 (request and response heads,
//! `Content-Length` bodies, keep-alive) to act per request:
//! - drop a share of poll (or send) responses *after the server sent them*
//!   (the client sees the connection close instead of the answer);
//! - delay each new connection by a random time before it reaches the
//!   server, so concurrent connection attempts arrive reordered;
//! - refuse WebSocket upgrades with `403` like a restrictive proxy;
//! - cut a share of responses mid-body;
//! - black out: drop every connection and request while switched on.
//!
//! It counts requests and the bytes it passed each way, so the same proxy
//! measures what each transport costs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy does to traffic. The default passes everything.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Share (0..=1) of `/poll` responses dropped after the server sent them.
    pub drop_poll_responses: f64,
    /// Share of `/send` responses dropped after the server sent them.
    pub drop_send_responses: f64,
    /// Share of responses cut in the middle of their body.
    pub cut_mid_response: f64,
    /// Each new connection waits a random time up to this before it is
    /// connected upstream.
    pub max_connect_delay: Duration,
    /// Answer WebSocket upgrades with 403 instead of passing them.
    pub refuse_websocket: bool,
    /// Seed of the fault dice.
    pub seed: u64,
}

/// What went through the proxy.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// HTTP requests seen (a WebSocket counts once, at its upgrade).
    pub requests: AtomicU64,
    /// Bytes from the server to clients that reached the client side.
    pub bytes_down: AtomicU64,
    /// Bytes from clients to the server.
    pub bytes_up: AtomicU64,
    /// Responses dropped after the server sent them.
    pub dropped: AtomicU64,
    /// Responses cut mid-body.
    pub cut: AtomicU64,
    /// WebSocket upgrades refused.
    pub refused_upgrades: AtomicU64,
    /// While set, every connection and request is dropped unanswered.
    pub blackout: std::sync::atomic::AtomicBool,
}

/// A running fault proxy on 127.0.0.1:0.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT` of the proxy.
    pub url: String,
    /// What went through.
    pub counters: Arc<Counters>,
    accept: JoinHandle<()>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for c in self.conns.lock().expect("proxy registry").drain(..) {
            c.abort();
        }
    }
}

/// xorshift64*: reproducible dice without a dependency.
#[derive(Debug)]
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// True with probability `p`.
    fn roll(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    fn upto(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return max;
        }
        Duration::from_micros(self.next() % max.as_micros().max(1) as u64)
    }
}

impl FaultProxy {
    /// Starts proxying to `upstream` with `faults`, on 127.0.0.1:0.
    pub async fn start(upstream: SocketAddr, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        FaultProxy::serve_on(listener, upstream, faults)
    }

    /// Proxies what `listener` accepts to `upstream` with `faults` (the
    /// `fault-proxy` binary binds a fixed address for people to try).
    pub fn serve_on(listener: TcpListener, upstream: SocketAddr, faults: Faults) -> FaultProxy {
        let url = format!("http://{}", listener.local_addr().expect("proxy addr"));
        let counters = Arc::new(Counters::default());
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let counters = counters.clone();
            let conns = conns.clone();
            async move {
                let mut n = 0u64;
                while let Ok((down, _)) = listener.accept().await {
                    n += 1;
                    counters.connections.fetch_add(1, Ordering::Relaxed);
                    let dice = Dice(faults.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ n | 1);
                    let task = tokio::spawn(serve(
                        down,
                        upstream,
                        faults.clone(),
                        dice,
                        counters.clone(),
                    ));
                    let mut conns = conns.lock().expect("proxy registry");
                    conns.retain(|c| !c.is_finished());
                    conns.push(task);
                }
            }
        });
        FaultProxy {
            url,
            counters,
            accept,
            conns,
        }
    }

    /// Switches the blackout on (every request dropped) or off.
    pub fn blackout(&self, on: bool) {
        self.counters.blackout.store(on, Ordering::Relaxed);
    }

    /// A snapshot of one counter.
    pub fn get(&self, c: impl Fn(&Counters) -> &AtomicU64) -> u64 {
        c(&self.counters).load(Ordering::Relaxed)
    }
}

/// An HTTP head read off a stream: its bytes and what we need of it.
struct Head {
    bytes: Vec<u8>,
    first_line: String,
    content_length: Option<usize>,
    upgrade: bool,
    chunked: bool,
    close: bool,
}

/// Reads one head (up to the blank line); `buf` keeps what was read past it.
async fn read_head(s: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>) -> Option<Head> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let bytes: Vec<u8> = buf.drain(..end + 4).collect();
            let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
            let mut lines = text.lines();
            let first_line = lines.next().unwrap_or_default().to_string();
            let mut head = Head {
                bytes,
                first_line,
                content_length: None,
                upgrade: false,
                chunked: false,
                close: false,
            };
            for l in lines {
                if let Some((k, v)) = l.split_once(':') {
                    match (k.trim(), v.trim()) {
                        ("content-length", v) => head.content_length = v.parse().ok(),
                        ("upgrade", v) => head.upgrade = v.contains("websocket"),
                        ("transfer-encoding", v) => head.chunked = v.contains("chunked"),
                        ("connection", v) => head.close = v.contains("close"),
                        _ => {}
                    }
                }
            }
            return Some(head);
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads exactly `n` body bytes (some may already be in `buf`).
async fn read_body(
    s: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    n: usize,
) -> Option<Vec<u8>> {
    while buf.len() < n {
        let mut chunk = [0u8; 8192];
        let got = s.read(&mut chunk).await.ok()?;
        if got == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..got]);
    }
    Some(buf.drain(..n).collect())
}

async fn serve(
    mut down: TcpStream,
    upstream: SocketAddr,
    faults: Faults,
    mut dice: Dice,
    counters: Arc<Counters>,
) {
    tokio::time::sleep(dice.upto(faults.max_connect_delay)).await;
    let Ok(mut up) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut dbuf, mut ubuf) = (Vec::new(), Vec::new());
    loop {
        let Some(req) = read_head(&mut down, &mut dbuf).await else {
            return;
        };
        if counters.blackout.load(Ordering::Relaxed) {
            return;
        }
        counters.requests.fetch_add(1, Ordering::Relaxed);
        if req.upgrade {
            if faults.refuse_websocket {
                counters.refused_upgrades.fetch_add(1, Ordering::Relaxed);
                let body = "WebSocket upgrades are not allowed by this proxy";
                let resp = format!(
                    "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = down.write_all(resp.as_bytes()).await;
                return;
            }
            // Pass the upgrade and whatever follows, untouched.
            if up.write_all(&req.bytes).await.is_err() || up.write_all(&dbuf).await.is_err() {
                return;
            }
            let (dr, dw) = down.split();
            let (ur, uw) = up.split();
            tokio::select! {
                () = pump(dr, uw, &counters.bytes_up) => {}
                () = pump(ur, dw, &counters.bytes_down) => {}
            }
            return;
        }
        let body = read_body(&mut down, &mut dbuf, req.content_length.unwrap_or(0)).await;
        let Some(body) = body else { return };
        counters
            .bytes_up
            .fetch_add((req.bytes.len() + body.len()) as u64, Ordering::Relaxed);
        if up.write_all(&req.bytes).await.is_err() || up.write_all(&body).await.is_err() {
            return;
        }
        let Some(resp) = read_head(&mut up, &mut ubuf).await else {
            return;
        };
        if resp.chunked || resp.content_length.is_none() {
            // Not a shape our server uses for session calls: stream it through.
            let _ = down.write_all(&resp.bytes).await;
            let _ = down.write_all(&ubuf).await;
            let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
            return;
        }
        let Some(rbody) = read_body(&mut up, &mut ubuf, resp.content_length.unwrap_or(0)).await
        else {
            return;
        };
        let share = if req.first_line.contains("/poll") {
            faults.drop_poll_responses
        } else if req.first_line.contains("/send") {
            faults.drop_send_responses
        } else {
            0.0
        };
        if dice.roll(share) {
            // The server sent it; the client never sees it.
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if !rbody.is_empty() && dice.roll(faults.cut_mid_response) {
            counters.cut.fetch_add(1, Ordering::Relaxed);
            let _ = down.write_all(&resp.bytes).await;
            let _ = down.write_all(&rbody[..rbody.len() / 2]).await;
            return;
        }
        counters
            .bytes_down
            .fetch_add((resp.bytes.len() + rbody.len()) as u64, Ordering::Relaxed);
        if down.write_all(&resp.bytes).await.is_err() || down.write_all(&rbody).await.is_err() {
            return;
        }
        if resp.close || req.close {
            return;
        }
    }
}

/// Copies one direction of a stream, counting bytes as they pass.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    count: &AtomicU64,
) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_are_reproducible_and_roughly_fair() {
        let mut a = Dice(42);
        let mut b = Dice(42);
        let hits = (0..10_000).filter(|_| a.roll(0.25)).count();
        let again = (0..10_000).filter(|_| b.roll(0.25)).count();
        assert_eq!(hits, again);
        assert!((2_000..3_000).contains(&hits), "{hits}");
        assert!(!Dice(1).roll(0.0));
    }
}
