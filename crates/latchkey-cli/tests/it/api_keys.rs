//! API keys from the CLI: created by a signed-in person, used from a fresh config directory with
//! only `LATCHKEY_API_KEY` (and `LATCHKEY_CLOUD_URL`), revoked, expired, mistyped; the role
//! ceiling; the precedence of credentials. A key is never printed after its creation.

use crate::util::*;
use latchkey_server::testkit::Browser;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// `latchkey ARGS` as a CI job runs it: an empty config directory (that does not even exist),
/// the key and the cloud URL in the environment, nothing else.
pub fn ci(w: &World, config_dir: &Path, key: &str, args: &[&str]) -> Command {
    let mut c = w.command(args);
    c.env("LATCHKEY_CONFIG_DIR", config_dir)
        .env("LATCHKEY_API_KEY", key)
        .env("LATCHKEY_CLOUD_URL", w.url());
    c
}

/// Creates a key with `latchkey api-keys create NAME EXTRA...` and returns it.
pub async fn create_key(w: &World, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["api-keys", "create", name];
    args.extend_from_slice(extra);
    let run = w.run(&args).await.success();
    let key = run.stdout.trim_end_matches('\n').to_owned();
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "only the key on stdout: {run:?}"
    );
    assert!(key.starts_with("lk_") && key.len() == 68, "{run:?}");
    assert!(
        !run.stderr.contains(&key),
        "the key only on stdout: {run:?}"
    );
    key
}

