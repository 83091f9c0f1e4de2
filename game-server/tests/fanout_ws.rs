//! WebSocket spectators on the fan-out, and players through its door, over
//! real sockets on 127.0.0.1:0. Every wait has a generous deadline.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use common::{RawWs, WAIT, server, small_window, ws_recv as recv};
use futures_util::{SinkExt, StreamExt};
use protocol::codec::encode;
use protocol::*;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(addr: SocketAddr, room: &str) -> Ws {
    let url = format!("ws://{addr}/rooms/{room}/ws");
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

fn message(f: Format, msg: &ClientMsg) -> Message {
    let b = encode(f, msg);
    match f {
        Format::Json => Message::text(String::from_utf8(b.to_vec()).unwrap()),
        Format::Bincode => Message::binary(b),
    }
}

async fn send<S>(ws: &mut WebSocketStream<S>, f: Format, msg: &ClientMsg)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(message(f, msg)).await.unwrap();
}

fn hello(name: &str, role: Role, token: Option<String>) -> ClientMsg {
    ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        name: name.into(),
        role,
        token,
    })
}

/// A spectator that got its welcome.
async fn spectator(addr: SocketAddr, room: &str, f: Format) -> Ws {
    let mut ws = connect(addr, room).await;
    send(&mut ws, f, &hello("eye", Role::Spectator, None)).await;
    match recv(&mut ws, f).await.unwrap() {
        ServerMsg::Welcome(w) => {
            assert_eq!(w.player_id, None);
            assert_eq!(w.room, room);
        }
        other => panic!("no welcome: {other:?}"),
    }
    ws
}

