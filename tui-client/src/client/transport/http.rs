//! The long-poll and short-poll transports: a session over plain HTTP
//! requests (`/rooms/{room}/sessions`), for networks that strip WebSocket
//! upgrades or kill idle streams.
//!
//! Two background tasks per link keep [`HttpLink::recv`] cancel-safe:
//! - the poller asks `GET .../poll?after=N` and hands messages on in seq
//!   order. A request that fails (reset, cut, response lost) is asked again
//!   with the same `after`, so the server re-sends what did not arrive;
//!   seqs at or below `after` are dropped as duplicates. That is the resume
//!   of this transport: nothing is lost, duplicated or reordered while the
//!   server keeps the session.
//! - the sender numbers client messages (client seq from 1) and posts every
//!   one not yet acknowledged until the server's `applied` covers it; the
//!   server applies each seq once and in order, so re-sends are harmless.
//!
//! When the server no longer knows the session (404) the link ends and the
//! client task joins again with its token, which resumes the same snake.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use protocol::api::ApiError;
use protocol::codec::{self, Format};
use protocol::poll::{PollBatch, SendAck, SendBatch, Sequenced};
use protocol::{ClientMsg, ErrorMsg, Hello, ServerMsg};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{ConnectError, Disconnect, LinkEvent, Target, Traffic};

/// How long opening a session may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a long poll asks the server to hold.
pub const LONG_POLL_WAIT: Duration = Duration::from_secs(25);
/// Extra time a poll request may take beyond its hold before it is retried.
const REQUEST_SLACK: Duration = Duration::from_secs(10);
/// How long requests may keep failing in a row before the link is lost.
const GIVE_UP_AFTER: Duration = Duration::from_secs(10);
/// First delay after a failed request; doubles up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(20);
const MAX_RETRY_DELAY: Duration = Duration::from_millis(500);
/// Events buffered between the poller and the client task.
const EVENT_BUFFER: usize = 256;

/// Long poll (held requests) or short poll (`wait=0` every `interval`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollMode {
    /// Each poll is held by the server up to `wait` when there is nothing new.
    Long {
        /// The hold asked for.
        wait: Duration,
    },
    /// Each poll returns at once; the next one goes after `interval`.
    Short {
        /// Time between polls.
        interval: Duration,
    },
}

/// The session URL prefix of a room: `{server}/rooms/{room}/sessions`.
pub fn sessions_url(server: &str, room: &str) -> Result<String, ConnectError> {
    // The WebSocket URL rules (scheme, host, room encoding) hold here too.
    let ws = super::ws_url(server, room)?;
    let http = if let Some(rest) = ws.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = ws.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        ws
    };
    Ok(format!("{}/sessions", http.trim_end_matches("/ws")))
}

/// An open polled session.
pub struct HttpLink {
    events: mpsc::Receiver<LinkEvent>,
    outgoing: Option<mpsc::UnboundedSender<ClientMsg>>,
    poller: JoinHandle<()>,
    sender: Option<JoinHandle<()>>,
    closed: bool,
}

impl Drop for HttpLink {
    fn drop(&mut self) {
        self.poller.abort();
        if let Some(s) = &self.sender {
            s.abort();
        }
    }
}

/// What every request of one session needs.
#[derive(Clone)]
struct Conn {
    client: reqwest::Client,
    /// `{server}/rooms/{room}/sessions/{session}`.
    url: String,
    token: String,
    format: Format,
    traffic: Arc<Traffic>,
}

impl Conn {
    fn get(&self, url: String) -> reqwest::RequestBuilder {
        self.client
            .get(url)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, self.format.content_type())
    }
}

/// A non-2xx answer as the link sees it.
fn http_error(status: u16, body: &[u8]) -> (Option<String>, String) {
    match serde_json::from_slice::<ApiError>(body) {
        Ok(e) => (Some(e.code), e.error),
        Err(_) => (None, format!("HTTP {status}")),
    }
}

/// What a failed session call means for the link; `None`: retry.
fn end_of_link(status: u16, body: &[u8]) -> Option<Disconnect> {
    let (code, message) = http_error(status, body);
    Some(match status {
        // The server forgot the session: rejoin (with the token: resume).
        404 => Disconnect::Lost(format!("session ended on the server: {message}")),
        401 => Disconnect::Closed {
            code: 1008,
            reason: message,
        },
        503 if code.as_deref() == Some("shutting_down") => Disconnect::Closed {
            code: 1001,
            reason: message,
        },
        400 | 413 => Disconnect::BadFrame(message),
        _ => return None,
    })
}

/// Failures in a row, with the backoff between them.
struct Retry {
    since: Option<tokio::time::Instant>,
    delay: Duration,
}

impl Retry {
    fn new() -> Retry {
        Retry {
            since: None,
            delay: FIRST_RETRY_DELAY,
        }
    }
    fn ok(&mut self) {
        *self = Retry::new();
    }
    /// Waits before the next try; `false` once failing for too long.
    async fn failed(&mut self) -> bool {
        let since = *self.since.get_or_insert_with(tokio::time::Instant::now);
        if since.elapsed() >= GIVE_UP_AFTER {
            return false;
        }
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(MAX_RETRY_DELAY);
        true
    }
}

