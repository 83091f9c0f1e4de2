//! Every HTTP route of the server, in one place (the session endpoints'
//! filters are mounted from `longpoll`). Handlers live with their
//! transport; shared state enters through `with_state`, and each transport
//! gets only the narrow context it needs (`WsContext`, `PollContext`, a
//! room behind the `sse`/`watch` traits). This is the top of the module
//! graph: it imports the transports, none of them imports it.

mod usage;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use protocol::api::{CreateRoom, ServerTime};
use tokio::sync::watch;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::clock::now_us;
use crate::http::{ApiReject, error_reply, reject};
use crate::longpoll::PollContext;
use crate::metrics::Transport;
use crate::room::RoomHandle;
use crate::rooms::Rooms;
use crate::spectators::Watched;

/// What every handler may need.
#[derive(Clone)]
pub struct AppState {
    pub rooms: Rooms,
    pub shutdown: watch::Receiver<bool>,
    /// Interval of SSE `: keepalive` comments.
    pub keepalive: std::time::Duration,
    /// Long-poll and short-poll sessions.
    pub sessions: crate::longpoll::PolledSessions,
    /// Everything `GET /metrics` reports.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Sizes, rates and timeouts.
    pub limits: Arc<crate::limits::Limits>,
    /// How often each limit bit.
    pub counters: Arc<crate::limits::Counters>,
    /// The address the server listens on (the usage page's host when a
    /// request names none).
    pub local_addr: std::net::SocketAddr,
    /// The node's part in a cluster (`--nats`); `None` on a single node.
    pub cluster: Option<crate::cluster::Cluster>,
}

fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// The room named in the path, or a 404 `unknown_room`.
async fn find_room(room: String, s: AppState) -> Result<(RoomHandle, AppState), Rejection> {
    match s.rooms.get(&room) {
        Some(h) => Ok((h, s)),
        None => Err(reject(
            StatusCode::NOT_FOUND,
            "unknown_room",
            crate::http::unknown_room_message(&room),
        )),
    }
}

/// The room named in the path for a spectator: this node's, else (in a
/// cluster) a mirror of the owner's; a 404 `unknown_room` when nobody has it.
async fn find_watched(room: String, s: AppState) -> Result<(Watched, String, AppState), Rejection> {
    if let Some(h) = s.rooms.get(&room) {
        return Ok((Watched::Local(h), room, s));
    }
    if let Some(c) = &s.cluster {
        match c.mirrors.get(&room).await {
            Ok(m) => return Ok((Watched::Mirror(m), room, s)),
            Err(crate::cluster::MirrorError::Unknown(_)) => {}
            Err(e) => {
                return Err(reject(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "origin_unreachable",
                    e.to_string(),
                ));
            }
        }
    }
    Err(reject(
        StatusCode::NOT_FOUND,
        "unknown_room",
        crate::http::unknown_room_message(&room),
    ))
}

/// In a cluster, a player's request for a room another node owns (a
/// WebSocket upgrade, any polled-session call) is sent there: `307` keeps
/// the method and body. Rejected (not found) everywhere else, so the
/// request goes on to the routes below.
fn to_owner(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path("rooms")
        .and(warp::path::param::<String>())
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(with_state(state))
        .and_then(
            |room: String, full: warp::path::FullPath, query: String, s: AppState| async move {
                // A WebSocket that says `?role=spectator` is served here,
                // from the room's mirror by the fan-out's door (`mirror_ws` answers what it declines).
                let player = match full.as_str().split('/').nth(3) {
                    Some("sessions") => true,
                    Some("ws") => !crate::fanout::door::spectator_query(&query),
                    _ => false,
                };
                let owner = match &s.cluster {
                    Some(c) if player && s.rooms.get(&room).is_none() => c.owner(&room),
                    _ => None,
                };
                let Some(owner) = owner else {
                    return Err(warp::reject::not_found());
                };
                let query = if query.is_empty() {
                    query
                } else {
                    format!("?{query}")
                };
                let location = format!("{}{}{query}", owner.url, full.as_str());
                let mut r = error_reply(
                    StatusCode::TEMPORARY_REDIRECT,
                    "elsewhere",
                    format!(
                        "room {room:?} is played on node {} at {}; go there",
                        owner.node, owner.url
                    ),
                );
                if let Ok(v) = warp::http::HeaderValue::from_str(&location) {
                    r.headers_mut().insert("location", v);
                }
                Ok(r)
            },
        )
}

