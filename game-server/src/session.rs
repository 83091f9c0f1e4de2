//! The session layer of one room, sans-IO: who plays, their tokens, their
//! input sequence numbers and their resume grace. The room task owns one
//! [`Players`]; every transport reaches it through room commands, so the
//! same rules hold on every transport.

use std::collections::BTreeMap;

use protocol::PlayerId;
use protocol::text::{MAX_NAME_CHARS, sanitize_name};

/// One player of a room.
#[derive(Clone, Debug)]
pub struct Player {
    pub id: PlayerId,
    pub name: String,
    /// Secret that resumes this player (128 random bits, hex).
    pub token: String,
    /// Public session id (long-poll URLs).
    pub session: String,
    /// Highest input seq accepted (queued for the next tick).
    pub last_seq: u64,
    /// Highest input seq applied by a tick: the `ack` in frames.
    pub ack: u64,
    /// Tick at which the connection dropped, while in grace.
    pub detached_since: Option<u64>,
}

/// Why a hello was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    #[error("room is full ({0} players)")]
    RoomFull(u32),
    #[error(
        "no session with that token in this room (it may have expired): join again without a token"
    )]
    UnknownSession,
}

/// The players of a room.
#[derive(Debug)]
pub struct Players {
    by_id: BTreeMap<PlayerId, Player>,
    next_id: PlayerId,
    max_players: u32,
    grace_ticks: u64,
}

