//! `latchkey login --email`: email and password in the terminal (omicOS-like), with
//! `--password-stdin`, `--password`, `--status`, `--force`, `--server`, and the server's answers
//! (wrong, unknown, disabled, rate-limited) made readable. Also the method-flag conflict.

use crate::util::*;

fn pw_login(w: &World, email: &str, extra: &[&str]) -> std::process::Command {
    let mut args = vec!["login", "--email", email, "--password-stdin"];
    args.extend_from_slice(extra);
    w.command(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_login_status_and_force() {
    let w = World::new().await;
    w.user("pat@example.com").await;
    let run = run_with_stdin(
        pw_login(&w, "Pat@Example.com", &["--name", "pat-box"]),
        &format!("{PASSWORD}\n"),
    )
    .await
    .success()
    .stderr_has("Signed in as pat@example.com (org ");
    assert!(run.stdout.is_empty(), "{run:?}");
    let creds = w.credentials();
    assert_eq!(creds["mode"], "password");
    assert_eq!(creds["session"]["name"], "pat-box");
    let who = w.run(&["whoami", "--json"]).await.success();
    let v: serde_json::Value = serde_json::from_str(&who.stdout).unwrap();
    assert_eq!(v["session"]["method"], "password");
    assert_eq!(v["session"]["name"], "pat-box");

    // --status: the login on file, no network needed.
    let status = w
        .run(&["login", "--status"])
        .await
        .success()
        .stdout_has("Signed in as pat@example.com")
        .stdout_has("Session      pat-box")
        .stdout_has("Mode         password")
        .stdout_has(&w.credentials_path().display().to_string());
    assert!(status.stdout.contains("Token expires in"), "{status:?}");

    // Signed in already: without a terminal, a new login is refused unless --force.
    let old = creds["access_token"].as_str().unwrap().to_owned();
    run_with_stdin(
        pw_login(&w, "pat@example.com", &[]),
        &format!("{PASSWORD}\n"),
    )
    .await
    .code(1)
    .stderr_has("Already signed in as pat@example.com.")
    .stderr_has("--force");
    assert_eq!(w.credentials()["access_token"], old.as_str());
    run_with_stdin(
        pw_login(&w, "pat@example.com", &["--force", "--name", "second"]),
        &format!("{PASSWORD}\r\n"),
    )
    .await
    .success()
    .stderr_has("Signed in as pat@example.com");
    assert_eq!(w.credentials()["session"]["name"], "second");
    // The replaced session is over at the server.
    assert_eq!(me_status(&w.url(), &old).await, 401);

    // A login that has ended anyway (revoked elsewhere) is replaced without --force.
    let revoked = w.credentials()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    latchkey_server::testkit::install_crypto();
    reqwest::Client::new()
        .post(format!("{}/oauth/revoke", w.url()))
        .form(&[("token", revoked.as_str()), ("client_id", "latchkey-cli")])
        .send()
        .await
        .unwrap();
    run_with_stdin(
        pw_login(&w, "pat@example.com", &[]),
        &format!("{PASSWORD}\n"),
    )
    .await
    .success();

    // Not signed in: --status says so.
    std::fs::remove_file(w.credentials_path()).unwrap();
    w.run(&["login", "--status"])
        .await
        .code(1)
        .stderr_has("Not signed in.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_and_unknown_read_the_same_then_rate_limited() {
    let w = World::new().await;
    w.user("quinn@example.com").await;
    let wrong = run_with_stdin(pw_login(&w, "quinn@example.com", &[]), "nope nope\n")
        .await
        .code(1)
        .stderr_has("error: wrong email or password")
        .stderr_has("hint:");
    let unknown = run_with_stdin(pw_login(&w, "nobody@example.com", &[]), "nope nope\n")
        .await
        .code(1);
    assert_eq!(wrong.stderr, unknown.stderr, "the same answer for both");
    assert!(!wrong.stderr.contains("nope nope"));
    assert!(!w.credentials_path().exists());

    // Repeated failures are slowed down, then the account is locked for a while (the server
    // decides how: back-off after a few failures, a lock after ten). By the 11th wrong attempt
    // the CLI shows the 429 clearly, with how long to wait.
    let mut limited = 0;
    for _ in 0..10 {
        let r = run_with_stdin(pw_login(&w, "quinn@example.com", &[]), "nope nope\n")
            .await
            .code(1);
        if r.stderr
            .contains("error: too many sign-in attempts; try again in ")
        {
            assert!(r.stderr.contains("hint: Wait before trying again"), "{r:?}");
            limited += 1;
        } else {
            assert!(r.stderr.contains("error: wrong email or password"), "{r:?}");
        }
    }
    assert!(limited >= 1, "no attempt was rate-limited");
    // While it lasts, even the right password is refused.
    run_with_stdin(
        pw_login(&w, "quinn@example.com", &[]),
        &format!("{PASSWORD}\n"),
    )
    .await
    .code(1)
    .stderr_has("error: too many sign-in attempts; try again in ");
    w.server.clock.advance(601);
    run_with_stdin(
        pw_login(&w, "quinn@example.com", &[]),
        &format!("{PASSWORD}\n"),
    )
    .await
    .success();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_switched_off() {
    let mut s = fast_settings();
    s.login_methods = Some(vec!["device".into(), "browser".into()]);
    let w = World::with_settings(s).await;
    w.user("rae@example.com").await;
    // The cloud's login_methods say so before the password is sent...
    run_with_stdin(
        pw_login(&w, "rae@example.com", &[]),
        &format!("{PASSWORD}\n"),
    )
    .await
    .code(1)
    .stderr_has("error: Password sign-in is disabled on this server")
    .stderr_has("latchkey login --device");
    // ...and without the cloud document, the server's unsupported_grant_type says the same.
    let url = w.url();
    let mut cmd = w.command(&[
        "login",
        "--email",
        "rae@example.com",
        "--password-stdin",
        "--auth-url",
        &url,
    ]);
    cmd.env("LATCHKEY_CONFIG_DIR", w.tmp.path().join("other-config"));
    run_with_stdin(cmd, &format!("{PASSWORD}\n"))
        .await
        .code(1)
        .stderr_has("Password sign-in is disabled on this server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_flag_warns_server_flag_overrides() {
    // No config at all: --server names the cloud for this one command.
    let w = World::bare(fast_settings()).await;
    w.user("sol@example.com").await;
    let url = w.url();
    w.run(&[
        "login",
        "--server",
        &url,
        "--email",
        "sol@example.com",
        "--password",
        PASSWORD,
    ])
    .await
    .success()
    .stderr_has("warning: a password given with --password stays in your shell history")
    .stderr_has("Signed in as sol@example.com");
    assert_eq!(w.credentials()["cloud_url"], url.as_str());
    assert!(!w.config_dir.join("config.yaml").exists());
    w.run(&["whoami"])
        .await
        .success()
        .stdout_has("sol@example.com");

    w.run(&["login", "--server", "ftp://x", "--email", "a@b.c"])
        .await
        .code(1)
        .stderr_has("--server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_terminal_never_blocks_and_flags_conflict() {
    let w = World::new().await;
    let started = std::time::Instant::now();
    // No terminal to ask the password on (stdin is /dev/null): an explanation, at once.
    w.run(&["login", "--email", "tia@example.com"])
        .await
        .code(1)
        .stderr_has("no terminal to ask for the password")
        .stderr_has("--password-stdin");
    w.run(&["login", "--email"])
        .await
        .code(1)
        .stderr_has("no email address given");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    for pair in [
        ["--web", "--device"],
        ["--device", "--anonymous"],
        ["--anonymous", "--email=x@example.com"],
        ["--oauth", "--anonymous"],
    ] {
        let mut args = vec!["login"];
        args.extend_from_slice(&pair);
        w.run(&args)
            .await
            .code(2)
            .stderr_has("Pick one of --web / --device / --email / --anonymous")
            .stderr_has("Usage: latchkey login");
    }
    w.run(&["login", "--password-stdin"])
        .await
        .code(2)
        .stderr_has("--email");
    w.run(&["login", "--status", "--force"]).await.code(2);
}

/// An organization that requires single sign-on for its domain: the password is refused with
/// what to do instead (the server's `error_uri` tells it apart from a wrong password).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_login_refused_when_the_organization_requires_sso() {
    let w = World::new().await;
    w.user("sam@acme.test").await;
    let st = &w.server.running().state;
    let now = st.now();
    let sam = st
        .store
        .user_by_email("sam@acme.test")
        .await
        .unwrap()
        .unwrap();
    let org = st
        .store
        .create_org("acme", "Acme", &sam.id, now)
        .await
        .unwrap();
    st.store
        .save_org_sso(
            &latchkey_server::store::OrgSsoRow {
                org_id: org.id.clone(),
                issuer: "https://idp.acme.test".into(),
                client_id: "latchkey".into(),
                client_secret: None,
                default_role: "member".into(),
                require_sso: true,
            },
            false,
            now,
        )
        .await
        .unwrap();
    st.store
        .add_org_domain(&org.id, "acme.test", "token", now)
        .await
        .unwrap();
    assert!(
        st.store
            .verify_org_domain(&org.id, "acme.test", now)
            .await
            .unwrap()
    );

    let run = run_with_stdin(pw_login(&w, "sam@acme.test", &[]), &format!("{PASSWORD}\n"))
        .await
        .code(1)
        .stderr_has("Acme requires single sign-on for acme.test addresses")
        .stderr_has("latchkey login --web")
        .stderr_has("/signin/sso");
    assert!(!run.stderr.contains("wrong email or password"), "{run:?}");
    assert!(!w.credentials_path().exists());
    // A wrong password elsewhere still reads as one.
    w.user("tom@example.com").await;
    run_with_stdin(pw_login(&w, "tom@example.com", &[]), "nope-nope-nope\n")
        .await
        .code(1)
        .stderr_has("wrong email or password");
}
