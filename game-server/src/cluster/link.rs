//! The node's one connection to NATS: connected in the background (a node
//! starts, and an origin's rooms tick, with NATS down), reconnecting by
//! itself, and saying whether it is up on a `watch` channel so the rest of
//! the cluster code can publish only while it is (at most once: a frame
//! that cannot go now is dropped, never queued behind a dead link).

use std::path::PathBuf;
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use tokio::sync::watch;

/// Why the node could not set up its NATS client.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot read the NATS credentials file {path}: {source}")]
    Creds {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        source: async_nats::ConnectError,
    },
}

/// A NATS client and whether it is connected now.
#[derive(Clone, Debug)]
pub struct Link {
    /// The client (cheap to clone; one connection underneath).
    pub client: Client,
    /// True while connected.
    pub up: watch::Receiver<bool>,
}

/// Longest wait between two reconnection attempts: a restarted NATS is
/// found again within about this long.
const MAX_RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// Connects to `url` (user and password or a token may be in it) with the
/// credentials file `creds` if given, named `name` for NATS' monitoring.
pub async fn connect(url: &str, creds: Option<&PathBuf>, name: &str) -> Result<Link, LinkError> {
    let (tx, up) = watch::channel(false);
    let mut options = ConnectOptions::new();
    if let Some(path) = creds {
        options = options
            .credentials_file(path)
            .await
            .map_err(|source| LinkError::Creds {
                path: path.clone(),
                source,
            })?;
    }
    let tx = std::sync::Arc::new(tx);
    let events = tx.clone();
    let client = options
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(|attempts| {
            (Duration::from_millis(50) * attempts as u32).min(MAX_RECONNECT_DELAY)
        })
        .event_callback(move |event| {
            let events = events.clone();
            async move {
                match event {
                    Event::Connected => {
                        tracing::info!("connected to NATS");
                        events.send_replace(true);
                    }
                    Event::Disconnected => {
                        tracing::warn!("lost NATS; reconnecting");
                        events.send_replace(false);
                    }
                    Event::SlowConsumer(sid) => {
                        tracing::debug!(sid, "NATS dropped messages for a slow subscription");
                    }
                    other => tracing::debug!(event = %other, "NATS event"),
                }
            }
        })
        .connect(url)
        .await
        .map_err(|source| LinkError::Connect {
            url: url.to_string(),
            source,
        })?;
    if client.connection_state() == async_nats::connection::State::Connected {
        tx.send_replace(true);
    }
    Ok(Link { client, up })
}
