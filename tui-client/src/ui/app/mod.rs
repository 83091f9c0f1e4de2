//! The UI's state and everything that changes it. Sans-IO: keys, client
//! events and HTTP answers go in, [`Effect`]s (what the shell must do:
//! steer, chat, join, quit, ...) come out. Rendering reads an `App` and
//! never changes it. Key handling is in `keys`.

pub mod compare;
mod keys;

use std::collections::VecDeque;

use protocol::api::{CreateRoom, RoomInfo};
use protocol::text::{sanitize_chat, sanitize_line};
use protocol::{Dir, GameEvent, Mode, PlayerId, Pos, ServerMsg};

use super::theme::Theme;
use crate::bot::{BotUpdate, SpawnWatch, Waiting, start_dir};
use crate::client::{ClientEvent, ClosedReason};
use crate::lag::LagSnapshot;
use crate::view::{GameView, Handled};

pub use compare::{Column, Compare};

/// Lines kept in the chat/event log.
pub const LOG_LINES: usize = 200;
/// Chat lines we sent, kept for Up/Down recall.
pub const SENT_HISTORY: usize = 50;
/// Built-in maps the create-room form cycles through.
pub const MAPS: [&str; 4] = ["arena", "small", "maze", "big"];

/// Facts fixed for the whole run.
#[derive(Clone, Debug)]
pub struct Session {
    /// Server base URL.
    pub server: String,
    /// True when the server runs inside this process.
    pub embedded: bool,
    /// Transport name for the status bar.
    pub transport: &'static str,
    /// The name we asked for.
    pub name: String,
    /// Whether a lobby exists to go back to (a remote server).
    pub has_lobby: bool,
    /// `--spectate`: Enter in the lobby watches instead of playing.
    pub watch: bool,
    /// The link conditioner every connection goes through, if any.
    pub conditioner: Option<crate::client::Conditioner>,
}

/// What the shell must do after a key or an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Steer(Dir),
    Boost(bool),
    Chat(String),
    /// The view lost track of the world: ask for a keyframe.
    Resync,
    /// Connect to `room` (leaving any current one).
    Join {
        room: String,
        spectate: bool,
    },
    /// Leave the room and show the lobby.
    Lobby,
    /// Fetch the room list now.
    RefreshRooms,
    /// Open the compare view on `room`: one observer per transport
    /// (leaving any current room).
    Compare {
        room: String,
    },
    CreateRoom(CreateRoom),
    Quit,
}

/// Which screen fills the terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Screen {
    /// Before the first welcome.
    Connecting,
    Lobby,
    Game,
    /// Every transport side by side on one room.
    Compare,
    /// The connection ended for good.
    Failed(Failure),
}

/// An error shown as a screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub title: String,
    pub message: String,
}

/// The connection as the status bar shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkState {
    Connecting { attempt: u32 },
    Connected,
    Reconnecting { attempt: u32, reason: String },
}

/// What is drawn over the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    ConfirmQuit,
}

/// Where a spectator's (or a dead player's) camera looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Camera {
    /// Centred on a snake (ours when playing).
    Follow,
    /// Panned by hand, centred on this cell.
    Free(Pos),
}

/// One line of the chat panel: a chat message or a game event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogLine {
    Chat { from: String, text: String },
    Event(String),
}

/// The create-room form of the lobby.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateForm {
    pub id: String,
    pub mode: Mode,
    /// Index into [`MAPS`].
    pub map: usize,
    /// Snake speed in cells per second; `None`: the mode's default.
    pub speed: Option<u32>,
}

impl CreateForm {
    /// The speed the room will get.
    pub fn speed_or_default(&self) -> u32 {
        self.speed
            .unwrap_or_else(|| game_server::sim::pace::default_speed(self.mode))
    }

    /// One cell per second faster (`up`) or slower, within what a room
    /// accepts.
    pub fn nudge_speed(&mut self, up: bool) {
        let now = self.speed_or_default();
        let next = if up { now + 1 } else { now.saturating_sub(1) };
        self.speed = Some(next.clamp(1, game_server::sim::pace::MAX_SPEED));
    }
}

