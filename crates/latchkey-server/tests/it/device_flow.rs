//! The device authorization grant end to end, refresh rotation, revocation, restart.

use latchkey_server::config::Settings;
use latchkey_server::testkit::{Browser, TestServer};

use super::{get_json, poll, post_form, refresh, start_device};

#[tokio::test]
async fn full_device_flow_then_me_refresh_revoke() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let browser = Browser::new(&base);
    browser
        .sign_up("ada@example.com", "correct horse battery")
        .await;

    let dev = start_device(&base).await;
    let device_code = dev["device_code"].as_str().unwrap();
    let user_code = dev["user_code"].as_str().unwrap();
    assert_eq!(dev["expires_in"], 600);
    assert_eq!(dev["interval"], 5);
    assert_eq!(dev["verification_uri"], format!("{base}/device"));
    assert_eq!(
        dev["verification_uri_complete"],
        format!("{base}/device?user_code={user_code}")
    );
    assert!(device_code.starts_with("lkd_"));
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");

    // Pending, then too fast → slow_down.
    let (s, b) = poll(&base, device_code).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    let (s, b) = poll(&base, device_code).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("slow_down")));

    // The confirm page names the client, device and IP.
    let page = browser
        .get(&format!(
            "/device?user_code={}",
            user_code.to_lowercase().replace('-', "")
        ))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("latchkey CLI"), "{}", page.body);
    assert!(page.body.contains("test-laptop"));
    assert!(page.body.contains("127.0.0.1"));
    browser.approve_device(user_code).await;

    // The interval grew to 10 s after slow_down; wait that long on the server's clock.
    srv.clock.advance(11);
    let (s, tok) = poll(&base, device_code).await;
    assert_eq!(s, 200, "{tok}");
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["expires_in"], 3600);
    let access = tok["access_token"].as_str().unwrap();
    let refresh1 = tok["refresh_token"].as_str().unwrap();
    assert!(refresh1.starts_with("lkr_"));

    // Single use.
    srv.clock.advance(11);
    let (s, b) = poll(&base, device_code).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));

    // /v1/me.
    let (s, _, me) = get_json(&format!("{base}/v1/me"), Some(access)).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["user"]["email"], "ada@example.com");
    assert_eq!(me["org"]["role"], "owner");
    assert_eq!(me["orgs"].as_array().unwrap().len(), 1);
    assert_eq!(me["session"]["name"], "test-laptop");
    assert_eq!(me["session"]["method"], "device");
    assert_eq!(me["client_id"], "latchkey-cli");
    assert!(me["token_expires_at"].as_i64().unwrap() > 0);

    // Refresh rotates: the new pair works. A retry of the old token within the grace window
    // (the client lost the response) gets the same new refresh token; once the new one has
    // been used, the old one no longer works.
    let (s, tok2) = refresh(&base, refresh1).await;
    assert_eq!(s, 200, "{tok2}");
    let refresh2 = tok2["refresh_token"].as_str().unwrap();
    assert_ne!(refresh1, refresh2);
    let (s, retry) = refresh(&base, refresh1).await;
    assert_eq!(s, 200, "{retry}");
    assert_eq!(retry["refresh_token"], tok2["refresh_token"]);
    let (s, tok3) = refresh(&base, refresh2).await;
    assert_eq!(s, 200, "{tok3}");
    let refresh3 = tok3["refresh_token"].as_str().unwrap();
    srv.clock.advance(31);
    let (s, b) = refresh(&base, refresh2).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
    // Reuse of a spent token ends the session: its newest token is dead too (RFC 9700 §4.14.2).
    let (s, _) = refresh(&base, refresh3).await;
    assert_eq!(s, 400);
    let (access_b, refresh_b) = login(&srv, "ada2@example.com").await;

    // Revoke (RFC 7009) with the refresh token: the session ends.
    let (s, _, _) = post_form(
        &format!("{base}/oauth/revoke"),
        &[
            ("token", refresh_b.as_str()),
            ("token_type_hint", "refresh_token"),
            ("client_id", "latchkey-cli"),
        ],
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = refresh(&base, &refresh_b).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
    let (s, h, _) = get_json(&format!("{base}/v1/me"), Some(&access_b)).await;
    assert_eq!(s, 401);
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    // Revoking an unknown token still answers 200 (RFC 7009 §2.2).
    let (s, _, _) = post_form(
        &format!("{base}/oauth/revoke"),
        &[("token", "nonsense"), ("client_id", "latchkey-cli")],
    )
    .await;
    assert_eq!(s, 200);
    srv.stop().await;
}

#[tokio::test]
async fn revoke_with_access_token_ends_session() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let (access, refresh_token) = login(&srv, "bo@example.com").await;
    let (s, _, _) = post_form(
        &format!("{base}/oauth/revoke"),
        &[("token", &access), ("client_id", "latchkey-cli")],
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = refresh(&base, &refresh_token).await;
    assert_eq!(s, 400);
    srv.stop().await;
}

