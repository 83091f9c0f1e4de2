//! The room registry: the default room, `POST /api/rooms`, lookups, and
//! what keeps rooms from being used to take the server down: a cap on rooms
//! open at once, a creation rate per address, and idle close (a room nobody
//! has been in for `Limits::room_idle` closes, unless its operator made it
//! persistent). [`census`] counts all of it for `/metrics`; [`spec`] reads
//! the operator's `--room` flags.

pub mod census;
pub mod spec;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use protocol::api::{CreateRoom, RoomInfo};
use protocol::{Map, Mode, map};
use tokio::sync::watch;
use warp::http::StatusCode;

use crate::SpectatorConfig;
use crate::limits::{CreationRate, Limits};
use crate::metrics::Metrics;
use crate::room::{IdleClose, RoomConfig, RoomHandle};
use census::Census;

/// Largest player cap a room may ask for.
pub const MAX_PLAYERS_CAP: u32 = 64;

/// A request that cannot create a room, with its HTTP meaning
/// ([`CreateError::status`], [`CreateError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{0}")]
    Invalid(String),
    #[error("a room named {0:?} already exists")]
    Taken(String),
    #[error(
        "only the server's operator can make a persistent room (game-server --room ...); \
         leave \"persistent\" out: a room closes after {0} s with nobody in it"
    )]
    Persistent(u64),
    #[error("the server has {0} rooms open, its limit; join one of them (GET /api/rooms)")]
    TooManyRooms(usize),
    #[error("too many rooms created from your address; try again in {0} s")]
    RateLimited(u64),
}

