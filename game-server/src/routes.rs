//! Every HTTP route of the server, in one place. Handlers live with their
//! transport (`ws`) or below; shared state enters through `with_state`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use protocol::api::{ApiError, CreateRoom, ServerTime};
use tokio::sync::watch;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::clock::now_us;
use crate::room::RoomHandle;
use crate::rooms::Rooms;

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
}

fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// Longest error message, in characters.
const MAX_ERROR_CHARS: usize = 300;

/// A JSON error response per the contract. The message is sanitised: it
/// may quote what a client sent (a decode error names what it saw).
pub fn error_reply(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = ApiError {
        error: protocol::text::sanitize_line(&message.into(), MAX_ERROR_CHARS),
        code: code.into(),
    };
    let reply = warp::reply::with_status(warp::reply::json(&body), status);
    warp::reply::with_header(reply, "access-control-allow-origin", "*").into_response()
}

#[derive(Debug)]
struct ApiReject(StatusCode, &'static str, String);
impl warp::reject::Reject for ApiReject {}

/// The room named in the path, or a 404 `unknown_room`.
async fn find_room(room: String, s: AppState) -> Result<(RoomHandle, AppState), Rejection> {
    match s.rooms.get(&room) {
        Some(h) => Ok((h, s)),
        None => Err(reject(
            StatusCode::NOT_FOUND,
            "unknown_room",
            format!(
                "no room named {:?}",
                protocol::text::sanitize_line(&room, 40)
            ),
        )),
    }
}

fn reject(status: StatusCode, code: &'static str, message: impl Into<String>) -> Rejection {
    warp::reject::custom(ApiReject(status, code, message.into()))
}

/// A request body of at most `limits.max_body` bytes (a `Content-Length`
/// is required: `411`, over the limit: `413`) that must arrive within
/// `limits.request_timeout` (else `408`), against slow-body slowloris.
pub fn body(
    state: &AppState,
) -> impl Filter<Extract = (bytes::Bytes,), Error = Rejection> + Clone + use<> {
    let (limits, counters) = (state.limits.clone(), state.counters.clone());
    warp::body::content_length_limit(limits.max_body)
        .and(warp::body::stream())
        .and_then(move |chunks| collect_body(chunks, limits.clone(), counters.clone()))
}

async fn collect_body<B: bytes::Buf>(
    chunks: impl futures_util::Stream<Item = Result<B, warp::Error>>,
    limits: Arc<crate::limits::Limits>,
    counters: Arc<crate::limits::Counters>,
) -> Result<bytes::Bytes, Rejection> {
    use futures_util::StreamExt;
    let max = limits.max_body;
    let collect = async {
        let mut chunks = std::pin::pin!(chunks);
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| {
                reject(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("reading the body: {e}"),
                )
            })?;
            bytes::BufMut::put(&mut body, chunk);
            // Content-Length already bounds it; this bounds a lying one.
            if body.len() as u64 > max {
                crate::limits::counters::bump(&counters.bodies_too_large);
                return Err(reject(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("the request body is over the limit of {max} bytes"),
                ));
            }
        }
        Ok(body.freeze())
    };
    match tokio::time::timeout(limits.request_timeout, collect).await {
        Ok(r) => r,
        Err(_) => {
            crate::limits::counters::bump(&counters.body_timeouts);
            Err(reject(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within {} s",
                    limits.request_timeout.as_secs_f64()
                ),
            ))
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
        .and(with_state(state.clone()))
        .map(move |s: AppState| cors(usage_page(&s).into_response()));
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
        .map(move |s: AppState| cors(warp::reply::json(&s.rooms.list()).into_response()));
    let create = warp::path!("api" / "rooms")
        .and(warp::post())
        .and(body(&state))
        .and(with_state(state.clone()))
        .and(warp::ext::optional::<crate::accept::Peer>())
        .and_then(create_room);
    let events = warp::path!("rooms" / String / "events")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and_then(find_room)
        .and(warp::header::optional::<String>("last-event-id"))
        .then(|(room, s): (RoomHandle, AppState), last: Option<String>| {
            crate::sse::serve(room, last, s.keepalive)
        });
    let watch = warp::path!("rooms" / String / "watch")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and_then(find_room)
        .and(warp::query::<HashMap<String, String>>())
        .and_then(
            |(room, s): (RoomHandle, AppState), q: HashMap<String, String>| async move {
                match crate::watch::stream::parse_options(&q) {
                    Ok(opts) => Ok(crate::watch::stream::serve(room, opts, s.shutdown)),
                    Err(msg) => Err(reject(StatusCode::BAD_REQUEST, "bad_request", msg)),
                }
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
             ws: crate::upgrade::Upgrade,
             peer: Option<crate::accept::Peer>| {
                let max = s.limits.ws_max_message;
                let ctx = crate::ws::WsContext {
                    shutdown: s.shutdown,
                    limits: s.limits,
                    counters: s.counters,
                    peer: peer.map(|p| p.0),
                };
                ws.max_message_size(max)
                    .max_frame_size(max)
                    .on_upgrade(move |socket| crate::ws::serve(socket, room, ctx))
            },
        );

    index
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
        .or(ws)
        .unify()
        .or(events)
        .unify()
        .or(watch)
        .unify()
        .or(crate::longpoll::routes(state.clone()))
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
    let r = if let Some(ApiReject(status, code, msg)) = err.find::<ApiReject>() {
        error_reply(*status, code, msg.clone())
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
    } else if err.find::<warp::reject::MissingHeader>().is_some()
        || err.find::<warp::reject::InvalidHeader>().is_some()
    {
        error_reply(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected a WebSocket upgrade request",
        )
    } else {
        error_reply(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("bad request: {err:?}"),
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

fn usage_page(s: &AppState) -> String {
    let mut page = String::from(
        "Tickwire game server\n\
         ====================\n\n\
         Rooms:\n",
    );
    for r in s.rooms.list() {
        page.push_str(&format!(
            "  {:<12} {} on {}, {}/{} players, {} spectators, {} Hz, tick {}\n",
            r.id, r.mode, r.map, r.players, r.max_players, r.spectators, r.tick_rate, r.tick
        ));
    }
    page.push_str(
        "\nWatch with curl:      curl -N http://THIS-HOST:7878/rooms/lobby/watch\n\
         Stream events:        curl -N http://THIS-HOST:7878/rooms/lobby/events\n\
         \nPlay in a terminal:   cargo run --release -- --server http://THIS-HOST:7878\n\
         Play with JSON:       websocat ws://THIS-HOST:7878/rooms/lobby/ws\n\
         \x20                     then type {\"hello\": {\"version\": 1, \"name\": \"alice\"}}\n\
         \x20                     and steer with {\"input\": {\"seq\": 1, \"dir\": \"up\"}}\n\n\
         Endpoints:\n\
         \x20 GET  /api/rooms            rooms as JSON\n\
         \x20 POST /api/rooms            create: {\"id\":\"duel\",\"mode\":\"tron\",\"map\":\"maze\",\"tick_rate\":30,\"max_players\":4}\n\
         \x20 GET  /api/time             server clock, for lag probes\n\
         \x20 GET  /metrics              Prometheus metrics (OpenMetrics text)\n\
         \x20 GET  /rooms/{room}/ws      WebSocket: play, or spectate with \"role\": \"spectator\"\n\
         \x20 GET  /rooms/{room}/events  SSE spectator stream (text/event-stream, JSON data)\n\
         \x20 GET  /rooms/{room}/watch   live view for curl -N (?color=never&cols=80&rows=24)\n\
         \x20 POST /rooms/{room}/sessions                  long-poll/poll: hello -> welcome (session, token)\n\
         \x20 GET  /rooms/{room}/sessions/{id}/poll?after=N&wait=S   messages after N (Bearer token)\n\
         \x20 POST /rooms/{room}/sessions/{id}/send        {\"messages\": [{\"seq\": 1, \"msg\": {...}}]}\n\
         \x20 DELETE /rooms/{room}/sessions/{id}           leave\n\
         \x20 GET  /healthz              ok\n",
    );
    page
}
