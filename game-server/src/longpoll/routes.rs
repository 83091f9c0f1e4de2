//! The warp filters of the session endpoints; `crate::routes` mounts them.

use std::collections::HashMap;
use std::convert::Infallible;

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
        .then(super::poll);
    let send = warp::path!("rooms" / String / "sessions" / String / "send")
        .and(warp::post())
        .and(header("authorization"))
        .and(header("content-type"))
        .and(crate::routes::body(&state))
        .and(with_state(state.clone()))
        .then(super::send);
    let delete = warp::path!("rooms" / String / "sessions" / String)
        .and(warp::delete())
        .and(header("authorization"))
        .and(with_state(state))
        .then(super::delete);
    create.or(poll).unify().or(send).unify().or(delete).unify()
}
