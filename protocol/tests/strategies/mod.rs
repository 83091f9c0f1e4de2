//! proptest strategies for every protocol type (shared by the test files).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use protocol::state::SnakeMove;
use protocol::*;

pub fn pos() -> impl Strategy<Value = Pos> {
    (0u16..512, 0u16..512).prop_map(|(x, y)| Pos::new(x, y))
}

pub fn dir() -> impl Strategy<Value = Dir> {
    prop_oneof![
        Just(Dir::Up),
        Just(Dir::Down),
        Just(Dir::Left),
        Just(Dir::Right)
    ]
}

pub fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Snake), Just(Mode::Tron)]
}

pub fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Player), Just(Role::Spectator)]
}

pub fn score() -> impl Strategy<Value = Score> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(length, kills, deaths, best, wins)| Score {
            length,
            kills,
            deaths,
            best,
            wins,
        })
}

pub fn snake_with_id(id: PlayerId) -> impl Strategy<Value = SnakeState> {
    (
        ".{0,20}",
        vec(pos(), 0..12),
        dir(),
        any::<bool>(),
        any::<u16>(),
        any::<bool>(),
        any::<bool>(),
        score(),
    )
        .prop_map(
            move |(name, body, dir, alive, respawn_in, boost, connected, score)| SnakeState {
                id,
                name,
                body: body.into_iter().collect(),
                dir,
                alive,
                respawn_in,
                boost,
                connected,
                score,
            },
        )
}

pub fn world() -> impl Strategy<Value = WorldState> {
    (
        any::<u64>(),
        mode(),
        any::<u32>(),
        btree_set(0u32..40, 0..6),
        btree_set(pos(), 0..20),
    )
        .prop_flat_map(|(tick, mode, round, ids, food)| {
            let snakes: Vec<_> = ids.into_iter().map(snake_with_id).collect();
            (Just(tick), Just(mode), Just(round), snakes, Just(food))
        })
        .prop_map(|(tick, mode, round, snakes, food)| WorldState {
            tick,
            mode,
            round,
            snakes,
            food: food.into_iter().collect(),
        })
}

/// A world and a plausible next world: snakes move, grow, die, join and
/// leave; food appears and disappears.
pub fn world_and_next() -> impl Strategy<Value = (WorldState, WorldState)> {
    (
        world(),
        vec((0u8..8, dir(), 0u8..3, any::<bool>()), 6),
        btree_set(pos(), 0..6),
        any::<u64>(),
    )
        .prop_map(|(old, ops, extra_food, salt)| {
            let mut new = old.clone();
            new.tick = old.tick.wrapping_add(1);
            let mut by_id: BTreeMap<PlayerId, SnakeState> =
                new.snakes.drain(..).map(|s| (s.id, s)).collect();
            for (i, (op, d, n, flag)) in ops.into_iter().enumerate() {
                let key = by_id.keys().nth(i % by_id.len().max(1)).copied();
                match (op, key) {
                    (0..=3, Some(id)) => {
                        // Move: push n heads, trim (n or 0 when growing).
                        let s = by_id.get_mut(&id).unwrap();
                        let mut head = s.body.front().copied().unwrap_or(Pos::new(1, 1));
                        for _ in 0..n {
                            head = head.step(d, 512, 512);
                            s.body.push_front(head);
                        }
                        if !flag {
                            for _ in 0..n {
                                s.body.pop_back();
                            }
                        }
                        s.dir = d;
                        s.score.length = s.body.len() as u32;
                    }
                    (4, Some(id)) => {
                        let s = by_id.get_mut(&id).unwrap();
                        s.body = VecDeque::new();
                        s.alive = false;
                        s.score.deaths += 1;
                    }
                    (5, Some(id)) => {
                        by_id.remove(&id);
                    }
                    (6, _) => {
                        let id = 100 + (salt % 50) as u32 + i as u32;
                        by_id.insert(
                            id,
                            SnakeState {
                                id,
                                name: format!("new{i}"),
                                body: [Pos::new(3, 3), Pos::new(2, 3)].into_iter().collect(),
                                dir: d,
                                alive: true,
                                respawn_in: 0,
                                boost: flag,
                                connected: true,
                                score: Score::default(),
                            },
                        );
                    }
                    (7, Some(id)) => {
                        // Small fields only: no move, maybe a score row.
                        let s = by_id.get_mut(&id).unwrap();
                        s.boost = flag;
                        s.connected = !flag;
                        s.respawn_in = u16::from(n);
                        s.dir = d;
                        s.score.kills += u32::from(n);
                    }
                    _ => {}
                }
            }
            new.snakes = by_id.into_values().collect();
            let mut food: BTreeSet<Pos> = new.food.iter().copied().collect();
            if let Some(first) = food.iter().next().copied() {
                food.remove(&first);
            }
            food.extend(extra_food);
            new.food = food.into_iter().collect();
            if salt % 7 == 0 {
                new.round = new.round.wrapping_add(1);
            }
            (old, new)
        })
}

