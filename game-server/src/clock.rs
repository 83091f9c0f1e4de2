//! Wall-clock time for frames (`server_time_us`). Only the async shells call
//! this; the simulation never sees a clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in microseconds (0 if the system clock is before 1970).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Resolves once `shutdown` holds `true` (or its sender is gone).
pub async fn until_shutdown(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    // The borrow guard is dropped here, before the caller awaits anything else.
    let _ = shutdown.wait_for(|s| *s).await;
}
