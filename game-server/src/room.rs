//! Rooms: one tokio task per room runs the fixed-tick loop around the
//! simulation and fans every frame out, encoded once per format, to the
//! bounded outboxes of its WebSocket and polled subscribers, and once, to
//! one shared ring, for all of its SSE spectators.
//!
//! A room nobody is in sleeps (see [`RoomTask::sleep`]): no tick, no
//! timer, no per-tick buffers, its world's lookup grids put away; the
//! first command or watcher wakes it, and it resumes on its tick grid
//! where its tick count stopped. A room given an [`IdleClose`] leaves its
//! registry once it has slept that long. The sleeping, waking and closing
//! live in [`idle`].
//!
//! Over 400 lines on purpose: the task's state and its tick are one struct
//! whose methods read best together; the SSE formatting is in `sse::feed`,
//! the players in `session`, the rules in `sim`.

mod idle;
pub(crate) mod wsring;

use idle::{CLOSE_RETRY, until};
pub use idle::{IdleClose, LeaveRegistry};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use protocol::api::RoomInfo;
use protocol::codec::encode;
use protocol::{
    ChatLine, Format, Hello, Input, Map, Mode, PlayerId, Role, ServerMsg, SharedFrame, Snapshot,
    TickFrame, Welcome, WorldState,
};
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span};

use crate::SpectatorConfig;
use crate::clock::now_us;
use crate::metrics::{Metrics, RoomMetrics};
use crate::outbox::{DEFAULT_CAPACITY, Outbox, Pushed};
use crate::session::{AdmitError, Players, random_hex128};
use crate::sim::{SimConfig, SimInput, World};
use crate::sse::feed::SseFeed;
use crate::sse::{Spectating, SseChunk};

/// Commands a room's queue holds before senders are told it is busy.
const COMMAND_QUEUE: usize = 4096;

/// A subscriber's id within its room.
pub type SubId = u64;

/// How a room is set up.
#[derive(Clone, Debug)]
pub struct RoomConfig {
    pub id: String,
    pub mode: Mode,
    /// Built-in map name.
    pub map_name: String,
    /// Shared by every room on the same built-in map.
    pub map: Arc<Map>,
    pub tick_rate: u32,
    /// Cells per second a snake moves, apart from the tick rate.
    pub speed: u32,
    pub max_players: u32,
    pub seed: u64,
    pub resume_grace: Duration,
    /// SSE replay ring and spectator queue sizes.
    pub spectators: SpectatorConfig,
}

/// Counters a room publishes for `/api/rooms` (read without asking the task).
/// Overflows (resyncs, drops) and overruns are counted once, in the room's
/// [`RoomMetrics`].
#[derive(Debug, Default)]
pub struct RoomStats {
    pub players: AtomicU32,
    /// WebSocket and SSE spectators (kept by the room task).
    pub spectators: AtomicU32,
    /// `curl` watchers (kept by the watch transport).
    pub watchers: AtomicU32,
    pub tick: AtomicU64,
    /// The room is asleep: nobody is in it, it does not tick.
    pub asleep: AtomicBool,
}

/// A joined subscriber: what its transport needs.
#[derive(Debug)]
pub struct Joined {
    pub sub: SubId,
    pub welcome: Welcome,
    pub outbox: Arc<Outbox>,
}

/// What a WebSocket spectator on the fan-out gets from its room: whole
/// server frames to write first (a welcome and a snapshot, or a snapshot
/// alone for a resync), the tick they end with, and the format's ring of
/// framed ticks from the one after.
#[derive(Debug)]
pub struct WsSpectating {
    pub preamble: Bytes,
    pub tick: u64,
    pub live: broadcast::Receiver<SseChunk>,
}

