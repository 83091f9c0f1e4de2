//! The async shell around [`App`]: one `select!` over the keyboard
//! (crossterm's `EventStream`), the client task's events, the lobby's HTTP
//! answers, signals and a fixed render interval. It never waits on the
//! network itself: the client and HTTP calls run in their own tasks.

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;
use protocol::Role;
use protocol::api::{CreateRoom, RoomInfo};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, mpsc};

use super::app::{App, Effect};
use super::net::Api;
use super::render;
use crate::bot::{BotConfig, BotKind, BotUpdate, Swarm};
use crate::client::{
    self, ClientConfig, ClientEvent, ClientHandle, Conditioner, LAG_EVERY, TransportKind,
};

/// Redraws at most this often (only when something changed).
const FRAME: Duration = Duration::from_millis(33);
/// How often the room list is refreshed (lobby, and the room panel).
const ROOMS_EVERY: Duration = Duration::from_secs(2);
/// How long leaving may take at quit.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Set in the environment, the UI panics after drawing the game once (for
/// the test that the terminal is restored on a panic).
pub const PANIC_ENV: &str = "TICKWIRE_TEST_PANIC";

/// Who to be on the server.
#[derive(Clone, Debug)]
pub struct Identity {
    pub server: String,
    pub name: String,
    /// Transport when playing.
    pub transport: TransportKind,
    /// Transport when watching (SSE unless the user chose one).
    pub watch_transport: TransportKind,
    /// Time between short polls (the compare view's poll column too).
    pub poll_interval: Duration,
    /// Delay every connection's traffic (`--conditioner`).
    pub conditioner: Option<Conditioner>,
}

/// HTTP answers for the loop.
enum Net {
    Rooms(Result<Vec<RoomInfo>, String>),
    Created(Result<RoomInfo, String>),
}

/// One connection to a room.
struct Conn {
    handle: ClientHandle,
    events: mpsc::Receiver<ClientEvent>,
}

/// The compare view's observers: one bot per transport, reporting live.
struct CompareRun {
    swarm: Swarm,
    updates: mpsc::Receiver<BotUpdate>,
}

impl CompareRun {
    /// Joins `room` over every transport: players (a survival brain, so
    /// inputs and their latency are real) and an SSE spectator.
    fn start(id: &Identity, room: &str) -> CompareRun {
        let (tx, updates) = mpsc::channel(64);
        let configs = TransportKind::ALL
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let t = match t {
                    TransportKind::Poll { .. } => TransportKind::Poll {
                        interval: id.poll_interval,
                    },
                    other => other,
                };
                let name = super::app::compare::observer_name(t);
                let mut client = ClientConfig::new(&id.server, room, name);
                client.transport = t;
                client.role = if t.can_play() {
                    Role::Player
                } else {
                    Role::Spectator
                };
                client.conditioner = id.conditioner;
                client.lag_every = Some(LAG_EVERY);
                BotConfig {
                    client,
                    kind: BotKind::Survival,
                    seed: i as u64 + 1,
                    reaction: std::time::Duration::ZERO,
                    live: Some((i, tx.clone())),
                }
            })
            .collect();
        CompareRun {
            swarm: Swarm::spawn(configs),
            updates,
        }
    }

    /// Lets the observers leave in the background.
    fn stop(self) {
        tokio::spawn(self.swarm.stop());
    }
}

async fn next_update(run: &mut Option<CompareRun>) -> Option<BotUpdate> {
    match run {
        Some(r) => r.updates.recv().await,
        None => std::future::pending().await,
    }
}

fn connect(app: &mut App, id: &Identity, room: &str, spectate: bool) -> Conn {
    let mut config = ClientConfig::new(&id.server, room, &id.name);
    config.transport = if spectate {
        id.watch_transport
    } else {
        id.transport
    };
    config.conditioner = id.conditioner;
    app.session.transport = config.transport.name();
    config.role = if spectate {
        Role::Spectator
    } else {
        Role::Player
    };
    let (handle, events) = client::spawn(config);
    Conn { handle, events }
}

