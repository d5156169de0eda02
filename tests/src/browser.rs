//! A real browser for the demo pages: Debian's `chromium`, headless, driven over WebDriver.
//!
//! [`Browser`] starts Debian's `chromedriver` on a free loopback port in a process group
//! of its own (so the Chromium instances it launches are ended with it), and
//! [`Browser::window`] opens one Chromium session per page with a fresh profile, sized as
//! a big screen or emulating a phone. fantoccini speaks WebDriver to it. Nothing is
//! downloaded: tests/run.sh installs `chromium` and `chromium-driver` when missing, and
//! a browser that cannot start fails the test, never skips it.

use std::{
    net::SocketAddr,
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crate::ports::unused_port;

/// Where Debian's packages put the driver and the browser.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// See [`CHROMEDRIVER`].
const CHROMIUM: &str = "/usr/bin/chromium";

/// How long chromedriver may take to listen, and a page to reach a state: Chromium
/// starts in about a second, far slower on a loaded machine.
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(30);

/// The shape of a window.
#[derive(Debug, Clone, Copy)]
pub enum Screen {
    /// A big screen, 1600×900.
    Wall,
    /// A phone, 390×844 CSS pixels at a device pixel ratio of 2.
    Phone,
}

/// A running chromedriver; killed with its browsers when dropped.
pub struct Browser {
    /// The chromedriver process (leader of its own process group).
    driver: Child,
    /// Its WebDriver address.
    addr: SocketAddr,
    /// The Chromium profiles made for the sessions, removed on drop.
    profiles: Vec<PathBuf>,
}

impl Browser {
    /// Starts chromedriver and waits until it accepts connections.
    pub async fn start() -> Browser {
        for needed in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                std::path::Path::new(needed).exists(),
                "{needed} is missing: install Debian's chromium and chromium-driver (tests/run.sh does)"
            );
        }
        let port = unused_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("{CHROMEDRIVER} does not start: {error}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let browser = Browser {
            driver,
            addr,
            profiles: Vec::new(),
        };
        let since = Instant::now();
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                since.elapsed() < BROWSER_TIMEOUT,
                "chromedriver did not listen on {addr} within {BROWSER_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        browser
    }

    /// A new headless Chromium session shaped as `screen`, with a fresh profile.
    pub async fn window(&mut self, screen: Screen) -> Client {
        let profile = std::env::temp_dir().join(format!(
            "mswoole-chromium-{}-{}-{}",
            std::process::id(),
            self.addr.port(),
            self.profiles.len()
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("a Chromium profile directory is created");
        self.profiles.push(profile.clone());
        // What Chromium needs to run headless as root on a machine without a GPU or a
        // network beyond loopback, and to stay quiet (no updates, sync or first-run UI).
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut options = json!({ "binary": CHROMIUM });
        match screen {
            Screen::Wall => args.push("--window-size=1600,900".into()),
            Screen::Phone => {
                args.push("--window-size=390,844".into());
                options["mobileEmulation"] = json!({
                    "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0, "touch": true }
                });
            }
        }
        options["args"] = json!(args);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        let page = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://{}", self.addr))
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "Chromium does not start through chromedriver at {}: {error}",
                    self.addr
                )
            });
        if let Screen::Wall = screen {
            // --window-size counts the window's frame too: grow it by the difference so
            // that the page itself (and so the screenshot) is 1600×900.
            let frame = page
                .execute(
                    "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]",
                    Vec::new(),
                )
                .await
                .expect("the window's frame can be measured");
            let extra = |at: usize| {
                frame[at]
                    .as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .unwrap_or(0)
            };
            page.set_window_size(1600 + extra(0), 900 + extra(1))
                .await
                .expect("the window can be resized");
        }
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The process group holds chromedriver and every Chromium it launched.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        for profile in &self.profiles {
            let _ = std::fs::remove_dir_all(profile);
        }
    }
}

/// Runs `script` (a function body returning a value) in the page until it returns
/// something other than `null`/`false`; returns that. Fails naming `what` after
/// [`BROWSER_TIMEOUT`], with the page's text to show where it stood.
pub async fn wait_for(page: &Client, what: &str, script: &str) -> Value {
    let since = Instant::now();
    loop {
        match page.execute(script, Vec::new()).await {
            Ok(Value::Null) | Ok(Value::Bool(false)) => {}
            Ok(found) => return found,
            Err(error) => panic!("waiting for {what}: the script failed: {error}"),
        }
        if since.elapsed() > BROWSER_TIMEOUT {
            let text = page
                .execute("return document.body.innerText", Vec::new())
                .await
                .unwrap_or_default();
            panic!("{what}: not within {BROWSER_TIMEOUT:?}; the page shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
