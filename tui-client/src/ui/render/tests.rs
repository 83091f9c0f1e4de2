//! Snapshot tests of every screen, drawn into a plain buffer (what
//! ratatui's `TestBackend` holds) and compared as text with insta, plus
//! checks of what text cannot show: colors, highlight, cursor.

use crossterm::event::{KeyCode, KeyEvent};
use protocol::api::RoomInfo;
use protocol::{
    ChatLine, DeathCause, Dir, GameEvent, Map, Mode, Pos, Score, ServerMsg, SnakeState, Snapshot,
    TickFrame, Welcome, WorldState,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};

use crate::client::{ClientEvent, ClosedReason};
use crate::lag::testkit::{Timeline, snapshot as lag};
use crate::ui::app::{App, CreateForm, Screen, Session};
use crate::ui::theme::{ColorMode, Theme};

fn session(embedded: bool) -> Session {
    Session {
        server: "http://127.0.0.1:7878".into(),
        embedded,
        transport: "ws",
        name: "alice".into(),
        has_lobby: !embedded,
        watch: false,
        conditioner: None,
    }
}

fn welcome(me: Option<u32>, map: &str) -> Welcome {
    Welcome {
        player_id: me,
        session: "s1".into(),
        token: "t1".into(),
        room: "lobby".into(),
        mode: Mode::Snake,
        tick_rate: 20,
        speed: 10,
        map: protocol::map::builtin(map).expect("built-in map"),
        resumed: false,
        name: "alice".into(),
        server_time_us: 0,
    }
}

fn snake(
    id: u32,
    name: &str,
    cells: &[(u16, u16)],
    dir: Dir,
    score: (u32, u32, u32),
) -> SnakeState {
    SnakeState {
        id,
        name: name.into(),
        body: cells.iter().map(|&(x, y)| Pos::new(x, y)).collect(),
        dir,
        alive: !cells.is_empty(),
        respawn_in: 0,
        boost: false,
        connected: true,
        score: Score {
            length: cells.len() as u32,
            kills: score.0,
            deaths: score.1,
            best: score.2,
            wins: 0,
        },
    }
}

fn world() -> WorldState {
    let mut w = WorldState::new(Mode::Snake);
    w.tick = 1234;
    w.snakes = vec![
        snake(
            1,
            "alice",
            &[(10, 5), (9, 5), (8, 5), (7, 5), (7, 6)],
            Dir::Right,
            (2, 1, 9),
        ),
        snake(
            2,
            "bot-1",
            &[(20, 10), (20, 11), (20, 12)],
            Dir::Up,
            (0, 3, 7),
        ),
        // Escape sequences in a name must arrive inert.
        snake(3, "evil\x1b[31m", &[(4, 12), (5, 12)], Dir::Left, (1, 0, 4)),
    ];
    w.food = vec![Pos::new(14, 5), Pos::new(25, 3), Pos::new(3, 2)];
    w
}

fn snapshot_msg(state: WorldState) -> ServerMsg {
    ServerMsg::Snapshot(Box::new(Snapshot {
        ack: 0,
        tick: state.tick,
        checksum: state.checksum(),
        server_time_us: 0,
        state,
    }))
}

/// A game as player 1 (or spectator with `me: None`) in the small map.
fn game(me: Option<u32>, colors: ColorMode, ascii: bool) -> App {
    let mut app = App::new(
        session(true),
        Theme::new(colors, ascii),
        Some("lobby".into()),
        me.is_none(),
    );
    app.on_client(ClientEvent::Welcome(Box::new(welcome(me, "small"))));
    // A frame before, with alice one cell back: she is under way, not
    // waiting at her spawn point.
    let mut before = world();
    before.tick -= 1;
    before.snakes[0].body = [(9, 5), (8, 5), (7, 5), (7, 6), (7, 7)]
        .iter()
        .map(|&(x, y)| Pos::new(x, y))
        .collect();
    app.on_client(ClientEvent::Server(snapshot_msg(before)));
    app.on_client(ClientEvent::Server(snapshot_msg(world())));
    app.on_client(ClientEvent::Lag(Box::new(lag(Timeline::default()))));
    app.on_client(ClientEvent::Server(ServerMsg::Chat(ChatLine {
        from: "bot-1".into(),
        text: "hello \x1b]0;pwned\x07there".into(),
    })));
    app.room_info = Some(RoomInfo {
        id: "lobby".into(),
        mode: Mode::Snake,
        map: "small".into(),
        players: 3,
        spectators: 2,
        max_players: 16,
        tick_rate: 20,
        speed: 10,
        tick: 1234,
    });
    app
}

