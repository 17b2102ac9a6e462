//! `latchkey login --anonymous` and the upgrade without loss: a later real login (any method)
//! claims the anonymous identity, so its organization moves into the account and the anonymous
//! user is retired. A claim that cannot be made is kept in `anonymous-*.json` and retried.

use crate::util::*;
use latchkey_server::config::Settings;

fn with_anonymous() -> Settings {
    Settings {
        login_methods: Some(vec![
            "browser".into(),
            "device".into(),
            "password".into(),
            "anonymous".into(),
        ]),
        ..fast_settings()
    }
}

/// `/v1/me` of a token: status and body.
async fn me(base: &str, token: &str) -> (u16, serde_json::Value) {
    latchkey_server::testkit::install_crypto();
    let r = reqwest::Client::new()
        .get(format!("{base}/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

async fn refresh_status(base: &str, refresh_token: &str) -> u16 {
    latchkey_server::testkit::install_crypto();
    reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "latchkey-cli"),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Signs in anonymously; returns (anonymous user id, org id, org slug, access, refresh).
async fn anonymous(w: &World) -> (String, String, String, String, String) {
    let run = w
        .run(&["login", "--anonymous", "--name", "anon-box"])
        .await
        .success()
        .stderr_has("Signed in anonymously (org ")
        .stderr_has("Anonymous id: ")
        .stderr_has("tied to this machine")
        .stderr_has("latchkey login");
    let c = w.credentials();
    assert_eq!(c["mode"], "anonymous", "{run:?}");
    assert_eq!(c["identity"]["anonymous"], true);
    assert!(c["identity"].get("email").is_none());
    (
        c["identity"]["user_id"].as_str().unwrap().to_owned(),
        c["identity"]["org"]["id"].as_str().unwrap().to_owned(),
        c["identity"]["org"]["slug"].as_str().unwrap().to_owned(),
        c["access_token"].as_str().unwrap().to_owned(),
        c["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// The moved org belongs to the account now, and the anonymous identity is gone.
async fn assert_claimed(w: &World, org_id: &str, anon_access: &str, anon_refresh: &str) {
    let token = w.credentials()["access_token"].as_str().unwrap().to_owned();
    let (s, me) = me(&w.url(), &token).await;
    assert_eq!(s, 200);
    let orgs: Vec<(&str, &str)> = me["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap(), o["role"].as_str().unwrap()))
        .collect();
    assert!(orgs.contains(&(org_id, "owner")), "{me}");
    assert_eq!(orgs.len(), 2, "{me}");
    assert_eq!(refresh_status(&w.url(), anon_refresh).await, 400);
    assert_eq!(me_status(&w.url(), anon_access).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_then_device_login_moves_the_org() {
    let w = World::with_settings(with_anonymous()).await;
    let (user_id, org_id, slug, anon_access, anon_refresh) = anonymous(&w).await;
    let (s, me_anon) = me(&w.url(), &anon_access).await;
    assert_eq!(
        (s, &me_anon["user"]["anonymous"]),
        (200, &serde_json::json!(true))
    );
    assert_eq!(me_anon["session"]["name"], "anon-box");

    // whoami says so, and warns.
    w.run(&["whoami"])
        .await
        .success()
        .stdout_has(&format!("Signed in as anonymous ({user_id})"))
        .stdout_has(&slug)
        .stderr_has("anonymous: your work is tied to this machine until you sign in");
    let j = w.run(&["whoami", "--json"]).await.success();
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["user"]["anonymous"], true);
    w.run(&["login", "--status"])
        .await
        .success()
        .stdout_has("Mode         anonymous");
    // Another anonymous login would lose this one: refused without --force.
    w.run(&["login", "--anonymous"])
        .await
        .code(1)
        .stderr_has("Already signed in as anonymous (");

    // A real login (no --force needed: it is an upgrade) claims it.
    let ann = w.user("ann@example.com").await;
    w.login(&ann, &["--device"])
        .await
        .success()
        .stderr_has("Signed in as ann@example.com")
        .stderr_has(&format!(
            "Moved your anonymous organization {slug} into ann@example.com."
        ));
    assert_eq!(w.credentials()["mode"], "oauth");
    assert_claimed(&w, &org_id, &anon_access, &anon_refresh).await;
    w.run(&["whoami"]).await.success().stdout_has(&slug);
    // Nothing was kept aside.
    assert!(std::fs::read_dir(&w.config_dir).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("anonymous-")
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_then_password_login_moves_the_org() {
    let w = World::with_settings(with_anonymous()).await;
    let (_, org_id, slug, anon_access, anon_refresh) = anonymous(&w).await;
    w.user("ben@example.com").await;
    run_with_stdin(
        w.command(&["login", "--email", "ben@example.com", "--password-stdin"]),
        &format!("{PASSWORD}\n"),
    )
    .await
    .success()
    .stderr_has(&format!(
        "Moved your anonymous organization {slug} into ben@example.com."
    ));
    assert_claimed(&w, &org_id, &anon_access, &anon_refresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_session_already_ended() {
    let w = World::with_settings(with_anonymous()).await;
    let (_, _, _, _, anon_refresh) = anonymous(&w).await;
    latchkey_server::testkit::install_crypto();
    reqwest::Client::new()
        .post(format!("{}/oauth/revoke", w.url()))
        .form(&[
            ("token", anon_refresh.as_str()),
            ("client_id", "latchkey-cli"),
        ])
        .send()
        .await
        .unwrap();
    w.user("cat@example.com").await;
    run_with_stdin(
        w.command(&["login", "--email", "cat@example.com", "--password-stdin"]),
        &format!("{PASSWORD}\n"),
    )
    .await
    .success()
    .stderr_has("had already ended; there was nothing to move");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_claim_is_kept_and_retried() {
    // The anonymous identity comes from server A; the first real login goes to server B, which
    // cannot claim it. It is kept, then moved by a later login to A.
    let a = World::with_settings(with_anonymous()).await;
    let (_, org_id, slug, anon_access, anon_refresh) = anonymous(&a).await;
    let b = World::bare(with_anonymous()).await;
    b.user("dan@example.com").await;
    let b_url = b.url();
    let run = run_with_stdin(
        a.command(&[
            "login",
            "--server",
            &b_url,
            "--email",
            "dan@example.com",
            "--password-stdin",
        ]),
        &format!("{PASSWORD}\n"),
    )
    .await
    .success()
    .stderr_has("Signed in as dan@example.com")
    .stderr_has("warning: could not move your anonymous organization into dan@example.com")
    .stderr_has("another server")
    .stderr_has("run `latchkey login` again to retry");
    let kept: Vec<_> = std::fs::read_dir(&a.config_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("anonymous-")
        })
        .collect();
    assert_eq!(kept.len(), 1, "{run:?}");
    #[cfg(unix)]
    assert_eq!(mode(&kept[0]), 0o600);
    assert_eq!(read_json(&kept[0])["refresh_token"], anon_refresh.as_str());
    // The anonymous session was not revoked.
    assert_eq!(me_status(&a.url(), &anon_access).await, 200);
    a.run(&["whoami"])
        .await
        .success()
        .stderr_has("an anonymous identity is waiting to be moved");

    // `latchkey login` with no flag, already signed in: it only retries the claim (still the
    // wrong server, so it stays kept).
    a.run(&["login"])
        .await
        .success()
        .stderr_has("moving the anonymous identity kept from an earlier login")
        .stderr_has("could not move");
    assert!(kept[0].exists());

    // A login at A moves it, and the kept file goes.
    a.user("dan@example.com").await;
    run_with_stdin(
        a.command(&[
            "login",
            "--force",
            "--email",
            "dan@example.com",
            "--password-stdin",
        ]),
        &format!("{PASSWORD}\n"),
    )
    .await
    .success()
    .stderr_has(&format!(
        "Moved your anonymous organization {slug} into dan@example.com."
    ));
    assert!(!kept[0].exists());
    assert_claimed(&a, &org_id, &anon_access, &anon_refresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_switched_off() {
    let w = World::new().await;
    w.run(&["login", "--anonymous"])
        .await
        .code(1)
        .stderr_has("error: Anonymous sign-in is disabled on this server")
        .stderr_has("latchkey login --web");
    assert!(!w.credentials_path().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_of_an_anonymous_identity_warns() {
    let w = World::with_settings(with_anonymous()).await;
    anonymous(&w).await;
    w.run(&["logout", "-y"])
        .await
        .success()
        .stderr_has("warning: this identity is anonymous")
        .stderr_has("Signed out anonymous (");
    assert!(!w.credentials_path().exists());
}
