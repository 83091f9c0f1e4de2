//! Runs brains over the real client stack: one client task per bot, a
//! [`GameView`] fed its events, a decision after every frame, and the
//! figures headless reports show. A bot can also report live (its lag and
//! its state) to a screen: the compare view's observers are bots.

use std::time::{Duration, Instant};

use protocol::{Format, PlayerId, Role, Score, ServerMsg};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::reaction::Reaction;
use super::start::{SpawnWatch, start_dir};
use super::{BotKind, BotMix};
use crate::client::{self, ClientConfig, ClientEvent, ClosedReason};
use crate::lag::{LagSnapshot, LagSummary};
use crate::view::{GameView, Handled};

/// How long a stopped bot may take to leave before it is cut off.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// One bot: where it plays and with which brain.
#[derive(Clone, Debug)]
pub struct BotConfig {
    /// The client it runs over (name, room, format, transport, ...).
    pub client: ClientConfig,
    /// Its brain.
    pub kind: BotKind,
    /// Seed of its brain.
    pub seed: u64,
    /// Its reaction time: it acts on the world it received this long ago
    /// (zero: on every frame as it arrives).
    pub reaction: Duration,
    /// Where to report live, under which index (see [`BotUpdate`]).
    pub live: Option<(usize, mpsc::Sender<BotUpdate>)>,
}

/// Where a bot stands, for a live screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BotPhase {
    /// Opening the connection (attempt 1 is the first).
    Connecting(u32),
    /// Welcomed as a player.
    Playing,
    /// Welcomed as a spectator.
    Watching,
    /// Lost the link; retrying.
    Reconnecting(String),
    /// Ended for good (why, for people).
    Closed(String),
}

/// A live report of one bot: sent on every lag report and state change,
/// and dropped when the screen is behind (the next one says it all).
#[derive(Clone, Debug)]
pub struct BotUpdate {
    /// The index it was given in [`BotConfig::live`].
    pub index: usize,
    /// Its name as the server accepted it.
    pub name: String,
    /// Where it stands.
    pub phase: BotPhase,
    /// Its latest lag figures.
    pub lag: Option<Box<LagSnapshot>>,
    /// Frames that moved its world forward.
    pub ticks_seen: u64,
    /// Checksum mismatches.
    pub desyncs: u64,
    /// Its snake's length (0 when dead or watching).
    pub length: u32,
}

impl BotConfig {
    /// `count` bots for `room` on `server`, named `{prefix}-1`.., brains
    /// from `mix`, bot `i` (from 0) seeded with `seed + i`, reconnecting.
    pub fn swarm(
        server: &str,
        room: &str,
        count: u32,
        mix: BotMix,
        prefix: &str,
        seed: u64,
        format: Format,
    ) -> Vec<BotConfig> {
        (0..count)
            .map(|i| {
                let mut client = ClientConfig::new(server, room, format!("{prefix}-{}", i + 1));
                client.format = format;
                // Bots report once, at the end; live screens ask for more.
                client.lag_every = None;
                BotConfig {
                    client,
                    kind: mix.kind(i as usize),
                    seed: seed.wrapping_add(u64::from(i)),
                    reaction: Duration::ZERO,
                    live: None,
                }
            })
            .collect()
    }
}

