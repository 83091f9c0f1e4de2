//! The warp filters of the session endpoints; `crate::routes` mounts them.

use std::collections::HashMap;
use std::convert::Infallible;

use tracing::Instrument;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::routes::AppState;

fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

fn header(
    name: &'static str,
) -> impl Filter<Extract = (Option<String>,), Error = Rejection> + Clone {
    warp::header::optional::<String>(name)
}

/// The span of one request of a polled session (debug level: one per
/// request is too many for the default `info`). The ids come from the URL,
/// so they are sanitised before they reach a log line.
fn session_span(call: &'static str, room: &str, session: &str) -> tracing::Span {
    tracing::debug_span!(
        "session",
        call,
        room = %protocol::text::sanitize_line(room, 40),
        id = %protocol::text::sanitize_line(session, 40),
    )
}

/// `POST /rooms/{room}/sessions`, `GET .../poll`, `POST .../send`, `DELETE`.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let create = warp::path!("rooms" / String / "sessions")
        .and(warp::post())
        .and(header("content-type"))
        .and(header("accept"))
        .and(crate::routes::body(&state))
        .and(with_state(state.clone()))
        .then(super::create);
    let poll = warp::path!("rooms" / String / "sessions" / String / "poll")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(header("authorization"))
        .and(with_state(state.clone()))
        .then(|room: String, session: String, q, auth, s| {
            let span = session_span("poll", &room, &session);
            super::poll(room, session, q, auth, s).instrument(span)
        });
    let send = warp::path!("rooms" / String / "sessions" / String / "send")
        .and(warp::post())
        .and(header("authorization"))
        .and(header("content-type"))
        .and(crate::routes::body(&state))
        .and(with_state(state.clone()))
        .then(|room: String, session: String, auth, ct, body, s| {
            let span = session_span("send", &room, &session);
            super::send(room, session, auth, ct, body, s).instrument(span)
        });
    let delete = warp::path!("rooms" / String / "sessions" / String)
        .and(warp::delete())
        .and(header("authorization"))
        .and(with_state(state))
        .then(|room: String, session: String, auth, s| {
            let span = session_span("leave", &room, &session);
            super::delete(room, session, auth, s).instrument(span)
        });
    create.or(poll).unify().or(send).unify().or(delete).unify()
}
