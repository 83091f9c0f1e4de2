//! The WebSocket transport: `{server}/rooms/{room}/ws`, JSON text frames or
//! bincode binary frames, `hello` as the first frame.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use protocol::codec::{self, Format};
use protocol::{ClientMsg, Hello, Role, ServerMsg};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use super::traffic::Counted;
use super::{ConnectError, Disconnect, LinkEvent, Refusal, RefusedBy, Target};

/// How long opening the TCP connection plus the upgrade may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
        let mut url = target.endpoint.ws(&target.room)?;
        // Said in the URL too, so a cluster's edge can serve a spectator
        // itself (the hello comes only after the upgrade); a room's own
        // node ignores it, its hello decides.
        if hello.role == Role::Spectator {
            url.push_str("?role=spectator");
        }
        if target.endpoint.is_secure() {
            return Err(ConnectError::InvalidUrl(format!(
                "{url}: this build speaks plain ws:// (no TLS)"
            )));
        }
        let addr = target.endpoint.authority();
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
                    "no answer from {url} within {} s",
                    CONNECT_TIMEOUT.as_secs()
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
                        Some(c) => closed(u16::from(c.code), &c.reason),
                        None => Disconnect::Lost("closed by the server without a code".into()),
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
        tungstenite::Error::Http(resp)
            if matches!(resp.status().as_u16(), 307 | 308)
                && resp.headers().contains_key("location") =>
        {
            let location = resp.headers()["location"].to_str().unwrap_or_default();
            ConnectError::Moved(location.to_string())
        }
        tungstenite::Error::Http(resp) => ConnectError::http(
            resp.status().as_u16(),
            resp.body().as_deref().unwrap_or_default(),
        ),
        tungstenite::Error::Url(u) => ConnectError::InvalidUrl(format!("{url}: {u}")),
        other => ConnectError::Unreachable(format!("{url}: {other}")),
    }
}

/// What a close frame from the server means, in transport-neutral words.
fn closed(code: u16, reason: &str) -> Disconnect {
    let reason = &super::server_words(reason);
    let named = match code {
        1001 => {
            let why = if reason.is_empty() {
                "going away"
            } else {
                reason
            };
            return Disconnect::ShuttingDown(why.to_string());
        }
        1002 => "protocol_error",
        1003 => "unsupported_data",
        1007 => "bad_message",
        1008 => "policy_violation",
        1009 => "message_too_big",
        1010 => "extension_required",
        _ if reason.is_empty() => {
            return Disconnect::Lost(format!("closed by the server (code {code})"));
        }
        _ => return Disconnect::Lost(format!("closed by the server (code {code}): {reason}")),
    };
    Disconnect::Refused(Refusal {
        by: RefusedBy::Close(code),
        code: named.to_string(),
        reason: reason.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_become_reasons() {
        assert_eq!(
            closed(1001, "restart"),
            Disconnect::ShuttingDown("restart".into())
        );
        assert_eq!(
            closed(1009, "frame too big"),
            Disconnect::Refused(Refusal {
                by: RefusedBy::Close(1009),
                code: "message_too_big".into(),
                reason: "frame too big".into(),
            })
        );
        assert!(matches!(closed(1008, ""), Disconnect::Refused(r) if r.code == "policy_violation"));
        assert_eq!(
            closed(1000, "bye"),
            Disconnect::Lost("closed by the server (code 1000): bye".into())
        );
        assert!(matches!(closed(1011, ""), Disconnect::Lost(_)));
        assert!(
            matches!(closed(1008, "no\x1b[2Jpe"), Disconnect::Refused(r) if r.reason == "nope"),
            "a close reason reaches no terminal raw"
        );
    }
}
