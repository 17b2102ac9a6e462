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
