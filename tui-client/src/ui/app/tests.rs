//! Unit tests of [`App`]: keys in, effects out.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use protocol::{Dir, Map, Mode, Welcome};

use super::*;
use crate::ui::theme::{ColorMode, Theme};

fn session(embedded: bool) -> Session {
    Session {
        server: "http://127.0.0.1:1".into(),
        embedded,
        transport: "ws",
        name: "me".into(),
        has_lobby: !embedded,
        watch: false,
        conditioner: None,
    }
}

fn welcomed(spectate: bool) -> App {
    let mut app = App::new(
        session(true),
        Theme::new(ColorMode::None, false),
        Some("lobby".into()),
        spectate,
    );
    let map = Map::parse("#####\n#0..#\n#####\n", "t").unwrap();
    app.on_client(ClientEvent::Welcome(Box::new(Welcome {
        player_id: (!spectate).then_some(1),
        session: "s".into(),
        token: "t".into(),
        room: "lobby".into(),
        mode: Mode::Snake,
        tick_rate: 20,
        speed: 10,
        map,
        resumed: false,
        name: "me".into(),
        server_time_us: 0,
    })));
    app
}

fn press(app: &mut App, code: KeyCode) -> Option<Effect> {
    app.on_key(KeyEvent::from(code))
}

fn ctrl_c(app: &mut App) -> Option<Effect> {
    app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL))
}

#[test]
fn steering_keys_become_steer_effects_and_releases_are_ignored() {
    let mut app = welcomed(false);
    assert_eq!(app.screen, Screen::Game);
    assert_eq!(press(&mut app, KeyCode::Up), Some(Effect::Steer(Dir::Up)));
    assert_eq!(
        press(&mut app, KeyCode::Char('h')),
        Some(Effect::Steer(Dir::Left))
    );
    let mut release = KeyEvent::from(KeyCode::Down);
    release.kind = KeyEventKind::Release;
    assert_eq!(app.on_key(release), None);
    assert_eq!(
        press(&mut app, KeyCode::Char(' ')),
        Some(Effect::Boost(true))
    );
    assert_eq!(
        press(&mut app, KeyCode::Char(' ')),
        Some(Effect::Boost(false))
    );
}

#[test]
fn quitting_asks_while_playing_and_ctrl_c_twice_quits() {
    let mut app = welcomed(false);
    assert_eq!(press(&mut app, KeyCode::Char('q')), None);
    assert_eq!(app.overlay, Overlay::ConfirmQuit);
    assert_eq!(press(&mut app, KeyCode::Char('n')), None);
    assert_eq!(app.overlay, Overlay::None);
    assert!(!app.quit);
    assert_eq!(ctrl_c(&mut app), None);
    assert_eq!(ctrl_c(&mut app), Some(Effect::Quit));
    assert!(app.quit);

    let mut watcher = welcomed(true);
    assert_eq!(press(&mut watcher, KeyCode::Char('q')), Some(Effect::Quit));
}

#[test]
fn chat_sends_sanitised_text_cancels_and_recalls() {
    let mut app = welcomed(false);
    press(&mut app, KeyCode::Enter);
    for c in "hi  there".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    // While typing, letters are text, not steering.
    assert_eq!(app.chat_input.as_deref(), Some("hi  there"));
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::Chat("hi there".into()))
    );
    assert_eq!(app.chat_input, None);

    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('x'));
    assert_eq!(press(&mut app, KeyCode::Esc), None);
    assert_eq!(app.chat_input, None, "Esc cancels");

    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Up);
    assert_eq!(app.chat_input.as_deref(), Some("hi there"), "Up recalls");
    press(&mut app, KeyCode::Down);
    assert_eq!(app.chat_input.as_deref(), Some(""));
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        None,
        "empty lines are not sent"
    );
}

#[test]
fn a_lost_connection_shows_reconnecting_and_a_resume_clears_it() {
    let mut app = welcomed(false);
    app.on_client(ClientEvent::Disconnected {
        reason: "reset".into(),
        retrying: true,
    });
    app.on_client(ClientEvent::Connecting { attempt: 2 });
    assert!(matches!(
        app.link,
        LinkState::Reconnecting { attempt: 2, .. }
    ));
    assert_eq!(app.screen, Screen::Game, "the world stays on screen");
    let w = app.view.as_ref().unwrap();
    let mut again = Welcome {
        player_id: w.me,
        session: "s".into(),
        token: "t".into(),
        room: "lobby".into(),
        mode: Mode::Snake,
        tick_rate: 20,
        speed: 10,
        map: w.map.clone(),
        resumed: true,
        name: "me".into(),
        server_time_us: 0,
    };
    again.resumed = true;
    app.on_client(ClientEvent::Welcome(Box::new(again)));
    assert_eq!(app.link, LinkState::Connected);
    assert!(
        app.log
            .iter()
            .any(|l| *l == LogLine::Event("reconnected: same snake".into()))
    );
}

