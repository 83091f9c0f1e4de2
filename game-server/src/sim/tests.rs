//! Rule tests: each one fails if the rule it names breaks.

use protocol::{DeathCause, Dir, GameEvent, Map, Mode, PlayerId, Pos};

use super::{EMPTY, SimConfig, SimInput, SplitMix64, World};

/// An open 8x4 floor inside walls, spawn points in two corners.
const BOX: &str = "\
##########
#0.......#
#........#
#........#
#.......1#
##########
";

fn cfg(mode: Mode) -> SimConfig {
    SimConfig {
        mode,
        food: 0,
        respawn_ticks: 5,
        start_length: 3,
        boost_ticks: 8,
        spawn_hold: 0,
        // One cell per tick (two boosted): each rule test counts cells.
        tick_rate: 1,
        speed: 1,
        boost_speed: 2,
    }
}

fn world(mode: Mode) -> World {
    World::new(Map::parse(BOX, "box").unwrap(), cfg(mode), 1)
}

fn p(x: u16, y: u16) -> Pos {
    Pos::new(x, y)
}

impl World {
    /// Test helper: puts a live snake with exactly `cells` (head first).
    fn put(&mut self, id: PlayerId, cells: &[(u16, u16)], dir: Dir) {
        let mut ev = Vec::new();
        self.apply_input(
            &SimInput::Join {
                id,
                name: format!("p{id}"),
            },
            &mut ev,
        );
        let i = self.index_of(id).unwrap();
        for &(x, y) in cells {
            let c = self.map_cell(p(x, y));
            assert_eq!(self.grid[c], EMPTY, "test puts overlapping snakes");
            self.grid[c] = id;
        }
        let s = &mut self.state.snakes[i];
        s.body = cells.iter().map(|&(x, y)| p(x, y)).collect();
        s.dir = dir;
        s.alive = true;
        self.round_riders += 1;
        self.finish_step();
    }

    fn put_food(&mut self, x: u16, y: u16) {
        self.add_food(p(x, y));
        self.finish_step();
    }

    fn body(&self, id: PlayerId) -> Vec<Pos> {
        self.state.snake(id).unwrap().body.iter().copied().collect()
    }
}

fn turn(id: PlayerId, dir: Dir) -> SimInput {
    SimInput::Turn { id, dir }
}

fn died(ev: &[GameEvent], id: PlayerId) -> Option<(Option<PlayerId>, DeathCause)> {
    ev.iter().find_map(|e| match e {
        GameEvent::Died {
            id: i,
            killer,
            cause,
        } if *i == id => Some((*killer, *cause)),
        _ => None,
    })
}

#[test]
fn snake_moves_one_cell_and_keeps_length() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(3, 2), (2, 2), (1, 2)], Dir::Right);
    let ev = w.step(&[]);
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(w.body(1), vec![p(4, 2), p(3, 2), p(2, 2)]);
    assert_eq!(w.state().snake(1).unwrap().score.length, 3);
    assert_eq!(w.state().tick, 1);
}

#[test]
fn wall_kills_and_body_becomes_food() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(8, 2), (7, 2), (6, 2)], Dir::Right);
    let ev = w.step(&[]);
    assert_eq!(died(&ev, 1), Some((None, DeathCause::Wall)));
    let s = w.state().snake(1).unwrap();
    assert!(!s.alive && s.body.is_empty());
    assert_eq!((s.score.deaths, s.score.length, s.score.best), (1, 0, 3));
    assert_eq!(s.respawn_in, 5);
    assert_eq!(w.state().food, vec![p(6, 2), p(7, 2), p(8, 2)]);
}

#[test]
fn running_into_own_body_kills() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(2, 2), (3, 2), (3, 3), (2, 3), (1, 3)], Dir::Down);
    let ev = w.step(&[]);
    assert_eq!(died(&ev, 1), Some((None, DeathCause::Own)));
}

