//! JSON bodies of the HTTP API (`/api/*` and error responses).

use serde::{Deserialize, Serialize};

use crate::msg::Mode;

/// One room in `GET /api/rooms`, and the answer to `POST /api/rooms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub id: String,
    pub mode: Mode,
    /// Map name (file stem of a built-in map, or the map's own name).
    pub map: String,
    pub players: u32,
    pub spectators: u32,
    pub max_players: u32,
    pub tick_rate: u32,
    /// Cells per second a snake moves (boosting: twice that).
    #[serde(default)]
    pub speed: u32,
    pub tick: u64,
}

/// Body of `POST /api/rooms`; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub map: Option<String>,
    #[serde(default)]
    pub tick_rate: Option<u32>,
    #[serde(default)]
    pub max_players: Option<u32>,
    /// A room that never closes for being idle. Only the server's operator
    /// makes one (`game-server --room`); over HTTP it is `403 forbidden`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub persistent: bool,
    /// Cells per second a snake moves (1 to 30); default: the mode's.
    #[serde(default)]
    pub speed: Option<u32>,
}

/// Answer of `GET /api/time`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerTime {
    pub server_time_us: u64,
}

/// Every HTTP error body: `{"error": "<human message>", "code": "<snake_case>"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    pub code: String,
}
