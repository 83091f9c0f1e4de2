//! An edge's mirror of a room it does not own: it gives its spectators
//! exactly what a local room gives them, through the same seams (`SseRoom`
//! for SSE, `WatchedRoom` for `/watch`, `fanout::WsRoom` for WebSocket
//! spectators, implemented in `spectators.rs`) and with the same
//! formatting code (`SseFeed`, the watch `FrameCache`), so an edge's SSE
//! bytes and tick ids are the origin's and `Last-Event-ID` resumes across
//! nodes. A WebSocket spectator's frames are encoded and framed once per
//! tick and format, as a room does, and the fan-out writes them.
//!
//! A mirror subscribes to its room's frames only while it has spectators
//! (and for the replay window after the last one left, so a brief drop
//! still resumes), says so to the origin every [`INTEREST_EVERY`], rebuilds
//! the world in a [`Replica`] and asks for a keyframe whenever it cannot
//! go on from what it has.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_nats::Subscriber;
use bytes::Bytes;
use futures_util::StreamExt;
use protocol::codec::{Format, encode};
use protocol::sse::format_event;
use protocol::{ChatLine, ErrorMsg, Map, ServerMsg, Snapshot, Welcome, WorldState};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::directory::{Directory, Owner};
use super::link::Link;
use super::replica::{Replica, Step};
use super::wire::{self, Keyframe, RoomFrames};
use crate::SpectatorConfig;
use crate::clock::now_us;
use crate::room::WsSpectating;
use crate::room::wsring::{WsRings, slot, tick_frames};
use crate::sse::feed::SseFeed;
use crate::sse::{Spectating, SseChunk, SseRoom};
use crate::upgrade::data_frame;
use crate::watch::stream::{FrameCache, WatchedRoom};

/// How often a mirror with spectators tells the origin it still wants the
/// room's frames (the origin's tap lives [`super::origin::INTEREST_TTL`]).
pub const INTEREST_EVERY: Duration = Duration::from_secs(1);

/// How long a keyframe request may take.
const KEYFRAME_WAIT: Duration = Duration::from_secs(2);

/// Why a spectator of a remote room cannot be served.
#[derive(Clone, Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("no node of the cluster has a room called {0:?}")]
    Unknown(String),
    #[error("the room's server (node {node}) did not send its world: {why}")]
    NoKeyframe { node: String, why: String },
}

enum MirrorCmd {
    Spectate {
        last_event_id: Option<u64>,
        reply: oneshot::Sender<Spectating>,
    },
    Resync {
        reply: oneshot::Sender<(Bytes, broadcast::Receiver<SseChunk>)>,
    },
    WsWatch {
        format: Format,
        reply: oneshot::Sender<WsSpectating>,
    },
    WsResync {
        format: Format,
        reply: oneshot::Sender<WsSpectating>,
    },
}

struct Shared {
    id: String,
    /// Who plays the room, and where.
    owner: Owner,
    map: Map,
    world: watch::Receiver<Arc<WorldState>>,
    frames: FrameCache,
    watchers: AtomicU32,
    spectators: AtomicU32,
    /// Why the stream ended, when the mirror ended it.
    farewell: Mutex<Option<ErrorMsg>>,
}

/// A cheap, cloneable way to a mirror; every spectator holds one, which
/// is how the mirror knows it still has spectators.
#[derive(Clone)]
pub struct MirrorHandle {
    shared: Arc<Shared>,
    commands: mpsc::Sender<MirrorCmd>,
}

impl MirrorHandle {
    async fn ask<T>(&self, cmd: impl FnOnce(oneshot::Sender<T>) -> MirrorCmd) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(cmd(tx)).await.ok()?;
        rx.await.ok()
    }
}

impl SseRoom for MirrorHandle {
    async fn spectate(&self, last_event_id: Option<u64>) -> Option<Spectating> {
        self.ask(|reply| MirrorCmd::Spectate {
            last_event_id,
            reply,
        })
        .await
    }

    async fn resync(&self) -> Option<(Bytes, broadcast::Receiver<SseChunk>)> {
        self.ask(|reply| MirrorCmd::Resync { reply }).await
    }

    fn farewell(&self) -> ErrorMsg {
        let said = self
            .shared
            .farewell
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        said.clone().unwrap_or_else(crate::sse::shutting_down)
    }
}

