//! The floor's few answers, read and written with blocking I/O on the
//! accept thread before a socket goes to a writer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use protocol::sse::format_event;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::writer::{Beat, Sub, Wire};

/// How long a client may take to send its request or its hello.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A request head is at most this long.
const MAX_HEAD: usize = 8 * 1024;

/// Answers one request; returns the subscriber to hand to a writer, if the
/// request was a stream.
pub fn answer(mut s: TcpStream, beat: &Beat) -> std::io::Result<Option<Sub>> {
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let mut chunk = [0u8; 2048];
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut first = head.split("\r\n").next().unwrap_or("").split(' ');
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/healthz") => plain(&mut s, "200 OK", "text/plain", "ok"),
        ("POST", "/api/rooms") => {
            // The body is read so the close that follows is not a reset.
            let len: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut have = buf.len() - head_end;
            while have < len.min(64 * 1024) {
                let mut chunk = [0u8; 2048];
                let n = s.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                have += n;
            }
            plain(&mut s, "201 Created", "application/json", "{}")
        }
        ("GET", p) if p.starts_with("/rooms/") && p.ends_with("/events") => {
            let latest = beat.latest();
            let welcome = format!("{{\"server_time_us\":{}}}", latest.server_time_us);
            let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                cache-control: no-cache\r\naccess-control-allow-origin: *\r\n\
                x-accel-buffering: no\r\nconnection: close\r\n\r\nretry: 1000\n\n"
                .to_vec();
            out.extend_from_slice(&format_event(
                "welcome",
                Some(latest.tick),
                welcome.as_bytes(),
            ));
            s.write_all(&out)?;
            Ok(Some(Sub::new(s, Wire::Sse)?))
        }
        ("GET", p) if p.starts_with("/rooms/") && p.ends_with("/ws") => {
            let Some(key) = header("sec-websocket-key") else {
                return plain(&mut s, "426 Upgrade Required", "application/json", "{}");
            };
            let out = format!(
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\
                 connection: Upgrade\r\nsec-websocket-accept: {}\r\n\r\n",
                derive_accept_key(key.as_bytes())
            );
            s.write_all(out.as_bytes())?;
            let wire = read_hello(&mut s, buf.split_off(head_end))?;
            let welcome = beat.welcome(wire);
            s.write_all(&welcome)?;
            Ok(Some(Sub::new(s, wire)?))
        }
        _ => plain(
            &mut s,
            "404 Not Found",
            "application/json",
            "{\"error\":\"the floor serves only rooms' streams\",\"code\":\"not_found\"}",
        ),
    }
}

fn plain(s: &mut TcpStream, status: &str, ct: &str, body: &str) -> std::io::Result<Option<Sub>> {
    let out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(out.as_bytes())?;
    Ok(None)
}

/// Reads the client's first WebSocket frame (its `hello`, masked) and says
/// which wire it asked for: a text frame is JSON, a binary one bincode.
fn read_hello(s: &mut TcpStream, mut buf: Vec<u8>) -> std::io::Result<Wire> {
    loop {
        if buf.len() >= 2 {
            let opcode = buf[0] & 0x0f;
            let len7 = usize::from(buf[1] & 0x7f);
            let (len, ext) = match len7 {
                126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 2),
                127 => (usize::MAX, 8),
                126 => (usize::MAX, 2),
                n => (n, 0),
            };
            if len == usize::MAX && ext == 8 {
                return Err(std::io::Error::other("hello too large"));
            }
            let masked = if buf[1] & 0x80 != 0 { 4 } else { 0 };
            if len != usize::MAX && buf.len() >= 2 + ext + masked + len {
                return match opcode {
                    1 => Ok(Wire::WsJson),
                    2 => Ok(Wire::WsBincode),
                    _ => Err(std::io::Error::other("first frame is not a hello")),
                };
            }
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("hello too large"));
        }
        let mut chunk = [0u8; 2048];
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("closed before hello"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
