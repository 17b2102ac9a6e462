//! Test support (feature `testkit`): a real `latchkeyd` on `127.0.0.1:0` with a temporary
//! SQLite database and a clock tests can move, and a [`Browser`] that does over HTTP what a
//! person does on the web pages (sign up, sign in, approve or deny a device code).
//!
//! Nothing here is a mock: the server is the same code the binary runs, and the browser goes
//! through the same forms, cookies and CSRF checks.

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use tempfile::TempDir;

use crate::config::{Config, Settings};
use crate::domain::clock::OffsetClock;
use crate::{Running, start};

/// A running server on a temporary database.
pub struct TestServer {
    running: Option<Running>,
    /// The server's clock; `advance` moves server time forward.
    pub clock: OffsetClock,
    dir: Arc<TempDir>,
    settings: Settings,
}

impl TestServer {
    /// Starts a server with default settings.
    pub async fn start() -> Self {
        Self::start_with(Settings::default()).await
    }

    /// Starts a server with `settings` (listen and database are filled in).
    pub async fn start_with(settings: Settings) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        Self::start_in(dir, settings, OffsetClock::new()).await
    }

    async fn start_in(dir: Arc<TempDir>, settings: Settings, clock: OffsetClock) -> Self {
        install_crypto();
        let db = format!("sqlite://{}", dir.path().join("latchkey.db").display());
        let mut s = settings.clone();
        s.listen = s.listen.or(Some("127.0.0.1:0".into()));
        s.database_url = s.database_url.or(Some(db));
        let config = Config::from_settings(s).expect("valid test settings");
        let running = start(config, Arc::new(clock.clone()))
            .await
            .expect("server starts");
        Self {
            running: Some(running),
            clock,
            dir,
            settings,
        }
    }

    /// The base URL (also the issuer).
    pub fn url(&self) -> &str {
        &self.running().url
    }

    /// The running server.
    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("server running")
    }

    /// The database URL.
    pub fn database_url(&self) -> String {
        self.running().state.config.database_url.clone()
    }

    /// Stops the server and starts a new one on the same database (a new port), keeping the
    /// clock: what an operator's restart does.
    pub async fn restart(mut self) -> Self {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean stop");
        }
        Self::start_in(self.dir.clone(), self.settings.clone(), self.clock.clone()).await
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean stop");
        }
    }
}

/// Installs rustls' ring provider once (reqwest is built without a default provider).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A person's browser: a cookie jar and the forms of the web pages.
pub struct Browser {
    base: String,
    /// The HTTP client (cookies on, redirects followed).
    pub http: reqwest::Client,
    /// The same cookies, redirects not followed (to see where the server sends the browser).
    pub no_follow: reqwest::Client,
}

/// A page as the browser saw it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub url: String,
    pub body: String,
}

impl Browser {
    /// A fresh browser for the server at `base`.
    pub fn new(base: &str) -> Self {
        install_crypto();
        let jar = Arc::new(reqwest::cookie::Jar::default());
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .build()
                .expect("client"),
            no_follow: reqwest::Client::builder()
                .cookie_provider(jar)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    fn abs(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// GETs a page.
    pub async fn get(&self, path: &str) -> Page {
        let r = self.http.get(self.abs(path)).send().await.expect("GET");
        Self::page(r).await
    }

    /// POSTs a form.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(self.abs(path))
            .form(form)
            .send()
            .await
            .expect("POST");
        Self::page(r).await
    }

    async fn page(r: reqwest::Response) -> Page {
        Page {
            status: r.status().as_u16(),
            url: r.url().to_string(),
            body: r.text().await.expect("body"),
        }
    }

    /// The CSRF token of a page's form.
    pub fn csrf(page: &Page) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = page
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no csrf field on {}: {}", page.url, page.body))
            + marker.len();
        let end = page.body[start..].find('"').expect("closing quote") + start;
        page.body[start..end].to_owned()
    }

    /// Creates an account through `/signup` (and is then signed in).
    pub async fn sign_up(&self, email: &str, password: &str) -> Page {
        let form = self.get("/signup").await;
        let csrf = Self::csrf(&form);
        let page = self
            .post(
                "/signup",
                &[
                    ("csrf", &csrf),
                    ("email", email),
                    ("password", password),
                    ("name", ""),
                ],
            )
            .await;
        assert_eq!(page.status, 200, "sign-up failed: {}", page.body);
        page
    }

    /// Signs in through `/signin`.
    pub async fn sign_in(&self, email: &str, password: &str) -> Page {
        let form = self.get("/signin").await;
        let csrf = Self::csrf(&form);
        self.post(
            "/signin",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }

    /// Opens the verification link for `user_code` and presses Approve or Deny.
    pub async fn decide_device(&self, user_code: &str, approve: bool) -> Page {
        let page = self.get(&format!("/device?user_code={}", user_code)).await;
        assert_eq!(page.status, 200, "device page: {}", page.body);
        let csrf = Self::csrf(&page);
        self.post(
            "/device",
            &[
                ("csrf", &csrf),
                ("user_code", user_code),
                ("decision", if approve { "approve" } else { "deny" }),
            ],
        )
        .await
    }

    /// Approves a device code; panics unless the page says the device is connected.
    pub async fn approve_device(&self, user_code: &str) -> Page {
        let page = self.decide_device(user_code, true).await;
        assert!(
            page.body.contains("Device connected"),
            "approval failed: {}",
            page.body
        );
        page
    }

    /// Denies a device code.
    pub async fn deny_device(&self, user_code: &str) -> Page {
        let page = self.decide_device(user_code, false).await;
        assert!(
            page.body.contains("Request denied"),
            "denial failed: {}",
            page.body
        );
        page
    }

    /// Signs out through the sign-out form; returns the final status.
    pub async fn post_signout(&self) -> u16 {
        let page = self.get("/signout").await;
        let csrf = Self::csrf(&page);
        self.post("/signout", &[("csrf", &csrf)]).await.status
    }

    /// Opens an authorization URL (already signed in), reads the consent form and presses
    /// Approve or Deny. Returns where the server redirects the browser (the client's
    /// loopback callback), without following it.
    pub async fn consent(&self, authorize_url: &str, approve: bool) -> String {
        let page = self.get(authorize_url).await;
        assert_eq!(page.status, 200, "consent page: {}", page.body);
        assert!(
            page.body.contains("Authorize"),
            "not a consent page: {}",
            page.body
        );
        let form_start = page
            .body
            .find("action=\"/oauth/authorize\"")
            .expect("consent form");
        let mut form = hidden_fields(&page.body[form_start..]);
        form.push((
            "decision".into(),
            if approve { "approve" } else { "deny" }.into(),
        ));
        let r = self
            .no_follow
            .post(self.abs("/oauth/authorize"))
            .form(&form)
            .send()
            .await
            .expect("POST consent");
        assert_eq!(
            r.status().as_u16(),
            303,
            "consent answer: {:?}",
            r.text().await
        );
        r.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned()
    }
}

/// Every `<input type="hidden" name=.. value=..>` of a page, values unescaped.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in html.split("<input type=\"hidden\" ").skip(1) {
        let attr = |name: &str| {
            let m = format!("{name}=\"");
            chunk.find(&m).map(|i| {
                let rest = &chunk[i + m.len()..];
                unescape(&rest[..rest.find('"').unwrap_or(rest.len())])
            })
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            out.push((n, v));
        }
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}