/// `GET /rooms/{room}/ws?role=spectator` for a room another node of the
/// cluster owns, when the fan-out's WebSocket door (which serves these
/// from this node's mirror) declined it: not a handshake (426, pointing at
/// SSE), no mirror to be had (503 with why, or 404). Rejected (not found)
/// for a room of this node's, without the query or outside a cluster, so
/// the request goes on to the room's own WebSocket.
fn mirror_ws(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("rooms" / String / "ws")
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(with_state(state))
        .and_then(|room: String, query: String, s: AppState| async move {
            if s.cluster.is_some()
                && crate::fanout::door::spectator_query(&query)
                && s.rooms.get(&room).is_none()
            {
                Ok((room, s))
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(crate::upgrade::upgrade())
        .then(
            |room: String,
             s: AppState,
             ws: Result<crate::upgrade::Upgrade, crate::upgrade::NotUpgrade>| async move {
                if let Err(why) = ws {
                    let words = format!(
                        "{why}; without WebSockets, watch over SSE: GET /rooms/{}/events",
                        protocol::text::sanitize_line(&room, 40)
                    );
                    return not_upgrade_in(&why, words);
                }
                let mirror = match &s.cluster {
                    Some(c) => c.mirrors.get(&room).await,
                    None => Err(crate::cluster::MirrorError::Unknown(room.clone())),
                };
                match mirror {
                    Err(e @ crate::cluster::MirrorError::NoKeyframe { .. }) => error_reply(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "origin_unreachable",
                        e.to_string(),
                    ),
                    Err(crate::cluster::MirrorError::Unknown(_)) => error_reply(
                        StatusCode::NOT_FOUND,
                        "unknown_room",
                        crate::http::unknown_room_message(&room),
                    ),
                    // The door takes only plain room ids (the router
                    // decodes a percent-encoded one).
                    Ok(_) => error_reply(
                        StatusCode::NOT_FOUND,
                        "unknown_room",
                        format!(
                            "{}; spell the room id without percent-encoding",
                            crate::http::unknown_room_message(&room)
                        ),
                    ),
                }
            },
        )
}

impl AppState {
    /// The rooms `GET /` and `GET /api/rooms` show: this node's, and in a
    /// cluster every node's (with its owner's URL in the JSON).
    fn listing(&self) -> (Vec<protocol::api::RoomInfo>, Response) {
        let local = self.rooms.list();
        match &self.cluster {
            None => (local.clone(), warp::reply::json(&local).into_response()),
            Some(c) => {
                let all = c.list(local);
                let infos = all.iter().map(|l| l.room.clone()).collect();
                (infos, warp::reply::json(&all).into_response())
            }
        }
    }

    /// What the polled-session handlers get of the state.
    fn poll_context(&self) -> PollContext {
        PollContext {
            rooms: self.rooms.clone(),
            sessions: self.sessions.clone(),
            shutdown: self.shutdown.clone(),
            limits: self.limits.clone(),
            counters: self.counters.clone(),
        }
    }
}

/// All routes, with every rejection turned into a JSON error.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let cors = |r: Response| {
        warp::reply::with_header(r, "access-control-allow-origin", "*").into_response()
    };

    let index = warp::path::end()
        .and(warp::get())
        .and(warp::header::optional::<String>("host"))
        .and(with_state(state.clone()))
        .map(move |host: Option<String>, s: AppState| {
            let host = usage::host(host.as_deref(), s.local_addr);
            let mut page = usage::page(&s.listing().0, &host);
            if let Some(c) = &s.cluster {
                page.push_str(&c.usage(s.rooms.list()));
            }
            cors(page.into_response())
        });
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(move || cors("ok".into_response()));
    let time = warp::path!("api" / "time").and(warp::get()).map(move || {
        cors(
            warp::reply::json(&ServerTime {
                server_time_us: now_us(),
            })
            .into_response(),
        )
    });
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_state(state.clone()))
        .map(move |s: AppState| {
            let mut r = Response::new(s.metrics.encode().into());
            r.headers_mut().insert(
                "content-type",
                warp::http::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        });
    let list = warp::path!("api" / "rooms")
        .and(warp::get())
        .and(with_state(state.clone()))
        .map(move |s: AppState| cors(s.listing().1));
    let create = warp::path!("api" / "rooms")
        .and(warp::post())
        .and(crate::http::body(
            state.limits.clone(),
            state.counters.clone(),
        ))
        .and(with_state(state.clone()))
        .and(warp::ext::optional::<crate::accept::Peer>())
        .and_then(create_room);
    let events = warp::path!("rooms" / String / "events")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and_then(find_watched)
        .and(warp::header::optional::<String>("last-event-id"))
        .then(
            |(room, id, s): (Watched, String, AppState), last: Option<String>| async move {
                let metrics = crate::sse::SseMetrics {
                    conn: s.metrics.conn(Transport::Sse, &id),
                    room: s.metrics.room(&id),
                };
                match room {
                    Watched::Local(r) => crate::sse::serve(r, metrics, last, s.keepalive).await,
                    Watched::Mirror(m) => crate::sse::serve(m, metrics, last, s.keepalive).await,
                }
            },
        );
    let watch = warp::path!("rooms" / String / "watch")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(warp::query::<HashMap<String, String>>())
        .and_then(
            |room: String, s: AppState, q: HashMap<String, String>| async move {
                let (room, id, s) = find_watched(room, s).await?;
                let opts = crate::watch::stream::parse_options(&q)
                    .map_err(|msg| reject(StatusCode::BAD_REQUEST, "bad_request", msg))?;
                let conn = s.metrics.conn(Transport::Watch, &id);
                Ok::<_, Rejection>(match room {
                    Watched::Local(r) => crate::watch::stream::serve(r, conn, opts, s.shutdown),
                    Watched::Mirror(m) => crate::watch::stream::serve(m, conn, opts, s.shutdown),
                })
            },
        );
    let ws = warp::path!("rooms" / String / "ws")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and_then(find_room)
        .and(crate::upgrade::upgrade())
        .and(warp::ext::optional::<crate::accept::Peer>())
        .map(
            |(room, s): (RoomHandle, AppState),
             ws: Result<crate::upgrade::Upgrade, crate::upgrade::NotUpgrade>,
             peer: Option<crate::accept::Peer>| {
                let ws = match ws {
                    Ok(ws) => ws,
                    Err(why) => return not_upgrade(&room.config.id, &why),
                };
                let ctx = crate::ws::WsContext {
                    shutdown: s.shutdown,
                    limits: s.limits,
                    counters: s.counters,
                    peer: peer.map(|p| p.0),
                };
                ws.on_upgrade(move |io| crate::ws::serve(io, Vec::new(), room, ctx))
            },
        );

    // The browser's pages first: `GET /` that prefers HTML is the lobby;
    // anything else falls through to the text page below, unchanged.
    crate::web::pages()
        .or(index)
        .unify()
        .or(to_owner(state.clone()))
        .unify()
        .or(healthz)
        .unify()
        .or(time)
        .unify()
        .or(metrics)
        .unify()
        .or(list)
        .unify()
        .or(create)
        .unify()
        .or(mirror_ws(state.clone()))
        .unify()
        .or(ws)
        .unify()
        .or(events)
        .unify()
        .or(watch)
        .unify()
        .or(crate::longpoll::routes(state.poll_context()))
        .unify()
        .recover(move |e| recover(e, state.counters.clone(), state.limits.max_body))
        .unify()
}

async fn create_room(
    body: bytes::Bytes,
    s: AppState,
    peer: Option<crate::accept::Peer>,
) -> Result<Response, Rejection> {
    let req: CreateRoom = if body.iter().all(u8::is_ascii_whitespace) {
        CreateRoom::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            reject(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("invalid room request: {e}"),
            )
        })?
    };
    if let Some(c) = s.cluster.as_ref().filter(|c| c.edge) {
        // The room exists in the cluster: what a single node says, 409.
        if let Some(owner) = req.id.as_deref().and_then(|id| c.owner(id)) {
            return Err(reject(
                StatusCode::CONFLICT,
                "room_exists",
                format!("a room of that name exists, on node {}", owner.node),
            ));
        }
        return Err(reject(
            StatusCode::FORBIDDEN,
            "edge",
            "this node is an edge of a cluster and owns no rooms; create the room on an \
             origin (GET /api/rooms lists the rooms with their nodes' URLs)",
        ));
    }
    match s.rooms.create_for_client(req, peer.map(|p| p.0.ip())) {
        Ok(info) => Ok(
            warp::reply::with_status(warp::reply::json(&info), StatusCode::CREATED).into_response(),
        ),
        Err(e) => Err(reject(e.status(), e.code(), e.to_string())),
    }
}