#[test]
fn running_into_another_body_credits_the_kill() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(2, 1), (1, 1)], Dir::Down);
    w.put(2, &[(3, 2), (2, 2), (1, 2)], Dir::Right);
    let ev = w.step(&[]);
    assert_eq!(died(&ev, 1), Some((Some(2), DeathCause::Body)));
    assert_eq!(died(&ev, 2), None);
    assert_eq!(w.state().snake(2).unwrap().score.kills, 1);
    assert_eq!(w.body(2), vec![p(4, 2), p(3, 2), p(2, 2)]);
}

#[test]
fn following_your_own_tail_is_legal() {
    let mut w = world(Mode::Snake);
    // A 2x2 loop: the head always enters the cell the tail leaves.
    w.put(1, &[(2, 2), (2, 3), (3, 3), (3, 2)], Dir::Right);
    for d in [Dir::Down, Dir::Left, Dir::Up, Dir::Right] {
        let ev = w.step(&[]);
        assert!(ev.is_empty(), "{ev:?}");
        w.step(&[turn(1, d)]);
    }
    let s = w.state().snake(1).unwrap();
    assert!(s.alive);
    assert_eq!(s.body.len(), 4);
}

#[test]
fn entering_a_growing_tail_kills() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(2, 2), (2, 3), (3, 3), (3, 2)], Dir::Up);
    w.put(2, &[(4, 2), (5, 2)], Dir::Left);
    w.put_food(2, 1);
    // Snake 1 eats, so its tail (3,2) stays and snake 2 runs into it.
    let ev = w.step(&[]);
    assert!(ev.contains(&GameEvent::Ate { id: 1 }));
    assert_eq!(died(&ev, 2), Some((Some(1), DeathCause::Body)));
}

#[test]
fn two_heads_into_one_cell_both_die() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(2, 2), (1, 2)], Dir::Right);
    w.put(2, &[(4, 2), (5, 2)], Dir::Left);
    let ev = w.step(&[]);
    assert_eq!(died(&ev, 1), Some((None, DeathCause::HeadOn)));
    assert_eq!(died(&ev, 2), Some((None, DeathCause::HeadOn)));
    assert!(!w.state().food.contains(&p(3, 2)));
}

#[test]
fn two_heads_swapping_cells_both_die() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(2, 2), (1, 2)], Dir::Right);
    w.put(2, &[(3, 2), (4, 2)], Dir::Left);
    let ev = w.step(&[]);
    assert_eq!(died(&ev, 1), Some((None, DeathCause::HeadOn)));
    assert_eq!(died(&ev, 2), Some((None, DeathCause::HeadOn)));
    assert_eq!(w.state().snake(1).unwrap().score.kills, 0);
}

#[test]
fn two_quick_turns_apply_over_two_ticks() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(3, 2), (2, 2), (1, 2)], Dir::Right);
    w.step(&[turn(1, Dir::Down), turn(1, Dir::Left)]);
    assert_eq!(w.body(1)[0], p(3, 3));
    w.step(&[]);
    assert_eq!(w.body(1)[0], p(2, 3));
    assert_eq!(w.state().snake(1).unwrap().dir, Dir::Left);
}

#[test]
fn third_queued_turn_is_dropped() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(3, 2), (2, 2), (1, 2)], Dir::Right);
    w.step(&[turn(1, Dir::Down), turn(1, Dir::Left), turn(1, Dir::Up)]);
    w.step(&[]);
    w.step(&[]);
    // Down, Left, then still Left: the Up never got queued.
    assert_eq!(w.body(1)[0], p(1, 3));
}

#[test]
fn reversal_and_repeat_are_ignored() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(3, 2), (2, 2), (1, 2)], Dir::Right);
    w.step(&[turn(1, Dir::Left), turn(1, Dir::Right)]);
    assert_eq!(w.body(1)[0], p(4, 2));
    // Up reverses the queued Down, so only Down is applied, then Right again.
    w.step(&[turn(1, Dir::Down), turn(1, Dir::Up), turn(1, Dir::Right)]);
    assert_eq!(w.body(1)[0], p(4, 3));
    w.step(&[]);
    assert_eq!(w.body(1)[0], p(5, 3));
}

