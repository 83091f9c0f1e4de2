//! What a client's links put on the wire and took off it, counted by the
//! links themselves, for the lag meter's bytes/s and requests/s.
//!
//! - A WebSocket owns its socket: [`Counted`] wraps the TCP stream, so the
//!   upgrade and every frame (headers, masks, pings) count as read and
//!   written.
//! - HTTP requests go through reqwest, whose connections are pooled and
//!   sealed; [`Traffic::exchange`] and friends count each HTTP/1.1 message
//!   as it goes on the wire: request line, headers (with the `host`,
//!   `accept` and `content-length` that reqwest and hyper add), body;
//!   status line, headers, body, and the chunk framing of a streamed body.
//!   A test holds these counts against a byte-counting proxy.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, HOST, HeaderMap, TRANSFER_ENCODING};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::lag::TrafficTotals;

/// Counters shared by every link of one client (they outlive reconnects).
#[derive(Debug, Default)]
pub struct Traffic {
    bytes_down: AtomicU64,
    bytes_up: AtomicU64,
    requests: AtomicU64,
    resumes: AtomicU64,
}

fn headers_len(h: &HeaderMap) -> u64 {
    h.iter()
        .map(|(k, v)| (k.as_str().len() + 2 + v.len() + 2) as u64)
        .sum()
}

fn digits_hex(n: usize) -> u64 {
    let mut d = 1;
    let mut n = n >> 4;
    while n > 0 {
        d += 1;
        n >>= 4;
    }
    d
}

impl Traffic {
    /// Fresh counters behind an `Arc`, to hand to links.
    pub fn shared() -> Arc<Traffic> {
        Arc::new(Traffic::default())
    }

    /// The totals so far.
    pub fn totals(&self) -> TrafficTotals {
        TrafficTotals {
            bytes_down: self.bytes_down.load(Ordering::Relaxed),
            bytes_up: self.bytes_up.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            resumes: self.resumes.load(Ordering::Relaxed),
        }
    }

    /// Counts bytes read.
    pub fn down(&self, n: u64) {
        self.bytes_down.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts bytes written.
    pub fn up(&self, n: u64) {
        self.bytes_up.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one request (a WebSocket upgrade, an HTTP call).
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a stream the link resumed on its own.
    pub fn resume(&self) {
        self.resumes.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request about to be sent: one request, and its bytes as
    /// hyper writes them over HTTP/1.1.
    pub fn request_sent(&self, req: &reqwest::Request) {
        let url = req.url();
        let target = url.path().len() + url.query().map_or(0, |q| q.len() + 1);
        let mut n = (req.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len()) as u64;
        n += headers_len(req.headers());
        if !req.headers().contains_key(ACCEPT) {
            // reqwest's default header.
            n += "accept: */*\r\n".len() as u64;
        }
        if !req.headers().contains_key(HOST) {
            // hyper's, with the port unless it is the scheme's default.
            let host = url.host_str().map_or(0, str::len);
            let port = url.port().map_or(0, |p| 1 + p.to_string().len());
            n += ("host: ".len() + host + port + 2) as u64;
        }
        let body = req.body().and_then(|b| b.as_bytes()).map_or(0, <[u8]>::len);
        if body > 0 && !req.headers().contains_key(CONTENT_LENGTH) {
            n += ("content-length: ".len() + body.to_string().len() + 2) as u64;
        }
        n += 2 + body as u64;
        self.request();
        self.up(n);
    }

    /// Counts the status line and headers of a response.
    pub fn response_head(&self, resp: &reqwest::Response) {
        let status = resp.status();
        let reason = status.canonical_reason().map_or(0, str::len);
        let line = "HTTP/1.1 200 ".len() + reason + 2;
        self.down(line as u64 + headers_len(resp.headers()) + 2);
    }

    /// Counts one piece of a response body; `chunked` adds the framing
    /// of a chunked transfer (`{size:x}\r\n ... \r\n`).
    pub fn body_piece(&self, len: usize, chunked: bool) {
        let framing = if chunked { digits_hex(len) + 4 } else { 0 };
        self.down(len as u64 + framing);
    }

    /// Sends a request with `client` and reads the whole answer, counting
    /// both: the status and the body.
    pub async fn exchange(
        &self,
        client: &reqwest::Client,
        request: reqwest::RequestBuilder,
    ) -> reqwest::Result<(u16, Bytes)> {
        let req = request.build()?;
        self.request_sent(&req);
        let resp = client.execute(req).await?;
        self.response_head(&resp);
        let chunked = is_chunked(&resp);
        let status = resp.status().as_u16();
        let body = resp.bytes().await?;
        self.body_piece(body.len(), chunked);
        if chunked {
            self.body_end();
        }
        Ok((status, body))
    }

    /// Counts the last chunk (`0\r\n\r\n`) of a chunked body.
    pub fn body_end(&self) {
        self.down(5);
    }
}

/// True when the response body comes in chunks.
pub fn is_chunked(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get(TRANSFER_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"))
}

/// A stream that counts what goes through it.
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    traffic: Arc<Traffic>,
}

impl<S> Counted<S> {
    /// Wraps `inner`, counting into `traffic`.
    pub fn new(inner: S, traffic: Arc<Traffic>) -> Counted<S> {
        Counted { inner, traffic }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            self.traffic.down((buf.filled().len() - before) as u64);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.traffic.up(n as u64);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.traffic.up(n as u64);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn a_request_counts_as_hyper_writes_it() {
        let client = reqwest::Client::new();
        let req = client
            .post("http://127.0.0.1:7878/rooms/lobby/sessions/ab/send")
            .bearer_auth("tok")
            .body(vec![b'x'; 12])
            .build()
            .unwrap();
        let t = Traffic::default();
        t.request_sent(&req);
        let wire = "POST /rooms/lobby/sessions/ab/send HTTP/1.1\r\n\
                    authorization: Bearer tok\r\n\
                    accept: */*\r\n\
                    host: 127.0.0.1:7878\r\n\
                    content-length: 12\r\n\
                    \r\n\
                    xxxxxxxxxxxx";
        assert_eq!(t.totals().bytes_up, wire.len() as u64);
        assert_eq!(t.totals().requests, 1);
        let get = client
            .get("http://h/poll?after=3&wait=25")
            .header(ACCEPT, "application/json")
            .build()
            .unwrap();
        let t = Traffic::default();
        t.request_sent(&get);
        let wire =
            "GET /poll?after=3&wait=25 HTTP/1.1\r\naccept: application/json\r\nhost: h\r\n\r\n";
        assert_eq!(t.totals().bytes_up, wire.len() as u64);
    }

    #[test]
    fn chunk_framing_is_counted() {
        let t = Traffic::default();
        t.body_piece(0x1a, true); // "1a\r\n" + 26 + "\r\n"
        t.body_piece(3, false);
        t.body_end();
        assert_eq!(t.totals().bytes_down, 2 + 2 + 26 + 2 + 3 + 5);
    }

    #[tokio::test]
    async fn a_counted_stream_counts_both_ways() {
        let (a, mut b) = tokio::io::duplex(64);
        let t = Traffic::shared();
        let mut a = Counted::new(a, t.clone());
        a.write_all(b"hello").await.unwrap();
        b.write_all(b"hi!").await.unwrap();
        let mut buf = [0u8; 3];
        a.read_exact(&mut buf).await.unwrap();
        let mut got = [0u8; 5];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!((t.totals().bytes_up, t.totals().bytes_down), (5, 3));
    }
}
