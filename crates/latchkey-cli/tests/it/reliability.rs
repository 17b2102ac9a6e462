//! Reliability of refresh (issue 10): many real `latchkey` processes refreshing one session with
//! access tokens that are always about to expire, and a network that loses the answers to some
//! refresh requests after the server rotated the token. Neither may ever log the user out.

use crate::util::*;
use latchkey_server::config::Settings;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The shortest access-token life latchkeyd accepts (10 s). The client refreshes a token with
/// less than 60 s left, so with this every `latchkey token` finds its token expired and refreshes.
fn expiring_settings() -> Settings {
    Settings {
        access_token_ttl: Some(10),
        ..fast_settings()
    }
}

/// Runs `latchkey ARGS` in `n` processes at once; returns their runs in spawn order.
async fn run_concurrently(w: &World, n: usize, args: &[&str]) -> Vec<Run> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            let mut c = w.command(args);
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            (format!("{c:?}"), c.spawn().expect("spawn latchkey"))
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|(cmd, c)| {
                let out = c.wait_with_output().expect("wait");
                Run {
                    cmd,
                    code: out.status.code(),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                }
            })
            .collect()
    })
    .await
    .expect("join")
}

/// A run that printed a token and nothing else.
#[track_caller]
fn token_of(run: Run) -> String {
    let run = run.success();
    assert!(
        run.stderr.is_empty(),
        "a token run wrote to stderr: {run:?}"
    );
    let token = run.stdout.trim().to_owned();
    assert!(!token.is_empty(), "{run:?}");
    token
}

/// Asserts that `GET /v1/me` accepts every token (checked concurrently, over one client).
async fn assert_all_accepted(base: &str, tokens: &[String], round: usize) {
    latchkey_server::testkit::install_crypto();
    let client = reqwest::Client::new();
    let mut checks = tokio::task::JoinSet::new();
    for (i, token) in tokens.iter().enumerate() {
        let req = client.get(format!("{base}/v1/me")).bearer_auth(token);
        checks.spawn(async move { (i, req.send().await.map(|r| r.status().as_u16())) });
    }
    while let Some(done) = checks.join_next().await {
        let (i, status) = done.expect("join");
        let status = status.expect("GET /v1/me");
        assert_eq!(status, 200, "round {round}: token {i} refused by /v1/me");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_refreshing_for_many_rounds_never_log_out() {
    const PROCESSES: usize = 8;
    const ROUNDS: usize = 20;
    let w = World::with_settings(expiring_settings()).await;
    w.signed_in("rex@example.com").await;
    let started = Instant::now();
    let mut tokens = HashSet::new();
    for round in 0..ROUNDS {
        let round_tokens: Vec<String> = run_concurrently(&w, PROCESSES, &["token"])
            .await
            .into_iter()
            .map(token_of)
            .collect();
        assert_all_accepted(&w.url(), &round_tokens, round).await;
        tokens.extend(round_tokens);
    }
    // Every process found its token expiring and refreshed, one after the other under the lock,
    // each spending the refresh token the previous one wrote: all tokens distinct, none refused.
    assert_eq!(tokens.len(), PROCESSES * ROUNDS);
    eprintln!(
        "{} refreshes by {PROCESSES} concurrent processes in {ROUNDS} rounds: {:?}",
        PROCESSES * ROUNDS,
        started.elapsed()
    );
    // The session is alive and still refreshes.
    w.run(&["whoami"])
        .await
        .success()
        .stdout_has("rex@example.com");
}

/// A TCP proxy in front of latchkeyd that forwards every request, one per connection, and for
/// every `every`-th refresh request (`grant_type=refresh_token`) throws the server's answer
/// away: the server rotated the refresh token, the client never hears of it. It loses answers
/// three ways in turn: the connection closed without a byte, reset, and cut off mid-answer.
struct LossyProxy {
    refreshes: Arc<AtomicUsize>,
    lost: Arc<AtomicUsize>,
}

impl LossyProxy {
    fn spawn(listener: TcpListener, upstream: SocketAddr, every: usize) -> Self {
        let refreshes = Arc::new(AtomicUsize::new(0));
        let lost = Arc::new(AtomicUsize::new(0));
        let (r, l) = (refreshes.clone(), lost.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let (r, l) = (r.clone(), l.clone());
                tokio::spawn(async move {
                    let _ = relay(client, upstream, every, &r, &l).await;
                });
            }
        });
        Self { refreshes, lost }
    }
}

