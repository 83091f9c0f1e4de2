//! An in-process game server on 127.0.0.1 for playing (or running bots)
//! without a separate `game-server`: the TUI's embedded mode and headless
//! runs without `--server` both start one here.

use std::net::{Ipv4Addr, SocketAddr};

use game_server::{RunningServer, ServerConfig, StartError};
use protocol::Mode;

/// What to start. Unset fields take the server's defaults.
#[derive(Clone, Debug, Default)]
pub struct EmbeddedOptions {
    /// Tick rate of the default room (1..=60).
    pub tick_rate: Option<u32>,
    /// Snake speed of the default room, cells per second (1..=30).
    pub speed: Option<u32>,
    /// Built-in map of the default room.
    pub map: Option<String>,
    /// Mode of the default room.
    pub mode: Option<Mode>,
    /// Seed of the default room's RNG.
    pub seed: Option<u64>,
    /// Port to bind on 127.0.0.1; `None` or 0 picks a free one.
    pub port: Option<u16>,
}

/// A running in-process server.
pub struct EmbeddedServer {
    url: String,
    server: RunningServer,
}

impl EmbeddedServer {
    /// Starts a server on 127.0.0.1 on the current runtime.
    pub async fn start(options: EmbeddedOptions) -> Result<EmbeddedServer, StartError> {
        let defaults = ServerConfig::default();
        let config = ServerConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, options.port.unwrap_or(0))),
            tick_rate: options.tick_rate.unwrap_or(defaults.tick_rate),
            speed: options.speed.or(defaults.speed),
            map: options.map.unwrap_or(defaults.map),
            mode: options.mode.unwrap_or(defaults.mode),
            seed: options.seed,
            ..defaults
        };
        let server = game_server::start(config).await?;
        let url = format!("http://{}", server.local_addr);
        tracing::info!(%url, "embedded server started");
        Ok(EmbeddedServer { url, server })
    }

    /// Base URL for clients, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr
    }

    /// Stops the server (clients get close 1001) and waits for it.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