/// A command to a room task.
#[derive(Debug)]
pub enum RoomCmd {
    Join {
        hello: Hello,
        format: Format,
        reply: oneshot::Sender<Result<Joined, AdmitError>>,
    },
    /// An SSE spectator, resuming after `last_event_id` if given.
    Spectate {
        last_event_id: Option<u64>,
        reply: oneshot::Sender<Spectating>,
    },
    /// An SSE spectator fell a whole ring behind: a snapshot of now, and
    /// the ring from the next tick.
    SseResync {
        reply: oneshot::Sender<(Bytes, broadcast::Receiver<SseChunk>)>,
    },
    /// A WebSocket spectator on the fan-out: its welcome and a snapshot,
    /// framed, and its format's ring from the next tick.
    SpectateWs {
        format: Format,
        reply: oneshot::Sender<WsSpectating>,
    },
    /// A WebSocket spectator (or a fan-out shard of them) needs a
    /// keyframe: a framed snapshot of now and the ring from the next tick.
    WsResync {
        format: Format,
        reply: oneshot::Sender<WsSpectating>,
    },
    Input {
        sub: SubId,
        input: Input,
    },
    Chat {
        sub: SubId,
        text: String,
    },
    Resync {
        sub: SubId,
    },
    /// The connection dropped: a player keeps its snake for the grace period.
    Detach {
        sub: SubId,
    },
    /// The player left on purpose: its snake goes now.
    Leave {
        sub: SubId,
    },
}

/// A cheap, cloneable way to talk to a room.
#[derive(Clone, Debug)]
pub struct RoomHandle {
    pub config: Arc<RoomConfig>,
    pub stats: Arc<RoomStats>,
    commands: mpsc::Sender<RoomCmd>,
    world: watch::Receiver<Arc<WorldState>>,
    /// Watch frames rendered for this room, shared by its watchers.
    pub frames: Arc<crate::watch::stream::FrameCache>,
    /// The server's metrics, for the transports serving this room.
    pub metrics: Arc<Metrics>,
    /// This room's own metric handles.
    pub room_metrics: RoomMetrics,
    /// Wakes the room task to look at who is in it (a watcher arrived).
    wake: Arc<Notify>,
}

/// The room's task is gone (server shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the room has closed")]
pub struct RoomClosed;

impl RoomHandle {
    /// Starts a room task that records into `metrics`; it runs until
    /// `shutdown` turns true.
    pub fn spawn(
        config: RoomConfig,
        shutdown: watch::Receiver<bool>,
        metrics: Arc<Metrics>,
    ) -> RoomHandle {
        Self::spawn_closable(config, shutdown, metrics, None)
    }

    /// Like [`RoomHandle::spawn`], for a room that closes once it has been
    /// empty for `idle.after` (`None`: it never does).
    pub fn spawn_closable(
        config: RoomConfig,
        shutdown: watch::Receiver<bool>,
        metrics: Arc<Metrics>,
        idle: Option<IdleClose>,
    ) -> RoomHandle {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let config = Arc::new(config);
        let stats = Arc::new(RoomStats::default());
        let span = info_span!("room", id = %config.id);
        let room_metrics = metrics.room(&config.id);
        let frames = Arc::<crate::watch::stream::FrameCache>::default();
        let wake = Arc::new(Notify::new());
        let mut task = RoomTask::new(
            config.clone(),
            stats.clone(),
            room_metrics.clone(),
            Idle {
                wake: wake.clone(),
                frames: frames.clone(),
                close: idle,
                deadline: None,
            },
        );
        // Nobody is in a new room yet: it starts asleep (and says so before
        // anyone can look).
        task.sleep();
        let world = task.world_tx.subscribe();
        tokio::spawn(task.run(rx, shutdown).instrument(span));
        RoomHandle {
            config,
            stats,
            commands: tx,
            world,
            frames,
            metrics,
            room_metrics,
            wake,
        }
    }

    /// Tells a sleeping room to look at who is in it: a transport that
    /// counts itself in without a command (a watcher) calls this after it
    /// counted itself.
    pub fn wake(&self) {
        // A stored permit if the task is busy: the wake-up is never lost.
        self.wake.notify_one();
    }

    /// True when this is the only handle to the room left, so nobody else
    /// can send it anything (the registry checks this, under its lock,
    /// before it closes an idle room).
    pub fn is_sole_handle(&self) -> bool {
        self.commands.strong_count() == 1
    }