fn draw(app: &App, w: u16, h: u16) -> Buffer {
    let area = Rect::new(0, 0, w, h);
    let mut buf = Buffer::empty(area);
    super::render(app, area, &mut buf);
    buf
}

fn text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in 0..area.height {
        let line: String = (0..area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn screen(app: &App, w: u16, h: u16) -> String {
    text(&draw(app, w, h))
}

#[test]
fn game_120x40() {
    let app = game(Some(1), ColorMode::Ansi16, false);
    insta::assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn a_fresh_snake_says_how_to_start_until_it_moves() {
    let mut app = App::new(
        session(true),
        Theme::new(ColorMode::Ansi16, false),
        Some("lobby".into()),
        false,
    );
    app.on_client(ClientEvent::Welcome(Box::new(welcome(Some(1), "small"))));
    let spawned = world();
    app.on_client(ClientEvent::Server(snapshot_msg(spawned.clone())));
    assert!(screen(&app, 120, 40).contains("steer to start"));
    // Still at the spawn point a tick later: still waiting.
    let mut held = spawned.clone();
    held.tick += 1;
    app.on_client(ClientEvent::Server(snapshot_msg(held.clone())));
    assert!(screen(&app, 120, 40).contains("steer to start"));
    let mut moved = held;
    moved.tick += 1;
    moved.snakes[0].body.push_front(Pos::new(11, 5));
    moved.snakes[0].body.pop_back();
    app.on_client(ClientEvent::Server(snapshot_msg(moved)));
    assert!(!screen(&app, 120, 40).contains("steer to start"));
}

#[test]
fn game_60x20_follows_our_snake() {
    let app = game(Some(1), ColorMode::Ansi16, false);
    insta::assert_snapshot!(screen(&app, 60, 20));
}

#[test]
fn game_ascii() {
    let app = game(Some(1), ColorMode::None, true);
    let s = screen(&app, 100, 30);
    assert!(s.is_ascii(), "--ascii draws only ASCII:\n{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn typing_chat_shows_the_prompt_and_cursor() {
    let mut app = game(Some(1), ColorMode::Ansi16, false);
    press(&mut app, KeyCode::Enter);
    for c in "gg all".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    let area = Rect::new(0, 0, 120, 40);
    let mut buf = Buffer::empty(area);
    let cursor = super::render(&app, area, &mut buf);
    assert!(cursor.is_some(), "the cursor sits in the chat prompt");
    insta::assert_snapshot!(text(&buf));
}

fn press(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::from(code));
}

#[test]
fn help_overlay() {
    let mut app = game(Some(1), ColorMode::Ansi16, false);
    press(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn quit_asks_while_playing() {
    let mut app = game(Some(1), ColorMode::Ansi16, false);
    press(&mut app, KeyCode::Char('q'));
    assert!(!app.quit);
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn death_and_respawn_countdown() {
    let mut app = game(Some(1), ColorMode::Ansi16, false);
    let mut w = world();
    w.tick = 1235;
    let before = w.clone();
    w.snakes[0].body.clear();
    w.snakes[0].alive = false;
    w.snakes[0].respawn_in = 30;
    w.snakes[0].score.length = 0;
    w.snakes[0].score.deaths += 1;
    w.snakes[1].score.kills += 1;
    let delta = w.diff(&before);
    app.on_client(ClientEvent::Server(ServerMsg::Tick(Box::new(TickFrame {
        ack: 0,
        tick: 1235,
        checksum: w.checksum(),
        server_time_us: 0,
        delta,
        events: vec![GameEvent::Died {
            id: 1,
            killer: Some(2),
            cause: DeathCause::Body,
        }],
    }))));
    assert_eq!(app.view.as_ref().unwrap().tick(), 1235, "the delta applied");
    let s = screen(&app, 120, 40);
    assert!(s.contains("respawn in 1.5 s"), "{s}");
    assert!(s.contains("bot-1 got you"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn reconnecting_banner_keeps_the_world() {
    let mut app = game(Some(1), ColorMode::Ansi16, false);
    app.on_client(ClientEvent::Disconnected {
        reason: "connection reset".into(),
        retrying: true,
    });
    app.on_client(ClientEvent::Connecting { attempt: 3 });
    insta::assert_snapshot!(screen(&app, 100, 30));
}

#[test]
fn spectator_follows_and_cycles() {
    let mut app = game(None, ColorMode::Ansi16, false);
    assert_eq!(app.followed_snake().map(|s| s.id), Some(1));
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.followed_snake().map(|s| s.id), Some(2));
    insta::assert_snapshot!(screen(&app, 60, 20));
    press(&mut app, KeyCode::Left);
    assert!(matches!(app.camera, crate::ui::app::Camera::Free(_)));
    assert!(screen(&app, 60, 20).contains("free camera"));
}

fn rooms() -> Vec<RoomInfo> {
    vec![
        RoomInfo {
            id: "lobby".into(),
            mode: Mode::Snake,
            map: "arena".into(),
            players: 4,
            spectators: 1,
            max_players: 16,
            tick_rate: 20,
            speed: 10,
            tick: 100,
        },
        RoomInfo {
            id: "duel".into(),
            mode: Mode::Tron,
            map: "maze".into(),
            players: 2,
            spectators: 0,
            max_players: 2,
            tick_rate: 30,
            speed: 10,
            tick: 5,
        },
    ]
}

#[test]
fn lobby_lists_rooms() {
    let mut app = App::new(
        session(false),
        Theme::new(ColorMode::Ansi16, false),
        None,
        false,
    );
    assert_eq!(app.screen, Screen::Lobby);
    insta::assert_snapshot!("lobby_loading", screen(&app, 80, 24));
    app.on_rooms(Ok(rooms()));
    press(&mut app, KeyCode::Down);
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn lobby_create_form() {
    let mut app = App::new(
        session(false),
        Theme::new(ColorMode::Ansi16, false),
        None,
        false,
    );
    app.on_rooms(Ok(rooms()));
    app.lobby.create = Some(CreateForm {
        id: "party".into(),
        mode: Mode::Tron,
        map: 2,
        speed: None,
    });
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn connecting_screen() {
    let mut app = App::new(
        session(false),
        Theme::new(ColorMode::Ansi16, false),
        Some("lobby".into()),
        false,
    );
    app.on_client(ClientEvent::Connecting { attempt: 2 });
    insta::assert_snapshot!(screen(&app, 60, 20));
}

#[test]
fn errors_are_screens() {
    let mut app = App::new(
        session(false),
        Theme::new(ColorMode::Ansi16, false),
        Some("lobby".into()),
        false,
    );
    app.on_client(ClientEvent::Closed {
        reason: ClosedReason::Refused {
            code: "room_full".into(),
            message: "room lobby is full (16 players)".into(),
        },
    });
    insta::assert_snapshot!("error_room_full", screen(&app, 60, 20));
    app.on_client(ClientEvent::Closed {
        reason: ClosedReason::Unreachable("connection refused".into()),
    });
    insta::assert_snapshot!("error_unreachable", screen(&app, 60, 20));
    for (code, title) in [
        ("version_mismatch", "Version mismatch"),
        ("kicked", "Kicked"),
    ] {
        app.on_client(ClientEvent::Closed {
            reason: ClosedReason::Refused {
                code: code.into(),
                message: "x".into(),
            },
        });
        assert!(screen(&app, 60, 20).contains(title), "{code}");
    }
}

#[test]
fn a_version_mismatch_names_both_versions() {
    let mut app = game(Some(1), ColorMode::Ansi16, false);
    app.on_client(ClientEvent::Closed {
        reason: ClosedReason::Refused {
            code: "version_mismatch".into(),
            // What a server of this version tells a version 1 client.
            message: protocol::version_mismatch(1),
        },
    });
    let shown = screen(&app, 100, 24);
    assert!(shown.contains("Version mismatch"), "{shown}");
    assert!(
        shown.contains("this server speaks protocol 2; you have 1"),
        "{shown}"
    );
}

#[test]
fn too_small_says_so() {
    let mut app = game(Some(1), ColorMode::Ansi16, false);
    insta::assert_snapshot!(screen(&app, 50, 15));
    press(&mut app, KeyCode::Char('q'));
    assert!(screen(&app, 50, 15).contains("Quit? y / n"));
}

#[test]
fn our_snake_is_highlighted_and_colors_follow_the_mode() {
    let app = game(Some(1), ColorMode::TrueColor, false);
    let buf = draw(&app, 120, 40);
    // Arena inner area starts at (1,1); the small map fits, centred.
    let fg: Vec<Color> = buf.content.iter().map(|c| c.fg).collect();
    assert!(
        fg.iter().any(|c| matches!(c, Color::Rgb(..))),
        "truecolor uses RGB"
    );
    let heads: Vec<_> = buf
        .content
        .iter()
        .filter(|c| c.symbol() == "▓")
        .map(|c| c.modifier)
        .collect();
    assert!(heads.iter().all(|m| m.contains(Modifier::BOLD)));
    // Our head (alice, id 1, at map (10,5)) is white; the small map is
    // centred in the 84x37 arena: origin x = -(42-32)/2 = -5, y = -(37-16)/2 = -10.
    let (x, y) = (1 + (10 + 5) * 2, 1 + 5 + 10);
    assert_eq!(buf[(x, y)].symbol(), "▓");
    assert_eq!(buf[(x, y)].fg, Color::Rgb(255, 255, 255));
    let other = buf
        .content
        .iter()
        .filter(|c| c.symbol() == "▓" && c.fg != Color::Rgb(255, 255, 255))
        .count();
    assert_eq!(other, 4, "two other heads, two columns each");

    let mono = game(Some(1), ColorMode::None, false);
    let buf = draw(&mono, 120, 40);
    assert!(
        buf.content
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "NO_COLOR: no colors at all"
    );
    let s = text(&buf);
    // Shapes alone: walls blocks, food half blocks, us [] @@, others oo OO.
    for shape in ["██", "▐▌", "[][]", "@@", "oo", "OO"] {
        assert!(s.contains(shape), "NO_COLOR draws {shape}:\n{s}");
    }
}

#[test]
fn sixteen_colors_tell_food_us_others_and_walls_apart() {
    let app = game(Some(1), ColorMode::Ansi16, false);
    let buf = draw(&app, 120, 40);
    let fg_of = |symbol: &str| -> Vec<Color> {
        let mut v: Vec<Color> = buf
            .content
            .iter()
            .filter(|c| c.symbol() == symbol)
            .map(|c| c.fg)
            .collect();
        v.sort_by_key(|c| format!("{c:?}"));
        v.dedup();
        v
    };
    // Food: red, and only food is.
    assert_eq!(fg_of("▐"), vec![Color::LightRed]);
    // Bodies: ours green, the others neither green nor red nor gray.
    let bodies = fg_of("█");
    assert!(bodies.contains(&Color::LightGreen), "{bodies:?}");
    assert!(bodies.contains(&Color::DarkGray), "walls: {bodies:?}");
    for c in &bodies {
        assert!(
            !matches!(c, Color::LightRed | Color::Red | Color::Green),
            "{c:?}"
        );
    }
    assert!(bodies.len() >= 4, "ours, walls and two others: {bodies:?}");
}

/// A frame after `w`'s tick that kills player 1 with `events`.
fn kill(app: &mut App, events: Vec<GameEvent>, respawn_in: u16) {
    let mut w = world();
    let before = w.clone();
    w.tick += 1;
    w.snakes[0].body.clear();
    w.snakes[0].alive = false;
    w.snakes[0].respawn_in = respawn_in;
    w.snakes[0].score.length = 0;
    let delta = w.diff(&before);
    app.on_client(ClientEvent::Server(ServerMsg::Tick(Box::new(TickFrame {
        ack: 0,
        tick: w.tick,
        checksum: w.checksum(),
        server_time_us: 0,
        delta,
        events,
    }))));
}

#[test]
fn the_death_notice_names_the_other_driver_of_a_head_on_crash() {
    let mut app = game(Some(1), ColorMode::Ansi16, false);
    let head_on = |id| GameEvent::Died {
        id,
        killer: None,
        cause: DeathCause::HeadOn,
    };
    kill(&mut app, vec![head_on(1), head_on(2)], 30);
    let s = screen(&app, 120, 40);
    assert!(s.contains("you met bot-1 head-on"), "{s}");
    let mut app = game(Some(1), ColorMode::Ansi16, false);
    kill(
        &mut app,
        vec![GameEvent::Died {
            id: 1,
            killer: None,
            cause: DeathCause::Wall,
        }],
        30,
    );
    assert!(screen(&app, 120, 40).contains("you hit a wall"));
}

#[test]
fn a_fresh_snake_shows_how_to_play() {
    let mut app = App::new(
        session(true),
        Theme::new(ColorMode::Ansi16, false),
        Some("lobby".into()),
        false,
    );
    app.on_client(ClientEvent::Welcome(Box::new(welcome(Some(1), "small"))));
    app.on_client(ClientEvent::Server(snapshot_msg(world())));
    let s = screen(&app, 120, 40);
    assert!(s.contains("eat ▐▌ to grow"), "{s}");
    insta::assert_snapshot!(s);
    // 60x20 still says it, wrapped.
    let small = screen(&app, 60, 20);
    assert!(small.contains("steer to start"), "{small}");
    insta::assert_snapshot!("a_fresh_snake_shows_how_to_play_60x20", small);
}

#[test]
fn a_parked_snake_says_a_key_brings_it_back() {
    let mut app = game(Some(1), ColorMode::Ansi16, false);
    kill(&mut app, vec![], 0);
    let s = screen(&app, 120, 40);
    assert!(
        s.contains("Parked") && s.contains("press an arrow key"),
        "{s}"
    );
    assert!(!s.contains("You died"), "{s}");
    insta::assert_snapshot!(s);
    // The key the snake faces (right) still starts it: sent as a reversal.
    assert_eq!(
        app.on_key(KeyEvent::from(KeyCode::Right)),
        Some(crate::ui::app::Effect::Steer(Dir::Left))
    );
}

#[test]
fn player_text_is_sanitised_on_screen() {
    let app = game(Some(1), ColorMode::Ansi16, false);
    let s = screen(&app, 120, 40);
    assert!(!s.contains('\x1b') && !s.contains('\x07'), "{s}");
    assert!(s.contains("hello there"), "{s}");
}

#[test]
fn test_backend_draws_the_same_frame() {
    let app = game(Some(1), ColorMode::Ansi16, false);
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| super::draw(&app, f)).unwrap();
    assert_eq!(terminal.backend().buffer(), &draw(&app, 80, 24));
}

#[test]
fn map_fixture_is_the_small_map() {
    let m: Map = protocol::map::builtin("small").unwrap();
    assert_eq!((m.width, m.height), (32, 16));
}

#[test]
fn a_slow_round_trip_turns_the_rtt_red() {
    let mut app = game(Some(1), ColorMode::Ansi16, false);
    let rtt_cell = |app: &App| {
        let buf = draw(app, 120, 40);
        let y = 39;
        let line: String = (0..120).map(|x| buf[(x, y)].symbol().to_string()).collect();
        let x = line.find("RTT").map(|i| line[..i].chars().count()).unwrap() as u16;
        buf[(x, y)].fg
    };
    assert_eq!(rtt_cell(&app), Color::Reset, "12 ms is fine");
    let slow = Timeline {
        rtt_ms: 300,
        ..Timeline::default()
    };
    let slow = lag(slow);
    let shown = format!("RTT {} ms", super::figures::ms(slow.window.rtt.p50_us));
    app.on_client(ClientEvent::Lag(Box::new(slow)));
    assert_eq!(rtt_cell(&app), Color::LightRed);
    assert!(screen(&app, 120, 40).contains(&shown), "{shown}");
}

#[test]
fn the_hud_colors_frame_age_and_input_latency_by_their_thresholds() {
    let mut app = game(Some(1), ColorMode::Ansi16, false);
    let slow = Timeline {
        age_ms: 300,
        input_ms: 180,
        ..Timeline::default()
    };
    app.on_client(ClientEvent::Lag(Box::new(lag(slow))));
    let buf = draw(&app, 120, 40);
    let line: String = (0..120)
        .map(|x| buf[(x, 39)].symbol().to_string())
        .collect();
    let fg_of = |word: &str| {
        let x = line.find(word).map(|i| line[..i].chars().count()).unwrap() as u16;
        buf[(x, 39)].fg
    };
    assert_eq!(fg_of("age"), Color::LightRed, "{line}");
    assert_eq!(fg_of("input"), Color::LightYellow, "{line}");
    assert_eq!(fg_of("RTT"), Color::Reset, "{line}");
}

#[test]
fn net_panel_shows_the_last_minute() {
    let mut app = game(Some(1), ColorMode::Ansi16, false);
    press(&mut app, KeyCode::Char('n'));
    assert!(app.net_panel);
    let s = screen(&app, 120, 40);
    for word in [
        "Net", "RTT", "age", "input", "jitter", "down", "req/s", "offset",
    ] {
        assert!(s.contains(word), "{word}:\n{s}");
    }
    insta::assert_snapshot!(s);
    insta::assert_snapshot!("net_panel_60x20", screen(&app, 60, 20));
    let mut watcher = game(None, ColorMode::Ansi16, false);
    press(&mut watcher, KeyCode::Char('n'));
    assert!(screen(&watcher, 120, 40).contains("(no upstream)"));
}

/// A compare view with four observers measured along plausible timelines.
fn compare(colors: ColorMode, ascii: bool) -> App {
    use crate::bot::{BotPhase, BotUpdate};
    let mut app = App::new(session(false), Theme::new(colors, ascii), None, false);
    app.start_compare("lobby".into());
    let timelines = [
        (
            Timeline {
                rtt_ms: 1,
                age_ms: 1,
                input_ms: 52,
                ..Timeline::default()
            },
            BotPhase::Playing,
            7,
        ),
        (
            Timeline {
                rtt_ms: 2,
                age_ms: 1,
                input_ms: 0,
                bytes_per_s: 9_800,
                requests_per_s: 1,
                ..Timeline::default()
            },
            BotPhase::Watching,
            0,
        ),
        (
            Timeline {
                rtt_ms: 3,
                age_ms: 2,
                input_ms: 55,
                bytes_per_s: 14_500,
                requests_per_s: 21,
                ..Timeline::default()
            },
            BotPhase::Playing,
            4,
        ),
        (
            Timeline {
                rtt_ms: 130,
                age_ms: 10,
                input_ms: 170,
                burst: 5,
                bytes_per_s: 6_200,
                requests_per_s: 5,
                ..Timeline::default()
            },
            BotPhase::Reconnecting("reset".into()),
            0,
        ),
    ];
    for (i, (t, phase, length)) in timelines.into_iter().enumerate() {
        app.on_compare(BotUpdate {
            index: i,
            name: format!("cmp-{i}"),
            phase,
            lag: Some(Box::new(lag(t))),
            ticks_seen: 1400,
            desyncs: 0,
            length,
        });
    }
    app
}

#[test]
fn compare_view_120x40() {
    let app = compare(ColorMode::Ansi16, false);
    assert_eq!(app.screen, Screen::Compare);
    let s = screen(&app, 120, 40);
    for word in [
        "WebSocket",
        "SSE",
        "long-poll",
        "short poll",
        "no upstream",
        "GET /api/time",
    ] {
        assert!(s.contains(word), "{word}:\n{s}");
    }
    insta::assert_snapshot!(s);
}

#[test]
fn compare_view_degrades_on_small_terminals() {
    let app = compare(ColorMode::Ansi16, false);
    let s = screen(&app, 60, 20);
    // The core figures stay; less important rows go first.
    for word in [
        "RTT p50",
        "age p50",
        "age p99",
        "input p50",
        "jitter",
        "req/s",
        "down",
    ] {
        assert!(s.contains(word), "{word}:\n{s}");
    }
    insta::assert_snapshot!("compare_view_60x20", s);
    insta::assert_snapshot!("compare_view_80x24", screen(&app, 80, 24));
}

#[test]
fn compare_view_in_ascii_and_without_colors() {
    let app = compare(ColorMode::None, true);
    let s = screen(&app, 100, 30);
    assert!(s.is_ascii(), "--ascii draws only ASCII:\n{s}");
    let buf = draw(&app, 100, 30);
    assert!(
        buf.content
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "NO_COLOR: no colors at all"
    );
    insta::assert_snapshot!(s);
    // With colors, the slow short poll is yellow or red somewhere.
    let colored = draw(&compare(ColorMode::Ansi16, false), 120, 40);
    assert!(
        colored
            .content
            .iter()
            .any(|c| c.fg == Color::LightRed || c.fg == Color::LightYellow)
    );
}

#[test]
fn a_spectator_follows_the_longest_snake_until_it_dies() {
    let mut app = game(None, ColorMode::Ansi16, false);
    assert_eq!(app.followed, Some(1), "alice is the longest");
    // bot-1 grows past alice: the camera stays on alice while she lives.
    let mut w = world();
    w.tick += 1;
    w.snakes[1]
        .body
        .extend([Pos::new(20, 13), Pos::new(20, 14), Pos::new(20, 15)]);
    app.on_client(ClientEvent::Server(snapshot_msg(w.clone())));
    assert_eq!(app.followed, Some(1));
    // alice dies: the camera moves to the longest one alive.
    w.tick += 1;
    w.snakes[0].body.clear();
    w.snakes[0].alive = false;
    app.on_client(ClientEvent::Server(snapshot_msg(w)));
    assert_eq!(app.followed, Some(2));
    assert!(screen(&app, 120, 40).contains("watching bot-1"));
}

#[test]
fn the_status_bar_names_the_node_a_redirect_led_to() {
    let mut app = game(Some(1), ColorMode::Ansi16, false);
    let before = screen(&app, 160, 40);
    assert!(before.contains("127.0.0.1:7878"), "{before}");
    assert!(!before.contains("-> origin"), "{before}");
    app.session.server = "http://127.0.0.1:7879".into();
    app.on_client(ClientEvent::Moved {
        server: "http://127.0.0.1:7878".into(),
    });
    let after = screen(&app, 160, 40);
    let bar = after.lines().last().unwrap_or_default();
    assert!(
        bar.contains("127.0.0.1:7879 -> origin 127.0.0.1:7878"),
        "{bar}"
    );
}