/// Relays one request and its answer, unless this answer is to be lost.
async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    every: usize,
    refreshes: &AtomicUsize,
    lost: &AtomicUsize,
) -> std::io::Result<()> {
    let Some((head, body)) = read_request(&mut client).await? else {
        return Ok(());
    };
    let is_refresh = head.starts_with("POST /oauth/token ")
        && String::from_utf8_lossy(&body).contains("grant_type=refresh_token");
    // One request per connection: ask the server to close after answering, so its answer ends
    // at end of stream and needs no parsing here.
    let (line, rest) = head.split_once("\r\n").unwrap_or((&head, ""));
    let mut request = format!("{line}\r\nconnection: close\r\n{rest}").into_bytes();
    request.extend_from_slice(&body);
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&request).await?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).await?;
    if is_refresh && (refreshes.fetch_add(1, Ordering::SeqCst) + 1).is_multiple_of(every) {
        match lost.fetch_add(1, Ordering::SeqCst) % 3 {
            0 => drop(client),
            1 => {
                client.set_zero_linger()?;
                drop(client);
            }
            _ => {
                client.write_all(&answer[..answer.len() - 20]).await?;
                drop(client);
            }
        }
        return Ok(());
    }
    client.write_all(&answer).await?;
    client.shutdown().await
}

/// Reads one request: its head (up to and including the blank line) and its `content-length`
/// body. `None` when the client closed without sending one.
async fn read_request(s: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Ok(Some((head, buf[end + 4..end + 4 + len].to_vec())));
            }
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_refresh_answers_are_recovered_without_logout() {
    // The proxy's port must be known before the server starts: it is the server's public URL
    // (the issuer, and where the credentials say to refresh).
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let proxy_url = format!("http://{}", listener.local_addr().expect("addr"));
    let w = World::with_settings(Settings {
        public_url: Some(proxy_url.clone()),
        ..expiring_settings()
    })
    .await;
    assert_eq!(w.url(), proxy_url);
    let proxy = LossyProxy::spawn(listener, w.server.running().addr, 3);
    w.signed_in("sue@example.com").await;
    assert_eq!(
        w.credentials()["token_endpoint"],
        format!("{proxy_url}/oauth/token")
    );
    let started = Instant::now();

    // One process at a time: each must come back with a token it refreshed itself, so a lost
    // answer was recovered inside that process (falling back to the still-valid cached token
    // would print the old one).
    let mut slowest = std::time::Duration::ZERO;
    for round in 0..15 {
        let before = w.credentials();
        let t = Instant::now();
        let token = token_of(w.run(&["token"]).await);
        slowest = slowest.max(t.elapsed());
        let after = w.credentials();
        assert!(
            token != before["access_token"].as_str().unwrap(),
            "round {round}: the old access token was printed: the lost answer was not recovered"
        );
        assert!(
            token == after["access_token"].as_str().unwrap(),
            "round {round}"
        );
        assert!(
            after["refresh_token"] != before["refresh_token"],
            "round {round}: the refresh token on file was not rotated"
        );
        assert_all_accepted(&w.url(), &[token], round).await;
    }
    let sequential_lost = proxy.lost.load(Ordering::SeqCst);
    assert!(sequential_lost >= 5, "only {sequential_lost} answers lost");
    // Recovered well inside latchkeyd's 30 s grace window (a retry waits 0.2 s here).
    assert!(slowest.as_secs() < 10, "a recovery took {slowest:?}");

    // Four processes at a time: a lost answer is retried while the others wait on the lock.
    for round in 0..8 {
        let tokens: Vec<String> = run_concurrently(&w, 4, &["token"])
            .await
            .into_iter()
            .map(token_of)
            .collect();
        assert_all_accepted(&w.url(), &tokens, round).await;
    }
    let lost = proxy.lost.load(Ordering::SeqCst);
    assert!(lost > sequential_lost, "no answer lost under concurrency");
    eprintln!(
        "{} refresh requests through the proxy, {lost} answers lost, 0 logouts, slowest \
         sequential `token` {slowest:?}: {:?}",
        proxy.refreshes.load(Ordering::SeqCst),
        started.elapsed()
    );

    // The session survived: `whoami` refreshes through the proxy, and the refresh token on file
    // is the live one at the server itself.
    w.run(&["whoami"])
        .await
        .success()
        .stdout_has("sue@example.com");
    let rt = w.credentials()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    latchkey_server::testkit::install_crypto();
    let r = reqwest::Client::new()
        .post(format!("http://{}/oauth/token", w.server.running().addr))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("client_id", "latchkey-cli"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
