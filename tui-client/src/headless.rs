//! Headless mode: N bots play a room for a bounded time over the real
//! client stack, then one report says what every bot saw and, per
//! transport, what the transport cost (lag percentiles, bytes, requests).
//! Without a server URL it starts an embedded one. Printing is the
//! caller's business: the report writes itself to any [`std::io::Write`].

use std::future::Future;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use protocol::{Format, Role};
use serde::Serialize;

use crate::bot::{BotConfig, BotMix, BotStats, Swarm};
use crate::client::{Conditioner, TransportKind};
use crate::embedded::{EmbeddedOptions, EmbeddedServer};
use crate::lag::{LagTotals, Percentiles};

/// What a headless run does.
#[derive(Clone, Debug)]
pub struct HeadlessOptions {
    /// Server base URL; `None` starts an embedded server.
    pub server: Option<String>,
    /// Room the bots join.
    pub room: String,
    /// Number of bots.
    pub bots: u32,
    /// Their brains.
    pub mix: BotMix,
    /// Bot names are `{prefix}-1`, `{prefix}-2`, ...
    pub name_prefix: String,
    /// How long to play.
    pub duration: Duration,
    /// Wire format of every bot.
    pub format: Format,
    /// Transports, spread over the bots in turn (bot `i` gets
    /// `transports[i % len]`; empty means WebSocket). A bot over SSE
    /// watches: SSE carries no input.
    pub transports: Vec<TransportKind>,
    /// Delay every bot's traffic (see [`Conditioner`]).
    pub conditioner: Option<Conditioner>,
    /// Every bot acts on what it saw this long ago (see
    /// [`crate::bot::Reaction`]); zero: at once.
    pub reaction: Duration,
    /// Bot `i` (from 0) seeds its brain with `seed + i`.
    pub seed: u64,
    /// Settings of the embedded server (ignored with `server`).
    pub embedded: EmbeddedOptions,
}

/// Why a headless run could not start.
#[derive(Debug, thiserror::Error)]
pub enum HeadlessError {
    /// The embedded server did not start.
    #[error("cannot start the embedded server: {0}")]
    Embedded(#[from] game_server::StartError),
    /// Nothing to run.
    #[error("--bots must be at least 1")]
    NoBots,
}

/// The figures of a whole run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Bots started.
    pub bots: u32,
    /// Bots that were welcomed.
    pub connected: u32,
    /// Sums over the bots.
    pub frames: u64,
    /// Sum of ticks seen.
    pub ticks_seen: u64,
    /// Sum of keyframes.
    pub keyframes: u64,
    /// Sum of deaths.
    pub deaths: u64,
    /// Sum of desyncs.
    pub desyncs: u64,
    /// Sum of gaps.
    pub gaps: u64,
    /// Sum of reconnects.
    pub reconnects: u64,
    /// Number of errors over all bots.
    pub errors: u64,
}

/// What one transport cost, over every bot that used it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TransportReport {
    /// `ws`, `sse`, `longpoll` or `poll`.
    pub transport: String,
    /// Bots over it.
    pub bots: u32,
    /// Round trip (SSE: of `GET /api/time` probes).
    pub rtt: Percentiles,
    /// Receive time - (server send time + clock offset), every frame.
    pub frame_age: Percentiles,
    /// Key press to the first frame that acknowledges it (none over SSE).
    pub input_latency: Percentiles,
    /// Spread of frame arrivals around the tick interval.
    pub jitter: Percentiles,
    /// Bytes received, all bots.
    pub bytes_down: u64,
    /// Bytes sent, all bots.
    pub bytes_up: u64,
    /// HTTP requests, all bots (a WebSocket counts its upgrade).
    pub requests: u64,
    /// Bytes received per second, per bot.
    pub bytes_down_per_s: f64,
    /// Bytes sent per second, per bot.
    pub bytes_up_per_s: f64,
    /// Requests per second, per bot.
    pub requests_per_s: f64,
    /// Frames received.
    pub frames: u64,
    /// Keyframes other than the first after each welcome.
    pub resyncs: u64,
    /// Reconnects (and streams resumed by the link).
    pub reconnects: u64,
    /// Frames whose checksum did not match.
    pub desyncs: u64,
}

