//! The long-poll and short-poll transport: sessions over plain HTTP
//! requests, for networks that strip WebSocket upgrades or kill idle
//! streams.
//!
//! `POST /rooms/{room}/sessions` joins the room like a WebSocket hello and
//! keeps the room subscription in a [`PolledSession`]. Its frames are the
//! room's shared bytes, numbered by a [`log::ServerLog`] and kept until a
//! later poll's `after` acknowledges them, so a response lost on the way is
//! re-sent, never lost or reordered. `GET .../poll` holds until there is
//! something after `after` (or `wait` runs out); a newer poll of the same
//! session makes an older one return at once. `POST .../send` applies client
//! messages once, in client seq order ([`log::ClientLog`]). A session nobody
//! polls for its idle timeout ([`IDLE_TIMEOUT`] by default) is detached from its room: its snake waits the
//! resume grace for a hello with the token.

pub mod log;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use protocol::codec::{decode, encode};
use protocol::poll::{SendAck, SendBatch, encode_poll_batch};
use protocol::{ClientMsg, ErrorMsg, Format, PROTOCOL_VERSION, Pong, ServerMsg};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::debug;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::clock::now_us;
use crate::limits::Verdict;
use crate::limits::counters::bump;
use crate::limits::throttle::Throttle;
use crate::metrics::{ConnMetrics, SendMetrics, Transport};
use crate::outbox::Outbox;
use crate::room::{RoomCmd, RoomHandle, SubId};
use crate::routes::{AppState, error_reply};
use crate::session::{AdmitError, constant_time_eq};
use log::{ClientLog, ServerLog};

mod routes;
pub use routes::routes;

/// Default hold of a poll, in seconds.
pub const DEFAULT_WAIT_S: f64 = 25.0;
/// Longest hold a poll may ask for, in seconds.
pub const MAX_WAIT_S: f64 = 55.0;
/// A session with no poll in flight for this long is detached from its room
/// (the default of `ServerConfig::poll_idle_timeout`).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Most messages in one poll response.
const MAX_BATCH: usize = 256;
/// How often idle sessions are looked for.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// One polled session: a room subscription plus its delivery state.
#[derive(Debug)]
pub struct PolledSession {
    room: RoomHandle,
    sub: SubId,
    token: String,
    format: Format,
    outbox: Arc<Outbox>,
    state: Mutex<State>,
    /// Bumped by every poll, so an older poll knows it was superseded.
    polls: watch::Sender<u64>,
    /// Counts the session as open; its send counters are per response kind.
    _conn: ConnMetrics,
    held: SendMetrics,
    instant: SendMetrics,
}

#[derive(Debug)]
struct State {
    server: ServerLog,
    client: ClientLog<ClientMsg>,
    /// The session's input rate limit, over every client message applied.
    throttle: Throttle,
    /// Its chat rate limit.
    chat: Throttle,
    in_flight: u32,
    last_active: Instant,
    /// Detached, left or taken over: every call now answers 404.
    over: bool,
    /// When the oldest message taken from the room but not yet in any
    /// response was produced (for the send latency metric).
    unsent_since: Option<Instant>,
}

impl PolledSession {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock means a handler panicked mid-update of plain
        // counters and queues; they are still valid values.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves whatever the room queued into the numbered log, as far as the
    /// log has room (beyond that the room outbox overflows into a keyframe).
    fn take_from_outbox(&self, st: &mut State) {
        while !st.server.is_full() {
            match self.outbox.try_pop_queued() {
                Some(q) => {
                    st.unsent_since.get_or_insert(q.produced);
                    st.server.push(q.bytes);
                }
                None => break,
            }
        }
    }

    /// A poll response carrying `batch`, counted in the metrics of its kind.
    fn respond(&self, batch: &[(u64, Bytes)], next: u64, held: bool) -> Response {
        let body = encode_poll_batch(self.format, batch, next);
        if !batch.is_empty() {
            let m = if held { &self.held } else { &self.instant };
            match self.lock().unsent_since.take() {
                Some(since) => m.sent(batch.len() as u64, body.len(), since),
                // A re-sent batch: bytes again, but no new latency.
                None => {
                    m.frames.inc_by(batch.len() as u64);
                    m.bytes.inc_by(body.len() as u64);
                }
            }
        }
        bytes_reply(StatusCode::OK, self.format, body)
    }

    /// Checks a bearer token in constant time.
    fn authorized(&self, header: Option<&str>) -> bool {
        let given = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .unwrap_or_default();
        constant_time_eq(given.as_bytes(), self.token.as_bytes())
    }
}