/// The lobby screen's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lobby {
    /// `None` until the first answer.
    pub rooms: Option<Vec<RoomInfo>>,
    pub selected: usize,
    /// Last error or confirmation.
    pub note: Option<String>,
    /// The note is an error that the next good answer clears.
    pub note_is_error: bool,
    pub create: Option<CreateForm>,
}

/// The whole UI state.
#[derive(Clone, Debug)]
pub struct App {
    pub session: Session,
    pub theme: Theme,
    pub screen: Screen,
    pub room: Option<String>,
    pub spectating: bool,
    pub view: Option<GameView>,
    pub link: LinkState,
    /// The client's latest lag figures (status bar, net panel).
    pub lag: Option<Box<LagSnapshot>>,
    /// `n`: the net panel with the last minute of lag figures.
    pub net_panel: bool,
    /// The compare view's observers, while it is open.
    pub compare: Option<Compare>,
    pub overlay: Overlay,
    /// The chat line being typed, while typing.
    pub chat_input: Option<String>,
    sent: VecDeque<String>,
    recall: Option<usize>,
    pub boost: bool,
    pub camera: Camera,
    /// The snake a spectator follows.
    pub followed: Option<PlayerId>,
    /// Where the camera looked last (kept while our snake is dead).
    pub last_center: Option<Pos>,
    pub log: VecDeque<LogLine>,
    /// How our snake died last (for the death screen).
    pub death_note: Option<String>,
    /// Whether our snake waits for us (fresh at its spawn point, or
    /// parked for never steering): the arena then says how to start.
    pub spawn: SpawnWatch,
    /// This room's entry in the last `GET /api/rooms`.
    pub room_info: Option<RoomInfo>,
    /// The node a cluster's redirect led to, when not `session.server`.
    pub moved: Option<String>,
    pub lobby: Lobby,
    pub quit: bool,
    dirty: bool,
}

impl App {
    /// A fresh UI: the lobby when `room` is `None`, else connecting to it.
    pub fn new(session: Session, theme: Theme, room: Option<String>, spectating: bool) -> App {
        App {
            screen: if room.is_some() {
                Screen::Connecting
            } else {
                Screen::Lobby
            },
            session,
            theme,
            room,
            spectating,
            view: None,
            link: LinkState::Connecting { attempt: 1 },
            lag: None,
            net_panel: false,
            compare: None,
            overlay: Overlay::None,
            chat_input: None,
            sent: VecDeque::new(),
            recall: None,
            boost: false,
            camera: Camera::Follow,
            followed: None,
            last_center: None,
            log: VecDeque::new(),
            death_note: None,
            spawn: SpawnWatch::default(),
            room_info: None,
            moved: None,
            lobby: Lobby::default(),
            quit: false,
            dirty: true,
        }
    }

    /// True once since the last change: the shell redraws only then.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Marks the screen for a redraw (after a resize).
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// True while a snake of ours is in the game (quitting asks first).
    pub fn is_playing(&self) -> bool {
        self.screen == Screen::Game && !self.spectating
    }

    fn push_log(&mut self, line: LogLine) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    /// A snake's name by id, sanitised for the screen.
    pub fn name_of(&self, id: PlayerId) -> String {
        self.view
            .as_ref()
            .and_then(|v| v.world.as_ref())
            .and_then(|w| w.snake(id))
            .map_or_else(|| format!("#{id}"), |s| sanitize_line(&s.name, 16))
    }

    // ------------------------------------------------------------ client events

