//! The open-file limit, which bounds how many sockets the server can hold:
//! raised at start from its soft value up to the hard one.

/// The open-file limit after trying to raise it: `(soft, hard)`, or `None`
/// where the platform has no such limit or it could not be read.
pub fn raise() -> Option<(u64, u64)> {
    imp::raise()
}

#[cfg(unix)]
mod imp {
    // `rlim_t` is u64 on the usual targets but not on every one.
    #[allow(clippy::unnecessary_cast)]
    pub fn raise() -> Option<(u64, u64)> {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct we pass, which lives on
        // this stack frame for the whole call.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let mut wanted = lim;
            wanted.rlim_cur = lim.rlim_max;
            // macOS refuses a soft limit above OPEN_MAX even when the hard
            // limit is "unlimited"; fall back to the old value then.
            // SAFETY: setrlimit only reads the struct we pass.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } == 0 {
                lim = wanted;
            } else {
                tracing::debug!(
                    soft = lim.rlim_cur as u64,
                    hard = lim.rlim_max as u64,
                    "could not raise the open-file limit"
                );
            }
        }
        Some((lim.rlim_cur as u64, lim.rlim_max as u64))
    }
}

#[cfg(not(unix))]
mod imp {
    pub fn raise() -> Option<(u64, u64)> {
        None
    }
}

/// File descriptors kept free for everything that is not a connection
/// (the listener, logs, the runtime, map files).
pub const RESERVED: u64 = 64;

/// Sockets the server may have open at once for refusing connections and
/// for closing them gracefully, each: a sixteenth of the limit, 8 to 1024.
pub fn side_budget(soft: u64) -> usize {
    (soft / 16).clamp(8, 1024) as usize
}

/// Connections that fit under an open-file limit of `soft`, after the
/// reserve and the refusing and lingering budgets (at least 16).
pub fn connection_capacity(soft: u64) -> usize {
    let side = side_budget(soft) as u64 * 2;
    soft.saturating_sub(RESERVED + side).max(16) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_leaves_room_for_the_rest() {
        assert_eq!(connection_capacity(20_000), 20_000 - 64 - 2048);
        assert_eq!(connection_capacity(1024), 1024 - 64 - 128);
        assert_eq!(connection_capacity(10), 16);
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        if let Some((soft, hard)) = raise() {
            assert!(soft <= hard);
            assert_eq!(raise(), Some((soft, hard)), "idempotent");
        }
    }
}
