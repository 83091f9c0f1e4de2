//! The client's session layer as a sans-IO state machine.
//!
//! [`Session`] is fed the server's messages, the UI's commands and the
//! time, and answers with the messages to send. It numbers inputs (from 1,
//! continuing across a resume), sends a steer or boost only when it changes
//! what the snake will do, remembers the token from `welcome` so a
//! reconnect resumes the same snake, pings every second and notices a
//! silent link. Reconnect decisions live in [`super::reconnect`]. Nothing
//! here touches a socket or a clock: the async task in [`super::task`]
//! moves the bytes, and the tests drive it with fake instants.

use std::time::{Duration, Instant};

use protocol::{
    ChatText, ClientMsg, Dir, ErrorMsg, Hello, Input, PROTOCOL_VERSION, Ping, PlayerId, Role,
    ServerMsg,
};

/// How often a connected session pings.
pub const PING_INTERVAL: Duration = Duration::from_secs(1);
/// A link that delivered nothing (not even a pong) for this long is dead.
/// The server ticks at least once a second and answers every ping, so
/// silence this long means a half-open connection.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(10);

/// What a timer expiry asks the task to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerAction {
    /// Send this message (a ping).
    Send(ClientMsg),
    /// The link has been silent too long: drop it and reconnect.
    Dead,
}

/// The sans-IO client session. One per client task; it outlives each
/// connection so the token and input numbering survive a reconnect.
#[derive(Clone, Debug)]
pub struct Session {
    name: String,
    role: Role,
    token: Option<String>,
    player_id: Option<PlayerId>,
    /// Next input seq to use; starts at 1.
    next_seq: u64,
    /// Highest input seq the server reported applied.
    acked: u64,
    /// Last steer sent on this connection: `(seq, dir)`.
    sent_steer: Option<(u64, Dir)>,
    /// Our snake's heading in the latest frame.
    heading: Option<Dir>,
    /// Boost state the server was last told.
    boost: bool,
    /// Set while a link is open.
    link: Option<LinkState>,
    /// The last `error` the server sent on this connection.
    last_error: Option<ErrorMsg>,
    /// `leave` was sent.
    left: bool,
    welcomes: u32,
}

#[derive(Clone, Copy, Debug)]
struct LinkState {
    welcomed: bool,
    next_ping: Instant,
    last_rx: Instant,
}

impl Session {
    /// A session that will join as `name` in `role`.
    pub fn new(name: impl Into<String>, role: Role) -> Session {
        Session {
            name: name.into(),
            role,
            token: None,
            player_id: None,
            next_seq: 1,
            acked: 0,
            sent_steer: None,
            heading: None,
            boost: false,
            link: None,
            last_error: None,
            left: false,
            welcomes: 0,
        }
    }

