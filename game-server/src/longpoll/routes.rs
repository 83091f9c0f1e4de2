//! The warp filters of the session endpoints; `crate::routes` mounts them.

use std::collections::HashMap;
use std::convert::Infallible;

use tracing::Instrument;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::PollContext;
use crate::http::body;

fn with_context(
    cx: PollContext,
) -> impl Filter<Extract = (PollContext,), Error = Infallible> + Clone {
    warp::any().map(move || cx.clone())
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
pub fn routes(cx: PollContext) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let body = || body(cx.limits.clone(), cx.counters.clone());
    let create =
        warp::path!("rooms" / String / "sessions")
            .and(warp::post())
            .and(header("content-type"))
            .and(header("accept"))
            .and(body())
            .and(with_context(cx.clone()))
            .then(
                |room: String,
                 ct: Option<String>,
                 accept: Option<String>,
                 body,
                 cx: PollContext| async move {
                    match cx.rooms.get(&room) {
                        Some(room) => super::handlers::create(room, ct, accept, body, cx).await,
                        None => crate::http::unknown_room(&room),
                    }
                },
            );
    let poll = warp::path!("rooms" / String / "sessions" / String / "poll")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(header("authorization"))
        .and(with_context(cx.clone()))
        .then(|room: String, session: String, q, auth, cx| {
            let span = session_span("poll", &room, &session);
            super::handlers::poll(room, session, q, auth, cx).instrument(span)
        });
    let send = warp::path!("rooms" / String / "sessions" / String / "send")
        .and(warp::post())
        .and(header("authorization"))
        .and(header("content-type"))
        .and(body())
        .and(with_context(cx.clone()))
        .then(|room: String, session: String, auth, ct, body, cx| {
            let span = session_span("send", &room, &session);
            super::handlers::send(room, session, auth, ct, body, cx).instrument(span)
        });
    let delete = warp::path!("rooms" / String / "sessions" / String)
        .and(warp::delete())
        .and(header("authorization"))
        .and(with_context(cx))
        .then(|room: String, session: String, auth, cx| {
            let span = session_span("leave", &room, &session);
            super::handlers::delete(room, session, auth, cx).instrument(span)
        });
    create.or(poll).unify().or(send).unify().or(delete).unify()
}
