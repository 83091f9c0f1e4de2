//! The Tickwire game server as a library: the pure simulation, rooms with
//! their tick loops, sessions, transports and the HTTP API. The `game-server`
//! binary and the client's embedded server both start it through [`start`].

pub mod sim;
pub mod watch;

use std::net::SocketAddr;
use std::time::Duration;

use protocol::Mode;

/// Everything a server needs to start.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to bind (`0.0.0.0:7878` for the binary, `127.0.0.1:0` in tests).
    pub bind: SocketAddr,
    /// Tick rate of the default room (1..=60).
    pub tick_rate: u32,
    /// Built-in map name of the default room.
    pub map: String,
    /// Mode of the default room.
    pub mode: Mode,
    /// Player cap of the default room.
    pub max_players: u32,
    /// Seed of the default room's RNG (`None`: random).
    pub seed: Option<u64>,
    /// How long a dropped player's snake waits for a resume.
    pub resume_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 7878)),
            tick_rate: 20,
            map: "arena".into(),
            mode: Mode::Snake,
            max_players: 16,
            seed: None,
            resume_grace: Duration::from_secs(30),
        }
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A server that is running; dropping it does not stop it, [`RunningServer::shutdown`] does.
pub struct RunningServer {
    /// The address actually bound (the port is real even when 0 was asked).
    pub local_addr: SocketAddr,
}

impl RunningServer {
    /// Graceful shutdown: stop accepting, close every client with a reason,
    /// stop the rooms; returns when done.
    pub async fn shutdown(self) {
        todo!()
    }
}

/// Binds and starts the server on the current tokio runtime.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    let _ = config;
    todo!()
}