impl CreateError {
    /// The HTTP status that answers it.
    pub fn status(&self) -> StatusCode {
        match self {
            CreateError::Invalid(_) => StatusCode::BAD_REQUEST,
            CreateError::Taken(_) => StatusCode::CONFLICT,
            CreateError::Persistent(_) => StatusCode::FORBIDDEN,
            CreateError::TooManyRooms(_) => StatusCode::SERVICE_UNAVAILABLE,
            CreateError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The JSON error code.
    pub fn code(&self) -> &'static str {
        match self {
            CreateError::Invalid(_) => "bad_request",
            CreateError::Taken(_) => "room_exists",
            CreateError::Persistent(_) => "forbidden",
            CreateError::TooManyRooms(_) => "too_many_rooms",
            CreateError::RateLimited(_) => "room_create_rate",
        }
    }
}

/// Every room of a server.
#[derive(Clone)]
pub struct Rooms {
    rooms: Arc<RwLock<BTreeMap<String, RoomHandle>>>,
    shutdown: watch::Receiver<bool>,
    resume_grace: Duration,
    spectators: SpectatorConfig,
    metrics: Arc<Metrics>,
    max_rooms: usize,
    idle: Duration,
    rate: Arc<Mutex<CreationRate>>,
    census: Arc<Census>,
}

/// A request that passed validation.
struct Valid {
    id: String,
    config: RoomConfig,
    persistent: bool,
}

/// The built-in map `name`, parsed once per process and shared by every
/// room on it (the big map's rows are 20 KB).
fn builtin_map(name: &str) -> Option<Arc<Map>> {
    static MAPS: OnceLock<Vec<(&'static str, Arc<Map>)>> = OnceLock::new();
    MAPS.get_or_init(|| {
        map::BUILTIN_MAPS
            .iter()
            .filter_map(|(n, _)| Some((*n, Arc::new(map::builtin(n)?))))
            .collect()
    })
    .iter()
    .find(|(n, _)| *n == name)
    .map(|(_, m)| m.clone())
}

impl Rooms {
    /// An empty registry whose rooms stop when `shutdown` turns true,
    /// record into `metrics` and live under `limits` (room cap, creation
    /// rate, idle close). Registers its own figures with `metrics`.
    pub fn new(
        shutdown: watch::Receiver<bool>,
        resume_grace: Duration,
        spectators: SpectatorConfig,
        metrics: Arc<Metrics>,
        limits: &Limits,
    ) -> Self {
        let rooms = Rooms {
            rooms: Arc::default(),
            shutdown,
            resume_grace,
            spectators,
            metrics,
            max_rooms: limits.max_rooms,
            idle: limits.room_idle,
            rate: Arc::new(Mutex::new(limits.creation_rate())),
            census: Arc::default(),
        };
        rooms.metrics.register_collector(census::Collector {
            rooms: Arc::downgrade(&rooms.rooms),
            census: rooms.census.clone(),
            max: rooms.max_rooms,
        });
        rooms
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// How many rooms were made, closed and refused.
    pub fn census(&self) -> &Census {
        &self.census
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

    /// Rooms open now.
    pub fn len(&self) -> usize {
        self.rooms.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when no room is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The operator's way to make a room (the default room, `--room`, an
    /// embedding program): validated like any request, but neither capped
    /// nor rate limited, and `persistent` is honoured. `seed: None` picks a
    /// random seed.
    pub fn create(&self, req: CreateRoom, seed: Option<u64>) -> Result<RoomInfo, CreateError> {
        let valid = self.validate(req, seed)?;
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        if rooms.contains_key(&valid.id) {
            return Err(CreateError::Taken(valid.id));
        }
        Ok(self.spawn(&mut rooms, valid))
    }

    /// A client's `POST /api/rooms` from `peer`: refused when it asks for a
    /// persistent room (403), when the server has `max_rooms` open (503),
    /// or when its address created rooms faster than its rate (429); only
    /// a room actually made takes from the rate.
    pub fn create_for_client(
        &self,
        req: CreateRoom,
        peer: Option<IpAddr>,
    ) -> Result<RoomInfo, CreateError> {
        let refused = |e: CreateError| {
            self.census.refused(&e);
            tracing::debug!(?peer, error = %e, "room creation refused");
            e
        };
        if req.persistent {
            return Err(refused(CreateError::Persistent(self.idle.as_secs())));
        }
        let valid = self.validate(req, None)?;
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        if rooms.contains_key(&valid.id) {
            return Err(CreateError::Taken(valid.id));
        }
        if rooms.len() >= self.max_rooms {
            return Err(refused(CreateError::TooManyRooms(self.max_rooms)));
        }
        if let Some(ip) = peer {
            let now = std::time::Instant::now();
            let taken = self
                .rate
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(ip, now);
            if let Err(wait) = taken {
                let secs = wait.as_secs_f64().ceil() as u64;
                return Err(refused(CreateError::RateLimited(secs.max(1))));
            }
        }
        Ok(self.spawn(&mut rooms, valid))
    }

    fn validate(&self, req: CreateRoom, seed: Option<u64>) -> Result<Valid, CreateError> {
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
        let Some(map) = builtin_map(&map_name) else {
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
        Ok(Valid {
            config: RoomConfig {
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
            id,
            persistent: req.persistent,
        })
    }

    /// Starts the room and registers it (the caller holds the lock).
    fn spawn(&self, rooms: &mut BTreeMap<String, RoomHandle>, valid: Valid) -> RoomInfo {
        let idle = (!valid.persistent).then(|| self.idle_close());
        let handle = RoomHandle::spawn_closable(
            valid.config,
            self.shutdown.clone(),
            self.metrics.clone(),
            idle,
        );
        let info = handle.info();
        tracing::debug!(room = %valid.id, persistent = valid.persistent, "room created");
        rooms.insert(valid.id, handle);
        self.census.created();
        info
    }

    /// How a room leaves this registry when idle: only while the registry
    /// holds the one handle to it left, checked under the registry's write
    /// lock, so no request can have found the room and be about to use it.
    /// Whoever looks it up afterwards gets `404 unknown_room`.
    fn idle_close(&self) -> IdleClose {
        let rooms = Arc::downgrade(&self.rooms);
        let (census, metrics) = (self.census.clone(), self.metrics.clone());
        IdleClose {
            after: self.idle,
            leave: Box::new(move |config| {
                // The registry is gone (the server stopped): just stop.
                let Some(rooms) = rooms.upgrade() else {
                    return true;
                };
                let mut rooms = rooms.write().unwrap_or_else(|e| e.into_inner());
                match rooms.get(&config.id) {
                    Some(h) if Arc::ptr_eq(&h.config, config) => {
                        if !h.is_sole_handle() {
                            return false;
                        }
                        rooms.remove(&config.id);
                    }
                    // Not registered under its id (cannot happen): stop.
                    _ => return true,
                }
                drop(rooms);
                census.closed_idle();
                census::forget_room(&metrics, &config.id);
                true
            }),
        }
    }
}
