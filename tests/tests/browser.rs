//! The browser as a fourth client, in a real headless Chromium (Debian's
//! package, driven over the DevTools protocol by `chromiumoxide`): the
//! lobby lists rooms live; the room page watches over `EventSource`, plays
//! over WebSocket, long-poll and short poll, rebuilds the world with the
//! checksum verified every tick (0 desyncs) and shows the lag figures; the
//! compare panel opens all four transports at once; an `EventSource` whose
//! stream is cut resumes with `Last-Event-ID` with no gap; hostile names
//! and chat render as text; the pages carry a strict CSP and break none of
//! it. Read through `window.tickwire.stats()`, the documented hook.
//!
//! One browser and one server for the whole file (one test), so it costs
//! one Chromium start on CI's two cores.

use std::time::Duration;

use serde_json::Value;
use tickwire_tests::browser::{Chromium, Tab};
use tickwire_tests::{CutProxy, FAST_TICKS, LOBBY, TestServer};

/// Bound on a wait in a browser: generous, as a 2-core CI box also builds.
const BROWSER_WAIT: Duration = Duration::from_secs(60);

/// Names that would be markup if a page inserted them as HTML, and one with
/// the terminal tricks of the sanitiser tests (escapes, bidi, zero widths).
const HTML_NAME: &str = "<img src=x>";
const TAG_NAME: &str = "<b>bold</b>&amp;";
const TERMINAL_NAME: &str = "\x1b[31m\u{202E}Ev\u{200B}il\x00\n!";
const HOSTILE_CHAT: &str =
    "<img src=/x onerror=window.pwned=1><script>window.pwned=2</script>\x1b[2J";

fn n(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(-1.0)
}

fn present(v: &Value, key: &str) -> bool {
    v[key].is_number()
}

/// A full-page PNG of `tab` at `path` (the README's screenshot).
async fn screenshot(tab: &Tab, path: &str) {
    let png = tab
        .page
        .screenshot(
            chromiumoxide::page::ScreenshotParams::builder()
                .full_page(true)
                .build(),
        )
        .await
        .expect("screenshot");
    std::fs::write(path, png).expect("write the screenshot");
}

async fn assert_no_csp_violation(tab: &Tab, page: &str) {
    let v = tab.csp_violations().await;
    assert!(v.is_empty(), "{page}: CSP violations reported: {v:?}");
}

/// A long-poll player that joins with `name` (and says `chat` if given).
async fn hostile_player(http: &reqwest::Client, url: &str, name: &str, chat: Option<&str>) {
    let hello = serde_json::json!({"hello": {"version": protocol::PROTOCOL_VERSION, "name": name}});
    let r = http
        .post(format!("{url}/rooms/{LOBBY}/sessions"))
        .json(&hello)
        .send()
        .await
        .expect("hello");
    assert_eq!(r.status(), 201, "hello as {name:?}");
    let w: Value = r.json().await.expect("welcome");
    let (session, token) = (
        w["welcome"]["session"]
            .as_str()
            .expect("session")
            .to_string(),
        w["welcome"]["token"].as_str().expect("token").to_string(),
    );
    // An input, so the snake is not parked while the page looks.
    let mut messages =
        vec![serde_json::json!({"seq": 1, "msg": {"input": {"seq": 1, "dir": "up"}}})];
    if let Some(text) = chat {
        messages.push(serde_json::json!({"seq": 2, "msg": {"chat": {"text": text}}}));
    }
    let r = http
        .post(format!("{url}/rooms/{LOBBY}/sessions/{session}/send"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "messages": messages }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200, "send as {name:?}");
}

