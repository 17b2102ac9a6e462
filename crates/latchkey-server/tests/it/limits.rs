//! Abuse limits: token requests per client, pending device sign-ins, user-code guessing per
//! user and server-wide (also through the approval POST), password back-off.

use latchkey_server::config::Settings;
use latchkey_server::testkit::{Browser, TestServer};

use super::{poll, post_form, refresh, start_device};

#[tokio::test]
async fn token_requests_are_limited_per_client() {
    let srv = TestServer::start_with(Settings {
        token_rate_limit: Some(4),
        ..Settings::default()
    })
    .await;
    let base = srv.url().to_owned();
    let dev = start_device(&base).await;
    let code = dev["device_code"].as_str().unwrap();
    // Start at the beginning of a one-minute window so the requests below share it.
    srv.align_clock(60);
    for _ in 0..4 {
        let (s, b) = refresh(&base, "lkr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
        assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
    }
    let (s, h, b) = post_form(
        &format!("{base}/oauth/token"),
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", code),
            ("client_id", "latchkey-cli"),
        ],
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (429, Some("slow_down")));
    assert!(h.contains_key("retry-after"));
    let (s, b) = refresh(&base, "lkr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!(
        (s, b["error"].as_str()),
        (429, Some("temporarily_unavailable"))
    );
    srv.clock.advance(61);
    assert_eq!(
        poll(&base, code).await.0,
        400,
        "the next minute is open again"
    );
    srv.stop().await;
}

#[tokio::test]
async fn pending_device_sign_ins_are_capped() {
    let srv = TestServer::start_with(Settings {
        max_pending_device_codes: Some(2),
        ..Settings::default()
    })
    .await;
    let base = srv.url().to_owned();
    start_device(&base).await;
    start_device(&base).await;
    let (s, h, b) = post_form(
        &format!("{base}/oauth/device_authorization"),
        &[("client_id", "latchkey-cli")],
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    assert!(h.contains_key("retry-after"));
    srv.clock.advance(601);
    start_device(&base).await;
    srv.stop().await;
}

#[tokio::test]
async fn guessing_through_the_approval_form_is_limited_too() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let b = Browser::new(&base);
    b.sign_up("gu@example.com", "correct horse battery").await;
    // Align before starting the flow: aligning moves the clock by up to the device code's
    // whole lifetime.
    srv.align_clock(600);
    let dev = start_device(&base).await;
    let page = b.get("/device").await;
    let csrf = Browser::csrf(&page);
    for _ in 0..10 {
        let p = b
            .post(
                "/device",
                &[
                    ("csrf", &csrf),
                    ("user_code", "BBBB-BBBB"),
                    ("decision", "approve"),
                ],
            )
            .await;
        assert_eq!(p.status, 409);
    }
    let p = b
        .post(
            "/device",
            &[
                ("csrf", &csrf),
                ("user_code", dev["user_code"].as_str().unwrap()),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(p.status, 429, "{}", p.body);
    let (_, body) = poll(&base, dev["device_code"].as_str().unwrap()).await;
    assert_eq!(
        body["error"], "authorization_pending",
        "nothing was approved"
    );
    srv.stop().await;
}

#[tokio::test]
async fn wrong_codes_are_limited_server_wide() {
    let srv = TestServer::start_with(Settings {
        user_code_global_failures: Some(3),
        ..Settings::default()
    })
    .await;
    let base = srv.url().to_owned();
    srv.align_clock(600);
    for i in 0..3 {
        let b = Browser::new(&base);
        b.sign_up(&format!("g{i}@example.com"), "correct horse battery")
            .await;
        assert_eq!(b.get("/device?user_code=BBBB-BBBB").await.status, 404);
    }
    let fresh = Browser::new(&base);
    fresh
        .sign_up("g9@example.com", "correct horse battery")
        .await;
    let page = fresh.get("/device?user_code=CCCC-CCCC").await;
    assert_eq!(
        page.status, 429,
        "a fourth user, under every per-user limit, is refused"
    );
    srv.stop().await;
}

#[tokio::test]
async fn password_failures_back_off() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    Browser::new(&base)
        .sign_up("bo@example.com", super::PASSWORD)
        .await;
    let login = |pw: &'static str| {
        let base = base.clone();
        async move { super::password_grant(&base, "bo@example.com", pw, "x").await }
    };
    srv.clock.freeze();
    // Three free failures, then waits of 1 s, 2 s, 4 s (each failure after the last wait).
    for _ in 0..3 {
        assert_eq!(login("wrong password").await.0, 400);
    }
    for _ in 0..3 {
        srv.clock.advance(60);
        assert_eq!(login("wrong password").await.0, 400);
    }
    let (s, h, _) = login(super::PASSWORD).await;
    assert_eq!(
        s, 429,
        "even the right password waits after repeated failures"
    );
    let wait: i64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=4).contains(&wait), "{wait}");
    srv.clock.advance(5);
    assert_eq!(login(super::PASSWORD).await.0, 200);
    // A success clears the back-off.
    assert_eq!(login("wrong password").await.0, 400);
    assert_eq!(login(super::PASSWORD).await.0, 200);
    srv.stop().await;
}

#[tokio::test]
async fn longer_user_codes_when_configured() {
    let srv = TestServer::start_with(Settings {
        user_code_length: Some(16),
        ..Settings::default()
    })
    .await;
    let base = srv.url().to_owned();
    let b = Browser::new(&base);
    b.sign_up("lc@example.com", super::PASSWORD).await;
    let dev = start_device(&base).await;
    let code = dev["user_code"].as_str().unwrap();
    assert_eq!(code.len(), 19, "{code}");
    assert_eq!(code.matches('-').count(), 3);
    // Typed in lower case without dashes, it is still the same code.
    b.approve_device(&code.replace('-', "").to_lowercase())
        .await;
    let (s, _) = poll(&base, dev["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 200);
    // An 8-character code can never match on this server.
    assert_eq!(b.get("/device?user_code=BCDF-GHJK").await.status, 404);
    srv.stop().await;
}
