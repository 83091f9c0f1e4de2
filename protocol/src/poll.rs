//! Bodies of the long-poll and short-poll session endpoints
//! (`/rooms/{room}/sessions/...`), and the one function that builds a poll
//! response from frames that were already encoded once for every subscriber.
//!
//! Every server message of a session carries the session's sequence number
//! (`seq`, from 1, contiguous); every client message the client's own
//! (`seq`, from 1). The JSON and bincode forms are the same serde types, so a
//! spliced response decodes as a [`PollBatch`] like any other message.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::codec::{Format, encode};
use crate::msg::{ClientMsg, ServerMsg};

/// A message with its session sequence number: `{"seq": 17, "msg": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequenced<T> {
    pub seq: u64,
    pub msg: T,
}

/// Answer of `GET .../poll`: messages with `seq > after`, in order. `next`
/// is the `after` of the following poll (the last seq here, or the `after`
/// asked when nothing came).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollBatch {
    pub messages: Vec<Sequenced<ServerMsg>>,
    pub next: u64,
}

/// Body of `POST .../send`: client messages with the client's own seqs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendBatch {
    pub messages: Vec<Sequenced<ClientMsg>>,
}

/// Answer of `POST .../send`: the highest client seq applied so far (every
/// message up to it was applied exactly once; re-sending them is harmless).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendAck {
    pub applied: u64,
}

/// Encodes a [`PollBatch`] around messages that are already encoded in
/// `format`, without decoding or re-encoding them: the bytes equal
/// `encode(format, &PollBatch { .. })` of the same messages.
pub fn encode_poll_batch(format: Format, messages: &[(u64, Bytes)], next: u64) -> Bytes {
    let body: usize = messages.iter().map(|(_, b)| b.len() + 24).sum();
    let mut out = Vec::with_capacity(body + 32);
    match format {
        Format::Json => {
            out.extend_from_slice(b"{\"messages\":[");
            for (i, (seq, msg)) in messages.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(format!("{{\"seq\":{seq},\"msg\":").as_bytes());
                out.extend_from_slice(msg);
                out.push(b'}');
            }
            out.extend_from_slice(format!("],\"next\":{next}}}").as_bytes());
        }
        Format::Bincode => {
            // serde sequences are a varint length then the elements; a struct
            // is its fields in order; u64s are varints.
            out.extend_from_slice(&encode(format, &(messages.len() as u64)));
            for (seq, msg) in messages {
                out.extend_from_slice(&encode(format, seq));
                out.extend_from_slice(msg);
            }
            out.extend_from_slice(&encode(format, &next));
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode;
    use crate::msg::{ChatLine, Pong};

    fn msgs() -> Vec<ServerMsg> {
        vec![
            ServerMsg::Pong(Pong {
                t: 5,
                server_time_us: 300,
            }),
            ServerMsg::Chat(ChatLine {
                from: "a\"b".into(),
                text: "hi {there}".into(),
            }),
        ]
    }

    #[test]
    fn spliced_batches_equal_serde_batches_in_both_formats() {
        for format in [Format::Json, Format::Bincode] {
            for n in 0..=2 {
                let ms: Vec<_> = msgs().into_iter().take(n).collect();
                let pre: Vec<_> = ms
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (300 + i as u64, encode(format, m)))
                    .collect();
                let next = if n == 0 { 299 } else { 299 + n as u64 };
                let spliced = encode_poll_batch(format, &pre, next);
                let want = PollBatch {
                    messages: ms
                        .into_iter()
                        .enumerate()
                        .map(|(i, msg)| Sequenced {
                            seq: 300 + i as u64,
                            msg,
                        })
                        .collect(),
                    next,
                };
                assert_eq!(spliced, encode(format, &want), "{format:?} n={n}");
                assert_eq!(decode::<PollBatch>(format, &spliced).unwrap(), want);
            }
        }
    }
}