/// An HTTP call to the cloud API with a bearer token.
pub async fn api(
    w: &World,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    latchkey_server::testkit::install_crypto();
    let mut r = reqwest::Client::new()
        .request(method, format!("{}{path}", w.url()))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("API call");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_use_list_revoke() {
    let w = World::new().await;
    w.signed_in("kay@example.com").await;
    let run = w
        .run(&["api-keys", "create", "ci-deploy", "--expires-in-days", "30"])
        .await
        .success()
        .stderr_has("Created API key ci-deploy (lk_")
        .stderr_has("with role member")
        .stderr_has("it expires in 30 days")
        .stderr_has("cannot be shown again")
        .stderr_has("export LATCHKEY_API_KEY=");
    let key = run.stdout.trim_end_matches('\n').to_owned();
    assert_eq!(run.stdout.lines().count(), 1, "{run:?}");
    assert!(key.starts_with("lk_") && key.len() == 68, "{run:?}");
    assert!(!run.stderr.contains(&key));
    let id = key[..19].to_owned();

    // Listing shows the key's id and name, never the key.
    let list = w
        .run(&["api-keys", "list"])
        .await
        .success()
        .stdout_has("ID")
        .stdout_has("LAST USED")
        .stdout_has(&id)
        .stdout_has("ci-deploy")
        .stdout_has("member")
        .stdout_has("in 30 days");
    assert!(!list.stdout.contains(&key) && !list.stderr.contains(&key[19..]));
    let json = w.run(&["api-keys", "list", "--json"]).await.success();
    assert!(!json.stdout.contains(&key[19..]));
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["api_keys"][0]["id"], id.as_str());
    assert_eq!(v["api_keys"][0]["last_used_at"], Value::Null);

    // A fresh machine: only LATCHKEY_API_KEY and LATCHKEY_CLOUD_URL.
    let fresh = w.tmp.path().join("ci-config");
    let who = run_command(ci(&w, &fresh, &key, &["whoami"]))
        .await
        .success()
        .stdout_has(&format!("Signed in with API key ci-deploy ({id})"))
        .stdout_has("Organization ")
        .stdout_has("(member)")
        .stdout_has("Created by   kay@example.com")
        .stdout_has("Key expires  in 30 days")
        .stdout_has("$LATCHKEY_API_KEY (API key)")
        .stdout_has("Token expires in");
    assert!(!who.stdout.contains(&key) && !who.stderr.contains(&key));
    let j = run_command(ci(&w, &fresh, &key, &["whoami", "--json"]))
        .await
        .success();
    let v: Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["api_key"]["name"], "ci-deploy");
    assert_eq!(v["api_key"]["id"], id.as_str());
    assert_eq!(v["org"]["role"], "member");
    assert_eq!(v["credentials"]["source"], "api_key");
    assert_eq!(v["credentials"]["path"], "LATCHKEY_API_KEY");

    let tok = run_command(ci(&w, &fresh, &key, &["token"]))
        .await
        .success();
    assert!(tok.stderr.is_empty(), "{tok:?}");
    let token = tok.stdout.trim().to_owned();
    assert_ne!(token, key);
    assert_eq!(me_status(&w.url(), &token).await, 200);
    // The token lives in memory only: nothing was written anywhere.
    assert!(!fresh.exists(), "an API key leaves no files behind");
    // The server saw the key being used.
    let v: Value = serde_json::from_str(
        &w.run(&["api-keys", "list", "--json"])
            .await
            .success()
            .stdout,
    )
    .unwrap();
    assert!(v["api_keys"][0]["last_used_at"].is_i64(), "{v}");

    // A key cannot manage keys: the CLI says to sign in as a person.
    let refused = run_command(ci(&w, &fresh, &key, &["api-keys", "create", "another"]))
        .await
        .code(1)
        .stderr_has("error: could not create the API key: API keys cannot manage credentials")
        .stderr_has("sign in as a person with `latchkey login`")
        .stderr_has("hint: LATCHKEY_API_KEY is set");
    assert!(!refused.stderr.contains(&key));
    run_command(ci(&w, &fresh, &key, &["api-keys", "list"]))
        .await
        .code(1)
        .stderr_has("could not list API keys");

    // Revoke: the next use fails naming the key (id and name), never showing it.
    w.run(&["api-keys", "revoke", &id])
        .await
        .success()
        .stderr_has(&format!("Revoked API key {id}"));
    for args in [&["whoami"][..], &["token"][..]] {
        let r = run_command(ci(&w, &fresh, &key, args))
            .await
            .code(1)
            .stderr_has("error: the API key in LATCHKEY_API_KEY was refused")
            .stderr_has(&format!("API key {id} (ci-deploy) was revoked"))
            .stderr_has("hint: Create a new key with `latchkey api-keys create NAME`");
        assert!(!r.stderr.contains(&key[19..]), "{r:?}");
    }
    // Tokens obtained before stop working too.
    assert_eq!(me_status(&w.url(), &token).await, 401);
    // Revoking again: nothing to revoke.
    w.run(&["api-keys", "revoke", &id])
        .await
        .code(1)
        .stderr_has(&format!("could not revoke API key {id}"));
    w.run(&["api-keys", "revoke", "not-an-id"])
        .await
        .code(1)
        .stderr_has("lk_");
    w.run(&["api-keys", "list"])
        .await
        .success()
        .stderr_has("No API keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistyped_keys_fail_before_any_network() {
    let w = World::new().await;
    w.signed_in("lou@example.com").await;
    let key = create_key(&w, "typo-test", &[]).await;
    // A cloud URL where nothing listens: any request would fail with "could not reach".
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let fresh = w.tmp.path().join("fresh");
    let try_key = |k: String| {
        let mut c = w.command(&["token"]);
        c.env("LATCHKEY_CONFIG_DIR", &fresh)
            .env("LATCHKEY_API_KEY", k)
            .env("LATCHKEY_CLOUD_URL", &dead);
        run_command(c)
    };
    // The well-formed key does try the network (and fails there): the check below is local.
    try_key(key.clone())
        .await
        .code(1)
        .stderr_has("could not reach");

    let mut typo: Vec<char> = key.chars().collect();
    typo[40] = if typo[40] == 'Q' { 'R' } else { 'Q' };
    let typo: String = typo.into_iter().collect();
    let r = try_key(typo.clone())
        .await
        .code(1)
        .stderr_has("the API key in LATCHKEY_API_KEY cannot be used: it has a typo: its checksum does not match")
        .stderr_has("hint: Copy the key again in full")
        .stderr_has("Nothing was sent to the server");
    assert!(!r.stderr.contains("could not reach"), "{r:?}");
    assert!(!r.stderr.contains(&typo[19..]) && !r.stderr.contains(&key[19..]));

    try_key(key[..60].to_owned())
        .await
        .code(1)
        .stderr_has("it has 60 characters instead of 68");
    try_key(format!("{key}\n"))
        .await
        .stderr_has("could not reach");
    try_key("ghp_0123456789abcdef".to_owned())
        .await
        .code(1)
        .stderr_has("it is not a latchkey API key");
    // The same check applies to cloud.api_key.
    let mut c = w.command(&["whoami"]);
    c.env("LATCHKEY_CONFIG_DIR", &fresh);
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::write(
        fresh.join("config.yaml"),
        format!("cloud:\n  url: {dead}\n  api_key: {typo}\n"),
    )
    .unwrap();
    run_command(c)
        .await
        .code(1)
        .stderr_has("the API key in cloud.api_key cannot be used: it has a typo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_key_is_named() {
    let w = World::new().await;
    w.signed_in("max@example.com").await;
    let key = create_key(&w, "short-lived", &["--expires-in-days", "1"]).await;
    let fresh = w.tmp.path().join("fresh");
    run_command(ci(&w, &fresh, &key, &["whoami"]))
        .await
        .success()
        .stdout_has("Key expires  in 24 hours");
    w.server.clock.advance(2 * 86_400);
    run_command(ci(&w, &fresh, &key, &["token"]))
        .await
        .code(1)
        .stderr_has(&format!("API key {} (short-lived) expired", &key[..19]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precedence_token_then_env_key_then_config_key_then_login() {
    let w = World::new().await;
    w.signed_in("ned@example.com").await;
    let from_config = create_key(&w, "from-config", &[]).await;
    let from_env = create_key(&w, "from-env", &["--role", "viewer"]).await;
    let login_token = w.run(&["token"]).await.success().stdout.trim().to_owned();

    w.run(&["config", "set", "cloud.api_key", &from_config])
        .await
        .success();
    w.run(&["whoami"])
        .await
        .success()
        .stdout_has("Signed in with API key from-config")
        .stdout_has("cloud.api_key in config.yaml (API key)");

    let mut c = w.command(&["whoami"]);
    c.env("LATCHKEY_API_KEY", &from_env);
    run_command(c)
        .await
        .success()
        .stdout_has("Signed in with API key from-env")
        .stdout_has("(viewer)");

    let mut c = w.command(&["whoami"]);
    c.env("LATCHKEY_API_KEY", &from_env)
        .env("LATCHKEY_TOKEN", &login_token);
    run_command(c)
        .await
        .success()
        .stdout_has("Signed in as ned@example.com")
        .stdout_has("$LATCHKEY_TOKEN");

    w.run(&["config", "unset", "cloud.api_key"]).await.success();
    w.run(&["whoami"])
        .await
        .success()
        .stdout_has("Signed in as ned@example.com")
        .stdout_has(&w.credentials_path().display().to_string());
    // The stored login was never touched by the keys.
    assert_eq!(w.credentials()["access_token"], login_token.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_ceiling() {
    let w = World::new().await;
    // Alice owns "team"; Bob joins it as a member through an invitation.
    w.signed_in("alice@example.com").await;
    let alice = w.run(&["token"]).await.success().stdout.trim().to_owned();
    let (s, b) = api(
        &w,
        reqwest::Method::POST,
        "/v1/orgs",
        &alice,
        Some(json!({"name": "Team", "slug": "team"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, inv) = api(
        &w,
        reqwest::Method::POST,
        "/v1/orgs/team/invitations",
        &alice,
        Some(json!({"email": "bob@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(s, 201, "{inv}");
    let invite = inv["link"].as_str().unwrap().rsplit('/').next().unwrap();

    let bob_dir = w.tmp.path().join("bob-config");
    let bob_browser = w.user("bob@example.com").await;
    let bob = |args: &[&str]| {
        let mut c = w.command(args);
        c.env("LATCHKEY_CONFIG_DIR", &bob_dir)
            .env("LATCHKEY_CLOUD_URL", w.url());
        c
    };
    login_as(&bob_browser, bob(&["login", "--no-browser"])).await;
    let bob_token = run_command(bob(&["token"])).await.success().stdout;
    let (s, b) = api(
        &w,
        reqwest::Method::POST,
        "/v1/invitations/accept",
        bob_token.trim(),
        Some(json!({"token": invite})),
    )
    .await;
    assert_eq!(s, 200, "{b}");

    // A member cannot give a key more power than they have.
    run_command(bob(&[
        "api-keys", "create", "deploy", "--org", "team", "--role", "admin",
    ]))
    .await
    .code(1)
    .stderr_has("error: could not create the API key: a key cannot have more power than you: your role in team is member")
    .stderr_has("hint: Ask an owner or admin");
    let run = run_command(bob(&[
        "api-keys", "create", "deploy", "--org", "team", "--role", "viewer",
    ]))
    .await
    .success()
    .stderr_has("in team with role viewer");
    let key = run.stdout.trim().to_owned();
    let fresh = w.tmp.path().join("fresh");
    run_command(ci(&w, &fresh, &key, &["whoami"]))
        .await
        .success()
        .stdout_has("Signed in with API key deploy")
        .stdout_has("team (viewer)")
        .stdout_has("Created by   bob@example.com");
    // The owner of team sees (and may revoke) Bob's key.
    w.run(&["api-keys", "list"])
        .await
        .success()
        .stdout_has("deploy")
        .stdout_has("team");
    // Unknown roles are refused before any request.
    run_command(bob(&["api-keys", "create", "x", "--role", "god"]))
        .await
        .code(2);
}

/// Runs a `latchkey login --no-browser` command and approves its code as `browser`.
pub async fn login_as(browser: &Browser, cmd: Command) -> Run {
    let pending = Pending::spawn(cmd);
    let code = pending.code().await;
    browser.approve_device(&code).await;
    pending.finish().await.success()
}
