//! The browser client: the lobby and room pages, their script and style,
//! embedded in the binary (no build step, nothing from another origin, so a
//! LAN without internet works).
//!
//! Pages live under `/web/` (and the lobby at `GET /` for a request that
//! prefers HTML): every room URL is under `/rooms/` and the API under
//! `/api/`, so no room id can shadow a page. Every answer carries a strict
//! Content-Security-Policy: scripts, styles and connections from this
//! origin only, no inline script or style, no frames, no plugins.

mod negotiate;

pub use negotiate::prefers_html;

use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

/// The policy every page and asset is served with. `connect-src 'self'`
/// covers the page's own `ws://` origin (CSP level 3), so a WebSocket to
/// the server needs no wider source.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its path under `/web/`, media type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Every file the pages load. A name here is the whole path segment after
/// `/web/`, so the table is the list of what the server will send.
const ASSETS: &[Asset] = &[
    Asset {
        name: "room",
        content_type: HTML,
        body: include_bytes!("../../web/room.html"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/style.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../web/icon.svg"),
    },
    Asset {
        name: "lobby.js",
        content_type: JS,
        body: include_bytes!("../../web/lobby.js"),
    },
    Asset {
        name: "room.js",
        content_type: JS,
        body: include_bytes!("../../web/room.js"),
    },
    Asset {
        name: "world.js",
        content_type: JS,
        body: include_bytes!("../../web/world.js"),
    },
    Asset {
        name: "meter.js",
        content_type: JS,
        body: include_bytes!("../../web/meter.js"),
    },
    Asset {
        name: "links.js",
        content_type: JS,
        body: include_bytes!("../../web/links.js"),
    },
    Asset {
        name: "view.js",
        content_type: JS,
        body: include_bytes!("../../web/view.js"),
    },
];

const LOBBY: &[u8] = include_bytes!("../../web/lobby.html");

/// `bytes` as a page answer: its media type, the CSP and the headers that
/// keep a browser from sniffing or framing it.
fn page(content_type: &'static str, bytes: &'static [u8]) -> Response {
    let mut r = Response::new(bytes.into());
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static(content_type));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    // Pages change with the binary: revalidate rather than run a stale script.
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    r
}

/// `GET /` for a browser (the lobby page) and `GET /web/{file}`. A request
/// for `/` that does not prefer HTML is rejected as not found, so the next
/// route (the text usage page for curl) answers it unchanged.
pub fn pages() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let lobby = warp::path::end()
        .and(warp::get())
        .and(warp::header::optional::<String>("accept"))
        .and_then(|accept: Option<String>| async move {
            if accept.as_deref().is_some_and(prefers_html) {
                Ok(page(HTML, LOBBY))
            } else {
                Err(warp::reject::not_found())
            }
        });
    let asset = warp::path!("web" / String)
        .and(warp::get())
        .map(
            |name: String| match ASSETS.iter().find(|a| a.name == name) {
                Some(a) => page(a.content_type, a.body),
                None => crate::http::error_reply(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "no such page; the lobby is GET / in a browser",
                ),
            },
        );
    lobby.or(asset).unify()
}