    /// Takes in one event of the client task.
    pub fn on_client(&mut self, ev: ClientEvent) -> Option<Effect> {
        self.dirty = true;
        match ev {
            ClientEvent::Connecting { attempt } => {
                self.link = if attempt > 1 && self.view.is_some() {
                    match &self.link {
                        LinkState::Reconnecting { reason, .. } => LinkState::Reconnecting {
                            attempt,
                            reason: reason.clone(),
                        },
                        _ => LinkState::Reconnecting {
                            attempt,
                            reason: "connection lost".into(),
                        },
                    }
                } else {
                    LinkState::Connecting { attempt }
                };
                None
            }
            ClientEvent::Welcome(w) => {
                let resumed = w.resumed;
                match self.view.as_mut() {
                    Some(v) if v.room == w.room => v.rewelcome(&w),
                    _ => self.view = Some(GameView::new(&w)),
                }
                if matches!(self.link, LinkState::Reconnecting { .. }) {
                    self.push_log(LogLine::Event(if resumed {
                        "reconnected: same snake".into()
                    } else if self.spectating {
                        "reconnected".into()
                    } else {
                        "reconnected as a new snake".into()
                    }));
                }
                self.link = LinkState::Connected;
                self.screen = Screen::Game;
                self.boost = false;
                None
            }
            ClientEvent::Server(msg) => self.on_server(msg),
            ClientEvent::InputSent { .. } => None,
            ClientEvent::Lag(lag) => {
                self.lag = Some(lag);
                None
            }
            ClientEvent::Moved { server } => {
                self.push_log(LogLine::Event(format!(
                    "the room is played on {}: connected there",
                    protocol::text::sanitize_line(&server, 80)
                )));
                self.moved = Some(server);
                None
            }
            ClientEvent::TransportChosen { transport, reason } => {
                self.session.transport = transport.name();
                self.push_log(LogLine::Event(protocol::text::sanitize_chat(&reason)));
                None
            }
            ClientEvent::Disconnected { reason, retrying } => {
                if retrying {
                    self.link = LinkState::Reconnecting { attempt: 1, reason };
                }
                None
            }
            ClientEvent::Closed { reason } => {
                if reason == ClosedReason::Left {
                    return None;
                }
                self.overlay = Overlay::None;
                self.chat_input = None;
                self.screen = Screen::Failed(failure(&reason, &self.session.server));
                None
            }
        }
    }

    fn on_server(&mut self, msg: ServerMsg) -> Option<Effect> {
        match &msg {
            ServerMsg::Chat(c) => self.push_log(LogLine::Chat {
                from: sanitize_line(&c.from, 16),
                text: sanitize_chat(&c.text),
            }),
            ServerMsg::Error(e) => self.push_log(LogLine::Event(format!(
                "server: {}",
                sanitize_chat(&e.message)
            ))),
            ServerMsg::Tick(t) => {
                let me = self.view.as_ref().and_then(|v| v.me);
                for e in &t.events {
                    if let GameEvent::Died { id, killer, cause } = e
                        && Some(*id) == me
                    {
                        self.death_note = Some(self.what_killed_me(*killer, *cause, &t.events));
                    }
                    if let Some(line) = self.describe(e) {
                        self.push_log(LogLine::Event(line));
                    }
                }
            }
            _ => {}
        }
        let view = self.view.as_mut()?;
        let handled = view.handle(&msg);
        if let ServerMsg::Tick(t) = &msg {
            // Names of joiners are only known once the frame is applied.
            for e in &t.events {
                if let GameEvent::Joined { name, .. } = e {
                    let name = sanitize_line(name, 16);
                    self.push_log(LogLine::Event(format!("{name} joined")));
                }
            }
        }
        self.update_center();
        self.track_spawn();
        match handled {
            Handled::NeedKeyframe(_) => Some(Effect::Resync),
            Handled::Advanced | Handled::Other => None,
        }
    }

    /// A log line for a game event worth telling (names from the world
    /// before the frame, so a leaver still has one).
    fn describe(&self, e: &GameEvent) -> Option<String> {
        let me = self.view.as_ref().and_then(|v| v.me);
        Some(match e {
            GameEvent::Died { id, killer, cause } => {
                let who = if Some(*id) == me {
                    "you".to_string()
                } else {
                    self.name_of(*id)
                };
                match (killer, cause) {
                    (Some(k), _) if k != id => {
                        let by = if Some(*k) == me {
                            "you".to_string()
                        } else {
                            self.name_of(*k)
                        };
                        format!("{by} got {who}")
                    }
                    (_, protocol::DeathCause::Wall) => format!("{who} hit a wall"),
                    (_, protocol::DeathCause::Own) => format!("{who} bit {}", pronoun(&who)),
                    (_, protocol::DeathCause::HeadOn) => format!("{who} died head-on"),
                    (_, protocol::DeathCause::Body) => format!("{who} crashed"),
                }
            }
            GameEvent::Left { id } => format!("{} left", self.name_of(*id)),
            GameEvent::RoundOver { round, winner } => match winner {
                Some(w) => format!("round {round}: {} wins", self.name_of(*w)),
                None => format!("round {round}: nobody wins"),
            },
            GameEvent::Joined { .. } | GameEvent::Ate { .. } | GameEvent::Respawned { .. } => {
                return None;
            }
        })
    }

