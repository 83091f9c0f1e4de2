//! The accept layer: every TCP connection starts here, before HTTP.
//!
//! It sets `TCP_NODELAY` (frames are small and latency is the product),
//! counts the connection under the server-wide and per-address caps (a
//! connection over a cap gets a short JSON answer, `503 server_full` or
//! `429 too_many_connections`, and is closed), serves HTTP/1.1 with a
//! request-head timeout against slowloris, wraps the socket in a [`Conn`]
//! that fails stalled writes, and on shutdown stops accepting, lets every
//! connection finish (each transport tells its client why) and drops what
//! is still open after the grace period.
//!
//! A connection's place under the caps is its [`Permit`]; it lives in the
//! socket itself, so an upgraded WebSocket keeps counting until it closes.
//!
//! Over 400 lines on purpose: the accept loop, the caps and the shutdown
//! share one connection's lifecycle; the socket itself is in `conn`.

mod conn;
pub mod fdlimit;
mod sniff;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, debug_span, warn};
use warp::http::{HeaderValue, Request, StatusCode};
use warp::reply::Response;

pub use conn::{Conn, Lingering};
pub use sniff::{Handoff, Head, Taken};

use crate::limits::counters::bump;
use crate::limits::{Counters, Limits};

/// The peer of the connection a request came on, in the request's
/// extensions (`warp::ext::optional::<Peer>()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

/// Largest request head (and read buffer) a connection may use.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long a refused connection may take to send its request head.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The server-wide cap is reached.
    ServerFull,
    /// The per-address cap is reached.
    PerIp,
}

impl Refusal {
    fn response(self, max: usize) -> Response {
        let mut r = match self {
            Refusal::ServerFull => crate::http::error_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_full",
                format!("the server is at its limit of {max} connections; try again soon"),
            ),
            Refusal::PerIp => crate::http::error_reply(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                format!("at most {max} connections from one address; close some first"),
            ),
        };
        let h = r.headers_mut();
        h.insert("retry-after", HeaderValue::from_static("5"));
        h.insert("connection", HeaderValue::from_static("close"));
        r
    }
}

/// Open connections, counted against the caps.
#[derive(Clone, Debug)]
pub struct Tracker(Arc<TrackerInner>);

#[derive(Debug)]
struct TrackerInner {
    counts: Mutex<Counts>,
    /// Woken whenever a connection ends.
    released: Notify,
    max: usize,
    per_ip: usize,
    per_ip_loopback: bool,
}

#[derive(Debug, Default)]
struct Counts {
    open: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// One connection's place under the caps; dropping it frees the place.
#[derive(Debug)]
pub struct Permit {
    tracker: Tracker,
    /// The address it counts against, if the per-address cap applies.
    ip: Option<IpAddr>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        {
            let mut c = self.tracker.lock();
            c.open -= 1;
            if let Some(ip) = self.ip
                && let Some(n) = c.by_ip.get_mut(&ip)
            {
                *n -= 1;
                if *n == 0 {
                    c.by_ip.remove(&ip);
                }
            }
        }
        self.tracker.0.released.notify_waiters();
    }
}

