//! Bad input never gets a 500 or a panic: RFC 6749 §5.2 errors with the right status, HTML
//! errors on pages, CSRF and rate limits enforced.

use latchkey_server::testkit::{Browser, TestServer};

use super::{http, post_form, start_device};

#[tokio::test]
async fn token_endpoint_rejects_bad_requests() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let token = format!("{base}/oauth/token");
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, &'a str);
    let cases: &[Case] = &[
        (&[("client_id", "latchkey-cli")], 400, "invalid_request"),
        (
            &[("grant_type", "password"), ("client_id", "latchkey-cli")],
            400,
            "invalid_request",
        ),
        (
            &[("grant_type", "magic"), ("client_id", "latchkey-cli")],
            400,
            "unsupported_grant_type",
        ),
        (&[("grant_type", "refresh_token")], 401, "invalid_client"),
        (
            &[("grant_type", "refresh_token"), ("client_id", "nope")],
            401,
            "invalid_client",
        ),
        (
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "latchkey-cli"),
            ],
            400,
            "invalid_request",
        ),
        (
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "latchkey-cli"),
                ("refresh_token", "lkr_x"),
            ],
            400,
            "invalid_grant",
        ),
        (
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", "latchkey-cli"),
                ("device_code", "lkd_unknown"),
            ],
            400,
            "invalid_grant",
        ),
        (
            &[
                ("grant_type", "a"),
                ("grant_type", "b"),
                ("client_id", "latchkey-cli"),
            ],
            400,
            "invalid_request",
        ),
    ];
    for (form, status, code) in cases {
        let (s, h, b) = post_form(&token, form).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (*status, Some(*code)),
            "{form:?} → {b}"
        );
        assert_eq!(h["cache-control"], "no-store");
        if *status == 401 {
            assert!(h.contains_key("www-authenticate"));
        }
    }

    // Wrong content type.
    let r = http()
        .post(&token)
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"refresh_token"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"], "invalid_request");

    // Oversized body.
    let big = format!(
        "grant_type=refresh_token&client_id=latchkey-cli&x={}",
        "a".repeat(100_000)
    );
    let r = http()
        .post(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"], "invalid_request");

    // Not UTF-8.
    let r = http()
        .post(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(&b"grant_type=%FF%FE&client_id=latchkey-cli"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"], "unsupported_grant_type");

    // Basic auth with a secret for a public client.
    let r = http()
        .post(&token)
        .basic_auth("latchkey-cli", Some("guess"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "lkr_x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Device authorization: unknown client, bad scope.
    let da = format!("{base}/oauth/device_authorization");
    let (s, _, b) = post_form(&da, &[("client_id", "someone-else")]).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    let (s, _, b) = post_form(&da, &[("client_id", "latchkey-cli"), ("scope", "admin")]).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_scope")));
    // GET on a POST endpoint.
    let r = http().get(&da).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    srv.stop().await;
}

#[tokio::test]
async fn bearer_errors_follow_rfc6750() {
    let srv = TestServer::start().await;
    let me = format!("{}/v1/me", srv.url());
    let r = http()
        .get(&me)
        .header("authorization", "Token abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_request")
    );
    let r = http()
        .get(&me)
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // alg=none forgery.
    let forged = "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0.";
    let r = http().get(&me).bearer_auth(forged).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http()
        .get(format!("{}/v1/nope", srv.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["code"], "not_found");
    srv.stop().await;
}

#[tokio::test]
async fn pages_need_sign_in_and_csrf() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    // Not signed in: /device goes to sign-in and comes back to the code afterwards.
    let r = http()
        .get(format!("{base}/device?user_code=BCDF-GHJK"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        loc.starts_with("/signin?next=%2Fdevice%3Fuser_code%3DBCDF-GHJK"),
        "{loc}"
    );

    let browser = Browser::new(&base);
    browser
        .sign_up("ha@example.com", "correct horse battery")
        .await;
    let dev = start_device(&base).await;
    let code = dev["user_code"].as_str().unwrap();
    // A POST without the CSRF token is refused and approves nothing.
    let page = browser
        .post("/device", &[("user_code", code), ("decision", "approve")])
        .await;
    assert_eq!(page.status, 403);
    let (_, b) = super::poll(&base, dev["device_code"].as_str().unwrap()).await;
    assert_eq!(b["error"], "authorization_pending");

    // Sign-in keeps the email and shows the error inline; unknown email and wrong password read
    // the same.
    let other = Browser::new(&base);
    let wrong = other.sign_in("ha@example.com", "wrong password").await;
    let unknown = other.sign_in("nobody@example.com", "wrong password").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert!(wrong.body.contains("Wrong email or password."));
    assert!(unknown.body.contains("Wrong email or password."));
    assert!(wrong.body.contains("value=\"ha@example.com\""));

    // Sign-up errors: taken email, short password, bad email.
    let p = Browser::new(&base);
    let form = p.get("/signup").await;
    let csrf = Browser::csrf(&form);
    for (email, pw, expect) in [
        ("ha@example.com", "long enough pw", "already exists"),
        ("new@example.com", "short", "at least 8"),
        ("not-an-email", "long enough pw", "email address"),
    ] {
        let page = p
            .post(
                "/signup",
                &[("csrf", &csrf), ("email", email), ("password", pw)],
            )
            .await;
        assert!(page.status >= 400, "{email}");
        assert!(page.body.contains(expect), "{email}: {}", page.body);
    }

    // Open redirects are not possible through `next`.
    let page = other.get("/signin?next=//evil.example/x").await;
    assert!(!page.body.contains("evil.example"), "{}", page.body);
    srv.stop().await;
}

#[tokio::test]
async fn user_code_guessing_is_rate_limited() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let browser = Browser::new(&base);
    browser
        .sign_up("ix@example.com", "correct horse battery")
        .await;
    // Align first, then start the flow: aligning moves the clock up to 600 s, the device
    // code's whole lifetime, which made this test fail now and then.
    srv.align_clock(600);
    let dev = start_device(&base).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(browser.get("/device?user_code=BBBB-BBBB").await.status);
    }
    assert!(statuses[..10].iter().all(|s| *s == 404), "{statuses:?}");
    assert_eq!(statuses[10], 429);
    // Even the right code is refused while limited.
    let page = browser
        .get(&format!(
            "/device?user_code={}",
            dev["user_code"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page.status, 429);
    // After the window, the right code works again.
    srv.clock.advance(61);
    browser
        .approve_device(dev["user_code"].as_str().unwrap())
        .await;
    srv.stop().await;
}

#[tokio::test]
async fn discovery_documents() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let (s, _, m) = super::get_json(&format!("{base}{path}"), None).await;
        assert_eq!(s, 200);
        assert_eq!(m["issuer"], base);
        assert_eq!(m["token_endpoint"], format!("{base}/oauth/token"));
        assert_eq!(
            m["device_authorization_endpoint"],
            format!("{base}/oauth/device_authorization")
        );
        assert_eq!(m["revocation_endpoint"], format!("{base}/oauth/revoke"));
        assert_eq!(m["jwks_uri"], format!("{base}/.well-known/jwks.json"));
    }
    let (_, _, jwks) = super::get_json(&format!("{base}/.well-known/jwks.json"), None).await;
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    assert!(jwks["keys"][0].get("d").is_none(), "private key published");
    let r = http().get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let (s, _, _) = super::get_json(&format!("{base}/readyz"), None).await;
    assert_eq!(s, 200);
    srv.stop().await;
}
