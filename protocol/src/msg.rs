//! The messages of the protocol, one enum per direction.
//!
//! serde's externally tagged representation with snake_case names gives the
//! JSON shape the contract fixes (`{"hello": {"version": 2, "name": "alice"}}`)
//! and the same enum encodes to bincode unchanged. Optional fields use
//! `#[serde(default)]` so JSON users may omit them. No derive uses
//! `skip_serializing_if`, which bincode (not self-describing) cannot decode:
//! the frames that leave empty fields out of JSON (`tick`, `snapshot` and
//! the delta) have their Serialize written in `crate::wire`, which keeps
//! every field in binary formats.

use serde::{Deserialize, Serialize};

use crate::PlayerId;
use crate::map::Map;
use crate::state::{Delta, WorldState};

/// Game mode of a room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Eat food to grow; a dead snake's body turns into food.
    #[default]
    Snake,
    /// Light cycles: the trail never shrinks; last one riding wins the round.
    Tron,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Snake => "snake",
            Mode::Tron => "tron",
        })
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "snake" => Ok(Mode::Snake),
            "tron" => Ok(Mode::Tron),
            _ => Err(format!("unknown mode `{s}` (expected snake or tron)")),
        }
    }
}

/// Whether a connection plays or only watches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    #[default]
    Player,
    Spectator,
}

// ---------------------------------------------------------------- client -> server

/// A message from a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientMsg {
    /// First message of every connection or session.
    Hello(Hello),
    /// A turn (and boost state), with the client's own input sequence number.
    Input(Input),
    /// RTT probe; the server answers `pong` with the same `t`.
    Ping(Ping),
    /// A line of chat (sanitised and shortened by the server).
    Chat(ChatText),
    /// Leave the room now (no resume grace).
    Leave {},
    /// Ask for a keyframe (the client lost track of the world).
    Resync {},
}

/// Opens a session: `{"hello": {"version": 2, "name": "alice"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Must equal [`crate::PROTOCOL_VERSION`].
    pub version: u32,
    /// Display name; sanitised and cut to 16 characters by the server.
    pub name: String,
    #[serde(default)]
    pub role: Role,
    /// A session token from an earlier `welcome`: resume that snake.
    #[serde(default)]
    pub token: Option<String>,
}

/// A steering input. `seq` is the client's own counter, strictly increasing;
/// the server applies each seq once, in order, and reports the highest applied
/// seq as `ack` in every tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    pub seq: u64,
    pub dir: crate::geom::Dir,
    #[serde(default)]
    pub boost: bool,
}

/// RTT probe: `t` is opaque to the server (clients put their clock in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    pub t: u64,
}

/// Chat text sent by a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatText {
    pub text: String,
}

// ---------------------------------------------------------------- server -> client

/// A message from the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerMsg {
    /// Answer to `hello`: who you are, the room, the map.
    Welcome(Box<Welcome>),
    /// A keyframe: the full world.
    Snapshot(Box<Snapshot>),
    /// A delta: what changed in one tick.
    Tick(Box<TickFrame>),
    /// Answer to `ping`.
    Pong(Pong),
    /// A chat line from someone in the room (already sanitised).
    Chat(ChatLine),
    /// Something went wrong; `code` is a stable snake_case identifier.
    Error(ErrorMsg),
}

/// Answer to `hello`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Your player id; `None` for spectators.
    pub player_id: Option<PlayerId>,
    /// Session id (used in long-poll URLs).
    pub session: String,
    /// Secret session token: present it in `hello.token` to resume.
    pub token: String,
    pub room: String,
    pub mode: Mode,
    pub tick_rate: u32,
    /// Cells per second a snake moves (boosting: twice that), apart from
    /// the tick rate: some ticks move no snake. 0 from an older server.
    #[serde(default)]
    pub speed: u32,
    pub map: Map,
    /// True when this hello resumed an existing snake.
    pub resumed: bool,
    /// Your name as the server accepted it (sanitised, maybe de-duplicated).
    pub name: String,
    pub server_time_us: u64,
}

/// A keyframe. Carries the whole world after tick `tick`.
///
/// `ack` comes first so a shared encoding can be re-headed per player
/// (see [`crate::codec::SharedFrame`]); JSON leaves it out when 0, so a
/// spectator's frames carry none (Serialize is in `crate::wire`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Snapshot {
    /// Highest input seq applied for the receiving player (0 for none).
    #[serde(default)]
    pub ack: u64,
    pub tick: u64,
    /// [`WorldState::checksum`] of `state`.
    pub checksum: u64,
    /// Unix microseconds when the tick was produced.
    pub server_time_us: u64,
    pub state: WorldState,
}

/// A delta frame: applying `delta` to the world after `tick - 1` gives the
/// world after `tick`, whose checksum is `checksum`. JSON leaves out an
/// `ack` of 0 (spectators) and empty `events` (Serialize is in `crate::wire`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TickFrame {
    /// Highest input seq applied for the receiving player (0 for none).
    #[serde(default)]
    pub ack: u64,
    pub tick: u64,
    pub checksum: u64,
    /// Unix microseconds when the tick was produced.
    pub server_time_us: u64,
    pub delta: Delta,
    /// What happened this tick (informational; not part of the checksum).
    #[serde(default)]
    pub events: Vec<GameEvent>,
}

/// Answer to `ping`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The `t` of the ping, echoed.
    pub t: u64,
    /// Unix microseconds when the server handled the ping.
    pub server_time_us: u64,
}

/// A chat line as delivered to everyone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatLine {
    /// Sender's name (sanitised).
    pub from: String,
    /// The text (sanitised).
    pub text: String,
}

/// An error report; the connection may close after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMsg {
    pub code: String,
    pub message: String,
}

/// Something that happened during a tick, for HUDs and kill feeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GameEvent {
    Joined {
        id: PlayerId,
        name: String,
    },
    Left {
        id: PlayerId,
    },
    Ate {
        id: PlayerId,
    },
    Died {
        id: PlayerId,
        killer: Option<PlayerId>,
        cause: DeathCause,
    },
    Respawned {
        id: PlayerId,
    },
    /// Tron: a round ended; `winner` is the last one riding, if any.
    RoundOver {
        round: u32,
        winner: Option<PlayerId>,
    },
}

/// Why a snake died.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeathCause {
    Wall,
    /// Ran into its own body.
    Own,
    /// Ran into another snake's body.
    Body,
    /// Two heads met.
    HeadOn,
}