pub fn snake_move() -> impl Strategy<Value = SnakeMove> {
    use proptest::option::of;
    (
        any::<u32>(),
        vec(pos(), 0..10),
        of(prop_oneof![0u32..4, any::<u32>()]),
        of(dir()),
        of(any::<bool>()),
        of(any::<u16>()),
        of(any::<bool>()),
        of(any::<bool>()),
    )
        .prop_map(
            |(id, head, trim, dir, alive, respawn_in, boost, connected)| SnakeMove {
                id,
                head,
                trim,
                dir,
                alive,
                respawn_in,
                boost,
                connected,
            },
        )
}

pub fn delta() -> impl Strategy<Value = Delta> {
    (
        proptest::option::of(any::<u32>()),
        vec(snake_move(), 0..4),
        vec(snake_with_id(7), 0..2),
        vec(any::<u32>(), 0..3),
        vec(pos(), 0..4),
        vec(pos(), 0..4),
        proptest::collection::btree_map(any::<u32>(), score(), 0..3),
    )
        .prop_map(
            |(round, moved, snakes, removed, food_added, food_removed, scores)| Delta {
                round,
                moved,
                snakes,
                removed,
                food_added,
                food_removed,
                scores,
            },
        )
}

pub fn event() -> impl Strategy<Value = GameEvent> {
    let cause = prop_oneof![
        Just(DeathCause::Wall),
        Just(DeathCause::Own),
        Just(DeathCause::Body),
        Just(DeathCause::HeadOn)
    ];
    prop_oneof![
        (any::<u32>(), ".{0,16}").prop_map(|(id, name)| GameEvent::Joined { id, name }),
        any::<u32>().prop_map(|id| GameEvent::Left { id }),
        any::<u32>().prop_map(|id| GameEvent::Ate { id }),
        (any::<u32>(), proptest::option::of(any::<u32>()), cause)
            .prop_map(|(id, killer, cause)| GameEvent::Died { id, killer, cause }),
        any::<u32>().prop_map(|id| GameEvent::Respawned { id }),
        (any::<u32>(), proptest::option::of(any::<u32>()))
            .prop_map(|(round, winner)| GameEvent::RoundOver { round, winner }),
    ]
}

pub fn map() -> impl Strategy<Value = Map> {
    (
        ".{0,20}",
        1u16..20,
        1u16..10,
        vec(pos(), 0..5),
        proptest::option::of(mode()),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|(name, width, height, spawns, mode, food)| Map {
            name,
            width,
            height,
            rows: (0..height).map(|_| ".".repeat(width as usize)).collect(),
            spawns,
            mode,
            food,
        })
}

pub fn client_msg() -> impl Strategy<Value = ClientMsg> {
    prop_oneof![
        (
            any::<u32>(),
            ".{0,24}",
            role(),
            proptest::option::of("[0-9a-f]{32}")
        )
            .prop_map(|(version, name, role, token)| ClientMsg::Hello(Hello {
                version,
                name,
                role,
                token
            })),
        (any::<u64>(), dir(), any::<bool>())
            .prop_map(|(seq, dir, boost)| ClientMsg::Input(Input { seq, dir, boost })),
        any::<u64>().prop_map(|t| ClientMsg::Ping(Ping { t })),
        ".{0,64}".prop_map(|text| ClientMsg::Chat(ChatText { text })),
        Just(ClientMsg::Leave {}),
        Just(ClientMsg::Resync {}),
    ]
}

pub fn tick_frame() -> impl Strategy<Value = TickFrame> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        delta(),
        vec(event(), 0..3),
    )
        .prop_map(
            |(ack, tick, checksum, server_time_us, delta, events)| TickFrame {
                ack,
                tick,
                checksum,
                server_time_us,
                delta,
                events,
            },
        )
}

pub fn snapshot() -> impl Strategy<Value = Snapshot> {
    (any::<u64>(), any::<u64>(), any::<u64>(), world()).prop_map(
        |(ack, checksum, server_time_us, state)| Snapshot {
            ack,
            tick: state.tick,
            checksum,
            server_time_us,
            state,
        },
    )
}

pub fn server_msg() -> impl Strategy<Value = ServerMsg> {
    let welcome = (
        proptest::option::of(any::<u32>()),
        "[0-9a-f]{16}",
        "[0-9a-f]{32}",
        "[a-z]{1,8}",
        mode(),
        1u32..=60,
        map(),
        any::<bool>(),
        ".{0,16}",
        any::<u64>(),
    )
        .prop_map(
            |(
                player_id,
                session,
                token,
                room,
                mode,
                tick_rate,
                map,
                resumed,
                name,
                server_time_us,
            )| {
                ServerMsg::Welcome(Box::new(Welcome {
                    player_id,
                    session,
                    token,
                    room,
                    mode,
                    tick_rate,
                    speed: 10,
                    map,
                    resumed,
                    name,
                    server_time_us,
                }))
            },
        );
    prop_oneof![
        welcome,
        snapshot().prop_map(|s| ServerMsg::Snapshot(Box::new(s))),
        tick_frame().prop_map(|t| ServerMsg::Tick(Box::new(t))),
        (any::<u64>(), any::<u64>())
            .prop_map(|(t, server_time_us)| ServerMsg::Pong(Pong { t, server_time_us })),
        (".{0,16}", ".{0,64}").prop_map(|(from, text)| ServerMsg::Chat(ChatLine { from, text })),
        ("[a-z_]{1,20}", ".{0,40}")
            .prop_map(|(code, message)| ServerMsg::Error(ErrorMsg { code, message })),
    ]
}
