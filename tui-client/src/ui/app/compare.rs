//! The compare view's state: one column per transport, each an observer
//! (a bot that plays, or watches over SSE) whose live reports replace the
//! column's figures.

use crate::bot::{BotPhase, BotUpdate};
use crate::client::TransportKind;
use crate::lag::LagSnapshot;

/// One transport's column.
#[derive(Clone, Debug)]
pub struct Column {
    /// The transport it measures.
    pub transport: TransportKind,
    /// The observer's name on the server.
    pub name: String,
    /// Where the observer stands.
    pub phase: BotPhase,
    /// Its latest lag figures.
    pub lag: Option<Box<LagSnapshot>>,
    /// Frames that moved its world.
    pub ticks_seen: u64,
    /// Checksum mismatches.
    pub desyncs: u64,
    /// Its snake's length (0: dead or watching).
    pub length: u32,
}

/// Every transport on one room, side by side.
#[derive(Clone, Debug)]
pub struct Compare {
    /// The room observed.
    pub room: String,
    /// In the order of [`TransportKind::ALL`].
    pub columns: Vec<Column>,
}

/// The observer of `transport` is called this on the server.
pub fn observer_name(transport: TransportKind) -> String {
    format!("cmp-{}", transport.name())
}

impl Compare {
    /// Columns for every transport, connecting.
    pub fn new(room: &str) -> Compare {
        Compare::with(room, &TransportKind::ALL)
    }

    /// Columns for these transports, connecting.
    pub fn with(room: &str, transports: &[TransportKind]) -> Compare {
        Compare {
            room: room.to_string(),
            columns: transports
                .iter()
                .map(|&transport| Column {
                    transport,
                    name: observer_name(transport),
                    phase: BotPhase::Connecting(1),
                    lag: None,
                    ticks_seen: 0,
                    desyncs: 0,
                    length: 0,
                })
                .collect(),
        }
    }

    /// Takes in an observer's live report (its index is its column).
    pub fn update(&mut self, u: BotUpdate) {
        let Some(c) = self.columns.get_mut(u.index) else {
            return;
        };
        c.name = u.name;
        c.phase = u.phase;
        if u.lag.is_some() {
            c.lag = u.lag;
        }
        c.ticks_seen = u.ticks_seen;
        c.desyncs = u.desyncs;
        c.length = u.length;
    }

    /// The tick rate the observers were welcomed with (0 before any).
    pub fn tick_rate(&self) -> u32 {
        self.columns
            .iter()
            .filter_map(|c| c.lag.as_ref().map(|l| l.tick_rate))
            .find(|&r| r > 0)
            .unwrap_or(0)
    }
}
