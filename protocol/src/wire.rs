//! The compact wire forms of the per-tick types (protocol v2), written by
//! hand because they differ by format:
//!
//! - In JSON (a human-readable format) empty fields are left out: a `tick`
//!   without an `ack` (0: spectators) or `events`, a delta without the lists
//!   that are empty, a move without the fields that did not change. Every
//!   such field has `#[serde(default)]`, so it decodes as empty.
//! - In bincode (not self-describing, so it cannot leave fields out) every
//!   field of a frame and delta is written; a [`SnakeMove`] is packed behind
//!   a flags byte instead: id, flags, the head cells, then only what the
//!   flags say is there. A plain one-cell move is 4 bytes.
//!
//! Which form is chosen by `is_human_readable()`, so nothing here names a
//! codec (`crate::codec` stays the only module that knows bincode).

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::{SerializeStruct, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::PlayerId;
use crate::geom::{Dir, Pos};
use crate::msg::{Snapshot, TickFrame};
use crate::state::{Delta, SnakeMove};

/// Writes a field, or skips it when the format is human-readable and the
/// value is empty (a binary format always gets every field, in order).
fn field<S: SerializeStruct, T: Serialize + ?Sized>(
    st: &mut S,
    human: bool,
    name: &'static str,
    value: &T,
    empty: bool,
) -> Result<(), S::Error> {
    if human && empty {
        st.skip_field(name)
    } else {
        st.serialize_field(name, value)
    }
}

impl Serialize for TickFrame {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let human = s.is_human_readable();
        let mut st = s.serialize_struct("TickFrame", 6)?;
        // `ack` stays first: `SharedFrame` splices it in front of the rest.
        field(&mut st, human, "ack", &self.ack, self.ack == 0)?;
        st.serialize_field("tick", &self.tick)?;
        st.serialize_field("checksum", &self.checksum)?;
        st.serialize_field("server_time_us", &self.server_time_us)?;
        st.serialize_field("delta", &self.delta)?;
        field(
            &mut st,
            human,
            "events",
            &self.events,
            self.events.is_empty(),
        )?;
        st.end()
    }
}

impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let human = s.is_human_readable();
        let mut st = s.serialize_struct("Snapshot", 5)?;
        field(&mut st, human, "ack", &self.ack, self.ack == 0)?;
        st.serialize_field("tick", &self.tick)?;
        st.serialize_field("checksum", &self.checksum)?;
        st.serialize_field("server_time_us", &self.server_time_us)?;
        st.serialize_field("state", &self.state)?;
        st.end()
    }
}

impl Serialize for Delta {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = s.is_human_readable();
        let mut st = s.serialize_struct("Delta", 7)?;
        field(&mut st, h, "round", &self.round, self.round.is_none())?;
        field(&mut st, h, "moved", &self.moved, self.moved.is_empty())?;
        field(&mut st, h, "snakes", &self.snakes, self.snakes.is_empty())?;
        field(
            &mut st,
            h,
            "removed",
            &self.removed,
            self.removed.is_empty(),
        )?;
        let (added, removed) = (&self.food_added, &self.food_removed);
        field(&mut st, h, "food_added", added, added.is_empty())?;
        field(&mut st, h, "food_removed", removed, removed.is_empty())?;
        field(&mut st, h, "scores", &self.scores, self.scores.is_empty())?;
        st.end()
    }
}

// ------------------------------------------------------------ SnakeMove

/// Flags byte of a packed move: bits 0-2 the head cell count (7: a count
/// follows), bits 3-4 the trim (0: the usual one, 1: trim 0, 2: trim 1,
/// 3: a trim follows), bit 5 a changes byte follows. Bits 6-7 are zero.
const HEAD_BITS: u8 = 0b111;
const HEAD_FOLLOWS: u8 = 7;
const TRIM_SHIFT: u8 = 3;
const TRIM_FOLLOWS: u8 = 3;
const CHANGES: u8 = 1 << 5;
/// Changes byte: which small fields follow, in this order. Bits 5-7 are zero.
const DIR: u8 = 1;
const ALIVE: u8 = 1 << 1;
const RESPAWN: u8 = 1 << 2;
const BOOST: u8 = 1 << 3;
const CONNECTED: u8 = 1 << 4;
/// Most elements a packed move has (id, flags, count, cells, trim,
/// changes and five fields).
const MAX_ELEMENTS: usize = 11;

