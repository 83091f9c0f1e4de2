//! Past one machine: nodes that meet on NATS (only with `--nats`).
//!
//! An origin owns rooms and runs them as a single node does; its rooms'
//! frames go to NATS once per tick while an edge wants them ([`origin`]),
//! and its rooms go in a directory on a JetStream key-value bucket whose
//! entries expire ([`directory`]). Any node serves spectators of any room
//! of the cluster through a [`mirror`] of it, rebuilt from the frames
//! ([`replica`]), on the same fan-out as a room's own spectators (SSE,
//! and WebSocket with `?role=spectator`); a player who asks a node that
//! does not own the room is sent to its owner (the router's `307`).
//! [`wire`] is what goes on NATS.
//!
//! Nothing outside this module and the few lines that wire it in
//! (`lib.rs`, `routes`, `spectators.rs`) knows about the cluster: without `--nats` none of
//! it runs.

pub mod directory;
pub mod link;
pub mod mirror;
pub mod origin;
pub mod replica;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use crate::SpectatorConfig;
use crate::rooms::Rooms;
pub use directory::{Directory, Owner};
pub use link::LinkError;
pub use mirror::{MirrorError, MirrorHandle, Mirrors};
pub use wire::ListedRoom;

/// Default time an origin's directory entry lives without renewal.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);

/// How a node joins a cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// `nats://[user:pass@]host:port` (a token as `nats://token@host:port`).
    pub nats: String,
    /// A NATS credentials file (`--nats-creds`).
    pub creds: Option<PathBuf>,
    /// The base URL players are sent to; `None`: `http://<bound address>`.
    pub public_url: Option<String>,
    /// The node's id in subjects and the directory; `None`: a random one.
    pub node_id: Option<String>,
    /// An edge owns no rooms and only serves spectators.
    pub edge: bool,
    /// How long a directory entry lives without renewal.
    pub ttl: Duration,
}

impl ClusterConfig {
    /// The node id, checked (it stands in NATS subjects and KV keys).
    pub fn node(&self) -> Result<String, String> {
        let id = self
            .node_id
            .clone()
            .unwrap_or_else(|| format!("node-{}", &crate::session::random_hex128()[..8]));
        if wire::valid_node_id(&id) {
            Ok(id)
        } else {
            Err(format!(
                "--node-id {id:?}: use 1 to 64 letters, digits, '-' or '_'"
            ))
        }
    }
}

/// A node's part in the cluster, as the router sees it.
#[derive(Clone)]
pub struct Cluster {
    /// This node's id.
    pub node: String,
    /// This node's public URL.
    pub url: String,
    /// True on an edge.
    pub edge: bool,
    /// The cluster's origins and rooms.
    pub directory: Directory,
    /// The rooms of other nodes this node serves spectators of.
    pub mirrors: Mirrors,
}

impl Cluster {
    /// Connects to NATS and starts the directory (and, on an origin, the
    /// publishing of its rooms), all stopping with `shutdown`.
    pub async fn start(
        config: &ClusterConfig,
        url: String,
        rooms: Rooms,
        spectators: SpectatorConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Cluster, String> {
        let node = config.node()?;
        let link = link::connect(&config.nats, config.creds.as_ref(), &node)
            .await
            .map_err(|e| e.to_string())?;
        let directory = Directory::default();
        let announce = (!config.edge).then(|| directory::Announce {
            node: node.clone(),
            url: url.clone(),
            rooms: rooms.clone(),
        });
        tokio::spawn(directory::run(
            link.clone(),
            directory.clone(),
            announce,
            config.ttl,
            shutdown.clone(),
        ));
        if !config.edge {
            tokio::spawn(origin::run(
                link.clone(),
                node.clone(),
                rooms,
                shutdown.clone(),
            ));
        }
        let mirrors = Mirrors::new(link, directory.clone(), spectators, config.ttl, shutdown);
        // The URL may hold a password or token: only its host is logged.
        let nats = config.nats.rsplit('@').next().unwrap_or_default();
        tracing::info!(%node, %url, edge = config.edge, %nats, "in the cluster");
        Ok(Cluster {
            node,
            url,
            edge: config.edge,
            directory,
            mirrors,
        })
    }

    /// Where `room` lives, when another node owns it.
    pub fn owner(&self, room: &str) -> Option<Owner> {
        self.directory.owner(room).filter(|o| o.node != self.node)
    }

    /// Every room of the cluster: `local` (this node's) first, with this
    /// node's URL, then every other origin's.
    pub fn list(&self, local: Vec<protocol::api::RoomInfo>) -> Vec<ListedRoom> {
        let mut all: Vec<ListedRoom> = local
            .into_iter()
            .map(|room| ListedRoom {
                room,
                url: self.url.clone(),
                node: self.node.clone(),
            })
            .collect();
        all.extend(self.directory.rooms_except(&self.node));
        all
    }

    /// The lines `GET /` adds in a cluster: where each room is played.
    /// (URLs come from other origins' entries: sanitised for the terminal.)
    pub fn usage(&self, local: Vec<protocol::api::RoomInfo>) -> String {
        let role = if self.edge { "an edge" } else { "an origin" };
        let mut s = format!(
            "\nCluster: this is node {} ({role}); players are sent (307) to a room's node:\n",
            self.node
        );
        for r in self.list(local) {
            s.push_str(&format!(
                "  {:<12} node {} at {}\n",
                r.room.id,
                protocol::text::sanitize_line(&r.node, 64),
                protocol::text::sanitize_line(&r.url, 200)
            ));
        }
        s
    }
}