impl MirrorHandle {
    /// Joins as a WebSocket spectator in `format`: the welcome and a
    /// snapshot as whole frames, and the format's ring from the next tick.
    pub async fn spectate_ws(&self, format: Format) -> Option<WsSpectating> {
        self.ask(|reply| MirrorCmd::WsWatch { format, reply }).await
    }

    /// A framed snapshot of now and the format's ring from the next tick.
    pub async fn resync_ws(&self, format: Format) -> Option<WsSpectating> {
        self.ask(|reply| MirrorCmd::WsResync { format, reply })
            .await
    }

    /// The node that plays the room, and its URL.
    pub fn owner(&self) -> &Owner {
        &self.shared.owner
    }
}

impl WatchedRoom for MirrorHandle {
    fn id(&self) -> &str {
        &self.shared.id
    }
    fn map(&self) -> &Map {
        &self.shared.map
    }
    fn spectators(&self) -> u32 {
        self.shared.spectators.load(Ordering::Relaxed)
            + self.shared.watchers.load(Ordering::Relaxed)
    }
    fn world(&self) -> watch::Receiver<Arc<WorldState>> {
        let mut rx = self.shared.world.clone();
        rx.mark_changed();
        rx
    }
    fn frames(&self) -> &FrameCache {
        &self.shared.frames
    }
    fn watchers(&self) -> &AtomicU32 {
        &self.shared.watchers
    }
    fn wake(&self) {}
}

/// A room's place in the registry: its mirror, or the word of one starting
/// (the first keyframe is on its way), which later spectators wait on
/// without holding the registry.
enum Slot {
    Ready(MirrorHandle),
    Starting(watch::Receiver<Option<Result<MirrorHandle, MirrorError>>>),
}

type Registry = Mutex<HashMap<String, Slot>>;

/// The registry, locked: it is only ever held to look up or replace a
/// slot, never across an await.
fn lock(registry: &Registry) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
    // A map of handles: valid whatever a panicking holder did.
    registry.lock().unwrap_or_else(|e| e.into_inner())
}

/// The mirrors of a node, by room id.
#[derive(Clone)]
pub struct Mirrors {
    registry: Arc<Registry>,
    link: Link,
    directory: Directory,
    spectators: SpectatorConfig,
    ttl: Duration,
    shutdown: watch::Receiver<bool>,
}