    /// The `hello` for the next connection: carries the token once we have one.
    pub fn hello(&self) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            name: self.name.clone(),
            role: self.role,
            token: self.token.clone(),
        }
    }

    /// A link opened at `now` and the hello went out.
    pub fn handle_connected(&mut self, now: Instant) {
        self.link = Some(LinkState {
            welcomed: false,
            next_ping: now,
            last_rx: now,
        });
        self.last_error = None;
        // Steers sent on the old link may never have arrived; the next
        // snapshot tells the truth about the heading.
        self.sent_steer = None;
    }

    /// The link ended (the task then asks [`super::reconnect`] what next).
    pub fn handle_disconnected(&mut self) {
        self.link = None;
    }

    /// Takes in one server message received at `now`.
    pub fn handle_server(&mut self, msg: &ServerMsg, now: Instant) {
        if let Some(link) = self.link.as_mut() {
            link.last_rx = now;
        }
        match msg {
            ServerMsg::Welcome(w) => {
                self.token = Some(w.token.clone());
                if !w.resumed || self.player_id != w.player_id {
                    // A new snake: the server numbers its inputs afresh.
                    self.acked = 0;
                    self.heading = None;
                }
                self.player_id = w.player_id;
                self.name = w.name.clone();
                self.welcomes += 1;
                if let Some(link) = self.link.as_mut() {
                    link.welcomed = true;
                }
            }
            ServerMsg::Snapshot(s) => {
                self.acked = self.acked.max(s.ack);
                if let Some(me) = self.player_id {
                    self.heading = s.state.snake(me).map(|snake| snake.dir);
                }
            }
            ServerMsg::Tick(t) => {
                self.acked = self.acked.max(t.ack);
                let Some(me) = self.player_id else { return };
                if t.delta.removed.contains(&me) {
                    self.heading = None;
                }
                // Protocol 2: a move carries `dir` only when it changed.
                let turned = t.delta.moved.iter().filter(|m| m.id == me);
                let whole = t.delta.snakes.iter().filter(|s| s.id == me);
                for dir in turned.filter_map(|m| m.dir).chain(whole.map(|s| s.dir)) {
                    self.heading = Some(dir);
                }
            }
            ServerMsg::Error(e) => self.last_error = Some(e.clone()),
            ServerMsg::Pong(_) | ServerMsg::Chat(_) => {}
        }
    }

    /// The direction the snake is going to take as far as we know: the
    /// last steer while the server has not applied it, else the heading.
    fn intended_dir(&self) -> Option<Dir> {
        match self.sent_steer {
            Some((seq, dir)) if seq > self.acked => Some(dir),
            Some((_, dir)) => self.heading.or(Some(dir)),
            None => self.heading,
        }
    }

    fn can_input(&self) -> bool {
        self.role == Role::Player && self.link.is_some_and(|l| l.welcomed) && !self.left
    }

    fn input(&mut self, dir: Dir) -> ClientMsg {
        let seq = self.next_seq;
        self.next_seq += 1;
        ClientMsg::Input(Input {
            seq,
            dir,
            boost: self.boost,
        })
    }

    /// Steer: an input when `dir` changes what the snake will do, else
    /// nothing (key repeat never floods the server). Dropped while not
    /// connected: a stale turn after a reconnect would do harm.
    pub fn steer(&mut self, dir: Dir) -> Option<ClientMsg> {
        if !self.can_input() || self.intended_dir() == Some(dir) {
            return None;
        }
        let msg = self.input(dir);
        self.sent_steer = Some((self.next_seq - 1, dir));
        Some(msg)
    }

    /// Boost on or off: an input when it changes. It carries the intended
    /// direction, so it never turns the snake; before the first frame
    /// (no direction known) it waits for the next call.
    pub fn boost(&mut self, on: bool) -> Option<ClientMsg> {
        if !self.can_input() || on == self.boost {
            return None;
        }
        let dir = self.intended_dir()?;
        self.boost = on;
        let msg = self.input(dir);
        self.sent_steer = Some((self.next_seq - 1, dir));
        Some(msg)
    }

    /// A chat line.
    pub fn chat(&mut self, text: String) -> ClientMsg {
        ClientMsg::Chat(ChatText { text })
    }

    /// A keyframe request.
    pub fn resync(&mut self) -> ClientMsg {
        ClientMsg::Resync {}
    }

    /// Leaving: after this the session never reconnects.
    pub fn leave(&mut self) -> ClientMsg {
        self.left = true;
        ClientMsg::Leave {}
    }

    /// When [`Session::handle_timeout`] wants to run next (`None`: no link).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.link
            .map(|l| l.next_ping.min(l.last_rx + SILENCE_LIMIT))
    }

    /// Runs the timers due at `now`; `unix_us` is the client clock put in
    /// pings so a pong measures the round trip.
    pub fn handle_timeout(&mut self, now: Instant, unix_us: u64) -> Option<TimerAction> {
        let link = self.link.as_mut()?;
        if now >= link.last_rx + SILENCE_LIMIT {
            return Some(TimerAction::Dead);
        }
        if now >= link.next_ping {
            link.next_ping = now + PING_INTERVAL;
            return Some(TimerAction::Send(ClientMsg::Ping(Ping { t: unix_us })));
        }
        None
    }

    /// Forgets the token (the server no longer knows it): the next hello
    /// joins afresh.
    pub fn forget_token(&mut self) {
        self.token = None;
    }

    /// The session token from the last welcome.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Our player id from the last welcome.
    pub fn player_id(&self) -> Option<PlayerId> {
        self.player_id
    }

    /// Highest input seq the server reported applied.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The seq the next input will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// True once `leave` was sent.
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// True while the current link has been welcomed.
    pub fn is_welcomed(&self) -> bool {
        self.link.is_some_and(|l| l.welcomed)
    }

    /// Welcomes received over the session's life (first join plus resumes).
    pub fn welcomes(&self) -> u32 {
        self.welcomes
    }

    /// The last `error` the server sent on the current (or just closed) link.
    pub fn last_error(&self) -> Option<&ErrorMsg> {
        self.last_error.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::state::{Delta, SnakeMove};
    use protocol::{Map, Mode, Score, SnakeState, Snapshot, TickFrame, Welcome, WorldState};

    fn welcome(id: u32, token: &str, resumed: bool) -> ServerMsg {
        ServerMsg::Welcome(Box::new(Welcome {
            player_id: Some(id),
            session: "s".into(),
            token: token.into(),
            room: "lobby".into(),
            mode: Mode::Snake,
            tick_rate: 20,
            speed: 10,
            map: Map::parse("#####\n#0.1#\n#####\n", "t").unwrap(),
            resumed,
            name: "alice".into(),
            server_time_us: 0,
        }))
    }

    fn snake(id: u32, dir: Dir) -> SnakeState {
        SnakeState {
            id,
            name: "alice".into(),
            body: [protocol::Pos::new(1, 1)].into(),
            dir,
            alive: true,
            respawn_in: 0,
            boost: false,
            connected: true,
            score: Score::default(),
        }
    }

    fn snapshot(ack: u64, snakes: Vec<SnakeState>) -> ServerMsg {
        let mut state = WorldState::new(Mode::Snake);
        state.snakes = snakes;
        ServerMsg::Snapshot(Box::new(Snapshot {
            ack,
            tick: 0,
            checksum: state.checksum(),
            server_time_us: 0,
            state,
        }))
    }

    fn tick(ack: u64, id: u32, dir: Dir) -> ServerMsg {
        let m = SnakeMove {
            id,
            dir: Some(dir),
            ..SnakeMove::default()
        };
        ServerMsg::Tick(Box::new(TickFrame {
            ack,
            tick: 1,
            checksum: 0,
            server_time_us: 0,
            delta: Delta {
                moved: vec![m],
                ..Delta::default()
            },
            events: vec![],
        }))
    }

    fn input(msg: Option<ClientMsg>) -> Input {
        match msg {
            Some(ClientMsg::Input(i)) => i,
            other => panic!("expected an input, got {other:?}"),
        }
    }

    /// A session that joined as player 7 heading up.
    fn joined(now: Instant) -> Session {
        let mut s = Session::new("alice", Role::Player);
        s.handle_connected(now);
        s.handle_server(&welcome(7, "tok", false), now);
        s.handle_server(&snapshot(0, vec![snake(7, Dir::Up)]), now);
        s
    }

    #[test]
    fn first_hello_has_no_token_and_the_current_version() {
        let s = Session::new("alice", Role::Spectator);
        let h = s.hello();
        assert_eq!(h.version, PROTOCOL_VERSION);
        assert_eq!(h.name, "alice");
        assert_eq!(h.role, Role::Spectator);
        assert_eq!(h.token, None);
    }

    #[test]
    fn inputs_are_numbered_from_one_and_sent_only_on_change() {
        let now = Instant::now();
        let mut s = joined(now);
        assert_eq!(s.steer(Dir::Up), None, "already heading up");
        let a = input(s.steer(Dir::Left));
        assert_eq!((a.seq, a.dir, a.boost), (1, Dir::Left, false));
        assert_eq!(s.steer(Dir::Left), None, "key repeat is not resent");
        let b = input(s.steer(Dir::Up));
        assert_eq!((b.seq, b.dir), (2, Dir::Up));
        let c = input(s.boost(true));
        assert_eq!(
            (c.seq, c.dir, c.boost),
            (3, Dir::Up, true),
            "boost keeps the intended dir"
        );
        assert_eq!(s.boost(true), None);
        let d = input(s.steer(Dir::Right));
        assert_eq!((d.seq, d.boost), (4, true), "steers carry the boost state");
        assert_eq!(input(s.boost(false)).seq, 5);
    }

    #[test]
    fn after_the_ack_the_heading_decides_what_is_a_change() {
        let now = Instant::now();
        let mut s = joined(now);
        input(s.steer(Dir::Left));
        // The server applied it and the snake now heads left.
        s.handle_server(&tick(1, 7, Dir::Left), now);
        assert_eq!(s.steer(Dir::Left), None);
        // The snake respawned heading down; the same key is a change again.
        s.handle_server(&tick(1, 7, Dir::Down), now);
        assert_eq!(input(s.steer(Dir::Left)).seq, 2);
        // Other snakes' deltas do not move our heading.
        s.handle_server(&tick(2, 7, Dir::Left), now);
        s.handle_server(&tick(2, 8, Dir::Up), now);
        assert_eq!(s.acked(), 2);
        assert_eq!(s.steer(Dir::Left), None);
    }

    #[test]
    fn nothing_is_sent_before_welcome_or_by_spectators() {
        let now = Instant::now();
        let mut s = Session::new("alice", Role::Player);
        assert_eq!(s.steer(Dir::Left), None, "no link");
        s.handle_connected(now);
        assert_eq!(s.steer(Dir::Left), None, "not welcomed yet");
        let mut spec = Session::new("watcher", Role::Spectator);
        spec.handle_connected(now);
        spec.handle_server(&welcome(0, "t", false), now);
        assert_eq!(spec.steer(Dir::Left), None);
        assert_eq!(spec.boost(true), None);
    }

    #[test]
    fn boost_before_any_frame_waits_for_a_direction() {
        let now = Instant::now();
        let mut s = Session::new("alice", Role::Player);
        s.handle_connected(now);
        s.handle_server(&welcome(7, "tok", false), now);
        assert_eq!(s.boost(true), None);
        s.handle_server(&snapshot(0, vec![snake(7, Dir::Right)]), now);
        let i = input(s.boost(true));
        assert_eq!((i.seq, i.dir, i.boost), (1, Dir::Right, true));
    }

    #[test]
    fn token_is_kept_for_the_resume_and_seqs_continue() {
        let now = Instant::now();
        let mut s = joined(now);
        input(s.steer(Dir::Left));
        input(s.steer(Dir::Down));
        s.handle_server(&tick(2, 7, Dir::Down), now);
        s.handle_disconnected();
        assert_eq!(s.steer(Dir::Right), None, "no input while disconnected");
        let h = s.hello();
        assert_eq!(h.token.as_deref(), Some("tok"));
        s.handle_connected(now);
        s.handle_server(&welcome(7, "tok2", true), now);
        s.handle_server(&snapshot(2, vec![snake(7, Dir::Down)]), now);
        assert_eq!(s.acked(), 2);
        assert_eq!(input(s.steer(Dir::Right)).seq, 3, "numbering continues");
        assert_eq!(s.token(), Some("tok2"), "the newest token wins");
        assert_eq!(s.welcomes(), 2);
    }

    #[test]
    fn a_fresh_join_after_a_lost_resume_restarts_the_ack() {
        let now = Instant::now();
        let mut s = joined(now);
        input(s.steer(Dir::Left));
        s.handle_server(&tick(1, 7, Dir::Left), now);
        s.handle_disconnected();
        s.handle_connected(now);
        s.handle_server(&welcome(9, "new", false), now);
        assert_eq!(s.acked(), 0);
        assert_eq!(s.player_id(), Some(9));
        s.handle_server(&snapshot(0, vec![snake(9, Dir::Up)]), now);
        assert_eq!(input(s.steer(Dir::Left)).seq, 2, "seqs never go back");
    }

    #[test]
    fn pings_every_second_and_silence_kills_the_link() {
        let t0 = Instant::now();
        let mut s = joined(t0);
        assert_eq!(s.poll_timeout(), Some(t0));
        assert_eq!(
            s.handle_timeout(t0, 42),
            Some(TimerAction::Send(ClientMsg::Ping(Ping { t: 42 })))
        );
        assert_eq!(s.handle_timeout(t0 + Duration::from_millis(500), 1), None);
        assert_eq!(s.poll_timeout(), Some(t0 + PING_INTERVAL));
        assert!(matches!(
            s.handle_timeout(t0 + PING_INTERVAL, 43),
            Some(TimerAction::Send(ClientMsg::Ping(Ping { t: 43 })))
        ));
        // Traffic keeps it alive...
        let t1 = t0 + Duration::from_secs(9);
        s.handle_server(&tick(0, 7, Dir::Up), t1);
        assert!(matches!(
            s.handle_timeout(t0 + SILENCE_LIMIT, 44),
            Some(TimerAction::Send(_))
        ));
        // ...and silence past the limit does not.
        assert_eq!(
            s.handle_timeout(t1 + SILENCE_LIMIT, 45),
            Some(TimerAction::Dead)
        );
        s.handle_disconnected();
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(s.handle_timeout(t1 + SILENCE_LIMIT * 2, 46), None);
    }

    #[test]
    fn leave_blocks_further_input_and_errors_are_remembered() {
        let now = Instant::now();
        let mut s = joined(now);
        assert_eq!(s.leave(), ClientMsg::Leave {});
        assert!(s.has_left());
        assert_eq!(s.steer(Dir::Left), None);
        let e = ErrorMsg {
            code: "room_full".into(),
            message: "full".into(),
        };
        s.handle_server(&ServerMsg::Error(e.clone()), now);
        assert_eq!(s.last_error(), Some(&e));
        s.handle_connected(now);
        assert_eq!(s.last_error(), None, "each link starts clean");
    }
}
