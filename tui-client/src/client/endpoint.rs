//! Where a server's endpoints are: one parsed base URL, and every URL a link
//! asks for built from it and a room id. The room id is percent-encoded as
//! one path segment, so a room may be called `ws`, `events`, `sessions` or
//! `a b/c` and still be only a room.

use super::transport::ConnectError;

/// A server's base URL, parsed once: `http://host:port[/prefix]`
/// (`ws://`, `https://`, `wss://` and a bare `host:port` are accepted too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// TLS (`https`/`wss`).
    secure: bool,
    /// `host[:port]` as written.
    host: String,
    /// A path the server is mounted under (behind a proxy), without a
    /// trailing slash; empty at the root.
    prefix: String,
}

impl Endpoint {
    /// Parses a base URL.
    pub fn parse(server: &str) -> Result<Endpoint, ConnectError> {
        let given = server.trim();
        let (scheme, rest) = match given.split_once("://") {
            Some((s, rest)) => (s.to_ascii_lowercase(), rest),
            None => ("http".to_string(), given),
        };
        let secure = match scheme.as_str() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            other => {
                return Err(ConnectError::InvalidUrl(format!(
                    "unsupported scheme `{other}` in `{given}` (use http:// or ws://)"
                )));
            }
        };
        if rest.contains(['?', '#']) {
            return Err(ConnectError::InvalidUrl(format!(
                "`{given}`: a server URL has no query or fragment"
            )));
        }
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err(ConnectError::InvalidUrl(format!("no host in `{given}`")));
        }
        let path = path.trim_matches('/');
        Ok(Endpoint {
            secure,
            host: host.to_string(),
            prefix: if path.is_empty() {
                String::new()
            } else {
                format!("/{path}")
            },
        })
    }

    /// The same server reached at another `host:port` (the conditioner's
    /// relay), under the same path.
    pub fn at(&self, host: &str) -> Endpoint {
        Endpoint {
            host: host.to_string(),
            ..self.clone()
        }
    }

    /// The node a redirect's `Location` (`…/rooms/{room}/…`) points at:
    /// its base URL, everything before `/rooms/`.
    pub fn moved_to(&self, location: &str) -> Result<Endpoint, ConnectError> {
        let base = location.split("/rooms/").next().unwrap_or(location);
        Endpoint::parse(base)
    }

    /// The `host:port` a TCP connection goes to (port 80 or 443 when none
    /// is written).
    pub fn authority(&self) -> String {
        let has_port = match self.host.rsplit_once(':') {
            // An IPv6 literal's colons are inside the brackets.
            Some((_, port)) => !port.contains(']'),
            None => false,
        };
        if has_port {
            self.host.clone()
        } else {
            let port = if self.secure { 443 } else { 80 };
            format!("{}:{port}", self.host)
        }
    }

    /// True for `https`/`wss`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The base URL, `http[s]://host[:port][/prefix]`.
    pub fn base(&self) -> String {
        self.http()
    }

    fn http(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}{}", self.host, self.prefix)
    }

    fn room(&self, room: &str) -> Result<String, ConnectError> {
        Ok(format!("{}/rooms/{}", self.http(), segment(room)?))
    }

    /// `ws[s]://…/rooms/{room}/ws`: the WebSocket of a room.
    pub fn ws(&self, room: &str) -> Result<String, ConnectError> {
        let scheme = if self.secure { "wss" } else { "ws" };
        Ok(format!(
            "{scheme}://{}{}/rooms/{}/ws",
            self.host,
            self.prefix,
            segment(room)?
        ))
    }

    /// `…/rooms/{room}/events`: the SSE stream of a room.
    pub fn events(&self, room: &str) -> Result<String, ConnectError> {
        Ok(format!("{}/events", self.room(room)?))
    }

    /// `…/rooms/{room}/sessions`: where a polled session is opened.
    pub fn sessions(&self, room: &str) -> Result<String, ConnectError> {
        Ok(format!("{}/sessions", self.room(room)?))
    }

    /// `…/rooms/{room}/sessions/{session}`: one polled session (its
    /// `poll` and `send` are below it).
    pub fn session(&self, room: &str, session: &str) -> Result<String, ConnectError> {
        Ok(format!("{}/{}", self.sessions(room)?, segment(session)?))
    }

    /// `…/api/time`: the server's clock.
    pub fn time(&self) -> String {
        format!("{}/api/time", self.http())
    }
}