#[test]
fn eating_grows_by_one() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(3, 2), (2, 2), (1, 2)], Dir::Right);
    w.put_food(4, 2);
    let ev = w.step(&[]);
    assert_eq!(ev, vec![GameEvent::Ate { id: 1 }]);
    assert_eq!(w.body(1), vec![p(4, 2), p(3, 2), p(2, 2), p(1, 2)]);
    assert!(w.state().food.is_empty());
    let s = w.state().snake(1).unwrap();
    assert_eq!((s.score.length, s.score.best), (4, 4));
}

#[test]
fn food_is_kept_topped_up_on_free_floor() {
    let mut c = cfg(Mode::Snake);
    c.food = 5;
    let mut w = World::new(Map::parse(BOX, "box").unwrap(), c, 9);
    w.put(1, &[(3, 2), (2, 2), (1, 2)], Dir::Right);
    w.step(&[]);
    assert_eq!(w.state().food.len(), 5);
    for f in &w.state().food {
        assert!(!w.map().is_wall(*f));
        assert!(!w.body(1).contains(f));
    }
}

#[test]
fn join_spawns_next_step_and_respawn_waits_the_delay() {
    let mut w = world(Mode::Snake);
    let ev = w.step(&[SimInput::Join {
        id: 7,
        name: "ann".into(),
    }]);
    assert_eq!(
        ev,
        vec![
            GameEvent::Joined {
                id: 7,
                name: "ann".into()
            },
            GameEvent::Respawned { id: 7 }
        ]
    );
    let s = w.state().snake(7).unwrap();
    assert!(s.alive && s.body.len() == 3);
    assert!(w.map().spawns.contains(&s.body[0]));
    // Steer into the wall, then count the delay.
    let mut t = 0;
    while w.state().snake(7).unwrap().alive {
        let d = Dir::ALL[t % 4];
        w.step(&[turn(7, d)]);
        t += 1;
        assert!(t < 40, "never died");
    }
    let died_at = w.state().tick;
    w.put(8, &[(4, 2), (4, 3), (4, 4)], Dir::Up); // occupies cells, must be avoided
    let mut respawned_at = None;
    for _ in 0..10 {
        let ev = w.step(&[]);
        if ev.contains(&GameEvent::Respawned { id: 7 }) {
            respawned_at = Some(w.state().tick);
            break;
        }
        assert_eq!(
            w.state().snake(7).unwrap().respawn_in as u64,
            5 - (w.state().tick - died_at)
        );
    }
    assert_eq!(respawned_at, Some(died_at + 5));
    let s = w.state().snake(7).unwrap();
    assert!(s.alive && s.body.len() == 3);
    for c in &s.body {
        assert!(!w.map().is_wall(*c));
        assert!(!w.body(8).contains(c));
    }
}

#[test]
fn boost_moves_two_cells_and_costs_length() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(2, 4), (1, 4)], Dir::Right); // too short to boost
    w.put(2, &[(5, 3), (4, 3), (3, 3), (2, 3), (1, 3)], Dir::Right);
    let on = |id| SimInput::Boost { id, on: true };
    w.step(&[on(1), on(2)]);
    assert_eq!(w.body(1)[0], p(3, 4), "length at start_length cannot boost");
    assert_eq!(w.body(2)[..3], [p(7, 3), p(6, 3), p(5, 3)]);
    assert!(w.state().snake(2).unwrap().boost);
    w.step(&[turn(2, Dir::Up)]);
    w.step(&[turn(2, Dir::Left)]);
    assert_eq!(w.body(2).len(), 5);
    w.step(&[turn(2, Dir::Down)]);
    // Fourth boosted tick: one tail cell paid.
    assert_eq!(w.body(2).len(), 4);
}

#[test]
fn boost_does_not_jump_over_a_body() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(5, 2), (5, 3), (5, 4), (6, 4)], Dir::Up);
    w.put(2, &[(3, 3), (2, 3), (1, 3), (1, 2), (1, 1)], Dir::Right);
    let ev = w.step(&[SimInput::Boost { id: 2, on: true }]);
    // Second sub-step runs into snake 1's body at (5,3).
    assert_eq!(died(&ev, 2), Some((Some(1), DeathCause::Body)));
}