fn changes_byte(m: &SnakeMove) -> u8 {
    [
        (m.dir.is_some(), DIR),
        (m.alive.is_some(), ALIVE),
        (m.respawn_in.is_some(), RESPAWN),
        (m.boost.is_some(), BOOST),
        (m.connected.is_some(), CONNECTED),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .fold(0, |acc, (_, bit)| acc | bit)
}

/// Head cells with their count known from the flags: no length prefix.
struct Cells<'a>(&'a [Pos]);

impl Serialize for Cells<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(self.0.len())?;
        for p in self.0 {
            t.serialize_element(p)?;
        }
        t.end()
    }
}

impl Serialize for SnakeMove {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            let mut st = s.serialize_struct("SnakeMove", 8)?;
            st.serialize_field("id", &self.id)?;
            field(&mut st, true, "head", &self.head, self.head.is_empty())?;
            field(&mut st, true, "trim", &self.trim, self.trim.is_none())?;
            field(&mut st, true, "dir", &self.dir, self.dir.is_none())?;
            field(&mut st, true, "alive", &self.alive, self.alive.is_none())?;
            let respawn = &self.respawn_in;
            field(&mut st, true, "respawn_in", respawn, respawn.is_none())?;
            field(&mut st, true, "boost", &self.boost, self.boost.is_none())?;
            let connected = &self.connected;
            field(&mut st, true, "connected", connected, connected.is_none())?;
            return st.end();
        }
        let head_code = u8::try_from(self.head.len())
            .ok()
            .filter(|&n| n < HEAD_FOLLOWS)
            .unwrap_or(HEAD_FOLLOWS);
        let trim_code = match self.trim {
            None => 0,
            Some(t @ 0..=1) => t as u8 + 1,
            Some(_) => TRIM_FOLLOWS,
        };
        let changes = changes_byte(self);
        let flags = head_code | trim_code << TRIM_SHIFT | if changes != 0 { CHANGES } else { 0 };
        let elements = 3
            + usize::from(head_code == HEAD_FOLLOWS)
            + usize::from(trim_code == TRIM_FOLLOWS)
            + if changes != 0 {
                1 + changes.count_ones() as usize
            } else {
                0
            };
        let mut t = s.serialize_tuple(elements)?;
        t.serialize_element(&self.id)?;
        t.serialize_element(&flags)?;
        if head_code == HEAD_FOLLOWS {
            let n = u32::try_from(self.head.len())
                .map_err(|_| serde::ser::Error::custom("more than 2^32 head cells"))?;
            t.serialize_element(&n)?;
        }
        t.serialize_element(&Cells(&self.head))?;
        if let (TRIM_FOLLOWS, Some(trim)) = (trim_code, &self.trim) {
            t.serialize_element(trim)?;
        }
        if changes != 0 {
            t.serialize_element(&changes)?;
            if let Some(d) = &self.dir {
                t.serialize_element(d)?;
            }
            if let Some(a) = &self.alive {
                t.serialize_element(a)?;
            }
            if let Some(r) = &self.respawn_in {
                t.serialize_element(r)?;
            }
            if let Some(b) = &self.boost {
                t.serialize_element(b)?;
            }
            if let Some(c) = &self.connected {
                t.serialize_element(c)?;
            }
        }
        t.end()
    }
}

/// A move as JSON spells it: absent fields are empty or unchanged.
#[derive(Deserialize)]
struct JsonMove {
    id: PlayerId,
    #[serde(default)]
    head: Vec<Pos>,
    #[serde(default)]
    trim: Option<u32>,
    #[serde(default)]
    dir: Option<Dir>,
    #[serde(default)]
    alive: Option<bool>,
    #[serde(default)]
    respawn_in: Option<u16>,
    #[serde(default)]
    boost: Option<bool>,
    #[serde(default)]
    connected: Option<bool>,
}

impl<'de> Deserialize<'de> for SnakeMove {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SnakeMove, D::Error> {
        if d.is_human_readable() {
            let j = JsonMove::deserialize(d)?;
            return Ok(SnakeMove {
                id: j.id,
                head: j.head,
                trim: j.trim,
                dir: j.dir,
                alive: j.alive,
                respawn_in: j.respawn_in,
                boost: j.boost,
                connected: j.connected,
            });
        }
        d.deserialize_tuple(MAX_ELEMENTS, PackedMove)
    }
}

struct PackedMove;

fn next<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(seq: &mut A) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::custom("packed move ended early"))
}

