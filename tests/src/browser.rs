//! A real headless Chromium (Debian's `chromium`, installed by
//! `.ci/install-tools`) driven over the DevTools protocol with
//! `chromiumoxide`, for the browser pages' tests.
//!
//! One browser serves a whole test binary's run; each page is a tab. Pages
//! are read through their automation hook, `window.tickwire.stats()`, and
//! waits poll it until a condition holds (with [`WAIT`]-style deadlines),
//! never a sleep.

use std::path::PathBuf;
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::page::Page;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::task::JoinHandle;

/// Where Debian's package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Records every Content-Security-Policy violation of a page, before any of
/// its scripts runs (DevTools init scripts are exempt from the page's CSP).
const CSP_WATCH: &str = "window.__csp = []; document.addEventListener('securitypolicyviolation', \
     (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));";

/// A headless Chromium with its own profile directory, closed on [`Chromium::close`].
pub struct Chromium {
    browser: Browser,
    handler: JoinHandle<()>,
    profile: PathBuf,
}

impl Chromium {
    /// Launches the browser (headless; `--no-sandbox`, as tests run as root).
    pub async fn launch() -> Chromium {
        crate::ensure_installed(CHROMIUM, "chromium");
        // A profile of our own: tests of other worktrees may run a browser too.
        let profile = std::env::temp_dir().join(format!(
            "tickwire-chromium-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let config = BrowserConfig::builder()
            .chrome_executable(CHROMIUM)
            .no_sandbox()
            .user_data_dir(&profile)
            .window_size(1400, 1000)
            // The page gets the window's size, not the driver's 800x600.
            .viewport(None)
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(30))
            .args([
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
                "--no-first-run",
                "--no-default-browser-check",
            ])
            .build()
            .expect("browser config");
        let (browser, mut events) = Browser::launch(config)
            .await
            .expect("chromium starts (is /usr/bin/chromium runnable?)");
        let handler = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                if event.is_err() {
                    // A message the driver does not know: not ours to judge.
                    continue;
                }
            }
        });
        Chromium {
            browser,
            handler,
            profile,
        }
    }

    /// A new tab at `url`, watching for CSP violations from its first script.
    pub async fn open(&self, url: &str) -> Tab {
        let page = self
            .browser
            .new_page("about:blank")
            .await
            .expect("a new tab");
        page.add_init_script(CSP_WATCH)
            .await
            .expect("the CSP watch installs");
        page.goto(url).await.expect("the page loads");
        Tab { page }
    }

    /// Closes the browser and removes its profile.
    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One tab.
pub struct Tab {
    /// The driver's page, for anything the helpers do not cover.
    pub page: Page,
}

impl Tab {
    /// The value of a JavaScript expression (awaited if a promise).
    pub async fn eval(&self, js: &str) -> Value {
        self.page
            .evaluate(js)
            .await
            .unwrap_or_else(|e| panic!("evaluating {js}: {e}"))
            .into_value::<Value>()
            .unwrap_or(Value::Null)
    }

    /// `window.tickwire.stats()`, or null before the page's script ran.
    pub async fn stats(&self) -> Value {
        self.eval("window.tickwire ? window.tickwire.stats() : null")
            .await
    }

    /// Polls the stats (every 50 ms, so two cores are left to the browser
    /// and the server) until `done` holds; panics with `what` and the last
    /// stats after `wait`.
    pub async fn until(&self, what: &str, wait: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        let mut poll = tokio::time::interval(Duration::from_millis(50));
        loop {
            poll.tick().await;
            let stats = self.stats().await;
            if done(&stats) {
                return stats;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{what}: not within {wait:?}; the page's stats: {stats:#}");
            }
        }
    }

    /// Polls a JavaScript expression (every 50 ms) until `done` holds of its
    /// value; panics with `what` and the last value after `wait`.
    pub async fn until_js(
        &self,
        what: &str,
        js: &str,
        wait: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        let mut poll = tokio::time::interval(Duration::from_millis(50));
        loop {
            poll.tick().await;
            let value = self.eval(js).await;
            if done(&value) {
                return value;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{what}: not within {wait:?}; last: {value:#}");
            }
        }
    }

    /// The CSP violations the page reported so far.
    pub async fn csp_violations(&self) -> Vec<String> {
        serde_json::from_value(self.eval("window.__csp || []").await).unwrap_or_default()
    }

    /// Closes the tab.
    pub async fn close(self) {
        let _ = self.page.close().await;
    }
}