/// Adds up the bots of each transport, in the order they first appear.
fn per_transport(bots: &[BotStats]) -> Vec<TransportReport> {
    let mut order: Vec<(String, LagTotals, u64)> = Vec::new();
    for b in bots {
        let i = match order.iter().position(|(t, ..)| *t == b.transport) {
            Some(i) => i,
            None => {
                order.push((b.transport.clone(), LagTotals::default(), 0));
                order.len() - 1
            }
        };
        let (_, totals, desyncs) = &mut order[i];
        if let Some(lag) = &b.lag_run {
            totals.add(lag);
        }
        *desyncs += b.desyncs;
    }
    order
        .into_iter()
        .map(|(transport, t, desyncs)| {
            let figures = t.figures();
            let (counts, traffic, rates) = (t.counts(), t.traffic(), t.rates_per_client());
            TransportReport {
                bots: bots.iter().filter(|b| b.transport == transport).count() as u32,
                transport,
                rtt: figures.rtt,
                frame_age: figures.frame_age,
                input_latency: figures.input_latency,
                jitter: figures.jitter,
                bytes_down: traffic.bytes_down,
                bytes_up: traffic.bytes_up,
                requests: traffic.requests,
                bytes_down_per_s: round1(rates.bytes_down_per_s),
                bytes_up_per_s: round1(rates.bytes_up_per_s),
                requests_per_s: round1(rates.requests_per_s * 10.0) / 10.0,
                frames: counts.frames,
                resyncs: counts.resyncs,
                reconnects: counts.reconnects,
                desyncs,
            }
        })
        .collect()
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The one document a headless run prints.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Server URL played on (the embedded one's when started here).
    pub server: String,
    /// Whether the server was embedded.
    pub embedded: bool,
    /// Room played.
    pub room: String,
    /// How long the bots played, in seconds.
    pub duration_s: f64,
    /// True when Ctrl-C (or the caller) ended the run early.
    pub interrupted: bool,
    /// The conditioner every bot's traffic went through, if any.
    pub conditioner: Option<String>,
    /// The bots' reaction time, in milliseconds (0: none).
    pub reaction_ms: u64,
    /// Deaths per playing bot per minute of the run: whether a player who
    /// reacts that late keeps up with the game.
    pub deaths_per_bot_minute: f64,
    /// Per transport: what it cost.
    pub transports: Vec<TransportReport>,
    /// Per bot, in start order.
    pub bots: Vec<BotStats>,
    /// Sums.
    pub totals: Totals,
    /// Every bot connected, no desync, no error.
    pub ok: bool,
}

impl Report {
    fn new(
        server: String,
        embedded: bool,
        room: String,
        elapsed: Duration,
        interrupted: bool,
        conditioner: Option<Conditioner>,
        bots: Vec<BotStats>,
    ) -> Report {
        let mut t = Totals {
            bots: bots.len() as u32,
            ..Totals::default()
        };
        for b in &bots {
            t.connected += u32::from(b.connected);
            t.frames += b.frames;
            t.ticks_seen += b.ticks_seen;
            t.keyframes += b.keyframes;
            t.deaths += u64::from(b.deaths);
            t.desyncs += b.desyncs;
            t.gaps += b.gaps;
            t.reconnects += u64::from(b.reconnects);
            t.errors += b.errors.len() as u64;
        }
        let ok = t.bots > 0 && t.connected == t.bots && t.desyncs == 0 && t.errors == 0;
        let players = bots
            .iter()
            .filter(|b| b.connected && b.role == "player")
            .count();
        let minutes = elapsed.as_secs_f64() / 60.0;
        let deaths_per_bot_minute = if players > 0 && minutes > 0.0 {
            let per = t.deaths as f64 / players as f64 / minutes;
            (per * 100.0).round() / 100.0
        } else {
            0.0
        };
        Report {
            reaction_ms: 0,
            deaths_per_bot_minute,
            server,
            embedded,
            room,
            duration_s: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            interrupted,
            conditioner: conditioner.map(|c| c.to_string()),
            transports: per_transport(&bots),
            bots,
            totals: t,
            ok,
        }
    }

    /// Writes the report as one pretty JSON document and a newline.
    pub fn write_json(&self, mut out: impl Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut out, self)?;
        writeln!(out)
    }

    /// The per-transport table of the text report (milliseconds).
    fn write_transports(&self, out: &mut impl Write) -> io::Result<()> {
        if let Some(c) = &self.conditioner {
            writeln!(out, "conditioner: {c}")?;
        }
        writeln!(
            out,
            "{:<9} {:>4} {:>15} {:>15} {:>15} {:>15} {:>7} {:>9} {:>7} {:>6} {:>6} {:>6}",
            "transport",
            "bots",
            "rtt p50/p99",
            "age p50/p99",
            "input p50/p99",
            "jitter p50/p99",
            "req/s",
            "B/s down",
            "B/s up",
            "resync",
            "reconn",
            "desync"
        )?;
        let pair = |p: &Percentiles| match (p.p50(), p.p99()) {
            (Some(a), Some(b)) => format!("{}/{}", ms(a), ms(b)),
            _ => "-".to_string(),
        };
        for t in &self.transports {
            writeln!(
                out,
                "{:<9} {:>4} {:>15} {:>15} {:>15} {:>15} {:>7.1} {:>9.0} {:>7.0} {:>6} {:>6} {:>6}",
                t.transport,
                t.bots,
                pair(&t.rtt),
                pair(&t.frame_age),
                pair(&t.input_latency),
                pair(&t.jitter),
                t.requests_per_s,
                t.bytes_down_per_s,
                t.bytes_up_per_s,
                t.resyncs,
                t.reconnects,
                t.desyncs
            )?;
        }
        Ok(())
    }

    /// Writes the report as a table for people.
    pub fn write_text(&self, mut out: impl Write) -> io::Result<()> {
        writeln!(
            out,
            "{} bots in room {} on {}{} for {:.1} s{}",
            self.totals.bots,
            self.room,
            self.server,
            if self.embedded { " (embedded)" } else { "" },
            self.duration_s,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            },
        )?;
        writeln!(
            out,
            "{:<16} {:<8} {:>4} {:<7} {:>7} {:>7} {:>5} {:>6} {:>5} {:>6} {:>5} {:>6} {:>6}",
            "name",
            "bot",
            "id",
            "format",
            "frames",
            "ticks",
            "keyf",
            "deaths",
            "best",
            "desync",
            "gaps",
            "reconn",
            "errors"
        )?;
        for b in &self.bots {
            let id = b
                .player_id
                .map_or_else(|| "-".to_string(), |i| i.to_string());
            writeln!(
                out,
                "{:<16} {:<8} {:>4} {:<7} {:>7} {:>7} {:>5} {:>6} {:>5} {:>6} {:>5} {:>6} {:>6}",
                b.name,
                b.bot,
                id,
                b.format,
                b.frames,
                b.ticks_seen,
                b.keyframes,
                b.deaths,
                b.best,
                b.desyncs,
                b.gaps,
                b.reconnects,
                b.errors.len()
            )?;
        }
        for b in &self.bots {
            for e in &b.errors {
                writeln!(out, "error: {}: {e}", b.name)?;
            }
        }
        self.write_transports(&mut out)?;
        writeln!(
            out,
            "deaths per playing bot per minute: {:.2} (reaction {} ms)",
            self.deaths_per_bot_minute, self.reaction_ms
        )?;
        let t = &self.totals;
        writeln!(
            out,
            "total: {}/{} connected, {} frames, {} deaths, {} desyncs, {} gaps, {} reconnects, {} errors: {}",
            t.connected,
            t.bots,
            t.frames,
            t.deaths,
            t.desyncs,
            t.gaps,
            t.reconnects,
            t.errors,
            if self.ok { "OK" } else { "FAILED" }
        )
    }
}