    /// The room's world after its latest tick; `changed()` fails once the
    /// room has closed.
    pub fn world(&self) -> watch::Receiver<Arc<WorldState>> {
        let mut rx = self.world.clone();
        rx.mark_changed();
        rx
    }

    /// Joins as an SSE spectator.
    pub async fn spectate_sse(&self, last_event_id: Option<u64>) -> Result<Spectating, RoomClosed> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(RoomCmd::Spectate {
                last_event_id,
                reply,
            })
            .await
            .map_err(|_| RoomClosed)?;
        rx.await.map_err(|_| RoomClosed)
    }

    /// A snapshot of the room now and its SSE ring from the next tick, for
    /// an SSE spectator that lagged a whole ring behind.
    pub async fn sse_resync(&self) -> Result<(Bytes, broadcast::Receiver<SseChunk>), RoomClosed> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(RoomCmd::SseResync { reply })
            .await
            .map_err(|_| RoomClosed)?;
        rx.await.map_err(|_| RoomClosed)
    }

    /// Joins as a WebSocket spectator on the fan-out, in `format`.
    pub async fn spectate_ws(&self, format: Format) -> Result<WsSpectating, RoomClosed> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(RoomCmd::SpectateWs { format, reply })
            .await
            .map_err(|_| RoomClosed)?;
        rx.await.map_err(|_| RoomClosed)
    }

    /// A framed snapshot of now and `format`'s ring from the next tick.
    pub async fn ws_resync(&self, format: Format) -> Result<WsSpectating, RoomClosed> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(RoomCmd::WsResync { format, reply })
            .await
            .map_err(|_| RoomClosed)?;
        rx.await.map_err(|_| RoomClosed)
    }

    /// Joins the room (player or spectator, per the hello).
    pub async fn join(
        &self,
        hello: Hello,
        format: Format,
    ) -> Result<Result<Joined, AdmitError>, RoomClosed> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(RoomCmd::Join {
                hello,
                format,
                reply,
            })
            .await
            .map_err(|_| RoomClosed)?;
        rx.await.map_err(|_| RoomClosed)
    }

    /// Queues a command without waiting; `false` if the room is busy or gone
    /// (the command is dropped: a flooding client only loses its own inputs).
    pub fn try_send(&self, cmd: RoomCmd) -> bool {
        self.commands.try_send(cmd).is_ok()
    }

    /// Sends a command that must not be lost (detach, leave).
    pub async fn send(&self, cmd: RoomCmd) {
        let _ = self.commands.send(cmd).await;
    }

    /// The room as `/api/rooms` shows it.
    pub fn info(&self) -> RoomInfo {
        RoomInfo {
            id: self.config.id.clone(),
            mode: self.config.mode,
            map: self.config.map_name.clone(),
            players: self.stats.players.load(Ordering::Relaxed),
            spectators: self.stats.spectators.load(Ordering::Relaxed)
                + self.stats.watchers.load(Ordering::Relaxed),
            max_players: self.config.max_players,
            tick_rate: self.config.tick_rate,
            speed: self.config.speed,
            tick: self.stats.tick.load(Ordering::Relaxed),
        }
    }
}

/// A WebSocket or polled subscriber (SSE spectators share `sse_live`).
struct Sub {
    player: Option<PlayerId>,
    format: Format,
    outbox: Arc<Outbox>,
    needs_keyframe: bool,
}

/// What a room needs to sleep, wake and close.
struct Idle {
    /// Rung by [`RoomHandle::wake`].
    wake: Arc<Notify>,
    /// The watch renders, emptied when the room falls asleep.
    frames: Arc<crate::watch::stream::FrameCache>,
    close: Option<IdleClose>,
    /// When a sleeping room tries to close next.
    deadline: Option<Instant>,
}