/// A random 128-bit value as 32 hex digits, from the OS-seeded CSPRNG.
pub fn random_hex128() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Players {
    /// An empty room for `max_players`, keeping dropped players for `grace_ticks`.
    pub fn new(max_players: u32, grace_ticks: u64) -> Self {
        Players {
            by_id: BTreeMap::new(),
            next_id: 1,
            max_players,
            grace_ticks,
        }
    }

    /// Admits a hello. With a token, resumes that player (`Ok((id, true))`);
    /// without, adds a new one with a unique name (`Ok((id, false))`).
    pub fn admit(
        &mut self,
        name: &str,
        token: Option<&str>,
    ) -> Result<(PlayerId, bool), AdmitError> {
        if let Some(token) = token {
            let p = self
                .by_id
                .values_mut()
                .find(|p| constant_time_eq(p.token.as_bytes(), token.as_bytes()))
                .ok_or(AdmitError::UnknownSession)?;
            p.detached_since = None;
            return Ok((p.id, true));
        }
        if self.by_id.len() as u32 >= self.max_players {
            return Err(AdmitError::RoomFull(self.max_players));
        }
        let id = self.next_id;
        self.next_id += 1;
        let name = self.unique_name(&sanitize_name(name));
        self.by_id.insert(
            id,
            Player {
                id,
                name,
                token: random_hex128(),
                session: random_hex128()[..16].to_string(),
                last_seq: 0,
                ack: 0,
                detached_since: None,
            },
        );
        Ok((id, false))
    }

    /// `base`, or `base` with the smallest number from 2 that makes it
    /// unique in the room; names differing only in case count as the same
    /// (`Alice` and `alice` would look alike on the scoreboard).
    fn unique_name(&self, base: &str) -> String {
        let taken = |n: &str| {
            let n = n.to_lowercase();
            self.by_id.values().any(|p| p.name.to_lowercase() == n)
        };
        if !taken(base) {
            return base.to_string();
        }
        // "alice" -> "alice2", but "bot-3" -> "bot-3-2": digits glued to
        // a name that ends in one would read as another name ("bot-32").
        let sep = if base.ends_with(|c: char| c.is_ascii_digit()) {
            "-"
        } else {
            ""
        };
        (2..)
            .map(|k| {
                let suffix = format!("{sep}{k}");
                let keep = MAX_NAME_CHARS - suffix.len();
                format!("{}{suffix}", base.chars().take(keep).collect::<String>())
            })
            .find(|n| !taken(n))
            .unwrap_or_else(|| base.to_string())
    }

    /// The player with `id`.
    pub fn get(&self, id: PlayerId) -> Option<&Player> {
        self.by_id.get(&id)
    }

    /// Accepts an input seq if it is newer than every earlier one
    /// (duplicates and stale re-sends are ignored: applied once, in order).
    pub fn accept_input(&mut self, id: PlayerId, seq: u64) -> bool {
        match self.by_id.get_mut(&id) {
            Some(p) if seq > p.last_seq => {
                p.last_seq = seq;
                true
            }
            _ => false,
        }
    }

    /// Marks inputs up to `seq` as applied by a tick.
    pub fn applied(&mut self, id: PlayerId, seq: u64) {
        if let Some(p) = self.by_id.get_mut(&id) {
            p.ack = p.ack.max(seq);
        }
    }

    /// The connection of `id` dropped at `tick`: its grace starts.
    pub fn detach(&mut self, id: PlayerId, tick: u64) {
        if let Some(p) = self.by_id.get_mut(&id) {
            p.detached_since.get_or_insert(tick);
        }
    }

    /// Removes a player (left, or grace over).
    pub fn remove(&mut self, id: PlayerId) -> Option<Player> {
        self.by_id.remove(&id)
    }

    /// Players whose grace ran out at `tick`; they are removed.
    pub fn expire(&mut self, tick: u64) -> Vec<PlayerId> {
        let gone: Vec<_> = self
            .by_id
            .values()
            .filter(|p| {
                p.detached_since
                    .is_some_and(|t| tick.saturating_sub(t) >= self.grace_ticks)
            })
            .map(|p| p.id)
            .collect();
        for id in &gone {
            self.by_id.remove(id);
        }
        gone
    }

    /// Number of players (connected or in grace).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when nobody plays.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Compares secrets without an early exit, so timing does not reveal a prefix.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_players_get_ids_unique_names_and_unguessable_tokens() {
        let mut ps = Players::new(4, 10);
        let (a, resumed) = ps.admit("alice", None).unwrap();
        assert!(!resumed);
        let (b, _) = ps.admit("alice", None).unwrap();
        assert_ne!(a, b);
        assert_eq!(ps.get(a).unwrap().name, "alice");
        assert_eq!(ps.get(b).unwrap().name, "alice2");
        let (ta, tb) = (&ps.get(a).unwrap().token, &ps.get(b).unwrap().token);
        assert_eq!(ta.len(), 32);
        assert_ne!(ta, tb);
    }

    #[test]
    fn names_are_unique_whatever_their_case_and_sanitised() {
        let mut ps = Players::new(4, 10);
        let (a, _) = ps.admit("Alice", None).unwrap();
        let (b, _) = ps.admit("aLICE", None).unwrap();
        let (c, _) = ps.admit("\x1b[1mAl\u{200B}ice\u{202E}", None).unwrap();
        assert_eq!(ps.get(a).unwrap().name, "Alice");
        assert_eq!(ps.get(b).unwrap().name, "aLICE2");
        assert_eq!(ps.get(c).unwrap().name, "Alice3");
    }

    #[test]
    fn a_duplicate_of_a_name_ending_in_a_digit_gets_a_separator() {
        let mut ps = Players::new(4, 10);
        ps.admit("bot-3", None).unwrap();
        let (b, _) = ps.admit("bot-3", None).unwrap();
        let (c, _) = ps.admit("BOT-3", None).unwrap();
        assert_eq!(ps.get(b).unwrap().name, "bot-3-2");
        assert_eq!(ps.get(c).unwrap().name, "BOT-3-3");
    }

    #[test]
    fn long_duplicate_names_stay_within_the_limit() {
        let mut ps = Players::new(4, 10);
        let long = "abcdefghijklmnopqrstuvwxyz";
        let (a, _) = ps.admit(long, None).unwrap();
        let (b, _) = ps.admit(long, None).unwrap();
        assert_eq!(ps.get(a).unwrap().name.chars().count(), MAX_NAME_CHARS);
        let nb = &ps.get(b).unwrap().name;
        assert!(
            nb.ends_with('2') && nb.chars().count() == MAX_NAME_CHARS,
            "{nb}"
        );
    }

    #[test]
    fn room_full_is_refused_but_resume_still_works() {
        let mut ps = Players::new(1, 10);
        let (a, _) = ps.admit("a", None).unwrap();
        assert_eq!(ps.admit("b", None), Err(AdmitError::RoomFull(1)));
        let token = ps.get(a).unwrap().token.clone();
        ps.detach(a, 5);
        assert_eq!(ps.admit("ignored", Some(&token)), Ok((a, true)));
        assert_eq!(ps.admit("x", Some("0000")), Err(AdmitError::UnknownSession));
    }

    #[test]
    fn inputs_apply_once_and_in_order() {
        let mut ps = Players::new(4, 10);
        let (a, _) = ps.admit("a", None).unwrap();
        assert!(ps.accept_input(a, 1));
        assert!(!ps.accept_input(a, 1), "duplicate");
        assert!(ps.accept_input(a, 3));
        assert!(!ps.accept_input(a, 2), "older than the newest");
        ps.applied(a, 3);
        assert_eq!(ps.get(a).unwrap().ack, 3);
    }

    #[test]
    fn grace_expires_only_after_its_ticks_and_resume_cancels_it() {
        let mut ps = Players::new(4, 10);
        let (a, _) = ps.admit("a", None).unwrap();
        let (b, _) = ps.admit("b", None).unwrap();
        ps.detach(a, 100);
        ps.detach(b, 100);
        assert!(ps.expire(109).is_empty());
        let tb = ps.get(b).unwrap().token.clone();
        ps.admit("b", Some(&tb)).unwrap();
        assert_eq!(ps.expire(110), vec![a]);
        assert!(ps.get(a).is_none());
        assert!(ps.get(b).is_some());
    }
}
