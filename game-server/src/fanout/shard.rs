//! One writer of one room's feed: a task that owns its share of the
//! room's spectators and, per tick, hands the feed's shared bytes to each
//! socket with one non-blocking write. It is woken once per tick (by the
//! room's ring), never once per spectator, and besides only by a
//! WebSocket spectator that has something to write (a pong, a close):
//! that goes through here, between two frames, so it never cuts into one.
//!
//! The ring's receivers count the room's spectators and keep it awake,
//! so the shard keeps exactly one per spectator it owns: one it reads
//! (`lead`) and the others unread (`spare`, which cost a place in the
//! ring's count and nothing per tick).

use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, MissedTickBehavior};

use super::{Admission, Fanout, Feed, Spectator, ToShard, slow};
use crate::sse::SseChunk;

/// Spectators written between two yields to the runtime (a few hundred
/// microseconds of writes).
const BATCH: usize = 128;

/// A keepalive period is cut in this many slices, and each spectator gets
/// its keepalive in its own: a big shard's pings, and the pongs that come
/// back and wake each spectator's reader, are spread over the period
/// instead of landing all at once between two ticks.
const SLICES: u8 = 8;

/// What a write to one spectator came to.
pub(super) enum Wrote {
    /// The whole frame.
    Whole,
    /// Part of it or none: the rest goes on in the slow path.
    Short(Bytes),
    /// The peer is gone.
    Gone,
}

pub(super) fn write(s: &Spectator, bytes: &Bytes) -> Wrote {
    match send(s, bytes) {
        Ok(n) if n == bytes.len() => Wrote::Whole,
        Ok(n) => Wrote::Short(bytes.slice(n..)),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
            Wrote::Short(bytes.clone())
        }
        Err(_) => Wrote::Gone,
    }
}

