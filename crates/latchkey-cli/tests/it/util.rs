//! The harness: a real `latchkeyd` from the testkit, a temporary config directory and working
//! directory, and helpers that run the real `latchkey` binary. A failing assertion prints the
//! command with its stdout and stderr.

use latchkey_server::config::Settings;
use latchkey_server::testkit::{Browser, TestServer};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_latchkey");
pub const PASSWORD: &str = "correct horse battery staple";

/// What a finished `latchkey` process left behind.
#[derive(Debug)]
pub struct Run {
    pub cmd: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "\n--- command: {}\n--- exit: {:?}\n--- stdout:\n{}\n--- stderr:\n{}\n---",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }

    /// Asserts exit code 0.
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.code, Some(0), "expected success{}", self.describe());
        self
    }

    /// Asserts this exit code.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}{}",
            self.describe()
        );
        self
    }

    /// Asserts stderr contains `s`.
    #[track_caller]
    pub fn stderr_has(self, s: &str) -> Self {
        assert!(
            self.stderr.contains(s),
            "stderr lacks {s:?}{}",
            self.describe()
        );
        self
    }

    /// Asserts stdout contains `s`.
    #[track_caller]
    pub fn stdout_has(self, s: &str) -> Self {
        assert!(
            self.stdout.contains(s),
            "stdout lacks {s:?}{}",
            self.describe()
        );
        self
    }
}

/// One test's world: a server, a config directory, a working directory.
pub struct World {
    pub server: TestServer,
    pub tmp: tempfile::TempDir,
    pub config_dir: PathBuf,
    pub cwd: PathBuf,
}

/// Fast polling so a login takes about a second.
pub fn fast_settings() -> Settings {
    Settings {
        device_poll_interval: Some(1),
        ..Settings::default()
    }
}

impl World {
    /// A server with fast polling and `cloud.url` configured.
    pub async fn new() -> Self {
        Self::with_settings(fast_settings()).await
    }

    /// A server with `settings` and `cloud.url` configured.
    pub async fn with_settings(settings: Settings) -> Self {
        let w = Self::bare(settings).await;
        let url = w.url();
        w.run(&["config", "set", "cloud.url", &url]).await.success();
        w
    }

    /// A server and directories, with no config at all.
    pub async fn bare(settings: Settings) -> Self {
        let server = TestServer::start_with(settings).await;
        let tmp = tempfile::tempdir().expect("tempdir");
        let config_dir = tmp.path().join("config");
        let cwd = tmp.path().join("work");
        std::fs::create_dir_all(&cwd).expect("cwd");
        Self {
            server,
            tmp,
            config_dir,
            cwd,
        }
    }

    pub fn url(&self) -> String {
        self.server.url().trim_end_matches('/').to_owned()
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.config_dir.join("credentials.json")
    }

    pub fn credentials(&self) -> serde_json::Value {
        read_json(&self.credentials_path())
    }

    /// A `latchkey` command with a clean environment, run in the world's working directory.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_in(&self.cwd, args)
    }

    pub fn command_in(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(dir)
            .env("LATCHKEY_CONFIG_DIR", &self.config_dir)
            .env("HOME", self.tmp.path())
            .env("NO_COLOR", "1")
            .env_remove("LATCHKEY_TOKEN")
            .env_remove("LATCHKEY_API_KEY")
            .env_remove("LATCHKEY_NO_BROWSER")
            .env_remove("LATCHKEY_LOGIN_TIMEOUT")
            .env_remove("CI")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("VISUAL")
            .env_remove("EDITOR")
            .stdin(Stdio::null());
        c
    }

    /// Runs `latchkey ARGS` to completion.
    pub async fn run(&self, args: &[&str]) -> Run {
        run_command(self.command(args)).await
    }

    /// Runs `latchkey ARGS` in `dir`.
    pub async fn run_in(&self, dir: &Path, args: &[&str]) -> Run {
        run_command(self.command_in(dir, args)).await
    }

    /// Signs up `email` in a fresh browser.
    pub async fn user(&self, email: &str) -> Browser {
        let b = Browser::new(&self.url());
        b.sign_up(email, PASSWORD).await;
        b
    }

    /// Runs `latchkey login --no-browser EXTRA...` in `dir` and approves the code as `browser`.
    pub async fn login_in(&self, dir: &Path, browser: &Browser, extra: &[&str]) -> Run {
        let mut args = vec!["login", "--no-browser"];
        args.extend_from_slice(extra);
        let pending = Pending::spawn(self.command_in(dir, &args));
        let code = pending.code().await;
        browser.approve_device(&code).await;
        pending.finish().await
    }

    /// `login_in` the world's working directory.
    pub async fn login(&self, browser: &Browser, extra: &[&str]) -> Run {
        self.login_in(&self.cwd.clone(), browser, extra).await
    }

    /// Signs up `email` and logs in; returns the browser.
    pub async fn signed_in(&self, email: &str) -> Browser {
        let b = self.user(email).await;
        self.login(&b, &[]).await.success();
        b
    }
}

