//! The origin's side: each of its rooms that an edge wants is tapped, and
//! its frames go to NATS once per tick, whatever the number of edges and
//! spectators behind them.
//!
//! A tap is a bincode spectator of the room, like any WebSocket spectator:
//! the room encodes its frame once per format as always and the tap gets
//! the shared bytes, so the room's code knows nothing of the cluster. The
//! tap keeps the world too (applying each frame, checksum verified), which
//! is what it answers keyframe requests with. A tap lives while edges say
//! they are interested (at least every [`INTEREST_TTL`]); the room can
//! then sleep again when nobody else is in it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::Subject;
use bytes::Bytes;
use futures_util::StreamExt;
use protocol::{Format, Hello, Role, ServerMsg, Snapshot, Welcome, WorldState};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::link::Link;
use super::wire::{self, Keyframe, RoomFrames};
use crate::clock::now_us;
use crate::room::{RoomCmd, RoomHandle};
use crate::rooms::Rooms;

/// How long a tap lives after the last word of interest from an edge
/// (edges say it every [`super::mirror::INTEREST_EVERY`]).
pub const INTEREST_TTL: Duration = Duration::from_secs(4);

/// How long a publish may wait for the client's queue: a frame that cannot
/// go at once is dropped (edges see the gap and resync).
const PUBLISH_WAIT: Duration = Duration::from_millis(20);

struct Tap {
    interest: Arc<std::sync::Mutex<Instant>>,
    requests: mpsc::Sender<Subject>,
    task: tokio::task::JoinHandle<()>,
}

/// Serves the origin's rooms to the cluster until `shutdown`.
pub async fn run(link: Link, node: String, rooms: Rooms, mut shutdown: watch::Receiver<bool>) {
    let client = link.client.clone();
    let (mut interest, mut keyframes) = match (
        client
            .subscribe(wire::origin_wildcard(&node, "interest"))
            .await,
        client
            .subscribe(wire::origin_wildcard(&node, "keyframe"))
            .await,
    ) {
        (Ok(i), Ok(k)) => (i, k),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot subscribe to the cluster's requests");
            return;
        }
    };
    let mut taps: HashMap<String, Tap> = HashMap::new();
    loop {
        let (msg, wants_keyframe) = tokio::select! {
            biased;
            _ = crate::clock::until_shutdown(&mut shutdown) => break,
            m = interest.next() => (m, false),
            m = keyframes.next() => (m, true),
        };
        let Some(msg) = msg else { break };
        let Some(room_id) = wire::room_of_subject(&msg.subject) else {
            continue;
        };
        let Some(room) = rooms.get(room_id) else {
            continue;
        };
        taps.retain(|_, t| !t.task.is_finished());
        let tap = taps.entry(room_id.to_string()).or_insert_with(|| {
            start_tap(
                link.clone(),
                wire::frames_subject(&node, room_id),
                room,
                shutdown.clone(),
            )
        });
        *tap.interest.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        if let (true, Some(reply)) = (wants_keyframe, msg.reply) {
            let _ = tap.requests.try_send(reply);
        }
    }
}

fn start_tap(
    link: Link,
    subject: String,
    room: RoomHandle,
    shutdown: watch::Receiver<bool>,
) -> Tap {
    let interest = Arc::new(std::sync::Mutex::new(Instant::now()));
    let (requests, rx) = mpsc::channel(64);
    let span = tracing::info_span!("tap", room = %room.config.id);
    let task =
        tokio::spawn(tap(link, subject, room, interest.clone(), rx, shutdown).instrument(span));
    Tap {
        interest,
        requests,
        task,
    }
}

/// The world as the tap last saw it.
struct Seen {
    state: WorldState,
    server_time_us: u64,
}