async fn next_event(conn: &mut Option<Conn>) -> Option<ClientEvent> {
    match conn {
        Some(c) => c.events.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs the UI on `terminal` until the user quits, stdin closes or a
/// signal (SIGTERM, SIGHUP) arrives.
pub async fn run(
    terminal: &mut ratatui::DefaultTerminal,
    mut app: App,
    id: Identity,
) -> anyhow::Result<()> {
    let mut keys = EventStream::new();
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let api = Api::new(&id.server);
    let (net_tx, mut net_rx) = mpsc::channel::<Net>(8);
    let refresh = Arc::new(Notify::new());
    let poller = {
        let (api, tx, refresh) = (api.clone(), net_tx.clone(), refresh.clone());
        tokio::spawn(async move {
            loop {
                if tx.send(Net::Rooms(api.rooms().await)).await.is_err() {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(ROOMS_EVERY) => {}
                    () = refresh.notified() => {}
                }
            }
        })
    };
    let mut conn = app.room.clone().map(|room| {
        let spectate = app.spectating;
        connect(&mut app, &id, &room, spectate)
    });
    let mut compare = app
        .compare
        .as_ref()
        .map(|c| CompareRun::start(&id, &c.room));
    // Lets the end-to-end test prove the terminal survives a panic.
    let panic_after_draw = std::env::var_os(PANIC_ENV).is_some();
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    let result = loop {
        let effect = tokio::select! {
            ev = keys.next() => match ev {
                Some(Ok(Event::Key(k))) => app.on_key(k),
                Some(Ok(Event::Resize(..))) => {
                    app.touch();
                    None
                }
                Some(Ok(_)) => None,
                Some(Err(e)) => break Err(anyhow::anyhow!("terminal input failed: {e}")),
                None => break Ok(()),
            },
            ev = next_event(&mut conn) => match ev {
                Some(ev) => app.on_client(ev),
                None => {
                    conn = None;
                    None
                }
            },
            Some(u) = next_update(&mut compare) => {
                app.on_compare(u);
                None
            }
            Some(net) = net_rx.recv() => match net {
                Net::Rooms(r) => {
                    app.on_rooms(r);
                    None
                }
                Net::Created(r) => app.on_created(r),
            },
            _ = frame.tick() => {
                if app.take_dirty()
                    && let Err(e) = terminal.draw(|f| render::draw(&app, f))
                {
                    break Err(e.into());
                }
                if panic_after_draw && app.screen == super::app::Screen::Game {
                    panic!("{PANIC_ENV} is set: panicking on purpose");
                }
                None
            }
            _ = sigterm.recv() => break Ok(()),
            _ = sighup.recv() => break Ok(()),
        };
        if let Some(effect) = effect {
            let c = conn.as_ref().map(|c| &c.handle);
            match effect {
                Effect::Steer(d) => c.into_iter().for_each(|h| h.steer(d)),
                Effect::Boost(on) => c.into_iter().for_each(|h| h.boost(on)),
                Effect::Chat(t) => c.into_iter().for_each(|h| h.chat(t.clone())),
                Effect::Resync => c.into_iter().for_each(ClientHandle::resync),
                Effect::Join { room, spectate } => {
                    if let Some(old) = conn.take() {
                        old.handle.leave();
                    }
                    if let Some(old) = compare.take() {
                        old.stop();
                    }
                    conn = Some(connect(&mut app, &id, &room, spectate));
                    refresh.notify_one();
                }
                Effect::Compare { room } => {
                    if let Some(old) = conn.take() {
                        old.handle.leave();
                    }
                    if let Some(old) = compare.take() {
                        old.stop();
                    }
                    compare = Some(CompareRun::start(&id, &room));
                }
                Effect::Lobby => {
                    if let Some(old) = conn.take() {
                        old.handle.leave();
                    }
                    if let Some(old) = compare.take() {
                        old.stop();
                    }
                    refresh.notify_one();
                }
                Effect::RefreshRooms => refresh.notify_one(),
                Effect::CreateRoom(body) => spawn_create(&api, body, net_tx.clone()),
                Effect::Quit => {}
            }
        }
        if app.quit {
            break Ok(());
        }
    };
    poller.abort();
    if let Some(run) = compare {
        let _ = tokio::time::timeout(LEAVE_TIMEOUT, run.swarm.stop()).await;
    }
    if let Some(mut c) = conn {
        c.handle.leave();
        // Wait for the leave to go out, briefly: quitting must stay snappy.
        let _ = tokio::time::timeout(LEAVE_TIMEOUT, async {
            while let Some(ev) = c.events.recv().await {
                if matches!(ev, ClientEvent::Closed { .. }) {
                    break;
                }
            }
        })
        .await;
    }
    result
}

fn spawn_create(api: &Api, body: CreateRoom, tx: mpsc::Sender<Net>) {
    let api = api.clone();
    tokio::spawn(async move {
        let _ = tx.send(Net::Created(api.create(&body).await)).await;
    });
}
