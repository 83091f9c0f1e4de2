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
//! session makes an older one return at once ([`lifecycle::Lifecycle`]).
//! `POST .../send` applies client messages once, in client seq order
//! ([`log::ClientLog`]), through the session's [`Connection`], the same
//! rules as on a WebSocket. A session nobody polls for its idle timeout
//! ([`IDLE_TIMEOUT`] by default) is detached from its room: its snake waits
//! the resume grace for a hello with the token.
//!
//! The sans-IO parts are `log`, `lifecycle` and `crate::conn`; `handlers`
//! and the reaper here only move bytes between them, the room and HTTP.

mod answers;
mod handlers;
pub mod lifecycle;
pub mod log;
mod routes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::{ClientMsg, Format};
use tokio::sync::watch;
use tracing::debug;

use crate::conn::Connection;
use crate::limits::{Counters, Limits};
use crate::metrics::{ConnMetrics, SendMetrics};
use crate::outbox::Outbox;
use crate::room::{RoomHandle, SubId};
use crate::rooms::Rooms;
use crate::session::constant_time_eq;
use lifecycle::Lifecycle;
use log::{ClientLog, ServerLog};
pub use routes::routes;

/// Default hold of a poll, in seconds.
pub const DEFAULT_WAIT_S: f64 = 25.0;
/// Longest hold a poll may ask for, in seconds.
pub const MAX_WAIT_S: f64 = 55.0;
/// A session with no poll in flight for this long is detached from its room
/// (the default of `ServerConfig::poll_idle_timeout`).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// How often idle sessions are looked for.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// What the polled-session handlers need, and nothing else.
#[derive(Clone)]
pub struct PollContext {
    /// Where `POST .../sessions` finds its room.
    pub rooms: Rooms,
    /// Every polled session.
    pub sessions: PolledSessions,
    /// Turns true when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Sizes, rates and timeouts.
    pub limits: Arc<Limits>,
    /// How often each limit bit.
    pub counters: Arc<Counters>,
}

/// One polled session: a room subscription plus its delivery state.
#[derive(Debug)]
pub struct PolledSession {
    room: RoomHandle,
    sub: SubId,
    token: String,
    format: Format,
    outbox: Arc<Outbox>,
    state: Mutex<State>,
    /// Wakes held polls: a newer poll arrived, or the session ended.
    wake: watch::Sender<u64>,
    /// Counts the session as open; its send counters are per response kind.
    _conn: ConnMetrics,
    held: SendMetrics,
    instant: SendMetrics,
}

#[derive(Debug)]
struct State {
    server: ServerLog,
    client: ClientLog<ClientMsg>,
    /// The rules every transport shares (rate limits, what a message does).
    conn: Connection,
    life: Lifecycle,
    /// When the oldest message taken from the room but not yet in any
    /// response was produced (for the send latency metric).
    unsent_since: Option<tokio::time::Instant>,
}

impl PolledSession {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock means a handler panicked mid-update of plain
        // counters and queues; they are still valid values.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every held poll of this session.
    fn wake(&self) {
        self.wake.send_modify(|g| *g += 1);
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

/// Why a request is not served for the session it names.
#[derive(Clone, Copy, Debug)]
enum Refused {
    UnknownSession,
    Unauthorized,
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

    /// Registers `s`; a resume replaces the old entry, whose held polls then
    /// answer 404 (the room already closed its outbox).
    fn insert(&self, key: Key, s: Arc<PolledSession>) {
        if let Some(old) = self.lock().insert(key, s) {
            // The room replaced that subscriber itself: nothing to tell it.
            let _ = old.lock().conn.detach();
            old.wake();
        }
    }

    /// The session a request names, when its `Authorization` header holds
    /// the session's token; else why not (404 first, then 401).
    fn authorized(
        &self,
        room: &str,
        session: &str,
        auth: Option<&str>,
    ) -> Result<Arc<PolledSession>, Refused> {
        let sess = self
            .lock()
            .get(&(room.to_string(), session.to_string()))
            .cloned()
            .ok_or(Refused::UnknownSession)?;
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
            .map(|s| s.lock().life.in_flight() as usize)
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
            let now = std::time::Instant::now();
            let gone: Vec<(Key, Arc<PolledSession>)> = {
                let mut map = self.lock();
                let keys: Vec<Key> = map
                    .iter()
                    .filter(|(_, s)| {
                        let st = s.lock();
                        st.conn.is_over()
                            || st.life.is_idle(now, self.idle)
                            || (s.outbox.is_closed() && s.outbox.is_empty())
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                keys.into_iter()
                    .filter_map(|k| map.remove(&k).map(|s| (k, s)))
                    .collect()
            };
            for ((room, session), s) in gone {
                let detach = s.lock().conn.detach();
                debug!(
                    room,
                    session,
                    already_over = detach.is_none(),
                    "polled session expired"
                );
                if let Some(cmd) = detach {
                    s.room.send(cmd).await;
                }
                // Wake a poll that may still hold, so it answers 404 now.
                s.wake();
            }
        }
    }
}
