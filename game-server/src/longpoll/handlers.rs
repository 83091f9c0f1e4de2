//! The warp handlers of polled sessions: they decode requests, hand client
//! messages to the session's [`Connection`], carry out its actions, and
//! answer from the session's logs. No rule of the game is decided here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use protocol::codec::{decode, encode};
use protocol::poll::{SendAck, SendBatch, encode_poll_batch};
use protocol::{Format, ServerMsg};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::debug;
use warp::http::StatusCode;
use warp::reply::Response;

use super::answers::{format_of, refusal_reply, session, unknown_session};
use super::lifecycle::Lifecycle;
use super::log::{ClientLog, ServerLog};
use super::{PollContext, PolledSession, State};
use crate::conn::{Action, Connection, Ending, Now, Refusal};
use crate::http::{bytes_reply, error_reply};
use crate::metrics::Transport;
use crate::outbox::Pushed;
use crate::room::{RoomCmd, RoomHandle};

/// Most messages in one poll response.
const MAX_BATCH: usize = 256;

impl PolledSession {
    /// Moves whatever the room queued into the numbered log, as far as the
    /// log has room (beyond that the room outbox overflows into a keyframe).
    fn take_from_outbox(&self, st: &mut State) {
        while !st.server.is_full() {
            match self.outbox.try_pop_queued() {
                Some(q) => {
                    st.unsent_since.get_or_insert(q.produced);
                    st.server.push(q.whole());
                }
                None => break,
            }
        }
    }

    /// Queues a reply (pong, error) behind the room's frames. A full outbox
    /// overflows like any other: the backlog goes, and the room sends a
    /// keyframe next.
    async fn reply(&self, msg: &ServerMsg) {
        let before = self.outbox.dropped();
        if self.outbox.push(encode(self.format, msg)) == Pushed::Overflowed {
            let m = &self.room.room_metrics;
            m.resyncs.inc();
            m.dropped.inc_by(self.outbox.dropped() - before);
            self.room.send(RoomCmd::Resync { sub: self.sub }).await;
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
}

/// Ends a session for the registry, the room (`cmd`, once) and every held poll.
async fn finish(
    sess: &Arc<PolledSession>,
    cx: &PollContext,
    (room_id, session_id): (&str, &str),
    cmd: Option<RoomCmd>,
) {
    cx.sessions.remove(room_id, session_id, sess);
    if let Some(cmd) = cmd {
        sess.room.send(cmd).await;
    }
    sess.wake();
}

/// `POST /rooms/{room}/sessions`: a hello in, `201` and the welcome out.
pub async fn create(
    room: RoomHandle,
    content_type: Option<String>,
    accept: Option<String>,
    body: Bytes,
    cx: PollContext,
) -> Response {
    let body_format = format_of(content_type.as_deref());
    let format = match body_format {
        Format::Bincode => Format::Bincode,
        Format::Json => format_of(accept.as_deref()),
    };
    let joined = match crate::conn::on_hello(body_format, &body) {
        Ok(hello) => Refusal::of_join(room.join(hello, format).await),
        Err(r) => Err(r),
    };
    let joined = match joined {
        Ok(j) => j,
        Err(r) => return refusal_reply(&r),
    };
    let now = Instant::now();
    let spectator = joined.welcome.player_id.is_none();
    let conn = Connection::new(
        joined.sub,
        spectator,
        cx.limits.clone(),
        cx.counters.clone(),
        now.into_std(),
    );
    let metrics = room.metrics.clone();
    let room_id = room.config.id.clone();
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
            conn,
            life: Lifecycle::new(now.into_std()),
            unsent_since: None,
        }),
        wake: watch::channel(0).0,
    });
    let key = (room_id, joined.welcome.session.clone());
    // The name is the room's sanitised one, never the hello's.
    debug!(room = %key.0, session = %key.1, sub = joined.sub, name = %joined.welcome.name, "polled session open");
    cx.sessions.insert(key, session);
    let welcome = encode(format, &ServerMsg::Welcome(Box::new(joined.welcome)));
    bytes_reply(StatusCode::CREATED, format, welcome)
}

/// Parsed `?after=N&wait=S`.
fn poll_params(q: &HashMap<String, String>) -> Result<(u64, Duration), String> {
    let after = match q.get("after") {
        None => 0,
        Some(a) => a
            .parse::<u64>()
            .map_err(|_| format!("after must be a sequence number, got {a:?}"))?,
    };
    let max = super::MAX_WAIT_S;
    let wait = match q.get("wait") {
        None => super::DEFAULT_WAIT_S,
        Some(w) => match w.parse::<f64>() {
            Ok(w) if (0.0..=max).contains(&w) => w,
            _ => return Err(format!("wait must be 0 to {max} seconds, got {w:?}")),
        },
    };
    Ok((after, Duration::from_secs_f64(wait)))
}

/// Counts a poll in flight for the idle timer, also when the request is
/// dropped half-way (the client went away).
struct InFlight<'a>(&'a PolledSession);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.lock().life.poll_ends(std::time::Instant::now());
    }
}

