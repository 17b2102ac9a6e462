//! login → whoami → token → logout, the login flags, denial, Ctrl-C, versions.

use crate::util::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_whoami_token_logout() {
    let w = World::new().await;
    let alice = w.user("alice@example.com").await;
    let run = w
        .login(&alice, &["--name", "test-box"])
        .await
        .success()
        .stderr_has("Code: ")
        .stderr_has(&format!("{}/device", w.url()))
        .stderr_has("Signed in as alice@example.com (org ");
    assert!(
        run.stdout.is_empty(),
        "login prints nothing on stdout: {run:?}"
    );

    let creds = w.credentials();
    assert_eq!(creds["version"], 1);
    assert_eq!(creds["mode"], "oauth");
    assert_eq!(creds["client_id"], "latchkey-cli");
    assert_eq!(creds["identity"]["email"], "alice@example.com");
    assert_eq!(creds["session"]["name"], "test-box");
    assert!(creds["refresh_token"].as_str().unwrap().starts_with("lkr_"));

    let who = w
        .run(&["whoami"])
        .await
        .success()
        .stdout_has("Signed in as alice@example.com")
        .stdout_has("Organization")
        .stdout_has("(owner)")
        .stdout_has("Session      test-box")
        .stdout_has(&w.credentials_path().display().to_string());
    assert!(
        who.stdout.contains("Token expires in 59 minutes")
            || who.stdout.contains("Token expires in 60 minutes"),
        "{who:?}"
    );

    let json = w.run(&["whoami", "--json"]).await.success();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(v["signed_in"], true);
    assert_eq!(v["user"]["email"], "alice@example.com");
    assert_eq!(v["org"]["role"], "owner");
    assert_eq!(v["credentials"]["local"], false);
    assert!(v["token_expires_in"].as_i64().unwrap() > 3000);

    let tok = w.run(&["token"]).await.success();
    assert!(
        tok.stderr.is_empty(),
        "token prints only the token: {tok:?}"
    );
    let token = tok.stdout.trim_end_matches('\n');
    assert_eq!(tok.stdout.lines().count(), 1);
    assert_eq!(token, creds["access_token"].as_str().unwrap());
    assert_eq!(me_status(&w.url(), token).await, 200);

    w.run(&["logout", "-y"])
        .await
        .success()
        .stderr_has("Signed out alice@example.com");
    assert!(!w.credentials_path().exists());
    // The session is over at the server too.
    assert_eq!(me_status(&w.url(), token).await, 401);

    w.run(&["whoami"])
        .await
        .code(1)
        .stderr_has("Not signed in.")
        .stderr_has("hint: Run `latchkey login`");
    let j = w.run(&["whoami", "--json"]).await.code(1);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&j.stdout).unwrap()["signed_in"],
        false
    );
    w.run(&["token"]).await.code(1).stderr_has("Not signed in.");
    w.run(&["logout", "-y"])
        .await
        .success()
        .stderr_has("No credentials on file.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cloud_url() {
    let w = World::bare(fast_settings()).await;
    w.run(&["login", "--no-browser"])
        .await
        .code(1)
        .stderr_has("error: cloud.url is not set")
        .stderr_has("latchkey config set cloud.url https://");
    assert!(!w.credentials_path().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_without_cloud() {
    // Only the authorization server is known: standards-only discovery, no /v1 documents.
    let w = World::bare(fast_settings()).await;
    let bob = w.user("bob@example.com").await;
    let url = w.url();
    w.login(
        &bob,
        &[
            "--auth-url",
            &url,
            "--client-id",
            "latchkey-cli",
            "--scope",
            "openid email offline_access",
        ],
    )
    .await
    .success()
    .stderr_has("Signed in as bob@example.com");
    let creds = w.credentials();
    assert!(creds.get("api_url").is_none(), "{creds}");
    let granted: Vec<&str> = creds["scope"].as_str().unwrap().split(' ').collect();
    assert!(
        ["openid", "email", "offline_access"]
            .iter()
            .all(|s| granted.contains(s))
    );
    assert!(creds["refresh_token"].is_string());
    // whoami validates through the OpenID userinfo endpoint.
    w.run(&["whoami"])
        .await
        .success()
        .stdout_has("Signed in as bob@example.com")
        .stdout_has(&format!("Issuer       {url}"));

    // A wrong client id is refused by the server before any code is shown.
    w.run(&[
        "login",
        "--force",
        "--no-browser",
        "--auth-url",
        &url,
        "--client-id",
        "nope",
    ])
    .await
    .code(1)
    .stderr_has("error:");
    // An issuer that does not match the metadata is refused (RFC 8414 §3.3).
    let alias = url.replace("127.0.0.1", "localhost");
    w.run(&["login", "--force", "--no-browser", "--auth-url", &alias])
        .await
        .code(1)
        .stderr_has("refusing to use it");
    // Not a URL.
    w.run(&["login", "--force", "--no-browser", "--auth-url", "ftp://x"])
        .await
        .code(1)
        .stderr_has("--auth-url");
    // The old login is untouched by the failures.
    assert_eq!(w.credentials()["identity"]["email"], "bob@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_overrides_apply() {
    let w = World::new().await;
    let carol = w.user("carol@example.com").await;
    w.run(&["config", "set", "auth.scope", "openid"])
        .await
        .success();
    w.login(&carol, &[]).await.success();
    assert_eq!(w.credentials()["scope"], "openid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_login() {
    let w = World::new().await;
    let dave = w.user("dave@example.com").await;
    let pending = Pending::spawn(w.command(&["login", "--no-browser"]));
    let code = pending.code().await;
    dave.deny_device(&code).await;
    pending
        .finish()
        .await
        .code(1)
        .stderr_has("the sign-in request was denied");
    assert!(!w.credentials_path().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_polling_leaves_no_file() {
    let w = World::new().await;
    // LATCHKEY_NO_BROWSER=1 works like --no-browser.
    let mut cmd = w.command(&["login"]);
    cmd.env("LATCHKEY_NO_BROWSER", "1");
    let pending = Pending::spawn(cmd);
    let _code = pending.code().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = pending.child.id().to_string();
    let started = std::time::Instant::now();
    let st = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(st.success());
    let run = pending
        .finish()
        .await
        .code(130)
        .stderr_has("Open the page on any device")
        .stderr_has("cancelled");
    assert!(started.elapsed() < Duration::from_secs(3), "{run:?}");
    assert!(!w.credentials_path().exists());
    let leftovers: Vec<_> = std::fs::read_dir(&w.config_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "config.yaml")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_old_for_the_cloud() {
    let mut s = fast_settings();
    s.min_cli_version = Some("99.0.0".into());
    s.download_url = Some("https://downloads.example.com/latchkey".into());
    let w = World::with_settings(s).await;
    w.run(&["login", "--no-browser"])
        .await
        .code(1)
        .stderr_has("too old")
        .stderr_has("hint:")
        .stderr_has("https://downloads.example.com/latchkey");
    assert!(!w.credentials_path().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_required_from_stub() {
    let w = World::bare(fast_settings()).await;
    let stub = stub_server(
        426,
        r#"{"code":"upgrade_required","message":"this CLI is too old; version 9.0.0 or newer is required"}"#,
    );
    std::fs::create_dir_all(&w.config_dir).unwrap();
    write_json(
        &w.credentials_path(),
        &stub_credentials(&stub, Some("https://dl.example.com/latchkey")),
    );
    w.run(&["whoami"])
        .await
        .code(1)
        .stderr_has("too old")
        .stderr_has("version 9.0.0 or newer")
        .stderr_has("https://dl.example.com/latchkey");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_failures_name_the_status() {
    let w = World::bare(fast_settings()).await;
    let stub = stub_server(500, r#"{"code":"internal","message":"boom"}"#);
    std::fs::create_dir_all(&w.config_dir).unwrap();
    write_json(&w.credentials_path(), &stub_credentials(&stub, None));
    w.run(&["whoami"])
        .await
        .code(1)
        .stderr_has("Failed to fetch /v1/me (500)")
        .stderr_has("token may be expired");
}

/// Credentials pointing at a stub, with a token valid for an hour.
fn stub_credentials(stub: &str, download_url: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "version": 1,
        "mode": "oauth",
        "issuer": stub,
        "client_id": "latchkey-cli",
        "token_endpoint": format!("{stub}/oauth/token"),
        "api_url": stub,
        "token_type": "Bearer",
        "access_token": "stub-access-token",
        "refresh_token": "lkr_stub",
        "expires_at": now() + 3600,
        "created_at": now(),
    });
    if let Some(d) = download_url {
        v["download_url"] = d.into();
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_offline_still_signs_out_locally() {
    let w = World::new().await;
    w.signed_in("erin@example.com").await;
    let World {
        server,
        tmp,
        config_dir,
        cwd,
    } = w;
    server.stop().await;
    let w2 = World::bare(fast_settings()).await;
    let mut cmd = w2.command_in(&cwd, &["logout", "--yes"]);
    cmd.env("LATCHKEY_CONFIG_DIR", &config_dir)
        .env("HOME", tmp.path());
    run_command(cmd)
        .await
        .success()
        .stderr_has("could not end the session at the server")
        .stderr_has("Signed out erin@example.com");
    assert!(!config_dir.join("credentials.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_token_and_api_key() {
    let w = World::new().await;
    w.signed_in("fay@example.com").await;
    let token = w.credentials()["access_token"].as_str().unwrap().to_owned();
    // LATCHKEY_TOKEN passes through, with no login needed.
    let mut cmd = w.command(&["token"]);
    cmd.env("LATCHKEY_TOKEN", "passed-through");
    let run = run_command(cmd).await.success();
    assert_eq!(run.stdout, "passed-through\n");
    std::fs::remove_file(w.credentials_path()).unwrap();
    let mut cmd = w.command(&["whoami"]);
    cmd.env("LATCHKEY_TOKEN", &token);
    run_command(cmd)
        .await
        .success()
        .stdout_has("fay@example.com")
        .stdout_has("$LATCHKEY_TOKEN");
    // A malformed API key is refused before any request, and never echoed.
    let mut cmd = w.command(&["token"]);
    cmd.env("LATCHKEY_API_KEY", "lk_not_yet");
    let run = run_command(cmd)
        .await
        .code(1)
        .stderr_has("LATCHKEY_API_KEY");
    assert!(!run.stderr.contains("lk_not_yet"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relogin_replaces_and_revokes_the_old_session() {
    let w = World::new().await;
    let olga = w.signed_in("olga@example.com").await;
    let old = w.credentials()["access_token"].as_str().unwrap().to_owned();
    w.login(&olga, &["--force", "--name", "second"])
        .await
        .success()
        .stderr_has("Open the page on any device");
    assert_eq!(w.credentials()["session"]["name"], "second");
    assert_eq!(me_status(&w.url(), &old).await, 401);
    let new = w.credentials()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me_status(&w.url(), &new).await, 200);
}