/// What one bot saw, for reports.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BotStats {
    /// The name the server accepted (the requested one until welcomed).
    pub name: String,
    /// Brain kind.
    pub bot: String,
    /// Player id from the last welcome.
    pub player_id: Option<PlayerId>,
    /// Transport name (`ws`, `sse`, `longpoll`, `poll`; what `auto` picked).
    pub transport: String,
    /// `player`, or `spectator` (over SSE, which carries no input).
    pub role: String,
    /// Wire format (`json` or `bincode`).
    pub format: String,
    /// True once welcomed at least once.
    pub connected: bool,
    /// Frames (ticks and snapshots) received.
    pub frames: u64,
    /// Frames that moved the rebuilt world forward.
    pub ticks_seen: u64,
    /// Snapshots received.
    pub keyframes: u64,
    /// Deaths, from the server's scoreboard.
    pub deaths: u32,
    /// Deaths seen in the tick events, by cause (`wall`, `own`, `body`,
    /// `head_on`): what kills a bot, for tuning brains.
    pub death_causes: std::collections::BTreeMap<String, u32>,
    /// Last scoreboard row seen for this bot.
    pub score: Score,
    /// Best length reached.
    pub best: u32,
    /// Frames whose checksum did not match the rebuilt world.
    pub desyncs: u64,
    /// Frames that skipped a tick.
    pub gaps: u64,
    /// Welcomes after the first (resumes or fresh rejoins).
    pub reconnects: u32,
    /// Highest input seq the server acknowledged.
    pub acked: u64,
    /// Server errors and an abnormal end, as text.
    pub errors: Vec<String>,
    /// What its transport cost, over the whole run.
    pub lag: Option<LagSummary>,
    /// The last lag snapshot, with the histograms a report merges.
    #[serde(skip)]
    pub lag_run: Option<Box<LagSnapshot>>,
}

/// Names a format the way reports and the CLI do.
pub fn format_name(f: Format) -> &'static str {
    match f {
        Format::Json => "json",
        Format::Bincode => "bincode",
    }
}