#[test]
fn tron_trail_grows_and_round_over_names_the_winner() {
    let mut w = world(Mode::Tron);
    w.put(1, &[(6, 1)], Dir::Right);
    w.put(2, &[(1, 3)], Dir::Right);
    let ev = w.step(&[]);
    assert!(ev.is_empty());
    assert_eq!(w.body(1), vec![p(7, 1), p(6, 1)]);
    assert_eq!(w.body(2), vec![p(2, 3), p(1, 3)]);
    w.step(&[]);
    assert_eq!(w.body(2).len(), 3);
    let ev = w.step(&[]);
    assert_eq!(died(&ev, 1), Some((None, DeathCause::Wall)));
    assert!(ev.contains(&GameEvent::RoundOver {
        round: 0,
        winner: Some(2)
    }));
    assert_eq!(w.state().round, 1);
    assert_eq!(w.state().snake(2).unwrap().score.wins, 1);
    // Everyone rides again, with fresh trails.
    for id in [1, 2] {
        let s = w.state().snake(id).unwrap();
        assert!(s.alive && s.body.len() == 3, "{s:?}");
    }
}

#[test]
fn tron_joiner_waits_while_two_ride() {
    let mut w = world(Mode::Tron);
    w.put(1, &[(2, 1)], Dir::Right);
    w.put(2, &[(2, 3)], Dir::Right);
    let ev = w.step(&[SimInput::Join {
        id: 3,
        name: "c".into(),
    }]);
    assert!(!ev.contains(&GameEvent::Respawned { id: 3 }));
    let s = w.state().snake(3).unwrap();
    assert!(!s.alive && s.respawn_in == 0);
}

#[test]
fn tron_boost_bar_drains_and_refills() {
    let mut w = world(Mode::Tron);
    w.put(1, &[(1, 1)], Dir::Right);
    w.step(&[SimInput::Boost { id: 1, on: true }]);
    assert_eq!(w.body(1).len(), 3, "boost moves two");
    assert_eq!(w.boost_bar(1), Some(7));
    w.step(&[SimInput::Boost { id: 1, on: false }]);
    for _ in 0..3 {
        w.step(&[]);
    }
    assert_eq!(w.boost_bar(1), Some(8));
}

#[test]
fn leave_removes_the_snake_and_drops_food() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(3, 2), (2, 2), (1, 2)], Dir::Right);
    let ev = w.step(&[SimInput::Leave { id: 1 }]);
    assert_eq!(ev, vec![GameEvent::Left { id: 1 }]);
    assert!(w.state().snake(1).is_none());
    assert_eq!(w.state().food, vec![p(1, 2), p(2, 2), p(3, 2)]);
    assert!(w.grid.iter().all(|&c| c == EMPTY));
}

#[test]
fn connected_sets_the_flag() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(3, 2), (2, 2), (1, 2)], Dir::Right);
    w.step(&[SimInput::Connected {
        id: 1,
        connected: false,
    }]);
    assert!(!w.state().snake(1).unwrap().connected);
}

/// A scripted pseudo-random input stream for up to 6 players.
fn scripted_inputs(r: &mut SplitMix64, present: &mut [bool; 6]) -> Vec<SimInput> {
    let mut inputs = Vec::new();
    for (k, here) in present.iter_mut().enumerate() {
        let id = k as PlayerId + 1;
        match r.below(100) {
            0 if *here => {
                *here = false;
                inputs.push(SimInput::Leave { id });
            }
            0..=2 if !*here => {
                *here = true;
                inputs.push(SimInput::Join {
                    id,
                    name: format!("p{id}"),
                });
            }
            3..=20 => inputs.push(turn(id, Dir::ALL[r.below(4)])),
            21..=22 => inputs.push(SimInput::Boost {
                id,
                on: r.below(2) == 0,
            }),
            _ => {}
        }
    }
    inputs
}

fn run(map: &str, mode: Mode, seed: u64, ticks: usize, check: bool) -> World {
    let m = protocol::map::builtin(map).unwrap();
    let mut w = World::new(m.clone(), SimConfig::for_map(mode, &m), seed);
    let mut r = SplitMix64::new(0x5eed);
    let mut present = [false; 6];
    let mut client = w.state().clone();
    for _ in 0..ticks {
        let inputs = scripted_inputs(&mut r, &mut present);
        w.step(&inputs);
        if check {
            check_invariants(&w);
            // A client following deltas rebuilds the exact world.
            let d = w.state().diff(&client);
            client.apply(&d).unwrap();
            client.tick = w.state().tick;
            assert_eq!(&client, w.state());
        }
    }
    w
}