/// `GET /` by content negotiation, the assets' headers, and page URLs that
/// no room id can shadow.
async fn pages_are_served_with_a_strict_csp(url: &str, http: &reqwest::Client) {
    let browser_accept =
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
    let r = http
        .get(format!("{url}/"))
        .header("accept", browser_accept)
        .send()
        .await
        .expect("GET / as a browser");
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(
        h["content-security-policy"],
        game_server::web::CONTENT_SECURITY_POLICY
    );
    let body = r.text().await.expect("lobby page");
    assert!(
        body.contains(r#"<script type="module" src="/web/lobby.js">"#),
        "{body}"
    );
    assert!(!body.contains("style="), "no inline style attributes");

    // curl (`*/*`) and a request with no Accept get the same text page.
    let plain = |accept: Option<&'static str>| {
        let mut req = http.get(format!("{url}/"));
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        async move {
            let r = req.send().await.expect("GET /");
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain")
            );
            r.text().await.expect("text page")
        }
    };
    let curl = plain(Some("*/*")).await;
    assert!(curl.starts_with("Tickwire game server\n"), "{curl}");
    assert_eq!(curl, plain(None).await);

    for asset in [
        "room",
        "room.js",
        "world.js",
        "links.js",
        "meter.js",
        "view.js",
        "lobby.js",
        "style.css",
        "icon.svg",
    ] {
        let r = http
            .get(format!("{url}/web/{asset}"))
            .send()
            .await
            .expect("asset");
        assert_eq!(r.status(), 200, "{asset}");
        assert_eq!(
            r.headers()["content-security-policy"],
            game_server::web::CONTENT_SECURITY_POLICY,
            "{asset}"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{asset}");
    }
    let r = http
        .get(format!("{url}/web/nope.js"))
        .send()
        .await
        .expect("404");
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.expect("JSON error");
    assert_eq!(e["code"], "not_found");

    // A room may be called `web`: its URLs are under /rooms/, the pages' are not.
    let r = http
        .post(format!("{url}/api/rooms"))
        .json(&serde_json::json!({"id": "web"}))
        .send()
        .await
        .expect("create room web");
    assert_eq!(r.status(), 201);
    let r = http
        .get(format!("{url}/web/room"))
        .send()
        .await
        .expect("page");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

async fn lobby_lists_rooms_live(chromium: &Chromium, url: &str, http: &reqwest::Client) {
    let tab = chromium.open(&format!("{url}/")).await;
    tab.until("the lobby lists the lobby room", BROWSER_WAIT, |s| {
        s["rooms"]
            .as_array()
            .is_some_and(|r| r.iter().any(|id| id == LOBBY))
    })
    .await;
    let r = http
        .post(format!("{url}/api/rooms"))
        .json(&serde_json::json!({"id": "duel", "mode": "tron"}))
        .send()
        .await
        .expect("create duel");
    assert_eq!(r.status(), 201);
    tab.until(
        "the lobby shows a room created after it loaded",
        BROWSER_WAIT,
        |s| {
            s["rooms"]
                .as_array()
                .is_some_and(|r| r.iter().any(|id| id == "duel"))
        },
    )
    .await;
    let links = tab
        .eval("[...document.querySelectorAll('a.join')].map(a => a.getAttribute('href'))")
        .await;
    assert!(
        links
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "/web/room?room=duel&transport=ws"),
        "{links}"
    );
    assert_no_csp_violation(&tab, "lobby").await;
    tab.close().await;
}

