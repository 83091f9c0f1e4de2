//! `tui-client`: play Tickwire in the terminal, or run headless bots.
//!
//! Without `--server` the game (or the headless run) starts an embedded
//! server on 127.0.0.1. Logs go to `--log-file` only, never to the
//! terminal the game draws on.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use protocol::{Format, Mode};
use tui_client::bot::BotMix;
use tui_client::client::{Conditioner, TransportKind};
use tui_client::embedded::EmbeddedOptions;
use tui_client::headless::{self, HeadlessOptions};
use tui_client::ui::{self, UiOptions};

/// Longest headless run `--duration` accepts (a day), so a run always ends.
const MAX_DURATION_S: f64 = 86_400.0;

/// Tickwire terminal client.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Server base URL, e.g. http://192.168.1.20:7878. Without it an
    /// embedded server starts on 127.0.0.1 (with bots).
    #[arg(long, env = "TICKWIRE_SERVER")]
    server: Option<String>,
    /// Your name (default: your login name). In headless mode, the bots'
    /// name prefix (default: bot).
    #[arg(long)]
    name: Option<String>,
    /// Room to join (default: lobby; with --server and no --room the TUI
    /// shows the lobby screen).
    #[arg(long)]
    room: Option<String>,
    /// Transport to the server (default: ws to play, sse to watch; sse
    /// carries no input, so it is for --spectate only). Headless, `all`
    /// spreads the bots over ws, sse (watching), longpoll and poll.
    #[arg(long, value_enum)]
    transport: Option<TransportArg>,
    /// Show every transport side by side on one room (one observer each:
    /// ws, sse, longpoll and poll) instead of playing.
    #[arg(long, conflicts_with = "headless")]
    compare: bool,
    /// A bad network on purpose: delay every byte to and from the server
    /// by `latency` (one way, each direction) ± `jitter`, in order, e.g.
    /// `latency=40ms,jitter=10ms`. For the TUI, the compare view and
    /// headless bots alike.
    #[arg(long, value_name = "latency=..,jitter=..", value_parser = parse_conditioner)]
    conditioner: Option<Conditioner>,
    /// Time between polls of `--transport poll`, in milliseconds.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    poll_interval_ms: u64,
    /// Watch instead of playing.
    #[arg(long)]
    spectate: bool,
    /// Draw with plain ASCII only.
    #[arg(long)]
    ascii: bool,
    /// Write logs to this file (nothing is logged otherwise).
    #[arg(long, value_name = "PATH")]
    log_file: Option<PathBuf>,

    /// Run bots without a UI and print a report.
    #[arg(long)]
    headless: bool,
    /// Number of bots (headless; or in the embedded game).
    #[arg(long, default_value_t = 3)]
    bots: u32,
    /// Bot brain (headless): random, greedy, survival or mix.
    #[arg(long, default_value = "mix", value_parser = parse_mix)]
    bot: BotMix,
    /// How long the headless bots play, in seconds.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Headless report format.
    #[arg(long, value_enum, default_value_t = ReportArg::Text)]
    report: ReportArg,
    /// Wire format of the headless bots (bincode is what the TUI uses;
    /// json is what scripts in other languages see).
    #[arg(long, value_enum, default_value_t = FormatArg::Bincode)]
    format: FormatArg,
    /// Seed of the bots' brains (bot i uses seed + i) and of the embedded
    /// server's room.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Embedded server only: tick rate of its room (1..=60).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=60))]
    tick_rate: Option<u32>,
    /// Embedded server only: snake speed of its room in cells per second,
    /// apart from the tick rate (1..=30; boost doubles it) [default: 10
    /// for snake, 12 for tron].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=30))]
    speed: Option<u32>,
    /// Headless bots act on what they saw this many milliseconds ago, as a
    /// person reacts (0: at once). Their deaths per minute then say
    /// whether a person could keep up.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=5_000))]
    reaction_ms: u64,
    /// Embedded server only: built-in map of its room.
    #[arg(long)]
    map: Option<String>,
    /// Embedded server only: game mode of its room.
    #[arg(long, value_parser = parse_mode)]
    mode: Option<Mode>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TransportArg {
    /// WebSocket (the default for playing).
    Ws,
    /// Server-Sent Events (spectating only; the default for watching).
    Sse,
    /// HTTP long-polling: each poll is held until there is news.
    Longpoll,
    /// HTTP short polling at --poll-interval-ms.
    Poll,
    /// WebSocket, falling back to long-poll when it is refused.
    Auto,
    /// Headless only: the bots spread over ws, sse, longpoll and poll.
    All,
}

