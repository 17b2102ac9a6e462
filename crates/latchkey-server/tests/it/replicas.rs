//! Several `latchkeyd` processes on one database (PostgreSQL when the suite runs with
//! `LATCHKEY_TEST_BACKEND=postgres`): all state is shared, so any replica can continue what
//! another started, and concurrent redemptions have exactly one winner. Also the operator
//! commands (`migrate`, `keys`, `users`, `check-config`) against the same database.

use latchkey_server::testkit::{Browser, TestDatabase};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{get_json, poll, refresh, start_device};

/// A `latchkeyd serve` process, killed when dropped (so a failing test leaks nothing).
pub struct Daemon {
    child: Child,
    /// Its URL.
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `latchkeyd` on `database_url` with extra arguments; waits for its URL.
    pub fn start(database_url: &str, extra: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stderr.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
            .args(["--listen", "127.0.0.1:0", "--database-url", database_url])
            .args(extra)
            .env("LATCHKEYD_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // Keep draining: a closed stdout would fail its next message.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let Some(url) = line.trim().strip_prefix("latchkeyd is running at ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "latchkeyd did not start: {line}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Daemon {
            url: url.to_owned(),
            child,
            log,
            _dir: dir,
        }
    }

    /// What it logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                assert!(s.success(), "exit {s:?}\n{}", self.logs());
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a one-shot `latchkeyd` command on `database_url`.
pub fn latchkeyd(database_url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
        .args(args)
        .args(["--database-url", database_url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn jwks_kids(base: &str) -> BTreeSet<String> {
    let (_, _, j) = get_json(&format!("{base}/.well-known/jwks.json"), None).await;
    j["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(jwt: &str) -> String {
    use base64::Engine;
    let h = jwt.split('.').next().unwrap();
    let v: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .unwrap(),
    )
    .unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn three_replicas_share_flows_sessions_and_keys() {
    let db = TestDatabase::new().await;
    // Started together on an empty database: they migrate once and agree on one first key.
    let args = [
        "--device-poll-interval",
        "1",
        "--key-reload-interval",
        "1",
        "--key-activation-delay",
        "4",
    ];
    let (a, b, c) = std::thread::scope(|s| {
        let a = s.spawn(|| Daemon::start(&db.url, &args));
        let b = s.spawn(|| Daemon::start(&db.url, &args));
        let c = s.spawn(|| Daemon::start(&db.url, &args));
        (a.join().unwrap(), b.join().unwrap(), c.join().unwrap())
    });
    let first = jwks_kids(&a.url).await;
    assert_eq!(first.len(), 1, "one first key, not one per replica");
    assert_eq!(jwks_kids(&b.url).await, first);
    assert_eq!(jwks_kids(&c.url).await, first);
    assert_eq!(
        db.query_i64("SELECT COUNT(*) FROM schema_migrations WHERE version = 1")
            .await,
        1
    );

    // A device flow started on A, approved on B, polled on C.
    let browser_b = Browser::new(&b.url);
    browser_b
        .sign_up("rep@example.com", "three replicas 1")
        .await;
    let dev = start_device(&a.url).await;
    let code = dev["device_code"].as_str().unwrap().to_owned();
    browser_b
        .approve_device(dev["user_code"].as_str().unwrap())
        .await;
    let (s, tok) = poll(&c.url, &code).await;
    assert_eq!(s, 200, "{tok}");
    let access = tok["access_token"].as_str().unwrap().to_owned();
    let r1 = tok["refresh_token"].as_str().unwrap().to_owned();
    // The device code is spent everywhere.
    assert_eq!(poll(&a.url, &code).await.0, 400);
    // A token from C is good on A (the issuer differs by port, so check via introspection-free
    // signature: /v1/me verifies the issuer, so use C's own /v1/me and A's JWKS instead).
    assert!(jwks_kids(&a.url).await.contains(&kid_of(&access)));
    assert_eq!(
        get_json(&format!("{}/v1/me", c.url), Some(&access)).await.0,
        200
    );

    // A refresh rotated on A, retried on B within the grace window (a lost response), gets
    // the same new token; the new one works on C. (Reuse after that is rejected on any
    // replica: see the end of this test.)
    let (s, t2) = refresh(&a.url, &r1).await;
    assert_eq!(s, 200, "{t2}");
    let r2 = t2["refresh_token"].as_str().unwrap().to_owned();
    let (s, retried) = refresh(&b.url, &r1).await;
    assert_eq!(s, 200, "{retried}");
    assert_eq!(retried["refresh_token"], t2["refresh_token"]);
    let (s, t3) = refresh(&c.url, &r2).await;
    assert_eq!(s, 200, "{t3}");
    let r3 = t3["refresh_token"].as_str().unwrap().to_owned();

    // The same refresh token at the same moment on all three, several times: exactly one
    // new token comes out.
    let mut tasks = Vec::new();
    for i in 0..9 {
        let base = [&a.url, &b.url, &c.url][i % 3].clone();
        let t = r3.clone();
        tasks.push(tokio::spawn(async move { refresh(&base, &t).await }));
    }
    let mut winners = BTreeSet::new();
    for t in tasks {
        let (s, body) = t.await.unwrap();
        match s {
            200 => {
                winners.insert(body["refresh_token"].as_str().unwrap().to_owned());
            }
            400 => assert_eq!(body["error"], "invalid_grant"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one rotation wins: {winners:?}");

    // The same approved device code polled on all three at once: one gets tokens.
    let dev = start_device(&b.url).await;
    let code = dev["device_code"].as_str().unwrap().to_owned();
    browser_b
        .approve_device(dev["user_code"].as_str().unwrap())
        .await;
    let mut tasks = Vec::new();
    for base in [&a.url, &b.url, &c.url] {
        let (base, code) = (base.clone(), code.clone());
        tasks.push(tokio::spawn(async move { poll(&base, &code).await }));
    }
    let mut ok = 0;
    for t in tasks {
        let (s, body) = t.await.unwrap();
        match s {
            200 => ok += 1,
            400 => assert_eq!(body["error"], "invalid_grant", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok, 1, "exactly one poller gets the tokens");

    // Key rotation from the command line while the replicas serve: every replica publishes
    // the new key (they reload every second) before anyone signs with it.
    let rotated_at = Instant::now();
    let o = latchkeyd(
        &db.url,
        &[
            "keys",
            "rotate",
            "--key-activation-delay",
            "4",
            "--key-reload-interval",
            "1",
        ],
        None,
    );
    assert!(o.status.success(), "{}", out(&o));
    let new_kid = String::from_utf8_lossy(&o.stdout)
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("New signing key "))
        .unwrap()
        .to_owned();
    let old_kid = first.iter().next().unwrap().clone();
    for d in [&a, &b, &c] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !jwks_kids(&d.url).await.contains(&new_kid) {
            assert!(
                Instant::now() < deadline,
                "{} never published the key",
                d.url
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(jwks_kids(&d.url).await.contains(&old_kid));
    }
    // Before the activation time the old key still signs.
    let (s, t4) = refresh(&b.url, &winners.into_iter().next().unwrap()).await;
    assert_eq!(s, 200);
    if rotated_at.elapsed() < Duration::from_secs(3) {
        assert_eq!(kid_of(t4["access_token"].as_str().unwrap()), old_kid);
    }
    // After it, the new key signs on every replica, and tokens of the old one still verify.
    let wait = Duration::from_secs(5).saturating_sub(rotated_at.elapsed());
    tokio::time::sleep(wait).await;
    let (s, t5) = refresh(&c.url, t4["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{t5}");
    assert_eq!(kid_of(t5["access_token"].as_str().unwrap()), new_kid);
    assert_eq!(
        get_json(&format!("{}/v1/me", b.url), t4["access_token"].as_str())
            .await
            .0,
        200,
        "a token of the old key verifies during the overlap"
    );
    assert_eq!(
        get_json(&format!("{}/v1/me", c.url), t5["access_token"].as_str())
            .await
            .0,
        200
    );
    let o = latchkeyd(&db.url, &["keys", "list", "--json"], None);
    assert!(o.status.success(), "{}", out(&o));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let state = |kid: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .map(|k| k["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(state(&new_kid).as_deref(), Some("active"));
    assert_eq!(state(&old_kid).as_deref(), Some("retiring"));

    // A spent refresh token whose successor was used is rejected on any replica, and ends the
    // session everywhere (reuse detection).
    let (s, err) = refresh(&a.url, &r1).await;
    assert_eq!((s, err["error"].as_str()), (400, Some("invalid_grant")));
    let (s, _) = refresh(&b.url, t5["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 400, "the whole session was revoked");

    for d in [a, b, c] {
        let logs = d.logs();
        assert!(
            !logs.contains(&r1) && !logs.contains(&code),
            "a secret reached the log"
        );
        d.stop();
    }
}

#[tokio::test]
async fn operator_commands() {
    let db = TestDatabase::new().await;
    let ok = |o: &Output| assert!(o.status.success(), "{}", out(o));

    // Operator commands refuse an unmigrated database; `migrate` migrates, twice is a no-op.
    let o = latchkeyd(&db.url, &["users", "create", "x@example.com"], None);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("latchkeyd migrate"),
        "{}",
        out(&o)
    );
    let o = latchkeyd(&db.url, &["migrate"], None);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Applied migrations"));
    let o = latchkeyd(&db.url, &["migrate"], None);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("up to date"));
    let o = latchkeyd(&db.url, &["check-config", "--connect"], None);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("schema current"));

    // Users: create (password from stdin, or generated), then sign in with it.
    let o = latchkeyd(
        &db.url,
        &[
            "users",
            "create",
            "Op@Example.com",
            "--name",
            "Op",
            "--password-stdin",
        ],
        Some("operator password 1\n"),
    );
    ok(&o);
    let o2 = latchkeyd(&db.url, &["users", "create", "op@example.com"], None);
    assert!(!o2.status.success());
    assert!(String::from_utf8_lossy(&o2.stderr).contains("already exists"));
    let o = latchkeyd(&db.url, &["users", "create", "gen@example.com"], None);
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let generated = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Password (shown once): "))
        .unwrap()
        .to_owned();

    let d = Daemon::start(&db.url, &["--auto-migrate", "false"]);
    let browser = Browser::new(&d.url);
    let page = browser.sign_in("gen@example.com", &generated).await;
    assert_eq!(page.status, 200);
    assert!(!page.url.contains("/signin"), "signed in: {}", page.url);
    let op = Browser::new(&d.url);
    let page = op.sign_in("op@example.com", "operator password 1").await;
    assert!(!page.url.contains("/signin"), "signed in: {}", page.url);
    let dev = start_device(&d.url).await;
    op.approve_device(dev["user_code"].as_str().unwrap()).await;
    let (s, tok) = poll(&d.url, dev["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 200);

    // Disable: the session and the web sign-in end at once.
    let o = latchkeyd(&db.url, &["users", "disable", "op@example.com"], None);
    ok(&o);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("1 session(s) revoked"),
        "{}",
        out(&o)
    );
    let (s, _) = refresh(&d.url, tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 400);
    let page = op.get("/device").await;
    assert!(
        page.url.contains("/signin"),
        "web sign-in ended: {}",
        page.url
    );
    let page = op.sign_in("op@example.com", "operator password 1").await;
    assert!(page.url.contains("/signin"), "disabled cannot sign in");
    let o = latchkeyd(&db.url, &["users", "disable", "nobody@example.com"], None);
    assert_eq!(o.status.code(), Some(1));
    let o = latchkeyd(&db.url, &["users", "enable", "op@example.com"], None);
    ok(&o);
    let page = Browser::new(&d.url)
        .sign_in("op@example.com", "operator password 1")
        .await;
    assert!(!page.url.contains("/signin"), "enabled again: {}", page.url);
    d.stop();

    // check-config without a database names bad settings.
    let o = latchkeyd(
        &db.url,
        &["check-config", "--trusted-proxies", "nope"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("trusted_proxies"));
    let o = latchkeyd(
        "postgres://user:hunter2@127.0.0.1:1/db",
        &["check-config"],
        None,
    );
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        !stdout.contains("hunter2") && stdout.contains("***"),
        "{stdout}"
    );
}

#[tokio::test]
async fn authorization_code_redeemed_on_two_replicas_at_once() {
    use latchkey_server::testkit::TestServer;
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const REDIRECT: &str = "http://127.0.0.1:49999/callback";
    let a = TestServer::start().await;
    let b = a.replica().await;
    let browser = Browser::new(a.url());
    browser
        .sign_up("ac@example.com", "two replicas one code")
        .await;
    let mut url = url::Url::parse(&format!("{}/oauth/authorize", a.url())).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "latchkey-cli")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "s")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let loc = browser.consent(url.as_str(), true).await;
    let code = url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let mut tasks = Vec::new();
    for base in [a.url(), b.url(), a.url(), b.url()] {
        let (base, code) = (base.to_owned(), code.clone());
        tasks.push(tokio::spawn(async move {
            super::post_form(
                &format!("{base}/oauth/token"),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("code_verifier", VERIFIER),
                    ("redirect_uri", REDIRECT),
                    ("client_id", "latchkey-cli"),
                ],
            )
            .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (s, _, body) = t.await.unwrap();
        match s {
            200 => ok += 1,
            400 => assert_eq!(body["error"], "invalid_grant", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok, 1, "exactly one redemption of the code wins");
    a.stop().await;
    b.stop().await;
}
