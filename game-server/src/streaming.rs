//! Long-lived streaming HTTP replies (SSE and watch) whose chunks are
//! `Bytes` handed over as they are, so a frame shared by every spectator is
//! never copied on its way to the socket.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use warp::Reply;
use warp::http::HeaderValue;
use warp::reply::Response;

/// Makes a `Send` stream `Sync`, as warp's streaming body asks: the stream
/// is only ever polled through `&mut`, so the mutex is never contended
/// (`get_mut` takes no lock).
struct SyncStream(Mutex<Pin<Box<dyn Stream<Item = Bytes> + Send>>>);

impl Stream for SyncStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let inner = self
            .get_mut()
            .0
            .get_mut()
            .unwrap_or_else(|e| e.into_inner());
        inner.as_mut().poll_next(cx).map(|b| b.map(Ok))
    }
}

/// A `200` streaming reply for spectators: `content_type`, no caching, no
/// proxy buffering (`X-Accel-Buffering: no` for nginx), CORS `*`. The
/// response ends when `chunks` does.
pub fn reply(
    chunks: impl Stream<Item = Bytes> + Send + 'static,
    content_type: &'static str,
) -> Response {
    let body = SyncStream(Mutex::new(chunks.boxed()));
    let mut resp = warp::reply::stream(body).into_response();
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static(content_type));
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    resp
}