async fn recover(
    err: Rejection,
    counters: Arc<crate::limits::Counters>,
    max_body: u64,
) -> Result<Response, Infallible> {
    let r = if let Some(ApiReject {
        status,
        code,
        message,
    }) = err.find::<ApiReject>()
    {
        error_reply(*status, code, message.clone())
    } else if err.is_not_found() {
        error_reply(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint; GET / lists them",
        )
    } else if err.find::<warp::reject::PayloadTooLarge>().is_some() {
        crate::limits::counters::bump(&counters.bodies_too_large);
        error_reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is over the limit of {max_body} bytes"),
        )
    } else if err.find::<warp::reject::MethodNotAllowed>().is_some() {
        error_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed here",
        )
    } else if err.find::<warp::reject::LengthRequired>().is_some() {
        error_reply(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "a Content-Length is required",
        )
    } else if let Some(e) = err.find::<warp::reject::MissingHeader>() {
        error_reply(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the request has no {} header", e.name()),
        )
    } else if let Some(e) = err.find::<warp::reject::InvalidHeader>() {
        error_reply(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the request's {} header is not valid", e.name()),
        )
    } else if err.find::<warp::reject::InvalidQuery>().is_some() {
        error_reply(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the query string is not valid",
        )
    } else if err.find::<warp::reject::UnsupportedMediaType>().is_some() {
        error_reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "this content type is not accepted here",
        )
    } else {
        // Never an internal type's debug text in a reply: it goes to the log.
        tracing::debug!(?err, "unhandled rejection");
        error_reply(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the server cannot serve this request; GET / lists the endpoints",
        )
    };
    let mut r = r;
    // The body was not (all) read: close rather than wait for the rest of
    // it (or a slow client) before the next request on this connection.
    if matches!(
        r.status(),
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT | StatusCode::LENGTH_REQUIRED
    ) {
        r.headers_mut()
            .insert("connection", warp::http::HeaderValue::from_static("close"));
    }
    Ok(r)
}

/// The `426` (or `400`) answer of a WebSocket endpoint to a request that
/// is not a WebSocket handshake: what was missing, and where the same game
/// runs over plain HTTP.
fn not_upgrade(room: &str, why: &crate::upgrade::NotUpgrade) -> Response {
    let words = format!(
        "{why}; without WebSockets, play over long-poll: POST /rooms/{}/sessions",
        protocol::text::sanitize_line(room, 40)
    );
    not_upgrade_in(why, words)
}

/// The answer of a WebSocket endpoint to a request that is not a
/// handshake, in `words` (what was missing, and what works without).
fn not_upgrade_in(why: &crate::upgrade::NotUpgrade, words: String) -> Response {
    let mut r = error_reply(
        why.status(),
        if why.status() == StatusCode::UPGRADE_REQUIRED {
            "upgrade_required"
        } else {
            "bad_request"
        },
        words,
    );
    let h = r.headers_mut();
    h.insert("upgrade", warp::http::HeaderValue::from_static("websocket"));
    h.insert(
        "sec-websocket-version",
        warp::http::HeaderValue::from_static("13"),
    );
    r
}
