//! One lightweight task per simulated connection, per transport. Each
//! records into its kind's [`KindStats`] and ends when the run stops.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use protocol::codec::{decode, encode};
use protocol::poll::{PollBatch, SendAck, SendBatch, Sequenced};
use protocol::{ClientMsg, Dir, Format, Hello, Input, PROTOCOL_VERSION, Role, ServerMsg};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::http::{Conn, tcp};
use crate::scan::{Kind, Scanner};
use crate::stats::{KindStats, TickTrack, Window, now_us};

/// How long opening a connection (handshake and welcome) may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);

/// What every connection task shares.
#[derive(Debug)]
pub struct Ctx {
    pub addr: SocketAddr,
    pub window: Window,
    /// Interval between a player's inputs.
    pub input_every: Duration,
    /// Interval between short polls.
    pub poll_every: Duration,
    /// Wire format of WebSocket and polled players.
    pub format: Format,
}

/// One connection to open: its kind's stats, its index and room.
pub struct Job {
    pub ctx: Arc<Ctx>,
    pub stats: Arc<KindStats>,
    pub conn: usize,
    pub room: String,
    pub stop: watch::Receiver<bool>,
}

impl Job {
    fn failed(&self) {
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
    }
    fn opened(&self) {
        self.stats.opened.fetch_add(1, Ordering::Relaxed);
    }
    fn closed_early(&self) {
        if !*self.stop.borrow() {
            self.stats.closed_early.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }
}

/// Resolves once the run stops (the borrow guard is dropped at once, so
/// the future stays `Send` beside other awaits).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A tiny per-connection PRNG (xorshift), so players steer differently
/// without a shared RNG.
struct Steer(u64);

impl Steer {
    fn next(&mut self) -> Dir {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        [Dir::Up, Dir::Right, Dir::Down, Dir::Left][(self.0 >> 32) as usize % 4]
    }
}

/// Inputs sent and not yet acknowledged by a frame's `ack`.
#[derive(Default)]
struct Pending {
    sent: VecDeque<(u64, u64)>,
    next_seq: u64,
}

impl Pending {
    fn send(&mut self) -> u64 {
        self.next_seq += 1;
        if self.sent.len() >= 256 {
            self.sent.pop_front();
        }
        self.sent.push_back((self.next_seq, now_us()));
        self.next_seq
    }

    fn acked(&mut self, job: &Job, ack: u64) {
        let now = now_us();
        while let Some(&(seq, at)) = self.sent.front() {
            if seq > ack {
                break;
            }
            self.sent.pop_front();
            if job.ctx.window.counting() {
                job.stats
                    .input_latency
                    .record(job.conn, now.saturating_sub(at));
            }
        }
    }
}

/// Handles one decoded server message of a player or spectator.
fn on_msg(job: &Job, track: &mut TickTrack, pending: &mut Pending, msg: ServerMsg) {
    let w = &job.ctx.window;
    match msg {
        ServerMsg::Snapshot(s) => {
            let (missed, resync) = track.keyframe(s.tick);
            if resync {
                job.stats.add(w, &job.stats.resyncs, 1);
            }
            job.stats.frame(w, job.conn, missed, s.server_time_us);
            pending.acked(job, s.ack);
        }
        ServerMsg::Tick(t) => {
            let missed = track.delta(t.tick);
            job.stats.frame(w, job.conn, missed, t.server_time_us);
            pending.acked(job, t.ack);
        }
        _ => {}
    }
}

fn ws_config() -> WebSocketConfig {
    // Small buffers: thousands of these live in one process.
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

fn hello(role: Role, conn: usize) -> ClientMsg {
    ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        name: format!("load{conn}"),
        role,
        token: None,
    })
}

