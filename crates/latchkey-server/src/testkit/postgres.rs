//! A throwaway PostgreSQL cluster for the test suite: started lazily, once per test process,
//! from the Debian `postgresql` binaries (`/usr/lib/postgresql/*/bin`), with a fresh database
//! per test server.
//!
//! - The cluster lives in a temporary directory and listens only on a Unix socket in that
//!   directory (no TCP port, so parallel test runs never collide).
//! - As root (CI, containers) `initdb` and `pg_ctl` run as the `postgres` user through
//!   `runuser`, because PostgreSQL refuses to run as root.
//! - A watchdog shell holds the read end of a pipe whose write end only this process has. When
//!   the process exits for any reason (end of tests, panic, SIGKILL) the pipe closes, and the
//!   watchdog stops the cluster and deletes its directory: no postgres outlives the test run.
//! - `LATCHKEY_TEST_POSTGRES_URL` (a URL of a database on an existing server whose user may
//!   `CREATE DATABASE`) skips all that and uses that server instead.

use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The running cluster of this process.
pub struct Cluster {
    /// URL of the `postgres` maintenance database, to create test databases from.
    admin_url: String,
    /// Base of every test database's URL (`postgres://...@.../`), followed by the name.
    url_prefix: String,
    /// Query string appended after the database name (the socket directory).
    url_suffix: String,
    /// Keeps the watchdog's pipe open for the life of the process.
    _watchdog: Option<ChildStdin>,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT_DB: AtomicU64 = AtomicU64::new(0);

/// The cluster, started on first use. Panics, with what to install, when PostgreSQL is not
/// available: a test run that asked for PostgreSQL must not silently test something else.
pub fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_init(start) {
        Ok(c) => c,
        Err(e) => panic!(
            "LATCHKEY_TEST_BACKEND=postgres, but a PostgreSQL cluster could not be started: {e}\n\
             hint: install Debian's `postgresql` package (./scripts/test does it as root), or \
             set LATCHKEY_TEST_POSTGRES_URL to a database on a running server"
        ),
    }
}

impl Cluster {
    /// Creates a new, empty database and returns its URL.
    pub async fn create_database(&self) -> String {
        let name = format!(
            "lk_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        );
        let mut conn = sqlx::postgres::PgConnection::connect(&self.admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test cluster: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = conn.close().await;
        format!("{}{name}{}", self.url_prefix, self.url_suffix)
    }
}

fn start() -> Result<Cluster, String> {
    if let Ok(url) = std::env::var("LATCHKEY_TEST_POSTGRES_URL") {
        let parsed =
            url::Url::parse(&url).map_err(|e| format!("LATCHKEY_TEST_POSTGRES_URL: {e}"))?;
        let mut prefix = parsed.clone();
        prefix.set_path("/");
        prefix.set_query(None);
        let suffix = parsed.query().map(|q| format!("?{q}")).unwrap_or_default();
        return Ok(Cluster {
            admin_url: url,
            url_prefix: prefix.to_string(),
            url_suffix: suffix,
            _watchdog: None,
        });
    }
    let bin = find_bin_dir()?;
    let as_root = is_root();
    let dir = tempfile::Builder::new()
        .prefix("latchkey-pg-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?
        .keep();
    let data = dir.join("data");
    if as_root {
        run(Command::new("chown").arg("postgres:postgres").arg(&dir))?;
    }
    let pg_ctl = bin.join("pg_ctl");

    // The watchdog first, so that whatever happens next, the cluster goes with this process.
    let sudo = if as_root {
        "runuser -u postgres -- "
    } else {
        ""
    };
    let script = format!(
        "trap '' INT TERM HUP; cat >/dev/null; \
         {sudo}\"$1\" -D \"$2\" stop -m immediate -w >/dev/null 2>&1; rm -rf \"$3\""
    );
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("latchkey-pg-watchdog")
        .arg(&pg_ctl)
        .arg(&data)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the watchdog shell: {e}"))?;
    let stdin = watchdog.stdin.ok_or("watchdog has no stdin")?;

    let initdb = bin.join("initdb");
    let out = as_postgres(as_root, &initdb)
        .arg("-D")
        .arg(&data)
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let opts = format!(
        "-c listen_addresses='' -k {} -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=400 -c shared_buffers=32MB",
        dir.display()
    );
    run(as_postgres(as_root, &pg_ctl)
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(dir.join("postgres.log"))
        .arg("-o")
        .arg(opts)
        .args(["-w", "-t", "60", "start"]))
    .map_err(|e| {
        let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
        format!("{e}\n{log}")
    })?;
    let host = dir.display().to_string();
    let enc: String = url::form_urlencoded::byte_serialize(host.as_bytes()).collect();
    Ok(Cluster {
        admin_url: format!("postgres://postgres@localhost/postgres?host={enc}"),
        url_prefix: "postgres://postgres@localhost/".to_owned(),
        url_suffix: format!("?host={enc}"),
        _watchdog: Some(stdin),
    })
}

/// `pg_ctl` and friends: `LATCHKEY_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`, else
/// `PATH`.
fn find_bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("LATCHKEY_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|d| d.join("pg_ctl").exists() && d.join("initdb").exists())
        .ok_or_else(|| {
            "pg_ctl and initdb were not found in /usr/lib/postgresql/*/bin or PATH".into()
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn as_postgres(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    // Never capture through pipes: the postmaster inherits stdout/stderr and would hold them
    // open forever.
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {out}"))
    }
}