impl Mirrors {
    /// No mirror yet.
    pub fn new(
        link: Link,
        directory: Directory,
        spectators: SpectatorConfig,
        ttl: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> Mirrors {
        Mirrors {
            registry: Arc::default(),
            link,
            directory,
            spectators,
            ttl,
            shutdown,
        }
    }

    /// Mirrors being served (or starting) now.
    pub fn len(&self) -> usize {
        lock(&self.registry).len()
    }

    /// True when no room is mirrored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The mirror of `room`, started (subscribed, with a keyframe) if there
    /// is none. A burst of first spectators starts it once; the wait for
    /// its keyframe (up to [`KEYFRAME_WAIT`]) holds up only the spectators
    /// of that room, never the registry.
    pub async fn get(&self, room: &str) -> Result<MirrorHandle, MirrorError> {
        let mut starting = {
            let mut registry = lock(&self.registry);
            match registry.get(room) {
                Some(Slot::Ready(h)) if !h.commands.is_closed() => return Ok(h.clone()),
                Some(Slot::Starting(rx)) => rx.clone(),
                _ => {
                    let owner = self
                        .directory
                        .owner(room)
                        .ok_or_else(|| MirrorError::Unknown(room.to_string()))?;
                    let (tx, rx) = watch::channel(None);
                    registry.insert(room.to_string(), Slot::Starting(rx.clone()));
                    // Its own task: a spectator that hangs up while the
                    // keyframe is on its way does not leave the slot starting.
                    let (mirrors, room) = (self.clone(), room.to_string());
                    tokio::spawn(async move {
                        let started = mirrors.start(&room, owner).await;
                        {
                            let mut registry = lock(&mirrors.registry);
                            match &started {
                                Ok(h) => registry.insert(room, Slot::Ready(h.clone())),
                                Err(_) => registry.remove(&room),
                            };
                        }
                        tx.send_replace(Some(started));
                    });
                    rx
                }
            }
        };
        let started = starting.wait_for(Option::is_some).await;
        match started.as_deref() {
            Ok(Some(r)) => r.clone(),
            _ => Err(MirrorError::NoKeyframe {
                node: self
                    .directory
                    .owner(room)
                    .map_or_else(|| "?".into(), |o| o.node),
                why: "the mirror stopped while starting (shutting down?)".into(),
            }),
        }
    }

    async fn start(&self, room: &str, owner: Owner) -> Result<MirrorHandle, MirrorError> {
        let no_keyframe = |why: String| MirrorError::NoKeyframe {
            node: owner.node.clone(),
            why,
        };
        let client = &self.link.client;
        // Subscribed before asking, so no frame after the keyframe is missed.
        let frames = client
            .subscribe(wire::frames_subject(&owner.node, room))
            .await
            .map_err(|e| no_keyframe(e.to_string()))?;
        let keyframe = request_keyframe(&self.link, &owner.node, room)
            .await
            .map_err(no_keyframe)?;
        let mut replica = Replica::default();
        replica.handle_keyframe(keyframe.snapshot.clone());
        let state = Arc::new(keyframe.snapshot.state.clone());
        let (world_tx, world) = watch::channel(state);
        let shared = Arc::new(Shared {
            id: room.to_string(),
            owner: owner.clone(),
            map: keyframe.welcome.map.clone(),
            world,
            frames: FrameCache::default(),
            watchers: AtomicU32::new(0),
            spectators: AtomicU32::new(0),
            farewell: Mutex::new(None),
        });
        let (commands, rx) = mpsc::channel(1024);
        let (answers_tx, answers) = mpsc::channel(4);
        let task = MirrorTask {
            room: room.to_string(),
            node: owner.node.clone(),
            link: self.link.clone(),
            directory: self.directory.clone(),
            ttl: self.ttl,
            registry: Arc::downgrade(&self.registry),
            handles: commands.downgrade(),
            shared: shared.clone(),
            sse: SseFeed::new(keyframe.welcome.tick_rate, self.spectators.replay),
            ws: WsRings::default(),
            ws_keys: [None, None],
            chat: Vec::new(),
            ring_tick: keyframe.snapshot.tick,
            reconnecting: None,
            tick_rate: keyframe.welcome.tick_rate,
            replay: self.spectators.replay,
            queue: self.spectators.queue.max(1),
            live: None,
            world_tx,
            welcome: keyframe.welcome,
            replica,
            asking: false,
            answers_tx,
            idle_since: None,
        };
        let span = tracing::info_span!("mirror", room = %room, origin = %owner.node);
        tokio::spawn(
            task.run(frames, rx, answers, self.shutdown.clone())
                .instrument(span),
        );
        Ok(MirrorHandle { shared, commands })
    }
}

async fn request_keyframe(link: &Link, node: &str, room: &str) -> Result<Keyframe, String> {
    let ask = link
        .client
        .request(wire::keyframe_subject(node, room), Bytes::new());
    match tokio::time::timeout(KEYFRAME_WAIT, ask).await {
        Err(_) => Err(format!("no answer within {} s", KEYFRAME_WAIT.as_secs())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(msg)) => wire::from_bytes::<Keyframe>(&msg.payload).map_err(|e| e.to_string()),
    }
}

struct MirrorTask {
    room: String,
    node: String,
    link: Link,
    directory: Directory,
    ttl: Duration,
    registry: Weak<Registry>,
    /// Counts the handles (the registry's, every spectator's).
    handles: mpsc::WeakSender<MirrorCmd>,
    shared: Arc<Shared>,
    sse: SseFeed,
    /// The WebSocket spectators' rings, per format (JSON, bincode): each
    /// frame is encoded once per format in use, not once per spectator.
    ws: WsRings,
    /// Chat that came on its own, after its tick: it goes with the next.
    chat: Vec<ChatLine>,
    /// The keyframe of the world now, per format, once a spectator asked.
    ws_keys: [Option<(u64, Bytes)>; 2],
    /// The `tick` of the last chunk on the SSE ring. The SSE fan-out takes
    /// a spectator's chunks in consecutive ticks, so a `status` event
    /// goes on the ring as the tick after the last one (its `id` stays the
    /// world's tick, what the spectator has).
    ring_tick: u64,
    /// While the link is down: the `status` chunk the spectators got
    /// (sent again to each one that joins meanwhile, see [`Self::handle`]).
    reconnecting: Option<SseChunk>,
    tick_rate: u32,
    replay: Duration,
    queue: usize,
    live: Option<broadcast::Sender<SseChunk>>,
    world_tx: watch::Sender<Arc<WorldState>>,
    welcome: Welcome,
    replica: Replica,
    /// A keyframe request is on its way.
    asking: bool,
    answers_tx: mpsc::Sender<Result<Keyframe, String>>,
    idle_since: Option<Instant>,
}

/// Why a mirror ends its streams when it stops for a reason of its own
/// (not the server shutting down, not the origin leaving).
fn unreachable(why: &str, node: &str) -> ErrorMsg {
    ErrorMsg {
        code: "origin_unreachable".into(),
        message: format!(
            "this node stopped getting the room's frames from node {node}: {why}; \
             connect again to watch"
        ),
    }
}

impl MirrorTask {
    async fn run(
        mut self,
        mut frames: Subscriber,
        mut commands: mpsc::Receiver<MirrorCmd>,
        mut answers: mpsc::Receiver<Result<Keyframe, String>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut up = self.link.up.clone();
        // Only changes from now on: the mirror starts with a keyframe.
        up.borrow_and_update();
        let mut every = tokio::time::interval(INTEREST_EVERY);
        let ended = loop {
            tokio::select! {
                biased;
                _ = crate::clock::until_shutdown(&mut shutdown) => break None,
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    // No handle left, the registry's neither: nobody to tell.
                    None => break None,
                },
                msg = frames.next() => {
                    let Some(msg) = msg else {
                        break Some(unreachable("the subscription ended", &self.node));
                    };
                    match wire::from_bytes::<RoomFrames>(&msg.payload) {
                        Ok(f) => {
                            let steps = self.replica.handle_frames(f);
                            self.apply(steps);
                        }
                        Err(e) => tracing::warn!(error = %e, "unreadable frame from the origin"),
                    }
                }
                answer = answers.recv() => {
                    self.asking = false;
                    match answer {
                        Some(Ok(k)) => {
                            let steps = self.replica.handle_keyframe(k.snapshot);
                            self.apply(steps);
                        }
                        Some(Err(why)) => tracing::debug!(%why, "keyframe request failed"),
                        None => {}
                    }
                }
                changed = up.changed() => {
                    if changed.is_err() {
                        break Some(unreachable("the NATS client stopped", &self.node));
                    }
                    let is_up = *up.borrow_and_update();
                    self.on_link(is_up);
                }
                _ = every.tick() => {
                    if let Some(why) = self.on_timer() {
                        break Some(why);
                    }
                    if self.try_retire() {
                        return;
                    }
                }
            }
        };
        // The flag itself says whether the server is shutting down, not
        // which branch won, so the reason is right whatever woke the task.
        // Shutting down, the streams end with the default farewell.
        if !*shutdown.borrow()
            && let Some(why) = ended
        {
            self.close(why);
        }
        if let Some(reg) = self.registry.upgrade() {
            let mut reg = lock(&reg);
            if matches!(reg.get(&self.room), Some(Slot::Ready(h)) if Arc::ptr_eq(&h.shared, &self.shared))
            {
                reg.remove(&self.room);
            }
        }
    }

