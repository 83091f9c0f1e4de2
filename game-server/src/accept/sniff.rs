//! A request head read before hyper sees it, for the requests the accept
//! layer hands to a [`Handoff`] instead of serving them over HTTP (the SSE
//! fan-out, which writes to the socket itself once the head is answered).
//!
//! The head is *peeked*, never consumed: a request the handoff declines
//! reaches hyper byte for byte, so every answer but the one the handoff
//! gives is hyper's and warp's, unchanged.

use std::future::Future;
use std::pin::Pin;

use super::Conn;

/// The first request head of a connection, as peeked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, without its `?` (empty for none).
    pub query: String,
    /// Header names (lowercased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The head's length in bytes, blank line included.
    pub len: usize,
}

impl Head {
    /// Parses a complete head from the start of `bytes`; `None` when the
    /// head is incomplete or not plain HTTP/1.x (hyper then reads it).
    pub fn parse(bytes: &[u8]) -> Option<Head> {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let text = std::str::from_utf8(&bytes[..end]).ok()?;
        let mut lines = text.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let (method, target, version) = (first.next()?, first.next()?, first.next()?);
        if first.next().is_some() || !version.starts_with("HTTP/1.") {
            return None;
        }
        let mut headers = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (k, v) = line.split_once(':')?;
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        Some(Head {
            method: method.to_string(),
            path: target.split('?').next().unwrap_or(target).to_string(),
            query: target.split_once('?').map_or("", |(_, q)| q).to_string(),
            headers,
            len: end,
        })
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a [`Handoff`] did with a connection.
pub enum Taken {
    /// It took the connection (and consumed the head).
    Yes,
    /// It declined: the connection, untouched, goes to hyper.
    No(Conn),
}

/// Serves some requests below HTTP. Implemented above the accept layer
/// (the SSE fan-out), so `accept` imports none of it.
pub trait Handoff: Send + Sync + 'static {
    /// Whether `head` is one this handoff may take (cheap, no I/O).
    fn wants(&self, head: &Head) -> bool;
    /// Takes the connection for `head`, or gives it back untouched.
    fn take(&self, head: Head, conn: Conn) -> Pin<Box<dyn Future<Output = Taken> + Send>>;
    /// The shutdown grace is over: drop every connection it took that is
    /// still open, as the accept layer drops its own.
    fn abandon(&self);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_only_when_complete_and_plain() {
        let raw =
            b"GET /rooms/lobby/events?x=1 HTTP/1.1\r\nHost: a\r\nLast-Event-ID: 7\r\n\r\nrest";
        let h = Head::parse(raw).unwrap();
        assert_eq!(h.method, "GET");
        assert_eq!(h.path, "/rooms/lobby/events");
        assert_eq!(h.query, "x=1");
        assert_eq!(h.header("last-event-id"), Some("7"));
        assert_eq!(h.len, raw.len() - 4);
        assert_eq!(Head::parse(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
        assert_eq!(Head::parse(b"GET / SPDY/3\r\n\r\n"), None);
        assert_eq!(Head::parse(b"GET /\r\n\r\n"), None);
    }
}
