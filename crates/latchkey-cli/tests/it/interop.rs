//! The client against a standard authorization server that is not latchkeyd:
//! node-oidc-provider (`testing/oidc-provider/server.js`), with device flow, refresh-token
//! rotation and revocation, approved through its own web pages as a person would.
//!
//! Needs Node.js and `npm ci --prefix testing/oidc-provider`. Without them the test says so and
//! passes, unless `LATCHKEY_REQUIRE_INTEROP=1` or `CI=true` makes it fail.

use crate::util::*;
use latchkey_server::testkit::oidc::{OidcProvider, first_form};
use std::process::Stdio;

/// Approves `user_code` on the provider's pages: enter code, confirm, sign in, consent.
async fn approve(issuer: &str, user_code: &str, login: &str) {
    let start = format!("{issuer}/device?user_code={user_code}");
    walk_forms(&start, login, "Sign-in Success").await;
}

/// Opens `start` with a fresh cookie jar and submits each page's first form (signing in as
/// `login` where asked) until a page contains `done`, following every redirect, including the
/// last one to a CLI's loopback callback. Returns that page.
async fn walk_forms(start: &str, login: &str, done: &str) -> String {
    latchkey_server::testkit::install_crypto();
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let mut page = http.get(start).send().await.unwrap().text().await.unwrap();
    for _ in 0..8 {
        eprintln!(
            "APPROVE PAGE: {}",
            page.lines().find(|l| l.contains("<title>")).unwrap_or("?")
        );
        if page.contains(done) {
            return page;
        }
        let (action, mut fields, wants_login) =
            first_form(&page).unwrap_or_else(|| panic!("no form on page:\n{page}"));
        if wants_login {
            fields.push(("login".into(), login.into()));
            fields.push(("password".into(), "any".into()));
        }
        page = http
            .post(&action)
            .form(&fields)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    panic!("approval did not finish; last page:\n{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_against_node_oidc_provider() {
    let Some(provider) = OidcProvider::start_or_skip("server.js") else {
        return;
    };
    let issuer = provider.issuer.clone();
    // The latchkeyd of the world is not used: no cloud.url, only the standard server.
    let w = World::bare(fast_settings()).await;
    let pending = Pending::spawn(w.command(&[
        "login",
        "--no-browser",
        "--auth-url",
        &issuer,
        "--scope",
        "openid email offline_access",
        "--name",
        "interop",
    ]));
    let code = pending.code().await;
    approve(&issuer, &code, "olive").await;
    pending
        .finish()
        .await
        .success()
        .stderr_has("Signed in as olive@example.com");
    let creds = w.credentials();
    assert_eq!(creds["issuer"], issuer.as_str());
    assert_eq!(creds["client_id"], "latchkey-cli");
    assert!(creds["refresh_token"].is_string(), "{creds}");

    // whoami is validated by the provider's userinfo endpoint.
    w.run(&["whoami"])
        .await
        .success()
        .stdout_has("Signed in as olive@example.com")
        .stdout_has(&format!("Issuer       {issuer}"));

    // Refresh at expiry, four processes at once: one refresh, all succeed.
    let mut c = w.credentials();
    c["expires_at"] = (now() - 10).into();
    write_json(&w.credentials_path(), &c);
    let children: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = w.command(&["token"]);
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let outs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let tokens: Vec<String> = outs
        .iter()
        .map(|o| {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout).trim().to_owned()
        })
        .collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    assert_ne!(tokens[0], c["access_token"].as_str().unwrap());
    w.run(&["whoami"]).await.success();

    // Logout revokes at the provider (no warning) and deletes the file.
    let out = w.run(&["logout", "-y"]).await.success();
    assert!(!out.stderr.contains("warning"), "{out:?}");
    assert!(!w.credentials_path().exists());
    drop(provider);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_login_against_node_oidc_provider() {
    let Some(provider) = OidcProvider::start_or_skip("server.js") else {
        return;
    };
    let issuer = provider.issuer.clone();
    let w = World::bare(fast_settings()).await;
    // A native client with a loopback redirect: node-oidc-provider accepts any port (RFC 8252
    // §7.3), requires PKCE, and sends `iss` back (RFC 9207), which the CLI checks.
    let pending = Pending::spawn(w.command(&[
        "login",
        "--web",
        "--no-browser",
        "--auth-url",
        &issuer,
        "--scope",
        "openid email offline_access",
    ]));
    let url = pending.url().await;
    assert!(url.starts_with(&issuer), "{url}");
    assert!(
        url.contains("prompt=consent"),
        "offline_access asks for consent: {url}"
    );
    let page = walk_forms(&url, "wyn", "close this tab").await;
    assert!(page.contains("Signed in"), "{page}");
    pending
        .finish()
        .await
        .success()
        .stderr_has("Signed in as wyn@example.com");
    let creds = w.credentials();
    assert_eq!(creds["issuer"], issuer.as_str());
    assert_eq!(creds["mode"], "oauth");
    assert!(creds["refresh_token"].is_string(), "{creds}");
    w.run(&["whoami"])
        .await
        .success()
        .stdout_has("Signed in as wyn@example.com");
    // The refresh token rotates at the provider too.
    let mut c = w.credentials();
    c["expires_at"] = (now() - 10).into();
    write_json(&w.credentials_path(), &c);
    w.run(&["token"]).await.success();
    assert_ne!(w.credentials()["refresh_token"], c["refresh_token"]);
    drop(provider);
}
