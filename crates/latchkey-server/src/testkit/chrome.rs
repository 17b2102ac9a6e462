//! Real headless Chromium for browser tests, driven over WebDriver by thirtyfour.
//!
//! Each [`Chrome`] starts its own `chromedriver` on a free port and a Chromium with an empty
//! profile. Both come from Debian (`chromium`, `chromium-driver`); when they are missing the
//! test fails with what to install, never skips. Screenshots go to
//! `target/screenshots/NAME.png` so a person can look at every page a test visited.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use thirtyfour::prelude::*;

/// A browser session and the chromedriver behind it.
pub struct Chrome {
    /// The WebDriver session.
    pub driver: WebDriver,
    chromedriver: Child,
    _profile: tempfile::TempDir,
}

fn find(candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| (*p).to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Chrome {
    /// Starts chromedriver and a headless Chromium. Panics with an install hint when either is
    /// missing.
    pub async fn start() -> Chrome {
        let binary =
            find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]).unwrap_or_else(|| {
                panic!(
                    "browser tests need Chromium: install Debian's `chromium chromium-driver` \
                 (./scripts/test does it as root)"
                )
            });
        let driver_bin = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])
            .unwrap_or_else(|| {
                panic!("browser tests need chromedriver: install Debian's `chromium-driver`")
            });
        let port = free_port();
        let chromedriver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {driver_bin}: {e}"));
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start listening on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&binary).expect("binary");
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,1000",
            &format!("--user-data-dir={}", profile.path().display()),
        ] {
            caps.add_arg(arg).expect("arg");
        }
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps)
            .await
            .unwrap_or_else(|e| panic!("cannot start a Chromium session: {e}"));
        Chrome {
            driver,
            chromedriver,
            _profile: profile,
        }
    }

    /// Saves a screenshot of the current page as `target/screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        self.driver
            .screenshot(&path)
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        path
    }

    /// Types into the input named `name`.
    pub async fn fill(&self, name: &str, value: &str) {
        let el = self
            .driver
            .find(By::Name(name))
            .await
            .unwrap_or_else(|e| panic!("no field {name}: {e}"));
        el.clear().await.expect("clear");
        el.send_keys(value).await.expect("type");
    }

    /// Clicks the first element matching a CSS selector.
    pub async fn click(&self, css: &str) {
        self.driver
            .find(By::Css(css))
            .await
            .unwrap_or_else(|e| panic!("nothing matches {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// The visible text of the page body.
    pub async fn text(&self) -> String {
        self.driver
            .find(By::Tag("body"))
            .await
            .expect("body")
            .text()
            .await
            .expect("text")
    }

    /// Ends the session and stops chromedriver.
    pub async fn quit(mut self) {
        let _ = self.driver.clone().quit().await;
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.chromedriver.kill();
    }
}