    fn live(&mut self) -> &broadcast::Sender<SseChunk> {
        let queue = self.queue;
        self.live
            .get_or_insert_with(|| broadcast::Sender::new(queue))
    }

    fn receivers(&self) -> usize {
        let sse = self
            .live
            .as_ref()
            .map_or(0, broadcast::Sender::receiver_count);
        sse + self.ws.receivers()
    }

    fn world(&self) -> Arc<WorldState> {
        self.world_tx.borrow().clone()
    }

    fn handle(&mut self, cmd: MirrorCmd) {
        let world = self.world();
        match cmd {
            MirrorCmd::Spectate {
                last_event_id,
                reply,
            } => {
                let welcome = &self.welcome;
                let preamble = self.sse.join(last_event_id, &world, now_us(), || Welcome {
                    server_time_us: now_us(),
                    ..welcome.clone()
                });
                let live = self.live().subscribe();
                let _ = reply.send(Spectating { live, preamble });
                self.retell_reconnecting();
            }
            MirrorCmd::Resync { reply } => {
                let snapshot = self.sse.keyframe(&world, now_us());
                let live = self.live().subscribe();
                let _ = reply.send((snapshot, live));
                self.retell_reconnecting();
            }
            MirrorCmd::WsWatch { format, reply } => {
                let welcome = ServerMsg::Welcome(Box::new(Welcome {
                    server_time_us: now_us(),
                    ..self.welcome.clone()
                }));
                let mut preamble = data_frame(format, &encode(format, &welcome)).to_vec();
                preamble.extend_from_slice(&self.ws_keyframe(format, &world));
                let live = self.ws.subscribe(format, self.queue);
                let _ = reply.send(WsSpectating {
                    preamble: preamble.into(),
                    tick: world.tick,
                    live,
                });
            }
            MirrorCmd::WsResync { format, reply } => {
                let preamble = self.ws_keyframe(format, &world);
                let live = self.ws.subscribe(format, self.queue);
                let _ = reply.send(WsSpectating {
                    preamble,
                    tick: world.tick,
                    live,
                });
            }
        }
        self.count();
    }

