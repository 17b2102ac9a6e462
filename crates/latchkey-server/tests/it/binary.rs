//! The real `latchkeyd` binary: starts, prints its URL, serves, logs no secrets, stops cleanly
//! on SIGTERM; bad configuration is a clear error.

use latchkey_server::testkit::Browser;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{poll, refresh, start_device};

#[tokio::test]
async fn binary_serves_logs_no_secrets_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("latchkey.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
        .args(["--listen", "127.0.0.1:0", "--database-url"])
        .arg(format!("sqlite://{}", db.display()))
        .env("LATCHKEYD_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("latchkeyd is running at ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned();
    assert!(db.exists(), "the SQLite database is created");

    // A whole login through the binary.
    let password = "a very secret password 9";
    let browser = Browser::new(&url);
    browser.sign_up("jo@example.com", password).await;
    let dev = start_device(&url).await;
    let user_code = dev["user_code"].as_str().unwrap().to_owned();
    let device_code = dev["device_code"].as_str().unwrap().to_owned();
    browser.approve_device(&user_code).await;
    let (s, tok) = poll(&url, &device_code).await;
    assert_eq!(s, 200);
    let refresh1 = tok["refresh_token"].as_str().unwrap().to_owned();
    let access1 = tok["access_token"].as_str().unwrap().to_owned();
    let (s, tok2) = refresh(&url, &refresh1).await;
    assert_eq!(s, 200);
    let refresh2 = tok2["refresh_token"].as_str().unwrap().to_owned();
    let (s, _, _) = super::get_json(&format!("{url}/v1/me"), Some(&access1)).await;
    assert_eq!(s, 200);
    assert!(
        std::path::Path::new(&format!("{}-wal", db.display())).exists(),
        "SQLite runs in WAL mode"
    );

    // SIGTERM: graceful stop, exit 0.
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "latchkeyd did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit:?}");

    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("request"), "request logging is on: {logs}");
    for secret in [
        password,
        &user_code,
        &user_code.replace('-', ""),
        &device_code,
        &refresh1,
        &refresh2,
        &access1,
    ] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
        .args(["--database-url", "mysql://x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("database_url") && err.contains("sqlite://"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("latchkeyd.toml");
    std::fs::write(&cfg, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("latchkeyd.toml") && err.contains("lisen"),
        "{err}"
    );
}

#[test]
fn config_file_and_environment_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("latchkeyd.yaml");
    std::fs::write(&cfg, "listen: \"127.0.0.1:0\"\naccess_token_ttl: 5\n").unwrap();
    // access_token_ttl below the minimum proves the file was read.
    let out = Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("access_token_ttl"), "{err}");
    // The environment overrides the file.
    let out = Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
        .arg("--config")
        .arg(&cfg)
        .env("LATCHKEYD_ACCESS_TOKEN_TTL", "abc")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("abc"), "{err}");
}