/// One non-blocking `send` of as much of `bytes` as the socket takes now.
///
/// On the descriptor kept in the spectator's slot, not through tokio: its
/// readiness check costs a walk from the `Arc<Conn>` to the socket's
/// registration, a few cache misses per spectator per tick, where the
/// floor's writers touch nothing but the descriptor. Tokio's readiness is
/// only ever cleared by its own writes, so skipping it here can leave it
/// saying "writable" when the socket is full, never the reverse: the slow
/// path's first write then finds the socket full and waits as it should.
/// (Linux: `MSG_NOSIGNAL` is not everywhere; elsewhere it is tokio's write.)
#[cfg(target_os = "linux")]
fn send(s: &Spectator, bytes: &[u8]) -> std::io::Result<usize> {
    if s.fd < 0 {
        return s.conn.try_write(bytes);
    }
    // SAFETY: `bytes` is valid for reads of its length, and `s.fd` is the
    // descriptor of `s.conn`'s socket, which stays open while `s` holds
    // that `Arc<Conn>` (a `Conn` closes its socket only when dropped).
    let n = unsafe {
        libc::send(
            s.fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
}

#[cfg(not(target_os = "linux"))]
fn send(s: &Spectator, bytes: &[u8]) -> std::io::Result<usize> {
    s.conn.try_write(bytes)
}

struct Shard<F: Feed> {
    fanout: Arc<Fanout<F>>,
    key: String,
    feed: F,
    /// This shard's own inbox, for the mailboxes of its talking spectators.
    inbox: mpsc::WeakUnboundedSender<ToShard>,
    spectators: Vec<Spectator>,
    /// Where each talking spectator is in `spectators`, by mailbox id.
    index: HashMap<u64, usize>,
    /// The ring this shard reads; `None` while it has no spectator.
    lead: Option<broadcast::Receiver<SseChunk>>,
    /// One unread receiver per spectator but one (see the module docs).
    spare: Vec<broadcast::Receiver<SseChunk>>,
    /// The last tick the shard wrote.
    last: u64,
    /// The keepalive slice due next, and the slice the next spectator gets.
    beat: u8,
    next_slice: u8,
}

impl<F: Feed> Shard<F> {
    fn new(
        fanout: Arc<Fanout<F>>,
        key: String,
        feed: F,
        inbox: mpsc::WeakUnboundedSender<ToShard>,
    ) -> Self {
        Shard {
            fanout,
            key,
            feed,
            inbox,
            spectators: Vec::new(),
            index: HashMap::new(),
            lead: None,
            spare: Vec::new(),
            last: 0,
            beat: 0,
            next_slice: 0,
        }
    }

    /// Takes spectator `i` out of the shard, giving up its ring place.
    fn take(&mut self, i: usize) -> Spectator {
        let s = self.spectators.swap_remove(i);
        if let Some(t) = &s.talk {
            self.index.remove(&t.mailbox.id());
            t.mailbox.home(None);
        }
        if let Some(t) = self.spectators.get(i).and_then(|m| m.talk.as_ref()) {
            self.index.insert(t.mailbox.id(), i);
        }
        if self.spare.pop().is_none() {
            self.lead = None;
        }
        s
    }

    /// Spectator `i` leaves for the slow path with `rest` to finish. It
    /// counts as a resync now, as an outbox's overflow does: whatever
    /// happens next, its backlog is not kept and a keyframe is its next
    /// frame.
    fn slow_down(&mut self, i: usize, rest: Bytes) {
        let s = self.take(i);
        s.room_metrics.resyncs.inc();
        self.fanout.spawn(slow::catch_up(
            self.fanout.clone(),
            self.key.clone(),
            self.feed.clone(),
            s,
            rest,
        ));
    }

    /// Spectator `i`'s peer is gone (or it is closed): dropping it closes
    /// the socket once its reader, if any, lets go too.
    fn gone(&mut self, i: usize) {
        drop(self.take(i));
    }

    fn push(&mut self, mut spectator: Spectator) -> usize {
        spectator.slice = self.next_slice;
        self.next_slice = (self.next_slice + 1) % SLICES;
        let i = self.spectators.len();
        if let Some(t) = &spectator.talk {
            self.index.insert(t.mailbox.id(), i);
        }
        self.spectators.push(spectator);
        i
    }

    fn admit(&mut self, a: Admission) {
        let Admission {
            mut spectator,
            mut live,
        } = a;
        spectator.fd = spectator.conn.raw_fd();
        if self.lead.is_none() {
            self.last = spectator.after;
            self.lead = Some(live);
            let i = self.push(spectator);
            self.settle(i);
            return;
        }
        // The ticks this shard already wrote past the spectator's bytes
        // come from its own receiver, which starts where those end.
        let mut short = None;
        while spectator.after < self.last && short.is_none() {
            match live.try_recv() {
                Ok(c) if c.tick <= spectator.after => {}
                Ok(c) if c.tick == spectator.after + 1 => match write(&spectator, &c.bytes) {
                    Wrote::Whole => spectator.after = c.tick,
                    Wrote::Short(rest) => short = Some(rest),
                    Wrote::Gone => return,
                },
                // Lagged, or a gap: only a keyframe helps.
                _ => short = Some(Bytes::new()),
            }
        }
        self.spare.push(live);
        let i = self.push(spectator);
        match short {
            Some(rest) => self.slow_down(i, rest),
            None => self.settle(i),
        }
    }

    fn handle(&mut self, m: ToShard) {
        match m {
            ToShard::Admit(a) => self.admit(a),
            ToShard::Mail(id) => self.mail(id),
        }
    }

    /// A talking spectator that just arrived gets this shard as its home,
    /// and what it posted on the way is written now.
    fn settle(&mut self, i: usize) {
        let Some(t) = &self.spectators[i].talk else {
            return;
        };
        let id = t.mailbox.id();
        if t.mailbox.home(self.inbox.upgrade()) {
            self.mail(id);
        }
    }

    /// Writes what the spectator with mailbox `id` posted: replies, then a
    /// resync or a close if it asked for one.
    fn mail(&mut self, id: u64) {
        let Some(&i) = self.index.get(&id) else {
            // On the slow path or gone: its next shard writes it.
            return;
        };
        let Some(t) = &self.spectators[i].talk else {
            return;
        };
        let mail = t.mailbox.take();
        let mut rest: Vec<u8> = Vec::new();
        for b in &mail.out {
            if !rest.is_empty() {
                rest.extend_from_slice(b);
                continue;
            }
            match write(&self.spectators[i], b) {
                Wrote::Whole => {}
                Wrote::Short(r) => rest.extend_from_slice(&r),
                Wrote::Gone => return self.gone(i),
            }
        }
        if mail.close {
            let s = self.take(i);
            if !rest.is_empty() {
                self.fanout.spawn(slow::close(s, rest.into()));
            }
        } else if mail.resync || !rest.is_empty() {
            self.slow_down(i, rest.into());
        }
    }

    /// Writes one tick to every spectator that has the one before. It
    /// yields to the runtime every [`BATCH`] writes, so a big room's
    /// fan-out never holds a worker for long: the room's tick and the
    /// players' connections run between batches.
    async fn tick(&mut self, chunk: &SseChunk) {
        self.last = chunk.tick;
        let mut whole = 0u64;
        let mut i = 0;
        let mut tried = 0usize;
        while i < self.spectators.len() {
            tried += 1;
            if tried.is_multiple_of(BATCH) {
                tokio::task::yield_now().await;
            }
            let s = &mut self.spectators[i];
            if chunk.tick <= s.after {
                i += 1;
                continue;
            }
            if chunk.tick > s.after + 1 {
                self.slow_down(i, Bytes::new());
                continue;
            }
            match write(s, &chunk.bytes) {
                Wrote::Whole => {
                    s.after = chunk.tick;
                    whole += 1;
                    i += 1;
                }
                Wrote::Short(rest) => self.slow_down(i, rest),
                Wrote::Gone => self.gone(i),
            }
        }
        // Counted once per tick for the whole shard, not per spectator.
        if let Some(s) = self.spectators.first() {
            s.metrics
                .sent
                .sent(whole, whole as usize * chunk.bytes.len(), chunk.produced);
        }
    }

    /// One slice of the keepalive period passed: its spectators get their
    /// keepalive.
    fn keepalive(&mut self) {
        let slice = self.beat;
        self.beat = (self.beat + 1) % SLICES;
        let bytes = self.feed.keepalive();
        let mut i = 0;
        while i < self.spectators.len() {
            if self.spectators[i].slice != slice {
                i += 1;
                continue;
            }
            match write(&self.spectators[i], &bytes) {
                Wrote::Whole => i += 1,
                // A keepalive cut short still needs finishing first.
                Wrote::Short(rest) => self.slow_down(i, rest),
                Wrote::Gone => self.gone(i),
            }
        }
    }

    /// The room closed: every spectator gets the closing words, after the
    /// last tick it got, written under the stall timeout.
    fn close(&mut self) {
        while !self.spectators.is_empty() {
            let s = self.take(self.spectators.len() - 1);
            let words = self.feed.closing(s.after);
            self.fanout.spawn(slow::close(s, words));
        }
        self.lead = None;
        self.spare.clear();
    }

    /// The shard itself fell a ring behind: one keyframe of the room now,
    /// shared by all its spectators (one resync per shard, not one per
    /// spectator), and the ring from the tick after it.
    async fn resync(&mut self) {
        let Some((snapshot, tick, live)) = self.feed.resync().await else {
            self.close();
            return;
        };
        self.lead = Some(live);
        self.last = tick;
        let mut i = 0;
        while i < self.spectators.len() {
            let s = &mut self.spectators[i];
            if s.after >= tick {
                i += 1;
                continue;
            }
            s.room_metrics.resyncs.inc();
            s.room_metrics
                .dropped
                .inc_by(tick.saturating_sub(s.after + 1));
            match write(s, &snapshot) {
                Wrote::Whole => {
                    s.after = tick;
                    s.metrics.sent.frames.inc();
                    s.metrics.sent.bytes.inc_by(snapshot.len() as u64);
                    i += 1;
                }
                Wrote::Short(rest) => self.slow_down(i, rest),
                Wrote::Gone => self.gone(i),
            }
        }
    }
}

/// Runs one shard of feed `key` until its last spectator leaves or the
/// room closes.
pub(crate) async fn run<F: Feed>(
    fanout: Arc<Fanout<F>>,
    key: String,
    feed: F,
    me: mpsc::WeakUnboundedSender<ToShard>,
    mut inbox: mpsc::UnboundedReceiver<ToShard>,
    keepalive: Duration,
) {
    let mut shard = Shard::new(fanout, key, feed, me);
    let slice = (keepalive / u32::from(SLICES)).max(Duration::from_millis(1));
    let mut ticker = tokio::time::interval_at(Instant::now() + slice, slice);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // False once every sender is gone (the fan-out forgot this shard).
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            m = inbox.recv(), if open => match m {
                Some(m) => shard.handle(m),
                None => open = false,
            },
            r = async { Some(shard.lead.as_mut()?.recv().await) }, if shard.lead.is_some() => {
                match r {
                    // The keepalive ticks on regardless, as on every SSE
                    // stream: a comment at least every period.
                    Some(Ok(chunk)) => shard.tick(&chunk).await,
                    Some(Err(RecvError::Lagged(_))) => shard.resync().await,
                    Some(Err(RecvError::Closed)) | None => {
                        shard.close();
                    }
                }
            }
            _ = ticker.tick() => shard.keepalive(),
        }
        // The last spectator left: end, unless one is on its way. The
        // fan-out decides under its lock, where it hands spectators out,
        // so none is handed to this shard once it has said it ends; a
        // spectator that was already queued is served, and the shard
        // keeps reading its inbox for it (its replies come that way).
        while shard.spectators.is_empty() {
            match shard.fanout.retire(&shard.key, &mut inbox) {
                Some(m) => shard.handle(m),
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, OpCode};

    use super::*;
    use crate::accept::{Conn, Lingering};
    use crate::fanout::talk;
    use crate::limits::Counters;
    use crate::metrics::{Metrics, Transport};

    /// A room that never ticks.
    #[derive(Clone)]
    struct Still(broadcast::Sender<SseChunk>);

    impl Feed for Still {
        async fn resync(&self) -> Option<(Bytes, u64, broadcast::Receiver<SseChunk>)> {
            Some((Bytes::new(), 0, self.0.subscribe()))
        }
        fn keepalive(&self) -> Bytes {
            Bytes::from_static(b"k")
        }
        fn closing(&self, _after: u64) -> Bytes {
            Bytes::new()
        }
    }

    /// A masked client control frame.
    fn client_frame(c: Control, payload: &[u8]) -> Vec<u8> {
        talk::tests::client_frame(OpCode::Control(c), payload)
    }

    /// The server's `Conn` and the client's end of a loopback connection.
    async fn pair() -> (Arc<Conn>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let conn = Conn::new(
            server,
            None,
            Duration::from_secs(10),
            Arc::new(Counters::default()),
            Lingering::new(4),
        );
        (Arc::new(conn), client)
    }

    fn spectator(conn: Arc<Conn>, metrics: &Metrics, talk: Option<talk::Line>) -> Spectator {
        Spectator {
            conn,
            after: 0,
            metrics: metrics.conn(Transport::Ws, "r"),
            room_metrics: metrics.room("r"),
            talk,
            slice: 0,
            fd: -1,
        }
    }

    /// A WebSocket spectator (past its handshake) whose reader runs and
    /// has read `early`; the client's end of its socket.
    async fn talking(
        metrics: &Metrics,
        early: Vec<u8>,
    ) -> (Spectator, TcpStream, tokio::task::JoinHandle<()>) {
        let (conn, client) = pair().await;
        let (line, ear) = talk::line();
        let rules = talk::tests::rules(protocol::Format::Json);
        let reader = tokio::spawn(talk::read(conn.clone(), ear, rules, early));
        (spectator(conn, metrics, Some(line)), client, reader)
    }

    /// Regression: a spectator queued to a shard just as its last one
    /// left used to be served by a shard that had closed its inbox, so
    /// nothing it said (a ping, a close) was ever answered. Found as a
    /// test that hung under load; here the order is forced: the shard
    /// starts with A, who has already said goodbye, and B queued behind.
    #[tokio::test]
    async fn a_spectator_queued_as_the_last_one_leaves_is_still_answered() {
        let metrics = Metrics::new();
        let (tx, _keep) = broadcast::channel(16);
        let feed = Still(tx.clone());
        let fanout = Fanout::new(1, Duration::from_secs(3600));

        let (a, mut client_a, reader_a) = talking(
            &metrics,
            client_frame(Control::Close, &1000u16.to_be_bytes()),
        )
        .await;
        // A's reader has posted its close (no shard holds A yet).
        reader_a.await.unwrap();
        let (b, mut client_b, _reader_b) = talking(&metrics, Vec::new()).await;
        let live = || tx.subscribe();
        fanout.admit(
            "k",
            &feed,
            Admission {
                spectator: a,
                live: live(),
            },
        );
        fanout.admit(
            "k",
            &feed,
            Admission {
                spectator: b,
                live: live(),
            },
        );

        let wait = Duration::from_secs(30);
        let mut got = Vec::new();
        tokio::time::timeout(wait, client_a.read_to_end(&mut got))
            .await
            .expect("A is closed")
            .unwrap();
        assert_eq!(&got[..2], &[0x88, 0x02], "A gets its close frame");

        client_b
            .write_all(&client_frame(Control::Ping, b"hi"))
            .await
            .unwrap();
        let mut pong = [0u8; 4];
        tokio::time::timeout(wait, client_b.read_exact(&mut pong))
            .await
            .expect("B's ping is answered")
            .unwrap();
        assert_eq!(pong, [0x8A, 0x02, b'h', b'i']);
    }

    /// A spectator that never talks (as SSE's) and its client end,
    /// non-blocking (read by plain system calls, no runtime needed).
    async fn silent(metrics: &Metrics) -> (Spectator, std::net::TcpStream) {
        let (conn, client) = pair().await;
        (spectator(conn, metrics, None), client.into_std().unwrap())
    }

    /// Bytes that have arrived at each client, without waiting.
    fn arrived(clients: &[std::net::TcpStream]) -> Vec<usize> {
        use std::io::Read;
        clients
            .iter()
            .map(|mut c| {
                let mut buf = [0u8; 16];
                match c.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
                    Err(e) => panic!("{e}"),
                }
            })
            .collect()
    }

    #[tokio::test]
    async fn keepalives_are_spread_over_the_period_and_each_spectator_gets_one_per_period() {
        let metrics = Metrics::new();
        let (tx, _keep) = broadcast::channel(16);
        let (me, _inbox) = mpsc::unbounded_channel();
        let mut shard = Shard::new(
            Fanout::new(1, Duration::from_secs(1)),
            "k".into(),
            Still(tx.clone()),
            me.downgrade(),
        );
        let mut clients = Vec::new();
        for _ in 0..16 {
            let (s, c) = silent(&metrics).await;
            clients.push(c);
            shard.admit(Admission {
                spectator: s,
                live: tx.subscribe(),
            });
        }
        let mut total = vec![0; clients.len()];
        for slice in 1..=(2 * SLICES as usize) {
            // What one slice of the period writes (the shard's clock ticks
            // once per slice).
            shard.keepalive();
            let now = arrived(&clients);
            assert_eq!(
                now.iter().sum::<usize>(),
                2,
                "slice {slice}: two of the 16 get their keepalive: {now:?}"
            );
            for (t, n) in total.iter_mut().zip(now) {
                *t += n;
            }
            if slice % SLICES as usize == 0 {
                let periods = slice / SLICES as usize;
                assert!(
                    total.iter().all(|&t| t == periods),
                    "after {periods} periods each has {periods}: {total:?}"
                );
            }
        }
    }
}
