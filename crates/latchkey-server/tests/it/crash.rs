//! `kill -9` of `latchkeyd` in the middle of a load of logins and refreshes, then a restart on
//! the same database (SQLite, or PostgreSQL with `LATCHKEY_TEST_BACKEND=postgres`): nothing a
//! client was given is lost. For every session, the last refresh token its client received
//! still works after the restart, and so does its last access token. A refresh whose answer the
//! kill cut off was possibly committed; presenting the previous token again is then inside the
//! grace window and gets the same successor back, so that case works too.
//!
//! Also here: [`LoggedDaemon`], a `latchkeyd` process whose stderr (at `LATCHKEYD_LOG=debug`) is
//! kept across restarts, and [`assert_no_secret_logged`], the grep of that log for every token,
//! code, password and key a test used (the fuzz run uses both too).
//!
//! Knobs: `LATCHKEY_CRASH_ROUNDS` (kills per run, default 3), `LATCHKEY_FUZZ_SEED`.

use latchkey_server::testkit::TestDatabase;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::fuzz::{Rng, env_u64, seed};

/// A `latchkeyd serve` process logging at debug level to a file that outlives it (appended to
/// by every restart), killed with SIGKILL when dropped.
pub struct LoggedDaemon {
    child: Child,
    /// Its base URL (also the issuer).
    pub url: String,
}

