//! The long-poll and short-poll transports: a session over plain HTTP
//! requests (`/rooms/{room}/sessions`), for networks that strip WebSocket
//! upgrades or kill idle streams.
//!
//! Only bytes move here. Two background tasks per link keep
//! [`HttpLink::recv`] cancel-safe: the poller asks what
//! [`Poller`] says and hands on what it lets through; the sender posts what
//! [`Sender`] still holds. Their retry, dedup and seq rules are in `poll`.
//!
//! When the server no longer knows the session the link ends with
//! [`Disconnect::SessionUnknown`] and the client task joins again with its
//! token, which resumes the same snake.

use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::codec::{self, Format};
use protocol::{ClientMsg, Hello, ServerMsg};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::poll::{self, PollMode, Poller, Sender, Step};
use super::{ConnectError, Disconnect, LinkEvent, Target, Traffic};

/// How long opening a session may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Events buffered between the poller and the client task.
const EVENT_BUFFER: usize = 256;

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
    /// Sends a request of this session; the status and body, or why none came.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, bytes::Bytes), String> {
        let request = request
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, self.format.content_type());
        self.traffic
            .exchange(&self.client, request)
            .await
            .map_err(|e| e.to_string())
    }
}

impl HttpLink {
    /// Opens a session with `hello` and starts polling in `mode`.
    pub async fn connect(
        target: &Target,
        hello: &Hello,
        mode: PollMode,
    ) -> Result<HttpLink, ConnectError> {
        let sessions = target.endpoint.sessions(&target.room)?;
        // A cluster node that does not play the room sends us to the one
        // that does: not followed here, but handed up as `Moved`, so the
        // whole session (and any resume) talks to that node directly.
        let moved = Arc::new(std::sync::Mutex::new(None::<String>));
        let seen = moved.clone();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(attempt.url().to_string());
                attempt.stop()
            }))
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
        if matches!(status, 307 | 308) {
            let location = moved.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(location) = location {
                return Err(ConnectError::Moved(location));
            }
        }
        let w = poll::opened(format, status, &body)?;
        let conn = Conn {
            client,
            url: target.endpoint.session(&target.room, &w.session)?,
            token: w.token.clone(),
            format,
            traffic: target.traffic.clone(),
        };
        let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
        // Invariant: the channel is new and has room for the welcome.
        let _ = events_tx.try_send(LinkEvent::Msg(ServerMsg::Welcome(w)));
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let sender = tokio::spawn(send_loop(conn.clone(), out_rx, events_tx.clone()));
        let poller = tokio::spawn(poll_loop(conn, Poller::new(mode), events_tx));
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

async fn poll_loop(conn: Conn, mut poller: Poller, events: mpsc::Sender<LinkEvent>) {
    loop {
        let (query, timeout) = poller.request();
        let request = conn
            .client
            .get(format!("{}/{query}", conn.url))
            .timeout(timeout);
        let step = match conn.exchange(request).await {
            Ok((status, body)) => poller.handle_answer(Instant::now(), conn.format, status, &body),
            Err(why) => poller.handle_failure(Instant::now(), why),
        };
        let (out, wait) = match settle(step, &events).await {
            Settled::Go(out, wait) => (out, wait),
            Settled::Again => continue,
            Settled::Over => return,
        };
        for msg in out {
            if events.send(LinkEvent::Msg(msg)).await.is_err() {
                return;
            }
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// What is left to do after [`settle`].
enum Settled<T> {
    /// Hand this on, then pause this long.
    Go(T, Duration),
    /// The retry delay has passed: send the request again.
    Again,
    /// The link is over (its end is reported).
    Over,
}

/// Carries out a step's retry delay or end, the same for both tasks.
async fn settle<T>(step: Step<T>, events: &mpsc::Sender<LinkEvent>) -> Settled<T> {
    match step {
        Step::Next { out, wait } => Settled::Go(out, wait),
        Step::Retry(delay) => {
            tracing::debug!(?delay, "request failed; sending it again");
            tokio::time::sleep(delay).await;
            Settled::Again
        }
        Step::End(d) => {
            let _ = events.send(LinkEvent::Closed(d)).await;
            Settled::Over
        }
    }
}

async fn send_loop(
    conn: Conn,
    mut outgoing: mpsc::UnboundedReceiver<ClientMsg>,
    events: mpsc::Sender<LinkEvent>,
) {
    let url = format!("{}/send", conn.url);
    let mut sender = Sender::default();
    loop {
        if sender.pending() == 0 {
            // Ends when the link is closed or dropped, after the last flush.
            let Some(msg) = outgoing.recv().await else {
                return;
            };
            sender.push(msg);
        }
        while let Ok(msg) = outgoing.try_recv() {
            sender.push(msg);
        }
        let Some(batch) = sender.batch() else {
            continue;
        };
        let request = conn
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, conn.format.content_type())
            .timeout(poll::REQUEST_SLACK)
            .body(codec::encode(conn.format, &batch));
        let step = match conn.exchange(request).await {
            Ok((status, body)) => sender.handle_answer(Instant::now(), conn.format, status, &body),
            Err(why) => sender.handle_failure(Instant::now(), why),
        };
        if let Settled::Over = settle(step, &events).await {
            return;
        }
    }
}