#[test]
fn same_seed_same_world_after_10k_ticks() {
    // `a` also follows the deltas as a client would (and checks invariants).
    let a = run("arena", Mode::Snake, 42, 10_000, true);
    let b = run("arena", Mode::Snake, 42, 10_000, false);
    assert_eq!(a.state(), b.state());
    assert_eq!(a.state().checksum(), b.state().checksum());
    assert!(a.state().snakes.iter().map(|s| s.score.deaths).sum::<u32>() > 0);
    let c = run("arena", Mode::Snake, 43, 10_000, false);
    assert_ne!(a.state().checksum(), c.state().checksum());
}

#[test]
fn tron_is_deterministic_too() {
    let a = run("arena", Mode::Tron, 5, 2_000, true);
    let b = run("arena", Mode::Tron, 5, 2_000, false);
    assert_eq!(a.state().checksum(), b.state().checksum());
    assert!(a.state().round > 0, "rounds were played");
}

/// Every invariant the state and the occupancy grid promise.
fn check_invariants(w: &World) {
    let st = w.state();
    let (mw, mh) = (w.map().width, w.map().height);
    assert!(st.snakes.windows(2).all(|p| p[0].id < p[1].id), "sorted");
    assert!(
        st.food.windows(2).all(|p| p[0] < p[1]),
        "food sorted, unique"
    );
    let mut owner = vec![EMPTY; w.map().area()];
    for s in &st.snakes {
        assert_eq!(s.score.length as usize, s.body.len());
        assert!(s.score.best >= s.score.length);
        assert_eq!(s.alive, !s.body.is_empty(), "{s:?}");
        for (k, &c) in s.body.iter().enumerate() {
            assert!(!w.map().is_wall(c), "body in wall");
            let i = w.map_cell(c);
            assert_eq!(owner[i], EMPTY, "two bodies share {c:?}");
            owner[i] = s.id;
            if k > 0 {
                let prev = s.body[k - 1];
                assert!(
                    Dir::ALL.iter().any(|&d| prev.step(d, mw, mh) == c),
                    "body not 4-adjacent"
                );
            }
        }
    }
    assert_eq!(owner, w.grid, "occupancy grid matches bodies");
    for f in &st.food {
        assert!(!w.map().is_wall(*f), "food in wall");
        assert_eq!(owner[w.map_cell(*f)], EMPTY, "food on a body");
    }
    assert_eq!(st.food.len(), w.food_count);
}

#[test]
fn invariants_hold_on_a_crowded_small_map() {
    run("small", Mode::Snake, 3, 3_000, true);
    run("small", Mode::Tron, 3, 3_000, true);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn invariants_hold_for_random_inputs(
            seed in any::<u64>(),
            tron in any::<bool>(),
            script in prop::collection::vec((0u8..6, 0u8..8), 200 * 3),
        ) {
            let mode = if tron { Mode::Tron } else { Mode::Snake };
            let m = protocol::map::builtin("small").unwrap();
            let mut w = World::new(m.clone(), SimConfig::for_map(mode, &m), seed);
            for chunk in script.chunks(3) {
                let inputs: Vec<SimInput> = chunk
                    .iter()
                    .map(|&(who, what)| {
                        let id = who as PlayerId + 1;
                        match what {
                            0..=3 => turn(id, Dir::ALL[what as usize]),
                            4 => SimInput::Join { id, name: "x".into() },
                            5 => SimInput::Leave { id },
                            _ => SimInput::Boost { id, on: what == 6 },
                        }
                    })
                    .collect();
                w.step(&inputs);
                check_invariants(&w);
                let heads: Vec<Pos> = w.state().snakes.iter().filter_map(|s| s.head()).collect();
                let mut sorted = heads.clone();
                sorted.sort();
                sorted.dedup();
                prop_assert_eq!(sorted.len(), heads.len(), "two live heads in one cell");
            }
        }
    }
}