/// A running `latchkey login` whose stderr is being watched for the user code.
pub struct Pending {
    pub child: Child,
    cmd: String,
    stderr: Arc<Mutex<String>>,
    code_rx: Option<mpsc::Receiver<String>>,
    url_rx: Option<mpsc::Receiver<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Pending {
    pub fn spawn(mut cmd: Command) -> Self {
        let desc = format!("{cmd:?}");
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn latchkey");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let (url_tx, url_rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        let buf = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut lines = BufReader::new(pipe);
            let mut line = String::new();
            while lines.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(code) = line.trim().strip_prefix("Code: ") {
                    let _ = tx.send(code.trim().to_owned());
                }
                let t = line.trim();
                if t.starts_with("http") && t.contains("redirect_uri=") {
                    let _ = url_tx.send(t.to_owned());
                }
                buf.lock().expect("lock").push_str(&line);
                line.clear();
            }
        });
        Self {
            child,
            cmd: desc,
            stderr,
            code_rx: Some(rx),
            url_rx: Some(url_rx),
            reader: Some(reader),
        }
    }

    /// Waits for the browser sign-in URL (`latchkey login --web`) to be printed.
    pub async fn url(&self) -> String {
        let rx = self.url_rx.as_ref().expect("url receiver");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(u) = rx.try_recv() {
                return u;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no sign-in URL printed by {}; stderr so far:\n{}",
                self.cmd,
                self.stderr.lock().expect("lock")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the user code to be printed.
    pub async fn code(&self) -> String {
        let rx = self.code_rx.as_ref().expect("code receiver");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(c) = rx.try_recv() {
                return c;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no code printed by {}; stderr so far:\n{}",
                self.cmd,
                self.stderr.lock().expect("lock")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the process to end (at most 60 s).
    pub async fn finish(mut self) -> Run {
        let mut child = self.child;
        let reader = self.reader.take();
        let stderr = self.stderr.clone();
        let cmd = self.cmd.clone();
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            let status = loop {
                if let Some(s) = child.try_wait().expect("wait") {
                    break s;
                }
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "{cmd} did not finish; stderr:\n{}",
                        stderr.lock().expect("lock")
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let mut stdout = String::new();
            if let Some(mut o) = child.stdout.take() {
                let _ = o.read_to_string(&mut stdout);
            }
            if let Some(r) = reader {
                let _ = r.join();
            }
            let stderr = stderr.lock().expect("lock").clone();
            Run {
                cmd,
                code: status.code(),
                stdout,
                stderr,
            }
        })
        .await
        .expect("join")
    }
}

/// Runs a command to completion off the async runtime (the server keeps serving meanwhile).
pub async fn run_command(mut cmd: Command) -> Run {
    let desc = format!("{cmd:?}");
    tokio::task::spawn_blocking(move || {
        let out = cmd.output().expect("run latchkey");
        Run {
            cmd: desc,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .expect("join")
}

/// Runs a command with `input` on its standard input.
pub async fn run_with_stdin(mut cmd: Command, input: &str) -> Run {
    let desc = format!("{cmd:?}");
    let input = input.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run latchkey");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.as_bytes());
        }
        let out = child.wait_with_output().expect("wait");
        Run {
            cmd: desc,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .expect("join")
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("valid JSON")
}

pub fn write_json(path: &Path, v: &serde_json::Value) {
    std::fs::write(path, serde_json::to_vec_pretty(v).expect("json")).expect("write");
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// GET `/v1/me` with a bearer token; returns the status.
pub async fn me_status(base: &str, token: &str) -> u16 {
    latchkey_server::testkit::install_crypto();
    reqwest::Client::new()
        .get(format!("{base}/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /v1/me")
        .status()
        .as_u16()
}

/// A stub HTTP server answering every request with `status` and `body` (JSON). Returns its URL.
pub fn stub_server(status: u16, body: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                use std::io::Write;
                let mut buf = [0u8; 8192];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let reason = match status {
                    426 => "Upgrade Required",
                    500 => "Internal Server Error",
                    _ => "Status",
                };
                let resp = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes());
            });
        }
    });
    url
}