impl TransportArg {
    /// The transports this choice means (`all`: every one).
    fn kinds(self, poll_interval_ms: u64) -> Vec<TransportKind> {
        let poll = TransportKind::Poll {
            interval: Duration::from_millis(poll_interval_ms),
        };
        match self {
            TransportArg::Ws => vec![TransportKind::Ws],
            TransportArg::Sse => vec![TransportKind::Sse],
            TransportArg::Longpoll => vec![TransportKind::LongPoll],
            TransportArg::Auto => vec![TransportKind::Auto],
            TransportArg::Poll => vec![poll],
            TransportArg::All => vec![
                TransportKind::Ws,
                TransportKind::Sse,
                TransportKind::LongPoll,
                poll,
            ],
        }
    }

    /// The one transport of a single client.
    fn kind(self, poll_interval_ms: u64) -> anyhow::Result<TransportKind> {
        match self.kinds(poll_interval_ms).as_slice() {
            [one] => Ok(*one),
            _ => bail!(
                "--transport all is for --headless (or see every transport at once with --compare)"
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ReportArg {
    Json,
    Text,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    Json,
    Bincode,
}

fn parse_mix(s: &str) -> Result<BotMix, String> {
    s.parse()
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse()
}

fn parse_conditioner(s: &str) -> Result<Conditioner, String> {
    s.parse()
        .map_err(|e: tui_client::client::conditioner::ConditionerError| e.to_string())
}

/// The login name, sanitised, or `player`.
fn login_name() -> String {
    let raw = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default();
    protocol::text::sanitize_name(&raw)
}

fn init_logging(path: &PathBuf) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open log file {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

/// Completes on Ctrl-C; never, if the signal cannot be watched.
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn run_headless(cli: Cli) -> anyhow::Result<ExitCode> {
    if !(cli.duration > 0.0 && cli.duration <= MAX_DURATION_S) {
        bail!("--duration must be between 0 and {MAX_DURATION_S} seconds");
    }
    let opts = HeadlessOptions {
        server: cli.server,
        room: cli.room.unwrap_or_else(|| "lobby".into()),
        bots: cli.bots,
        mix: cli.bot,
        name_prefix: cli.name.unwrap_or_else(|| "bot".into()),
        duration: Duration::from_secs_f64(cli.duration),
        format: match cli.format {
            FormatArg::Json => Format::Json,
            FormatArg::Bincode => Format::Bincode,
        },
        transports: cli
            .transport
            .map_or(vec![TransportKind::Ws], |t| t.kinds(cli.poll_interval_ms)),
        conditioner: cli.conditioner,
        reaction: Duration::from_millis(cli.reaction_ms),
        seed: cli.seed,
        embedded: EmbeddedOptions {
            tick_rate: cli.tick_rate,
            speed: cli.speed,
            map: cli.map,
            mode: cli.mode,
            seed: Some(cli.seed),
            port: None,
        },
    };
    let report = headless::run(opts, ctrl_c()).await?;
    let stdout = std::io::stdout().lock();
    match cli.report {
        ReportArg::Json => report.write_json(stdout),
        ReportArg::Text => report.write_text(stdout),
    }
    .context("cannot write the report")?;
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Some(path) = &cli.log_file {
        init_logging(path)?;
    }
    if cli.headless {
        return run_headless(cli).await;
    }
    if matches!(cli.transport, Some(TransportArg::Sse)) && !cli.spectate && !cli.compare {
        bail!("--transport sse carries no input, so it can only watch: add --spectate");
    }
    let transport = match cli.transport {
        None | Some(TransportArg::Sse) => TransportKind::Ws,
        Some(t) => t.kind(cli.poll_interval_ms)?,
    };
    let watch_transport = match cli.transport {
        None => TransportKind::Sse,
        Some(t) => t.kind(cli.poll_interval_ms)?,
    };
    let options = UiOptions {
        room: cli
            .room
            .or_else(|| cli.server.is_none().then(|| "lobby".to_string())),
        server: cli.server,
        name: cli
            .name
            .map_or_else(login_name, |n| protocol::text::sanitize_name(&n)),
        spectate: cli.spectate,
        ascii: cli.ascii,
        bots: cli.bots,
        transport,
        watch_transport,
        embedded: EmbeddedOptions {
            tick_rate: cli.tick_rate,
            speed: cli.speed,
            map: cli.map,
            mode: cli.mode,
            seed: Some(cli.seed),
            port: None,
        },
        seed: cli.seed,
        compare: cli.compare,
        poll_interval: Duration::from_millis(cli.poll_interval_ms),
        conditioner: cli.conditioner,
    };
    ui::run(options).await?;
    Ok(ExitCode::SUCCESS)
}