impl HttpLink {
    /// Opens a session with `hello` and starts polling in `mode`.
    pub async fn connect(
        target: &Target,
        hello: &Hello,
        mode: PollMode,
    ) -> Result<HttpLink, ConnectError> {
        let sessions = sessions_url(&target.server, &target.room)?;
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ConnectError::Unreachable(e.to_string()))?;
        let format = target.format;
        let body = codec::encode(format, &ClientMsg::Hello(hello.clone()));
        let open = client
            .post(&sessions)
            .header(reqwest::header::CONTENT_TYPE, format.content_type())
            .header(reqwest::header::ACCEPT, format.content_type())
            .timeout(CONNECT_TIMEOUT)
            .body(body);
        let (status, body) = target
            .traffic
            .exchange(&client, open)
            .await
            .map_err(|e| ConnectError::Unreachable(format!("{sessions}: {e}")))?;
        let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
        if status != 201 {
            let (code, message) = http_error(status, &body);
            if status == 404 && code.as_deref() == Some("unknown_session") {
                // Like the WebSocket: an error then a close, so the client
                // task forgets the stale token and joins afresh.
                let _ = events_tx.try_send(LinkEvent::Msg(ServerMsg::Error(ErrorMsg {
                    code: "unknown_session".into(),
                    message: message.clone(),
                })));
                let _ = events_tx.try_send(LinkEvent::Closed(Disconnect::Closed {
                    code: 1008,
                    reason: message,
                }));
                return Ok(HttpLink {
                    events,
                    outgoing: None,
                    poller: tokio::spawn(async {}),
                    sender: None,
                    closed: false,
                });
            }
            return Err(ConnectError::Http {
                status,
                code,
                message,
            });
        }
        // The welcome comes in the session's format whatever the body was.
        let welcome = codec::decode::<ServerMsg>(format, &body)
            .map_err(|e| ConnectError::Unreachable(format!("bad welcome: {e}")))?;
        let ServerMsg::Welcome(w) = &welcome else {
            return Err(ConnectError::Unreachable(
                "the answer was not a welcome".into(),
            ));
        };
        let conn = Conn {
            client,
            url: format!("{sessions}/{}", w.session),
            token: w.token.clone(),
            format,
            traffic: target.traffic.clone(),
        };
        // Invariant: the channel is new and has room for the welcome.
        let _ = events_tx.try_send(LinkEvent::Msg(welcome));
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let sender = tokio::spawn(send_loop(conn.clone(), out_rx, events_tx.clone()));
        let poller = tokio::spawn(poll_loop(conn, mode, events_tx));
        Ok(HttpLink {
            events,
            outgoing: Some(out_tx),
            poller,
            sender: Some(sender),
            closed: false,
        })
    }

    /// Queues a message for the sender task (never waits for the network).
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), Disconnect> {
        match &self.outgoing {
            Some(tx) if tx.send(msg.clone()).is_ok() => Ok(()),
            _ => Err(Disconnect::Lost("the session's sender has stopped".into())),
        }
    }

    /// The next server message or the end of the link. Cancel-safe: it only
    /// awaits a channel.
    pub async fn recv(&mut self) -> LinkEvent {
        if self.closed {
            return LinkEvent::Closed(Disconnect::Lost("link already closed".into()));
        }
        let ev = self.events.recv().await.unwrap_or_else(|| {
            LinkEvent::Closed(Disconnect::Lost("the session's poller stopped".into()))
        });
        if matches!(ev, LinkEvent::Closed(_)) {
            self.closed = true;
        }
        ev
    }

    /// Lets the sender deliver what is queued (a leave, typically), bounded
    /// to a second, then stops both tasks.
    pub async fn close(&mut self) {
        self.outgoing = None;
        if let Some(sender) = self.sender.take() {
            let abort = sender.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), sender)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        self.poller.abort();
        self.closed = true;
    }
}

async fn poll_loop(conn: Conn, mode: PollMode, events: mpsc::Sender<LinkEvent>) {
    let (wait, interval) = match mode {
        PollMode::Long { wait } => (wait, Duration::ZERO),
        PollMode::Short { interval } => (Duration::ZERO, interval),
    };
    let mut after = 0u64;
    let mut retry = Retry::new();
    loop {
        let url = format!(
            "{}/poll?after={after}&wait={}",
            conn.url,
            wait.as_secs_f64()
        );
        let request = conn.get(url).timeout(wait + REQUEST_SLACK);
        let failure = match conn.traffic.exchange(&conn.client, request).await {
            Err(e) => e.to_string(),
            Ok((200, body)) => match deliver(conn.format, &body, &mut after, &events).await {
                Ok(true) => {
                    retry.ok();
                    if !interval.is_zero() {
                        tokio::time::sleep(interval).await;
                    }
                    continue;
                }
                Ok(false) => return,
                Err(d) => {
                    let _ = events.send(LinkEvent::Closed(d)).await;
                    return;
                }
            },
            Ok((status, body)) => match end_of_link(status, &body) {
                Some(d) => {
                    let _ = events.send(LinkEvent::Closed(d)).await;
                    return;
                }
                None => format!("HTTP {status}"),
            },
        };
        tracing::debug!(after, %failure, "poll failed; asking again");
        if !retry.failed().await {
            let why = format!("polls kept failing for {GIVE_UP_AFTER:?}: {failure}");
            let _ = events.send(LinkEvent::Closed(Disconnect::Lost(why))).await;
            return;
        }
    }
}

