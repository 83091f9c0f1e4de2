//! What the cluster's nodes say to each other on NATS, and the subjects
//! they say it on. The payloads are protocol's own types (frames, the
//! welcome, room infos) encoded with protocol's codec; these envelopes only
//! put them together. docs/PROTOCOL.md ("Cluster") lists every subject.

use protocol::api::RoomInfo;
use protocol::codec::{CodecError, Format, decode, encode};
use protocol::{ChatLine, ServerMsg, Snapshot, Welcome};
use serde::{Deserialize, Serialize};

/// The KV bucket of the directory (one key per origin, its node id).
pub const DIRECTORY_BUCKET: &str = "tickwire-directory";

/// `tickwire.room.<node>.<room>.frames`: one [`RoomFrames`] per tick.
pub fn frames_subject(node: &str, room: &str) -> String {
    format!("tickwire.room.{node}.{room}.frames")
}

/// `tickwire.room.<node>.<room>.keyframe`: request-reply, answered with a
/// [`Keyframe`].
pub fn keyframe_subject(node: &str, room: &str) -> String {
    format!("tickwire.room.{node}.{room}.keyframe")
}

/// `tickwire.room.<node>.<room>.interest`: an edge that has spectators of
/// the room says so about once a second (empty payload).
pub fn interest_subject(node: &str, room: &str) -> String {
    format!("tickwire.room.{node}.{room}.interest")
}

/// What an origin listens to for all of its rooms.
pub fn origin_wildcard(node: &str, what: &str) -> String {
    format!("tickwire.room.{node}.*.{what}")
}

/// The room id in a subject made by the functions above.
pub fn room_of_subject(subject: &str) -> Option<&str> {
    subject.split('.').nth(3)
}

/// True for a node id that can stand in a subject and a KV key.
pub fn valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One tick of a room on `frames`: the room's frame for a spectator (a
/// `tick`, or a `snapshot` after the origin itself fell behind) and that
/// tick's chat lines, so an edge formats exactly the SSE bytes the origin
/// does. Bincode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomFrames {
    /// `ServerMsg::Tick` or `ServerMsg::Snapshot`.
    pub frame: ServerMsg,
    /// Chat lines of that tick (already sanitised by the origin).
    pub chat: Vec<ChatLine>,
}

/// The answer on `keyframe`: the room's setting (a spectator's welcome) and
/// its world now. Bincode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyframe {
    /// A spectator's welcome (map, mode, rates); its time is the origin's.
    pub welcome: Welcome,
    /// The world after `snapshot.tick`.
    pub snapshot: Snapshot,
}

/// An origin's entry in the directory (its KV key is its node id). JSON,
/// so an operator can read it with the `nats` CLI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// The node id.
    pub node: String,
    /// Its public base URL, where players are sent.
    pub url: String,
    /// Its rooms, as its `GET /api/rooms` shows them.
    pub rooms: Vec<RoomInfo>,
}

/// A room as `GET /api/rooms` lists it on a node of a cluster: the room's
/// own fields and where its owner is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedRoom {
    #[serde(flatten)]
    pub room: RoomInfo,
    /// The owner's public base URL.
    pub url: String,
    /// The owner's node id.
    pub node: String,
}

/// Encodes a bincode envelope.
pub fn to_bytes<T: Serialize>(v: &T) -> bytes::Bytes {
    encode(Format::Bincode, v)
}

/// Decodes a bincode envelope.
pub fn from_bytes<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, CodecError> {
    decode(Format::Bincode, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_carry_node_and_room() {
        let s = frames_subject("n1", "lobby");
        assert_eq!(s, "tickwire.room.n1.lobby.frames");
        assert_eq!(room_of_subject(&s), Some("lobby"));
        assert_eq!(
            room_of_subject(&keyframe_subject("n1", "duel")),
            Some("duel")
        );
        assert!(valid_node_id("edge-1_a"));
        assert!(!valid_node_id("a.b"));
        assert!(!valid_node_id("a*"));
        assert!(!valid_node_id(""));
    }

    #[test]
    fn frames_round_trip_in_bincode() {
        let f = RoomFrames {
            frame: ServerMsg::Chat(ChatLine {
                from: "a".into(),
                text: "b".into(),
            }),
            chat: vec![ChatLine {
                from: "c".into(),
                text: "d".into(),
            }],
        };
        assert_eq!(from_bytes::<RoomFrames>(&to_bytes(&f)).unwrap(), f);
        assert!(from_bytes::<RoomFrames>(b"\xff\xff").is_err());
    }
}
