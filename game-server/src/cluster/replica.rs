//! An edge's copy of one room's world, sans-IO: fed the frames that came
//! over NATS and the keyframes it asked for, it applies each frame with
//! `protocol`'s `apply_frame` (checksum verified) and says what the edge
//! must do: pass a tick on, resync its spectators to a keyframe, or ask
//! for one (it has none yet, it missed a frame, or a checksum disagreed).

use protocol::{ChatLine, ServerMsg, Snapshot, TickFrame, WorldState};

use super::wire::RoomFrames;

/// Frames kept while a keyframe is on its way (a few seconds of ticks).
const WAITING_FRAMES: usize = 256;

/// What the edge does after a frame or a keyframe.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// A tick applied in order: format it for the spectators.
    Tick {
        frame: Box<TickFrame>,
        chat: Vec<ChatLine>,
    },
    /// The world was replaced by a keyframe: the spectators get it as a
    /// snapshot (the ring of ticks starts again after it).
    Resync {
        snapshot: Box<Snapshot>,
        chat: Vec<ChatLine>,
    },
    /// Chat that came on its own (after its tick had gone).
    Chat(Vec<ChatLine>),
    /// Ask the origin for a keyframe (the reason, for the log).
    NeedKeyframe(String),
}

/// One room's world on an edge.
#[derive(Debug, Default)]
pub struct Replica {
    state: Option<WorldState>,
    /// Frames that came while waiting for a keyframe.
    waiting: Vec<RoomFrames>,
    /// Checksum mismatches seen (each one cost a keyframe).
    pub desyncs: u64,
    /// Ticks that never came (each gap cost a keyframe).
    pub gaps: u64,
}

impl Replica {
    /// The world after the last applied tick, once there is one.
    pub fn state(&self) -> Option<&WorldState> {
        self.state.as_ref()
    }

    /// True while the replica waits for a keyframe.
    pub fn needs_keyframe(&self) -> bool {
        self.state.is_none()
    }

    /// The link to the origin broke (NATS went away): whatever comes next
    /// starts from a keyframe.
    pub fn handle_lost(&mut self) {
        self.state = None;
        self.waiting.clear();
    }

    /// One message from `frames`.
    pub fn handle_frames(&mut self, f: RoomFrames) -> Vec<Step> {
        let Some(state) = self.state.as_mut() else {
            if self.waiting.len() == WAITING_FRAMES {
                self.waiting.remove(0);
            }
            self.waiting.push(f);
            return Vec::new();
        };
        match f.frame {
            // A repeat: nothing new.
            ServerMsg::Tick(t) if t.tick == state.tick => Vec::new(),
            // Older than what we have: the origin started over (a restart
            // under the same node id); its world is another one now.
            ServerMsg::Tick(t) if t.tick < state.tick => {
                let why = format!(
                    "the origin went back from tick {} to {}",
                    state.tick, t.tick
                );
                self.state = None;
                vec![Step::NeedKeyframe(why)]
            }
            ServerMsg::Tick(t) => match state.apply_frame(&t) {
                Ok(()) => vec![Step::Tick {
                    frame: t,
                    chat: f.chat,
                }],
                Err(e) => {
                    match e {
                        protocol::state::DeltaError::Gap { .. } => self.gaps += 1,
                        _ => self.desyncs += 1,
                    }
                    self.state = None;
                    vec![Step::NeedKeyframe(e.to_string())]
                }
            },
            ServerMsg::Snapshot(s) => self.resync(s, f.chat).into_iter().collect(),
            ServerMsg::Chat(c) => vec![Step::Chat(vec![c])],
            _ => Vec::new(),
        }
    }

    /// The answer to a keyframe request: the world from it, then the
    /// frames that came meanwhile.
    pub fn handle_keyframe(&mut self, snapshot: Snapshot) -> Vec<Step> {
        if let Some(s) = &self.state
            && s.tick >= snapshot.tick
        {
            // Already past it (an earlier answer, or frames in order).
            return Vec::new();
        }
        let mut steps: Vec<Step> = self
            .resync(Box::new(snapshot), Vec::new())
            .into_iter()
            .collect();
        for f in std::mem::take(&mut self.waiting) {
            steps.extend(self.handle_frames(f));
        }
        steps
    }

