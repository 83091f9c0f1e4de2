//! The ratatui terminal UI.
//!
//! Layout, after ratatui's async template: [`app`] holds the state and
//! turns keys and client events into effects (sans-IO); [`render`] draws
//! an `App` (pure, snapshot-tested); [`input`] maps keys; [`theme`] picks
//! colors and glyphs; [`term`] owns the terminal and restores it on every
//! way out; `shell` is the thin async loop; `net` the lobby's HTTP calls.

pub mod app;
pub mod input;
mod net;
pub mod render;
mod shell;
pub mod term;
pub mod theme;

use std::time::Duration;

use crate::bot::{BotConfig, BotMix, Swarm};
use crate::client::{Conditioner, DEFAULT_POLL_INTERVAL, TransportKind};
use crate::embedded::{EmbeddedOptions, EmbeddedServer};
use app::{App, Session};
use theme::{ColorMode, Theme};

/// Room of the embedded game.
pub const EMBEDDED_ROOM: &str = "lobby";

/// What the TUI needs to start.
#[derive(Clone, Debug, Default)]
pub struct UiOptions {
    /// Server base URL; `None` starts an embedded server on 127.0.0.1 with bots.
    pub server: Option<String>,
    /// Room to join (`lobby` by default); `None` shows the lobby screen first
    /// when a server was given.
    pub room: Option<String>,
    pub name: String,
    pub spectate: bool,
    /// Plain ASCII drawing for terminals without Unicode.
    pub ascii: bool,
    /// Embedded server only: how many bots to start.
    pub bots: u32,
    /// Transport to the server when playing.
    pub transport: TransportKind,
    /// Transport when watching (`--spectate` or the lobby's watch).
    pub watch_transport: TransportKind,
    /// Settings of the embedded server.
    pub embedded: EmbeddedOptions,
    /// Seed of the embedded bots' brains.
    pub seed: u64,
    /// Open the compare view (every transport side by side) on the room.
    pub compare: bool,
    /// Time between short polls (default 250 ms when zero).
    pub poll_interval: Duration,
    /// Delay this client's traffic (not the embedded bots').
    pub conditioner: Option<Conditioner>,
}

/// `host:port` becomes `http://host:port`; a trailing slash goes.
pub fn normalize_server(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    }
}

/// Runs the TUI until the user quits. The embedded server and its bots
/// start before the terminal is taken, so a failure there prints plainly.
pub async fn run(options: UiOptions) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the game needs a terminal on stdin and stdout (for bots without one, use --headless)"
        );
    }
    let embedded = match &options.server {
        Some(_) => None,
        None => Some(EmbeddedServer::start(options.embedded.clone()).await?),
    };
    let server = match (&options.server, &embedded) {
        (Some(url), _) => normalize_server(url),
        (None, Some(e)) => e.url().to_string(),
        // Invariant: `embedded` is Some exactly when `server` is None.
        (None, None) => unreachable!("an embedded server was started above"),
    };
    let swarm = (embedded.is_some() && options.bots > 0).then(|| {
        Swarm::spawn(BotConfig::swarm(
            &server,
            EMBEDDED_ROOM,
            options.bots,
            BotMix::Mix,
            "bot",
            options.seed,
            protocol::Format::Bincode,
        ))
    });
    let room = match (&options.room, &embedded) {
        (Some(r), _) => Some(r.clone()),
        (None, Some(_)) => Some(EMBEDDED_ROOM.to_string()),
        (None, None) => None,
    };
    let session = Session {
        server: server.clone(),
        embedded: embedded.is_some(),
        transport: if options.spectate {
            options.watch_transport.name()
        } else {
            options.transport.name()
        },
        name: options.name.clone(),
        has_lobby: embedded.is_none(),
        watch: options.spectate,
        conditioner: options.conditioner,
    };
    let theme = Theme::new(ColorMode::from_env(), options.ascii);
    let mut app = App::new(
        session,
        theme,
        room.clone().filter(|_| !options.compare),
        options.spectate,
    );
    if options.compare {
        // The shell starts the observers of a compare view it finds open.
        let _ = app.start_compare(room.unwrap_or_else(|| EMBEDDED_ROOM.to_string()));
    }
    let identity = shell::Identity {
        server,
        name: options.name,
        transport: options.transport,
        watch_transport: options.watch_transport,
        poll_interval: if options.poll_interval.is_zero() {
            DEFAULT_POLL_INTERVAL
        } else {
            options.poll_interval
        },
        conditioner: options.conditioner,
    };

    let result = {
        let mut guard = term::enter()?;
        shell::run(&mut guard.terminal, app, identity).await
        // The guard restores the terminal here, before any slow cleanup.
    };
    if let Some(swarm) = swarm {
        let _ = tokio::time::timeout(Duration::from_secs(3), swarm.stop()).await;
    }
    if let Some(server) = embedded {
        let _ = tokio::time::timeout(Duration::from_secs(3), server.shutdown()).await;
    }
    result
}
