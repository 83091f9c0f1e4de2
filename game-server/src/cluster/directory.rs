//! The cluster's directory of rooms, on a JetStream key-value bucket whose
//! entries expire (`max_age` = the TTL): each origin puts its entry (node
//! id -> URL and rooms) every third of the TTL, so an origin that dies
//! drops out within the TTL without anyone deciding it; every node reads
//! the whole bucket about once a second into a local view.
//!
//! The view is replaced only by a full read, so while NATS is down a node
//! keeps the last one it had rather than believing everyone left.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::link::Link;
use super::wire::{DIRECTORY_BUCKET, ListedRoom, NodeEntry};
use crate::rooms::Rooms;

/// How often every node reads the directory.
const READ_EVERY: Duration = Duration::from_millis(500);

/// What a node knows of the cluster's origins.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    view: Arc<RwLock<View>>,
}

#[derive(Debug, Default)]
struct View {
    nodes: BTreeMap<String, NodeEntry>,
    /// When the view was last read in full.
    read_at: Option<Instant>,
    /// When the link last came up (reads before a full TTL after it may
    /// still miss origins that have not put their entry again yet).
    up_since: Option<Instant>,
}

/// Where a room lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub node: String,
    pub url: String,
}

impl Directory {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, View> {
        // A poisoned view is still a whole map (replaced in one assignment).
        self.view.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The origin of `room` (the lowest node id if several have one of that name).
    pub fn owner(&self, room: &str) -> Option<Owner> {
        self.read()
            .nodes
            .values()
            .find(|e| e.rooms.iter().any(|r| r.id == room))
            .map(|e| Owner {
                node: e.node.clone(),
                url: e.url.clone(),
            })
    }

    /// True when `node` is known to have left: a read made while
    /// connected, at least `ttl` after the link came up, lacks it.
    pub fn has_left(&self, node: &str, ttl: Duration) -> bool {
        let v = self.read();
        let settled = match (v.read_at, v.up_since) {
            (Some(read), Some(up)) => read >= up + ttl,
            _ => false,
        };
        settled && !v.nodes.contains_key(node)
    }

    /// Every room of every other origin, with its owner.
    pub fn rooms_except(&self, node: &str) -> Vec<ListedRoom> {
        self.read()
            .nodes
            .values()
            .filter(|e| e.node != node)
            .flat_map(|e| {
                e.rooms.iter().map(|r| ListedRoom {
                    room: r.clone(),
                    url: e.url.clone(),
                    node: e.node.clone(),
                })
            })
            .collect()
    }

    /// The directory's origins, by node id.
    pub fn nodes(&self) -> Vec<String> {
        self.read().nodes.keys().cloned().collect()
    }
}

/// The bucket, made if missing. Its TTL is the first maker's.
async fn bucket(js: &jetstream::Context, ttl: Duration) -> Result<kv::Store, String> {
    if let Ok(store) = js.get_key_value(DIRECTORY_BUCKET).await {
        return Ok(store);
    }
    js.create_key_value(kv::Config {
        bucket: DIRECTORY_BUCKET.into(),
        description: "Tickwire: each origin's rooms, expiring".into(),
        history: 1,
        max_age: ttl,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())
}

async fn read_all(store: &kv::Store) -> Result<BTreeMap<String, NodeEntry>, String> {
    let mut keys = store.keys().await.map_err(|e| e.to_string())?;
    let mut nodes = BTreeMap::new();
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| e.to_string())?;
        let Some(value) = store.get(&key).await.map_err(|e| e.to_string())? else {
            continue;
        };
        match serde_json::from_slice::<NodeEntry>(&value) {
            Ok(entry) => {
                nodes.insert(key, entry);
            }
            Err(e) => tracing::debug!(%key, error = %e, "unreadable directory entry"),
        }
    }
    Ok(nodes)
}

/// What this node puts in the directory: its entry, if it is an origin.
pub struct Announce {
    pub node: String,
    pub url: String,
    pub rooms: Rooms,
}

/// Keeps `directory` read and, for an origin, this node's entry put, until
/// `shutdown`; an origin deletes its entry when it stops.
pub async fn run(
    link: Link,
    directory: Directory,
    announce: Option<Announce>,
    ttl: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let js = jetstream::new(link.client.clone());
    let mut up = link.up.clone();
    let mut store: Option<kv::Store> = None;
    let put_every = (ttl / 3).max(Duration::from_millis(100));
    let mut next_put = Instant::now();
    let mut read = tokio::time::interval(READ_EVERY.min(put_every));
    read.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = crate::clock::until_shutdown(&mut shutdown) => break,
            changed = up.changed() => {
                if changed.is_err() {
                    break;
                }
                if *up.borrow_and_update() {
                    let mut v = directory.view.write().unwrap_or_else(|e| e.into_inner());
                    v.up_since = Some(Instant::now());
                    // Put at once: a restarted NATS may have lost the entry.
                    next_put = Instant::now();
                }
                continue;
            }
            _ = read.tick() => {}
        }
        if !*up.borrow() {
            continue;
        }
        let s = match &store {
            Some(s) => s.clone(),
            None => match bucket(&js, ttl).await {
                Ok(s) => {
                    store = Some(s.clone());
                    s
                }
                Err(e) => {
                    tracing::debug!(error = %e, "directory bucket not ready");
                    continue;
                }
            },
        };
        if let Some(a) = &announce
            && Instant::now() >= next_put
        {
            let entry = NodeEntry {
                node: a.node.clone(),
                url: a.url.clone(),
                rooms: a.rooms.list(),
            };
            let value = serde_json::to_vec(&entry).unwrap_or_default();
            match s.put(&a.node, value.into()).await {
                Ok(_) => next_put = Instant::now() + put_every,
                Err(e) => {
                    tracing::debug!(error = %e, "directory put failed; finding the bucket again");
                    store = None;
                    continue;
                }
            }
        }
        match read_all(&s).await {
            Ok(nodes) => {
                let mut v = directory.view.write().unwrap_or_else(|e| e.into_inner());
                v.nodes = nodes;
                v.read_at = Some(Instant::now());
            }
            Err(e) => {
                tracing::debug!(error = %e, "directory read failed");
                store = None;
            }
        }
    }
    if let (Some(a), Some(s)) = (&announce, &store) {
        // Leaving on purpose: gone from the directory now, not in a TTL.
        let _ = tokio::time::timeout(Duration::from_secs(1), s.delete(&a.node)).await;
    }
}