    /// What killed us and who, for the death notice: the killer's name
    /// when a body or trail did it, the other driver of a head-on crash
    /// (another head-on death in the same tick).
    fn what_killed_me(
        &self,
        killer: Option<PlayerId>,
        cause: protocol::DeathCause,
        events: &[GameEvent],
    ) -> String {
        use protocol::DeathCause;
        let me = self.view.as_ref().and_then(|v| v.me);
        let tron = self.view.as_ref().is_some_and(|v| v.mode == Mode::Tron);
        let body = if tron { "trail" } else { "body" };
        match (cause, killer) {
            (DeathCause::Body, Some(k)) if Some(k) != me => {
                format!("you ran into {}'s {body}", self.name_of(k))
            }
            (DeathCause::Body | DeathCause::Own, _) => format!("you ran into your own {body}"),
            (DeathCause::Wall, _) => "you hit a wall".to_string(),
            (DeathCause::HeadOn, _) => {
                let others: Vec<String> = events
                    .iter()
                    .filter_map(|e| match e {
                        GameEvent::Died {
                            id,
                            cause: DeathCause::HeadOn,
                            ..
                        } if Some(*id) != me => Some(self.name_of(*id)),
                        _ => None,
                    })
                    .collect();
                match others.as_slice() {
                    [] => "you crashed head-on".to_string(),
                    names => format!("you met {} head-on", names.join(" and ")),
                }
            }
        }
    }

    /// The snake the camera follows: ours when playing, else the chosen
    /// one (or the first alive).
    pub fn followed_snake(&self) -> Option<&protocol::SnakeState> {
        let view = self.view.as_ref()?;
        let world = view.world.as_ref()?;
        if let Some(me) = view.me {
            return world.snake(me);
        }
        self.followed
            .and_then(|id| world.snake(id))
            .filter(|s| s.alive)
            .or_else(|| world.snakes.iter().find(|s| s.alive))
    }

    /// Follows whether our snake waits for a key.
    fn track_spawn(&mut self) {
        let Some(view) = self.view.as_ref() else {
            return;
        };
        self.spawn.observe(view.mode, view.my_snake());
    }

    /// The steer to send for a key: while our snake waits, one that will
    /// start it even when it is the way the snake already faces (see
    /// [`start_dir`]).
    pub fn steer(&mut self, dir: Dir) -> Effect {
        let heading = self.view.as_ref().and_then(|v| v.my_snake()).map(|s| s.dir);
        match (self.spawn.waiting(), heading) {
            (Waiting::AtSpawn | Waiting::Parked, Some(h)) => {
                self.spawn.started();
                Effect::Steer(start_dir(h, Some(dir)))
            }
            _ => Effect::Steer(dir),
        }
    }

    fn update_center(&mut self) {
        // A spectator follows the longest snake until they pick one with
        // Tab, and the next longest when the followed one dies: chosen here,
        // once, so the camera does not jump whenever the lead changes.
        if let Some(world) = self
            .view
            .as_ref()
            .filter(|v| v.me.is_none())
            .and_then(|v| v.world.as_ref())
        {
            let alive = self
                .followed
                .and_then(|id| world.snake(id))
                .is_some_and(|s| s.alive);
            let longest = world
                .snakes
                .iter()
                .filter(|s| s.alive)
                .max_by_key(|s| (s.body.len(), std::cmp::Reverse(s.id)));
            if let Some(s) = longest.filter(|_| !alive) {
                self.followed = Some(s.id);
            }
        }
        if let Some(head) = self.followed_snake().and_then(|s| s.head()) {
            self.last_center = Some(head);
        }
    }

    /// The cell the camera centres on.
    pub fn center(&self) -> Option<Pos> {
        match self.camera {
            Camera::Free(p) => Some(p),
            Camera::Follow => self
                .followed_snake()
                .and_then(|s| s.head())
                .or(self.last_center),
        }
    }

