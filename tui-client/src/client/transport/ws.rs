//! The WebSocket transport: `{server}/rooms/{room}/ws`, JSON text frames or
//! bincode binary frames, `hello` as the first frame.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use protocol::api::ApiError;
use protocol::codec::{self, Format};
use protocol::{ClientMsg, Hello, ServerMsg};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use super::traffic::Counted;
use super::{ConnectError, Disconnect, LinkEvent, Target};

/// How long opening the TCP connection plus the upgrade may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The WebSocket URL of a room: `http` becomes `ws`, `https` becomes `wss`,
/// a bare `host:port` gets `ws://`; the room id is percent-encoded.
pub fn ws_url(server: &str, room: &str) -> Result<String, ConnectError> {
    let server = server.trim();
    let (scheme, rest) = match server.split_once("://") {
        Some((s, rest)) => (s.to_ascii_lowercase(), rest),
        None => ("http".to_string(), server),
    };
    let rest = rest.trim_end_matches('/');
    let ws_scheme = match scheme.as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => {
            return Err(ConnectError::InvalidUrl(format!(
                "unsupported scheme `{other}` in `{server}` (use http:// or ws://)"
            )));
        }
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(ConnectError::InvalidUrl(format!("no host in `{server}`")));
    }
    if room.is_empty() {
        return Err(ConnectError::InvalidUrl("empty room id".into()));
    }
    Ok(format!(
        "{ws_scheme}://{rest}/rooms/{}/ws",
        percent_encode(room)
    ))
}

/// The `host:port` a `ws://` URL connects to (port 80 when none is given).
pub(super) fn authority(url: &str) -> Result<String, ConnectError> {
    let Some(rest) = url.strip_prefix("ws://") else {
        return Err(ConnectError::InvalidUrl(format!(
            "{url}: this build speaks plain ws:// (no TLS)"
        )));
    };
    let host = rest.split('/').next().unwrap_or_default();
    let has_port = match host.rsplit_once(':') {
        // An IPv6 literal's colons are inside the brackets.
        Some((_, port)) => !port.contains(']'),
        None => false,
    };
    Ok(if has_port {
        host.to_string()
    } else {
        format!("{host}:80")
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An open WebSocket to a room.
pub struct WsLink {
    stream: WebSocketStream<Counted<TcpStream>>,
    format: Format,
    closed: bool,
}

impl WsLink {
    /// Connects, upgrades and sends `hello`. The socket is counted (the
    /// upgrade is one request) and has Nagle off: a turn must not wait
    /// for the previous segment's ack.
    pub async fn connect(target: &Target, hello: &Hello) -> Result<WsLink, ConnectError> {
        let url = ws_url(&target.server, &target.room)?;
        let addr = authority(&url)?;
        let open = async {
            let tcp = TcpStream::connect(&addr)
                .await
                .map_err(|e| ConnectError::Unreachable(format!("{url}: {e}")))?;
            // Best effort: a socket without it still works, only slower.
            let _ = tcp.set_nodelay(true);
            target.traffic.request();
            let tcp = Counted::new(tcp, target.traffic.clone());
            tokio_tungstenite::client_async(&url, tcp)
                .await
                .map_err(|e| connect_error(&url, e))
        };
        let (stream, _response) = match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
            Err(_) => {
                return Err(ConnectError::Unreachable(format!(
                    "no answer from {url} within {CONNECT_TIMEOUT:?}"
                )));
            }
            Ok(r) => r?,
        };
        let mut link = WsLink {
            stream,
            format: target.format,
            closed: false,
        };
        link.send(&ClientMsg::Hello(hello.clone()))
            .await
            .map_err(|d| ConnectError::Unreachable(d.to_string()))?;
        Ok(link)
    }

    /// Sends one message in the link's format.
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), Disconnect> {
        let bytes = codec::encode(self.format, msg);
        let frame = match self.format {
            Format::Bincode => Message::Binary(bytes),
            // Invariant: serde_json only ever produces UTF-8.
            Format::Json => match tungstenite::Utf8Bytes::try_from(bytes) {
                Ok(text) => Message::Text(text),
                Err(e) => return Err(Disconnect::BadFrame(e.to_string())),
            },
        };
        self.stream
            .send(frame)
            .await
            .map_err(|e| Disconnect::Lost(e.to_string()))
    }

    /// The next server message or the end of the link. Cancel-safe: it
    /// only awaits the stream's `next`.
    pub async fn recv(&mut self) -> LinkEvent {
        loop {
            if self.closed {
                return LinkEvent::Closed(Disconnect::Lost("link already closed".into()));
            }
            let Some(next) = self.stream.next().await else {
                self.closed = true;
                return LinkEvent::Closed(Disconnect::Lost("connection ended".into()));
            };
            let frame = match next {
                Ok(frame) => frame,
                Err(e) => {
                    self.closed = true;
                    return LinkEvent::Closed(Disconnect::Lost(e.to_string()));
                }
            };
            // The frame type says the format, whatever we asked for.
            let decoded = match &frame {
                Message::Text(t) => codec::decode::<ServerMsg>(Format::Json, t.as_bytes()),
                Message::Binary(b) => codec::decode::<ServerMsg>(Format::Bincode, b),
                Message::Close(close) => {
                    self.closed = true;
                    return LinkEvent::Closed(match close {
                        Some(c) => Disconnect::Closed {
                            code: u16::from(c.code),
                            reason: c.reason.to_string(),
                        },
                        None => Disconnect::Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                    });
                }
                // tungstenite answers pings itself.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            return match decoded {
                Ok(msg) => LinkEvent::Msg(msg),
                Err(e) => {
                    self.closed = true;
                    LinkEvent::Closed(Disconnect::BadFrame(e.to_string()))
                }
            };
        }
    }

    /// Sends a normal close and waits for the server's (best effort,
    /// bounded to a second). Waiting matters: the server queues a `leave`
    /// in its room before it answers the close, so once this returns the
    /// room has the leave ahead of anything this process sends next (a
    /// rejoin under the same name, for one).
    pub async fn close(&mut self) {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            if self.stream.close(Some(frame)).await.is_ok() {
                // Frames still in flight, then the server's close, then the end.
                while let Some(Ok(_)) = self.stream.next().await {}
            }
        })
        .await;
        self.closed = true;
    }
}

