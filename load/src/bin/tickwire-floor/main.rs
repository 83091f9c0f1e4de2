//! `tickwire-floor`: the kernel's floor for the fan-out benchmark (issue 14).
//!
//! A minimal raw broadcaster with no game and no HTTP stack: once per tick
//! one thread builds one frame per wire (an SSE event, a WebSocket text
//! frame, a WebSocket binary frame), padded to the frame size asked for,
//! and one writer thread per core hands it to each of its sockets with one
//! non-blocking `write`. It speaks just enough HTTP and WebSocket for
//! `tickwire-load` (`POST /api/rooms`, `GET /rooms/{r}/events`,
//! `GET /rooms/{r}/ws` with a `hello`), so the same load tool measures it
//! and Tickwire in the same run (`bench/run.sh floor`). It is a yardstick,
//! not a server: one accept thread does every handshake in turn, and a
//! socket that cannot take a frame keeps only the rest of that frame.

mod handshake;
mod writer;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;

use crate::writer::{Beat, Frames, Writers};

/// What to serve.
#[derive(Clone, Debug, Parser)]
#[command(name = "tickwire-floor", version, about)]
struct Config {
    /// Address to listen on (loopback: this is a benchmark's yardstick).
    #[arg(long, default_value = "127.0.0.1:17901")]
    bind: String,
    /// Frames per second.
    #[arg(long, default_value_t = 20)]
    tick_rate: u32,
    /// Size of one SSE tick event in bytes (`event:`, `id:`, `data:` lines),
    /// to match the server it is compared with; 0 leaves the frame bare.
    #[arg(long, default_value_t = 0)]
    sse_bytes: usize,
    /// Size of one JSON WebSocket tick message's payload in bytes (the
    /// binary one is padded by as much); 0 leaves the frame bare.
    #[arg(long, default_value_t = 0)]
    ws_bytes: usize,
    /// Writer threads (default: one per core).
    #[arg(long)]
    writers: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    let listener = TcpListener::bind(&cfg.bind).with_context(|| format!("binding {}", cfg.bind))?;
    let writers = cfg
        .writers
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
        .max(1);
    let shape = writer::Shape::fitted(cfg.sse_bytes, cfg.ws_bytes);
    let map = protocol::map::builtin("small").context("the built-in map \"small\"")?;
    let beat = Arc::new(Beat::new(Frames::build(0, &shape), map));
    let pool = Writers::start(writers, beat.clone());
    let interval = Duration::from_secs_f64(1.0 / f64::from(cfg.tick_rate.clamp(1, 1000)));
    {
        let beat = beat.clone();
        std::thread::Builder::new()
            .name("floor-clock".into())
            .spawn(move || {
                let start = Instant::now();
                let mut tick = 0u64;
                loop {
                    tick += 1;
                    let due = start + interval * u32::try_from(tick).unwrap_or(u32::MAX);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    beat.publish(Frames::build(tick, &shape));
                }
            })
            .context("starting the clock thread")?;
    }
    eprintln!(
        "tickwire-floor on http://{} ({} writers, {} Hz, SSE event {} B, WS payload {} B)",
        listener.local_addr()?,
        writers,
        cfg.tick_rate,
        beat.latest().sse.len(),
        beat.latest().ws_json_payload,
    );
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        // A failed handshake costs only that connection.
        if let Ok(Some(sub)) = handshake::answer(stream, &beat) {
            pool.add(sub);
        }
    }
    Ok(())
}