/// Follows `ticks` consecutive ticks (after a snapshot), each verified by
/// its checksum; returns the world and the acks seen. `keyframes` counts
/// snapshots after the first.
async fn follow<S>(
    ws: &mut WebSocketStream<S>,
    f: Format,
    ticks: u64,
    world: &mut Option<WorldState>,
) -> (Vec<u64>, u32)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut acks, mut seen, mut keyframes) = (Vec::new(), 0, 0);
    while seen < ticks {
        match recv(ws, f).await.unwrap() {
            ServerMsg::Snapshot(s) => {
                assert_eq!(s.state.checksum(), s.checksum);
                keyframes += u32::from(world.is_some());
                acks.push(s.ack);
                *world = Some(s.state);
            }
            ServerMsg::Tick(t) => {
                let w = world.as_mut().expect("a snapshot comes first");
                assert_eq!(t.tick, w.tick + 1, "consecutive ticks");
                w.apply_frame(&t)
                    .unwrap_or_else(|e| panic!("tick {}: {e}", t.tick));
                acks.push(t.ack);
                seen += 1;
            }
            _ => {}
        }
    }
    (acks, keyframes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spectators_in_both_formats_get_every_tick_verified() {
    let s = server(|_| {}).await;
    for f in [Format::Json, Format::Bincode] {
        let mut ws = spectator(s.local_addr, "lobby", f).await;
        let mut world = None;
        let (acks, keyframes) = follow(&mut ws, f, 60, &mut world).await;
        assert!(acks.iter().all(|a| *a == 0), "spectators have no ack");
        assert_eq!(keyframes, 0, "no resync for a reader that keeps up");
    }
    let lobby = s.rooms.get("lobby").unwrap();
    assert!(lobby.info().spectators <= 2);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_spectators_and_a_player_share_a_room_and_its_chat() {
    let s = server(|_| {}).await;
    let mut player = connect(s.local_addr, "lobby").await;
    send(
        &mut player,
        Format::Bincode,
        &hello("p", Role::Player, None),
    )
    .await;
    let me = match recv(&mut player, Format::Bincode).await.unwrap() {
        ServerMsg::Welcome(w) => w.player_id.unwrap(),
        other => panic!("{other:?}"),
    };
    let mut eyes = Vec::new();
    for i in 0..24 {
        let f = if i % 2 == 0 {
            Format::Json
        } else {
            Format::Bincode
        };
        eyes.push((f, spectator(s.local_addr, "lobby", f).await));
    }
    let lobby = s.rooms.get("lobby").unwrap();
    assert_eq!(lobby.info().spectators, 24);
    let mut pworld = None;
    follow(&mut player, Format::Bincode, 5, &mut pworld).await;
    for (seq, dir) in [(1, Dir::Up), (2, Dir::Left)] {
        let input = ClientMsg::Input(Input {
            seq,
            dir,
            boost: false,
        });
        send(&mut player, Format::Bincode, &input).await;
    }
    // The player's ticks carry its ack; the spectators' never do.
    let mut acked = 0;
    while acked < 2 {
        let (acks, _) = follow(&mut player, Format::Bincode, 1, &mut pworld).await;
        acked = acked.max(*acks.last().unwrap());
    }
    for (f, ws) in &mut eyes {
        let mut world = None;
        let (acks, _) = follow(ws, *f, 10, &mut world).await;
        assert!(acks.iter().all(|a| *a == 0));
        assert!(
            world.unwrap().snake(me).is_some(),
            "spectators see the player"
        );
    }
    send(
        &mut player,
        Format::Bincode,
        &ClientMsg::Chat(ChatText {
            text: "hi\x1b[2J there".into(),
        }),
    )
    .await;
    for (f, ws) in &mut eyes {
        loop {
            if let ServerMsg::Chat(c) = recv(ws, *f).await.unwrap() {
                assert_eq!((c.from.as_str(), c.text.as_str()), ("p", "hi there"));
                break;
            }
        }
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_ping_gets_a_pong_and_resync_a_snapshot() {
    let s = server(|_| {}).await;
    for f in [Format::Json, Format::Bincode] {
        let mut ws = spectator(s.local_addr, "lobby", f).await;
        send(&mut ws, f, &ClientMsg::Ping(Ping { t: 4242 })).await;
        let mut world = None;
        loop {
            match recv(&mut ws, f).await.unwrap() {
                ServerMsg::Pong(p) => {
                    assert_eq!(p.t, 4242);
                    assert!(p.server_time_us > 1_600_000_000_000_000);
                    break;
                }
                ServerMsg::Snapshot(sn) => world = Some(sn.state),
                _ => {}
            }
        }
        send(&mut ws, f, &ClientMsg::Resync {}).await;
        let mut keyframes = 0;
        while keyframes == 0 {
            keyframes += follow(&mut ws, f, 1, &mut world).await.1;
        }
        // A control ping is answered with a pong too.
        ws.send(Message::Ping(b"rtt".to_vec().into()))
            .await
            .unwrap();
        let pong = tokio::time::timeout(WAIT, async {
            loop {
                if let Some(Ok(Message::Pong(p))) = ws.next().await {
                    return p;
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(&pong[..], b"rtt");
        // And leave closes with 1000.
        send(&mut ws, f, &ClientMsg::Leave {}).await;
        loop {
            if let Err((code, reason)) = recv(&mut ws, f).await {
                assert_eq!((code, reason.as_str()), (1000, "left"));
                break;
            }
        }
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_spectator_is_resynced_and_the_others_keep_every_tick() {
    // Small kernel buffers, so the non-reader stalls within seconds.
    let s = server(|c| c.send_buffer = Some(8 * 1024)).await;
    // Players make the ticks big enough to fill the socket buffers.
    let mut players = Vec::new();
    for i in 0..6 {
        players.push(common::ws_player(s.local_addr, &format!("bot{i}")).await);
    }
    let stalled = small_window(s.local_addr).await;
    let mut stalled = RawWs::over(stalled).await;
    stalled
        .send_text(r#"{"hello":{"version":2,"name":"slow","role":"spectator"}}"#)
        .await;
    let mut good = spectator(s.local_addr, "lobby", Format::Json).await;
    let mut world = None;
    let lobby = s.rooms.get("lobby").unwrap();
    let from = lobby.stats.tick.load(Ordering::Relaxed);
    // The good one reads every tick while the stalled one reads nothing
    // for 480 ticks (far more than the ring and the socket buffers hold).
    while lobby.stats.tick.load(Ordering::Relaxed) < from + 480 {
        let (_, keyframes) = follow(&mut good, Format::Json, 1, &mut world).await;
        assert_eq!(keyframes, 0, "the others are not resynced");
    }
    // Reading again: what was in flight, then a snapshot, then ticks.
    let mut late = WebSocketStream::from_raw_socket(stalled.0, WsRole::Client, None).await;
    let mut world = None;
    let mut keyframes = 0;
    tokio::time::timeout(WAIT, async {
        while keyframes == 0 {
            match recv(&mut late, Format::Json).await.unwrap() {
                ServerMsg::Snapshot(sn) => {
                    keyframes += u32::from(world.is_some());
                    world = Some(sn.state);
                }
                ServerMsg::Tick(t) => {
                    if let Some(w) = world.as_mut()
                        && t.tick == w.tick + 1
                    {
                        w.apply_frame(&t).unwrap();
                    }
                }
                _ => {}
            }
        }
    })
    .await
    .expect("a snapshot after the stall");
    follow(&mut late, Format::Json, 30, &mut world).await;
    assert!(lobby.room_metrics.resyncs.get() >= 1);
    for p in players {
        p.abort();
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_spectators_with_1001_and_the_reason() {
    let s = server(|_| {}).await;
    let mut json = spectator(s.local_addr, "lobby", Format::Json).await;
    let mut bin = spectator(s.local_addr, "lobby", Format::Bincode).await;
    let mut world = None;
    follow(&mut json, Format::Json, 3, &mut world).await;
    let shutdown = tokio::spawn(s.shutdown());
    for (ws, f) in [(&mut json, Format::Json), (&mut bin, Format::Bincode)] {
        let mut told = false;
        loop {
            match recv(ws, f).await {
                Ok(ServerMsg::Error(e)) => {
                    assert_eq!(e.code, "shutting_down");
                    told = true;
                }
                Ok(_) => {}
                Err((code, reason)) => {
                    assert_eq!(code, 1001);
                    assert!(reason.contains("shutting down"), "{reason}");
                    break;
                }
            }
        }
        assert!(told, "an error message says why before the close");
    }
    tokio::time::timeout(WAIT, shutdown).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_from_a_spectator_get_their_close_codes() {
    let s = server(|c| c.limits.ws_max_message = 1024).await;
    let cases: Vec<(Format, Message, u16)> = vec![
        (Format::Json, Message::text("x".repeat(2000)), 1009),
        (Format::Json, Message::binary(b"{}".to_vec()), 1003),
        (Format::Bincode, Message::text("{}"), 1003),
        (Format::Json, Message::text("{not json"), 1007),
        (Format::Json, Message::Frame(bad_utf8()), 1007),
    ];
    for (f, m, want) in cases {
        let mut ws = spectator(s.local_addr, "lobby", f).await;
        ws.send(m).await.unwrap();
        let code = closed(&mut ws, f).await;
        assert_eq!(code, want);
    }
    let c = s.counters.snapshot();
    assert!(c.ws_oversize >= 1 && c.ws_bad_frames >= 4, "{c:?}");
    // A flood of pings ends with 1008, and the server keeps serving.
    let s2 = server(|c| {
        c.limits.input_rate = 0.001;
        c.limits.input_burst = 5.0;
    })
    .await;
    let mut ws = spectator(s2.local_addr, "lobby", Format::Json).await;
    for t in 0..200 {
        if ws
            .send(message(Format::Json, &ClientMsg::Ping(Ping { t })))
            .await
            .is_err()
        {
            break;
        }
    }
    let code = closed(&mut ws, Format::Json).await;
    assert_eq!(code, 1008);
    let mut other = spectator(s.local_addr, "lobby", Format::Json).await;
    follow(&mut other, Format::Json, 3, &mut None).await;
    s.shutdown().await;
    s2.shutdown().await;
}

/// The close code, after whatever frames come first (bounded as a whole:
/// ticks keep coming while it waits).
async fn closed(ws: &mut Ws, f: Format) -> u16 {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Err((code, _)) = recv(ws, f).await {
                return code;
            }
        }
    })
    .await
    .expect("no close frame in time")
}

/// A text frame whose payload is not UTF-8.
fn bad_utf8() -> tokio_tungstenite::tungstenite::protocol::frame::Frame {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    Frame::message(vec![0xFF, 0xFE, 0x22], OpCode::Data(Data::Text), true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_through_the_door_plays_acks_and_rejoins_with_its_token() {
    let s = server(|_| {}).await;
    for f in [Format::Json, Format::Bincode] {
        let mut ws = connect(s.local_addr, "lobby").await;
        send(&mut ws, f, &hello("alice", Role::Player, None)).await;
        let w = match recv(&mut ws, f).await.unwrap() {
            ServerMsg::Welcome(w) => w,
            other => panic!("{other:?}"),
        };
        let me = w.player_id.unwrap();
        let mut world = None;
        follow(&mut ws, f, 3, &mut world).await;
        for seq in 1..=3 {
            let dir = [Dir::Up, Dir::Left, Dir::Down][seq as usize - 1];
            let input = ClientMsg::Input(Input {
                seq,
                dir,
                boost: false,
            });
            send(&mut ws, f, &input).await;
        }
        let mut best = 0;
        while best < 3 {
            let (acks, _) = follow(&mut ws, f, 1, &mut world).await;
            let ack = *acks.last().unwrap();
            assert!(ack >= best, "acks never go back");
            best = ack;
        }
        drop(ws);
        // A rejoin with the token resumes the same snake, and its first
        // frame (a snapshot) carries the ack so far.
        let mut again = connect(s.local_addr, "lobby").await;
        send(&mut again, f, &hello("alice", Role::Player, Some(w.token))).await;
        match recv(&mut again, f).await.unwrap() {
            ServerMsg::Welcome(w2) => {
                assert!(w2.resumed);
                assert_eq!(w2.player_id, Some(me));
            }
            other => panic!("{other:?}"),
        }
        let mut world = None;
        let (acks, _) = follow(&mut again, f, 3, &mut world).await;
        assert!(acks.iter().all(|a| *a == 3), "{acks:?}");
        assert!(world.unwrap().snake(me).is_some());
        send(&mut again, f, &ClientMsg::Leave {}).await;
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_named_ws_or_events_and_declined_requests_keep_their_answers() {
    let s = server(|c| {
        for id in ["ws", "events"] {
            c.rooms.push(protocol::api::CreateRoom {
                id: Some(id.into()),
                ..Default::default()
            });
        }
    })
    .await;
    for room in ["ws", "events"] {
        let mut ws = spectator(s.local_addr, room, Format::Json).await;
        follow(&mut ws, Format::Json, 3, &mut None).await;
        let mut sse = common::Sse::open(s.local_addr, room, None).await;
        assert_eq!(sse.event().await.event, "welcome");
    }
    // Not a handshake, an unknown room: the router's answers, as before.
    let (st, _, body) = common::get(s.local_addr, "/rooms/ws/ws").await;
    assert_eq!(st, 426, "{body}");
    let (st, _, body) = common::get(s.local_addr, "/rooms/nope/ws").await;
    assert_eq!(st, 404, "{body}");
    s.shutdown().await;
}
