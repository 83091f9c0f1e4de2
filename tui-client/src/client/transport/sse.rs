//! The SSE transport, for spectators: `GET {server}/rooms/{room}/events`
//! read as a streaming body and parsed incrementally with
//! [`protocol::sse::Parser`] (multi-line data, CR/LF/CRLF, comments,
//! `retry`). It yields the same [`ServerMsg`]s a WebSocket does: the
//! `welcome` event becomes `Welcome` then `Snapshot`; `tick`, `snapshot`,
//! `chat` and `error` map one to one; `score` is left to the world itself.
//!
//! Like a browser's `EventSource`, it reconnects on its own after a drop,
//! waiting the server's `retry` and sending `Last-Event-ID`, so the server
//! resumes right after the last tick received: the consumer sees no gap and
//! no second welcome. Only when those reconnects fail does the link end
//! (and the client task's own reconnect policy take over). There is no
//! upstream: chat and inputs are dropped; `resync` reopens the stream
//! without `Last-Event-ID`, which starts with a fresh welcome; a `ping`
//! becomes a clock probe, `GET /api/time`, whose answer comes back as a
//! `pong` like on every other transport, so the lag meter gets its RTT
//! and clock offset the same way.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use protocol::api::ServerTime;
use protocol::sse::{Item, Parser, RETRY_MS, SseMsg, decode_event};
use protocol::{ClientMsg, Hello, Pong, Role, ServerMsg};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::traffic::is_chunked;
use super::{ConnectError, Disconnect, LinkEvent, Target, Traffic};
use crate::client::backoff::{Backoff, Limit, Streak};

/// How long opening the stream (up to the response head) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnects in a row (each after `retry`) before the link gives up.
const RECONNECT_TRIES: u32 = 5;
/// Messages buffered between the reader and the client task; a consumer
/// this far behind stops the reading, and the server resyncs us.
const BUFFER: usize = 256;

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// An open SSE stream to a room.
pub struct SseLink {
    events: mpsc::Receiver<LinkEvent>,
    resync: mpsc::UnboundedSender<()>,
    probes: mpsc::UnboundedSender<u64>,
    reader: JoinHandle<()>,
    prober: JoinHandle<()>,
}

impl Drop for SseLink {
    fn drop(&mut self) {
        self.reader.abort();
        self.prober.abort();
    }
}

