//! The one place that knows how messages become bytes: JSON text and bincode
//! binary. Swapping bincode for another binary codec touches only this file.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::msg::ServerMsg;

/// Largest message, in bytes, the bincode decoder will allocate for.
/// Keeps a hostile length prefix from reserving gigabytes.
pub const MAX_DECODE_BYTES: usize = 4 << 20;

/// A wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// serde_json text.
    Json,
    /// bincode 2 `standard()` (varint) binary.
    Bincode,
}

impl Format {
    /// HTTP content type of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Bincode => "application/octet-stream",
        }
    }
}

/// Bytes that are not a valid message in the expected format.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("invalid JSON message: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid bincode message: {0}")]
    Bincode(#[from] bincode::error::DecodeError),
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODE_BYTES>()
}

/// Encodes a message.
pub fn encode<T: Serialize>(format: Format, msg: &T) -> Bytes {
    match format {
        // Invariant: our message types have only string map keys and no
        // fallible Serialize impls, so serde_json cannot fail on them.
        Format::Json => serde_json::to_vec(msg)
            .expect("protocol types serialise to JSON")
            .into(),
        // Invariant: encoding into a Vec cannot fail for our types.
        Format::Bincode => bincode::serde::encode_to_vec(msg, bincode_config())
            .expect("protocol types serialise to bincode")
            .into(),
    }
}

/// Decodes a message; any malformed input is an error value, never a panic.
pub fn decode<T: DeserializeOwned>(format: Format, bytes: &[u8]) -> Result<T, CodecError> {
    match format {
        Format::Json => Ok(serde_json::from_slice(bytes)?),
        Format::Bincode => {
            let (msg, used) = bincode::serde::decode_from_slice(bytes, bincode_config())?;
            if used != bytes.len() {
                return Err(CodecError::Trailing(bytes.len() - used));
            }
            Ok(msg)
        }
    }
}

/// FNV-1a 64 of a value's bincode encoding, computed without allocating.
pub(crate) fn fnv1a_of<T: Serialize>(value: &T) -> u64 {
    struct Fnv(u64);
    impl bincode::enc::write::Writer for Fnv {
        fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
            for &b in bytes {
                self.0 ^= u64::from(b);
                self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
            }
            Ok(())
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    // Invariant: the hashing writer never fails and our types always encode.
    bincode::serde::encode_into_writer(value, &mut h, bincode::config::standard())
        .expect("protocol types serialise to bincode");
    h.0
}

/// A server frame encoded once and shared by every subscriber.
///
/// Ticks and snapshots carry a per-player `ack` as their first field. The
/// frame is encoded once with `ack = 0`, which JSON leaves out, so the
/// shared bytes are a spectator's frame (no `ack`); [`SharedFrame::with_ack`]
/// puts a player's ack in front of the same shared tail, so a room encodes
/// each frame once per format however many players it has, and spectators
/// get [`SharedFrame::bytes`] without any copy.
#[derive(Clone, Debug)]
pub struct SharedFrame {
    format: Format,
    bytes: Bytes,
    /// Where the shared tail starts, for re-headable frames.
    splice: Option<(Variant, usize)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Snapshot,
    Tick,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Snapshot => "snapshot",
            Variant::Tick => "tick",
        }
    }
    /// Declaration index in [`ServerMsg`] (checked by a test).
    fn index(self) -> u32 {
        match self {
            Variant::Snapshot => 1,
            Variant::Tick => 2,
        }
    }
}

fn header(format: Format, v: Variant, ack: u64) -> Vec<u8> {
    match format {
        // JSON leaves an ack of 0 out (`crate::wire`): the shared body
        // starts `{"tick":{"tick":...`; a player's copy gets `"ack":N,`.
        Format::Json if ack == 0 => format!("{{\"{}\":{{", v.name()).into_bytes(),
        Format::Json => format!("{{\"{}\":{{\"ack\":{ack},", v.name()).into_bytes(),
        Format::Bincode => bincode::serde::encode_to_vec((v.index(), ack), bincode_config())
            .expect("two integers always encode"),
    }
}

impl SharedFrame {
    /// Encodes `msg` once. Ticks and snapshots are encoded with `ack = 0`.
    pub fn new(format: Format, mut msg: ServerMsg) -> SharedFrame {
        let variant = match &mut msg {
            ServerMsg::Snapshot(s) => {
                s.ack = 0;
                Some(Variant::Snapshot)
            }
            ServerMsg::Tick(t) => {
                t.ack = 0;
                Some(Variant::Tick)
            }
            _ => None,
        };
        let bytes = encode(format, &msg);
        let splice = variant.and_then(|v| {
            let h = header(format, v, 0);
            // Holds by construction (ack is the first field); checked so a
            // reordered struct degrades to per-player encoding, never to garbage.
            bytes.starts_with(&h).then_some((v, h.len()))
        });
        debug_assert!(
            variant.is_none() || splice.is_some(),
            "ack must be the first field"
        );
        SharedFrame {
            format,
            bytes,
            splice,
        }
    }

    /// The format these bytes are in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The shared encoding (with `ack = 0` for ticks and snapshots).
    pub fn bytes(&self) -> Bytes {
        self.bytes.clone()
    }

    /// The encoding with `ack` in place of 0 as two parts, a small head
    /// of its own and the shared tail (no copy), to be written one after
    /// the other (one vectored write). Without an ack (0) or for a message
    /// that carries none the head is empty and the tail is the shared
    /// buffer itself. `head + tail` is [`SharedFrame::with_ack`].
    pub fn parts(&self, ack: u64) -> (Bytes, Bytes) {
        match self.splice {
            Some((v, tail)) if ack != 0 => {
                (header(self.format, v, ack).into(), self.bytes.slice(tail..))
            }
            _ => (Bytes::new(), self.bytes.clone()),
        }
    }

    /// The encoding with `ack` in place of 0. Without an ack (0) or for a
    /// message that carries none this is the shared buffer itself.
    pub fn with_ack(&self, ack: u64) -> Bytes {
        match self.splice {
            Some((v, tail)) if ack != 0 => {
                let mut out = header(self.format, v, ack);
                out.extend_from_slice(&self.bytes[tail..]);
                out.into()
            }
            _ => self.bytes.clone(),
        }
    }
}