type Key = (String, String);

/// Every polled session of a server, by room and session id.
#[derive(Clone, Debug)]
pub struct PolledSessions {
    map: Arc<Mutex<HashMap<Key, Arc<PolledSession>>>>,
    idle: Duration,
}

impl PolledSessions {
    /// An empty registry whose reaper detaches sessions idle for `idle` and
    /// runs until `shutdown` turns true.
    pub fn new(shutdown: watch::Receiver<bool>, idle: Duration) -> Self {
        let s = PolledSessions {
            map: Arc::default(),
            idle,
        };
        tokio::spawn(s.clone().reap(shutdown));
        s
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<PolledSession>>> {
        // The map stays valid even if a holder panicked.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, room: &str, session: &str) -> Option<Arc<PolledSession>> {
        self.lock()
            .get(&(room.to_string(), session.to_string()))
            .cloned()
    }

    /// The session a request names, when its `Authorization` header holds
    /// the session's token; else why not (404 first, then 401).
    fn authorized(
        &self,
        room: &str,
        session: &str,
        auth: Option<&str>,
    ) -> Result<Arc<PolledSession>, Refused> {
        let sess = self.get(room, session).ok_or(Refused::UnknownSession)?;
        if sess.authorized(auth) {
            Ok(sess)
        } else {
            Err(Refused::Unauthorized)
        }
    }

    /// Removes `s` if it is still the registered session of its key.
    fn remove(&self, room: &str, session: &str, s: &Arc<PolledSession>) {
        let mut map = self.lock();
        let key = (room.to_string(), session.to_string());
        if map.get(&key).is_some_and(|cur| Arc::ptr_eq(cur, s)) {
            map.remove(&key);
        }
    }

    /// Number of live polled sessions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Polls being answered or held right now, over every session.
    pub fn polls_in_flight(&self) -> usize {
        self.lock()
            .values()
            .map(|s| s.lock().in_flight as usize)
            .sum()
    }

    async fn reap(self, mut shutdown: watch::Receiver<bool>) {
        let mut every =
            tokio::time::interval(REAP_EVERY.min(self.idle / 2).max(Duration::from_millis(10)));
        loop {
            tokio::select! {
                _ = crate::clock::until_shutdown(&mut shutdown) => return,
                _ = every.tick() => {}
            }
            let now = Instant::now();
            let gone: Vec<(Key, Arc<PolledSession>)> = {
                let mut map = self.lock();
                let keys: Vec<Key> = map
                    .iter()
                    .filter(|(_, s)| {
                        let st = s.lock();
                        st.over
                            || (st.in_flight == 0
                                && now.saturating_duration_since(st.last_active) >= self.idle)
                            || (s.outbox.is_closed() && s.outbox.is_empty())
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                keys.into_iter()
                    .filter_map(|k| map.remove(&k).map(|s| (k, s)))
                    .collect()
            };
            for ((room, session), s) in gone {
                let already_over = std::mem::replace(&mut s.lock().over, true);
                debug!(room, session, already_over, "polled session expired");
                if !already_over {
                    s.room.send(RoomCmd::Detach { sub: s.sub }).await;
                }
                // Wake a poll that may still hold, so it answers 404 now.
                s.polls.send_modify(|g| *g += 1);
            }
        }
    }
}

/// The session format a request asks for: bincode when its body or its
/// accepted answer is `application/octet-stream`.
fn format_of(content_type: Option<&str>) -> Format {
    if content_type.is_some_and(|c| c.contains("application/octet-stream")) {
        Format::Bincode
    } else {
        Format::Json
    }
}

fn bytes_reply(status: StatusCode, format: Format, body: Bytes) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static(format.content_type()),
    );
    r.headers_mut().insert(
        warp::http::header::CACHE_CONTROL,
        warp::http::HeaderValue::from_static("no-store"),
    );
    r
}

fn unknown_session() -> Response {
    error_reply(
        StatusCode::NOT_FOUND,
        "unknown_session",
        "no such session (it expired, was taken over or left): join again with a hello, \
         with your token to resume",
    )
}

fn shutting_down() -> Response {
    error_reply(
        StatusCode::SERVICE_UNAVAILABLE,
        "shutting_down",
        "the server is shutting down",
    )
}

/// Why a request is not served for the session it names.
#[derive(Clone, Copy, Debug)]
enum Refused {
    UnknownSession,
    Unauthorized,
}

impl Refused {
    fn reply(self) -> Response {
        match self {
            Refused::UnknownSession => unknown_session(),
            Refused::Unauthorized => unauthorized(),
        }
    }
}

fn unauthorized() -> Response {
    error_reply(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong session token: send Authorization: Bearer <token from the welcome>",
    )
}

/// `POST /rooms/{room}/sessions`: a hello in, `201` and the welcome out.
pub async fn create(
    room_id: String,
    content_type: Option<String>,
    accept: Option<String>,
    body: Bytes,
    s: AppState,
) -> Response {
    let Some(room) = s.rooms.get(&room_id) else {
        return error_reply(
            StatusCode::NOT_FOUND,
            "unknown_room",
            format!(
                "no room named {:?}",
                protocol::text::sanitize_line(&room_id, 40)
            ),
        );
    };
    let body_format = format_of(content_type.as_deref());
    let format = match body_format {
        Format::Bincode => Format::Bincode,
        Format::Json => format_of(accept.as_deref()),
    };
    let hello = match decode::<ClientMsg>(body_format, &body) {
        Ok(ClientMsg::Hello(h)) => h,
        Ok(_) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                "bad_message",
                "the body must be a hello",
            );
        }
        Err(e) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                "bad_message",
                format!("bad hello: {e}"),
            );
        }
    };
    if hello.version != PROTOCOL_VERSION {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "version_mismatch",
            protocol::version_mismatch(hello.version),
        );
    }
    let joined = match room.join(hello, format).await {
        Err(_) => {
            return error_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "server shutting down",
            );
        }
        Ok(Err(e @ AdmitError::RoomFull(_))) => {
            return error_reply(StatusCode::CONFLICT, "room_full", e.to_string());
        }
        Ok(Err(e @ AdmitError::UnknownSession)) => {
            return error_reply(StatusCode::NOT_FOUND, "unknown_session", e.to_string());
        }
        Ok(Ok(j)) => j,
    };
    let metrics = s.rooms.metrics();
    let session = Arc::new(PolledSession {
        _conn: metrics.conn(Transport::Polled, &room_id),
        held: metrics.sender(Transport::Longpoll),
        instant: metrics.sender(Transport::Poll),
        room,
        sub: joined.sub,
        token: joined.welcome.token.clone(),
        format,
        outbox: joined.outbox,
        state: Mutex::new(State {
            server: ServerLog::default(),
            client: ClientLog::default(),
            throttle: s.limits.input_throttle(Instant::now()),
            chat: s.limits.chat_throttle(Instant::now()),
            in_flight: 0,
            last_active: Instant::now(),
            over: false,
            unsent_since: None,
        }),
        polls: watch::channel(0).0,
    });
    let key = (room_id, joined.welcome.session.clone());
    // The name is the room's sanitised one, never the hello's.
    debug!(room = %key.0, session = %key.1, sub = joined.sub, name = %joined.welcome.name, "polled session open");
    // A resume replaces the old entry; the room already closed its outbox.
    if let Some(old) = s.sessions.lock().insert(key, session) {
        old.lock().over = true;
        old.polls.send_modify(|g| *g += 1);
    }
    let welcome = encode(format, &ServerMsg::Welcome(Box::new(joined.welcome)));
    bytes_reply(StatusCode::CREATED, format, welcome)
}