async fn open(
    client: &reqwest::Client,
    url: &str,
    last_event_id: Option<&str>,
    traffic: &Arc<Traffic>,
) -> Result<Body, ConnectError> {
    let mut req = client
        .get(url)
        .header("accept", "text/event-stream")
        .header("cache-control", "no-cache");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let req = req
        .build()
        .map_err(|e| ConnectError::InvalidUrl(format!("{url}: {e}")))?;
    traffic.request_sent(&req);
    let resp = match tokio::time::timeout(CONNECT_TIMEOUT, client.execute(req)).await {
        Err(_) => {
            return Err(ConnectError::Unreachable(format!(
                "no answer from {url} within {} s",
                CONNECT_TIMEOUT.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(ConnectError::Unreachable(format!("{url}: {e}"))),
        Ok(Ok(r)) => r,
    };
    traffic.response_head(&resp);
    let chunked = is_chunked(&resp);
    let status = resp.status();
    if !status.is_success() {
        let body = tokio::time::timeout(CONNECT_TIMEOUT, resp.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        traffic.body_piece(body.len(), chunked);
        return Err(ConnectError::http(status.as_u16(), &body));
    }
    let traffic = traffic.clone();
    Ok(Box::pin(resp.bytes_stream().inspect(move |piece| {
        if let Ok(b) = piece {
            traffic.body_piece(b.len(), chunked);
        }
    })))
}

/// Answers each ping `t` with a `pong` from `GET /api/time`: the round
/// trip an upstream message would take, and the server's clock.
async fn probe_loop(
    client: reqwest::Client,
    url: String,
    traffic: Arc<Traffic>,
    mut pings: mpsc::UnboundedReceiver<u64>,
    events: mpsc::Sender<LinkEvent>,
) {
    while let Some(t) = pings.recv().await {
        let request = client.get(&url).timeout(CONNECT_TIMEOUT);
        let time = match traffic.exchange(&client, request).await {
            Ok((200, body)) => serde_json::from_slice::<ServerTime>(&body).ok(),
            Ok((status, _)) => {
                tracing::debug!(status, "clock probe refused");
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "clock probe failed");
                None
            }
        };
        let Some(time) = time else { continue };
        let pong = ServerMsg::Pong(Pong {
            t,
            server_time_us: time.server_time_us,
        });
        if events.send(LinkEvent::Msg(pong)).await.is_err() {
            return;
        }
    }
}

impl SseLink {
    /// Opens the stream. Only spectators can use SSE (it has no upstream).
    pub async fn connect(target: &Target, hello: &Hello) -> Result<SseLink, ConnectError> {
        if hello.role != Role::Spectator {
            return Err(ConnectError::Unsupported(
                "the sse transport can only spectate (use ws to play)".into(),
            ));
        }
        let url = target.endpoint.events(&target.room)?;
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ConnectError::Unreachable(e.to_string()))?;
        let time = target.endpoint.time();
        let traffic = target.traffic.clone();
        let body = open(&client, &url, None, &traffic).await?;
        let (tx, events) = mpsc::channel(BUFFER);
        let (resync, resync_rx) = mpsc::unbounded_channel();
        let (probes, pings) = mpsc::unbounded_channel();
        let prober = tokio::spawn(probe_loop(
            client.clone(),
            time,
            traffic.clone(),
            pings,
            tx.clone(),
        ));
        let reader = Reader {
            client,
            url,
            last_event_id: String::new(),
            retry: Duration::from_millis(RETRY_MS),
            events: tx,
            resync: resync_rx,
            traffic,
        };
        let reader = tokio::spawn(reader.run(body));
        Ok(SseLink {
            events,
            resync,
            probes,
            reader,
            prober,
        })
    }

    /// SSE has no upstream: a `resync` reopens the stream for a fresh
    /// snapshot, a `ping` becomes a clock probe, the rest is dropped.
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), Disconnect> {
        fn gone<T>(_: T) -> Disconnect {
            Disconnect::Lost("the stream reader has ended".into())
        }
        match msg {
            ClientMsg::Resync {} => self.resync.send(()).map_err(gone),
            ClientMsg::Ping(p) => self.probes.send(p.t).map_err(gone),
            _ => Ok(()),
        }
    }

    /// The next message or the end of the link. Cancel-safe: it only
    /// awaits a channel.
    pub async fn recv(&mut self) -> LinkEvent {
        self.events.recv().await.unwrap_or_else(|| {
            LinkEvent::Closed(Disconnect::Lost("the stream reader has ended".into()))
        })
    }

    /// Stops reading.
    pub async fn close(&mut self) {
        self.reader.abort();
        self.prober.abort();
    }
}

/// How reading one response ended.
enum End {
    /// The consumer is gone: stop quietly.
    ConsumerGone,
    /// The link is over for good.
    Final(Disconnect),
    /// Reopen without `Last-Event-ID` (a resync was asked for).
    Resync,
    /// The connection dropped: reconnect with `Last-Event-ID`.
    Dropped(String),
}

/// The task behind an [`SseLink`]: the `EventSource` state machine.
struct Reader {
    client: reqwest::Client,
    url: String,
    /// Persists across reconnects, as the standard says.
    last_event_id: String,
    retry: Duration,
    events: mpsc::Sender<LinkEvent>,
    resync: mpsc::UnboundedReceiver<()>,
    traffic: Arc<Traffic>,
}

impl Reader {
    async fn run(mut self, mut body: Body) {
        loop {
            let (wait, resume) = match self.pump(&mut body).await {
                End::ConsumerGone => return,
                End::Final(d) => {
                    let _ = self.events.send(LinkEvent::Closed(d)).await;
                    return;
                }
                End::Resync => {
                    self.last_event_id.clear();
                    (Duration::ZERO, false)
                }
                End::Dropped(why) => {
                    tracing::debug!(%why, last_event_id = %self.last_event_id, "sse stream dropped");
                    (self.retry, true)
                }
            };
            match self.reconnect(wait, resume).await {
                Ok(b) => {
                    if resume {
                        self.traffic.resume();
                    }
                    body = b;
                }
                Err(e) => {
                    let d = Disconnect::Lost(format!("stream lost and not resumed: {e}"));
                    let _ = self.events.send(LinkEvent::Closed(d)).await;
                    return;
                }
            }
        }
    }

    /// Reopens the stream after `wait`, then on [`Backoff`] with the
    /// server's `retry` between tries.
    async fn reconnect(&mut self, wait: Duration, resume: bool) -> Result<Body, ConnectError> {
        let backoff = Backoff::constant(self.retry, Limit::Tries(RECONNECT_TRIES));
        let mut streak = Streak::default();
        let mut wait = wait;
        loop {
            tokio::time::sleep(wait).await;
            let id =
                (resume && !self.last_event_id.is_empty()).then_some(self.last_event_id.as_str());
            match open(&self.client, &self.url, id, &self.traffic).await {
                Ok(b) => return Ok(b),
                Err(
                    e @ ConnectError::Http {
                        status: 400..=499, ..
                    },
                ) => return Err(e),
                Err(e) => match backoff.next(&mut streak, std::time::Instant::now()) {
                    Some(delay) => wait = delay,
                    None => return Err(e),
                },
            }
        }
    }

    async fn deliver(&self, msg: ServerMsg) -> bool {
        self.events.send(LinkEvent::Msg(msg)).await.is_ok()
    }

    /// Reads one response until it ends.
    async fn pump(&mut self, body: &mut Body) -> End {
        // Events belong to the connection they arrived on.
        let mut parser = Parser::new();
        let mut closing: Option<String> = None;
        loop {
            let chunk = tokio::select! {
                c = body.next() => c,
                r = self.resync.recv() => return match r {
                    Some(()) => End::Resync,
                    None => End::ConsumerGone,
                },
            };
            let bytes = match chunk {
                Some(Ok(b)) => b,
                Some(Err(e)) => return End::Dropped(e.to_string()),
                None => {
                    return match closing {
                        Some(reason) => End::Final(Disconnect::ShuttingDown(reason)),
                        None => End::Dropped("the stream ended".into()),
                    };
                }
            };
            for item in parser.push(&bytes) {
                let ev = match item {
                    Item::Retry(ms) => {
                        self.retry = Duration::from_millis(ms);
                        continue;
                    }
                    Item::Comment(_) => continue,
                    Item::Event(ev) => ev,
                };
                if !ev.id.is_empty() {
                    self.last_event_id.clone_from(&ev.id);
                }
                let delivered = match decode_event(&ev) {
                    Err(e) => {
                        return End::Final(Disconnect::BadFrame(format!(
                            "{} event: {e}",
                            ev.event
                        )));
                    }
                    Ok(SseMsg::Welcome(w)) => {
                        let w = *w;
                        self.deliver(ServerMsg::Welcome(Box::new(w.welcome))).await
                            && self
                                .deliver(ServerMsg::Snapshot(Box::new(w.snapshot)))
                                .await
                    }
                    Ok(SseMsg::Server(msg)) => {
                        if let ServerMsg::Error(e) = &msg
                            && e.code == "shutting_down"
                        {
                            closing = Some(super::server_words(&e.message));
                        }
                        self.deliver(msg).await
                    }
                    Ok(SseMsg::Unknown) => true,
                };
                if !delivered {
                    return End::ConsumerGone;
                }
            }
        }
    }
}
