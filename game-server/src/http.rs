//! HTTP answers every transport shares: the contract's JSON error
//! (`{"error", "code"}`), byte replies, and request bodies read within the
//! limits. The transports and the router import this module; it imports
//! none of them, so no lower module reaches up into the router.

use std::sync::Arc;

use bytes::Bytes;
use protocol::Format;
use protocol::api::ApiError;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::limits::counters::bump;
use crate::limits::{Counters, Limits};

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

/// A rejection that the router's recovery turns into [`error_reply`] with
/// these status, code and message.
#[derive(Debug)]
pub struct ApiReject {
    /// The HTTP status of the answer.
    pub status: StatusCode,
    /// The contract's snake_case `code`.
    pub code: &'static str,
    /// The human message.
    pub message: String,
}

impl warp::reject::Reject for ApiReject {}

/// Rejects a request with a JSON error (see [`ApiReject`]).
pub fn reject(status: StatusCode, code: &'static str, message: impl Into<String>) -> Rejection {
    warp::reject::custom(ApiReject {
        status,
        code,
        message: message.into(),
    })
}

/// `body` with `status`, its format's content type and no caching (every
/// answer of a polled session is for one client, once).
pub fn bytes_reply(status: StatusCode, format: Format, body: Bytes) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    r.headers_mut().insert(
        warp::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    r
}

/// A request body of at most `limits.max_body` bytes (a `Content-Length`
/// is required: `411`, over the limit: `413`) that must arrive within
/// `limits.request_timeout` (else `408`), against slow-body slowloris.
pub fn body(
    limits: Arc<Limits>,
    counters: Arc<Counters>,
) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::body::content_length_limit(limits.max_body)
        .and(warp::body::stream())
        .and_then(move |chunks| collect_body(chunks, limits.clone(), counters.clone()))
}

async fn collect_body<B: bytes::Buf>(
    chunks: impl futures_util::Stream<Item = Result<B, warp::Error>>,
    limits: Arc<Limits>,
    counters: Arc<Counters>,
) -> Result<Bytes, Rejection> {
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
                bump(&counters.bodies_too_large);
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
            bump(&counters.body_timeouts);
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

/// The `404 unknown_room` answer for a room id from a URL (sanitised: it
/// is whatever the client typed).
pub fn unknown_room(id: &str) -> Response {
    error_reply(
        StatusCode::NOT_FOUND,
        "unknown_room",
        unknown_room_message(id),
    )
}

/// The message of [`unknown_room`].
pub fn unknown_room_message(id: &str) -> String {
    format!("no room named {:?}", protocol::text::sanitize_line(id, 40))
}