/// Parsed `?after=N&wait=S`.
fn poll_params(q: &HashMap<String, String>) -> Result<(u64, Duration), String> {
    let bad = |m: String| m;
    let after = match q.get("after") {
        None => 0,
        Some(a) => a
            .parse::<u64>()
            .map_err(|_| bad(format!("after must be a sequence number, got {a:?}")))?,
    };
    let wait = match q.get("wait") {
        None => DEFAULT_WAIT_S,
        Some(w) => match w.parse::<f64>() {
            Ok(w) if (0.0..=MAX_WAIT_S).contains(&w) => w,
            _ => {
                return Err(bad(format!(
                    "wait must be 0 to {MAX_WAIT_S} seconds, got {w:?}"
                )));
            }
        },
    };
    Ok((after, Duration::from_secs_f64(wait)))
}

/// Counts a poll in flight for the idle timer, also when the request is
/// dropped half-way (the client went away).
struct InFlight<'a>(&'a PolledSession);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.in_flight -= 1;
        st.last_active = Instant::now();
    }
}

/// `GET /rooms/{room}/sessions/{session}/poll?after=N&wait=S`.
pub async fn poll(
    room_id: String,
    session_id: String,
    query: HashMap<String, String>,
    auth: Option<String>,
    s: AppState,
) -> Response {
    let sess = match s
        .sessions
        .authorized(&room_id, &session_id, auth.as_deref())
    {
        Ok(sess) => sess,
        Err(refused) => return refused.reply(),
    };
    let (after, wait) = match poll_params(&query) {
        Ok(p) => p,
        Err(m) => return error_reply(StatusCode::BAD_REQUEST, "bad_request", m),
    };
    let deadline = Instant::now() + wait;
    sess.polls.send_modify(|g| *g += 1);
    let mut superseded = sess.polls.subscribe();
    {
        let mut st = sess.lock();
        if st.over {
            return unknown_session();
        }
        st.in_flight += 1;
        st.last_active = Instant::now();
    }
    let _in_flight = InFlight(&sess);
    let mut shutdown = s.shutdown.clone();
    loop {
        let batch = {
            let mut st = sess.lock();
            if st.over {
                return unknown_session();
            }
            if let Err(e) = st.server.ack(after) {
                return error_reply(StatusCode::BAD_REQUEST, "bad_request", e.to_string());
            }
            sess.take_from_outbox(&mut st);
            st.server.after(after, MAX_BATCH)
        };
        let closed = batch.is_empty() && sess.outbox.is_closed() && sess.outbox.is_empty();
        if !batch.is_empty() || wait.is_zero() || closed {
            if closed && *shutdown.borrow() {
                return shutting_down();
            }
            if closed {
                // Taken over by a resume elsewhere, or the room stopped.
                sess.lock().over = true;
                s.sessions.remove(&room_id, &session_id, &sess);
                return unknown_session();
            }
            let next = batch.last().map_or(after, |(seq, _)| *seq);
            return sess.respond(&batch, next, !wait.is_zero());
        }
        tokio::select! {
            // Shutdown first: the room closes our outbox when it stops, and
            // that must read as "shutting down", not as a lost session.
            biased;
            _ = crate::clock::until_shutdown(&mut shutdown) => {
                return shutting_down();
            }
            _ = tokio::time::sleep_until(deadline) => {
                return bytes_reply(StatusCode::OK, sess.format, encode_poll_batch(sess.format, &[], after));
            }
            _ = superseded.changed() => {
                // A newer poll (or an expiry) took over: answer with what we have.
                let batch = {
                    let st = sess.lock();
                    if st.over {
                        return unknown_session();
                    }
                    st.server.after(after, MAX_BATCH)
                };
                let next = batch.last().map_or(after, |(seq, _)| *seq);
                return sess.respond(&batch, next, true);
            }
            frame = sess.outbox.pop_queued() => {
                if let Some((q, _)) = frame {
                    let mut st = sess.lock();
                    st.unsent_since.get_or_insert(q.produced);
                    st.server.push(q.bytes);
                }
                // None: closed; the next turn answers 404.
            }
        }
    }
}

