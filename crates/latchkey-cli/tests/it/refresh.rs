//! Silent refresh: before expiry, after a 401, under concurrency; and the end of a session.

use crate::util::*;

fn expire_locally(w: &World) -> serde_json::Value {
    let mut c = w.credentials();
    c["expires_at"] = (now() - 10).into();
    write_json(&w.credentials_path(), &c);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_access_token_is_refreshed_silently() {
    let w = World::new().await;
    w.signed_in("gus@example.com").await;
    let before = expire_locally(&w);
    let run = w.run(&["token"]).await.success();
    assert!(run.stderr.is_empty(), "{run:?}");
    let after = w.credentials();
    let token = run.stdout.trim();
    assert_ne!(token, before["access_token"].as_str().unwrap());
    assert_eq!(token, after["access_token"].as_str().unwrap());
    assert_ne!(after["refresh_token"], before["refresh_token"], "rotated");
    assert!(after["expires_at"].as_i64().unwrap() > now() + 3000);
    assert!(after["refreshed_at"].is_i64());
    assert_eq!(me_status(&w.url(), token).await, 200);
    #[cfg(unix)]
    assert_eq!(mode(&w.credentials_path()), 0o600);
    // A valid token is served from the file: the same one again.
    let again = w.run(&["token"]).await.success();
    assert_eq!(again.stdout.trim(), token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_refreshes_once_and_retries() {
    let w = World::new().await;
    w.signed_in("hal@example.com").await;
    let before = w.credentials();
    // The server's clock moves past the access token's life; the file still thinks it is valid.
    w.server.clock.advance(2 * 3600);
    w.run(&["whoami"])
        .await
        .success()
        .stdout_has("hal@example.com");
    assert_ne!(w.credentials()["access_token"], before["access_token"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_session_says_session_expired() {
    let w = World::new().await;
    w.signed_in("ida@example.com").await;
    let c = expire_locally(&w);
    // The session is revoked elsewhere (another device, the account page).
    latchkey_server::testkit::install_crypto();
    let r = reqwest::Client::new()
        .post(format!("{}/oauth/revoke", w.url()))
        .form(&[
            ("token", c["refresh_token"].as_str().unwrap()),
            ("token_type_hint", "refresh_token"),
            ("client_id", "latchkey-cli"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    w.run(&["token"])
        .await
        .code(1)
        .stderr_has("Session expired. Run `latchkey login` again.");
    w.run(&["whoami"])
        .await
        .code(1)
        .stderr_has("Session expired. Run `latchkey login` again.");
    // The file is left for the user to replace with a new login.
    assert!(w.credentials_path().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tokens_at_expiry_refresh_once() {
    let w = World::new().await;
    w.signed_in("jon@example.com").await;
    let before = expire_locally(&w);
    let children: Vec<_> = (0..8)
        .map(|_| {
            let mut c = w.command(&["token"]);
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().expect("spawn")
        })
        .collect();
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().expect("wait"))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let mut tokens = Vec::new();
    for o in &outputs {
        assert!(
            o.status.success(),
            "a token process failed: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        tokens.push(String::from_utf8_lossy(&o.stdout).trim().to_owned());
    }
    // Every refresh mints a distinct token, so one token for all eight means one refresh.
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    assert_ne!(tokens[0], before["access_token"].as_str().unwrap());
    assert_eq!(tokens[0], w.credentials()["access_token"].as_str().unwrap());
    // Nobody was logged out: the rotated session still works and still refreshes.
    expire_locally(&w);
    w.run(&["whoami"])
        .await
        .success()
        .stdout_has("jon@example.com");
}