impl LoggedDaemon {
    /// Starts `latchkeyd` on `database_url`, listening on `listen`, appending its stderr to
    /// `log`. Errors (with the log) when it does not come up, e.g. when the port is taken.
    pub fn try_start(
        database_url: &str,
        listen: &str,
        log: &Path,
        extra: &[&str],
    ) -> Result<Self, String> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
            .args(["--listen", listen, "--database-url", database_url])
            .args(extra)
            .env("LATCHKEYD_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        match line.trim().strip_prefix("latchkeyd is running at ") {
            Some(url) => Ok(Self {
                child,
                url: url.to_owned(),
            }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "latchkeyd did not start: {line}\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                ))
            }
        }
    }

    /// Starts `latchkeyd` on `listen`, retrying for a few seconds while the port is not free
    /// yet (a restart on the port of a killed process).
    pub fn start(database_url: &str, listen: &str, log: &Path, extra: &[&str]) -> Self {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Self::try_start(database_url, listen, log, extra) {
                Ok(d) => return d,
                Err(e) if Instant::now() > deadline => panic!("{e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// The `host:port` it listens on.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// Whether the process is still running (it did not crash).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// `kill -9`: SIGKILL, no chance to finish anything; waits until it is gone.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                assert!(s.success(), "latchkeyd exited with {s:?}");
                return;
            }
            assert!(Instant::now() < deadline, "latchkeyd did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LoggedDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a one-shot `latchkeyd` command (`migrate`, `users create`, ...) on `database_url`.
pub fn latchkeyd_cmd(database_url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
        .args(args)
        .args(["--database-url", database_url])
        .env("LATCHKEYD_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "latchkeyd {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Length of the piece of each secret looked for in the logs: long enough that a hit cannot be
/// chance, short enough that a partial leak (a token cut at some length) is found too.
const WINDOW: usize = 16;

/// The pieces of `secret` to look for: every [`WINDOW`]-byte window of its random part (after
/// a known prefix such as `lkr_`; for an API key, after its public id; for a JWT, of its
/// signature), or the whole secret when it is shorter.
fn pieces(secret: &str) -> Vec<String> {
    use latchkey_server::domain::api_keys;
    let core = if secret.starts_with("eyJ") && secret.matches('.').count() == 2 {
        secret.rsplit('.').next().unwrap_or(secret)
    } else if api_keys::looks_like_key(secret) {
        &secret[api_keys::PUBLIC_ID_LEN..]
    } else {
        ["lkr_", "lkd_", "lk_"]
            .iter()
            .find_map(|p| secret.strip_prefix(p))
            .unwrap_or(secret)
    };
    if core.len() <= WINDOW || !core.is_ascii() {
        return vec![core.to_owned()];
    }
    (0..=core.len() - WINDOW)
        .map(|i| core[i..i + WINDOW].to_owned())
        .collect()
}

/// Asserts that no secret (nor any 16-character piece of one) occurs anywhere in `logs`. Every
/// secret is also checked whole, and short ones (passwords, user codes) as they are.
pub fn assert_no_secret_logged<'a>(logs: &str, secrets: impl IntoIterator<Item = &'a str>) {
    let mut windows: HashSet<Vec<u8>> = HashSet::new();
    let mut short: Vec<String> = Vec::new();
    let mut count = 0;
    for s in secrets {
        assert!(s.len() >= 6, "too short to look for: a test bug");
        count += 1;
        for p in pieces(s) {
            if p.len() == WINDOW {
                windows.insert(p.into_bytes());
            } else {
                short.push(p);
            }
        }
        if !latchkey_server::domain::api_keys::looks_like_key(s) {
            short.push(s.to_owned());
        }
    }
    let bytes = logs.as_bytes();
    if bytes.len() >= WINDOW {
        for (i, w) in bytes.windows(WINDOW).enumerate() {
            if windows.contains(w) {
                let line = logs[..i].rfind('\n').map_or(0, |n| n + 1);
                panic!(
                    "a secret reached the log (line starting at byte {line}): {}",
                    logs[line..].lines().next().unwrap_or("")
                );
            }
        }
    }
    for s in short {
        assert!(!logs.contains(&s), "a secret reached the log");
    }
    assert!(count > 0);
}

/// One login session as its client knows it: the last tokens it was given.
#[derive(Debug, Clone)]
struct Session {
    refresh: String,
    access: String,
}

/// One simulated CLI user: its sessions and what it saw.
#[derive(Debug, Default)]
struct ClientState {
    sessions: Vec<Session>,
    /// Every token this client was given (for the log grep).
    seen: Vec<String>,
    logins: u64,
    refreshes: u64,
    /// Requests cut off by the kill (no answer).
    cut: u64,
    /// Throttled or busy (429, 503), then retried later.
    throttled: u64,
    /// What went wrong: statuses that should never happen.
    violations: Vec<String>,
}

const CLIENTS: usize = 8;
const PASSWORD: &str = "crash test password ";

fn http() -> reqwest::Client {
    super::http()
}

async fn token_request(
    http: &reqwest::Client,
    base: &str,
    ip: &str,
    form: &[(&str, &str)],
) -> Result<(u16, Value), reqwest::Error> {
    let r = http
        .post(format!("{base}/oauth/token"))
        .header("x-forwarded-for", ip)
        .form(form)
        .send()
        .await?;
    let status = r.status().as_u16();
    // A body cut off by the kill is an error too: the client did not get the tokens.
    let bytes = r.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// The load of one client until the server dies or `stop` is set: logins now and then,
/// refreshes of its sessions' last tokens otherwise. Only answers received count.
async fn client_load(
    base: String,
    me: usize,
    mut st: ClientState,
    stop: Arc<AtomicBool>,
    mut rng: Rng,
) -> ClientState {
    let http = http();
    // Through a trusted proxy (127.0.0.1), each client comes from its own address: the
    // per-address sign-in limits are not what this test is about.
    let ip = format!("10.77.{}.{}", me, 1 + rng.below(250));
    let email = format!("crash{me}@example.com");
    let password = format!("{PASSWORD}{me}");
    while !stop.load(Ordering::SeqCst) {
        let login = st.sessions.is_empty() || (st.sessions.len() < 6 && rng.below(6) == 0);
        let (res, which) = if login {
            let form: Vec<(&str, &str)> = if me.is_multiple_of(2) {
                vec![
                    ("grant_type", "password"),
                    ("username", &email),
                    ("password", &password),
                    ("client_id", "latchkey-cli"),
                ]
            } else {
                vec![
                    ("grant_type", latchkey_proto::GRANT_ANONYMOUS),
                    ("client_id", "latchkey-cli"),
                ]
            };
            (token_request(&http, &base, &ip, &form).await, None)
        } else {
            let i = rng.below(st.sessions.len());
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", st.sessions[i].refresh.as_str()),
                ("client_id", "latchkey-cli"),
            ];
            (token_request(&http, &base, &ip, &form).await, Some(i))
        };
        match res {
            Err(_) => {
                // The server is gone (killed): this answer never came.
                st.cut += 1;
                break;
            }
            Ok((200, body)) => {
                let refresh = body["refresh_token"].as_str().unwrap().to_owned();
                let access = body["access_token"].as_str().unwrap().to_owned();
                st.seen.push(refresh.clone());
                st.seen.push(access.clone());
                let s = Session { refresh, access };
                match which {
                    None => {
                        st.logins += 1;
                        st.sessions.push(s);
                    }
                    Some(i) => {
                        st.refreshes += 1;
                        st.sessions[i] = s;
                    }
                }
            }
            Ok((429 | 503, _)) => {
                st.throttled += 1;
                tokio::time::sleep(Duration::from_millis(20 + rng.below(80) as u64)).await;
            }
            Ok((status, body)) => {
                let what = if which.is_some() { "refresh" } else { "login" };
                st.violations
                    .push(format!("client {me}: {what} answered {status}: {body}"));
                if which.is_some() && status == 400 {
                    // A token it was given was refused: drop the session so the test goes on
                    // and reports every such case, not only the first.
                    st.sessions.remove(which.unwrap_or(0));
                }
            }
        }
    }
    st
}

async fn get_status(http: &reqwest::Client, url: &str, bearer: &str) -> u16 {
    http.get(url)
        .bearer_auth(bearer)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Whether introspection says `token` is live (authenticated with the session's access token).
async fn introspect_active(http: &reqwest::Client, base: &str, access: &str, token: &str) -> bool {
    let r = http
        .post(format!("{base}/oauth/introspect"))
        .bearer_auth(access)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json::<Value>().await.unwrap()["active"] == true
}

/// What a check after a restart found.
#[derive(Debug, Default)]
struct Check {
    failures: Vec<String>,
    /// Last refresh tokens already rotated by the killed process (their answer was cut off),
    /// redeemed again inside the grace window.
    recovered_by_grace: usize,
}

/// After a restart: every session's last access token is accepted and its last refresh token
/// redeems (then its successor is the session's token).
async fn check_sessions(base: &str, clients: &mut [ClientState]) -> Check {
    let http = http();
    let mut check = Check::default();
    let failures = &mut check.failures;
    for (me, st) in clients.iter_mut().enumerate() {
        let ip = format!("10.78.{me}.1");
        for (n, s) in st.sessions.iter_mut().enumerate() {
            let status = get_status(&http, &format!("{base}/v1/me"), &s.access).await;
            if status != 200 {
                failures.push(format!(
                    "client {me} session {n}: last access token → {status}"
                ));
            }
            // Introspection tells whether the killed process had rotated the token already.
            let spent = !introspect_active(&http, base, &s.access, &s.refresh).await;
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", s.refresh.as_str()),
                ("client_id", "latchkey-cli"),
            ];
            match token_request(&http, base, &ip, &form).await {
                Ok((200, body)) => {
                    s.refresh = body["refresh_token"].as_str().unwrap().to_owned();
                    s.access = body["access_token"].as_str().unwrap().to_owned();
                    st.seen.push(s.refresh.clone());
                    st.seen.push(s.access.clone());
                    check.recovered_by_grace += usize::from(spent);
                }
                Ok((status, body)) => failures.push(format!(
                    "client {me} session {n}: last refresh token → {status} {body}"
                )),
                Err(e) => failures.push(format!("client {me} session {n}: {e}")),
            }
        }
    }
    check
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_logins_and_refreshes_loses_no_acknowledged_token() {
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let log: PathBuf = dir.path().join("latchkeyd.log");
    let rounds = env_u64("LATCHKEY_CRASH_ROUNDS", 3);
    let mut rng = Rng::new(seed() ^ 0x00C4_A511);
    let started = Instant::now();

    // Accounts for the password logins, created by the operator command.
    let mut ops_output = String::new();
    let o = latchkeyd_cmd(&db.url, &["migrate"], None);
    ops_output.push_str(&String::from_utf8_lossy(&o.stderr));
    let mut secrets: Vec<String> = Vec::new();
    for me in (0..CLIENTS).step_by(2) {
        let password = format!("{PASSWORD}{me}");
        let email = format!("crash{me}@example.com");
        let o = latchkeyd_cmd(
            &db.url,
            &["users", "create", &email, "--password-stdin"],
            Some(&format!("{password}\n")),
        );
        ops_output.push_str(&String::from_utf8_lossy(&o.stdout));
        ops_output.push_str(&String::from_utf8_lossy(&o.stderr));
        secrets.push(password);
    }

    let extra = [
        "--login-methods",
        "device,password,anonymous",
        "--trusted-proxies",
        "127.0.0.1",
        "--hash-concurrency",
        "2",
    ];
    let mut daemon = LoggedDaemon::start(&db.url, "127.0.0.1:0", &log, &extra);
    let addr = daemon.addr();
    let mut clients: Vec<ClientState> = (0..CLIENTS).map(|_| ClientState::default()).collect();
    let mut cut_total = 0;
    let mut checked = 0;
    let mut recovered = 0;
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = std::mem::take(&mut clients)
            .into_iter()
            .enumerate()
            .map(|(me, st)| {
                tokio::spawn(client_load(
                    daemon.url.clone(),
                    me,
                    st,
                    stop.clone(),
                    Rng::new(rng.next() | 1),
                ))
            })
            .collect();
        // Let the load run, then kill -9 in the middle of it.
        let load_ms = 800 + rng.below(1200) as u64;
        tokio::time::sleep(Duration::from_millis(load_ms)).await;
        assert!(daemon.is_running(), "latchkeyd died under load");
        daemon.kill9();
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            clients.push(t.await.unwrap());
        }
        let cut: u64 = clients.iter().map(|c| c.cut).sum::<u64>() - cut_total;
        cut_total += cut;

        // Restart on the same database and port (so the issuer is the same).
        daemon = LoggedDaemon::start(&db.url, &addr, &log, &extra);
        let check = check_sessions(&daemon.url, &mut clients).await;
        let sessions: usize = clients.iter().map(|c| c.sessions.len()).sum();
        checked += sessions;
        recovered += check.recovered_by_grace;
        eprintln!(
            "crash round {round}: load {load_ms} ms, killed with {cut} request(s) in flight; \
             {sessions} sessions checked after restart ({} rotated by the killed process, \
             recovered in the grace window), {} failure(s)",
            check.recovered_by_grace,
            check.failures.len()
        );
        assert!(
            check.failures.is_empty(),
            "acknowledged tokens lost after kill -9 (round {round}):\n{}",
            check.failures.join("\n")
        );
    }
    // The tokens handed out by the checks work too, and a last check on a fresh process.
    daemon.kill9();
    daemon = LoggedDaemon::start(&db.url, &addr, &log, &extra);
    let check = check_sessions(&daemon.url, &mut clients).await;
    assert!(check.failures.is_empty(), "{}", check.failures.join("\n"));
    assert_eq!(check.recovered_by_grace, 0, "nothing was in flight");
    daemon.stop();

    let violations: Vec<&String> = clients.iter().flat_map(|c| &c.violations).collect();
    let mut totals = BTreeMap::new();
    for c in &clients {
        *totals.entry("logins").or_insert(0) += c.logins;
        *totals.entry("refreshes").or_insert(0) += c.refreshes;
        *totals.entry("throttled").or_insert(0) += c.throttled;
    }
    eprintln!(
        "crash: {:?}, {rounds} kill -9, {totals:?}, {cut_total} requests cut, {checked} session \
         checks ({recovered} in the grace window), {} s",
        db.backend,
        started.elapsed().as_secs()
    );
    assert!(
        violations.is_empty(),
        "unexpected answers under load:\n{violations:#?}"
    );
    assert!(
        totals["refreshes"] > 0 && totals["logins"] > 0,
        "{totals:?}"
    );

    // Not one token or password in anything latchkeyd logged, at debug level.
    let logs = std::fs::read_to_string(&log).unwrap() + ops_output.as_str();
    assert!(logs.contains("request"), "debug logs were captured");
    assert!(!logs.contains("panicked"), "latchkeyd panicked:\n{logs}");
    for c in &clients {
        secrets.extend(c.seen.iter().cloned());
    }
    assert_no_secret_logged(&logs, secrets.iter().map(String::as_str));
}
