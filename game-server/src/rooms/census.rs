//! The registry's figures for `/metrics`: rooms open and asleep, rooms
//! made and closed, creations refused by reason. Counted in plain atomics
//! where they happen and read by a collector at each scrape.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, Weak};

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::CreateError;
use crate::metrics::{ConnLabel, Metrics, RoomLabel, Transport, counter_family, single};
use crate::room::RoomHandle;

/// How many rooms were made, closed and refused.
#[derive(Debug, Default)]
pub struct Census {
    created: AtomicU64,
    closed_idle: AtomicU64,
    refused_too_many: AtomicU64,
    refused_rate: AtomicU64,
    refused_persistent: AtomicU64,
}

/// The census at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CensusSnapshot {
    pub created: u64,
    pub closed_idle: u64,
    /// `503 too_many_rooms`.
    pub refused_too_many: u64,
    /// `429 room_create_rate`.
    pub refused_rate: u64,
    /// `403`: a client asked for a persistent room.
    pub refused_persistent: u64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Census {
    pub(super) fn created(&self) {
        bump(&self.created);
    }

    pub(super) fn closed_idle(&self) {
        bump(&self.closed_idle);
    }

    /// Counts a refusal the limits made (not a bad or taken request).
    pub(super) fn refused(&self, e: &CreateError) {
        match e {
            CreateError::TooManyRooms(_) => bump(&self.refused_too_many),
            CreateError::RateLimited(_) => bump(&self.refused_rate),
            CreateError::Persistent(_) => bump(&self.refused_persistent),
            CreateError::Invalid(_) | CreateError::Taken(_) => {}
        }
    }

    /// Every figure, read now.
    pub fn snapshot(&self) -> CensusSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CensusSnapshot {
            created: r(&self.created),
            closed_idle: r(&self.closed_idle),
            refused_too_many: r(&self.refused_too_many),
            refused_rate: r(&self.refused_rate),
            refused_persistent: r(&self.refused_persistent),
        }
    }
}

/// Drops a closed room's labelled series, so rooms that come and go do not
/// grow `/metrics` (or the registry's memory) forever.
pub(super) fn forget_room(metrics: &Metrics, room: &str) {
    let l = RoomLabel { room: room.into() };
    metrics.tick_duration.remove(&l);
    metrics.overruns.remove(&l);
    metrics.resyncs.remove(&l);
    metrics.dropped.remove(&l);
    metrics.sessions.remove(&l);
    for transport in [
        Transport::Ws,
        Transport::Sse,
        Transport::Watch,
        Transport::Polled,
        Transport::Longpoll,
        Transport::Poll,
    ] {
        metrics.connections.remove(&ConnLabel {
            transport,
            room: room.into(),
        });
    }
}

/// Reads the registry at each scrape. It holds the registry weakly: the
/// metrics must not keep the rooms alive.
#[derive(Debug)]
pub(super) struct Collector {
    pub(super) rooms: Weak<RwLock<BTreeMap<String, RoomHandle>>>,
    pub(super) census: std::sync::Arc<Census>,
    pub(super) max: usize,
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (open, asleep) = match self.rooms.upgrade() {
            Some(rooms) => {
                let rooms = rooms.read().unwrap_or_else(|e| e.into_inner());
                let asleep = rooms
                    .values()
                    .filter(|r| r.stats.asleep.load(Ordering::Relaxed))
                    .count();
                (rooms.len(), asleep)
            }
            None => (0, 0),
        };
        let gauge = |n: usize| ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX));
        let c = self.census.snapshot();
        single(&mut e, "rooms_open", "Rooms open now.", gauge(open))?;
        single(
            &mut e,
            "rooms_asleep",
            "Rooms open with nobody in them: they do not tick.",
            gauge(asleep),
        )?;
        single(
            &mut e,
            "rooms_max",
            "The cap on rooms open at once (--max-rooms).",
            gauge(self.max),
        )?;
        single(
            &mut e,
            "rooms_created",
            "Rooms made since the start (the operator's included).",
            ConstCounter::new(c.created),
        )?;
        counter_family(
            &mut e,
            "rooms_closed",
            "Rooms closed: idle (nobody in them for --room-idle-secs).",
            "reason",
            &[("idle", c.closed_idle)],
        )?;
        counter_family(
            &mut e,
            "rooms_refused",
            "Room creations refused: too_many_rooms (503), room_create_rate (429), persistent (403).",
            "reason",
            &[
                ("too_many_rooms", c.refused_too_many),
                ("room_create_rate", c.refused_rate),
                ("persistent", c.refused_persistent),
            ],
        )
    }
}