    fn resync(&mut self, s: Box<Snapshot>, chat: Vec<ChatLine>) -> Option<Step> {
        let actual = s.state.checksum();
        if actual != s.checksum || s.state.tick != s.tick {
            self.desyncs += 1;
            self.state = None;
            return Some(Step::NeedKeyframe(format!(
                "keyframe of tick {} does not match its checksum",
                s.tick
            )));
        }
        self.state = Some(s.state.clone());
        Some(Step::Resync { snapshot: s, chat })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Mode;

    fn world(tick: u64, food: u16) -> WorldState {
        let mut w = WorldState::new(Mode::Snake);
        w.tick = tick;
        w.food = (0..food).map(|x| protocol::Pos { x, y: 0 }).collect();
        w
    }

    fn tick(prev: &WorldState, now: &WorldState) -> RoomFrames {
        RoomFrames {
            frame: ServerMsg::Tick(Box::new(TickFrame {
                ack: 0,
                tick: now.tick,
                checksum: now.checksum(),
                server_time_us: 1,
                delta: now.diff(prev),
                events: Vec::new(),
            })),
            chat: Vec::new(),
        }
    }

    fn snapshot(w: &WorldState) -> Snapshot {
        Snapshot {
            ack: 0,
            tick: w.tick,
            checksum: w.checksum(),
            server_time_us: 1,
            state: w.clone(),
        }
    }

    fn kinds(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Tick { frame, .. } => format!("tick {}", frame.tick),
                Step::Resync { snapshot, .. } => format!("resync {}", snapshot.tick),
                Step::Chat(_) => "chat".into(),
                Step::NeedKeyframe(_) => "keyframe?".into(),
            })
            .collect()
    }

    #[test]
    fn frames_before_the_keyframe_wait_and_follow_it() {
        let w: Vec<_> = (0..5).map(|t| world(t, t as u16)).collect();
        let mut r = Replica::default();
        assert!(r.handle_frames(tick(&w[1], &w[2])).is_empty());
        assert!(r.handle_frames(tick(&w[2], &w[3])).is_empty());
        let steps = r.handle_keyframe(snapshot(&w[2]));
        assert_eq!(kinds(&steps), ["resync 2", "tick 3"]);
        assert_eq!(kinds(&r.handle_frames(tick(&w[3], &w[4]))), ["tick 4"]);
        assert_eq!(r.state(), Some(&w[4]));
    }

    #[test]
    fn a_gap_or_a_bad_checksum_asks_for_a_keyframe() {
        let w: Vec<_> = (0..6).map(|t| world(t, t as u16)).collect();
        let mut r = Replica::default();
        r.handle_keyframe(snapshot(&w[1]));
        assert_eq!(kinds(&r.handle_frames(tick(&w[2], &w[3]))), ["keyframe?"]);
        assert_eq!(r.gaps, 1);
        assert!(r.needs_keyframe());
        r.handle_keyframe(snapshot(&w[3]));
        let mut bad = tick(&w[3], &w[4]);
        if let ServerMsg::Tick(t) = &mut bad.frame {
            t.checksum ^= 1;
        }
        assert_eq!(kinds(&r.handle_frames(bad)), ["keyframe?"]);
        assert_eq!(r.desyncs, 1);
        // A stale keyframe answer after a newer one changes nothing.
        r.handle_keyframe(snapshot(&w[5]));
        assert!(r.handle_keyframe(snapshot(&w[4])).is_empty());
        assert_eq!(r.state(), Some(&w[5]));
    }

    #[test]
    fn a_snapshot_in_the_stream_resyncs_and_a_lost_link_waits_for_one() {
        let w: Vec<_> = (0..4).map(|t| world(t, t as u16)).collect();
        let mut r = Replica::default();
        r.handle_keyframe(snapshot(&w[0]));
        let f = RoomFrames {
            frame: ServerMsg::Snapshot(Box::new(snapshot(&w[2]))),
            chat: Vec::new(),
        };
        assert_eq!(kinds(&r.handle_frames(f)), ["resync 2"]);
        r.handle_lost();
        assert!(r.handle_frames(tick(&w[2], &w[3])).is_empty());
        assert_eq!(
            kinds(&r.handle_keyframe(snapshot(&w[2]))),
            ["resync 2", "tick 3"]
        );
    }
}
