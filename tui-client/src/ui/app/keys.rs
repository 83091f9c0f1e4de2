//! What keys do on each screen and overlay.

use crossterm::event::{KeyCode, KeyEvent};
use protocol::api::CreateRoom;
use protocol::text::{sanitize_chat, sanitize_line};
use protocol::{Dir, Mode, PlayerId, Pos};

use super::{App, Camera, CreateForm, Effect, MAPS, Overlay, SENT_HISTORY, Screen};
use crate::ui::input::{GameKey, game_key, is_interrupt, is_press};

impl App {
    /// Takes in a key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Effect> {
        if !is_press(&key) {
            return None;
        }
        self.dirty = true;
        match self.overlay {
            Overlay::ConfirmQuit => return self.confirm_key(&key),
            Overlay::Help => {
                // Any key closes the help; Ctrl-C still quits.
                self.overlay = Overlay::None;
                return if is_interrupt(&key) {
                    self.request_quit(true)
                } else {
                    None
                };
            }
            Overlay::None => {}
        }
        match self.screen.clone() {
            Screen::Game => {
                if self.chat_input.is_some() {
                    self.chat_key(&key)
                } else {
                    self.game_key(&key)
                }
            }
            Screen::Lobby => self.lobby_key(&key),
            Screen::Compare => self.compare_key(&key),
            Screen::Connecting => match key.code {
                KeyCode::Char('q') | KeyCode::Esc => self.quit(),
                _ if is_interrupt(&key) => self.quit(),
                _ => None,
            },
            Screen::Failed(_) => self.failed_key(&key),
        }
    }

    fn quit(&mut self) -> Option<Effect> {
        self.quit = true;
        Some(Effect::Quit)
    }

    fn request_quit(&mut self, _interrupt: bool) -> Option<Effect> {
        if self.is_playing() {
            self.overlay = Overlay::ConfirmQuit;
            None
        } else {
            self.quit()
        }
    }

    fn confirm_key(&mut self, key: &KeyEvent) -> Option<Effect> {
        if is_interrupt(key) {
            return self.quit();
        }
        match key.code {
            KeyCode::Char('y' | 'Y' | 'q') | KeyCode::Enter => self.quit(),
            KeyCode::Char('l' | 'L') if self.session.has_lobby => {
                self.overlay = Overlay::None;
                self.screen = Screen::Lobby;
                self.view = None;
                Some(Effect::Lobby)
            }
            _ => {
                self.overlay = Overlay::None;
                None
            }
        }
    }

    fn game_key(&mut self, key: &KeyEvent) -> Option<Effect> {
        if key.code == KeyCode::Esc && self.session.has_lobby && self.spectating {
            self.screen = Screen::Lobby;
            self.view = None;
            return Some(Effect::Lobby);
        }
        match game_key(key)? {
            GameKey::Quit => self.request_quit(false),
            GameKey::Interrupt => self.request_quit(true),
            GameKey::Help => {
                self.overlay = Overlay::Help;
                None
            }
            GameKey::Chat => {
                self.chat_input = Some(String::new());
                self.recall = None;
                None
            }
            GameKey::Move(dir) if self.spectating => {
                let center = self.center().unwrap_or(Pos::new(0, 0));
                self.camera = Camera::Free(self.pan(center, dir));
                None
            }
            GameKey::Move(dir) => Some(self.steer(dir)),
            GameKey::Boost if self.spectating => None,
            GameKey::Boost => {
                self.boost = !self.boost;
                Some(Effect::Boost(self.boost))
            }
            GameKey::NextSnake => {
                self.cycle(true);
                None
            }
            GameKey::PrevSnake => {
                self.cycle(false);
                None
            }
            GameKey::Follow => {
                self.camera = Camera::Follow;
                None
            }
            GameKey::NetPanel => {
                self.net_panel = !self.net_panel;
                None
            }
        }
    }

    fn compare_key(&mut self, key: &KeyEvent) -> Option<Effect> {
        if is_interrupt(key) {
            return self.quit();
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc if self.session.has_lobby => {
                self.compare = None;
                self.screen = Screen::Lobby;
                Some(Effect::Lobby)
            }
            KeyCode::Char('q') | KeyCode::Esc => self.quit(),
            KeyCode::Char('?') => {
                self.overlay = Overlay::Help;
                None
            }
            _ => None,
        }
    }

    /// Moves the free camera a few cells, staying on the map.
    fn pan(&self, from: Pos, dir: Dir) -> Pos {
        const STEP: u16 = 4;
        let (w, h) = self
            .view
            .as_ref()
            .map_or((1, 1), |v| (v.map.width.max(1), v.map.height.max(1)));
        match dir {
            Dir::Up => Pos::new(from.x, from.y.saturating_sub(STEP)),
            Dir::Down => Pos::new(from.x, (from.y + STEP).min(h - 1)),
            Dir::Left => Pos::new(from.x.saturating_sub(STEP), from.y),
            Dir::Right => Pos::new((from.x + STEP).min(w - 1), from.y),
        }
    }

    /// Follows the next (or previous) living snake by id.
    fn cycle(&mut self, forward: bool) {
        let Some(world) = self.view.as_ref().and_then(|v| v.world.as_ref()) else {
            return;
        };
        let ids: Vec<PlayerId> = world
            .snakes
            .iter()
            .filter(|s| s.alive)
            .map(|s| s.id)
            .collect();
        if ids.is_empty() {
            return;
        }
        let current = self.followed_snake().map(|s| s.id);
        let i = current.and_then(|c| ids.iter().position(|&id| id == c));
        let next = match (i, forward) {
            (None, _) => 0,
            (Some(i), true) => (i + 1) % ids.len(),
            (Some(i), false) => (i + ids.len() - 1) % ids.len(),
        };
        self.followed = Some(ids[next]);
        self.camera = Camera::Follow;
        self.update_center();
    }

    fn chat_key(&mut self, key: &KeyEvent) -> Option<Effect> {
        if is_interrupt(key) {
            self.chat_input = None;
            return self.request_quit(true);
        }
        let input = self.chat_input.as_mut()?;
        match key.code {
            KeyCode::Esc => self.chat_input = None,
            KeyCode::Enter => {
                let text = sanitize_chat(input);
                self.chat_input = None;
                if !text.is_empty() {
                    if self.sent.len() == SENT_HISTORY {
                        self.sent.pop_front();
                    }
                    self.sent.push_back(text.clone());
                    return Some(Effect::Chat(text));
                }
            }
            KeyCode::Backspace => {
                input.pop();
            }
            KeyCode::Up | KeyCode::Down => {
                if self.sent.is_empty() {
                    return None;
                }
                let last = self.sent.len() - 1;
                let i = match (self.recall, key.code) {
                    (None, KeyCode::Up) => Some(last),
                    (None, _) => None,
                    (Some(i), KeyCode::Up) => Some(i.saturating_sub(1)),
                    (Some(i), _) if i < last => Some(i + 1),
                    (Some(_), _) => None,
                };
                self.recall = i;
                *input = i.map_or_else(String::new, |i| self.sent[i].clone());
            }
            KeyCode::Char(c)
                if !c.is_control() && input.chars().count() < protocol::text::MAX_CHAT_CHARS =>
            {
                input.push(c);
            }
            _ => {}
        }
        None
    }

    fn lobby_key(&mut self, key: &KeyEvent) -> Option<Effect> {
        if is_interrupt(key) {
            return self.quit();
        }
        if let Some(form) = self.lobby.create.as_mut() {
            match key.code {
                KeyCode::Esc => self.lobby.create = None,
                KeyCode::Enter => {
                    let form = form.clone();
                    let id = sanitize_line(&form.id, 32);
                    return Some(Effect::CreateRoom(CreateRoom {
                        id: (!id.is_empty()).then_some(id),
                        mode: Some(form.mode),
                        map: Some(MAPS[form.map % MAPS.len()].to_string()),
                        tick_rate: None,
                        max_players: None,
                        persistent: false,
                        speed: form.speed,
                    }));
                }
                KeyCode::Tab => {
                    form.mode = match form.mode {
                        Mode::Snake => Mode::Tron,
                        Mode::Tron => Mode::Snake,
                    }
                }
                KeyCode::Up => form.nudge_speed(true),
                KeyCode::Down => form.nudge_speed(false),
                KeyCode::Left => form.map = (form.map + MAPS.len() - 1) % MAPS.len(),
                KeyCode::Right => form.map = (form.map + 1) % MAPS.len(),
                KeyCode::Backspace => {
                    form.id.pop();
                }
                KeyCode::Char(c)
                    if (c.is_ascii_alphanumeric() || c == '-' || c == '_')
                        && form.id.len() < 32 =>
                {
                    form.id.push(c);
                }
                _ => {}
            }
            return None;
        }
        let count = self.lobby.rooms.as_ref().map_or(0, Vec::len);
        let selected = self
            .lobby
            .rooms
            .as_ref()
            .and_then(|r| r.get(self.lobby.selected))
            .map(|r| r.id.clone());
        match key.code {
            KeyCode::Up | KeyCode::Char('k' | 'w') => {
                self.lobby.selected = self.lobby.selected.saturating_sub(1);
            }
            KeyCode::Down | KeyCode::Char('j' | 's') if self.lobby.selected + 1 < count => {
                self.lobby.selected += 1;
            }
            // Enter does what the command line asked for (--spectate watches).
            KeyCode::Enter => {
                let watch = self.session.watch;
                return selected.map(|r| self.join(r, watch));
            }
            KeyCode::Char('p') => return selected.map(|r| self.join(r, false)),
            KeyCode::Char('v') => return selected.map(|r| self.join(r, true)),
            KeyCode::Char('t') => return selected.map(|r| self.start_compare(r)),
            KeyCode::Char('c') => self.lobby.create = Some(CreateForm::default()),
            KeyCode::Char('r') => return Some(Effect::RefreshRooms),
            KeyCode::Char('?') => self.overlay = Overlay::Help,
            KeyCode::Char('q') | KeyCode::Esc => return self.quit(),
            _ => {}
        }
        None
    }

    fn failed_key(&mut self, key: &KeyEvent) -> Option<Effect> {
        if is_interrupt(key) {
            return self.quit();
        }
        match key.code {
            KeyCode::Char('r') => {
                let room = self.room.clone()?;
                let spectate = self.spectating;
                Some(self.join(room, spectate))
            }
            KeyCode::Char('l') if self.session.has_lobby => {
                self.screen = Screen::Lobby;
                self.view = None;
                Some(Effect::Lobby)
            }
            KeyCode::Char('q') | KeyCode::Esc | KeyCode::Enter => self.quit(),
            _ => None,
        }
    }
}
