//! The web pages in a real headless Chromium, together with the real `latchkey` binary: sign
//! up, land on /connect (badge, org, role, the download for the browser's OS), approve a device
//! code started by `latchkey login`, revoke that session on /account and watch the CLI's next
//! `whoami` fail, log in again and switch org from the CLI, then see it on /account.
//!
//! Every page visited is saved under `target/screenshots/` for a person to look at. Needs
//! Debian's `chromium` and `chromium-driver` (installed by `.ci/run`); without them it fails
//! with what to install.

use crate::api_keys::api;
use crate::util::*;
use latchkey_server::config::Settings;
use latchkey_server::testkit::chrome::Chrome;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use thirtyfour::prelude::*;

/// The page's text; empty while a navigation replaces the page (stale elements).
async fn page_text(chrome: &Chrome) -> String {
    match chrome.driver.find(By::Tag("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the page's text satisfies `ok` (pages load after a click asynchronously).
async fn wait_for_text(chrome: &Chrome, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = page_text(chrome).await;
        if ok(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "page never showed {what}; it says:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Saves a screenshot of the whole page (the window grows to the page's height for it).
pub(crate) async fn shot(chrome: &Chrome, name: &str) {
    let d = &chrome.driver;
    let dims = d
        .execute(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];",
            Vec::new(),
        )
        .await
        .expect("page height");
    let v = dims.json();
    let page = v[0].as_u64().unwrap_or(1000);
    let frame = v[1].as_u64().unwrap_or(0);
    let height = u32::try_from(page + frame).unwrap_or(1000).clamp(600, 4000);
    d.set_window_rect(0, 0, 1200, height).await.expect("resize");
    chrome.screenshot(name).await;
    d.set_window_rect(0, 0, 1200, 1000)
        .await
        .expect("resize back");
}

/// The row of the sessions table on /account whose text contains `name`.
async fn session_row(chrome: &Chrome, name: &str) -> Option<WebElement> {
    let rows = chrome
        .driver
        .find_all(By::Css("#sessions tbody tr"))
        .await
        .unwrap_or_default();
    for r in rows {
        if r.text().await.unwrap_or_default().contains(name) {
            return Some(r);
        }
    }
    None
}

/// Runs `latchkey login --no-browser --name NAME` and approves its code in Chromium.
async fn login_in_browser(
    w: &World,
    chrome: &Chrome,
    name: &str,
    screenshots: Option<&str>,
) -> Run {
    let pending = Pending::spawn(w.command(&["login", "--no-browser", "--force", "--name", name]));
    let code = pending.code().await;
    chrome
        .driver
        .goto(format!("{}/device?user_code={code}", w.url()))
        .await
        .expect("goto /device");
    let text = wait_for_text(chrome, "the approval page", |t| t.contains("Approve")).await;
    assert!(text.contains(&code) && text.contains(name), "{text}");
    if let Some(s) = screenshots {
        shot(chrome, s).await;
    }
    chrome.click("button[value=approve]").await;
    wait_for_text(chrome, "the approval result", |t| {
        !t.contains("Approve sign-in?")
    })
    .await;
    if let Some(s) = screenshots {
        shot(chrome, &format!("{s}-approved")).await;
    }
    pending.finish().await.success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_pages_with_the_cli_in_chromium() {
    let w = World::with_settings(Settings {
        device_poll_interval: Some(1),
        download_asset_url: Some("https://example.com/dl/latchkey-{os}-{arch}.tar.gz".into()),
        download_url: Some("https://example.com/releases".into()),
        ..Settings::default()
    })
    .await;
    let base = w.url();
    let chrome = Chrome::start().await;
    let d = &chrome.driver;

    // Landing page and sign-in page.
    d.goto(format!("{base}/")).await.unwrap();
    let text = chrome.text().await;
    for s in [
        "Sign in",
        "Download CLI",
        "Create an account",
        "Manage account",
    ] {
        assert!(text.contains(s), "landing lacks {s:?}:\n{text}");
    }
    shot(&chrome, "landing").await;
    d.goto(format!("{base}/signin")).await.unwrap();
    d.find(By::Css("input[name=email]")).await.unwrap();
    shot(&chrome, "signin").await;

    // Sign up; land on /connect.
    d.goto(format!("{base}/signup")).await.unwrap();
    chrome.fill("name", "Rita Example").await;
    chrome.fill("email", "rita@example.com").await;
    chrome.fill("password", PASSWORD).await;
    shot(&chrome, "signup").await;
    chrome.click("button[type=submit]").await;
    let connect = wait_for_text(&chrome, "the connect page", |t| {
        t.contains("Connect your CLI")
    })
    .await;
    assert!(d.current_url().await.unwrap().path() == "/connect");
    assert!(connect.contains("Signed in"), "{connect}");
    assert!(connect.contains("rita@example.com"), "{connect}");
    assert!(connect.to_lowercase().contains("owner"), "{connect}");
    let download = d.find(By::Css("#download a.button")).await.unwrap();
    assert_eq!(
        download.attr("href").await.unwrap().as_deref(),
        Some("https://example.com/dl/latchkey-linux-x86_64.tar.gz")
    );
    assert_eq!(
        download.text().await.unwrap(),
        "Download for Linux (x86_64)"
    );
    let releases = d.find(By::LinkText("View all releases")).await.unwrap();
    assert_eq!(
        releases.attr("href").await.unwrap().as_deref(),
        Some("https://example.com/releases")
    );
    assert!(connect.contains(&format!("latchkey config set cloud.url {base}")));
    shot(&chrome, "connect").await;

    // Approve a real `latchkey login` in the browser.
    login_in_browser(&w, &chrome, "browser-box", Some("device"))
        .await
        .stderr_has("Signed in as rita@example.com");
    let me: Value =
        serde_json::from_str(&w.run(&["whoami", "--json"]).await.success().stdout).unwrap();
    let personal = me["org"]["slug"].as_str().unwrap().to_owned();
    assert!(
        connect.contains(&personal),
        "the org on /connect: {connect}"
    );

    // Revoke that session on /account; the CLI's next whoami fails.
    d.goto(format!("{base}/account")).await.unwrap();
    shot(&chrome, "account").await;
    let row = session_row(&chrome, "browser-box")
        .await
        .expect("the CLI session is listed");
    let cells = row.find_all(By::Tag("td")).await.unwrap();
    assert_eq!(cells[2].text().await.unwrap(), personal);
    let revoke = row.find(By::Css("button")).await.unwrap();
    assert_eq!(revoke.text().await.unwrap(), "Revoke");
    revoke.click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while session_row(&chrome, "browser-box").await.is_some() {
        assert!(
            Instant::now() < deadline,
            "the revoked session stays listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    w.run(&["whoami"])
        .await
        .code(1)
        .stderr_has("Session expired");

    // Log in again, switch org from the CLI, and see it on /account.
    login_in_browser(&w, &chrome, "second-box", None).await;
    let token = w.run(&["token"]).await.success().stdout.trim().to_owned();
    let (s, b) = api(
        &w,
        reqwest::Method::POST,
        "/v1/orgs",
        &token,
        Some(json!({"name": "Team", "slug": "team"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    w.run(&["orgs", "switch", "team"])
        .await
        .success()
        .stderr_has("Switched to team (role: owner)");
    // A key made with the CLI is listed on the page, never shown again.
    let key = w
        .run(&["api-keys", "create", "ci-deploy", "--expires-in-days", "90"])
        .await
        .success()
        .stdout
        .trim()
        .to_owned();
    d.goto(format!("{base}/account")).await.unwrap();
    let keys = d
        .find(By::Css("#api-keys table"))
        .await
        .expect("a table of keys")
        .text()
        .await
        .unwrap();
    assert!(
        keys.contains("ci-deploy") && keys.contains(&key[..19]),
        "{keys}"
    );
    assert!(!d.source().await.unwrap().contains(&key[19..]));
    let row = session_row(&chrome, "second-box").await.expect("listed");
    let cells = row.find_all(By::Tag("td")).await.unwrap();
    assert_eq!(cells[2].text().await.unwrap(), "team");
    let text = chrome.text().await;
    assert!(
        text.contains("Team") && text.contains("Organizations"),
        "{text}"
    );
    shot(&chrome, "account-switched").await;

    // The org's page.
    d.goto(format!("{base}/orgs/team")).await.unwrap();
    let text = chrome.text().await;
    assert!(
        text.contains("Team") && text.contains("rita@example.com"),
        "{text}"
    );
    shot(&chrome, "org").await;
    chrome.quit().await;
}