impl Tracker {
    /// Caps of `max` connections in all and `per_ip` (0: none) per address.
    pub fn new(max: usize, per_ip: usize, per_ip_loopback: bool) -> Tracker {
        Tracker(Arc::new(TrackerInner {
            counts: Mutex::default(),
            released: Notify::new(),
            max,
            per_ip,
            per_ip_loopback,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts are plain integers, valid even if a holder panicked.
        self.0.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a place for a connection from `ip`, or says which cap is full.
    pub fn admit(&self, ip: IpAddr) -> Result<Permit, Refusal> {
        let ip = ip.to_canonical();
        let per_ip = self.0.per_ip > 0 && (self.0.per_ip_loopback || !ip.is_loopback());
        let mut c = self.lock();
        if c.open >= self.0.max {
            return Err(Refusal::ServerFull);
        }
        if per_ip {
            let n = c.by_ip.entry(ip).or_default();
            if *n >= self.0.per_ip {
                return Err(Refusal::PerIp);
            }
            *n += 1;
        }
        c.open += 1;
        Ok(Permit {
            tracker: self.clone(),
            ip: per_ip.then_some(ip),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open
    }

    /// The server-wide cap.
    pub fn max(&self) -> usize {
        self.0.max
    }

    /// Resolves once at most `n` connections are open.
    pub async fn until_open_at_most(&self, n: usize) {
        loop {
            let released = self.0.released.notified();
            let mut released = std::pin::pin!(released);
            released.as_mut().enable();
            if self.open() <= n {
                return;
            }
            released.await;
        }
    }
}

/// Adds the connection's [`Peer`] to every request, then hands it to warp.
#[derive(Clone)]
struct WithPeer<S> {
    inner: S,
    peer: SocketAddr,
}

impl<S> hyper::service::Service<Request<Incoming>> for WithPeer<S>
where
    S: tower_service::Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = S::Future;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(Peer(self.peer));
        // warp's service is always ready (its poll_ready returns Ready at
        // once), so calling without poll_ready is what hyper-util does too.
        self.inner.clone().call(req)
    }
}

/// What the accept loop needs besides the listener and the routes.
pub struct AcceptConfig {
    pub limits: Arc<Limits>,
    pub counters: Arc<Counters>,
    pub tracker: Tracker,
    /// Refusals answered at once, at most.
    pub max_refusing: usize,
    pub lingering: Lingering,
    /// Take some requests before hyper does (the fan-out's SSE and
    /// WebSocket doors): the first that wants a head is offered it.
    pub handoffs: Vec<Arc<dyn Handoff>>,
}

/// Largest request head a [`Handoff`] is offered; longer ones go to hyper.
const SNIFF_BYTES: usize = 4 * 1024;

/// Offers the connection's first request to the handoffs: `None` when one
/// took it (or the head never came), else the connection for hyper.
async fn offer(
    conn: Conn,
    handoffs: &[Arc<dyn Handoff>],
    config: &AcceptConfig,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Conn> {
    let mut buf = vec![0u8; SNIFF_BYTES];
    let peeked = tokio::select! {
        p = tokio::time::timeout(config.limits.request_timeout, conn.peek(&mut buf)) => p,
        _ = crate::clock::until_shutdown(shutdown) => return None,
    };
    let n = match peeked {
        Ok(Ok(n)) => n,
        Ok(Err(_)) => return None,
        Err(_) => {
            bump(&config.counters.header_timeouts);
            debug!("no request head within {:?}", config.limits.request_timeout);
            return None;
        }
    };
    // A head that came in pieces, or is not one the handoff wants, is
    // hyper's: it reads the same bytes, nothing was consumed.
    let Some(head) = Head::parse(&buf[..n]) else {
        return Some(conn);
    };
    drop(buf);
    match handoffs.iter().find(|h| h.wants(&head)) {
        Some(h) => match h.take(head, conn).await {
            Taken::Yes => None,
            Taken::No(conn) => Some(conn),
        },
        None => Some(conn),
    }
}

/// Accepts connections on `listener` and serves `service` on each until
/// `shutdown` turns true, then shuts down gracefully (see the module docs).
pub async fn run<S>(
    listener: TcpListener,
    service: S,
    config: AcceptConfig,
    mut shutdown: watch::Receiver<bool>,
) where
    S: tower_service::Service<Request<Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let config = Arc::new(config);
    let refusing = Arc::new(AtomicUsize::new(0));
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = crate::clock::until_shutdown(&mut shutdown) => break,
            a = listener.accept() => a,
        };
        // Finished connections leave the set here, so it holds only open ones.
        while conns.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors (EMFILE/ENFILE) or memory: wait a
                // little for connections to close instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            debug!(%peer, error = %e, "could not set TCP_NODELAY");
        }
        match config.tracker.admit(peer.ip()) {
            Ok(permit) => {
                bump(&config.counters.accepted);
                let conn = Conn::new(
                    stream,
                    Some(permit),
                    config.limits.write_stall_timeout,
                    config.counters.clone(),
                    config.lingering.clone(),
                );
                let svc = WithPeer {
                    inner: service.clone(),
                    peer,
                };
                let span = debug_span!("conn", %peer);
                conns.spawn(
                    serve_conn(conn, svc, config.clone(), shutdown.clone()).instrument(span),
                );
            }
            Err(refusal) => {
                let counter = match refusal {
                    Refusal::ServerFull => &config.counters.refused_server_full,
                    Refusal::PerIp => &config.counters.refused_per_ip,
                };
                bump(counter);
                debug!(%peer, ?refusal, "connection refused");
                if refusing.fetch_add(1, Ordering::AcqRel) >= config.max_refusing {
                    refusing.fetch_sub(1, Ordering::AcqRel);
                    bump(&config.counters.refused_unanswered);
                    continue;
                }
                let max = match refusal {
                    Refusal::ServerFull => config.tracker.max(),
                    Refusal::PerIp => config.limits.max_connections_per_ip,
                };
                let conn = Conn::new(
                    stream,
                    None,
                    REFUSAL_TIMEOUT,
                    config.counters.clone(),
                    config.lingering.clone(),
                );
                let refusing = refusing.clone();
                conns.spawn(async move {
                    refuse(conn, refusal, max).await;
                    refusing.fetch_sub(1, Ordering::AcqRel);
                });
            }
        }
    }
    drop(listener);
    debug!(open = config.tracker.open(), "stopped accepting");
    let grace = config.limits.shutdown_grace;
    if tokio::time::timeout(grace, config.tracker.until_open_at_most(0))
        .await
        .is_err()
    {
        warn!(
            open = config.tracker.open(),
            "shutdown grace of {grace:?} is over: dropping the connections still open"
        );
        conns.abort_all();
        for h in &config.handoffs {
            h.abandon();
        }
    }
    while conns.join_next().await.is_some() {}
}

async fn serve_conn<S>(
    conn: Conn,
    svc: WithPeer<S>,
    config: Arc<AcceptConfig>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: tower_service::Service<Request<Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = if config.handoffs.is_empty() {
        conn
    } else {
        match offer(conn, &config.handoffs, &config, &mut shutdown).await {
            Some(conn) => conn,
            None => return,
        }
    };
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.limits.request_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let served = http
        .serve_connection(TokioIo::new(conn), svc)
        .with_upgrades();
    let mut served = std::pin::pin!(served);
    let result = tokio::select! {
        r = served.as_mut() => r,
        _ = crate::clock::until_shutdown(&mut shutdown) => {
            // Finish the request in flight (every transport ends its
            // stream on shutdown), then close instead of keeping alive.
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            bump(&config.counters.header_timeouts);
            debug!("no request head within {:?}", config.limits.request_timeout);
        } else {
            debug!(error = %e, "connection ended with an error");
        }
    }
}

/// Answers the request of a refused connection with why, then closes.
async fn refuse(conn: Conn, refusal: Refusal, max: usize) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(REFUSAL_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(false);
    let svc = hyper::service::service_fn(move |_req: Request<Incoming>| {
        std::future::ready(Ok::<_, Infallible>(refusal.response(max)))
    });
    let _ = http.serve_connection(TokioIo::new(conn), svc).await;
}

/// Errors of one connection that `accept` reports; the listener is fine.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_every_connection_and_free_places_on_drop() {
        let t = Tracker::new(3, 2, true);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = t.admit(a).unwrap();
        let p2 = t.admit(a).unwrap();
        assert_eq!(t.admit(a).unwrap_err(), Refusal::PerIp);
        let p3 = t.admit(b).unwrap();
        assert_eq!(t.admit(b).unwrap_err(), Refusal::ServerFull);
        assert_eq!(t.open(), 3);
        drop(p1);
        assert_eq!(t.open(), 2);
        let p4 = t.admit(a).unwrap();
        drop((p2, p3, p4));
        assert_eq!(t.open(), 0);
        assert!(t.lock().by_ip.is_empty(), "no address left behind");
    }

    #[test]
    fn loopback_is_exempt_from_the_per_address_cap_unless_asked() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let t = Tracker::new(10, 1, false);
        let _a = t.admit(lo).unwrap();
        let _b = t.admit(lo).unwrap();
        let _c = t.admit(mapped).unwrap();
        assert_eq!(
            t.admit("10.0.0.1".parse().unwrap()).unwrap_err(),
            Refusal::PerIp,
            "an IPv4-mapped address counts as the IPv4 one"
        );
        let strict = Tracker::new(10, 1, true);
        let _d = strict.admit(lo).unwrap();
        assert_eq!(strict.admit(lo).unwrap_err(), Refusal::PerIp);
    }

    #[tokio::test]
    async fn waiting_for_connections_to_close_wakes_on_the_last_one() {
        let t = Tracker::new(10, 0, false);
        let p = t.admit("10.0.0.1".parse().unwrap()).unwrap();
        let waiter = tokio::spawn({
            let t = t.clone();
            async move { t.until_open_at_most(0).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(p);
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