struct RoomTask {
    config: Arc<RoomConfig>,
    stats: Arc<RoomStats>,
    metrics: RoomMetrics,
    world: World,
    /// The world after the last tick, shared with watchers through `world_tx`.
    prev: Arc<WorldState>,
    world_tx: watch::Sender<Arc<WorldState>>,
    sse: SseFeed,
    /// Every SSE spectator's live ticks, sent once per tick; made when the
    /// first one arrives, dropped while the room sleeps.
    sse_live: Option<broadcast::Sender<SseChunk>>,
    /// The WebSocket spectators' rings, one per format (see [`wsring`]).
    ws_live: wsring::WsRings,
    players: Players,
    subs: BTreeMap<SubId, Sub>,
    next_sub: SubId,
    pending: Vec<SimInput>,
    /// Highest input seq queued per player for the next tick.
    pending_acks: BTreeMap<PlayerId, u64>,
    chat: Vec<ChatLine>,
    /// Asleep: nobody is in the room (see [`RoomTask::sleep`]).
    asleep: bool,
    idle: Idle,
}

impl RoomTask {
    fn new(
        config: Arc<RoomConfig>,
        stats: Arc<RoomStats>,
        metrics: RoomMetrics,
        idle: Idle,
    ) -> Self {
        let sim = SimConfig::for_room(config.mode, &config.map, config.tick_rate, config.speed);
        let world = World::new(config.map.clone(), sim, config.seed);
        let grace_ticks =
            (config.resume_grace.as_secs_f64() * config.tick_rate as f64).ceil() as u64;
        let prev = Arc::new(world.state().clone());
        RoomTask {
            world_tx: watch::Sender::new(prev.clone()),
            prev,
            sse: SseFeed::new(config.tick_rate, config.spectators.replay),
            sse_live: None,
            ws_live: wsring::WsRings::default(),
            world,
            players: Players::new(config.max_players, grace_ticks.max(1)),
            subs: BTreeMap::new(),
            next_sub: 1,
            pending: Vec::new(),
            pending_acks: BTreeMap::new(),
            chat: Vec::new(),
            asleep: false,
            idle,
            config,
            stats,
            metrics,
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<RoomCmd>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let period = Duration::from_secs_f64(1.0 / self.config.tick_rate.clamp(1, 60) as f64);
        let mut next = Instant::now() + period;
        loop {
            if self.asleep {
                // No timer but the idle deadline: a sleeping room costs
                // nothing until someone comes.
                let deadline = self.idle.deadline;
                tokio::select! {
                    biased;
                    _ = crate::clock::until_shutdown(&mut shutdown) => break,
                    cmd = commands.recv() => match cmd {
                        Some(cmd) => {
                            self.wake_up(&mut next, period);
                            self.handle(cmd);
                        }
                        None => break,
                    },
                    _ = self.idle.wake.notified() => {
                        if !self.is_empty() {
                            self.wake_up(&mut next, period);
                        }
                    }
                    _ = until(deadline) => {
                        if self.try_close(&mut commands) {
                            break;
                        }
                        self.idle.deadline = Some(Instant::now() + CLOSE_RETRY);
                    }
                }
                continue;
            }
            tokio::select! {
                biased;
                _ = crate::clock::until_shutdown(&mut shutdown) => break,
                _ = tokio::time::sleep_until(next) => {
                    // A span per tick (debug level: free unless asked for)
                    // times the tick for whoever subscribes to it.
                    tracing::debug_span!("tick").in_scope(|| self.tick());
                    if self.is_empty() {
                        self.sleep();
                        continue;
                    }
                    next += period;
                    // A tick that overran: count the ticks we could not start
                    // on time and keep the original phase, never bursting.
                    let now = Instant::now();
                    while next <= now {
                        next += period;
                        self.metrics.overruns.inc();
                    }
                }
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
            }
        }
        for sub in self.subs.values() {
            sub.outbox.close();
        }
        debug!("room stopped");
    }

    fn handle(&mut self, cmd: RoomCmd) {
        match cmd {
            RoomCmd::Join {
                hello,
                format,
                reply,
            } => {
                let joined = self.join(hello, format);
                if let Err(Ok(j)) = reply.send(joined) {
                    // The transport gave up waiting: undo.
                    self.detach(j.sub, false);
                }
            }
            RoomCmd::Spectate {
                last_event_id,
                reply,
            } => {
                // A spectator that gave up waiting drops its receiver.
                let _ = reply.send(self.spectate(last_event_id));
            }
            RoomCmd::SseResync { reply } => {
                let snapshot = self.sse.keyframe(self.world.state(), now_us());
                let _ = reply.send((snapshot, self.sse_sender().subscribe()));
            }
            RoomCmd::SpectateWs { format, reply } => {
                let mut preamble = Vec::new();
                let welcome = self.spectator_welcome();
                let welcome = encode(format, &ServerMsg::Welcome(Box::new(welcome)));
                crate::upgrade::push_frame(
                    &mut preamble,
                    crate::upgrade::data_opcode(format),
                    &welcome,
                );
                let (snapshot, tick, live) = self.ws_keyframe(format);
                preamble.extend_from_slice(&snapshot);
                debug!(?format, "websocket spectator on the fan-out");
                let _ = reply.send(WsSpectating {
                    preamble: preamble.into(),
                    tick,
                    live,
                });
            }
            RoomCmd::WsResync { format, reply } => {
                let (preamble, tick, live) = self.ws_keyframe(format);
                let _ = reply.send(WsSpectating {
                    preamble,
                    tick,
                    live,
                });
            }
            RoomCmd::Input { sub, input } => {
                let Some(id) = self.subs.get(&sub).and_then(|s| s.player) else {
                    return;
                };
                if self.players.accept_input(id, input.seq) {
                    self.pending.push(SimInput::Turn { id, dir: input.dir });
                    self.pending.push(SimInput::Boost {
                        id,
                        on: input.boost,
                    });
                    self.pending_acks.insert(id, input.seq);
                }
            }
            RoomCmd::Chat { sub, text } => {
                let from = match self.subs.get(&sub).and_then(|s| s.player) {
                    Some(id) => self.players.get(id).map(|p| p.name.clone()),
                    None => Some("spectator".to_string()),
                };
                let text = protocol::text::sanitize_chat(&text);
                if let (Some(from), false) = (from, text.is_empty()) {
                    self.chat.push(ChatLine { from, text });
                }
            }
            RoomCmd::Resync { sub } => {
                if let Some(s) = self.subs.get_mut(&sub) {
                    s.needs_keyframe = true;
                }
            }
            RoomCmd::Detach { sub } => self.detach(sub, false),
            RoomCmd::Leave { sub } => self.detach(sub, true),
        }
        self.publish_counts();
    }

    fn join(&mut self, hello: Hello, format: Format) -> Result<Joined, AdmitError> {
        let (player, resumed, name, token, session) = match hello.role {
            Role::Spectator => (
                None,
                false,
                "spectator".to_string(),
                random_hex128(),
                random_hex128()[..16].to_string(),
            ),
            Role::Player => {
                let (id, resumed) = self.players.admit(&hello.name, hello.token.as_deref())?;
                // Invariant: admit just returned this id.
                let p = self.players.get(id).expect("admitted player exists");
                let (name, token, session) = (p.name.clone(), p.token.clone(), p.session.clone());
                if resumed {
                    // A half-open old connection loses the player to the new one.
                    let old: Vec<_> = self
                        .subs
                        .iter()
                        .filter(|(_, s)| s.player == Some(id))
                        .map(|(k, _)| *k)
                        .collect();
                    for k in old {
                        if let Some(s) = self.subs.remove(&k) {
                            s.outbox.close();
                        }
                    }
                    self.pending.push(SimInput::Connected {
                        id,
                        connected: true,
                    });
                } else {
                    self.pending.push(SimInput::Join {
                        id,
                        name: name.clone(),
                    });
                }
                (Some(id), resumed, name, token, session)
            }
        };
        let sub = self.next_sub;
        self.next_sub += 1;
        let outbox = Arc::new(Outbox::new(DEFAULT_CAPACITY));
        self.subs.insert(
            sub,
            Sub {
                player,
                format,
                outbox: outbox.clone(),
                needs_keyframe: true,
            },
        );
        self.publish_counts();
        debug!(sub, ?player, resumed, "joined");
        Ok(Joined {
            sub,
            outbox,
            welcome: Welcome {
                player_id: player,
                session,
                token,
                room: self.config.id.clone(),
                mode: self.config.mode,
                tick_rate: self.config.tick_rate,
                speed: self.config.speed,
                map: self.world.map().clone(),
                resumed,
                name,
                server_time_us: now_us(),
            },
        })
    }

    /// A spectator's welcome: no snake, a fresh session and token.
    fn spectator_welcome(&self) -> Welcome {
        Welcome {
            player_id: None,
            session: random_hex128()[..16].to_string(),
            token: random_hex128(),
            room: self.config.id.clone(),
            mode: self.config.mode,
            tick_rate: self.config.tick_rate,
            speed: self.config.speed,
            map: self.world.map().clone(),
            resumed: false,
            name: "spectator".into(),
            server_time_us: now_us(),
        }
    }

    /// A framed snapshot of now in `format`, its tick, and the format's
    /// ring from the next tick (subscribed in the same step).
    fn ws_keyframe(&mut self, format: Format) -> (Bytes, u64, broadcast::Receiver<SseChunk>) {
        let state = self.world.state();
        let snapshot = SharedFrame::new(
            format,
            ServerMsg::Snapshot(Box::new(Snapshot {
                ack: 0,
                tick: state.tick,
                checksum: state.checksum(),
                server_time_us: now_us(),
                state: state.clone(),
            })),
        );
        let tick = state.tick;
        let framed = crate::upgrade::data_frame(format, &snapshot.bytes());
        let live = self.ws_live.subscribe(format, self.config.spectators.queue);
        (framed, tick, live)
    }

    fn spectate(&mut self, last_event_id: Option<u64>) -> Spectating {
        let (config, map) = (&self.config, self.world.map());
        let preamble = self
            .sse
            .join(last_event_id, self.world.state(), now_us(), || Welcome {
                player_id: None,
                session: String::new(),
                token: String::new(),
                room: config.id.clone(),
                mode: config.mode,
                tick_rate: config.tick_rate,
                speed: config.speed,
                map: map.clone(),
                resumed: false,
                name: "spectator".into(),
                server_time_us: now_us(),
            });
        // Subscribed in the same step as the preamble: the ring starts at
        // the tick after the one the preamble ends with.
        let live = self.sse_sender().subscribe();
        debug!(?last_event_id, "sse spectator joined");
        Spectating { live, preamble }
    }

    fn detach(&mut self, sub: SubId, leave: bool) {
        let Some(s) = self.subs.remove(&sub) else {
            return;
        };
        s.outbox.close();
        if let Some(id) = s.player {
            if leave {
                self.players.remove(id);
                self.pending.push(SimInput::Leave { id });
            } else {
                self.players.detach(id, self.world.state().tick);
                self.pending.push(SimInput::Connected {
                    id,
                    connected: false,
                });
            }
        }
    }

    /// The SSE ring, made if the room has none yet.
    fn sse_sender(&mut self) -> &broadcast::Sender<SseChunk> {
        let queue = self.config.spectators.queue.max(1);
        self.sse_live
            .get_or_insert_with(|| broadcast::Sender::new(queue))
    }

    /// SSE spectators reading the ring now.
    fn sse_receivers(&self) -> usize {
        self.sse_live
            .as_ref()
            .map_or(0, broadcast::Sender::receiver_count)
    }

    fn publish_counts(&self) {
        let spectators = self.subs.values().filter(|s| s.player.is_none()).count()
            + self.sse_receivers()
            + self.ws_live.receivers();
        self.stats
            .players
            .store(self.players.len() as u32, Ordering::Relaxed);
        self.stats
            .spectators
            .store(spectators as u32, Ordering::Relaxed);
        self.metrics.sessions.set(self.players.len() as i64);
    }

    fn tick(&mut self) {
        let started = Instant::now();
        for id in self.players.expire(self.world.state().tick) {
            self.pending.push(SimInput::Leave { id });
        }
        let inputs = std::mem::take(&mut self.pending);
        let events = self.world.step(&inputs);
        for (id, seq) in std::mem::take(&mut self.pending_acks) {
            self.players.applied(id, seq);
        }
        let state = self.world.state();
        let server_time_us = now_us();
        let checksum = state.checksum();
        let tick = TickFrame {
            ack: 0,
            tick: state.tick,
            checksum,
            server_time_us,
            delta: state.diff(&self.prev),
            events,
        };
        let sse_subs = self.sse_receivers() > 0;
        if let (Some(ev), Some(live)) = (self.sse.tick(sse_subs, &tick, &self.chat), &self.sse_live)
        {
            // No receiver left (they all went since the count): nothing to do.
            let _ = live.send(SseChunk {
                tick: tick.tick,
                bytes: ev,
                produced: started,
            });
        }
        let frame = ServerMsg::Tick(Box::new(tick));
        // Encoded at most once per format, and only for formats in use.
        let mut ticks: [Option<SharedFrame>; 2] = [None, None];
        let mut keys: [Option<SharedFrame>; 2] = [None, None];
        let mut chats: [Option<Vec<Bytes>>; 2] = [None, None];
        let slot = |f: Format| match f {
            Format::Json => 0,
            Format::Bincode => 1,
        };
        let mut closed = Vec::new();
        for (&id, sub) in self.subs.iter_mut() {
            let keyframe = std::mem::take(&mut sub.needs_keyframe);
            let dropped_before = sub.outbox.dropped();
            let mut outcomes = [Pushed::Queued; 2];
            {
                let format = sub.format;
                {
                    let i = slot(format);
                    let ack = sub
                        .player
                        .and_then(|id| self.players.get(id))
                        .map_or(0, |p| p.ack);
                    // A player's ack is a head of its own before the shared
                    // tail: nothing shared is copied per player.
                    let (head, tail) = if keyframe {
                        keys[i]
                            .get_or_insert_with(|| {
                                SharedFrame::new(
                                    format,
                                    ServerMsg::Snapshot(Box::new(Snapshot {
                                        ack: 0,
                                        tick: state.tick,
                                        checksum,
                                        server_time_us,
                                        state: state.clone(),
                                    })),
                                )
                            })
                            .parts(ack)
                    } else {
                        ticks[i]
                            .get_or_insert_with(|| SharedFrame::new(format, frame.clone()))
                            .parts(ack)
                    };
                    outcomes[0] = sub.outbox.push_parts(head, tail, started);
                    if !self.chat.is_empty() {
                        let lines = chats[i].get_or_insert_with(|| {
                            self.chat
                                .iter()
                                .map(|c| encode(format, &ServerMsg::Chat(c.clone())))
                                .collect()
                        });
                        for b in lines.iter() {
                            let pushed = sub.outbox.push_at(b.clone(), started);
                            if pushed != Pushed::Queued {
                                outcomes[1] = pushed;
                            }
                        }
                    }
                }
            }
            if outcomes.contains(&Pushed::Overflowed) {
                sub.needs_keyframe = true;
                self.metrics.resyncs.inc();
                // What the outbox dropped, exactly.
                self.metrics
                    .dropped
                    .inc_by(sub.outbox.dropped() - dropped_before);
            }
            if outcomes.contains(&Pushed::Closed) {
                closed.push(id);
            }
        }
        // The WebSocket spectators' rings: the same shared encodings, framed
        // once per format for all of them.
        for format in [Format::Json, Format::Bincode] {
            if !self.ws_live.wanted(format) {
                continue;
            }
            let i = slot(format);
            let tick = ticks[i]
                .get_or_insert_with(|| SharedFrame::new(format, frame.clone()))
                .bytes();
            let chat = chats[i].get_or_insert_with(|| {
                self.chat
                    .iter()
                    .map(|c| encode(format, &ServerMsg::Chat(c.clone())))
                    .collect()
            });
            let bytes = wsring::tick_frames(format, &tick, chat);
            self.ws_live.send(
                format,
                SseChunk {
                    tick: state.tick,
                    bytes,
                    produced: started,
                },
            );
        }
        for id in closed {
            // The reader went away.
            self.detach(id, false);
        }
        self.chat.clear();
        self.prev = Arc::new(self.world.state().clone());
        self.world_tx.send_replace(self.prev.clone());
        self.stats.tick.store(self.prev.tick, Ordering::Relaxed);
        self.publish_counts();
        self.metrics
            .tick_duration
            .observe_duration(started.elapsed());
    }
}
