//! What a client knows of its room: the map, the world rebuilt frame by
//! frame, chat and the event feed. Sans-IO: fed [`ServerMsg`]s, it never
//! touches a socket or a clock, so the TUI, the bots and the tests share it.

use std::collections::VecDeque;

use protocol::state::DeltaError;
use protocol::{
    ChatLine, GameEvent, Map, Mode, PlayerId, ServerMsg, SnakeState, Welcome, WorldState,
};

/// Chat lines kept for display.
pub const CHAT_HISTORY: usize = 200;
/// Game events kept for the kill feed.
pub const FEED_HISTORY: usize = 50;

/// Counters of what the view received and how well it kept up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Tick frames and snapshots received.
    pub frames: u64,
    /// Snapshots (keyframes) received.
    pub keyframes: u64,
    /// Frames whose checksum did not match the rebuilt world.
    pub desyncs: u64,
    /// Frames that did not follow the previous tick (a tick was missed).
    pub gaps: u64,
}

/// Result of handling one server message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// The world moved to a new tick.
    Advanced,
    /// The world could not follow this frame; ask for a keyframe
    /// (`ClientMsg::Resync`). Deltas are ignored until one arrives.
    NeedKeyframe(DeltaError),
    /// A message that does not move the world (chat, pong, error, ...), or a
    /// delta ignored while waiting for a keyframe.
    Other,
}

/// A client's model of one room.
#[derive(Clone, Debug)]
pub struct GameView {
    pub room: String,
    pub mode: Mode,
    pub tick_rate: u32,
    pub map: Map,
    /// Our player id (`None` when spectating).
    pub me: Option<PlayerId>,
    /// Our name as the server accepted it.
    pub my_name: String,
    /// The rebuilt world; `None` until the first keyframe.
    pub world: Option<WorldState>,
    /// Highest input seq the server says it applied for us.
    pub acked: u64,
    /// Unix micros at which the server produced the last frame.
    pub last_server_time_us: u64,
    pub chat: VecDeque<ChatLine>,
    /// `(tick, event)`, newest last.
    pub feed: VecDeque<(u64, GameEvent)>,
    pub stats: FrameStats,
    awaiting_keyframe: bool,
}

impl GameView {
    /// A view for the room a `welcome` describes (no world until a snapshot).
    pub fn new(w: &Welcome) -> GameView {
        GameView {
            room: w.room.clone(),
            mode: w.mode,
            tick_rate: w.tick_rate,
            map: w.map.clone(),
            me: w.player_id,
            my_name: w.name.clone(),
            world: None,
            acked: 0,
            last_server_time_us: w.server_time_us,
            chat: VecDeque::new(),
            feed: VecDeque::new(),
            stats: FrameStats::default(),
            awaiting_keyframe: true,
        }
    }

    /// Takes in a welcome after a reconnect: same room, maybe a new id.
    pub fn rewelcome(&mut self, w: &Welcome) {
        self.me = w.player_id;
        self.my_name = w.name.clone();
        self.map = w.map.clone();
        self.mode = w.mode;
        self.tick_rate = w.tick_rate;
        self.awaiting_keyframe = true;
    }

    /// Handles one message from the server.
    pub fn handle(&mut self, msg: &ServerMsg) -> Handled {
        match msg {
            ServerMsg::Snapshot(s) => {
                self.stats.frames += 1;
                self.stats.keyframes += 1;
                self.acked = self.acked.max(s.ack);
                self.last_server_time_us = s.server_time_us;
                if s.state.checksum() != s.checksum {
                    self.stats.desyncs += 1;
                    self.awaiting_keyframe = true;
                    return Handled::NeedKeyframe(DeltaError::Desync {
                        tick: s.tick,
                        expected: s.checksum,
                        actual: s.state.checksum(),
                    });
                }
                self.world = Some(s.state.clone());
                self.awaiting_keyframe = false;
                Handled::Advanced
            }
            ServerMsg::Tick(t) => {
                self.stats.frames += 1;
                self.acked = self.acked.max(t.ack);
                self.last_server_time_us = t.server_time_us;
                for e in &t.events {
                    self.push_event(t.tick, e.clone());
                }
                if self.awaiting_keyframe {
                    return Handled::Other;
                }
                let Some(world) = self.world.as_mut() else {
                    return Handled::Other;
                };
                if world.tick >= t.tick {
                    // A frame we already have (e.g. re-sent after a resume).
                    return Handled::Other;
                }
                match world.apply_frame(t) {
                    Ok(()) => Handled::Advanced,
                    Err(e) => {
                        match e {
                            DeltaError::Gap { .. } => self.stats.gaps += 1,
                            _ => self.stats.desyncs += 1,
                        }
                        self.awaiting_keyframe = true;
                        Handled::NeedKeyframe(e)
                    }
                }
            }
            ServerMsg::Chat(c) => {
                if self.chat.len() == CHAT_HISTORY {
                    self.chat.pop_front();
                }
                self.chat.push_back(c.clone());
                Handled::Other
            }
            ServerMsg::Welcome(w) => {
                self.rewelcome(w);
                Handled::Other
            }
            ServerMsg::Pong(_) | ServerMsg::Error(_) => Handled::Other,
        }
    }

    fn push_event(&mut self, tick: u64, e: GameEvent) {
        if self.feed.len() == FEED_HISTORY {
            self.feed.pop_front();
        }
        self.feed.push_back((tick, e));
    }

    /// Our own snake, if playing and in the world.
    pub fn my_snake(&self) -> Option<&SnakeState> {
        let (me, world) = (self.me?, self.world.as_ref()?);
        world.snake(me)
    }

    /// The current tick (0 before the first keyframe).
    pub fn tick(&self) -> u64 {
        self.world.as_ref().map_or(0, |w| w.tick)
    }

    /// True while deltas are being ignored until a keyframe arrives.
    pub fn awaiting_keyframe(&self) -> bool {
        self.awaiting_keyframe
    }
}
