//! The ratatui terminal UI.

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
}

/// Whether this build has the terminal UI (`false` until it lands: the
/// binary then runs headless bots instead).
pub const AVAILABLE: bool = false;

/// Runs the TUI until the user quits.
pub async fn run(options: UiOptions) -> anyhow::Result<()> {
    let _ = options;
    anyhow::bail!("the terminal UI is not built yet; use --headless")
}
