//! The socket of one accepted connection, as every transport above sees it
//! (hyper, and after an upgrade the WebSocket): it holds the connection's
//! place under the caps, fails writes that make no progress for too long,
//! and closes gracefully.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::Permit;
use crate::limits::Counters;
use crate::limits::counters::bump;

/// How long a closed connection keeps reading (and discarding) what its
/// peer still sends, so the peer reads our last answer (a 413, a close
/// frame after an oversized message) instead of a reset.
const LINGER: Duration = Duration::from_secs(1);
/// Most bytes a lingering close discards before giving up.
const LINGER_BYTES: usize = 8 << 20;

/// An accepted TCP connection with a write-stall timeout and a lingering close.
pub struct Conn {
    stream: Option<TcpStream>,
    permit: Option<Permit>,
    stall_limit: Duration,
    /// Armed while a write waits for the peer; fires after `stall_limit`.
    stall: Option<Pin<Box<Sleep>>>,
    stall_armed: bool,
    /// Set once a write stalled out: the peer does not read, so do not
    /// linger. Atomic: [`Conn::write_all_shared`] sets it through `&self`.
    stalled: AtomicBool,
    counters: Arc<Counters>,
    lingering: Lingering,
}

/// Bounds the sockets closing in the background at once.
#[derive(Clone, Debug)]
pub struct Lingering {
    now: Arc<AtomicUsize>,
    max: usize,
}

impl Lingering {
    /// At most `max` lingering closes at once; beyond, sockets close at once.
    pub fn new(max: usize) -> Lingering {
        Lingering {
            now: Arc::default(),
            max,
        }
    }

    fn enter(&self) -> Option<LingerSlot> {
        let prev = self.now.fetch_add(1, Ordering::AcqRel);
        if prev >= self.max {
            self.now.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(LingerSlot(self.now.clone()))
    }
}

struct LingerSlot(Arc<AtomicUsize>);

impl Drop for LingerSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Conn {
    /// Wraps an accepted stream; `permit` (if any) is released when the
    /// connection ends, before its lingering close.
    pub fn new(
        stream: TcpStream,
        permit: Option<Permit>,
        stall_limit: Duration,
        counters: Arc<Counters>,
        lingering: Lingering,
    ) -> Conn {
        Conn {
            stream: Some(stream),
            permit,
            stall_limit,
            stall: None,
            stall_armed: false,
            stalled: AtomicBool::new(false),
            counters,
            lingering,
        }
    }

    /// Copies the bytes that have arrived into `buf` without consuming
    /// them, waiting until some have.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self.stream.as_ref() {
            Some(s) => s.peek(buf).await,
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// One non-blocking write of as much of `buf` as the socket takes now
    /// (`WouldBlock`: nothing). For the fan-out's fast path, which never
    /// waits: a write that cannot finish goes on in the stall-guarded
    /// `AsyncWrite` (the slow path).
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        if self.stalled.load(Ordering::Relaxed) {
            return Err(stalled_error());
        }
        match self.stream.as_ref() {
            Some(s) => s.try_write(buf),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Writes all of `buf` through a shared reference, under the same
    /// write-stall timeout as the `AsyncWrite` (no progress for the stall
    /// limit fails it). For a socket that a fan-out shard writes and a
    /// WebSocket spectator's reader reads at once (`Arc<Conn>`); whoever
    /// calls it owns the socket's write side until it returns.
    pub async fn write_all_shared(&self, mut buf: &[u8]) -> io::Result<()> {
        let Some(stream) = self.stream.as_ref() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        while !buf.is_empty() {
            if self.stalled.load(Ordering::Relaxed) {
                return Err(stalled_error());
            }
            match stream.try_write(buf) {
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match tokio::time::timeout(self.stall_limit, stream.writable()).await {
                        Ok(r) => r?,
                        Err(_) => {
                            self.stall_out();
                            return Err(stalled_error());
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The socket's descriptor (-1 once closed, or off unix), for the
    /// fan-out's fast path: a shard writes each tick with one `send` on it,
    /// not through tokio's readiness (see `fanout::shard::write`).
    pub fn raw_fd(&self) -> i32 {
        #[cfg(unix)]
        if let Some(s) = self.stream.as_ref() {
            return std::os::fd::AsRawFd::as_raw_fd(s);
        }
        -1
    }

    /// The peer's address, while the socket is open.
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.stream.as_ref()?.peer_addr().ok()
    }

    /// Waits until the socket has something to read (or is closed).
    pub async fn readable(&self) -> io::Result<()> {
        match self.stream.as_ref() {
            Some(s) => s.readable().await,
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// One non-blocking read into `buf` (`WouldBlock`: nothing yet; `Ok(0)`:
    /// the peer closed).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self.stream.as_ref() {
            Some(s) => s.try_read(buf),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// A write made no progress for the stall limit: the peer does not read.
    fn stall_out(&self) {
        self.stalled.store(true, Ordering::Relaxed);
        bump(&self.counters.write_stalls);
        tracing::debug!("write stalled for {:?}: closing", self.stall_limit);
    }

    /// Runs a write-side poll: progress disarms the stall timer, waiting
    /// arms it, and a wait longer than the limit fails the write.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if self.stalled.load(Ordering::Relaxed) {
            return Poll::Ready(Err(stalled_error()));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        match op(Pin::new(stream), cx) {
            Poll::Ready(r) => {
                self.stall_armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let deadline = Instant::now() + self.stall_limit;
                let sleep = self
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if !self.stall_armed {
                    sleep.as_mut().reset(deadline);
                    self.stall_armed = true;
                }
                if sleep.as_mut().poll(cx).is_ready() {
                    self.stall_out();
                    return Poll::Ready(Err(stalled_error()));
                }
                Poll::Pending
            }
        }
    }
}

fn stalled_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the peer stopped reading: write stalled",
    )
}

use std::future::Future as _;

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().stream.as_mut() {
            Some(s) => Pin::new(s).poll_read(cx, buf),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().guard(cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .guard(cx, |s, cx| s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().guard(cx, |s, cx| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream.as_mut() {
            Some(s) => Pin::new(s).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The connection is over for the caps now, whatever the linger does.
        drop(self.permit.take());
        let Some(stream) = self.stream.take() else {
            return;
        };
        if self.stalled.load(Ordering::Relaxed) {
            return;
        }
        let (Ok(rt), Some(slot)) = (
            tokio::runtime::Handle::try_current(),
            self.lingering.enter(),
        ) else {
            return;
        };
        rt.spawn(linger(stream, slot));
    }
}

/// Sends our FIN after whatever is queued, then reads and discards what
/// the peer still sends until it closes too (or for [`LINGER`]), so the
/// kernel never answers its late bytes with a reset that would destroy
/// our last message before it was read.
async fn linger(mut stream: TcpStream, _slot: LingerSlot) {
    let _ = stream.shutdown().await;
    let deadline = Instant::now() + LINGER;
    let mut buf = [0u8; 4096];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
}
