//! More ways in: the password grant, anonymous identities and their claim, sessions API.

use latchkey_server::config::Settings;
use latchkey_server::testkit::{Browser, TestServer};

use super::{get_json, http, post_form, refresh};

use super::password_grant as password_login;

async fn anonymous_login(base: &str) -> (u16, serde_json::Value) {
    let (s, _, b) = post_form(
        &format!("{base}/oauth/token"),
        &[
            (
                "grant_type",
                "urn:latchkey:params:oauth:grant-type:anonymous",
            ),
            ("client_id", "latchkey-cli"),
        ],
    )
    .await;
    (s, b)
}

fn with_anonymous() -> Settings {
    Settings {
        login_methods: Some(vec!["device".into(), "password".into(), "anonymous".into()]),
        ..Settings::default()
    }
}

#[tokio::test]
async fn password_grant_right_wrong_unknown_limited() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    // Freeze server time at the start of a 5-minute window: the limits below count within
    // fixed windows and back off by the second.
    srv.align_clock(300);
    Browser::new(&base)
        .sign_up("pa@example.com", "correct horse battery")
        .await;

    let (s, _, tok) = password_login(&base, "PA@example.com", "correct horse battery", "box").await;
    assert_eq!(s, 200, "{tok}");
    let (_, _, me) = get_json(&format!("{base}/v1/me"), tok["access_token"].as_str()).await;
    assert_eq!(me["session"]["method"], "password");
    assert_eq!(me["session"]["name"], "box");

    let (s1, _, wrong) = password_login(&base, "pa@example.com", "nope nope nope", "x").await;
    let (s2, _, unknown) = password_login(&base, "zz@example.com", "nope nope nope", "x").await;
    assert_eq!((s1, s2), (400, 400));
    assert_eq!(
        wrong, unknown,
        "unknown email and wrong password must read the same"
    );
    assert_eq!(wrong["error"], "invalid_grant");

    // Repeated failures lock the account for a while (back-off, and at most 10 failures per
    // 5 minutes), with Retry-After.
    for _ in 0..9 {
        password_login(&base, "pa@example.com", "nope nope nope", "x").await;
    }
    let (s, h, b) = password_login(&base, "pa@example.com", "correct horse battery", "x").await;
    assert_eq!(s, 429, "{b}");
    assert!(h.contains_key("retry-after"));
    srv.clock.advance(301);
    let (s, _, _) = password_login(&base, "pa@example.com", "correct horse battery", "x").await;
    assert_eq!(s, 200);
    srv.stop().await;
}

#[tokio::test]
async fn disabled_methods_are_refused() {
    let srv = TestServer::start_with(Settings {
        login_methods: Some(vec!["device".into()]),
        ..Settings::default()
    })
    .await;
    let base = srv.url().to_owned();
    Browser::new(&base)
        .sign_up("pb@example.com", "correct horse battery")
        .await;
    let (s, _, b) = password_login(&base, "pb@example.com", "correct horse battery", "x").await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .contains("disabled")
    );
    let (s, b) = anonymous_login(&base).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (_, _, cfg) = get_json(&format!("{base}/v1/auth/cli/config"), None).await;
    assert_eq!(cfg["login_methods"], serde_json::json!(["device"]));
    srv.stop().await;
}

