//! Tickwire's wire types, shared state model, maps and codecs.
//!
//! Everything a server and a client must agree on lives here and only here:
//! the messages (one Rust enum per direction serves JSON and bincode alike),
//! the world state both sides rebuild frame by frame, the delta that moves it
//! one tick forward, the checksum that proves the two sides agree, the map
//! format, and the text sanitiser that keeps escape sequences off terminals.
//! The crate does no I/O.

pub mod api;
pub mod codec;
#[doc(hidden)]
pub mod fuzz;
pub mod geom;
pub mod map;
pub mod msg;
pub mod poll;
pub mod sse;
pub mod state;
pub mod text;
mod wire;

pub use codec::{CodecError, Format, SharedFrame};
pub use geom::{Dir, Pos};
pub use map::{Map, MapError};
pub use msg::*;
pub use state::{Delta, Score, SnakeMove, SnakeState, WorldState};

/// The protocol version a `hello` must carry. Bump on any change to the wire.
///
/// 2: lean frames (a move is its id, head cells and trim; other fields and
/// score rows only when they change; no `ack` for spectators; cells as
/// `[x, y]`; the scoreboard change rides in the tick, no SSE `score` event).
pub const PROTOCOL_VERSION: u32 = 2;

/// What a client whose `hello` carries `theirs` is told (code
/// `version_mismatch`), naming both versions.
pub fn version_mismatch(theirs: u32) -> String {
    format!("this server speaks protocol {PROTOCOL_VERSION}; you have {theirs}")
}

/// Identifies a player within a room (stable across a resume).
pub type PlayerId = u32;