fn connect_error(url: &str, e: tungstenite::Error) -> ConnectError {
    match e {
        tungstenite::Error::Http(resp) => {
            let status = resp.status().as_u16();
            let body = resp.body().as_deref().unwrap_or_default();
            match serde_json::from_slice::<ApiError>(body) {
                Ok(api) => ConnectError::Http {
                    status,
                    code: Some(api.code),
                    message: api.error,
                },
                Err(_) => ConnectError::Http {
                    status,
                    code: None,
                    message: resp
                        .status()
                        .canonical_reason()
                        .unwrap_or("HTTP error")
                        .to_string(),
                },
            }
        }
        tungstenite::Error::Url(u) => ConnectError::InvalidUrl(format!("{url}: {u}")),
        other => ConnectError::Unreachable(format!("{url}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_map_to_ws_urls() {
        assert_eq!(
            ws_url("http://127.0.0.1:7878", "lobby").unwrap(),
            "ws://127.0.0.1:7878/rooms/lobby/ws"
        );
        assert_eq!(
            ws_url("https://example.org/", "duel").unwrap(),
            "wss://example.org/rooms/duel/ws"
        );
        assert_eq!(
            ws_url("ws://h:1", "a b/c").unwrap(),
            "ws://h:1/rooms/a%20b%2Fc/ws"
        );
        assert_eq!(
            ws_url("localhost:7878", "lobby").unwrap(),
            "ws://localhost:7878/rooms/lobby/ws"
        );
    }

    #[test]
    fn the_socket_address_comes_from_the_url() {
        assert_eq!(
            authority("ws://127.0.0.1:7878/rooms/lobby/ws").unwrap(),
            "127.0.0.1:7878"
        );
        assert_eq!(
            authority("ws://example.org/rooms/a/ws").unwrap(),
            "example.org:80"
        );
        assert_eq!(authority("ws://[::1]:9/rooms/a/ws").unwrap(), "[::1]:9");
        assert_eq!(authority("ws://[::1]/rooms/a/ws").unwrap(), "[::1]:80");
        assert!(authority("wss://example.org/rooms/a/ws").is_err());
    }

    #[test]
    fn unusable_urls_are_rejected() {
        assert!(matches!(
            ws_url("ftp://h", "lobby"),
            Err(ConnectError::InvalidUrl(_))
        ));
        assert!(matches!(
            ws_url("http://", "lobby"),
            Err(ConnectError::InvalidUrl(_))
        ));
        assert!(matches!(
            ws_url("http://h", ""),
            Err(ConnectError::InvalidUrl(_))
        ));
    }
}