    /// Takes in `GET /api/rooms`.
    pub fn on_rooms(&mut self, rooms: Result<Vec<RoomInfo>, String>) {
        self.dirty = true;
        match rooms {
            Ok(rooms) => {
                self.room_info = self
                    .room
                    .as_ref()
                    .and_then(|r| rooms.iter().find(|i| &i.id == r).cloned());
                // Keep the selection on the same room when the order changes.
                let selected = self
                    .lobby
                    .rooms
                    .as_ref()
                    .and_then(|r| r.get(self.lobby.selected))
                    .map(|r| r.id.clone());
                self.lobby.selected = selected
                    .and_then(|id| rooms.iter().position(|r| r.id == id))
                    .unwrap_or(self.lobby.selected)
                    .min(rooms.len().saturating_sub(1));
                if self.lobby.note_is_error {
                    self.lobby.note = None;
                    self.lobby.note_is_error = false;
                }
                self.lobby.rooms = Some(rooms);
            }
            Err(e) => {
                self.lobby.note = Some(e);
                self.lobby.note_is_error = true;
            }
        }
    }

    /// Takes in the answer to `POST /api/rooms`.
    pub fn on_created(&mut self, created: Result<RoomInfo, String>) -> Option<Effect> {
        self.dirty = true;
        match created {
            Ok(room) => {
                self.lobby.create = None;
                self.lobby.note = Some(format!("created room {}: Enter to play", room.id));
                self.lobby.note_is_error = false;
                let rooms = self.lobby.rooms.get_or_insert_with(Vec::new);
                rooms.retain(|r| r.id != room.id);
                rooms.push(room);
                self.lobby.selected = rooms.len() - 1;
                Some(Effect::RefreshRooms)
            }
            Err(e) => {
                self.lobby.note = Some(e);
                self.lobby.note_is_error = true;
                None
            }
        }
    }

    /// Takes in a live report of a compare-view observer.
    pub fn on_compare(&mut self, update: BotUpdate) {
        if let Some(c) = self.compare.as_mut() {
            c.update(update);
            self.dirty = true;
        }
    }

    /// Opens the compare view on `room` (the shell starts the observers).
    pub fn start_compare(&mut self, room: String) -> Effect {
        self.compare = Some(Compare::new(&room));
        self.room = None;
        self.view = None;
        self.lag = None;
        self.screen = Screen::Compare;
        self.overlay = Overlay::None;
        self.dirty = true;
        Effect::Compare { room }
    }

    /// Starts connecting to a room (the shell spawns the client).
    pub fn join(&mut self, room: String, spectate: bool) -> Effect {
        self.room = Some(room.clone());
        self.spectating = spectate;
        self.compare = None;
        self.lag = None;
        self.view = None;
        self.screen = Screen::Connecting;
        self.link = LinkState::Connecting { attempt: 1 };
        self.camera = Camera::Follow;
        self.followed = None;
        self.last_center = None;
        self.room_info = None;
        self.log.clear();
        self.overlay = Overlay::None;
        self.dirty = true;
        Effect::Join { room, spectate }
    }
}

fn pronoun(who: &str) -> &'static str {
    if who == "you" { "yourself" } else { "itself" }
}

/// The error screen for why a connection ended.
pub fn failure(reason: &ClosedReason, server: &str) -> Failure {
    let (title, message) = match reason {
        ClosedReason::Unreachable(m) => (
            "Server unreachable",
            format!("Could not reach {server}: {m}. Is game-server running there?"),
        ),
        ClosedReason::Refused { code, message } => (
            match code.as_str() {
                "room_full" => "Room full",
                "version_mismatch" => "Version mismatch",
                "kicked" => "Kicked",
                "unknown_room" => "No such room",
                _ => "Refused by the server",
            },
            message.clone(),
        ),
        ClosedReason::ServerShutdown(m) => ("Server shut down", m.clone()),
        ClosedReason::ConnectionLost(m) => ("Connection lost", m.clone()),
        ClosedReason::Left => ("Left", "You left the room.".to_string()),
    };
    Failure {
        title: title.to_string(),
        message: sanitize_chat(&message),
    }
}

#[cfg(test)]
mod tests;
