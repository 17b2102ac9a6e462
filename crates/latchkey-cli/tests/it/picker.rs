//! `latchkey login` without a method flag: on a terminal (a pseudo-terminal driven by
//! expectrl) the picker offers the methods the server enables and each one works; without a
//! terminal the configured `auth.default_method` (else the device flow) runs without waiting
//! for input.

use crate::util::*;
use crate::web::deliver;
use expectrl::{Expect, Regex, Session};
use latchkey_server::config::Settings;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

type Pty = expectrl::session::OsSession;

const DOWN: &str = "\x1b[B";
const UP: &str = "\x1b[A";
const ENTER: &str = "\r";

fn all_methods() -> Settings {
    Settings {
        login_methods: Some(vec![
            "browser".into(),
            "device".into(),
            "password".into(),
            "anonymous".into(),
        ]),
        ..fast_settings()
    }
}

/// Runs a blocking step (the PTY is driven synchronously) off the async runtime.
async fn step<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

/// `latchkey ARGS` on a pseudo-terminal, with its own config directory and `--server`.
fn spawn_pty(w: &World, config_dir: &Path, args: &[&str]) -> Pty {
    let mut cmd = w.command(args);
    cmd.env("LATCHKEY_CONFIG_DIR", config_dir)
        .env("TERM", "xterm")
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut p = Session::spawn(cmd).expect("spawn on a pty");
    p.set_expect_timeout(Some(Duration::from_secs(30)));
    p
}

/// Picks the entry `moves` steps away from the preselected one.
async fn pick(mut p: Pty, moves: &'static str) -> Pty {
    step(move || {
        p.expect("How do you want to sign in?").expect("the picker");
        p.expect("Anonymous").expect("all four methods listed");
        p.send(moves).expect("move");
        p.send(ENTER).expect("enter");
        p
    })
    .await
}

/// Waits for `text`, then for the process to exit; returns what was printed and the status.
async fn finish(mut p: Pty, text: &'static str) -> String {
    step(move || {
        let caps = p
            .expect(text)
            .unwrap_or_else(|e| panic!("waiting for {text:?}: {e}"));
        let before = String::from_utf8_lossy(caps.before()).into_owned();
        let rest = match p.expect(expectrl::Eof) {
            Ok(c) => String::from_utf8_lossy(c.before()).into_owned(),
            Err(e) => panic!("no end after {text:?}: {e}"),
        };
        let status = p.get_process().wait().expect("wait");
        assert!(
            matches!(status, expectrl::process::unix::WaitStatus::Exited(_, 0)),
            "{status:?}\n{before}{text}{rest}"
        );
        format!("{before}{text}{rest}")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picker_offers_every_enabled_method() {
    let w = World::with_settings(all_methods()).await;
    let url = w.url();
    let eve = w.user("eve@example.com").await;
    let dir = |n: &str| w.tmp.path().join(n);

    // Device code: preselected here (no display, so no browser can be opened).
    let p = spawn_pty(
        &w,
        &dir("device"),
        &["login", "--server", &url, "--no-browser"],
    );
    let mut p = pick(p, "").await;
    let (p, code) = step(move || {
        let caps = p
            .expect(Regex("Code: ([B-Z]{4}-[B-Z]{4})"))
            .expect("a device code");
        let code = String::from_utf8_lossy(caps.get(1).expect("code")).into_owned();
        (p, code)
    })
    .await;
    eve.approve_device(&code).await;
    let out = finish(p, "Signed in as eve@example.com").await;
    assert!(out.contains("Waiting for approval"), "{out}");
    assert_eq!(
        read_json(&dir("device").join("credentials.json"))["mode"],
        "oauth"
    );

    // Browser: one up from the device code.
    let p = spawn_pty(
        &w,
        &dir("browser"),
        &["login", "--server", &url, "--no-browser"],
    );
    let mut p = pick(p, UP).await;
    let (p, authorize) = step(move || {
        let caps = p
            .expect(Regex(r"(http://\S+/oauth/authorize\?\S+)"))
            .expect("the sign-in URL");
        let u = String::from_utf8_lossy(caps.get(1).expect("url")).into_owned();
        (p, u)
    })
    .await;
    let location = eve.consent(&authorize, true).await;
    let (status, _) = deliver(&location).await;
    assert_eq!(status, 200);
    finish(p, "Signed in as eve@example.com").await;

    // Email and password: one down.
    let p = spawn_pty(&w, &dir("password"), &["login", "--server", &url]);
    let mut p = pick(p, DOWN).await;
    let p = step(move || {
        p.expect("Email").expect("email prompt");
        p.send_line("eve@example.com").expect("type");
        p.expect("Password").expect("password prompt");
        p.send_line(PASSWORD).expect("type");
        p
    })
    .await;
    let out = finish(p, "Signed in as eve@example.com").await;
    assert!(!out.contains(PASSWORD), "the password is not echoed: {out}");
    assert_eq!(
        read_json(&dir("password").join("credentials.json"))["mode"],
        "password"
    );

    // Anonymous: two down.
    let p = spawn_pty(&w, &dir("anonymous"), &["login", "--server", &url]);
    let p = pick(p, "\x1b[B\x1b[B").await;
    finish(p, "Signed in anonymously").await;
    assert_eq!(
        read_json(&dir("anonymous").join("credentials.json"))["mode"],
        "anonymous"
    );

    // Signed in already: on a terminal, the CLI asks before replacing the login.
    let mut p = spawn_pty(&w, &dir("password"), &["login", "--device"]);
    let p = step(move || {
        p.expect("You are signed in as eve@example.com. Sign in again and replace this login?")
            .expect("the question");
        p.send("n").expect("answer");
        p
    })
    .await;
    finish(p, "Kept the current login.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_the_default_runs_at_once() {
    let w = World::with_settings(all_methods()).await;
    // The configured default method, with stdin at /dev/null: no prompt, no wait.
    w.run(&["config", "set", "auth.default_method", "anonymous"])
        .await
        .success();
    let started = Instant::now();
    let run = w
        .run(&["login"])
        .await
        .success()
        .stderr_has("Signed in anonymously");
    assert!(!run.stderr.contains("How do you want"), "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "{run:?}");

    // No configured default: the device flow.
    let other = w.tmp.path().join("other");
    let url = w.url();
    let mut cmd = w.command(&["login", "--server", &url, "--no-browser"]);
    cmd.env("LATCHKEY_CONFIG_DIR", &other);
    let pending = Pending::spawn(cmd);
    let code = pending.code().await;
    let fay = w.user("fay@example.com").await;
    fay.approve_device(&code).await;
    pending
        .finish()
        .await
        .success()
        .stderr_has("Signed in as fay@example.com");
}
