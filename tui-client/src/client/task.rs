//! The async shell of a client: connects links, pumps messages between the
//! link, the [`Session`] and the consumer, runs the session's timers and
//! sleeps the backoff [`Reconnect`] decides. Every message is stamped with
//! the client clock on arrival and shown to the [`LagMeter`]. No protocol
//! decision is made here.

use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use protocol::{ClientMsg, ServerMsg};
use tokio::sync::mpsc;
use tokio::time::Interval;
use tracing::Instrument;

use super::conditioner::Relay;
use super::endpoint::Endpoint;
use super::reconnect::{Next, Reconnect};
use super::session::{Session, TimerAction};
use super::transport::{Disconnect, Link, LinkEvent, Target, Traffic, server_words};
use super::{ClientConfig, ClientEvent, ClosedReason, Command, unix_us};
use crate::lag::LagMeter;

/// The lag meter and what it reads.
struct Meter {
    lag: LagMeter,
    traffic: Arc<Traffic>,
    every: Option<Interval>,
}

impl Meter {
    fn report(&mut self) -> ClientEvent {
        let now = unix_us();
        self.lag.handle_traffic(self.traffic.totals(), now);
        ClientEvent::Lag(Box::new(self.lag.snapshot(now)))
    }

    /// Completes at the next report time (never without one).
    async fn due(&mut self) {
        match self.every.as_mut() {
            Some(i) => {
                i.tick().await;
            }
            None => std::future::pending().await,
        }
    }
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
    let traffic = Traffic::shared();
    let endpoint = match Endpoint::parse(&config.server) {
        Ok(e) => e,
        Err(e) => {
            let reason = ClosedReason::Unreachable(e.to_string());
            let _ = events.send(ClientEvent::Closed { reason }).await;
            return;
        }
    };
    // The conditioner's relay lives as long as the task: links connect to it.
    let relay = match config.conditioner {
        Some(c) => match Relay::start(&endpoint, c).await {
            Ok(r) => Some(r),
            Err(e) => {
                let reason = ClosedReason::Unreachable(e.to_string());
                let _ = events.send(ClientEvent::Closed { reason }).await;
                return;
            }
        },
        None => None,
    };
    let mut target = Target {
        endpoint: relay.as_ref().map_or(endpoint, |r| r.endpoint().clone()),
        room: config.room.clone(),
        format: config.format,
        traffic: traffic.clone(),
    };
    let mut meter = Meter {
        // Without live reports nobody reads the window: keep the run only.
        lag: if config.lag_every.is_some() {
            LagMeter::new()
        } else {
            LagMeter::run_only()
        },
        traffic,
        every: config.lag_every.map(|d| {
            let mut i = tokio::time::interval(d);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            i
        }),
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
        let before = target.endpoint.clone();
        let connected = {
            let mut connecting = pin!(Link::connect_following(transport, &mut target, &hello));
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
                (reconnect.handle_connect_error(&e, Instant::now()), false)
            }
            Ok((mut link, chosen)) => {
                if target.endpoint != before {
                    let server = server_words(&target.endpoint.base());
                    if events.send(ClientEvent::Moved { server }).await.is_err() {
                        break ClosedReason::Left;
                    }
                }
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
                meter.lag.handle_connected(unix_us());
                let end = drive(
                    &mut link,
                    &mut session,
                    &mut reconnect,
                    &mut meter,
                    &mut commands,
                    &events,
                )
                .await;
                let welcomed = session.is_welcomed();
                session.handle_disconnected();
                meter.lag.handle_disconnected(unix_us());
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
                            Instant::now(),
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
    let _ = events.send(meter.report()).await;
    let _ = events.send(ClientEvent::Closed { reason }).await;
    drop(relay);
}

/// Pumps one open link until it ends.
async fn drive(
    link: &mut Link,
    session: &mut Session,
    reconnect: &mut Reconnect,
    meter: &mut Meter,
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
        // A message to send, and when its key was pressed (inputs).
        let out: Option<(ClientMsg, Option<u64>)> = tokio::select! {
            ev = link.recv() => match ev {
                LinkEvent::Msg(msg) => {
                    meter.lag.handle_server(&msg, unix_us());
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
                Some(Command::Steer(d, at)) => session.steer(d).map(|m| (m, Some(at))),
                Some(Command::Boost(on, at)) => session.boost(on).map(|m| (m, Some(at))),
                Some(Command::Chat(t)) => Some((session.chat(t), None)),
                Some(Command::Resync) => Some((session.resync(), None)),
                Some(Command::Leave) => {
                    let _ = link.send(&session.leave()).await;
                    return End::Left;
                }
            },
            () = timer => match session.handle_timeout(Instant::now(), unix_us()) {
                Some(TimerAction::Send(m)) => Some((m, None)),
                Some(TimerAction::Dead) => {
                    let d = Disconnect::Lost("the server went silent".into());
                    return End::Disconnect(d);
                }
                None => None,
            },
            () = meter.due() => {
                if events.send(meter.report()).await.is_err() {
                    return End::ConsumerGone;
                }
                None
            }
        };
        let Some((msg, pressed)) = out else { continue };
        if let Err(d) = link.send(&msg).await {
            return End::Disconnect(d);
        }
        if let ClientMsg::Input(i) = msg {
            meter
                .lag
                .handle_input_sent(i.seq, pressed.unwrap_or_else(unix_us));
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