/// Hands on the messages of a poll answer after `after`; `Ok(false)` when
/// the client task is gone.
async fn deliver(
    format: Format,
    body: &Bytes,
    after: &mut u64,
    events: &mpsc::Sender<LinkEvent>,
) -> Result<bool, Disconnect> {
    let batch: PollBatch =
        codec::decode(format, body).map_err(|e| Disconnect::BadFrame(e.to_string()))?;
    for m in batch.messages {
        // An answer to a superseded or repeated poll: already delivered.
        if m.seq <= *after {
            continue;
        }
        if m.seq != *after + 1 {
            return Err(Disconnect::BadFrame(format!(
                "session seq jumped from {after} to {}",
                m.seq
            )));
        }
        *after = m.seq;
        if events.send(LinkEvent::Msg(m.msg)).await.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn send_loop(
    conn: Conn,
    mut outgoing: mpsc::UnboundedReceiver<ClientMsg>,
    events: mpsc::Sender<LinkEvent>,
) {
    let url = format!("{}/send", conn.url);
    let mut unacked: VecDeque<Sequenced<ClientMsg>> = VecDeque::new();
    let mut next_seq = 1u64;
    let mut retry = Retry::new();
    loop {
        if unacked.is_empty() {
            // Ends when the link is closed or dropped, after the last flush.
            let Some(msg) = outgoing.recv().await else {
                return;
            };
            unacked.push_back(Sequenced { seq: next_seq, msg });
            next_seq += 1;
        }
        while let Ok(msg) = outgoing.try_recv() {
            unacked.push_back(Sequenced { seq: next_seq, msg });
            next_seq += 1;
        }
        let batch = SendBatch {
            messages: unacked.iter().cloned().collect(),
        };
        let request = conn
            .client
            .post(&url)
            .bearer_auth(&conn.token)
            .header(reqwest::header::CONTENT_TYPE, conn.format.content_type())
            .timeout(REQUEST_SLACK)
            .body(codec::encode(conn.format, &batch));
        let failure = match conn.traffic.exchange(&conn.client, request).await {
            Err(e) => e.to_string(),
            Ok((200, body)) => match codec::decode::<SendAck>(conn.format, &body) {
                Ok(ack) => {
                    retry.ok();
                    while unacked.front().is_some_and(|m| m.seq <= ack.applied) {
                        unacked.pop_front();
                    }
                    continue;
                }
                Err(e) => {
                    let d = Disconnect::BadFrame(e.to_string());
                    let _ = events.send(LinkEvent::Closed(d)).await;
                    return;
                }
            },
            Ok((status, body)) => match end_of_link(status, &body) {
                Some(d) => {
                    let _ = events.send(LinkEvent::Closed(d)).await;
                    return;
                }
                None => format!("HTTP {status}"),
            },
        };
        tracing::debug!(%failure, pending = unacked.len(), "send failed; sending again");
        if !retry.failed().await {
            let why = format!("sends kept failing for {GIVE_UP_AFTER:?}: {failure}");
            let _ = events.send(LinkEvent::Closed(Disconnect::Lost(why))).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_urls_follow_the_server_url() {
        assert_eq!(
            sessions_url("http://127.0.0.1:7878", "lobby").unwrap(),
            "http://127.0.0.1:7878/rooms/lobby/sessions"
        );
        assert_eq!(
            sessions_url("ws://h:1/", "a b").unwrap(),
            "http://h:1/rooms/a%20b/sessions"
        );
        assert!(sessions_url("ftp://h", "lobby").is_err());
    }

    #[test]
    fn what_a_failed_call_means() {
        let body = br#"{"error":"gone","code":"unknown_session"}"#;
        assert!(matches!(end_of_link(404, body), Some(Disconnect::Lost(_))));
        assert!(matches!(
            end_of_link(401, b"x"),
            Some(Disconnect::Closed { code: 1008, .. })
        ));
        let down = br#"{"error":"bye","code":"shutting_down"}"#;
        assert!(matches!(
            end_of_link(503, down),
            Some(Disconnect::Closed { code: 1001, .. })
        ));
        assert_eq!(
            end_of_link(502, b"bad gateway"),
            None,
            "proxies fail: retry"
        );
    }
}
