//! Owns the terminal: raw mode and the alternate screen on the way in, and
//! the way out on every path: normal return (a guard), panic (a hook that
//! restores first, then reports and exits), and signals (the shell ends
//! its loop, so the guard runs).

use std::io::{self, stdout};

use crossterm::cursor::Show;
use crossterm::execute;
use crossterm::terminal::{LeaveAlternateScreen, disable_raw_mode};
use ratatui::DefaultTerminal;

/// Restores the terminal when dropped.
pub struct TerminalGuard {
    /// The ratatui terminal drawing on stdout.
    pub terminal: DefaultTerminal,
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal into raw mode on the alternate screen.
pub fn enter() -> io::Result<TerminalGuard> {
    // ratatui installs a hook that restores and then runs the previous one.
    let terminal = ratatui::try_init()?;
    let restore_then_report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // ratatui's restore leaves the cursor hidden; ours shows it.
        restore();
        restore_then_report(info);
        // A panic in any task ends the game: a UI drawing over a restored
        // terminal would be worse than exiting.
        std::process::exit(101);
    }));
    Ok(TerminalGuard { terminal })
}

/// Leaves raw mode and the alternate screen and shows the cursor. Safe to
/// call more than once.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen, Show);
}
