//! One client connection to a room, sans-IO and owned by no transport.
//!
//! Every rule a client meets after its bytes are framed lives here once:
//! the hello and its version ([`on_hello`]), turning a refused join into
//! words ([`Refusal`]), the input and chat rate limits, what each client
//! message does ([`Connection::on_message`]), and ending a session once
//! (leave, flood, or the transport losing the client: [`Connection::detach`]).
//! The WebSocket shell (`ws`) and the polled-session handlers (`longpoll`)
//! only move bytes and carry out the [`Action`]s, so a spectator's input,
//! the chat limit, errors and their texts and `leave` behave the same on
//! every transport. Time comes in as arguments ([`Now`]); nothing here
//! awaits, sleeps or reads a clock.

mod refusal;

use std::sync::Arc;
use std::time::Instant;

use protocol::codec::decode;
use protocol::{ClientMsg, ErrorMsg, Format, Hello, PROTOCOL_VERSION, Pong, ServerMsg};

use crate::limits::counters::bump;
use crate::limits::throttle::Throttle;
use crate::limits::{Counters, Limits, Verdict};
use crate::room::{RoomCmd, SubId};
pub use refusal::Refusal;

/// The two clocks a message arrives at: a monotonic instant for the rate
/// limits and Unix microseconds for the stamps a client sees (`pong`).
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// Monotonic time, for the throttles.
    pub at: Instant,
    /// Unix time in microseconds, for `server_time_us`.
    pub unix_us: u64,
}

impl Now {
    /// The real time now (the transports call this; tests pass their own).
    pub fn real() -> Now {
        Now {
            at: Instant::now(),
            unix_us: crate::clock::now_us(),
        }
    }
}

/// Decodes the first message of a session, in `format`, and checks that it
/// is a hello of this server's protocol version.
pub fn on_hello(format: Format, bytes: &[u8]) -> Result<Hello, Refusal> {
    match decode::<ClientMsg>(format, bytes) {
        Ok(ClientMsg::Hello(h)) if h.version == PROTOCOL_VERSION => Ok(h),
        Ok(ClientMsg::Hello(h)) => Err(Refusal::Version { given: h.version }),
        Ok(_) => Err(Refusal::NotHello),
        Err(e) => Err(Refusal::BadHello(e.to_string())),
    }
}

/// What a transport does for a connection.
#[derive(Debug)]
pub enum Action {
    /// Queue this for the room without waiting (dropped if the room is
    /// busy: a flooding client only loses its own messages).
    Room(RoomCmd),
    /// Send this to the client.
    Reply(ServerMsg),
    /// The session is over: send `cmd` to the room (waiting: it must not
    /// be lost), tell the client why, and close.
    End(Ended),
}

/// How a session ended, and what the room must hear of it.
#[derive(Debug)]
pub struct Ended {
    /// `Leave` (the snake goes now) or `Detach` (it waits the resume grace).
    pub cmd: RoomCmd,
    /// Why, for the client.
    pub why: Ending,
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Ending {
    /// The client sent `leave`.
    Left,
    /// The server ended it.
    Refused(Refusal),
}

/// One joined client of a room: player or spectator, over any transport.
#[derive(Debug)]
pub struct Connection {
    sub: SubId,
    spectator: bool,
    input: Throttle,
    chat: Throttle,
    limits: Arc<Limits>,
    counters: Arc<Counters>,
    /// Left, flooded or detached: the room already heard of it.
    over: bool,
}

impl Connection {
    /// The connection of subscriber `sub` (a spectator has no snake),
    /// starting at `now` with full rate-limit buckets.
    pub fn new(
        sub: SubId,
        spectator: bool,
        limits: Arc<Limits>,
        counters: Arc<Counters>,
        now: Instant,
    ) -> Self {
        Connection {
            sub,
            spectator,
            input: Throttle::new(limits.input_rate, limits.input_burst, now),
            chat: Throttle::new(limits.chat_rate, limits.chat_burst, now),
            limits,
            counters,
            over: false,
        }
    }

    /// The room subscriber this connection is.
    pub fn sub(&self) -> SubId {
        self.sub
    }

    /// True once the session ended (left, flooded or detached).
    pub fn is_over(&self) -> bool {
        self.over
    }

    /// Judges one message (a WebSocket frame of any kind, or one polled
    /// message as it becomes due) against the input rate limit: `Ok(true)`
    /// handle it, `Ok(false)` drop it, `Err` the client floods and the
    /// session ends.
    pub fn admit(&mut self, now: Instant) -> Result<bool, Ended> {
        match self.counters.input_verdict(self.input.check(now)) {
            Verdict::Pass => Ok(true),
            Verdict::Drop => Ok(false),
            Verdict::Flood => {
                tracing::debug!(
                    sub = self.sub,
                    dropped = self.input.dropped(),
                    "ending a flooding session"
                );
                self.over = true;
                Err(Ended {
                    cmd: RoomCmd::Detach { sub: self.sub },
                    why: Ending::Refused(Refusal::Flood {
                        rate: self.limits.input_rate,
                        burst: self.limits.input_burst,
                    }),
                })
            }
        }
    }

    /// What one admitted client message does.
    pub fn on_message(&mut self, now: Now, msg: ClientMsg) -> Option<Action> {
        let sub = self.sub;
        match msg {
            // A spectator has no snake to steer.
            ClientMsg::Input(_) if self.spectator => None,
            ClientMsg::Input(input) => Some(Action::Room(RoomCmd::Input { sub, input })),
            ClientMsg::Ping(p) => Some(Action::Reply(ServerMsg::Pong(Pong {
                t: p.t,
                server_time_us: now.unix_us,
            }))),
            ClientMsg::Chat(c) => {
                if self.chat.check(now.at) == Verdict::Pass {
                    Some(Action::Room(RoomCmd::Chat { sub, text: c.text }))
                } else {
                    bump(&self.counters.chat_dropped);
                    Some(Action::Reply(error(
                        "rate_limited",
                        self.limits.chat_limit_message(),
                    )))
                }
            }
            ClientMsg::Resync {} => Some(Action::Room(RoomCmd::Resync { sub })),
            ClientMsg::Leave {} => {
                self.over = true;
                Some(Action::End(Ended {
                    cmd: RoomCmd::Leave { sub },
                    why: Ending::Left,
                }))
            }
            ClientMsg::Hello(_) => Some(Action::Reply(error(
                "bad_message",
                "already welcomed: hello is only the first message of a session".into(),
            ))),
        }
    }

    /// The session ends without a `leave` (connection lost, idle, taken
    /// over, ended by the server): the command the room must get, once.
    pub fn detach(&mut self) -> Option<RoomCmd> {
        (!std::mem::replace(&mut self.over, true)).then_some(RoomCmd::Detach { sub: self.sub })
    }

    /// The client leaves on purpose (`DELETE` of a polled session): the
    /// command the room must get, once.
    pub fn leave(&mut self) -> Option<RoomCmd> {
        (!std::mem::replace(&mut self.over, true)).then_some(RoomCmd::Leave { sub: self.sub })
    }
}

/// An `error` message for the client.
pub fn error(code: &str, message: String) -> ServerMsg {
    ServerMsg::Error(ErrorMsg {
        code: code.into(),
        message,
    })
}

#[cfg(test)]
mod tests;