/// `s` percent-encoded as one path segment: everything but RFC 3986's
/// unreserved characters is escaped. Empty, `.` and `..` are refused: no
/// encoding keeps them from meaning "this" or "the parent" directory.
fn segment(s: &str) -> Result<String, ConnectError> {
    if matches!(s, "" | "." | "..") {
        return Err(ConnectError::InvalidUrl(format!(
            "`{s}` cannot be a room or session id"
        )));
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(server: &str) -> Endpoint {
        Endpoint::parse(server).unwrap()
    }

    #[test]
    fn every_url_comes_from_the_base_and_the_room() {
        let e = at("http://127.0.0.1:7878");
        assert_eq!(e.ws("lobby").unwrap(), "ws://127.0.0.1:7878/rooms/lobby/ws");
        assert_eq!(
            e.events("lobby").unwrap(),
            "http://127.0.0.1:7878/rooms/lobby/events"
        );
        assert_eq!(
            e.sessions("lobby").unwrap(),
            "http://127.0.0.1:7878/rooms/lobby/sessions"
        );
        assert_eq!(
            e.session("lobby", "s1").unwrap(),
            "http://127.0.0.1:7878/rooms/lobby/sessions/s1"
        );
        assert_eq!(e.time(), "http://127.0.0.1:7878/api/time");
        assert_eq!(e.authority(), "127.0.0.1:7878");
    }

    #[test]
    fn rooms_named_like_endpoints_stay_rooms() {
        let e = at("http://h:1/");
        for room in ["ws", "events", "sessions", "watch", "rooms", "api"] {
            assert_eq!(e.ws(room).unwrap(), format!("ws://h:1/rooms/{room}/ws"));
            assert_eq!(
                e.events(room).unwrap(),
                format!("http://h:1/rooms/{room}/events")
            );
            assert_eq!(
                e.sessions(room).unwrap(),
                format!("http://h:1/rooms/{room}/sessions")
            );
            assert_eq!(
                e.session(room, "x").unwrap(),
                format!("http://h:1/rooms/{room}/sessions/x")
            );
        }
    }

    #[test]
    fn a_room_id_is_one_encoded_path_segment() {
        let e = at("http://h:1");
        assert_eq!(e.ws("a b/c").unwrap(), "ws://h:1/rooms/a%20b%2Fc/ws");
        assert_eq!(
            e.sessions("a b").unwrap(),
            "http://h:1/rooms/a%20b/sessions"
        );
        assert_eq!(
            e.events("x/../y").unwrap(),
            "http://h:1/rooms/x%2F..%2Fy/events"
        );
        assert_eq!(
            e.events("é?#").unwrap(),
            "http://h:1/rooms/%C3%A9%3F%23/events"
        );
        for bad in ["", ".", ".."] {
            assert!(
                matches!(e.ws(bad), Err(ConnectError::InvalidUrl(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn schemes_hosts_and_prefixes() {
        assert_eq!(
            at("localhost:7878").ws("l").unwrap(),
            "ws://localhost:7878/rooms/l/ws"
        );
        let tls = at("https://example.org/");
        assert_eq!(tls.ws("duel").unwrap(), "wss://example.org/rooms/duel/ws");
        assert_eq!(tls.authority(), "example.org:443");
        assert!(tls.is_secure());
        let ws = at("WS://h:1");
        assert_eq!(ws.events("l").unwrap(), "http://h:1/rooms/l/events");
        assert_eq!(at("http://example.org").authority(), "example.org:80");
        assert_eq!(at("ws://[::1]:9").authority(), "[::1]:9");
        assert_eq!(at("ws://[::1]").authority(), "[::1]:80");
        // Behind a proxy, under a path.
        let proxied = at("http://h/tickwire/");
        assert_eq!(proxied.ws("l").unwrap(), "ws://h/tickwire/rooms/l/ws");
        assert_eq!(proxied.time(), "http://h/tickwire/api/time");
        let relayed = proxied.at("127.0.0.1:5");
        assert_eq!(
            relayed.sessions("l").unwrap(),
            "http://127.0.0.1:5/tickwire/rooms/l/sessions"
        );
    }

    #[test]
    fn unusable_base_urls_are_refused() {
        for bad in ["ftp://h", "http://", "http:///x", "http://h/?q", "h#f"] {
            assert!(
                matches!(Endpoint::parse(bad), Err(ConnectError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }
}
