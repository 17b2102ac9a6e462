//! Test support (feature `testkit`): a real `latchkeyd` on `127.0.0.1:0` with a temporary
//! database and a clock tests can move, and a [`Browser`] that does over HTTP what a person
//! does on the web pages (sign up, sign in, approve or deny a device code).
//!
//! Nothing here is a mock: the server is the same code the binary runs, and the browser goes
//! through the same forms, cookies and CSRF checks.
//!
//! The database follows `LATCHKEY_TEST_BACKEND`: `sqlite` (the default: a file in a temporary
//! directory) or `postgres` (a fresh database per server in a PostgreSQL cluster this process
//! starts once; see [`postgres`]). The same suite runs against both.

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

pub mod chrome;
pub mod oidc;
pub mod postgres;

use sqlx::{Connection, Row};
use std::sync::Arc;
use tempfile::TempDir;

use crate::config::{Backend, Config, Settings};
use crate::domain::clock::OffsetClock;
use crate::{Running, start};

/// The backend test servers use, from `LATCHKEY_TEST_BACKEND` (`sqlite` or `postgres`).
pub fn backend() -> Backend {
    match std::env::var("LATCHKEY_TEST_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
        Ok("postgres") | Ok("postgresql") => Backend::Postgres,
        Ok(other) => panic!("LATCHKEY_TEST_BACKEND={other}: use sqlite or postgres"),
    }
}

/// A database for tests: a SQLite file in a temporary directory, or a new PostgreSQL database.
/// Kept alive as long as this value (the SQLite directory is deleted when it drops).
pub struct TestDatabase {
    /// The `database_url` to give latchkeyd.
    pub url: String,
    /// The engine.
    pub backend: Backend,
    _dir: Option<TempDir>,
}

impl TestDatabase {
    /// A fresh, empty database on the configured [`backend`].
    pub async fn new() -> Self {
        match backend() {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                Self {
                    url: format!("sqlite://{}", dir.path().join("latchkey.db").display()),
                    backend: Backend::Sqlite,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => Self {
                url: postgres::cluster().create_database().await,
                backend: Backend::Postgres,
                _dir: None,
            },
        }
    }

    /// A string that changes whenever anything in the database is written: on SQLite the size
    /// of the database and its WAL, on PostgreSQL the row versions (`xmin`, `ctid`) of every
    /// table. Equal before and after means nothing was written.
    pub async fn write_marker(&self) -> String {
        write_marker(&self.url).await
    }
}

impl TestDatabase {
    /// Runs SQL statements on the database (for tests that set up or inspect a state no
    /// endpoint produces).
    pub async fn execute(&self, sql: &str) {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.url)
            .await
            .expect("connect to the test database");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.close().await;
    }

    /// The first column of the first row of a query, as an integer.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.url)
            .await
            .expect("connect to the test database");
        let v: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.close().await;
        v
    }
}

async fn write_marker(url: &str) -> String {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        let len = |p: String| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        return format!(
            "db={} wal={}",
            len(path.to_owned()),
            len(format!("{path}-wal"))
        );
    }
    let mut conn = sqlx::postgres::PgConnection::connect(url)
        .await
        .expect("connect to the test database");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("list tables");
    let mut out = String::new();
    for t in tables {
        let sql = format!(
            "SELECT COALESCE(string_agg(xmin::text || ctid::text, ',' ORDER BY ctid), '') AS v \
             FROM \"{t}\""
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .expect("row versions");
        let v: String = row.get("v");
        out.push_str(&format!("{t}:{v};"));
    }
    let _ = conn.close().await;
    out
}

/// A running server on a temporary database.
pub struct TestServer {
    running: Option<Running>,
    /// The server's clock; `advance` moves server time forward.
    pub clock: OffsetClock,
    db: Arc<TestDatabase>,
    settings: Settings,
}

impl TestServer {
    /// Starts a server with default settings.
    pub async fn start() -> Self {
        Self::start_with(Settings::default()).await
    }

    /// Starts a server with `settings` (listen and, unless given, the database are filled in).
    pub async fn start_with(settings: Settings) -> Self {
        let db = match &settings.database_url {
            Some(url) => TestDatabase {
                url: url.clone(),
                backend: Config::from_settings(settings.clone())
                    .expect("valid test settings")
                    .backend,
                _dir: None,
            },
            None => TestDatabase::new().await,
        };
        Self::start_in(Arc::new(db), settings, OffsetClock::new()).await
    }

    /// Another server (a replica) on the same database and clock, with the same settings.
    pub async fn replica(&self) -> Self {
        self.replica_with(self.settings.clone()).await
    }

    /// Another server on the same database and clock, with other settings.
    pub async fn replica_with(&self, settings: Settings) -> Self {
        Self::start_in(self.db.clone(), settings, self.clock.clone()).await
    }

    async fn start_in(db: Arc<TestDatabase>, settings: Settings, clock: OffsetClock) -> Self {
        install_crypto();
        let mut s = settings.clone();
        s.listen = s.listen.or(Some("127.0.0.1:0".into()));
        s.database_url = Some(db.url.clone());
        let config = Config::from_settings(s).expect("valid test settings");
        let running = start(config, Arc::new(clock.clone()))
            .await
            .expect("server starts");
        Self {
            running: Some(running),
            clock,
            db,
            settings,
        }
    }

    /// The engine of this server's database.
    pub fn backend(&self) -> Backend {
        self.db.backend
    }

    /// See [`TestDatabase::write_marker`].
    pub async fn write_marker(&self) -> String {
        self.db.write_marker().await
    }

    /// The test database, to start more servers or `latchkeyd` processes on.
    pub fn database(&self) -> Arc<TestDatabase> {
        self.db.clone()
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
        Self::start_in(self.db.clone(), self.settings.clone(), self.clock.clone()).await
    }

    /// Moves the server clock to the start of the next `window_s`-second window, so that a
    /// test's requests all fall in one window of the fixed-window rate limiters.
    /// The clock is frozen first: afterwards only `clock.advance` moves server time.
    pub fn align_clock(&self, window_s: i64) {
        self.clock.freeze();
        let now = self.running().state.now();
        self.clock.advance(window_s - now.rem_euclid(window_s));
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

impl Page {
    /// The body with HTML entities decoded (`&#x2f;` → `/`), for matching text.
    pub fn text(&self) -> String {
        unescape(&self.body)
    }
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