#[test]
fn final_errors_become_screens_with_retry() {
    let mut app = welcomed(false);
    app.on_client(ClientEvent::Closed {
        reason: ClosedReason::Refused {
            code: "room_full".into(),
            message: "full".into(),
        },
    });
    let Screen::Failed(f) = &app.screen else {
        panic!("not an error screen: {:?}", app.screen);
    };
    assert_eq!(f.title, "Room full");
    assert_eq!(
        press(&mut app, KeyCode::Char('r')),
        Some(Effect::Join {
            room: "lobby".into(),
            spectate: false
        })
    );
    assert_eq!(app.screen, Screen::Connecting);
}

#[test]
fn lag_reports_feed_the_hud_and_n_toggles_the_net_panel() {
    let mut app = welcomed(false);
    assert!(app.lag.is_none());
    let lag = crate::lag::testkit::snapshot(Default::default());
    app.on_client(ClientEvent::Lag(Box::new(lag)));
    assert!(app.lag.as_ref().unwrap().window.rtt.count > 0);
    assert!(!app.net_panel);
    assert_eq!(press(&mut app, KeyCode::Char('n')), None);
    assert!(app.net_panel);
    press(&mut app, KeyCode::Char('n'));
    assert!(!app.net_panel);
    // A new room starts measuring afresh.
    app.join("duel".into(), false);
    assert!(app.lag.is_none());
}

#[test]
fn the_lobby_opens_the_compare_view_and_q_goes_back() {
    let mut app = App::new(
        session(false),
        Theme::new(ColorMode::None, false),
        None,
        false,
    );
    app.on_rooms(Ok(vec![protocol::api::RoomInfo {
        id: "duel".into(),
        mode: Mode::Tron,
        map: "maze".into(),
        players: 0,
        spectators: 0,
        max_players: 4,
        tick_rate: 20,
        speed: 10,
        tick: 0,
    }]));
    assert_eq!(
        press(&mut app, KeyCode::Char('t')),
        Some(Effect::Compare {
            room: "duel".into()
        })
    );
    assert_eq!(app.screen, Screen::Compare);
    let cmp = app.compare.as_ref().unwrap();
    let names: Vec<_> = cmp.columns.iter().map(|c| c.transport.name()).collect();
    assert_eq!(names, ["ws", "sse", "longpoll", "poll"]);
    // A live report lands in its column.
    app.on_compare(crate::bot::BotUpdate {
        index: 2,
        name: "cmp-longpoll".into(),
        phase: crate::bot::BotPhase::Playing,
        lag: Some(Box::new(crate::lag::testkit::snapshot(Default::default()))),
        ticks_seen: 10,
        desyncs: 0,
        length: 4,
    });
    let c = &app.compare.as_ref().unwrap().columns[2];
    assert_eq!((c.length, c.ticks_seen), (4, 10));
    assert!(c.lag.is_some());
    assert_eq!(press(&mut app, KeyCode::Char('q')), Some(Effect::Lobby));
    assert_eq!(app.screen, Screen::Lobby);
    assert!(app.compare.is_none());
}

#[test]
fn lobby_selects_joins_watches_and_creates() {
    let mut app = App::new(
        session(false),
        Theme::new(ColorMode::None, false),
        None,
        false,
    );
    let room = |id: &str| RoomInfo {
        id: id.into(),
        mode: Mode::Snake,
        map: "arena".into(),
        players: 0,
        spectators: 0,
        max_players: 16,
        tick_rate: 20,
        speed: 10,
        tick: 0,
    };
    app.on_rooms(Ok(vec![room("a"), room("b")]));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    assert_eq!(app.lobby.selected, 1, "stops at the last room");
    assert_eq!(
        press(&mut app, KeyCode::Char('v')),
        Some(Effect::Join {
            room: "b".into(),
            spectate: true
        })
    );
    assert!(app.spectating);

    let mut app = App::new(
        session(false),
        Theme::new(ColorMode::None, false),
        None,
        false,
    );
    press(&mut app, KeyCode::Char('c'));
    for c in "duel".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Right);
    let Some(Effect::CreateRoom(body)) = press(&mut app, KeyCode::Enter) else {
        panic!("Enter creates");
    };
    assert_eq!(body.id.as_deref(), Some("duel"));
    assert_eq!(body.mode, Some(Mode::Tron));
    assert_eq!(body.map.as_deref(), Some(MAPS[1]));
    assert_eq!(app.on_created(Ok(room("duel"))), Some(Effect::RefreshRooms));
    assert_eq!(app.lobby.create, None);
    // The server lists rooms in its own order: the selection follows the id.
    app.on_rooms(Ok(vec![room("duel"), room("lobby")]));
    assert_eq!(app.lobby.selected, 0);
    assert!(
        app.lobby
            .note
            .as_deref()
            .unwrap()
            .contains("created room duel")
    );
}

#[test]
fn with_spectate_enter_in_the_lobby_watches() {
    let mut s = session(false);
    s.watch = true;
    let mut app = App::new(s, Theme::new(ColorMode::None, false), None, true);
    app.on_rooms(Ok(vec![RoomInfo {
        id: "a".into(),
        mode: Mode::Snake,
        map: "arena".into(),
        players: 0,
        spectators: 0,
        max_players: 16,
        tick_rate: 20,
        speed: 10,
        tick: 0,
    }]));
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::Join {
            room: "a".into(),
            spectate: true
        })
    );
}