#[test]
fn tron_dead_rider_trail_is_removed_while_the_round_goes_on() {
    let mut w = world(Mode::Tron);
    w.put(1, &[(8, 1), (7, 1)], Dir::Right);
    w.put(2, &[(2, 2)], Dir::Right);
    w.put(3, &[(2, 4)], Dir::Right);
    let ev = w.step(&[]);
    assert_eq!(died(&ev, 1), Some((None, DeathCause::Wall)));
    assert!(!ev.iter().any(|e| matches!(e, GameEvent::RoundOver { .. })));
    assert!(w.body(1).is_empty());
    assert_eq!(w.grid[w.map_cell(p(7, 1))], EMPTY);
    assert!(w.state().food.is_empty(), "tron has no food");
}

#[test]
fn spawned_snake_heads_into_open_space() {
    for seed in 0..20 {
        let mut w = World::new(Map::parse(BOX, "box").unwrap(), cfg(Mode::Snake), seed);
        w.step(&[SimInput::Join {
            id: 1,
            name: "a".into(),
        }]);
        for _ in 0..5 {
            w.step(&[]);
        }
        assert!(w.state().snake(1).unwrap().alive, "seed {seed}");
    }
}

#[test]
fn spawn_falls_back_to_free_floor_when_spawn_points_are_taken() {
    let map = Map::parse("#######\n#0....#\n#.....#\n#######\n", "t").unwrap();
    let mut w = World::new(map, cfg(Mode::Snake), 3);
    w.put(1, &[(1, 1), (1, 2), (2, 2)], Dir::Up);
    let ev = w.step(&[
        SimInput::Join {
            id: 2,
            name: "b".into(),
        },
        turn(1, Dir::Right),
    ]);
    // Snake 1 moved off the spawn point to (2,1); its tail left (2,2).
    assert!(ev.contains(&GameEvent::Respawned { id: 2 }), "{ev:?}");
    let b = w.body(2);
    assert!(!b.is_empty());
    for c in &b {
        assert!(!w.body(1).contains(c));
    }
    check_invariants(&w);
}

/// `cargo test -p game-server --release sim::tests::step_cost -- --ignored --nocapture`
#[test]
#[ignore = "timing, run by hand in release"]
fn step_cost_16_snakes_on_big_map() {
    let m = protocol::map::builtin("big").unwrap();
    let mut w = World::new(m.clone(), SimConfig::for_map(Mode::Snake, &m), 1);
    let joins: Vec<SimInput> = (1..=16)
        .map(|id| SimInput::Join {
            id,
            name: format!("p{id}"),
        })
        .collect();
    w.step(&joins);
    let mut r = SplitMix64::new(2);
    let ticks = 100_000;
    let t0 = std::time::Instant::now();
    for _ in 0..ticks {
        let id = r.below(16) as PlayerId + 1;
        w.step(&[turn(id, Dir::ALL[r.below(4)])]);
    }
    let per = t0.elapsed() / ticks;
    println!(
        "{:?} per step, {} alive, {} food",
        per,
        w.state().snakes.iter().filter(|s| s.alive).count(),
        w.state().food.len()
    );
}

fn held_world(hold: u16) -> World {
    let cfg = SimConfig {
        spawn_hold: hold,
        food: 0,
        ..cfg(Mode::Snake)
    };
    let mut w = World::new(Map::parse(BOX, "box").unwrap(), cfg, 1);
    w.step(&[SimInput::Join {
        id: 1,
        name: "a".into(),
    }]);
    assert!(w.state().snake(1).unwrap().alive);
    w
}

