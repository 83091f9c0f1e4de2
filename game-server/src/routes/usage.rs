//! `GET /` for curl users: the rooms and how to watch and join, with the
//! host the request was sent to, so every line can be pasted as it is.

use std::net::SocketAddr;

use protocol::api::RoomInfo;

/// The host (and port) to print: the request's `Host` header when it is a
/// plain host name or address, else the address the server listens on.
pub fn host(header: Option<&str>, local: SocketAddr) -> String {
    // The header is the client's text and goes onto a terminal: only the
    // characters of a host name, an IPv4/IPv6 address and a port pass.
    let plain = |h: &&str| {
        !h.is_empty()
            && h.len() <= 262
            && h.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_')
            })
    };
    match header.map(str::trim).filter(plain) {
        Some(h) => h.to_string(),
        None if local.ip().is_unspecified() => format!("localhost:{}", local.port()),
        None => local.to_string(),
    }
}

/// The usage page for `rooms`, naming `host`.
pub fn page(rooms: &[RoomInfo], host: &str) -> String {
    let mut page = String::from(
        "Tickwire game server\n\
         ====================\n\n\
         Rooms:\n",
    );
    for r in rooms {
        page.push_str(&format!(
            "  {:<12} {} on {}, {}/{} players, {} spectators, {} cells/s at {} Hz, tick {}\n",
            r.id,
            r.mode,
            r.map,
            r.players,
            r.max_players,
            r.spectators,
            r.speed,
            r.tick_rate,
            r.tick
        ));
    }
    page.push_str(&format!(
        "\nWatch with curl:      curl -N http://{host}/rooms/lobby/watch\n\
         Stream events:        curl -N http://{host}/rooms/lobby/events\n\
         \nPlay in a terminal:   cargo run --release -- --server http://{host}\n\
         Play with JSON:       websocat ws://{host}/rooms/lobby/ws\n"
    ));
    page.push_str(&format!(
        "\x20                     then type {{\"hello\": {{\"version\": {}, \"name\": \"alice\"}}}}\n",
        protocol::PROTOCOL_VERSION
    ));
    page.push_str(
        "\x20                     and steer with {\"input\": {\"seq\": 1, \"dir\": \"up\"}}\n\n\
         Endpoints:\n\
         \x20 GET  /api/rooms            rooms as JSON\n\
         \x20 POST /api/rooms            create: {\"id\":\"duel\",\"mode\":\"tron\",\"map\":\"maze\",\"speed\":12,\"tick_rate\":30,\"max_players\":4}\n\
         \x20 GET  /api/time             server clock, for lag probes\n\
         \x20 GET  /metrics              Prometheus metrics (OpenMetrics text)\n\
         \x20 GET  /rooms/{room}/ws      WebSocket: play, or spectate with \"role\": \"spectator\"\n\
         \x20 GET  /rooms/{room}/events  SSE spectator stream (text/event-stream, JSON data)\n\
         \x20 GET  /rooms/{room}/watch   live view for curl -N (?color=never&cols=80&rows=24)\n\
         \x20 POST /rooms/{room}/sessions                  long-poll/poll: hello -> welcome (session, token)\n\
         \x20 GET  /rooms/{room}/sessions/{id}/poll?after=N&wait=S   messages after N (Bearer token)\n\
         \x20 POST /rooms/{room}/sessions/{id}/send        {\"messages\": [{\"seq\": 1, \"msg\": {...}}]}\n\
         \x20 DELETE /rooms/{room}/sessions/{id}           leave\n\
         \x20 GET  /healthz              ok\n",
    );
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_host_of_the_request_and_never_a_placeholder() {
        let local: SocketAddr = "0.0.0.0:7878".parse().unwrap();
        assert_eq!(host(Some("192.168.1.20:7878"), local), "192.168.1.20:7878");
        assert_eq!(host(Some("[::1]:9000"), local), "[::1]:9000");
        assert_eq!(host(None, local), "localhost:7878");
        let bound: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(host(None, bound), "127.0.0.1:4000");
        // Escapes and spaces never reach the page.
        assert_eq!(host(Some("evil\x1b[2J:1"), bound), "127.0.0.1:4000");
        let page = page(&[], "game.example:8080");
        assert!(page.contains("curl -N http://game.example:8080/rooms/lobby/watch"));
        assert!(page.contains("websocat ws://game.example:8080/rooms/lobby/ws"));
        assert!(!page.contains("THIS-HOST"));
        // The hello to paste speaks the server's own protocol version.
        let hello = format!(
            "{{\"hello\": {{\"version\": {}, ",
            protocol::PROTOCOL_VERSION
        );
        assert!(page.contains(&hello), "{page}");
    }
}