/// Milliseconds, one decimal under 100.
fn ms(us: u64) -> String {
    if us < 100_000 {
        format!("{:.1}", us as f64 / 1000.0)
    } else {
        format!("{}", us / 1000)
    }
}

/// Runs the bots for `opts.duration`, or until `interrupt` completes, or
/// until every bot has ended on its own; then they leave and the report
/// is built.
pub async fn run(
    opts: HeadlessOptions,
    interrupt: impl Future<Output = ()>,
) -> Result<Report, HeadlessError> {
    if opts.bots == 0 {
        return Err(HeadlessError::NoBots);
    }
    let embedded = match &opts.server {
        Some(_) => None,
        None => Some(EmbeddedServer::start(opts.embedded.clone()).await?),
    };
    let server = match (&opts.server, &embedded) {
        (Some(url), _) => url.clone(),
        (None, Some(e)) => e.url().to_string(),
        // Invariant: `embedded` is Some exactly when `server` is None.
        (None, None) => unreachable!("an embedded server was started above"),
    };
    let mut configs = BotConfig::swarm(
        &server,
        &opts.room,
        opts.bots,
        opts.mix,
        &opts.name_prefix,
        opts.seed,
        opts.format,
    );
    let transports = if opts.transports.is_empty() {
        vec![TransportKind::Ws]
    } else {
        opts.transports.clone()
    };
    for (i, c) in configs.iter_mut().enumerate() {
        let t = transports[i % transports.len()];
        c.client.transport = t;
        if !t.can_play() {
            c.client.role = Role::Spectator;
        }
        c.client.conditioner = opts.conditioner;
        c.reaction = opts.reaction;
    }
    let started = Instant::now();
    let mut swarm = Swarm::spawn(configs);
    let interrupted = tokio::select! {
        () = tokio::time::sleep(opts.duration) => false,
        () = interrupt => true,
        () = swarm.finished() => false,
    };
    let elapsed = started.elapsed();
    tracing::info!(?elapsed, interrupted, "headless run over; bots leaving");
    let bots = swarm.stop().await;
    if let Some(e) = embedded {
        e.shutdown().await;
    }
    let mut report = Report::new(
        server,
        opts.server.is_none(),
        opts.room,
        elapsed,
        interrupted,
        opts.conditioner,
        bots,
    );
    report.reaction_ms = opts.reaction.as_millis() as u64;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot(name: &str, connected: bool, desyncs: u64, errors: &[&str]) -> BotStats {
        BotStats {
            name: name.into(),
            bot: "greedy".into(),
            player_id: connected.then_some(1),
            transport: "ws".into(),
            format: "bincode".into(),
            connected,
            frames: 10,
            ticks_seen: 9,
            keyframes: 1,
            desyncs,
            errors: errors.iter().map(|s| s.to_string()).collect(),
            ..BotStats::default()
        }
    }

    fn report(bots: Vec<BotStats>) -> Report {
        Report::new(
            "http://x".into(),
            false,
            "lobby".into(),
            Duration::from_secs(1),
            false,
            None,
            bots,
        )
    }

    #[test]
    fn ok_needs_every_bot_connected_without_desync_or_error() {
        assert!(report(vec![bot("a", true, 0, &[]), bot("b", true, 0, &[])]).ok);
        assert!(!report(vec![bot("a", true, 0, &[]), bot("b", false, 0, &[])]).ok);
        assert!(!report(vec![bot("a", true, 1, &[])]).ok);
        assert!(!report(vec![bot("a", true, 0, &["refused (room_full): full"])]).ok);
        assert!(!report(vec![]).ok);
    }

    #[test]
    fn json_report_has_the_documented_shape() {
        let r = report(vec![bot("a", true, 0, &[]), bot("b", true, 0, &["x"])]);
        let mut buf = Vec::new();
        r.write_json(&mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        for key in ["server", "room", "duration_s", "bots", "totals", "ok"] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        let b = &v["bots"][0];
        for key in [
            "name",
            "player_id",
            "transport",
            "format",
            "frames",
            "ticks_seen",
            "keyframes",
            "deaths",
            "score",
            "best",
            "desyncs",
            "gaps",
            "reconnects",
            "errors",
        ] {
            assert!(b.get(key).is_some(), "bot missing {key}");
        }
        assert_eq!(v["totals"]["frames"], 20);
        assert_eq!(v["reaction_ms"], 0);
        assert_eq!(v["totals"]["errors"], 1);
        assert_eq!(v["ok"], false);
    }

    #[test]
    fn deaths_per_minute_count_playing_bots_only() {
        let mut a = bot("a", true, 0, &[]);
        let mut b = bot("b", true, 0, &[]);
        let mut watcher = bot("c", true, 0, &[]);
        (a.role, b.role, watcher.role) = ("player".into(), "player".into(), "spectator".into());
        (a.deaths, b.deaths) = (3, 1);
        let r = Report::new(
            "http://x".into(),
            false,
            "lobby".into(),
            Duration::from_secs(120),
            false,
            None,
            vec![a, b, watcher],
        );
        assert_eq!(r.deaths_per_bot_minute, 1.0);
    }

    #[test]
    fn text_report_names_every_bot_and_the_verdict() {
        let r = report(vec![
            bot("bot-1", true, 0, &[]),
            bot("bot-2", true, 0, &["boom"]),
        ]);
        let mut buf = Vec::new();
        r.write_text(&mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("bot-1") && text.contains("bot-2"), "{text}");
        assert!(text.contains("error: bot-2: boom"), "{text}");
        assert!(text.trim_end().ends_with("FAILED"), "{text}");
    }
}