/// `POST /rooms/{room}/sessions/{session}/send`.
pub async fn send(
    room_id: String,
    session_id: String,
    auth: Option<String>,
    content_type: Option<String>,
    body: Bytes,
    s: AppState,
) -> Response {
    let sess = match s
        .sessions
        .authorized(&room_id, &session_id, auth.as_deref())
    {
        Ok(sess) => sess,
        Err(refused) => return refused.reply(),
    };
    let format = format_of(content_type.as_deref());
    let batch = match decode::<SendBatch>(format, &body) {
        Ok(b) => b,
        Err(e) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                "bad_message",
                format!("bad send body: {e}"),
            );
        }
    };
    let (due, applied, bad, flood) = {
        let mut st = sess.lock();
        if st.over {
            return unknown_session();
        }
        let now = Instant::now();
        st.last_active = now;
        let mut due = Vec::new();
        let mut bad = None;
        for m in batch.messages {
            match st.client.accept(m.seq, m.msg) {
                Ok(d) => due.extend(d),
                Err(e) => {
                    // What was due before the bad one is still applied; the
                    // client re-sends the rest after fixing its seqs.
                    bad = Some(e);
                    break;
                }
            }
        }
        // Each message is judged once, when it becomes due: re-sends of a
        // seq already applied never count against the client.
        let (due, flood) = throttle(&mut st, due, &s.counters, now.into_std());
        (due, st.client.applied(), bad, flood)
    };
    apply(&sess, &s, &room_id, &session_id, due).await;
    if flood {
        debug!(room = %room_id, session = %session_id, "closing a flooding polled session");
        end(&sess, &s, &room_id, &session_id).await;
        return error_reply(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "input flood: more than {} messages a second (burst {}); the session is closed",
                s.limits.input_rate, s.limits.input_burst
            ),
        );
    }
    if let Some(e) = bad {
        return error_reply(StatusCode::BAD_REQUEST, "bad_seq", e.to_string());
    }
    bytes_reply(StatusCode::OK, format, encode(format, &SendAck { applied }))
}

