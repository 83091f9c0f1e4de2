//! Key mapping: which key means what in the arena. Text fields (chat, the
//! create-room form) take keys raw; everything else goes through here, so
//! the bindings live in one table.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use protocol::Dir;

/// What a key asks for while a game (playing or watching) is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GameKey {
    /// Steer (player) or pan the free camera (spectator).
    Move(Dir),
    /// Space: boost on/off.
    Boost,
    /// Enter: start typing a chat line.
    Chat,
    /// `?`: the help overlay.
    Help,
    /// `q`: quit (confirmed while playing).
    Quit,
    /// Ctrl-C: quit (confirmed while playing; a second Ctrl-C confirms).
    Interrupt,
    /// Tab: follow the next snake (spectator).
    NextSnake,
    /// Shift-Tab: follow the previous snake (spectator).
    PrevSnake,
    /// `f`: follow again after panning (spectator).
    Follow,
    /// `n`: show or hide the net panel.
    NetPanel,
}

/// True for key events that should act: presses and auto-repeats, not
/// releases (which only some terminals report).
pub fn is_press(key: &KeyEvent) -> bool {
    key.kind != KeyEventKind::Release
}

/// True for Ctrl-C.
pub fn is_interrupt(key: &KeyEvent) -> bool {
    key.modifiers.contains(KeyModifiers::CONTROL) && matches!(key.code, KeyCode::Char('c' | 'C'))
}

/// The game meaning of a key: arrows, WASD and hjkl steer (either case,
/// so Caps Lock does not get in the way).
pub fn game_key(key: &KeyEvent) -> Option<GameKey> {
    if is_interrupt(key) {
        return Some(GameKey::Interrupt);
    }
    if key
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    {
        return None;
    }
    let k = match key.code {
        KeyCode::Up => GameKey::Move(Dir::Up),
        KeyCode::Down => GameKey::Move(Dir::Down),
        KeyCode::Left => GameKey::Move(Dir::Left),
        KeyCode::Right => GameKey::Move(Dir::Right),
        KeyCode::Enter => GameKey::Chat,
        KeyCode::Tab => GameKey::NextSnake,
        KeyCode::BackTab => GameKey::PrevSnake,
        KeyCode::Char(c) => match c.to_ascii_lowercase() {
            'w' | 'k' => GameKey::Move(Dir::Up),
            's' | 'j' => GameKey::Move(Dir::Down),
            'a' | 'h' => GameKey::Move(Dir::Left),
            'd' | 'l' => GameKey::Move(Dir::Right),
            ' ' => GameKey::Boost,
            '?' => GameKey::Help,
            'q' => GameKey::Quit,
            'f' => GameKey::Follow,
            'n' => GameKey::NetPanel,
            _ => return None,
        },
        _ => return None,
    };
    Some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn arrows_wasd_and_hjkl_steer_alike() {
        for (keys, dir) in [
            (
                [KeyCode::Up, KeyCode::Char('w'), KeyCode::Char('k')],
                Dir::Up,
            ),
            (
                [KeyCode::Down, KeyCode::Char('s'), KeyCode::Char('j')],
                Dir::Down,
            ),
            (
                [KeyCode::Left, KeyCode::Char('A'), KeyCode::Char('h')],
                Dir::Left,
            ),
            (
                [KeyCode::Right, KeyCode::Char('d'), KeyCode::Char('L')],
                Dir::Right,
            ),
        ] {
            for k in keys {
                assert_eq!(game_key(&key(k)), Some(GameKey::Move(dir)), "{k:?}");
            }
        }
    }

    #[test]
    fn ctrl_c_interrupts_and_other_ctrl_keys_do_nothing() {
        let c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(game_key(&c), Some(GameKey::Interrupt));
        let w = KeyEvent::new(KeyCode::Char('w'), KeyModifiers::CONTROL);
        assert_eq!(game_key(&w), None);
        assert_eq!(game_key(&key(KeyCode::Char(' '))), Some(GameKey::Boost));
        assert_eq!(game_key(&key(KeyCode::Char('?'))), Some(GameKey::Help));
    }
}