fn ws_message(format: Format, msg: &ClientMsg) -> Message {
    let bytes = encode(format, msg);
    match format {
        Format::Bincode => Message::binary(bytes),
        // JSON encodings are UTF-8 by construction.
        Format::Json => Message::text(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// What a WebSocket connection does once welcomed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsMode {
    /// Plays: steers every `input_every`, decodes every frame.
    Player,
    /// Watches and decodes every frame.
    Spectator,
    /// Watches, counts bytes, decodes nothing.
    Idle,
    /// Says hello, then never reads again.
    Stalled,
}

/// A WebSocket connection in `mode`.
pub async fn ws(job: Job, mode: WsMode) {
    let ctx = job.ctx.clone();
    let format = ctx.format;
    let role = if mode == WsMode::Player {
        Role::Player
    } else {
        Role::Spectator
    };
    // A spectator says so in the URL too, so a cluster's edge serves it.
    let query = if role == Role::Spectator {
        "?role=spectator"
    } else {
        ""
    };
    let url = format!("ws://{}/rooms/{}/ws{query}", ctx.addr, job.room);
    let open = async {
        let stream = tcp(ctx.addr).await.ok()?;
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(ws_config()))
                .await
                .ok()?;
        let (mut tx, mut rx) = ws.split();
        tx.send(ws_message(format, &hello(role, job.conn)))
            .await
            .ok()?;
        loop {
            let m = rx.next().await?.ok()?;
            if m.is_text() || m.is_binary() {
                return match decode::<ServerMsg>(format, &m.into_data()) {
                    Ok(ServerMsg::Welcome(_)) => Some((tx, rx)),
                    _ => None,
                };
            }
        }
    };
    let Ok(Some((mut tx, mut rx))) = tokio::time::timeout(OPEN_TIMEOUT, open).await else {
        job.failed();
        return;
    };
    job.opened();
    let mut stop = job.stop.clone();
    if mode == WsMode::Stalled {
        let _ = stopped(&mut stop).await;
        return;
    }
    let mut track = TickTrack::default();
    let mut pending = Pending::default();
    let mut steer = Steer(0x9e37_79b9_7f4a_7c15 ^ (job.conn as u64 + 1));
    let mut inputs = tokio::time::interval_at(
        Instant::now() + ctx.input_every.mul_f64(1.0 + (job.conn % 97) as f64 / 97.0),
        ctx.input_every,
    );
    inputs.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => return,
            _ = inputs.tick(), if mode == WsMode::Player => {
                let seq = pending.send();
                let input = ClientMsg::Input(Input { seq, dir: steer.next(), boost: false });
                if tx.send(ws_message(format, &input)).await.is_err() {
                    job.closed_early();
                    return;
                }
                job.stats.add(&ctx.window, &job.stats.requests, 1);
            }
            m = rx.next() => {
                let Some(Ok(m)) = m else {
                    job.closed_early();
                    return;
                };
                if !(m.is_text() || m.is_binary()) {
                    continue;
                }
                let data = m.into_data();
                job.stats.add(&ctx.window, &job.stats.bytes, data.len() as u64);
                if mode == WsMode::Idle {
                    continue;
                }
                if let Ok(msg) = decode::<ServerMsg>(format, &data) {
                    on_msg(&job, &mut track, &mut pending, msg);
                }
            }
        }
    }
}

/// What an SSE connection does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SseMode {
    /// Reads and scans every event.
    Spectator,
    /// Reads and counts bytes only.
    Idle,
    /// Sends the request, then never reads.
    Stalled,
}