/// Signs up `email`, runs a device flow, returns (access, refresh).
pub async fn login(srv: &TestServer, email: &str) -> (String, String) {
    let base = srv.url();
    let browser = Browser::new(base);
    browser.sign_up(email, "correct horse battery").await;
    let dev = start_device(base).await;
    browser
        .approve_device(dev["user_code"].as_str().unwrap())
        .await;
    let (s, tok) = poll(base, dev["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{tok}");
    (
        tok["access_token"].as_str().unwrap().to_owned(),
        tok["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn denied_and_expired_codes() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let browser = Browser::new(&base);
    browser
        .sign_up("cy@example.com", "correct horse battery")
        .await;

    let dev = start_device(&base).await;
    browser
        .deny_device(dev["user_code"].as_str().unwrap())
        .await;
    let (s, b) = poll(&base, dev["device_code"].as_str().unwrap()).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("access_denied")));

    let dev = start_device(&base).await;
    srv.clock.advance(601);
    let (s, b) = poll(&base, dev["device_code"].as_str().unwrap()).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("expired_token")));
    // The expired code can no longer be approved either.
    let page = browser
        .get(&format!(
            "/device?user_code={}",
            dev["user_code"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("not valid or has expired"));
    srv.stop().await;
}

#[tokio::test]
async fn access_token_expiry_and_scope_narrowing() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let (access, refresh_token) = login(&srv, "di@example.com").await;
    srv.clock.advance(3601);
    let (s, h, body) = get_json(&format!("{base}/v1/me"), Some(&access)).await;
    assert_eq!(s, 401);
    assert_eq!(body["code"], "invalid_token");
    assert!(h["www-authenticate"].to_str().unwrap().contains("expired"));

    // Narrowing is allowed, widening is not (RFC 6749 §6).
    let (s, _, b) = post_form(
        &format!("{base}/oauth/token"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
            ("client_id", "latchkey-cli"),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_scope")));
    let (s, _, b) = post_form(
        &format!("{base}/oauth/token"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
            ("client_id", "latchkey-cli"),
            ("scope", "email"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["scope"], "email");
    let (s, _, me) = get_json(&format!("{base}/v1/me"), b["access_token"].as_str()).await;
    assert_eq!(s, 200);
    assert_eq!(me["scope"], "email");
    srv.stop().await;
}

#[tokio::test]
async fn restart_keeps_sessions_and_keys() {
    let srv = TestServer::start().await;
    let (access, refresh_token) = login(&srv, "ed@example.com").await;
    let jwks_before = get_json(&format!("{}/.well-known/jwks.json", srv.url()), None)
        .await
        .2;
    let srv = srv.restart().await;
    let base = srv.url().to_owned();
    let jwks_after = get_json(&format!("{base}/.well-known/jwks.json"), None)
        .await
        .2;
    assert_eq!(jwks_before, jwks_after, "signing keys live in the database");
    // The issuer changed with the port, so the old access token is for another issuer; the
    // refresh token is what a CLI keeps, and it still works.
    let _ = access;
    let (s, tok) = refresh(&base, &refresh_token).await;
    assert_eq!(s, 200, "{tok}");
    let (s, _, me) = get_json(&format!("{base}/v1/me"), tok["access_token"].as_str()).await;
    assert_eq!(s, 200);
    assert_eq!(me["user"]["email"], "ed@example.com");
    srv.stop().await;
}

#[tokio::test]
async fn id_token_when_openid_requested() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let browser = Browser::new(&base);
    browser
        .sign_up("fi@example.com", "correct horse battery")
        .await;
    let (s, _, dev) = post_form(
        &format!("{base}/oauth/device_authorization"),
        &[("client_id", "latchkey-cli"), ("scope", "openid email")],
    )
    .await;
    assert_eq!(s, 200);
    browser
        .approve_device(dev["user_code"].as_str().unwrap())
        .await;
    let (s, tok) = poll(&base, dev["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 200);
    let id = tok["id_token"].as_str().expect("id_token");
    assert_eq!(id.split('.').count(), 3);
    let (s, _, info) = get_json(
        &format!("{base}/oauth/userinfo"),
        tok["access_token"].as_str(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(info["email"], "fi@example.com");
    srv.stop().await;
}

#[tokio::test]
async fn upgrade_required_for_old_cli() {
    let srv = TestServer::start_with(Settings {
        min_cli_version: Some("2.0.0".into()),
        download_url: Some("https://example.com/download".into()),
        ..Settings::default()
    })
    .await;
    let base = srv.url().to_owned();
    let r = super::http()
        .get(format!("{base}/v1/me"))
        .header("Latchkey-Client-Version", "1.9.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 426);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "upgrade_required");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("https://example.com/download")
    );
    let (_, _, cfg) = get_json(&format!("{base}/v1/auth/cli/config"), None).await;
    assert_eq!(cfg["min_cli_version"], "2.0.0");
    assert_eq!(cfg["client_id"], "latchkey-cli");
    assert_eq!(cfg["issuer"], base);
    assert_eq!(
        cfg["login_methods"],
        serde_json::json!(["browser", "device", "password"])
    );
    srv.stop().await;
}

#[tokio::test]
async fn concurrent_redemptions_one_winner() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let (_, refresh_token) = login(&srv, "gu@example.com").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let b = base.clone();
        let t = refresh_token.clone();
        tasks.push(tokio::spawn(async move { refresh(&b, &t).await }));
    }
    // Exactly one rotation: every racer gets the same new refresh token (the others are
    // retries inside the grace window), and only one successor was stored.
    let mut new_tokens = std::collections::BTreeSet::new();
    for t in tasks {
        let (s, body) = t.await.unwrap();
        assert_eq!(s, 200, "{body}");
        new_tokens.insert(body["refresh_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(new_tokens.len(), 1, "{new_tokens:?}");
    srv.stop().await;
}

#[tokio::test]
async fn polling_does_not_write() {
    // Device polling is read-only: a poll on a read-only view of the database works.
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let dev = start_device(&base).await;
    let code = dev["device_code"].as_str().unwrap().to_owned();
    let before = srv.write_marker().await;
    for _ in 0..20 {
        srv.clock.advance(6);
        let (s, b) = poll(&base, &code).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (400, Some("authorization_pending"))
        );
    }
    let after = srv.write_marker().await;
    assert_eq!(before, after, "20 polls changed the database");
    srv.stop().await;
}