    /// While the link is down, an SSE spectator that joins (or resyncs)
    /// ends its bytes at the world's tick, one before the `status` chunk
    /// on the ring: that chunk goes on the ring again, so the fan-out
    /// finds the next tick it expects. Those already past it skip it.
    fn retell_reconnecting(&self) {
        if let (Some(chunk), Some(live)) = (&self.reconnecting, &self.live) {
            let _ = live.send(chunk.clone());
        }
    }

    /// `snapshot` of `world` in `format` as a whole WebSocket frame,
    /// encoded once per tick however many spectators join or resync.
    fn ws_keyframe(&mut self, format: Format, world: &WorldState) -> Bytes {
        let i = slot(format);
        if let Some((tick, bytes)) = &self.ws_keys[i]
            && *tick == world.tick
        {
            return bytes.clone();
        }
        let msg = ServerMsg::Snapshot(Box::new(Snapshot {
            ack: 0,
            tick: world.tick,
            checksum: world.checksum(),
            server_time_us: now_us(),
            state: world.clone(),
        }));
        let bytes = data_frame(format, &encode(format, &msg));
        self.ws_keys[i] = Some((world.tick, bytes.clone()));
        bytes
    }

    fn count(&self) {
        self.shared
            .spectators
            .store(self.receivers() as u32, Ordering::Relaxed);
    }

    fn send(&mut self, tick: u64, bytes: Bytes) {
        self.ring_tick = self.ring_tick.max(tick);
        if let Some(live) = &self.live {
            let _ = live.send(SseChunk {
                tick,
                bytes,
                produced: Instant::now(),
            });
        }
    }

    /// One tick's frames to the WebSocket spectators (the tick or a
    /// snapshot, then its chat lines): encoded and framed once per format
    /// that has any, as one chunk of the format's ring (as a room does).
    fn send_ws(&self, tick: u64, first: &ServerMsg, chat: &[ChatLine]) {
        let produced = Instant::now();
        for format in [Format::Json, Format::Bincode] {
            if !self.ws.wanted(format) {
                continue;
            }
            let chat: Vec<Bytes> = chat
                .iter()
                .map(|c| encode(format, &ServerMsg::Chat(c.clone())))
                .collect();
            let bytes = tick_frames(format, &encode(format, first), &chat);
            self.ws.send(
                format,
                SseChunk {
                    tick,
                    bytes,
                    produced,
                },
            );
        }
    }

    fn apply(&mut self, steps: Vec<Step>) {
        for step in steps {
            match step {
                Step::Tick { frame, mut chat } => {
                    if !self.chat.is_empty() {
                        chat.splice(0..0, std::mem::take(&mut self.chat));
                    }
                    let watching = self.receivers() > 0;
                    if let Some(bytes) = self.sse.tick(watching, &frame, &chat) {
                        self.send(frame.tick, bytes);
                    }
                    self.send_ws(frame.tick, &ServerMsg::Tick(frame), &chat);
                    if let Some(s) = self.replica.state() {
                        self.world_tx.send_replace(Arc::new(s.clone()));
                    }
                }
                Step::Resync { snapshot, .. } => {
                    if self.reconnecting.is_some() && snapshot.tick <= self.ring_tick {
                        // The SSE spectators' rings are past this tick
                        // (the status went as the next one): the fan-out
                        // would skip it. A later keyframe, then.
                        tracing::debug!(tick = snapshot.tick, "keyframe too early: asking again");
                        self.replica.handle_lost();
                        self.ask_keyframe();
                        break;
                    }
                    self.reconnecting = None;
                    // The ring must hold consecutive ticks: it starts again.
                    self.sse = SseFeed::new(self.tick_rate, self.replay);
                    let bytes = self.sse.keyframe(&snapshot.state, snapshot.server_time_us);
                    self.send(snapshot.tick, bytes);
                    let tick = snapshot.tick;
                    let state = snapshot.state.clone();
                    self.send_ws(tick, &ServerMsg::Snapshot(snapshot), &[]);
                    self.world_tx.send_replace(Arc::new(state));
                    tracing::debug!(tick, "resynced");
                }
                // The fan-out takes a spectator's chunks in consecutive
                // ticks, so chat after its tick goes with the next one.
                Step::Chat(lines) => self.chat.extend(lines),
                Step::NeedKeyframe(why) => {
                    tracing::info!(%why, "asking the origin for a keyframe");
                    self.ask_keyframe();
                }
            }
        }
        self.count();
    }