/// Watching over SSE through a proxy that then cuts the stream: the
/// EventSource reconnects by itself with Last-Event-ID and the server
/// resumes right after the last tick, so the world goes on with no gap, no
/// keyframe and no desync. Hostile names and chat arrive meanwhile.
async fn spectate_over_sse_resume_and_hostile_text(
    chromium: &Chromium,
    server: &TestServer,
    http: &reqwest::Client,
) {
    let proxy = CutProxy::start(server.addr).await;
    let tab = chromium
        .open(&format!(
            "{}/web/room?room={LOBBY}&transport=sse",
            proxy.url
        ))
        .await;
    let before = tab
        .until("SSE ticks with lag figures", BROWSER_WAIT, |s| {
            let m = &s["main"];
            n(m, "ticks") >= 60.0 && present(m, "rtt_ms") && present(m, "frame_age_ms")
        })
        .await;
    assert_eq!(before["main"]["desyncs"], 0, "{before:#}");

    hostile_player(http, &server.url, HTML_NAME, Some(HOSTILE_CHAT)).await;
    hostile_player(http, &server.url, TAG_NAME, None).await;
    hostile_player(http, &server.url, TERMINAL_NAME, None).await;
    tab.until("the hostile chat line arrives", BROWSER_WAIT, |s| {
        n(s, "chat_lines") >= 1.0
    })
    .await;
    let shown: Vec<String> = [HTML_NAME, TAG_NAME, TERMINAL_NAME]
        .iter()
        .map(|raw| protocol::text::sanitize_name(raw))
        .collect();
    tab.until_js(
        "the hostile names are on the scoreboard, as text",
        "[...document.querySelectorAll('#scores td.name')].map(e => e.textContent)",
        BROWSER_WAIT,
        |names| {
            shown.iter().all(|s| {
                names
                    .as_array()
                    .is_some_and(|n| n.iter().any(|n| n == s.as_str()))
            })
        },
    )
    .await;
    let chat = tab
        .eval("[...document.querySelectorAll('#chat-log li')].map(e => e.textContent)")
        .await;
    let line = format!(
        "{}{}",
        protocol::text::sanitize_name(HTML_NAME),
        protocol::text::sanitize_chat(HOSTILE_CHAT)
    );
    assert!(
        chat.as_array().unwrap().iter().any(|l| l == line.as_str()),
        "{chat}"
    );
    let markup = tab
        .eval("document.querySelectorAll('img, b, script:not([src])').length + (window.pwned ? 100 : 0)")
        .await;
    assert_eq!(markup, 0, "player text became markup");

    // Cut the stream.
    let ticks = n(&before["main"], "ticks");
    let accepted = proxy.accepted();
    proxy.cut();
    let after = tab
        .until(
            "the EventSource resumes and ticks go on",
            BROWSER_WAIT,
            |s| {
                let m = &s["main"];
                n(m, "reconnects") >= 1.0 && n(m, "ticks") >= ticks + 120.0
            },
        )
        .await;
    assert!(
        proxy.accepted() > accepted,
        "the page reconnected through the proxy"
    );
    let m = &after["main"];
    assert_eq!(m["welcomes"], 1, "resumed, not restarted: {after:#}");
    assert_eq!(m["gaps"], 0, "no tick missing after the resume: {after:#}");
    assert_eq!(m["resyncs"], 0, "no keyframe needed: {after:#}");
    assert_eq!(m["desyncs"], 0, "{after:#}");
    assert_no_csp_violation(&tab, "room (sse)").await;
    tab.close().await;
}

/// A person at the keyboard on each playing transport: the snake turns,
/// the acks come back (input latency), 0 desyncs.
async fn play_over(chromium: &Chromium, url: &str, transport: &str) {
    let tab = chromium
        .open(&format!(
            "{url}/web/room?room={LOBBY}&transport={transport}&name=web-{transport}"
        ))
        .await;
    let keys = [
        "ArrowUp",
        "ArrowLeft",
        "ArrowDown",
        "ArrowRight",
        "w",
        "a",
        "s",
        "d",
    ];
    let deadline = tokio::time::Instant::now() + BROWSER_WAIT;
    let mut poll = tokio::time::interval(Duration::from_millis(250));
    let mut pressed = 0;
    let stats = loop {
        poll.tick().await;
        let key = keys[pressed % keys.len()];
        pressed += 1;
        tab.eval(&format!(
            "document.dispatchEvent(new KeyboardEvent('keydown', {{key: '{key}'}})), 0"
        ))
        .await;
        let s = tab.stats().await;
        let m = &s["main"];
        if m["player_id"].is_number()
            && n(m, "ticks") >= 60.0
            && present(m, "input_latency_ms")
            && present(m, "rtt_ms")
            && present(m, "frame_age_ms")
            && present(m, "jitter_ms")
        {
            break s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "playing over {transport}: no acked input with lag figures within {BROWSER_WAIT:?}: {s:#}"
        );
    };
    let m = &stats["main"];
    assert_eq!(m["transport"], transport);
    assert_eq!(m["desyncs"], 0, "{stats:#}");
    assert!(
        n(m, "inputs") >= 1.0 && n(m, "requests") >= 1.0,
        "{stats:#}"
    );
    assert_no_csp_violation(&tab, transport).await;
    tab.close().await;
}