/// What the rate limits let through of `due`, in order; chat over its own
/// limit becomes an `error` for the sender. True when the session flooded
/// (everything from that message on is dropped).
fn throttle(
    st: &mut State,
    due: Vec<ClientMsg>,
    counters: &crate::limits::Counters,
    now: std::time::Instant,
) -> (Vec<Due>, bool) {
    let mut out = Vec::with_capacity(due.len());
    for msg in due {
        match counters.input_verdict(st.throttle.check(now)) {
            Verdict::Pass => {}
            Verdict::Drop => continue,
            Verdict::Flood => return (out, true),
        }
        if matches!(msg, ClientMsg::Chat(_)) && st.chat.check(now) != Verdict::Pass {
            bump(&counters.chat_dropped);
            out.push(Due::ChatDropped);
            continue;
        }
        out.push(Due::Msg(msg));
    }
    (out, false)
}

/// A client message the limits let through, or a chat line they dropped.
enum Due {
    Msg(ClientMsg),
    ChatDropped,
}

/// Applies client messages in order; returns true if one of them was a leave.
async fn apply(
    sess: &Arc<PolledSession>,
    s: &AppState,
    room_id: &str,
    session_id: &str,
    msgs: Vec<Due>,
) -> bool {
    let sub = sess.sub;
    for msg in msgs {
        let msg = match msg {
            Due::Msg(m) => m,
            Due::ChatDropped => {
                let err = ServerMsg::Error(ErrorMsg {
                    code: "rate_limited".into(),
                    message: s.limits.chat_limit_message(),
                });
                sess.outbox.push(encode(sess.format, &err));
                continue;
            }
        };
        match msg {
            ClientMsg::Input(input) => {
                sess.room.try_send(RoomCmd::Input { sub, input });
            }
            ClientMsg::Chat(c) => {
                sess.room.try_send(RoomCmd::Chat { sub, text: c.text });
            }
            ClientMsg::Resync {} => {
                sess.room.try_send(RoomCmd::Resync { sub });
            }
            ClientMsg::Ping(p) => {
                let pong = ServerMsg::Pong(Pong {
                    t: p.t,
                    server_time_us: now_us(),
                });
                sess.outbox.push(encode(sess.format, &pong));
            }
            ClientMsg::Leave {} => {
                leave(sess, s, room_id, session_id).await;
                return true;
            }
            ClientMsg::Hello(_) => {
                let err = ServerMsg::Error(ErrorMsg {
                    code: "bad_message".into(),
                    message: "already welcomed: hello only opens a session".into(),
                });
                sess.outbox.push(encode(sess.format, &err));
            }
        }
    }
    false
}

/// Ends a session that broke the rules: its snake waits the resume grace,
/// as after a dropped connection.
async fn end(sess: &Arc<PolledSession>, s: &AppState, room_id: &str, session_id: &str) {
    let was_over = std::mem::replace(&mut sess.lock().over, true);
    s.sessions.remove(room_id, session_id, sess);
    if !was_over {
        sess.room.send(RoomCmd::Detach { sub: sess.sub }).await;
    }
    sess.polls.send_modify(|g| *g += 1);
}

async fn leave(sess: &Arc<PolledSession>, s: &AppState, room_id: &str, session_id: &str) {
    let was_over = std::mem::replace(&mut sess.lock().over, true);
    s.sessions.remove(room_id, session_id, sess);
    if !was_over {
        sess.room.send(RoomCmd::Leave { sub: sess.sub }).await;
    }
    sess.polls.send_modify(|g| *g += 1);
}

/// `DELETE /rooms/{room}/sessions/{session}`: leave now (no resume grace).
pub async fn delete(
    room_id: String,
    session_id: String,
    auth: Option<String>,
    s: AppState,
) -> Response {
    let sess = match s
        .sessions
        .authorized(&room_id, &session_id, auth.as_deref())
    {
        Ok(sess) => sess,
        Err(refused) => return refused.reply(),
    };
    leave(&sess, &s, &room_id, &session_id).await;
    let mut r = Response::new(Bytes::new().into());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}
