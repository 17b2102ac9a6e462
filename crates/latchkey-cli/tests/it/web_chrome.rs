//! `latchkey login --web` with a real browser: headless Chromium (chromedriver, via the testkit)
//! opens the URL the CLI prints, is sent to the sign-in page, signs in, approves on the consent
//! page and is redirected to the CLI's loopback listener, whose page it shows. The CLI exits 0
//! and `whoami` works. Screenshots go to `target/screenshots/web-login-*.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them it fails with what to install.

use crate::util::*;
use latchkey_server::testkit::chrome::Chrome;
use std::time::{Duration, Instant};
use thirtyfour::prelude::*;

/// Waits until the page's text satisfies `ok`; pages load asynchronously after a click.
async fn wait_for(chrome: &Chrome, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = match chrome.driver.find(By::Tag("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if ok(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the browser never showed {what}; it shows:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_login_in_chromium() {
    let w = World::new().await;
    w.user("gil@example.com").await;
    let chrome = Chrome::start().await;

    // CI is removed from the CLI's environment by the harness; --no-browser because the test
    // drives its own browser (as a user on another screen would).
    let pending =
        Pending::spawn(w.command(&["login", "--web", "--no-browser", "--name", "chrome-box"]));
    let url = pending.url().await;
    chrome
        .driver
        .goto(&url)
        .await
        .expect("open the sign-in URL");

    // Not signed in in this browser: the sign-in page first.
    wait_for(&chrome, "the sign-in page", |t| t.contains("Sign in")).await;
    assert!(
        chrome
            .driver
            .current_url()
            .await
            .expect("url")
            .as_str()
            .contains("/signin"),
    );
    chrome.fill("email", "gil@example.com").await;
    chrome.fill("password", PASSWORD).await;
    chrome.screenshot("web-login-1-signin").await;
    chrome.click("button[type=submit]").await;

    // Then the consent page, naming the client.
    let consent = wait_for(&chrome, "the consent page", |t| t.contains("Approve")).await;
    assert!(consent.contains("Authorize"), "{consent}");
    chrome.screenshot("web-login-2-consent").await;
    chrome.click("button[value=approve]").await;

    // The browser lands on the CLI's own page.
    let done = wait_for(&chrome, "the CLI's success page", |t| {
        t.contains("close this tab")
    })
    .await;
    assert!(
        done.contains("Signed in") && done.contains("gil@example.com"),
        "{done}"
    );
    let landed = chrome.driver.current_url().await.expect("url");
    assert_eq!(landed.host_str(), Some("127.0.0.1"), "{landed}");
    assert_eq!(landed.path(), "/callback");
    chrome.screenshot("web-login-3-done").await;

    pending
        .finish()
        .await
        .success()
        .stderr_has("Signed in as gil@example.com");
    chrome.quit().await;
    let who = w.run(&["whoami", "--json"]).await.success();
    let v: serde_json::Value = serde_json::from_str(&who.stdout).unwrap();
    assert_eq!(v["user"]["email"], "gil@example.com");
    assert_eq!(v["session"]["method"], "browser");
    assert_eq!(v["session"]["name"], "chrome-box");
}

/// Waits until the browser is at a URL starting with `prefix` and its page satisfies `ok`.
async fn wait_at(chrome: &Chrome, prefix: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let at = chrome
            .driver
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        if at.starts_with(prefix) {
            let text = wait_for(chrome, what, &ok).await;
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the browser never reached {prefix} for {what}; it is at {at}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `latchkey login --web` for someone whose identity lives at an upstream OpenID provider
/// (node-oidc-provider, `testing/oidc-provider/upstream.js`): Chromium clicks "Continue with
/// Corp ID" on latchkeyd's sign-in page, signs in and consents on the provider's own pages,
/// comes back, approves the CLI on latchkeyd's consent page, and the CLI is signed in as the
/// user latchkeyd created just in time. Screenshots: `target/screenshots/sso-*.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_login_through_an_upstream_provider_in_chromium() {
    use latchkey_server::federation::UpstreamSettings;
    use latchkey_server::testkit::oidc::{
        OidcProvider, TEST_SECRET_KEY, UPSTREAM_CLIENT_ID, UPSTREAM_CLIENT_SECRET,
    };
    let Some(up) = OidcProvider::start_or_skip("upstream.js") else {
        return;
    };
    let corp = UpstreamSettings {
        name: Some("Corp ID".into()),
        issuer: Some(up.issuer.clone()),
        client_id: Some(UPSTREAM_CLIENT_ID.into()),
        client_secret: Some(UPSTREAM_CLIENT_SECRET.into()),
        domains: Some(vec!["corp.test".into()]),
        ..UpstreamSettings::default()
    };
    let w = World::with_settings(latchkey_server::config::Settings {
        upstream: Some([("corp".to_owned(), corp)].into_iter().collect()),
        // Organizations can store client secrets: the org page shows its whole SSO form.
        secret_key: Some(latchkey_server::federation::config::ClientSecret::new(
            TEST_SECRET_KEY,
        )),
        ..latchkey_server::config::Settings::default()
    })
    .await;
    let chrome = Chrome::start().await;
    let pending =
        Pending::spawn(w.command(&["login", "--web", "--no-browser", "--name", "sso-box"]));
    let url = pending.url().await;
    chrome
        .driver
        .goto(&url)
        .await
        .expect("open the sign-in URL");

    let signin = wait_for(&chrome, "the sign-in page", |t| {
        t.contains("Continue with Corp ID")
    })
    .await;
    assert!(signin.contains("Continue with SSO"), "{signin}");
    chrome.screenshot("sso-1-signin").await;
    chrome.click("a.provider[href^='/sso/corp']").await;

    // The provider's own pages: its sign-in form, then its consent.
    wait_at(&chrome, &up.issuer, "the provider's sign-in page", |t| {
        t.contains("Sign-in")
    })
    .await;
    chrome
        .driver
        .find(By::Name("login"))
        .await
        .expect("the provider's login field");
    chrome.fill("login", "ivy").await;
    chrome.fill("password", "any password").await;
    chrome.screenshot("sso-2-provider-signin").await;
    chrome.click("button[type=submit]").await;
    wait_at(&chrome, &up.issuer, "the provider's consent page", |t| {
        t.contains("Continue")
    })
    .await;
    chrome.screenshot("sso-3-provider-consent").await;
    chrome.click("button[type=submit]").await;

    // Back at latchkeyd, signed in as the new user: approve the CLI.
    let consent = wait_at(&chrome, &w.url(), "latchkeyd's consent page", |t| {
        t.contains("Approve")
    })
    .await;
    assert!(consent.contains("ivy@example.com"), "{consent}");
    chrome.screenshot("sso-4-consent").await;
    chrome.click("button[value=approve]").await;
    let done = wait_for(&chrome, "the CLI's success page", |t| {
        t.contains("close this tab")
    })
    .await;
    assert!(done.contains("ivy@example.com"), "{done}");
    chrome.screenshot("sso-5-done").await;
    pending
        .finish()
        .await
        .success()
        .stderr_has("Signed in as ivy@example.com");

    // The account page lists the linked provider; a new organization offers its own SSO.
    chrome
        .driver
        .goto(format!("{}/account", w.url()))
        .await
        .expect("account");
    let account = wait_for(&chrome, "the account page", |t| {
        t.contains("Sign-in methods")
    })
    .await;
    assert!(
        account.contains("Corp ID") && account.contains("Set a password"),
        "{account}"
    );
    crate::browser::shot(&chrome, "sso-6-account").await;
    chrome
        .driver
        .find(By::Css("form[action='/orgs'] input[name=name]"))
        .await
        .expect("the new organization's name field")
        .send_keys("Ivy Labs")
        .await
        .expect("type");
    chrome.click("form[action='/orgs'] button").await;
    let org = wait_for(&chrome, "the new organization's page", |t| {
        t.contains("Single sign-on")
    })
    .await;
    assert!(
        org.contains("/sso/org/") && org.contains("/callback"),
        "{org}"
    );
    crate::browser::shot(&chrome, "sso-7-org").await;
    chrome.quit().await;
    let who = w.run(&["whoami", "--json"]).await.success();
    let v: serde_json::Value = serde_json::from_str(&who.stdout).unwrap();
    assert_eq!(v["user"]["email"], "ivy@example.com");
    assert_eq!(v["user"]["name"], "Ivy");
}
