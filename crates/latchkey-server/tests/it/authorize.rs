//! Authorization code + PKCE (RFC 6749 §4.1, RFC 7636) for loopback redirects (RFC 8252),
//! played with a cookie-carrying HTTP client as the browser.

use latchkey_server::testkit::{Browser, TestServer};
use url::Url;

use super::{get_json, http, post_form, refresh};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1:49999/callback";

fn authorize_url(base: &str, redirect: &str, extra: &[(&str, &str)]) -> String {
    let mut u = Url::parse(&format!("{base}/oauth/authorize")).unwrap();
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", "latchkey-cli")
            .append_pair("redirect_uri", redirect)
            .append_pair("state", "st-123")
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256")
            .append_pair("device_name", "ci-box");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    u.to_string()
}

fn query(location: &str) -> std::collections::HashMap<String, String> {
    Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

async fn exchange(
    base: &str,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> (u16, serde_json::Value) {
    let (s, _, b) = post_form(
        &format!("{base}/oauth/token"),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect),
            ("client_id", "latchkey-cli"),
        ],
    )
    .await;
    (s, b)
}

#[tokio::test]
async fn approve_exchange_and_reuse() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let browser = Browser::new(&base);
    browser
        .sign_up("lu@example.com", "correct horse battery")
        .await;

    let loc = browser
        .consent(&authorize_url(&base, REDIRECT, &[]), true)
        .await;
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let q = query(&loc);
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], base);
    let code = &q["code"];

    // Wrong verifier and wrong redirect are refused without spending the code.
    let (s, b) = exchange(&base, code, &"x".repeat(43), REDIRECT).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
    let (s, b) = exchange(&base, code, VERIFIER, "http://127.0.0.1:1/callback").await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));

    let (s, tok) = exchange(&base, code, VERIFIER, REDIRECT).await;
    assert_eq!(s, 200, "{tok}");
    let (s, _, me) = get_json(&format!("{base}/v1/me"), tok["access_token"].as_str()).await;
    assert_eq!(s, 200);
    assert_eq!(me["user"]["email"], "lu@example.com");
    assert_eq!(me["session"]["method"], "browser");
    assert_eq!(me["session"]["name"], "ci-box");

    // A second use fails and revokes what the first one issued (RFC 6749 §4.1.2).
    let (s, b) = exchange(&base, code, VERIFIER, REDIRECT).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
    let (s, _) = refresh(&base, tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 400, "tokens of a replayed code must die");
    srv.stop().await;
}

#[tokio::test]
async fn deny_and_expiry() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let browser = Browser::new(&base);
    browser
        .sign_up("mo@example.com", "correct horse battery")
        .await;

    let loc = browser
        .consent(&authorize_url(&base, REDIRECT, &[]), false)
        .await;
    let q = query(&loc);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-123");
    assert!(!q.contains_key("code"));

    let loc = browser
        .consent(&authorize_url(&base, REDIRECT, &[]), true)
        .await;
    let code = query(&loc)["code"].clone();
    srv.clock.advance(61);
    let (s, b) = exchange(&base, &code, VERIFIER, REDIRECT).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
    srv.stop().await;
}

#[tokio::test]
async fn bad_requests_are_refused_on_the_page_or_redirected() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let browser = Browser::new(&base);
    browser
        .sign_up("ny@example.com", "correct horse battery")
        .await;

    // Untrusted redirect URIs: shown on a page, never redirected to.
    for redirect in [
        "https://evil.example/callback",
        "http://localhost:5000/callback",
        "http://127.0.0.1:5000/other",
    ] {
        let r = browser
            .no_follow
            .get(authorize_url(&base, redirect, &[]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{redirect}");
        assert!(r.headers().get("location").is_none());
        assert!(r.text().await.unwrap().contains("refused"));
    }
    // Unknown client: a page too.
    let url =
        authorize_url(&base, REDIRECT, &[]).replace("client_id=latchkey-cli", "client_id=other");
    let r = browser.no_follow.get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // Trusted redirect, bad parameters: back to the client with an error and the state.
    let plain = authorize_url(&base, REDIRECT, &[])
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let no_pkce =
        authorize_url(&base, REDIRECT, &[]).replace(&format!("code_challenge={CHALLENGE}&"), "");
    let bad_scope = authorize_url(&base, REDIRECT, &[("scope", "root")]);
    let token_type =
        authorize_url(&base, REDIRECT, &[]).replace("response_type=code", "response_type=token");
    for (url, err) in [
        (plain, "invalid_request"),
        (no_pkce, "invalid_request"),
        (bad_scope, "invalid_scope"),
        (token_type, "unsupported_response_type"),
    ] {
        let r = browser.no_follow.get(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 303, "{url}");
        let q = query(r.headers()["location"].to_str().unwrap());
        assert_eq!(q["error"], err, "{url}");
        assert_eq!(q["state"], "st-123");
    }
    srv.stop().await;
}

#[tokio::test]
async fn not_signed_in_goes_through_sign_in_and_back() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let browser = Browser::new(&base);
    browser
        .sign_up("ol@example.com", "correct horse battery")
        .await;
    let out = browser.post_signout().await;
    assert_eq!(out, 200);

    let url = authorize_url(&base, REDIRECT, &[]);
    let page = browser.get(&url).await;
    assert!(page.url.contains("/signin?next="), "{}", page.url);
    // Signing in returns to the consent page.
    let csrf = Browser::csrf(&page);
    let next = latchkey_server::testkit::hidden_fields(&page.body)
        .into_iter()
        .find(|(k, _)| k == "next")
        .unwrap()
        .1;
    let back = browser
        .post(
            "/signin",
            &[
                ("csrf", &csrf),
                ("email", "ol@example.com"),
                ("password", "correct horse battery"),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(back.status, 200);
    assert!(
        back.body.contains("Authorize latchkey CLI"),
        "{}",
        back.body
    );
    let r = http().get(&url).send().await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"));
    srv.stop().await;
}
