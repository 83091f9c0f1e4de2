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
//! upstream: pings, chat and inputs are dropped; `resync` reopens the
//! stream without `Last-Event-ID`, which starts with a fresh welcome.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use protocol::api::ApiError;
use protocol::sse::{Item, Parser, RETRY_MS, SseMsg, decode_event};
use protocol::{ClientMsg, Hello, Role, ServerMsg};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{ConnectError, Disconnect, LinkEvent, Target};

/// How long opening the stream (up to the response head) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnects in a row (each after `retry`) before the link gives up.
const RECONNECT_TRIES: u32 = 5;
/// Messages buffered between the reader and the client task; a consumer
/// this far behind stops the reading, and the server resyncs us.
const BUFFER: usize = 256;

/// The SSE URL of a room: `ws` becomes `http`, `wss` becomes `https`, a
/// bare `host:port` gets `http://`; the room id is percent-encoded.
pub fn events_url(server: &str, room: &str) -> Result<String, ConnectError> {
    let ws = super::ws_url(server, room)?;
    let (scheme, rest) = ws
        .split_once("://")
        .ok_or_else(|| ConnectError::InvalidUrl(server.to_string()))?;
    let http = if scheme == "wss" { "https" } else { "http" };
    let base = rest
        .strip_suffix("/ws")
        .ok_or_else(|| ConnectError::InvalidUrl(server.to_string()))?;
    Ok(format!("{http}://{base}/events"))
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// An open SSE stream to a room.
pub struct SseLink {
    events: mpsc::Receiver<LinkEvent>,
    resync: mpsc::UnboundedSender<()>,
    reader: JoinHandle<()>,
}

impl Drop for SseLink {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn open(
    client: &reqwest::Client,
    url: &str,
    last_event_id: Option<&str>,
) -> Result<Body, ConnectError> {
    let mut req = client
        .get(url)
        .header("accept", "text/event-stream")
        .header("cache-control", "no-cache");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let resp = match tokio::time::timeout(CONNECT_TIMEOUT, req.send()).await {
        Err(_) => {
            return Err(ConnectError::Unreachable(format!(
                "no answer from {url} within {CONNECT_TIMEOUT:?}"
            )));
        }
        Ok(Err(e)) => return Err(ConnectError::Unreachable(format!("{url}: {e}"))),
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    if !status.is_success() {
        let body = tokio::time::timeout(CONNECT_TIMEOUT, resp.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let api = serde_json::from_slice::<ApiError>(&body).ok();
        return Err(ConnectError::Http {
            status: status.as_u16(),
            code: api.as_ref().map(|a| a.code.clone()),
            message: api.map_or_else(
                || {
                    status
                        .canonical_reason()
                        .unwrap_or("HTTP error")
                        .to_string()
                },
                |a| a.error,
            ),
        });
    }
    Ok(Box::pin(resp.bytes_stream()))
}

impl SseLink {
    /// Opens the stream. Only spectators can use SSE (it has no upstream).
    pub async fn connect(target: &Target, hello: &Hello) -> Result<SseLink, ConnectError> {
        if hello.role != Role::Spectator {
            return Err(ConnectError::Unsupported(
                "the sse transport can only spectate (use ws to play)".into(),
            ));
        }
        let url = events_url(&target.server, &target.room)?;
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ConnectError::Unreachable(e.to_string()))?;
        let body = open(&client, &url, None).await?;
        let (tx, events) = mpsc::channel(BUFFER);
        let (resync, resync_rx) = mpsc::unbounded_channel();
        let reader = Reader {
            client,
            url,
            last_event_id: String::new(),
            retry: Duration::from_millis(RETRY_MS),
            events: tx,
            resync: resync_rx,
        };
        let reader = tokio::spawn(reader.run(body));
        Ok(SseLink {
            events,
            resync,
            reader,
        })
    }

    /// SSE has no upstream: a `resync` reopens the stream for a fresh
    /// snapshot; everything else is dropped.
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), Disconnect> {
        if let ClientMsg::Resync {} = msg {
            self.resync
                .send(())
                .map_err(|_| Disconnect::Lost("the stream reader has ended".into()))?;
        }
        Ok(())
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
                Ok(b) => body = b,
                Err(e) => {
                    let d = Disconnect::Lost(format!("stream lost and not resumed: {e}"));
                    let _ = self.events.send(LinkEvent::Closed(d)).await;
                    return;
                }
            }
        }
    }

    async fn reconnect(&mut self, mut wait: Duration, resume: bool) -> Result<Body, ConnectError> {
        let mut tries = 0;
        loop {
            tokio::time::sleep(wait).await;
            let id =
                (resume && !self.last_event_id.is_empty()).then_some(self.last_event_id.as_str());
            match open(&self.client, &self.url, id).await {
                Ok(b) => return Ok(b),
                Err(
                    e @ ConnectError::Http {
                        status: 400..=499, ..
                    },
                ) => return Err(e),
                Err(e) => {
                    tries += 1;
                    if tries >= RECONNECT_TRIES {
                        return Err(e);
                    }
                    wait = self.retry;
                }
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
                        Some(reason) => End::Final(Disconnect::Closed { code: 1001, reason }),
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
                            closing = Some(e.message.clone());
                        }
                        self.deliver(msg).await
                    }
                    Ok(SseMsg::Score(_) | SseMsg::Unknown) => true,
                };
                if !delivered {
                    return End::ConsumerGone;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_map_to_events_urls() {
        assert_eq!(
            events_url("http://127.0.0.1:7878", "lobby").unwrap(),
            "http://127.0.0.1:7878/rooms/lobby/events"
        );
        assert_eq!(
            events_url("ws://h:1/", "a b").unwrap(),
            "http://h:1/rooms/a%20b/events"
        );
        assert_eq!(
            events_url("https://example.org", "duel").unwrap(),
            "https://example.org/rooms/duel/events"
        );
        assert!(events_url("ftp://h", "lobby").is_err());
    }
}
