//! The real binary in a pseudo-terminal: starts the one-command game
//! (embedded server + bots), plays, reads the help, chats, resizes down to
//! "too small" and back, quits with status 0, and leaves the terminal as
//! it found it (main screen, cursor shown, cooked mode). A second run ends
//! by SIGTERM. Waits are on what the screen shows, with generous limits.

use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tui_client::embedded::{EmbeddedOptions, EmbeddedServer};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};

/// The longest any one expectation may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// One game at a time: the machine running the tests may be small.
static SERIAL: Mutex<()> = Mutex::new(());

struct Game {
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    parser: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
    log: std::path::PathBuf,
}

fn size(cols: u16, rows: u16) -> PtySize {
    PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

impl Game {
    fn start(cols: u16, rows: u16) -> Game {
        Game::start_with(cols, rows, &[], &["--bots", "2"])
    }

    fn start_with(cols: u16, rows: u16, env: &[(&str, &str)], args: &[&str]) -> Game {
        let pty = native_pty_system();
        let pair = pty.openpty(size(cols, rows)).expect("open a pty");
        let log = std::env::temp_dir().join(format!("tickwire-tui-e2e-{}.log", std::process::id()));
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_tui-client"));
        cmd.args(["--name", "tester", "--log-file"]);
        cmd.arg(&log);
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        cmd.env_remove("TICKWIRE_SERVER");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).expect("start tui-client");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        let writer = pair.master.take_writer().expect("pty writer");
        let parser = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        {
            let (parser, raw) = (parser.clone(), raw.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            parser.lock().unwrap().process(&buf[..n]);
                            raw.lock().unwrap().extend_from_slice(&buf[..n]);
                        }
                    }
                }
            });
        }
        Game {
            master: pair.master,
            writer,
            child,
            parser,
            raw,
            log,
        }
    }

    fn screen(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until the screen satisfies `ok`; panics with the screen after
    /// [`PATIENCE`].
    fn wait_for(&mut self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("tui-client exited ({status:?}) while waiting for {what}; screen:\n{s}");
            }
            assert!(
                start.elapsed() < PATIENCE,
                "timed out waiting for {what}; screen:\n{s}\nlog:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn text(&mut self, what: &str) -> String {
        let what = what.to_string();
        self.wait_for(&what.clone(), move |s| s.contains(&what))
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
        self.writer.flush().unwrap();
    }

    fn resize(&mut self, cols: u16, rows: u16) {
        self.parser
            .lock()
            .unwrap()
            .screen_mut()
            .set_size(rows, cols);
        self.master.resize(size(cols, rows)).unwrap();
    }

    fn tick(&self) -> Option<u64> {
        tick_of(&self.screen())
    }

    fn wait_exit(&mut self) -> portable_pty::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "tui-client did not exit; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn fd(&self) -> RawFd {
        self.master.as_raw_fd().expect("pty master fd")
    }

    /// The terminal is back: main screen, cursor visible, cooked mode.
    fn assert_restored(&mut self) {
        // The reader may still be draining the last bytes.
        let start = Instant::now();
        while self.parser.lock().unwrap().screen().alternate_screen() {
            assert!(start.elapsed() < PATIENCE, "still on the alternate screen");
            std::thread::sleep(Duration::from_millis(20));
        }
        let p = self.parser.lock().unwrap();
        assert!(!p.screen().hide_cursor(), "cursor still hidden");
        drop(p);
        let raw = self.raw.lock().unwrap();
        let text = String::from_utf8_lossy(&raw);
        let entered = text
            .rfind("\x1b[?1049h")
            .expect("entered the alternate screen");
        let left = text
            .rfind("\x1b[?1049l")
            .expect("left the alternate screen");
        assert!(left > entered);
        assert!(cooked(self.fd()), "the pty is still in raw mode");
    }
}

impl Drop for Game {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The tick the status bar shows.
fn tick_of(screen: &str) -> Option<u64> {
    let i = screen.find("tick ")?;
    screen[i + 5..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// True when the terminal echoes and reads lines (not raw mode).
fn cooked(fd: RawFd) -> bool {
    // SAFETY: `fd` is an open pty master owned by the test; tcgetattr
    // only writes the termios struct we pass.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd, &mut t), 0, "tcgetattr");
        t.c_lflag & libc::ICANON != 0 && t.c_lflag & libc::ECHO != 0
    }
}

#[test]
fn play_resize_chat_and_quit_in_a_pty() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut g = Game::start(120, 40);
    g.text("tick ");
    g.text("tester");
    assert!(!cooked(g.fd()), "the game runs in raw mode");

    // Play: steer around for a few seconds of game time.
    g.text("tick ");
    let first = g.tick().expect("the status bar shows the tick");
    for key in ["\x1b[A", "a", "\x1b[B", "l", " ", " "] {
        g.send(key.as_bytes());
    }
    g.wait_for("60 ticks of play", |s| {
        tick_of(s).is_some_and(|t| t >= first + 60)
    });

    // Help, and any key closes it.
    g.send(b"?");
    g.text("press any key to close");
    g.send(b"x");
    g.wait_for("help closed", |s| !s.contains("press any key to close"));

    // Chat.
    g.send(b"\r");
    g.text("Enter send, Esc cancel");
    g.send(b"hi from the pty\r");
    g.text("tester: hi from the pty");

    // Resize: small, too small, back.
    g.resize(60, 20);
    g.wait_for("the narrow scoreboard", |s| s.contains("K/D"));
    g.resize(50, 15);
    g.text("Terminal too small");
    g.resize(100, 30);
    g.wait_for("the wide scoreboard", |s| {
        s.contains("best") && !s.contains("Terminal too small")
    });

    // Quit asks first; n stays, q then y quits.
    g.send(b"q");
    g.text("Leave the game?");
    g.send(b"n");
    g.wait_for("the dialog closed", |s| !s.contains("Leave the game?"));
    g.send(b"q");
    g.text("Leave the game?");
    g.send(b"y");
    let status = g.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    g.assert_restored();
}

#[test]
fn sigterm_restores_the_terminal() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut g = Game::start(80, 24);
    g.text("tick ");
    assert!(!cooked(g.fd()));
    let pid = g.child.process_id().expect("child pid") as libc::pid_t;
    // SAFETY: plain kill(2) on the child we started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = g.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    g.assert_restored();
}