/// The compare panel: all four transports at once, each rebuilding the
/// world with 0 desyncs, each with its figures.
async fn compare_all_four(chromium: &Chromium, url: &str) -> Tab {
    let tab = chromium
        .open(&format!(
            "{url}/web/room?room={LOBBY}&transport=sse&compare=1"
        ))
        .await;
    let stats = tab
        .until(
            "all four transports tick with lag figures",
            BROWSER_WAIT,
            |s| {
                ["sse", "ws", "longpoll", "poll"].iter().all(|t| {
                    let c = &s["compare"][*t];
                    n(c, "ticks") >= 120.0
                        && present(c, "rtt_ms")
                        && present(c, "frame_age_ms")
                        && (*t == "sse" || present(c, "input_latency_ms"))
                })
            },
        )
        .await;
    for t in ["sse", "ws", "longpoll", "poll"] {
        let c = &stats["compare"][t];
        assert_eq!(c["desyncs"], 0, "{t}: {stats:#}");
        assert!(
            n(c, "bytes_in") > 0.0 && n(c, "requests") >= 1.0,
            "{t}: {stats:#}"
        );
    }
    // The panel shows them: a header per transport.
    let headers = tab
        .eval("[...document.querySelectorAll('#compare-table th')].map(e => e.textContent)")
        .await;
    for label in ["WebSocket", "long-poll", "short poll", "SSE (EventSource)"] {
        assert!(
            headers.as_array().unwrap().iter().any(|h| h == label),
            "{headers}"
        );
    }
    assert_no_csp_violation(&tab, "compare").await;
    tab
}

/// The CSP is enforced, and the watch sees a violation: an inline script
/// added at run time is blocked and reported (so "no violation" above
/// means something).
async fn the_csp_blocks_inline_script(tab: &Tab) {
    let ran = tab
        .eval(
            "(() => { const s = document.createElement('script'); \
             s.textContent = 'window.inlineRan = true'; document.body.append(s); \
             return window.inlineRan === true; })()",
        )
        .await;
    assert_eq!(ran, false, "an inline script ran: the CSP is not enforced");
    let deadline = tokio::time::Instant::now() + BROWSER_WAIT;
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        let v = tab.csp_violations().await;
        if v.iter().any(|v| v.starts_with("script-src")) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no violation reported: {v:?}"
        );
    }
}