#[test]
fn a_snake_that_never_steers_is_parked_then_comes_back_on_a_key() {
    let mut w = held_world(3);
    let at_spawn = w.state().snake(1).unwrap().body.clone();
    for _ in 0..3 {
        w.step(&[]);
        assert_eq!(
            w.state().snake(1).unwrap().body,
            at_spawn,
            "moved while held"
        );
    }
    // Out of patience: off the arena, no death, no food, cells free.
    let ev = w.step(&[]);
    assert!(ev.is_empty(), "{ev:?}");
    let s = w.state().snake(1).unwrap();
    assert!(!s.alive && s.body.is_empty() && s.respawn_in == 0, "{s:?}");
    assert_eq!(s.score.deaths, 0);
    assert!(w.state().food.is_empty());
    assert!(w.grid.iter().all(|&c| c == EMPTY));
    // It stays parked, however long nobody presses a key.
    for _ in 0..50 {
        assert!(w.step(&[]).is_empty());
    }
    assert!(!w.state().snake(1).unwrap().alive);
    // A key brings it back at a spawn point, waiting again.
    let ev = w.step(&[turn(1, Dir::Left)]);
    assert_eq!(ev, vec![GameEvent::Respawned { id: 1 }]);
    let back = w.state().snake(1).unwrap().body.clone();
    w.step(&[]);
    assert_eq!(w.state().snake(1).unwrap().body, back, "waits again");
    check_invariants(&w);
}

#[test]
fn a_steer_or_boost_ends_the_wait_at_once() {
    let mut w = held_world(100);
    let s = w.state().snake(1).unwrap();
    let (head, dir) = (s.body[0], s.dir);
    // Even a reversal (itself ignored) ends the wait: the snake goes on.
    w.step(&[turn(1, dir.opposite())]);
    let s = w.state().snake(1).unwrap();
    assert_eq!(
        (s.alive, s.dir, s.body[0]),
        (true, dir, head.step(dir, 10, 6))
    );

    let mut w = held_world(100);
    let at_spawn = w.state().snake(1).unwrap().body.clone();
    w.step(&[SimInput::Boost { id: 1, on: true }]);
    assert_ne!(w.state().snake(1).unwrap().body, at_spawn);
}

#[test]
fn tron_riders_never_wait() {
    let mut w = World::new(
        Map::parse(BOX, "box").unwrap(),
        SimConfig {
            spawn_hold: 100,
            ..cfg(Mode::Tron)
        },
        1,
    );
    w.step(&[
        SimInput::Join {
            id: 1,
            name: "a".into(),
        },
        SimInput::Join {
            id: 2,
            name: "b".into(),
        },
    ]);
    let before = w.state().snake(1).unwrap().body.clone();
    w.step(&[]);
    assert_ne!(w.state().snake(1).unwrap().body, before);
}

/// A world on `map` whose snakes move `speed` cells a second at `rate` Hz.
fn paced(map: &str, mode: Mode, rate: u32, speed: u32, seed: u64) -> World {
    let m = protocol::map::builtin(map).unwrap();
    World::new(m.clone(), SimConfig::for_room(mode, &m, rate, speed), seed)
}

/// Scripted players over `ticks` at an odd pace; a client rebuilding the
/// world from the deltas checks every checksum. Returns the world and
/// how many deltas were empty.
fn run_paced(mode: Mode, rate: u32, speed: u32, seed: u64, ticks: usize) -> (World, usize) {
    let mut w = paced("arena", mode, rate, speed, seed);
    let mut r = SplitMix64::new(0x5eed);
    let mut present = [false; 6];
    let mut client = w.state().clone();
    let mut empty = 0;
    for _ in 0..ticks {
        let inputs = scripted_inputs(&mut r, &mut present);
        w.step(&inputs);
        check_invariants(&w);
        let d = w.state().diff(&client);
        empty += usize::from(d == protocol::Delta::default());
        client.apply(&d).unwrap();
        client.tick = w.state().tick;
        assert_eq!(
            client.checksum(),
            w.state().checksum(),
            "tick {}",
            client.tick
        );
        assert_eq!(&client, w.state());
    }
    (w, empty)
}

#[test]
fn sub_tick_speeds_are_deterministic_and_rebuild_from_deltas() {
    for (mode, rate, speed) in [
        (Mode::Snake, 20, 7),
        (Mode::Snake, 30, 13),
        (Mode::Snake, 7, 30),
        (Mode::Tron, 20, 11),
    ] {
        let (a, _) = run_paced(mode, rate, speed, 9, 4_000);
        let (b, _) = run_paced(mode, rate, speed, 9, 4_000);
        assert_eq!(a.state(), b.state(), "{mode:?} {speed}/{rate}");
        assert_eq!(a.state().checksum(), b.state().checksum());
        let moved: u32 = a.state().snakes.iter().map(|s| s.score.best).sum();
        assert!(moved > 0, "nobody played");
    }
}

