//! What a WebSocket spectator on the fan-out says, and how the server
//! answers without ever cutting into a frame a shard is writing.
//!
//! Each such spectator has a small reader task ([`read`]) that waits for
//! its socket to be readable, reads into a stack buffer (a heap buffer
//! only holds a frame that arrived in pieces, and is freed once it is
//! whole), parses the client's frames with tungstenite's
//! [`FrameHeader::parse`], and applies the same rules as every other
//! transport ([`Connection`]: the rate limit, `ping`, `resync`, `leave`,
//! chat) with `ws.rs`'s close codes and counters. A tick wakes no reader.
//!
//! Whatever the reader must write (a `pong`, a control pong, an error and
//! a close frame) it posts to the spectator's [`Mailbox`] and pokes the
//! shard that holds the spectator; the shard writes it between two ticks,
//! or, if the spectator is on the slow path, the shard that takes it back
//! does. So the socket has one writer at a time and a reply never lands
//! in the middle of a frame.

use std::io::{Cursor, ErrorKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use protocol::codec::{decode, encode};
use protocol::{ClientMsg, Format, ServerMsg};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use super::ToShard;
use crate::accept::Conn;
use crate::conn::{Action, Connection, Ending, Now, Refusal};
use crate::limits::counters::bump;
use crate::limits::{Counters, Limits};
use crate::room::RoomCmd;
use crate::upgrade::{close_frame, data_frame, push_frame};
use crate::ws::close;

/// Replies a spectator may have waiting at once; past that a reply is
/// dropped (the input rate limit ends a real flood long before).
const MAILBOX: usize = 16;
/// Bytes read from the socket at a time, on the reader's stack.
const READ: usize = 2048;

/// What a spectator posted for its shard to write.
#[derive(Default)]
pub(crate) struct Mail {
    /// Whole frames, in order.
    pub out: Vec<Bytes>,
    /// It asked for a keyframe.
    pub resync: bool,
    /// After `out`, close the connection.
    pub close: bool,
}

#[derive(Default)]
struct Slot {
    mail: Mail,
    /// The inbox of the shard holding the spectator (`None` on the way).
    home: Option<mpsc::UnboundedSender<ToShard>>,
}

/// A spectator's mailbox, shared by its reader and whichever shard holds it.
#[derive(Clone)]
pub(crate) struct Mailbox(Arc<(u64, Mutex<Slot>)>);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Mailbox {
    fn new() -> Mailbox {
        Mailbox(Arc::new((
            NEXT_ID.fetch_add(1, Ordering::Relaxed),
            Mutex::default(),
        )))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        // Plain data: valid whatever a panicking holder did.
        self.0.1.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Its id, which the shard finds the spectator by.
    pub(crate) fn id(&self) -> u64 {
        self.0.0
    }

    /// The spectator is now held by the shard with inbox `home` (`None`:
    /// it left for the slow path); true if mail is waiting.
    pub(crate) fn home(&self, home: Option<mpsc::UnboundedSender<ToShard>>) -> bool {
        let mut s = self.lock();
        s.home = home;
        !s.mail.out.is_empty() || s.mail.resync || s.mail.close
    }

    /// What was posted since the last take.
    pub(crate) fn take(&self) -> Mail {
        std::mem::take(&mut self.lock().mail)
    }

    /// Posts to the shard: `f` fills the mail, then the shard is poked.
    fn post(&self, f: impl FnOnce(&mut Mail)) {
        let mut s = self.lock();
        if s.mail.close {
            return;
        }
        f(&mut s.mail);
        if s.mail.out.len() > MAILBOX {
            s.mail.out.pop();
        }
        if let Some(home) = &s.home {
            let _ = home.send(ToShard::Mail(self.id()));
        }
    }
}

/// The shard's end of a talking spectator: its mailbox, and a guard whose
/// drop (the spectator closed or dropped) ends its reader.
pub(crate) struct Line {
    pub(crate) mailbox: Mailbox,
    _bye: oneshot::Sender<()>,
}

/// The reader's end.
pub(crate) struct Ear {
    mailbox: Mailbox,
    bye: oneshot::Receiver<()>,
}

/// A mailbox and both its ends.
pub(crate) fn line() -> (Line, Ear) {
    let (tx, rx) = oneshot::channel();
    let mailbox = Mailbox::new();
    (
        Line {
            mailbox: mailbox.clone(),
            _bye: tx,
        },
        Ear { mailbox, bye: rx },
    )
}

/// What a spectator's messages may reach of its room.
pub trait Chat: Send + Sync + 'static {
    /// A chat line from a spectator (the room sanitises it), or the words
    /// that say why this room takes none from here (a cluster edge's
    /// mirror: chat is not relayed to the room's owner).
    fn chat(&self, text: String) -> Result<(), protocol::ErrorMsg>;
}

/// The rules and room a reader applies.
pub(crate) struct Rules<C> {
    pub format: Format,
    pub conn: Connection,
    pub limits: Arc<Limits>,
    pub counters: Arc<Counters>,
    pub room: C,
}

/// What one pass over the bytes read came to.
enum Heard {
    /// Keep reading.
    More,
    /// The spectator is done (its close is posted, if it gets one).
    Done,
}

/// Reads spectator `conn` until it closes, is closed, or goes idle.
/// `early` are bytes read past the hello (a client may send at once).
pub(crate) async fn read<C: Chat>(conn: Arc<Conn>, ear: Ear, mut rules: Rules<C>, early: Vec<u8>) {
    let Ear { mailbox, mut bye } = ear;
    let idle = rules.limits.ws_idle_timeout;
    let mut last_heard = Instant::now();
    let mut pending = early;
    let mut partial: Option<(Format, Vec<u8>)> = None;
    if !pending.is_empty() {
        let mut bytes = std::mem::take(&mut pending);
        if let Heard::Done = hear(&mailbox, &mut rules, &mut bytes, &mut partial) {
            return;
        }
        pending = bytes;
    }
    loop {
        tokio::select! {
            _ = &mut bye => return,
            _ = tokio::time::sleep_until(last_heard + idle) => {
                bump(&rules.counters.ws_idle_timeouts);
                tracing::debug!("idle websocket spectator: closing");
                let reason = format!("idle for {} s", idle.as_secs_f64());
                post_close(&mailbox, close::POLICY, &reason);
                return;
            }
            r = conn.readable() => {
                if r.is_err() {
                    post_gone(&mailbox);
                    return;
                }
                match read_some(&conn, &mut pending) {
                    Ok(0) => {
                        post_gone(&mailbox);
                        return;
                    }
                    Ok(_) => last_heard = Instant::now(),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    Err(_) => {
                        post_gone(&mailbox);
                        return;
                    }
                }
                if let Heard::Done = hear(&mailbox, &mut rules, &mut pending, &mut partial) {
                    return;
                }
                if pending.is_empty() {
                    // No heap buffer while idle.
                    pending = Vec::new();
                }
            }
        }
    }
}

/// Reads what arrived into `pending` through a buffer on the stack.
fn read_some(conn: &Conn, pending: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut buf = [0u8; READ];
    let n = conn.try_read(&mut buf)?;
    pending.extend_from_slice(&buf[..n]);
    Ok(n)
}

fn post_gone(mailbox: &Mailbox) {
    mailbox.post(|m| m.close = true);
}

fn post_close(mailbox: &Mailbox, code: u16, reason: &str) {
    mailbox.post(|m| {
        m.out.push(close_frame(code, reason));
        m.close = true;
    });
}

/// An `error` message in the session's format, then a close.
fn post_refusal(mailbox: &Mailbox, format: Format, r: &Refusal) {
    let message = protocol::text::sanitize_line(&r.to_string(), 300);
    let err = encode(format, &crate::conn::error(r.code(), message.clone()));
    let frame = data_frame(format, &err);
    mailbox.post(|m| {
        m.out.push(frame);
        m.out.push(close_frame(crate::ws::close_code(r), &message));
        m.close = true;
    });
}

/// A frame the client got wrong: counted and closed with `code`.
fn bad(mailbox: &Mailbox, rules: &Rules<impl Chat>, code: u16, reason: &str) -> Heard {
    if code == close::TOO_BIG {
        bump(&rules.counters.ws_oversize);
    } else {
        bump(&rules.counters.ws_bad_frames);
    }
    tracing::debug!(code, reason, "closing a spectator after a bad frame");
    post_close(mailbox, code, reason);
    Heard::Done
}

/// Parses and acts on every whole frame in `bytes`, leaving a frame that
/// is still arriving in it.
fn hear<C: Chat>(
    mailbox: &Mailbox,
    rules: &mut Rules<C>,
    bytes: &mut Vec<u8>,
    partial: &mut Option<(Format, Vec<u8>)>,
) -> Heard {
    let max = rules.limits.ws_max_message;
    let mut at = 0;
    let heard = loop {
        let mut cur = Cursor::new(&bytes[at..]);
        let (header, len) = match FrameHeader::parse(&mut cur) {
            Ok(Some(h)) => h,
            Ok(None) => break Heard::More,
            Err(e) => break bad(mailbox, rules, close::PROTOCOL, &e.to_string()),
        };
        if len > max as u64 {
            let reason = format!("message over the limit of {max} bytes");
            break bad(mailbox, rules, close::TOO_BIG, &reason);
        }
        let start = at + cur.position() as usize;
        let end = start + len as usize;
        if bytes.len() < end {
            break Heard::More;
        }
        at = end;
        let Some(mask) = header.mask else {
            break bad(
                mailbox,
                rules,
                close::PROTOCOL,
                "client frames must be masked",
            );
        };
        if header.rsv1 || header.rsv2 || header.rsv3 {
            break bad(mailbox, rules, close::PROTOCOL, "reserved bits are set");
        }
        let payload = &mut bytes[start..end];
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        let payload = &bytes[start..end];
        if let Heard::Done = frame(mailbox, rules, &header, payload, partial) {
            break Heard::Done;
        }
    };
    bytes.drain(..at);
    heard
}

/// One whole client frame.
fn frame<C: Chat>(
    mailbox: &Mailbox,
    rules: &mut Rules<C>,
    header: &FrameHeader,
    payload: &[u8],
    partial: &mut Option<(Format, Vec<u8>)>,
) -> Heard {
    let max = rules.limits.ws_max_message;
    let message_format = match header.opcode {
        OpCode::Control(c) => {
            if !header.is_final || payload.len() > 125 {
                return bad(mailbox, rules, close::PROTOCOL, "bad control frame");
            }
            match c {
                Control::Close => {
                    mailbox.post(|m| {
                        m.out.push(close_frame(close::NORMAL, ""));
                        m.close = true;
                    });
                    return Heard::Done;
                }
                Control::Ping | Control::Pong => {
                    // Every frame counts against the rate, pings too.
                    match rules.conn.admit(Now::real().at) {
                        Ok(true) => {}
                        Ok(false) => return Heard::More,
                        Err(ended) => return end(mailbox, rules, ended.why),
                    }
                    if c == Control::Ping {
                        let mut pong = Vec::with_capacity(payload.len() + 2);
                        push_frame(&mut pong, OpCode::Control(Control::Pong), payload);
                        mailbox.post(|m| m.out.push(pong.into()));
                    }
                    return Heard::More;
                }
                Control::Reserved(_) => {
                    return bad(mailbox, rules, close::PROTOCOL, "reserved opcode");
                }
            }
        }
        OpCode::Data(Data::Text) => Format::Json,
        OpCode::Data(Data::Binary) => Format::Bincode,
        OpCode::Data(Data::Continue) => match partial.as_mut() {
            Some((f, buf)) => {
                if buf.len() + payload.len() > max {
                    let reason = format!("message over the limit of {max} bytes");
                    return bad(mailbox, rules, close::TOO_BIG, &reason);
                }
                buf.extend_from_slice(payload);
                if !header.is_final {
                    return Heard::More;
                }
                let (f, whole) = (*f, std::mem::take(buf));
                *partial = None;
                return message(mailbox, rules, f, &whole);
            }
            None => {
                return bad(
                    mailbox,
                    rules,
                    close::PROTOCOL,
                    "continuation without a start",
                );
            }
        },
        OpCode::Data(Data::Reserved(_)) => {
            return bad(mailbox, rules, close::PROTOCOL, "reserved opcode");
        }
    };
    if partial.is_some() {
        return bad(
            mailbox,
            rules,
            close::PROTOCOL,
            "a new message inside a fragmented one",
        );
    }
    if !header.is_final {
        *partial = Some((message_format, payload.to_vec()));
        return Heard::More;
    }
    message(mailbox, rules, message_format, payload)
}

/// One whole client message, text (JSON) or binary (bincode).
fn message<C: Chat>(mailbox: &Mailbox, rules: &mut Rules<C>, f: Format, payload: &[u8]) -> Heard {
    let now = Now::real();
    match rules.conn.admit(now.at) {
        Ok(true) => {}
        Ok(false) => return Heard::More,
        Err(ended) => return end(mailbox, rules, ended.why),
    }
    if f == Format::Json && std::str::from_utf8(payload).is_err() {
        return bad(
            mailbox,
            rules,
            close::INVALID,
            "text frame is not valid UTF-8",
        );
    }
    if f != rules.format {
        let reason = "frame type differs from the hello's (text = JSON, binary = bincode)";
        return bad(mailbox, rules, close::UNSUPPORTED, reason);
    }
    let msg = match decode::<ClientMsg>(f, payload) {
        Ok(msg) => msg,
        Err(e) => return bad(mailbox, rules, close::INVALID, &e.to_string()),
    };
    match rules.conn.on_message(now, msg) {
        None => Heard::More,
        Some(Action::Room(RoomCmd::Chat { text, .. })) => {
            if let Err(words) = rules.room.chat(text) {
                let reply = ServerMsg::Error(words);
                let frame = data_frame(rules.format, &encode(rules.format, &reply));
                mailbox.post(|m| m.out.push(frame));
            }
            Heard::More
        }
        Some(Action::Room(RoomCmd::Resync { .. })) => {
            mailbox.post(|m| m.resync = true);
            Heard::More
        }
        // A spectator has no snake: nothing else reaches the room.
        Some(Action::Room(_)) => Heard::More,
        Some(Action::Reply(reply)) => {
            let frame = data_frame(rules.format, &encode(rules.format, &reply));
            mailbox.post(|m| m.out.push(frame));
            Heard::More
        }
        Some(Action::End(ended)) => end(mailbox, rules, ended.why),
    }
}

fn end(mailbox: &Mailbox, rules: &Rules<impl Chat>, why: Ending) -> Heard {
    match why {
        Ending::Left => post_close(mailbox, close::NORMAL, "left"),
        Ending::Refused(r) => post_refusal(mailbox, rules.format, &r),
    }
    Heard::Done
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A room that takes every chat line and does nothing with it.
    pub(crate) struct Nobody;
    impl Chat for Nobody {
        fn chat(&self, _text: String) -> Result<(), protocol::ErrorMsg> {
            Ok(())
        }
    }

    /// Default limits and a fresh connection's rules, in `format`.
    pub(crate) fn rules(format: Format) -> Rules<Nobody> {
        let limits = Arc::new(Limits::default());
        let counters = Arc::new(Counters::default());
        Rules {
            format,
            conn: Connection::new(
                0,
                true,
                limits.clone(),
                counters.clone(),
                std::time::Instant::now(),
            ),
            limits,
            counters,
            room: Nobody,
        }
    }

    /// A masked client frame.
    pub(crate) fn client_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mask = [7u8, 1, 9, 3];
        let header = FrameHeader {
            opcode,
            mask: Some(mask),
            ..FrameHeader::default()
        };
        let mut out = Vec::new();
        header.format(payload.len() as u64, &mut out).unwrap();
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn a_ping_split_across_reads_gets_one_pong_and_nothing_is_left() {
        let (line, _ear) = line();
        let mut r = rules(Format::Json);
        let ping = client_frame(OpCode::Data(Data::Text), br#"{"ping":{"t":7}}"#);
        let mut partial = None;
        let mut bytes = ping[..5].to_vec();
        assert!(matches!(
            hear(&line.mailbox, &mut r, &mut bytes, &mut partial),
            Heard::More
        ));
        assert_eq!(bytes.len(), 5, "a frame still arriving is kept");
        assert!(line.mailbox.take().out.is_empty());
        bytes.extend_from_slice(&ping[5..]);
        assert!(matches!(
            hear(&line.mailbox, &mut r, &mut bytes, &mut partial),
            Heard::More
        ));
        assert!(bytes.is_empty());
        let out = line.mailbox.take().out;
        assert_eq!(out.len(), 1);
        assert_eq!(out[0][0], 0x81, "one whole text frame");
        assert!(
            std::str::from_utf8(&out[0][2..])
                .unwrap()
                .starts_with(r#"{"pong":{"t":7"#)
        );
    }

    #[test]
    fn bad_frames_close_with_their_codes() {
        let cases: [(Format, Vec<u8>, u16); 4] = [
            (
                Format::Json,
                client_frame(OpCode::Data(Data::Binary), b"{}"),
                close::UNSUPPORTED,
            ),
            (
                Format::Json,
                client_frame(OpCode::Data(Data::Text), &[0xFF, 0xFE]),
                close::INVALID,
            ),
            (
                Format::Json,
                client_frame(OpCode::Data(Data::Text), &[b'x'; 5000]),
                close::TOO_BIG,
            ),
            // Unmasked: a client frame must be masked.
            (Format::Json, vec![0x81, 0x02, b'{', b'}'], close::PROTOCOL),
        ];
        for (format, mut bytes, code) in cases {
            let (line, _ear) = line();
            let mut r = rules(format);
            assert!(matches!(
                hear(&line.mailbox, &mut r, &mut bytes, &mut None),
                Heard::Done
            ));
            let mail = line.mailbox.take();
            assert!(mail.close);
            let frame = mail.out.last().unwrap();
            assert_eq!(frame[0], 0x88, "a close frame");
            assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), code);
        }
    }

    #[test]
    fn a_fragmented_message_is_one_message() {
        let (line, _ear) = line();
        let mut r = rules(Format::Json);
        let mut first = client_frame(OpCode::Data(Data::Text), br#"{"ping":"#);
        first[0] &= 0x7F; // not final
        let mut rest = client_frame(OpCode::Data(Data::Continue), br#"{"t":1}}"#);
        first.append(&mut rest);
        let mut partial = None;
        assert!(matches!(
            hear(&line.mailbox, &mut r, &mut first, &mut partial),
            Heard::More
        ));
        assert!(partial.is_none());
        assert_eq!(line.mailbox.take().out.len(), 1, "a pong");
    }

    #[test]
    fn a_full_mailbox_drops_the_newest_reply_and_a_close_ends_posting() {
        let (line, _ear) = line();
        for _ in 0..40 {
            line.mailbox.post(|m| m.out.push(Bytes::from_static(b"x")));
        }
        assert_eq!(line.mailbox.take().out.len(), MAILBOX);
        post_close(&line.mailbox, close::NORMAL, "left");
        line.mailbox.post(|m| m.out.push(Bytes::from_static(b"y")));
        let m = line.mailbox.take();
        assert!(m.close);
        assert_eq!(m.out.len(), 1, "nothing after the close");
    }
}
