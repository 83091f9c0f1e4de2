//! How the polled-session handlers answer in HTTP's own words: the status
//! for each [`Refusal`], the JSON errors of an unknown or unauthorized
//! session, and the format a request asks for.

use std::sync::Arc;

use protocol::Format;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{PollContext, PolledSession, Refused};
use crate::conn::Refusal;
use crate::http::error_reply;
use crate::session::AdmitError;

/// The HTTP status that says `r`.
pub(super) fn status(r: &Refusal) -> StatusCode {
    match r {
        Refusal::NotHello | Refusal::BadHello(_) | Refusal::Version { .. } => {
            StatusCode::BAD_REQUEST
        }
        Refusal::Admit(AdmitError::RoomFull(_)) => StatusCode::CONFLICT,
        Refusal::Admit(AdmitError::UnknownSession) => StatusCode::NOT_FOUND,
        Refusal::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        Refusal::Flood { .. } => StatusCode::TOO_MANY_REQUESTS,
    }
}

pub(super) fn refusal_reply(r: &Refusal) -> Response {
    error_reply(status(r), r.code(), r.to_string())
}

pub(super) fn unknown_session() -> Response {
    error_reply(
        StatusCode::NOT_FOUND,
        "unknown_session",
        "no such session (it expired, was taken over or left): join again with a hello, \
         with your token to resume",
    )
}

impl Refused {
    pub(super) fn reply(self) -> Response {
        match self {
            Refused::UnknownSession => unknown_session(),
            Refused::Unauthorized => error_reply(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong session token: send Authorization: Bearer <token from the welcome>",
            ),
        }
    }
}

/// The session a request names, if its token is right; else why not.
pub(super) fn session(
    cx: &PollContext,
    room_id: &str,
    session_id: &str,
    auth: Option<String>,
) -> Result<Arc<PolledSession>, Refused> {
    cx.sessions.authorized(room_id, session_id, auth.as_deref())
}

/// The session format a request asks for: bincode when its body or its
/// accepted answer is `application/octet-stream`.
pub(super) fn format_of(content_type: Option<&str>) -> Format {
    if content_type.is_some_and(|c| c.contains("application/octet-stream")) {
        Format::Bincode
    } else {
        Format::Json
    }
}