#[test]
fn a_lone_snake_moves_exactly_its_speed() {
    // 7 cells a second at 20 Hz: 7 cells in 20 ticks, 0 or 1 per tick.
    let mut w = World::new(
        Map::parse(BOX, "box").unwrap(),
        SimConfig {
            tick_rate: 20,
            speed: 7,
            boost_speed: 14,
            ..cfg(Mode::Tron)
        },
        1,
    );
    w.put(1, &[(1, 1)], Dir::Right);
    let mut per_tick = Vec::new();
    for _ in 0..20 {
        let before = w.body(1).len();
        w.step(&[]);
        per_tick.push(w.body(1).len() - before);
    }
    // Row 1 has floor from x=1 to x=8: exactly 7 cells to the wall.
    assert_eq!(w.body(1)[0], p(8, 1), "{per_tick:?}");
    assert!(per_tick.iter().all(|&c| c <= 1), "{per_tick:?}");
    assert!(w.state().snake(1).unwrap().alive);
}

#[test]
fn a_tick_without_a_move_is_an_empty_delta() {
    // 10 cells a second at 20 Hz: a move every other tick.
    let mut w = World::new(
        Map::parse(BOX, "box").unwrap(),
        SimConfig {
            tick_rate: 20,
            speed: 10,
            boost_speed: 20,
            ..cfg(Mode::Snake)
        },
        1,
    );
    w.put(1, &[(3, 1), (2, 1), (1, 1)], Dir::Right);
    w.put(2, &[(3, 4), (2, 4), (1, 4)], Dir::Right);
    let mut client = w.state().clone();
    let mut kinds = Vec::new();
    for t in 0..6 {
        // A turn queued on a still tick waits for the next cell.
        let inputs = if t == 0 {
            vec![turn(2, Dir::Up)]
        } else {
            vec![]
        };
        let ev = w.step(&inputs);
        assert!(ev.is_empty(), "{ev:?}");
        let d = w.state().diff(&client);
        kinds.push(d == protocol::Delta::default());
        client.apply(&d).unwrap();
        client.tick = w.state().tick;
        assert_eq!(client.checksum(), w.state().checksum());
    }
    assert_eq!(kinds, [true, false, true, false, true, false]);
    assert_eq!(w.body(1)[0], p(6, 1));
    assert_eq!(w.body(2)[0], p(3, 1), "turned up on its first cell");
}

#[test]
fn a_quick_double_turn_is_two_cells() {
    let mut w = world(Mode::Snake);
    w.put(1, &[(3, 3), (2, 3), (1, 3)], Dir::Right);
    w.step(&[turn(1, Dir::Up), turn(1, Dir::Left)]);
    w.step(&[]);
    assert_eq!(w.body(1), vec![p(2, 2), p(3, 2), p(3, 3)]);
}

#[test]
fn a_spawn_is_chosen_away_from_live_heads() {
    // Two spawn points; a head next to one of them.
    for seed in 0..20 {
        let mut w = World::new(Map::parse(BOX, "box").unwrap(), cfg(Mode::Snake), seed);
        w.put(1, &[(2, 2), (3, 2), (4, 2)], Dir::Left);
        w.step(&[SimInput::Join {
            id: 2,
            name: "b".into(),
        }]);
        assert_eq!(w.body(2)[0], p(8, 4), "seed {seed}");
    }
}

#[test]
fn room_defaults_keep_seconds_at_any_tick_rate() {
    let m = protocol::map::builtin("arena").unwrap();
    let at20 = SimConfig::for_room(Mode::Snake, &m, 20, 10);
    let at60 = SimConfig::for_room(Mode::Snake, &m, 60, 10);
    assert_eq!(at60.respawn_ticks, 3 * at20.respawn_ticks);
    assert_eq!(at60.spawn_hold, 3 * at20.spawn_hold);
    assert_eq!(at20.boost_speed, 20);
    assert_eq!(SimConfig::for_map(Mode::Tron, &m).spawn_hold, 0);
}