async fn tap(
    link: Link,
    subject: String,
    room: RoomHandle,
    interest: Arc<std::sync::Mutex<Instant>>,
    mut requests: mpsc::Receiver<Subject>,
    mut shutdown: watch::Receiver<bool>,
) {
    let hello = Hello {
        version: protocol::PROTOCOL_VERSION,
        name: "cluster".into(),
        role: Role::Spectator,
        token: None,
    };
    let Ok(Ok(joined)) = room.join(hello, Format::Bincode).await else {
        return;
    };
    tracing::debug!("tapped");
    let welcome = Welcome {
        session: String::new(),
        token: String::new(),
        ..joined.welcome
    };
    let outbox = joined.outbox;
    let mut seen: Option<Seen> = None;
    let mut waiting: Vec<Subject> = Vec::new();
    let mut carry: Option<Bytes> = None;
    let mut check = tokio::time::interval(Duration::from_secs(1));
    loop {
        let bytes = match carry.take() {
            Some(b) => b,
            None => tokio::select! {
                biased;
                _ = crate::clock::until_shutdown(&mut shutdown) => break,
                b = outbox.pop() => match b {
                    Some(b) => b,
                    None => break,
                },
                r = requests.recv() => {
                    if let Some(r) = r {
                        waiting.push(r);
                    }
                    answer(&link, &welcome, seen.as_ref(), &mut waiting).await;
                    continue;
                }
                _ = check.tick() => {
                    let last = *interest.lock().unwrap_or_else(|e| e.into_inner());
                    if last.elapsed() > INTEREST_TTL {
                        break;
                    }
                    continue;
                }
            },
        };
        let Ok(frame) = wire::from_bytes::<ServerMsg>(&bytes) else {
            continue;
        };
        match &frame {
            ServerMsg::Snapshot(s) => {
                seen = Some(Seen {
                    state: s.state.clone(),
                    server_time_us: s.server_time_us,
                });
                answer(&link, &welcome, seen.as_ref(), &mut waiting).await;
            }
            ServerMsg::Tick(t) => {
                if let Some(s) = seen.as_mut() {
                    if let Err(e) = s.state.apply_frame(t) {
                        // Cannot happen with the room's own frames; a
                        // keyframe puts it right whatever the cause.
                        tracing::warn!(error = %e, "tap out of step; asking for a keyframe");
                        room.try_send(RoomCmd::Resync { sub: joined.sub });
                    }
                    s.server_time_us = t.server_time_us;
                }
            }
            _ => {}
        }
        // The tick's chat lines were queued right behind it.
        let mut chat = Vec::new();
        while let Some(next) = outbox.try_pop() {
            match wire::from_bytes::<ServerMsg>(&next) {
                Ok(ServerMsg::Chat(c)) => chat.push(c),
                _ => {
                    carry = Some(next);
                    break;
                }
            }
        }
        if *link.up.borrow() {
            let payload = wire::to_bytes(&RoomFrames { frame, chat });
            let publish = link.client.publish(subject.clone(), payload);
            if tokio::time::timeout(PUBLISH_WAIT, publish).await.is_err() {
                tracing::debug!("publish queue full: frame dropped");
            }
        }
    }
    room.send(RoomCmd::Leave { sub: joined.sub }).await;
    tracing::debug!("untapped");
}

/// Answers every waiting keyframe request with the world the tap has.
async fn answer(link: &Link, welcome: &Welcome, seen: Option<&Seen>, waiting: &mut Vec<Subject>) {
    let Some(seen) = seen else {
        return;
    };
    if waiting.is_empty() {
        return;
    }
    let keyframe = Keyframe {
        welcome: Welcome {
            server_time_us: now_us(),
            ..welcome.clone()
        },
        snapshot: Snapshot {
            ack: 0,
            tick: seen.state.tick,
            checksum: seen.state.checksum(),
            server_time_us: seen.server_time_us,
            state: seen.state.clone(),
        },
    };
    let payload = wire::to_bytes(&keyframe);
    for reply in waiting.drain(..) {
        let _ = link.client.publish(reply, payload.clone()).await;
    }
}
