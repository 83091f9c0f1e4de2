//! The room registry: the default room, `POST /api/rooms`, lookups.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use protocol::api::{CreateRoom, RoomInfo};
use protocol::{Mode, map};
use tokio::sync::watch;

use crate::SpectatorConfig;
use crate::metrics::Metrics;
use crate::room::{RoomConfig, RoomHandle};

/// Largest player cap a room may ask for.
pub const MAX_PLAYERS_CAP: u32 = 64;

/// A request that cannot create a room, with its HTTP meaning.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{0}")]
    Invalid(String),
    #[error("a room named {0:?} already exists")]
    Taken(String),
}

/// Every room of a server.
#[derive(Clone)]
pub struct Rooms {
    rooms: Arc<RwLock<BTreeMap<String, RoomHandle>>>,
    shutdown: watch::Receiver<bool>,
    resume_grace: Duration,
    spectators: SpectatorConfig,
    metrics: Arc<Metrics>,
}

impl Rooms {
    /// An empty registry whose rooms stop when `shutdown` turns true and
    /// record into `metrics`.
    pub fn new(
        shutdown: watch::Receiver<bool>,
        resume_grace: Duration,
        spectators: SpectatorConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Rooms {
            rooms: Arc::default(),
            shutdown,
            resume_grace,
            spectators,
            metrics,
        }
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The room called `id`.
    pub fn get(&self, id: &str) -> Option<RoomHandle> {
        self.rooms
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Every room, by id.
    pub fn list(&self) -> Vec<RoomInfo> {
        self.rooms
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(RoomHandle::info)
            .collect()
    }

    /// Validates a request and starts the room. `seed: None` picks a random seed.
    pub fn create(&self, req: CreateRoom, seed: Option<u64>) -> Result<RoomInfo, CreateError> {
        let id = match req.id {
            Some(id) => {
                let ok = (1..=32).contains(&id.len())
                    && id.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    });
                if !ok {
                    return Err(CreateError::Invalid(
                        "room id must be 1 to 32 characters of a-z, 0-9, '-' or '_'".into(),
                    ));
                }
                id
            }
            None => format!("room-{}", &crate::session::random_hex128()[..6]),
        };
        let map_name = req.map.unwrap_or_else(|| "arena".into());
        let Some(map) = map::builtin(&map_name) else {
            let names: Vec<_> = map::BUILTIN_MAPS.iter().map(|(n, _)| *n).collect();
            return Err(CreateError::Invalid(format!(
                "unknown map {map_name:?}; built-in maps: {}",
                names.join(", ")
            )));
        };
        let tick_rate = req.tick_rate.unwrap_or(20);
        if !(1..=60).contains(&tick_rate) {
            return Err(CreateError::Invalid(format!(
                "tick_rate must be 1 to 60, got {tick_rate}"
            )));
        }
        let max_players = req.max_players.unwrap_or(16);
        if !(1..=MAX_PLAYERS_CAP).contains(&max_players) {
            return Err(CreateError::Invalid(format!(
                "max_players must be 1 to {MAX_PLAYERS_CAP}, got {max_players}"
            )));
        }
        let mode = req.mode.or(map.mode).unwrap_or(Mode::Snake);
        let speed = req
            .speed
            .unwrap_or_else(|| crate::sim::pace::default_speed(mode));
        if !(1..=crate::sim::pace::MAX_SPEED).contains(&speed) {
            return Err(CreateError::Invalid(format!(
                "speed must be 1 to {} cells per second, got {speed}",
                crate::sim::pace::MAX_SPEED
            )));
        }
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        if rooms.contains_key(&id) {
            return Err(CreateError::Taken(id));
        }
        let handle = RoomHandle::spawn(
            RoomConfig {
                id: id.clone(),
                mode,
                map_name,
                map,
                tick_rate,
                speed,
                max_players,
                seed: seed.unwrap_or_else(rand::random),
                resume_grace: self.resume_grace,
                spectators: self.spectators.clone(),
            },
            self.shutdown.clone(),
            self.metrics.clone(),
        );
        let info = handle.info();
        rooms.insert(id, handle);
        Ok(info)
    }
}