/// Runs one bot until `stop` turns true (then it leaves) or its client
/// task ends on its own.
pub async fn run_bot(config: BotConfig, mut stop: watch::Receiver<bool>) -> BotStats {
    let role = config.client.role;
    let mut stats = BotStats {
        name: config.client.name.clone(),
        bot: config.kind.name().to_string(),
        transport: config.client.transport.name().to_string(),
        role: match role {
            Role::Player => "player",
            Role::Spectator => "spectator",
        }
        .to_string(),
        format: format_name(config.client.format).to_string(),
        ..BotStats::default()
    };
    let live = config.live;
    let mut phase = BotPhase::Connecting(1);
    let (handle, mut events) = client::spawn(config.client);
    let mut brain = config.kind.brain(config.seed);
    let mut view: Option<GameView> = None;
    // What the brain acts on: the view as it was `reaction` ago.
    let mut eye = Reaction::new(config.reaction);
    let mut seen: Option<GameView> = None;
    let mut spawn = SpawnWatch::default();
    // Cells per second, from the welcome (an older server: one per tick).
    let mut speed = 0;
    // Steers sent and when, oldest first: a late bot knows what it
    // already did (kept while they can still be in flight).
    let mut steers: std::collections::VecDeque<(Instant, protocol::Dir)> =
        std::collections::VecDeque::new();
    let mut stopping = false;
    loop {
        let ev = tokio::select! {
            ev = events.recv() => ev,
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                handle.leave();
                continue;
            }
        };
        let Some(ev) = ev else { break };
        let mut changed = false;
        match ev {
            // `auto` reports what it picked: the report names that.
            ClientEvent::TransportChosen { transport, .. } => {
                stats.transport = transport.name().to_string();
            }
            ClientEvent::InputSent { .. } | ClientEvent::Moved { .. } => {}
            ClientEvent::Connecting { attempt } => {
                if !matches!(phase, BotPhase::Reconnecting(_)) {
                    phase = BotPhase::Connecting(attempt);
                }
                changed = true;
            }
            ClientEvent::Disconnected { reason, retrying } => {
                phase = if retrying {
                    BotPhase::Reconnecting(reason)
                } else {
                    BotPhase::Closed(reason)
                };
                changed = true;
            }
            ClientEvent::Lag(lag) => {
                stats.lag = Some(lag.summary());
                stats.lag_run = Some(lag);
                changed = true;
            }
            ClientEvent::Welcome(w) => {
                phase = match role {
                    Role::Player => BotPhase::Playing,
                    Role::Spectator => BotPhase::Watching,
                };
                changed = true;
                match view.as_mut() {
                    Some(v) => {
                        v.rewelcome(&w);
                        stats.reconnects += 1;
                    }
                    None => view = Some(GameView::new(&w)),
                }
                eye.clear();
                seen = None;
                speed = if w.speed > 0 { w.speed } else { w.tick_rate };
                brain.foresee(super::reaction::cells_in(eye.delay(), speed));
                stats.connected = true;
                stats.player_id = w.player_id;
                stats.name = w.name.clone();
            }
            ClientEvent::Server(msg) => {
                if let ServerMsg::Error(e) = &msg {
                    stats.errors.push(format!("{}: {}", e.code, e.message));
                }
                let Some(v) = view.as_mut() else { continue };
                count_deaths(&mut stats, v.me, &msg);
                match v.handle(&msg) {
                    Handled::Advanced => {
                        stats.ticks_seen += 1;
                        if let Some(me) = v.my_snake() {
                            stats.score = me.score;
                        }
                        if !stopping {
                            // Received now: the client's receive time.
                            let now = Instant::now();
                            let delayed = if eye.delay().is_zero() {
                                Some(&*v)
                            } else if let Some((at, mut w)) =
                                v.world.as_ref().and_then(|w| eye.handle_world(now, w))
                            {
                                let s = seen.get_or_insert_with(|| v.clone());
                                if let Some(me) = s.me {
                                    let pace = super::reaction::Pace {
                                        tick_rate: s.tick_rate,
                                        speed,
                                    };
                                    let laps = super::reaction::laps(
                                        at,
                                        w.tick,
                                        pace,
                                        eye.delay(),
                                        steers.make_contiguous(),
                                    );
                                    super::reaction::anticipate(&mut w, &s.map, me, &laps);
                                }
                                s.world = Some(w);
                                Some(&*s)
                            } else {
                                None
                            };
                            if let Some(eyes) = delayed
                                && let Some(d) = act(&mut *brain, &mut spawn, eyes, &handle)
                            {
                                steers.push_back((now, d));
                            }
                            // A second of steers covers any reaction time
                            // a person has, and the still ticks before it.
                            while steers.front().is_some_and(|(t, _)| {
                                now.duration_since(*t) > eye.delay() + Duration::from_secs(1)
                            }) {
                                steers.pop_front();
                            }
                        }
                    }
                    Handled::NeedKeyframe(e) => {
                        tracing::warn!(bot = %stats.name, error = %e, "lost the world; resyncing");
                        handle.resync();
                    }
                    Handled::Other => {}
                }
            }
            ClientEvent::Closed { reason } => {
                if reason != ClosedReason::Left {
                    stats.errors.push(reason.to_string());
                }
                phase = BotPhase::Closed(reason.to_string());
                report_live(&live, &stats, &phase, view.as_ref());
                break;
            }
        }
        if changed {
            report_live(&live, &stats, &phase, view.as_ref());
        }
    }
    if let Some(v) = &view {
        stats.frames = v.stats.frames;
        stats.keyframes = v.stats.keyframes;
        stats.desyncs = v.stats.desyncs;
        stats.gaps = v.stats.gaps;
        stats.acked = v.acked;
    }
    stats.deaths = stats.score.deaths;
    stats.best = stats.score.best;
    stats
}

/// Counts this bot's deaths in a tick's events by cause.
fn count_deaths(stats: &mut BotStats, me: Option<PlayerId>, msg: &ServerMsg) {
    let ServerMsg::Tick(t) = msg else { return };
    for e in &t.events {
        if let protocol::GameEvent::Died { id, cause, .. } = e
            && Some(*id) == me
        {
            let name = match cause {
                protocol::DeathCause::Wall => "wall",
                protocol::DeathCause::Own => "own",
                protocol::DeathCause::Body => "body",
                protocol::DeathCause::HeadOn => "head_on",
            };
            *stats.death_causes.entry(name.to_string()).or_default() += 1;
        }
    }
}