#[test]
fn a_panic_restores_the_terminal_and_reports() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut g = Game::start_with(80, 24, &[("TICKWIRE_TEST_PANIC", "1")], &["--bots", "1"]);
    let status = g.wait_exit();
    assert!(!status.success(), "a panic exits with a failure status");
    g.assert_restored();
    // The report comes after the restore, on the main screen.
    let start = Instant::now();
    loop {
        let raw = String::from_utf8_lossy(&g.raw.lock().unwrap()).to_string();
        let left = raw.rfind("\x1b[?1049l").expect("left the alternate screen");
        if raw[left..].contains("panicking on purpose") {
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "no panic report after the restore: {raw:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn lobby_creates_joins_and_leaves_a_room_on_a_remote_server() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(EmbeddedServer::start(EmbeddedOptions::default()))
        .expect("start a server on 127.0.0.1:0");
    let url = server.url().to_string();
    let mut g = Game::start_with(100, 30, &[], &["--server", &url]);
    g.text("Tickwire lobby");
    g.wait_for("the lobby room", |s| {
        s.lines()
            .any(|l| l.contains("lobby") && l.contains("snake") && l.contains("arena"))
    });
    g.send(b"c");
    g.text("Create a room");
    g.send(b"duel\t\r");
    g.text("created room duel");
    g.send(b"\r");
    g.text("duel · tron");
    g.text("tick ");
    g.send(b"q");
    g.text("Leave the game?");
    g.send(b"l");
    g.text("Tickwire lobby");
    // Watch the same room: no quit question for spectators.
    g.send(b"v");
    g.text("watching");
    g.send(b"\t");
    g.send(b"\x1b");
    g.text("Tickwire lobby");
    g.send(b"q");
    let status = g.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    g.assert_restored();
    rt.block_on(server.shutdown());
}

/// A TCP proxy whose connections can be cut and whose door can be shut,
/// to lose the connection without stopping the server.
struct Proxy {
    addr: std::net::SocketAddr,
    open: Arc<std::sync::atomic::AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let links = Arc::new(Mutex::new(Vec::new()));
        let (o, l) = (open.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                if !o.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection fail
                }
                l.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                }));
            }
        });
        Proxy { addr, open, links }
    }

    /// Cuts every connection and refuses new ones.
    fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn reopen(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_lost_connection_shows_reconnecting_and_resumes_the_same_snake() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(EmbeddedServer::start(EmbeddedOptions::default()))
        .expect("start a server on 127.0.0.1:0");
    let proxy = rt.block_on(Proxy::start(server.local_addr()));
    let url = format!("http://{}", proxy.addr);
    let mut g = Game::start_with(100, 30, &[], &["--server", &url, "--room", "lobby"]);
    g.text("tick ");
    g.text("tester");
    proxy.cut();
    g.text("reconnecting");
    proxy.reopen();
    g.text("reconnected: same snake");
    g.wait_for("the banner gone", |s| !s.contains("reconnecting"));
    g.send(b"q");
    g.text("Leave the game?");
    g.send(b"y");
    let status = g.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    g.assert_restored();
    rt.block_on(server.shutdown());
}

/// The cells of the compare view's row `label` that show a figure in ms.
fn figures_in_row(screen: &str, label: &str) -> usize {
    screen
        .lines()
        .find(|l| l.trim_start_matches(['│', '|']).starts_with(label))
        .map_or(0, |l| l.matches(" ms").count())
}

#[test]
fn compare_view_against_a_real_server_shows_every_transport_live() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(EmbeddedServer::start(EmbeddedOptions::default()))
        .expect("start a server on 127.0.0.1:0");
    let url = server.url().to_string();
    let mut g = Game::start_with(120, 40, &[], &["--server", &url, "--compare"]);
    g.text("Compare transports");
    for name in [
        "WebSocket",
        "SSE",
        "long-poll",
        "short poll",
        "GET every 250 ms",
    ] {
        g.text(name);
    }
    // Every observer connects and measures: RTT and frame age in all four
    // columns, input latency in the three that can play.
    let s = g.wait_for("figures in every column", |s| {
        figures_in_row(s, "RTT p50") == 4
            && figures_in_row(s, "age p50") == 4
            && figures_in_row(s, "age p99") == 4
            && figures_in_row(s, "input p50") == 3
    });
    assert!(s.contains("no upstream"), "{s}");
    assert!(s.contains("playing") && s.contains("watching"), "{s}");
    // They play in the room: the server lists them.
    let rooms: serde_json::Value = rt.block_on(async {
        reqwest::get(format!("{url}/api/rooms"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(rooms[0]["players"], 3, "{rooms}");
    assert!(rooms[0]["spectators"].as_u64().unwrap() >= 1, "{rooms}");
    // Small terminals keep the core rows.
    g.resize(60, 20);
    g.wait_for("the narrow compare view", |s| {
        figures_in_row(s, "RTT p50") == 4 && s.contains("jitter")
    });
    // q goes back to the lobby (a remote server), q again quits.
    g.send(b"q");
    g.text("Tickwire lobby");
    g.send(b"q");
    let status = g.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    g.assert_restored();
    rt.block_on(server.shutdown());
}