impl<'de> Visitor<'de> for PackedMove {
    type Value = SnakeMove;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a packed snake move")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SnakeMove, A::Error> {
        let id: PlayerId = next(&mut seq)?;
        let flags: u8 = next(&mut seq)?;
        if flags >> 6 != 0 {
            return Err(de::Error::custom(format!("bad move flags {flags:#04x}")));
        }
        let n = match flags & HEAD_BITS {
            HEAD_FOLLOWS => next::<_, u32>(&mut seq)? as usize,
            n => usize::from(n),
        };
        let head = seq
            .next_element_seed(CellsSeed(n))?
            .ok_or_else(|| de::Error::custom("packed move ended early"))?;
        let trim = match (flags >> TRIM_SHIFT) & 0b11 {
            0 => None,
            TRIM_FOLLOWS => Some(next(&mut seq)?),
            t => Some(u32::from(t) - 1),
        };
        let mut m = SnakeMove {
            id,
            head,
            trim,
            ..SnakeMove::default()
        };
        if flags & CHANGES == 0 {
            return Ok(m);
        }
        let changes: u8 = next(&mut seq)?;
        if changes >> 5 != 0 {
            return Err(de::Error::custom(format!(
                "bad move changes {changes:#04x}"
            )));
        }
        if changes & DIR != 0 {
            m.dir = Some(next(&mut seq)?);
        }
        if changes & ALIVE != 0 {
            m.alive = Some(next(&mut seq)?);
        }
        if changes & RESPAWN != 0 {
            m.respawn_in = Some(next(&mut seq)?);
        }
        if changes & BOOST != 0 {
            m.boost = Some(next(&mut seq)?);
        }
        if changes & CONNECTED != 0 {
            m.connected = Some(next(&mut seq)?);
        }
        Ok(m)
    }
}

/// Reads `n` head cells written without a length prefix.
struct CellsSeed(usize);

impl<'de> DeserializeSeed<'de> for CellsSeed {
    type Value = Vec<Pos>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Pos>, D::Error> {
        d.deserialize_tuple(self.0, self)
    }
}

impl<'de> Visitor<'de> for CellsSeed {
    type Value = Vec<Pos>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{} head cells", self.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Pos>, A::Error> {
        // A hostile count allocates nothing up front: the input runs out first.
        let mut cells = Vec::with_capacity(self.0.min(crate::state::MAX_HEAD_STEP));
        for _ in 0..self.0 {
            cells.push(next(&mut seq)?);
        }
        Ok(cells)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Format, decode, encode};

    fn plain() -> SnakeMove {
        SnakeMove {
            id: 12,
            head: vec![Pos::new(34, 56)],
            ..SnakeMove::default()
        }
    }

    #[test]
    fn a_plain_move_is_four_bytes_of_bincode_and_two_fields_of_json() {
        let m = plain();
        assert_eq!(encode(Format::Bincode, &m).len(), 4);
        assert_eq!(
            &encode(Format::Json, &m)[..],
            br#"{"id":12,"head":[[34,56]]}"#
        );
        for trim in [0, 1, 2, 1000] {
            let m = SnakeMove {
                trim: Some(trim),
                ..plain()
            };
            for f in [Format::Json, Format::Bincode] {
                assert_eq!(decode::<SnakeMove>(f, &encode(f, &m)).unwrap(), m);
            }
        }
    }

    #[test]
    fn every_field_and_the_escapes_survive_both_formats() {
        let m = SnakeMove {
            id: 70_000,
            head: (0..9).map(|i| Pos::new(i, 300)).collect(),
            trim: Some(1000),
            dir: Some(Dir::Left),
            alive: Some(false),
            respawn_in: Some(40),
            boost: Some(true),
            connected: Some(false),
        };
        for f in [Format::Json, Format::Bincode] {
            let back: SnakeMove = decode(f, &encode(f, &m)).unwrap();
            assert_eq!(back, m, "{f:?}");
        }
    }

    #[test]
    fn unknown_flag_bits_are_errors() {
        let mut bytes = encode(Format::Bincode, &plain()).to_vec();
        bytes[1] |= 0x80;
        assert!(decode::<SnakeMove>(Format::Bincode, &bytes).is_err());
    }

    #[test]
    fn a_spectator_tick_has_no_ack_and_an_empty_delta_is_empty() {
        let t = TickFrame {
            ack: 0,
            tick: 17,
            checksum: 1,
            server_time_us: 3,
            delta: Delta::default(),
            events: vec![],
        };
        assert_eq!(
            &encode(Format::Json, &t)[..],
            br#"{"tick":17,"checksum":1,"server_time_us":3,"delta":{}}"#
        );
        let back: TickFrame = decode(Format::Bincode, &encode(Format::Bincode, &t)).unwrap();
        assert_eq!(back, t);
    }
}