/// The page's checksum is the protocol's: a world built here (multi-byte
/// names, every varint width, a dead snake), hashed by `protocol`, is
/// verified by the page's `world.js`; the same world one field off, or a
/// tick with a wrong checksum, is a desync. (So "0 desyncs" in the other
/// checks means the page really compares.)
async fn world_js_agrees_with_the_protocol(tab: &Tab) {
    let state = serde_json::json!({
        "tick": 70_000, "mode": "snake", "round": 300,
        "snakes": [
            {"id": 3, "name": "ålïce ✓", "body": [[250, 2], [251, 2], [252, 2]], "dir": "left",
             "alive": true, "respawn_in": 0, "boost": true, "connected": true,
             "score": {"length": 3, "kills": 70_000, "deaths": 1, "best": 5, "wins": 0}},
            {"id": 900, "name": "<b>x</b>", "body": [], "dir": "down",
             "alive": false, "respawn_in": 40, "boost": false, "connected": false,
             "score": {"length": 0, "kills": 0, "deaths": 2, "best": 4, "wins": 1}}],
        "food": [[1, 1], [4, 300]]
    });
    let world: protocol::state::WorldState =
        serde_json::from_value(state.clone()).expect("a valid world");
    let snapshot = serde_json::json!({"snapshot": {
        "tick": 70_000, "checksum": world.checksum(), "server_time_us": 1, "state": state}})
    .to_string();
    let tick = serde_json::json!({"tick": {
        "tick": 70_001, "checksum": world.checksum(), "server_time_us": 2,
        "delta": {"moved": [{"id": 3, "head": [[249, 2]]}]}}})
    .to_string();
    // As JavaScript string literals (JSON strings are).
    let (snapshot, tick) = (
        Value::String(snapshot).to_string(),
        Value::String(tick).to_string(),
    );
    let verdicts = tab
        .eval(&format!(
            "(async () => {{ const m = await import('/web/world.js'); \
             const w = new m.World(); \
             const good = w.keyframe(m.parseMessage({snapshot}).snapshot); \
             const snap = m.parseMessage({snapshot}).snapshot; snap.state.snakes[0].score.kills += 1; \
             const off = new m.World().keyframe(snap); \
             const wrong = w.tick(m.parseMessage({tick}).tick); \
             return [good, off, wrong]; }})()"
        ))
        .await;
    assert_eq!(verdicts, serde_json::json!(["ok", "desync", "desync"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_watches_and_plays_over_every_transport() {
    let server = TestServer::start_with(|c| c.map = "arena".into()).await;
    let http = reqwest::Client::new();
    pages_are_served_with_a_strict_csp(&server.url, &http).await;

    let chromium = Chromium::launch().await;
    lobby_lists_rooms_live(&chromium, &server.url, &http).await;
    spectate_over_sse_resume_and_hostile_text(&chromium, &server, &http).await;
    for transport in ["ws", "longpoll", "poll"] {
        play_over(&chromium, &server.url, transport).await;
    }
    let tab = compare_all_four(&chromium, &server.url).await;
    world_js_agrees_with_the_protocol(&tab).await;
    if let Ok(path) = std::env::var("TICKWIRE_SCREENSHOT") {
        // `TICKWIRE_SCREENSHOT=docs/browser.png cargo test -p tickwire-tests
        // --test browser` refreshes the README's screenshot, once the
        // sparklines hold 15 s of history.
        tab.until("15 s of figures for the screenshot", BROWSER_WAIT, |s| {
            ["sse", "ws", "longpoll", "poll"]
                .iter()
                .all(|t| n(&s["compare"][*t], "ticks") >= 15.0 * f64::from(FAST_TICKS))
        })
        .await;
        screenshot(&tab, &path).await;
        eprintln!("{:#}", tab.stats().await);
    }
    the_csp_blocks_inline_script(&tab).await;
    tab.close().await;
    chromium.close().await;
    server.shutdown().await;
}

/// Not a check: the four transports' figures as the browser measures them
/// on a running server, for BENCHMARKS-style notes and the README's
/// screenshot. `TICKWIRE_SERVER=http://127.0.0.1:7878 TICKWIRE_TICKS=600
/// [TICKWIRE_SCREENSHOT=docs/browser.png] cargo test -p tickwire-tests
/// --test browser -- --ignored --nocapture` opens the compare panel on the
/// server's lobby, waits until every transport applied TICKWIRE_TICKS
/// frames (default 600: 30 s at 20 Hz) and prints `window.tickwire.stats()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measures a server given in TICKWIRE_SERVER"]
async fn measure_the_four_transports_on_a_running_server() {
    let url = std::env::var("TICKWIRE_SERVER").expect("TICKWIRE_SERVER=http://HOST:PORT");
    let ticks: f64 = std::env::var("TICKWIRE_TICKS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(600.0);
    let chromium = Chromium::launch().await;
    let tab = chromium
        .open(&format!(
            "{url}/web/room?room={LOBBY}&transport=sse&compare=1"
        ))
        .await;
    let wait = Duration::from_secs_f64(ticks / 5.0 + 60.0);
    let stats = tab
        .until("every transport applied the frames asked for", wait, |s| {
            ["sse", "ws", "longpoll", "poll"]
                .iter()
                .all(|t| n(&s["compare"][*t], "ticks") >= ticks)
        })
        .await;
    if let Ok(path) = std::env::var("TICKWIRE_SCREENSHOT") {
        screenshot(&tab, &path).await;
    }
    println!("{stats:#}");
    tab.close().await;
    chromium.close().await;
}