/// An SSE spectator of its room in `mode`.
pub async fn sse(job: Job, mode: SseMode) {
    let ctx = job.ctx.clone();
    let path = format!("/rooms/{}/events", job.room);
    let mut stop = job.stop.clone();
    if mode == SseMode::Stalled {
        let open = async {
            let mut s = tcp(ctx.addr).await.ok()?;
            let req = format!(
                "GET {path} HTTP/1.1\r\nhost: {}\r\naccept: text/event-stream\r\n\r\n",
                ctx.addr
            );
            s.write_all(req.as_bytes()).await.ok()?;
            Some(s)
        };
        let Ok(Some(_socket)) = tokio::time::timeout(OPEN_TIMEOUT, open).await else {
            job.failed();
            return;
        };
        job.opened();
        let _ = stopped(&mut stop).await;
        return;
    }
    let mut conn = Conn::new(ctx.addr);
    let open = conn.stream(&path, &[("accept", "text/event-stream")]);
    let mut body = match tokio::time::timeout(OPEN_TIMEOUT, open).await {
        Ok(Ok(resp)) if resp.status().is_success() => resp.into_body(),
        _ => {
            job.failed();
            return;
        }
    };
    job.opened();
    let mut scanner = Scanner::default();
    let mut track = TickTrack::default();
    let w = &ctx.window;
    loop {
        let frame = tokio::select! {
            _ = stopped(&mut stop) => return,
            f = body.frame() => f,
        };
        let Some(Ok(frame)) = frame else {
            job.closed_early();
            return;
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        job.stats.add(w, &job.stats.bytes, data.len() as u64);
        if mode == SseMode::Idle {
            continue;
        }
        scanner.push(&data, |ev| {
            let (Some(id), Some(t)) = (ev.id, ev.server_time_us) else {
                return;
            };
            match ev.kind {
                Kind::Welcome => {
                    track.keyframe(id);
                }
                Kind::Snapshot => {
                    let (missed, resync) = track.keyframe(id);
                    if resync {
                        job.stats.add(w, &job.stats.resyncs, 1);
                    }
                    job.stats.frame(w, job.conn, missed, t);
                }
                Kind::Tick => {
                    let missed = track.delta(id);
                    job.stats.frame(w, job.conn, missed, t);
                }
                Kind::Error | Kind::Other => {}
            }
        });
    }
}

/// A long-poll (`held`) or short-poll player.
pub async fn poll(job: Job, held: bool) {
    let ctx = job.ctx.clone();
    let format = ctx.format;
    let mut conn = Conn::new(ctx.addr);
    let ct = format.content_type();
    let headers = [("content-type", ct), ("accept", ct)];
    let join_path = format!("/rooms/{}/sessions", job.room);
    let open = conn.request(
        "POST",
        &join_path,
        &headers,
        encode(format, &hello(Role::Player, job.conn)),
    );
    let welcome = match tokio::time::timeout(OPEN_TIMEOUT, open).await {
        Ok(Ok((status, body))) if status.is_success() => match decode::<ServerMsg>(format, &body) {
            Ok(ServerMsg::Welcome(w)) => w,
            _ => {
                job.failed();
                return;
            }
        },
        _ => {
            job.failed();
            return;
        }
    };
    job.opened();
    let base = format!("/rooms/{}/sessions/{}", job.room, welcome.session);
    let auth = format!("Bearer {}", welcome.token);
    let pending = Arc::new(std::sync::Mutex::new(Pending::default()));
    let sender = tokio::spawn(send_inputs(
        Job {
            ctx: ctx.clone(),
            stats: job.stats.clone(),
            conn: job.conn,
            room: job.room.clone(),
            stop: job.stop.clone(),
        },
        format!("{base}/send"),
        auth.clone(),
        pending.clone(),
    ));
    let mut track = TickTrack::default();
    let mut after = 0;
    let wait = if held { "25" } else { "0" };
    let mut stop = job.stop.clone();
    let mut every = tokio::time::interval(ctx.poll_every);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        if !held {
            tokio::select! {
                _ = stopped(&mut stop) => break,
                _ = every.tick() => {}
            }
        }
        let path = format!("{base}/poll?after={after}&wait={wait}");
        let headers = [("authorization", auth.as_str()), ("accept", ct)];
        let req = conn.request("GET", &path, &headers, Bytes::new());
        let res = tokio::select! {
            _ = stopped(&mut stop) => break,
            r = req => r,
        };
        let body = match res {
            Ok((status, body)) if status.is_success() => body,
            _ => {
                job.closed_early();
                break;
            }
        };
        job.stats.add(&ctx.window, &job.stats.requests, 1);
        job.stats
            .add(&ctx.window, &job.stats.bytes, body.len() as u64);
        let Ok(batch) = decode::<PollBatch>(format, &body) else {
            job.closed_early();
            break;
        };
        after = batch.next;
        // The sender's inputs are acknowledged by the frames polled here.
        let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
        for m in batch.messages {
            on_msg(&job, &mut track, &mut pending, m.msg);
        }
        drop(pending);
        if job.stopped() {
            break;
        }
    }
    sender.abort();
}

/// A polled player's inputs: one POST per `input_every`, re-sending what
/// the server has not applied yet. Input latency runs from the send
/// recorded in `pending` to the first polled frame whose ack covers it.
async fn send_inputs(
    job: Job,
    path: String,
    auth: String,
    pending: Arc<std::sync::Mutex<Pending>>,
) {
    let ctx = job.ctx.clone();
    let format = ctx.format;
    let ct = format.content_type();
    let mut conn = Conn::new(ctx.addr);
    let mut steer = Steer(0x2545_f491_4f6c_dd1d ^ (job.conn as u64 + 1));
    let mut unapplied: Vec<Sequenced<ClientMsg>> = Vec::new();
    let mut seq;
    let mut stop = job.stop.clone();
    let mut every = tokio::time::interval_at(
        Instant::now() + ctx.input_every.mul_f64(1.0 + (job.conn % 97) as f64 / 97.0),
        ctx.input_every,
    );
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => return,
            _ = every.tick() => {}
        }
        seq = pending.lock().unwrap_or_else(|e| e.into_inner()).send();
        unapplied.push(Sequenced {
            seq,
            msg: ClientMsg::Input(Input {
                seq,
                dir: steer.next(),
                boost: false,
            }),
        });
        let body = encode(
            format,
            &SendBatch {
                messages: unapplied.clone(),
            },
        );
        let headers = [("authorization", auth.as_str()), ("content-type", ct)];
        match conn.request("POST", &path, &headers, body).await {
            Ok((status, body)) if status.is_success() => {
                job.stats.add(&ctx.window, &job.stats.requests, 1);
                if let Ok(ack) = decode::<SendAck>(format, &body) {
                    unapplied.retain(|m| m.seq > ack.applied);
                }
            }
            Ok((status, _)) => {
                job.stats.add(&ctx.window, &job.stats.errors, 1);
                if status.as_u16() == 404 || status.as_u16() == 429 {
                    // The session is over (expired, or closed for flooding).
                    return;
                }
            }
            // Not sent: the next turn re-sends everything unapplied.
            Err(_) => job.stats.add(&ctx.window, &job.stats.errors, 1),
        }
    }
}
