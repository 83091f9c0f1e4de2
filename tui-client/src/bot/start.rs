//! The first seconds of a snake: a fresh one waits at its spawn point
//! until its player sends an input, and one that waited too long is parked
//! off the arena until the next input (see docs/PROTOCOL.md). The TUI and
//! the bots both follow their own snake with a [`SpawnWatch`] to know when
//! it waits for them, and start it with [`start_dir`].

use protocol::{Dir, Mode, Pos, SnakeState};

/// Whether our snake waits for us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// It plays (or is dead and respawns on its own, or is a spectator).
    No,
    /// Freshly (re)spawned, it has not moved from its spawn point.
    AtSpawn,
    /// Off the arena for never steering: the next input brings it back.
    Parked,
}

/// Follows our snake frame by frame. Sans-IO: fed the snake after every
/// frame, it says whether the snake waits for an input, and whether one
/// was already sent for this wait.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpawnWatch {
    /// Where it spawned, while it has not moved from there.
    ready_at: Option<Pos>,
    alive_before: bool,
    waiting: Option<Waiting>,
    /// An input was sent during the current wait.
    started: bool,
}

impl SpawnWatch {
    /// Takes in our snake after a frame (`None`: no snake of ours) and
    /// returns whether it waits.
    pub fn observe(&mut self, mode: Mode, snake: Option<&SnakeState>) -> Waiting {
        let before = self.waiting();
        let now = match snake {
            None => {
                self.ready_at = None;
                self.alive_before = false;
                Waiting::No
            }
            Some(s) if s.alive => {
                let head = s.head();
                if !self.alive_before {
                    self.ready_at = head;
                } else if self.ready_at != head {
                    self.ready_at = None;
                }
                self.alive_before = true;
                if self.ready_at.is_some() && mode == Mode::Snake {
                    Waiting::AtSpawn
                } else {
                    Waiting::No
                }
            }
            Some(s) => {
                self.ready_at = None;
                self.alive_before = false;
                // Dead with no countdown in snake mode: nothing brings it
                // back but an input (tron: the next round does).
                if mode == Mode::Snake && s.respawn_in == 0 {
                    Waiting::Parked
                } else {
                    Waiting::No
                }
            }
        };
        if now != before {
            self.started = false;
        }
        self.waiting = Some(now);
        now
    }

    /// What the last [`SpawnWatch::observe`] said.
    pub fn waiting(&self) -> Waiting {
        self.waiting.unwrap_or(Waiting::No)
    }

    /// True while the snake waits and no input was sent for it yet.
    pub fn needs_start(&self) -> bool {
        self.waiting() != Waiting::No && !self.started
    }

    /// An input went out: the wait is over as far as we can tell.
    pub fn started(&mut self) {
        self.started = true;
    }
}

/// The steer that starts a waiting snake: `want` when it turns, else the
/// reversal of `heading`. The client sends no input for a steer the way
/// the snake already heads (key repeat), but any input ends a wait, and
/// the server ignores a reversal as a turn: so pressing the way it faces
/// starts it straight on.
pub fn start_dir(heading: Dir, want: Option<Dir>) -> Dir {
    match want {
        Some(d) if d != heading => d,
        _ => heading.opposite(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Score;

    fn snake(cells: &[(u16, u16)], respawn_in: u16) -> SnakeState {
        SnakeState {
            id: 1,
            name: "a".into(),
            body: cells.iter().map(|&(x, y)| Pos::new(x, y)).collect(),
            dir: Dir::Up,
            alive: !cells.is_empty(),
            respawn_in,
            boost: false,
            connected: true,
            score: Score::default(),
        }
    }

    #[test]
    fn a_fresh_snake_waits_until_it_moves_and_a_parked_one_until_a_key() {
        let mut w = SpawnWatch::default();
        let fresh = snake(&[(5, 5), (5, 6)], 0);
        assert_eq!(w.observe(Mode::Snake, Some(&fresh)), Waiting::AtSpawn);
        assert!(w.needs_start());
        w.started();
        assert!(!w.needs_start(), "one start per wait");
        assert_eq!(w.observe(Mode::Snake, Some(&fresh)), Waiting::AtSpawn);
        assert!(!w.needs_start());
        let moved = snake(&[(5, 4), (5, 5)], 0);
        assert_eq!(w.observe(Mode::Snake, Some(&moved)), Waiting::No);
        // Died: the countdown brings it back, nothing to do.
        assert_eq!(w.observe(Mode::Snake, Some(&snake(&[], 40))), Waiting::No);
        assert_eq!(w.observe(Mode::Snake, Some(&fresh)), Waiting::AtSpawn);
        assert!(w.needs_start(), "a new wait needs a new start");
        // Never steered: parked.
        assert_eq!(
            w.observe(Mode::Snake, Some(&snake(&[], 0))),
            Waiting::Parked
        );
        assert!(w.needs_start());
    }

    #[test]
    fn tron_riders_and_spectators_never_wait() {
        let mut w = SpawnWatch::default();
        let fresh = snake(&[(5, 5)], 0);
        assert_eq!(w.observe(Mode::Tron, Some(&fresh)), Waiting::No);
        assert_eq!(w.observe(Mode::Tron, Some(&snake(&[], 0))), Waiting::No);
        assert_eq!(w.observe(Mode::Snake, None), Waiting::No);
        assert!(!w.needs_start());
    }

    #[test]
    fn the_start_turns_when_asked_else_reverses() {
        assert_eq!(start_dir(Dir::Up, Some(Dir::Left)), Dir::Left);
        assert_eq!(start_dir(Dir::Up, Some(Dir::Up)), Dir::Down);
        assert_eq!(start_dir(Dir::Up, None), Dir::Down);
    }
}