/// One decision on the world the bot sees: steer where its brain says,
/// and start its snake when it waits at its spawn point or is parked (a
/// bot never keeps the others waiting). Returns the turn it asked for.
pub fn act(
    brain: &mut (dyn super::Brain + Send),
    spawn: &mut SpawnWatch,
    eyes: &GameView,
    handle: &client::ClientHandle,
) -> Option<protocol::Dir> {
    let me = eyes.my_snake();
    spawn.observe(eyes.mode, me);
    let want = brain.decide(eyes);
    match me {
        Some(s) if spawn.needs_start() => {
            let d = start_dir(s.dir, want);
            handle.steer(d);
            spawn.started();
            Some(d).filter(|d| *d != s.dir.opposite())
        }
        _ => {
            let d = want.filter(|d| me.is_some_and(|s| s.dir != *d))?;
            handle.steer(d);
            Some(d)
        }
    }
}

/// Tells the live screen, if any, where the bot stands (never waits).
fn report_live(
    live: &Option<(usize, mpsc::Sender<BotUpdate>)>,
    stats: &BotStats,
    phase: &BotPhase,
    view: Option<&GameView>,
) {
    let Some((index, tx)) = live else { return };
    let update = BotUpdate {
        index: *index,
        name: stats.name.clone(),
        phase: phase.clone(),
        lag: stats.lag_run.clone(),
        ticks_seen: stats.ticks_seen,
        desyncs: view.map_or(0, |v| v.stats.desyncs),
        length: view
            .and_then(GameView::my_snake)
            .filter(|s| s.alive)
            .map_or(0, |s| s.score.length),
    };
    // A full channel means the screen is behind: it gets the next one.
    let _ = tx.try_send(update);
}

/// A group of bots running until stopped.
pub struct Swarm {
    stop: watch::Sender<bool>,
    bots: Vec<(String, JoinHandle<BotStats>)>,
    /// Closes when every bot task has ended (each holds a sender).
    running: mpsc::Receiver<()>,
}

impl Swarm {
    /// Starts every bot on the current runtime.
    pub fn spawn(configs: Vec<BotConfig>) -> Swarm {
        let (stop, stop_rx) = watch::channel(false);
        let (alive, running) = mpsc::channel(1);
        let bots = configs
            .into_iter()
            .map(|c| {
                let name = c.client.name.clone();
                let (stop, alive) = (stop_rx.clone(), alive.clone());
                let task = tokio::spawn(async move {
                    let stats = run_bot(c, stop).await;
                    drop(alive);
                    stats
                });
                (name, task)
            })
            .collect();
        Swarm {
            stop,
            bots,
            running,
        }
    }

    /// Returns once every bot has ended on its own (all refused, or the
    /// server went away for good); pending while any still plays.
    pub async fn finished(&mut self) {
        while self.running.recv().await.is_some() {}
    }

    /// How many bots it runs.
    pub fn len(&self) -> usize {
        self.bots.len()
    }

    /// True when it runs no bot.
    pub fn is_empty(&self) -> bool {
        self.bots.is_empty()
    }

    /// Makes every bot leave and returns their figures, in start order. A
    /// bot that does not finish within [`LEAVE_TIMEOUT`] is cut off and
    /// reported with an error.
    pub async fn stop(self) -> Vec<BotStats> {
        let _ = self.stop.send(true);
        let mut out = Vec::with_capacity(self.bots.len());
        for (name, mut task) in self.bots {
            let stats = match tokio::time::timeout(LEAVE_TIMEOUT, &mut task).await {
                Ok(Ok(stats)) => stats,
                Ok(Err(e)) => failed(name, format!("bot task failed: {e}")),
                Err(_) => {
                    task.abort();
                    failed(name, format!("did not leave within {LEAVE_TIMEOUT:?}"))
                }
            };
            out.push(stats);
        }
        out
    }
}

fn failed(name: String, error: String) -> BotStats {
    BotStats {
        name,
        errors: vec![error],
        ..BotStats::default()
    }
}