    fn ask_keyframe(&mut self) {
        if self.asking || !*self.link.up.borrow() {
            return;
        }
        self.asking = true;
        let (link, node, room, tx) = (
            self.link.clone(),
            self.node.clone(),
            self.room.clone(),
            self.answers_tx.clone(),
        );
        tokio::spawn(async move {
            let _ = tx.send(request_keyframe(&link, &node, &room).await).await;
        });
    }

    fn on_link(&mut self, up: bool) {
        if up {
            tracing::info!("NATS is back: resyncing");
            self.ask_keyframe();
            return;
        }
        // Spectators are told, and whatever comes next starts from a
        // keyframe. WebSocket spectators are not: `ServerMsg` has no such
        // message (an `error` would read as the stream failing); their
        // ticks pause and the keyframe resyncs them.
        self.replica.handle_lost();
        if self.reconnecting.is_some() {
            return;
        }
        let tick = self.world().tick;
        let status = ErrorMsg {
            code: "reconnecting".into(),
            message: "this node lost its link to the cluster; the stream goes on \
                      with a snapshot when it is back"
                .into(),
        };
        let data = encode(Format::Json, &status);
        // Its id is the tick the spectators have; on the ring it is the
        // next one (see `ring_tick`).
        let chunk = SseChunk {
            tick: self.ring_tick + 1,
            bytes: format_event("status", Some(tick), &data),
            produced: Instant::now(),
        };
        self.ring_tick += 1;
        if let Some(live) = &self.live {
            let _ = live.send(chunk.clone());
        }
        self.reconnecting = Some(chunk);
    }

    /// Once a second: interest, a keyframe if still missing, and whether
    /// the origin has left the cluster (the reason to end the streams).
    fn on_timer(&mut self) -> Option<ErrorMsg> {
        if self.directory.has_left(&self.node, self.ttl) {
            return Some(ErrorMsg {
                code: "origin_gone".into(),
                message: format!(
                    "the room's server (node {}) left the cluster: it has not renewed its \
                     directory entry for {} s",
                    self.node,
                    self.ttl.as_secs_f64()
                ),
            });
        }
        if *self.link.up.borrow() {
            let client = self.link.client.clone();
            let subject = wire::interest_subject(&self.node, &self.room);
            tokio::spawn(async move {
                let _ = client.publish(subject, Bytes::new()).await;
            });
        }
        if self.replica.needs_keyframe() {
            self.ask_keyframe();
        }
        None
    }

    /// Leaves the registry once nobody has watched for the replay window,
    /// unless someone took a handle meanwhile. True when it left.
    fn try_retire(&mut self) -> bool {
        // The registry's own handle is one.
        let watched = self.handles.strong_count() > 1
            || self.shared.watchers.load(Ordering::Relaxed) > 0
            || self.receivers() > 0;
        if watched {
            self.idle_since = None;
            return false;
        }
        let since = *self.idle_since.get_or_insert_with(Instant::now);
        if since.elapsed() < self.replay {
            return false;
        }
        let Some(reg) = self.registry.upgrade() else {
            return true;
        };
        // Handles are only taken under this lock: none can appear now.
        let mut reg = lock(&reg);
        if self.handles.strong_count() > 1 {
            return false;
        }
        if matches!(reg.get(&self.room), Some(Slot::Ready(h)) if Arc::ptr_eq(&h.shared, &self.shared))
        {
            reg.remove(&self.room);
        }
        tracing::debug!("no spectators: unsubscribed");
        true
    }

    fn close(&mut self, why: ErrorMsg) {
        tracing::info!(code = %why.code, "closing the mirror");
        *self
            .shared
            .farewell
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(why);
        // Spectators read what is queued, then the end of their ring.
        self.live = None;
        self.ws.clear();
    }
}
