//! `latchkey login --web`: authorization code + PKCE with a loopback redirect, the browser
//! played by the testkit's HTTP client (signed in, pressing Approve or Deny on the consent page,
//! then following the redirect back to the CLI's listener): approve, deny, forged state, a stray
//! request, timeout, Ctrl-C, a replayed code, and the CI guard.

use crate::util::*;
use std::time::{Duration, Instant};

/// The loopback callback base (`http://127.0.0.1:PORT`) of a sign-in URL.
pub fn loopback_base(authorize_url: &str) -> String {
    let u = url_query(authorize_url, "redirect_uri");
    u.trim_end_matches("/callback").to_owned()
}

fn url_query(u: &str, key: &str) -> String {
    let parsed = reqwest::Url::parse(u).expect("URL");
    parsed
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {key} in {u}"))
}

/// Delivers a redirect `location` to the CLI's listener, as the browser does; returns the
/// status and page.
pub async fn deliver(location: &str) -> (u16, String) {
    latchkey_server::testkit::install_crypto();
    let r = reqwest::Client::new()
        .get(location)
        .send()
        .await
        .expect("GET the loopback callback");
    (r.status().as_u16(), r.text().await.expect("page"))
}

fn web_login(w: &World, extra: &[&str]) -> Pending {
    let mut args = vec!["login", "--web", "--no-browser"];
    args.extend_from_slice(extra);
    Pending::spawn(w.command(&args))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_login_approved() {
    let w = World::new().await;
    let alice = w.user("alice@example.com").await;
    let pending = web_login(&w, &["--name", "web-box"]);
    let url = pending.url().await;
    assert!(
        url.starts_with(&format!("{}/oauth/authorize?", w.url())),
        "{url}"
    );
    assert_eq!(url_query(&url, "code_challenge_method"), "S256");
    assert_eq!(url_query(&url, "code_challenge").len(), 43);
    assert_eq!(url_query(&url, "device_name"), "web-box");
    let base = loopback_base(&url);
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    // A stray request gets 404 and does not end the wait.
    let (status, _) = deliver(&format!("{base}/favicon.ico")).await;
    assert_eq!(status, 404);
    let (status, _) = deliver(&format!("{base}/")).await;
    assert_eq!(status, 404);
    // The callback path without an answer (a prefetch) gets an error page; the wait goes on.
    let (status, page) = deliver(&format!("{base}/callback")).await;
    assert_eq!(status, 400);
    assert!(page.contains("neither a code nor an error"), "{page}");

    let location = alice.consent(&url, true).await;
    assert!(
        location.starts_with(&format!("{base}/callback?")),
        "{location}"
    );
    let (status, page) = deliver(&location).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Signed in"), "{page}");
    assert!(page.contains("alice@example.com"), "{page}");
    assert!(page.contains("close this tab"), "{page}");
    let run = pending
        .finish()
        .await
        .success()
        .stderr_has("To sign in, open this page")
        .stderr_has("Signed in as alice@example.com (org ");
    assert!(run.stdout.is_empty(), "{run:?}");

    let creds = w.credentials();
    assert_eq!(creds["mode"], "oauth");
    assert_eq!(creds["session"]["name"], "web-box");
    let who = w.run(&["whoami", "--json"]).await.success();
    let v: serde_json::Value = serde_json::from_str(&who.stdout).unwrap();
    assert_eq!(v["user"]["email"], "alice@example.com");
    assert_eq!(v["session"]["method"], "browser");
    // The listener is closed once the login is over.
    assert!(std::net::TcpStream::connect(base.trim_start_matches("http://")).is_err());

    // The code is single use: replaying it fails and revokes what it issued (RFC 6749 §4.1.2),
    // so this CLI's session ends.
    let code = url_query(&location, "code");
    latchkey_server::testkit::install_crypto();
    let r = reqwest::Client::new()
        .post(format!("{}/oauth/token", w.url()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", &format!("{base}/callback")),
            ("code_verifier", &"a".repeat(43)),
            ("client_id", "latchkey-cli"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let mut c = w.credentials();
    c["expires_at"] = (now() - 10).into();
    write_json(&w.credentials_path(), &c);
    w.run(&["whoami"])
        .await
        .code(1)
        .stderr_has("Session expired. Run `latchkey login` again.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_login_denied() {
    let w = World::new().await;
    let bo = w.user("bo@example.com").await;
    // --oauth is the same as --web.
    let pending = Pending::spawn(w.command(&["login", "--oauth", "--no-browser"]));
    let url = pending.url().await;
    let location = bo.consent(&url, false).await;
    assert!(location.contains("error=access_denied"), "{location}");
    let (status, page) = deliver(&location).await;
    assert_eq!(status, 400);
    assert!(
        page.contains("denied") && page.contains("close this tab"),
        "{page}"
    );
    pending
        .finish()
        .await
        .code(1)
        .stderr_has("the sign-in request was denied");
    assert!(!w.credentials_path().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_login_with_a_forged_state_aborts() {
    let w = World::new().await;
    let cy = w.user("cy@example.com").await;
    let pending = web_login(&w, &[]);
    let url = pending.url().await;
    let location = cy.consent(&url, true).await;
    let state = url_query(&location, "state");
    let forged = location.replace(&format!("state={state}"), "state=forged-by-someone");
    assert_ne!(forged, location);
    let (status, page) = deliver(&forged).await;
    assert_eq!(status, 400);
    assert!(page.contains("State mismatch"), "{page}");
    pending
        .finish()
        .await
        .code(1)
        .stderr_has("State mismatch — aborting to prevent CSRF")
        .stderr_has("hint:");
    assert!(!w.credentials_path().exists());
    // The genuine callback can no longer be delivered: the listener is gone.
    let base = loopback_base(&url);
    assert!(std::net::TcpStream::connect(base.trim_start_matches("http://")).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_login_times_out() {
    let w = World::new().await;
    let mut cmd = w.command(&["login", "--web", "--no-browser"]);
    cmd.env("LATCHKEY_LOGIN_TIMEOUT", "2");
    let started = Instant::now();
    let pending = Pending::spawn(cmd);
    let url = pending.url().await;
    let run = pending
        .finish()
        .await
        .code(1)
        .stderr_has("Waiting up to 2 seconds")
        .stderr_has("error: Login timed out")
        .stderr_has("latchkey login --device");
    assert!(started.elapsed() < Duration::from_secs(15), "{run:?}");
    let base = loopback_base(&url);
    assert!(std::net::TcpStream::connect(base.trim_start_matches("http://")).is_err());
    assert!(!w.credentials_path().exists());

    let mut cmd = w.command(&["login", "--web", "--no-browser"]);
    cmd.env("LATCHKEY_LOGIN_TIMEOUT", "soon");
    run_command(cmd)
        .await
        .code(1)
        .stderr_has("LATCHKEY_LOGIN_TIMEOUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_closes_the_listener() {
    let w = World::new().await;
    let pending = web_login(&w, &[]);
    let url = pending.url().await;
    let base = loopback_base(&url);
    let pid = pending.child.id().to_string();
    let st = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(st.success());
    pending.finish().await.code(130).stderr_has("cancelled");
    assert!(std::net::TcpStream::connect(base.trim_start_matches("http://")).is_err());
    assert!(!w.credentials_path().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_is_refused_in_ci_and_headless_but_device_works() {
    let w = World::new().await;
    for args in [
        &["login", "--web"][..],
        &["login", "--web", "--no-browser"][..],
    ] {
        let mut cmd = w.command(args);
        cmd.env("CI", "true");
        run_command(cmd)
            .await
            .code(1)
            .stderr_has("CI runners can't")
            .stderr_has("LATCHKEY_API_KEY")
            .stderr_has("--device");
    }
    // No CI, but no terminal and no display: nobody could use a browser here...
    w.run(&["login", "--web"])
        .await
        .code(1)
        .stderr_has("no terminal or display")
        .stderr_has("--no-browser");
    // ...and CI=false is not CI.
    let mut cmd = w.command(&["login", "--web"]);
    cmd.env("CI", "false");
    run_command(cmd)
        .await
        .code(1)
        .stderr_has("no terminal or display");
    assert!(!w.credentials_path().exists());

    // The device flow stays available in CI.
    let dee = w.user("dee@example.com").await;
    let mut cmd = w.command(&["login", "--device", "--no-browser"]);
    cmd.env("CI", "1");
    let pending = Pending::spawn(cmd);
    let code = pending.code().await;
    dee.approve_device(&code).await;
    pending
        .finish()
        .await
        .success()
        .stderr_has("Signed in as dee@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_method_switched_off() {
    let mut s = fast_settings();
    s.login_methods = Some(vec!["device".into()]);
    let w = World::with_settings(s).await;
    w.run(&["login", "--web", "--no-browser"])
        .await
        .code(1)
        .stderr_has("Browser sign-in is disabled on this server")
        .stderr_has("latchkey login --device");
}