fn shutting_down() -> Response {
    refusal_reply(&Refusal::ShuttingDown)
}

/// `GET /rooms/{room}/sessions/{session}/poll?after=N&wait=S`.
pub async fn poll(
    room_id: String,
    session_id: String,
    query: HashMap<String, String>,
    auth: Option<String>,
    cx: PollContext,
) -> Response {
    let sess = match session(&cx, &room_id, &session_id, auth) {
        Ok(sess) => sess,
        Err(refused) => return refused.reply(),
    };
    let (after, wait) = match poll_params(&query) {
        Ok(p) => p,
        Err(m) => return error_reply(StatusCode::BAD_REQUEST, "bad_request", m),
    };
    let deadline = Instant::now() + wait;
    let me = {
        let mut st = sess.lock();
        if st.conn.is_over() {
            return unknown_session();
        }
        st.life.poll_begins(std::time::Instant::now())
    };
    let _in_flight = InFlight(&sess);
    // Wakes the older polls; subscribed after, so this one sees only later wakes.
    sess.wake();
    let mut woken = sess.wake.subscribe();
    let mut shutdown = cx.shutdown.clone();
    loop {
        let batch = {
            let mut st = sess.lock();
            if st.conn.is_over() {
                return unknown_session();
            }
            if let Err(e) = st.server.ack(after) {
                return error_reply(StatusCode::BAD_REQUEST, "bad_request", e.to_string());
            }
            sess.take_from_outbox(&mut st);
            st.server.after(after, MAX_BATCH)
        };
        let closed = batch.is_empty() && sess.outbox.is_closed() && sess.outbox.is_empty();
        if closed && *shutdown.borrow() {
            return shutting_down();
        }
        if closed {
            // Taken over by a resume elsewhere, or the room stopped.
            let _ = sess.lock().conn.detach();
            cx.sessions.remove(&room_id, &session_id, &sess);
            return unknown_session();
        }
        if !batch.is_empty() || wait.is_zero() {
            let next = batch.last().map_or(after, |(seq, _)| *seq);
            return sess.respond(&batch, next, !wait.is_zero());
        }
        tokio::select! {
            // Shutdown first: the room closes our outbox when it stops, and
            // that must read as "shutting down", not as a lost session.
            biased;
            _ = crate::clock::until_shutdown(&mut shutdown) => return shutting_down(),
            _ = tokio::time::sleep_until(deadline) => {
                return bytes_reply(StatusCode::OK, sess.format, encode_poll_batch(sess.format, &[], after));
            }
            _ = woken.changed() => {
                // A newer poll took over (answer with what we have), or the
                // session ended (the next turn answers 404).
                let batch = {
                    let st = sess.lock();
                    if st.conn.is_over() {
                        return unknown_session();
                    }
                    if st.life.is_newest(me) {
                        continue;
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
                    st.server.push(q.whole());
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
    cx: PollContext,
) -> Response {
    let sess = match session(&cx, &room_id, &session_id, auth) {
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
    // Judged under the lock, carried out after it (the room may make us wait).
    let (actions, applied, bad) = {
        let mut st = sess.lock();
        if st.conn.is_over() {
            return unknown_session();
        }
        let now = Now::real();
        st.life.touch(now.at);
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
        let mut actions = Vec::with_capacity(due.len());
        for msg in due {
            match st.conn.admit(now.at) {
                Ok(true) => actions.extend(st.conn.on_message(now, msg)),
                Ok(false) => {}
                Err(ended) => {
                    actions.push(Action::End(ended));
                    break;
                }
            }
            if st.conn.is_over() {
                break;
            }
        }
        (actions, st.client.applied(), bad)
    };
    for action in actions {
        match action {
            Action::Room(cmd) => {
                sess.room.try_send(cmd);
            }
            Action::Reply(msg) => sess.reply(&msg).await,
            Action::End(ended) => {
                finish(&sess, &cx, (&room_id, &session_id), Some(ended.cmd)).await;
                if let Ending::Refused(r) = ended.why {
                    debug!(room = %room_id, session = %session_id, code = r.code(), "ending a polled session");
                    return refusal_reply(&r);
                }
                break;
            }
        }
    }
    if let Some(e) = bad {
        return error_reply(StatusCode::BAD_REQUEST, "bad_seq", e.to_string());
    }
    bytes_reply(StatusCode::OK, format, encode(format, &SendAck { applied }))
}

/// `DELETE /rooms/{room}/sessions/{session}`: leave now (no resume grace).
pub async fn delete(
    room_id: String,
    session_id: String,
    auth: Option<String>,
    cx: PollContext,
) -> Response {
    let sess = match session(&cx, &room_id, &session_id, auth) {
        Ok(sess) => sess,
        Err(refused) => return refused.reply(),
    };
    let cmd = sess.lock().conn.leave();
    finish(&sess, &cx, (&room_id, &session_id), cmd).await;
    let mut r = Response::new(Bytes::new().into());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}
