//! The async shell of a client: connects links, pumps messages between the
//! link, the [`Session`] and the consumer, runs the session's timers and
//! sleeps the backoff [`Reconnect`] decides. No protocol decision is made
//! here.

use std::pin::pin;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use protocol::{ClientMsg, ServerMsg};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::reconnect::{Next, Reconnect};
use super::session::{Session, TimerAction};
use super::transport::{Disconnect, Link, LinkEvent, Target};
use super::{ClientConfig, ClientEvent, ClosedReason, Command, TransportKind};

/// Unix microseconds on the client clock (what pings carry).
fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// How one link's life ended.
enum End {
    /// We sent `leave`.
    Left,
    /// Every handle or the event receiver is gone: leave on their behalf.
    ConsumerGone,
    /// The link ended.
    Disconnect(Disconnect),
}

/// Runs a client until it leaves, is refused or gives up.
pub(super) async fn run(
    config: ClientConfig,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<ClientEvent>,
) {
    let span = tracing::info_span!("client", room = %config.room, name = %config.name);
    run_inner(config, commands, events).instrument(span).await;
}

async fn run_inner(
    config: ClientConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<ClientEvent>,
) {
    let target = Target {
        server: config.server.clone(),
        room: config.room.clone(),
        format: config.format,
    };
    let mut session = Session::new(config.name.clone(), config.role);
    // `Auto` is resolved by the first successful connection, then sticks.
    let mut transport = config.transport;
    let mut reconnect = Reconnect::new(config.retry.clone(), config.reconnect);

    let reason = 'task: loop {
        let attempt = reconnect.next_attempt();
        if events
            .send(ClientEvent::Connecting { attempt })
            .await
            .is_err()
        {
            break ClosedReason::Left;
        }
        let hello = session.hello();
        tracing::debug!(attempt, resume = hello.token.is_some(), "connecting");

        // Commands that arrive while connecting are dropped (the session
        // would drop them anyway), except a leave.
        let connected = {
            let mut connecting = pin!(async {
                if transport == TransportKind::Auto {
                    Link::connect_auto(&target, &hello)
                        .await
                        .map(|(link, kind, why)| (link, Some((kind, why))))
                } else {
                    Link::connect(transport, &target, &hello)
                        .await
                        .map(|link| (link, None))
                }
            });
            loop {
                tokio::select! {
                    r = &mut connecting => break r,
                    c = commands.recv() => match c {
                        None | Some(Command::Leave) => break 'task ClosedReason::Left,
                        Some(_) => {}
                    },
                    () = events.closed() => break 'task ClosedReason::Left,
                }
            }
        };

        let (next, link_was_open) = match connected {
            Err(e) => {
                tracing::debug!(error = %e, "connect failed");
                (reconnect.handle_connect_error(&e), false)
            }
            Ok((mut link, chosen)) => {
                if let Some((kind, reason)) = chosen {
                    tracing::info!(transport = kind.name(), %reason, "transport chosen");
                    transport = kind;
                    let chosen = ClientEvent::TransportChosen {
                        transport: kind,
                        reason,
                    };
                    if events.send(chosen).await.is_err() {
                        break ClosedReason::Left;
                    }
                }
                session.handle_connected(Instant::now());
                let end = drive(
                    &mut link,
                    &mut session,
                    &mut reconnect,
                    &mut commands,
                    &events,
                )
                .await;
                let welcomed = session.is_welcomed();
                session.handle_disconnected();
                match end {
                    End::Left => {
                        link.close().await;
                        break ClosedReason::Left;
                    }
                    End::ConsumerGone => {
                        let _ = link.send(&session.leave()).await;
                        link.close().await;
                        break ClosedReason::Left;
                    }
                    End::Disconnect(d) => {
                        tracing::info!(reason = %d, welcomed, "link ended");
                        let next = reconnect.handle_disconnect(
                            &d,
                            session.last_error(),
                            welcomed,
                            session.has_left(),
                        );
                        (next, true)
                    }
                }
            }
        };

        match next {
            Next::Stop(reason) => {
                if link_was_open && reason != ClosedReason::Left {
                    let _ = events
                        .send(ClientEvent::Disconnected {
                            reason: reason.to_string(),
                            retrying: false,
                        })
                        .await;
                }
                break reason;
            }
            Next::Retry {
                after,
                reason,
                forget_token,
            } => {
                if forget_token {
                    session.forget_token();
                }
                if link_was_open
                    && events
                        .send(ClientEvent::Disconnected {
                            reason,
                            retrying: true,
                        })
                        .await
                        .is_err()
                {
                    break ClosedReason::Left;
                }
                let mut backoff = pin!(tokio::time::sleep(after));
                loop {
                    tokio::select! {
                        () = &mut backoff => break,
                        c = commands.recv() => match c {
                            None | Some(Command::Leave) => break 'task ClosedReason::Left,
                            Some(_) => {}
                        },
                        () = events.closed() => break 'task ClosedReason::Left,
                    }
                }
            }
        }
    };
    tracing::info!(%reason, "client closed");
    let _ = events.send(ClientEvent::Closed { reason }).await;
}

/// Pumps one open link until it ends.
async fn drive(
    link: &mut Link,
    session: &mut Session,
    reconnect: &mut Reconnect,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    events: &mpsc::Sender<ClientEvent>,
) -> End {
    loop {
        let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
        let timer = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let out = tokio::select! {
            ev = link.recv() => match ev {
                LinkEvent::Msg(msg) => {
                    session.handle_server(&msg, Instant::now());
                    let event = match msg {
                        ServerMsg::Welcome(w) => {
                            tracing::info!(player = ?w.player_id, resumed = w.resumed, "welcomed");
                            reconnect.handle_welcome();
                            ClientEvent::Welcome(w)
                        }
                        other => ClientEvent::Server(other),
                    };
                    if events.send(event).await.is_err() {
                        return End::ConsumerGone;
                    }
                    None
                }
                LinkEvent::Closed(d) => return End::Disconnect(d),
            },
            c = commands.recv() => match c {
                None => return End::ConsumerGone,
                Some(Command::Steer(d)) => session.steer(d),
                Some(Command::Boost(on)) => session.boost(on),
                Some(Command::Chat(t)) => Some(session.chat(t)),
                Some(Command::Resync) => Some(session.resync()),
                Some(Command::Leave) => {
                    let _ = link.send(&session.leave()).await;
                    return End::Left;
                }
            },
            () = timer => match session.handle_timeout(Instant::now(), unix_us()) {
                Some(TimerAction::Send(m)) => Some(m),
                Some(TimerAction::Dead) => {
                    let d = Disconnect::Lost("the server went silent".into());
                    return End::Disconnect(d);
                }
                None => None,
            },
        };
        let Some(msg) = out else { continue };
        if let Err(d) = link.send(&msg).await {
            return End::Disconnect(d);
        }
        if let ClientMsg::Input(i) = msg {
            let sent = ClientEvent::InputSent {
                seq: i.seq,
                dir: i.dir,
                boost: i.boost,
            };
            if events.send(sent).await.is_err() {
                return End::ConsumerGone;
            }
        }
    }
}