#[tokio::test]
async fn anonymous_identity_then_claim_moves_the_org() {
    let srv = TestServer::start_with(with_anonymous()).await;
    let base = srv.url().to_owned();
    let (s, anon) = anonymous_login(&base).await;
    assert_eq!(s, 200, "{anon}");
    let anon_access = anon["access_token"].as_str().unwrap();
    let anon_refresh = anon["refresh_token"].as_str().unwrap();
    let (_, _, me) = get_json(&format!("{base}/v1/me"), Some(anon_access)).await;
    assert_eq!(me["user"]["anonymous"], true);
    assert!(me["user"]["email"].is_null());
    let anon_org = me["org"]["id"].as_str().unwrap().to_owned();
    assert_eq!(me["org"]["role"], "owner");

    // A real account signs in, then claims the anonymous identity.
    Browser::new(&base)
        .sign_up("pc@example.com", "correct horse battery")
        .await;
    let (_, _, tok) = password_login(&base, "pc@example.com", "correct horse battery", "x").await;
    let access = tok["access_token"].as_str().unwrap();
    let r = http()
        .post(format!("{base}/v1/anonymous/claim"))
        .bearer_auth(access)
        .json(&serde_json::json!({ "refresh_token": anon_refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let claimed: serde_json::Value = r.json().await.unwrap();
    assert_eq!(claimed["moved_orgs"][0]["id"], anon_org);
    assert_eq!(claimed["moved_orgs"][0]["role"], "owner");

    let (_, _, me) = get_json(&format!("{base}/v1/me"), Some(access)).await;
    let orgs: Vec<&str> = me["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(orgs.len(), 2);
    assert!(orgs.contains(&anon_org.as_str()));
    // The anonymous identity is retired.
    let (s, _) = refresh(&base, anon_refresh).await;
    assert_eq!(s, 400);
    let (s, _, _) = get_json(&format!("{base}/v1/me"), Some(anon_access)).await;
    assert_eq!(s, 401);

    // Claiming again, or with a non-anonymous token, is refused.
    let r = http()
        .post(format!("{base}/v1/anonymous/claim"))
        .bearer_auth(access)
        .json(&serde_json::json!({ "refresh_token": tok["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["code"], "not_anonymous");
    let r = http()
        .post(format!("{base}/v1/anonymous/claim"))
        .bearer_auth(access)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    srv.stop().await;
}

#[tokio::test]
async fn idle_anonymous_users_are_deleted() {
    let srv = TestServer::start_with(with_anonymous()).await;
    let base = srv.url().to_owned();
    let (_, anon) = anonymous_login(&base).await;
    let (_, _, me) = get_json(&format!("{base}/v1/me"), anon["access_token"].as_str()).await;
    let id = me["user"]["id"].as_str().unwrap().to_owned();
    let state = srv.running().state.clone();
    state.housekeeping().await;
    assert!(
        state.store.user_by_id(&id).await.unwrap().is_some(),
        "active users stay"
    );
    srv.clock.advance(31 * 86_400);
    state.housekeeping().await;
    assert!(state.store.user_by_id(&id).await.unwrap().is_none());
    srv.stop().await;
}

#[tokio::test]
async fn sessions_list_and_revoke() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    Browser::new(&base)
        .sign_up("pd@example.com", "correct horse battery")
        .await;
    let (_, _, a) =
        password_login(&base, "pd@example.com", "correct horse battery", "laptop").await;
    let (_, _, b) =
        password_login(&base, "pd@example.com", "correct horse battery", "desktop").await;
    let a_access = a["access_token"].as_str().unwrap();
    let (s, _, list) = get_json(&format!("{base}/v1/sessions"), Some(a_access)).await;
    assert_eq!(s, 200);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let (_, _, me_b) = get_json(&format!("{base}/v1/me"), b["access_token"].as_str()).await;
    let b_id = me_b["session"]["id"].as_str().unwrap();
    let (_, _, me_a) = get_json(&format!("{base}/v1/me"), Some(a_access)).await;
    assert_eq!(list["current"], me_a["session"]["id"]);

    let r = http()
        .delete(format!("{base}/v1/sessions/{b_id}"))
        .bearer_auth(a_access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (s, _) = refresh(&base, b["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 400, "the revoked session's CLI is signed out");
    let r = http()
        .delete(format!("{base}/v1/sessions/{b_id}"))
        .bearer_auth(a_access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Someone else cannot revoke your session.
    Browser::new(&base)
        .sign_up("pe@example.com", "correct horse battery")
        .await;
    let (_, _, other) = password_login(&base, "pe@example.com", "correct horse battery", "x").await;
    let a_id = me_a["session"]["id"].as_str().unwrap();
    let r = http()
        .delete(format!("{base}/v1/sessions/{a_id}"))
        .bearer_auth(other["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let (s, _, _) = get_json(&format!("{base}/v1/me"), Some(a_access)).await;
    assert_eq!(s, 200);
    srv.stop().await;
}
