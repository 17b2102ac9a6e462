//! The client against a standard authorization server that is not latchkeyd:
//! node-oidc-provider (`tests/interop/server.js`), with device flow, refresh-token rotation and
//! revocation, approved through its own web pages as a person would.
//!
//! Needs Node.js and `npm ci --prefix crates/latchkey-cli/tests/interop`. Without them the test
//! says so and passes, unless `LATCHKEY_REQUIRE_INTEROP=1` (set it in CI) makes it fail.

use crate::util::*;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Starts node-oidc-provider, or explains why it cannot (`Err`).
fn start_provider() -> Result<Provider, String> {
    let dir = interop_dir();
    if !dir.join("node_modules/oidc-provider").is_dir() {
        return Err(format!(
            "node-oidc-provider is not installed; run `npm ci --prefix {}`",
            dir.display()
        ));
    }
    let mut child = Command::new("node")
        .arg("server.js")
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run node: {e}"))?;
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    // Keep draining stdout: a closed pipe would kill the provider at its next log line.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let issuer = line
        .trim()
        .strip_prefix("ISSUER ")
        .ok_or_else(|| format!("unexpected first line from server.js: {line:?}"))?
        .to_owned();
    Ok(Provider { child, issuer })
}

/// A form found on a page: where it posts, its hidden fields, whether it asks for a login.
type Form = (String, Vec<(String, String)>, bool);

/// The first form of a page.
fn first_form(html: &str) -> Option<Form> {
    let start = html.find("<form")?;
    let end = html[start..].find("</form>")? + start;
    let form = &html[start..end];
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let i = tag.find(&key)? + key.len();
        let j = tag[i..].find('"')? + i;
        Some(tag[i..j].replace("&amp;", "&"))
    };
    let action = attr(&form[..form.find('>')?], "action")?;
    let mut fields = Vec::new();
    let mut rest = form;
    while let Some(i) = rest.find("<input") {
        let tag_end = rest[i..].find('>').map_or(rest.len(), |j| i + j);
        let tag = &rest[i..tag_end];
        if tag.contains("type=\"hidden\"")
            && let (Some(n), Some(v)) = (attr(tag, "name"), attr(tag, "value"))
        {
            fields.push((n, v));
        }
        rest = &rest[tag_end..];
    }
    let wants_login = form.contains("name=\"login\"");
    Some((action, fields, wants_login))
}

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
    let provider = match start_provider() {
        Ok(p) => p,
        Err(why) if std::env::var_os("LATCHKEY_REQUIRE_INTEROP").is_none() => {
            eprintln!("SKIPPED interop with node-oidc-provider: {why}");
            return;
        }
        Err(why) => panic!("{why}"),
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
    let provider = match start_provider() {
        Ok(p) => p,
        Err(why) if std::env::var_os("LATCHKEY_REQUIRE_INTEROP").is_none() => {
            eprintln!("SKIPPED interop with node-oidc-provider: {why}");
            return;
        }
        Err(why) => panic!("{why}"),
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
