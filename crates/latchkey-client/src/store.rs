//! Where the files live and how they are written: config directory resolution, workspace-local
//! credentials, private modes (0700 directory, 0600 files), atomic replacement and the exclusive
//! lock that serialises refreshes across processes.
//!
//! These rules are what make concurrent commands safe: a reader never sees half a file (temp +
//! fsync + rename + fsync of the directory), and a refresh happens under a lock on a sidecar file
//! so two processes never spend the same rotating refresh token.

use crate::credentials::Credentials;
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Name of the credentials file inside a config or workspace directory.
pub const CREDENTIALS_FILE: &str = "credentials.json";
/// Name of the config file inside the config directory.
pub const CONFIG_FILE: &str = "config.yaml";

/// How long [`CredentialStore::lock`] waits for another process before giving up.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(45);

/// The resolved locations of one app's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The global config directory (`$<APP>_CONFIG_DIR`, `$XDG_CONFIG_HOME/<app>` or
    /// `~/.config/<app>`).
    pub config_dir: PathBuf,
    /// A workspace-local directory (`.<app>/` in the working directory or a parent), if any.
    pub local_dir: Option<PathBuf>,
}

impl Paths {
    /// `config.yaml` (always global).
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join(CONFIG_FILE)
    }

    /// The credentials file in use: the workspace-local one when a workspace directory exists,
    /// else the global one.
    pub fn credentials_file(&self) -> PathBuf {
        match &self.local_dir {
            Some(d) => d.join(CREDENTIALS_FILE),
            None => self.global_credentials_file(),
        }
    }

    /// The global credentials file.
    pub fn global_credentials_file(&self) -> PathBuf {
        self.config_dir.join(CREDENTIALS_FILE)
    }

    /// Whether the credentials in use are workspace-local.
    pub fn is_local(&self) -> bool {
        self.local_dir.is_some()
    }
}

/// The environment variable naming the config directory of `app`: `LATCHKEY_CONFIG_DIR` for
/// `latchkey`.
pub fn env_var_name(app: &str, suffix: &str) -> String {
    let mut s: String = app
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    s.push('_');
    s.push_str(suffix);
    s
}

/// Resolves the global config directory: `$<APP>_CONFIG_DIR`, else `$XDG_CONFIG_HOME/<app>`
/// (when absolute, as the XDG spec requires), else `$HOME/.config/<app>`. Empty values count as
/// unset. `env` looks a variable up (the process environment in production).
pub fn resolve_config_dir(app: &str, env: &dyn Fn(&str) -> Option<OsString>) -> Result<PathBuf> {
    let get = |k: &str| env(k).filter(|v| !v.is_empty());
    let var = env_var_name(app, "CONFIG_DIR");
    if let Some(d) = get(&var) {
        return Ok(PathBuf::from(d));
    }
    if let Some(x) = get("XDG_CONFIG_HOME").map(PathBuf::from)
        && x.is_absolute()
    {
        return Ok(x.join(app));
    }
    if let Some(h) = get("HOME") {
        return Ok(PathBuf::from(h).join(".config").join(app));
    }
    Err(Error::NoConfigDir { env_var: var })
}

/// Finds a workspace-local `.<app>/` directory in `start` or one of its parents.
pub fn find_local_dir(app: &str, start: &Path) -> Option<PathBuf> {
    let name = format!(".{app}");
    start
        .ancestors()
        .map(|d| d.join(&name))
        .find(|d| d.is_dir())
}

/// Creates `dir` (and parents) if needed and makes sure it is private (0700 on Unix).
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(dir).map_err(|e| Error::io("create", dir, e))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(dir).map_err(|e| Error::io("read", dir, e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io("set permissions of", dir, e))?;
        }
    }
    Ok(())
}

/// Creates a workspace-local `.<app>/` in `dir` with a `.gitignore` of `*`, so its secrets never
/// get committed. Returns the directory.
pub fn create_local_dir(app: &str, dir: &Path) -> Result<PathBuf> {
    let local = dir.join(format!(".{app}"));
    ensure_private_dir(&local)?;
    let gi = local.join(".gitignore");
    if !gi.exists() {
        write_atomic(&gi, b"*\n", 0o600)?;
    }
    Ok(local)
}

/// Replaces `path` with `bytes` atomically: a temporary file in the same directory, written and
/// fsynced, renamed over the target, then the directory fsynced. Readers see the old or the new
/// content, never a mix; on error no temporary file is left behind. The file gets `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut rnd = [0u8; 6];
    let _ = getrandom::fill(&mut rnd);
    let suffix: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".{file_name}.{}.{suffix}.tmp", std::process::id()));

    let result = (|| -> io::Result<()> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("write", path, e));
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// One credentials file with its sidecar lock file (`credentials.json.lock`).
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
    app: String,
}

/// An exclusive lock on a credentials file; released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl CredentialStore {
    /// A store for the credentials file at `path`; `app` names the CLI in error hints.
    pub fn new(path: impl Into<PathBuf>, app: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            app: app.into(),
        }
    }

    /// The credentials file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sidecar lock file. It is never deleted: deleting a lock file lets two processes lock
    /// two different files.
    pub fn lock_path(&self) -> PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".lock");
        self.path.with_file_name(name)
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Reads the credentials; `Ok(None)` when there is no file. A file that cannot be parsed is
    /// an error naming the file and how to recover; it is left as it is.
    pub fn load(&self) -> Result<Option<Credentials>> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::CorruptCredentials {
                    path: self.path.clone(),
                    reason: format!("it cannot be read ({e})"),
                    app: self.app.clone(),
                });
            }
        };
        Credentials::parse(&bytes)
            .map(Some)
            .map_err(|reason| Error::CorruptCredentials {
                path: self.path.clone(),
                reason,
                app: self.app.clone(),
            })
    }

    /// Whether a credentials file exists (valid or not).
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Writes the credentials atomically with mode 0600, creating the directory (0700).
    pub fn save(&self, creds: &Credentials) -> Result<()> {
        ensure_private_dir(self.dir())?;
        write_atomic(&self.path, &creds.to_json(), 0o600)
    }

    /// Deletes the credentials file; `Ok(false)` when there was none.
    pub fn delete(&self) -> Result<bool> {
        match fs::remove_file(&self.path) {
            Ok(()) => {
                let _ = sync_dir(self.dir());
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("delete", &self.path, e)),
        }
    }

    /// Takes the exclusive lock, waiting up to [`LOCK_TIMEOUT`] for another process.
    pub async fn lock(&self) -> Result<StoreLock> {
        self.lock_with_timeout(LOCK_TIMEOUT).await
    }

    /// Takes the exclusive lock, waiting up to `timeout`.
    pub async fn lock_with_timeout(&self, timeout: Duration) -> Result<StoreLock> {
        let file = self.open_lock_file()?;
        let deadline = Instant::now() + timeout;
        let mut wait = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(StoreLock { _file: file }),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => {
                    return Err(Error::io("lock", self.lock_path(), e));
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::LockTimeout {
                    path: self.lock_path(),
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(25));
        }
    }

    /// Takes the exclusive lock, blocking the thread (for synchronous callers).
    pub fn lock_blocking(&self) -> Result<StoreLock> {
        let file = self.open_lock_file()?;
        file.lock()
            .map_err(|e| Error::io("lock", self.lock_path(), e))?;
        Ok(StoreLock { _file: file })
    }

    fn open_lock_file(&self) -> Result<File> {
        ensure_private_dir(self.dir())?;
        let lp = self.lock_path();
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        opts.open(&lp).map_err(|e| Error::io("open", lp, e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::credentials::tests::sample;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let m: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn config_dir_resolution_order() {
        let all = env_of(&[
            ("LATCHKEY_CONFIG_DIR", "/a"),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(
            resolve_config_dir("latchkey", &all).unwrap(),
            PathBuf::from("/a")
        );
        let xdg = env_of(&[
            ("LATCHKEY_CONFIG_DIR", ""),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(
            resolve_config_dir("latchkey", &xdg).unwrap(),
            PathBuf::from("/x/latchkey")
        );
        let rel_xdg = env_of(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")]);
        assert_eq!(
            resolve_config_dir("latchkey", &rel_xdg).unwrap(),
            PathBuf::from("/h/.config/latchkey")
        );
        let other_app = env_of(&[("MY_TOOL_CONFIG_DIR", "/m"), ("HOME", "/h")]);
        assert_eq!(
            resolve_config_dir("my-tool", &other_app).unwrap(),
            PathBuf::from("/m")
        );
        let none = env_of(&[]);
        let err = resolve_config_dir("latchkey", &none).unwrap_err();
        assert!(err.to_string().contains("LATCHKEY_CONFIG_DIR"));
    }

    #[test]
    fn local_dir_found_in_cwd_or_parent() {
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("a/b/c");
        fs::create_dir_all(&deep).unwrap();
        assert_eq!(find_local_dir("lk-test-none", &deep), None);
        let local = create_local_dir("lk-test", &t.path().join("a")).unwrap();
        assert_eq!(local, t.path().join("a/.lk-test"));
        assert_eq!(find_local_dir("lk-test", &deep), Some(local.clone()));
        assert_eq!(
            find_local_dir("lk-test", &t.path().join("a")),
            Some(local.clone())
        );
        assert_eq!(fs::read_to_string(local.join(".gitignore")).unwrap(), "*\n");
        // The nearest one wins.
        let nearer = create_local_dir("lk-test", &deep).unwrap();
        assert_eq!(find_local_dir("lk-test", &deep), Some(nearer));

        let paths = Paths {
            config_dir: t.path().join("cfg"),
            local_dir: Some(local.clone()),
        };
        assert_eq!(paths.credentials_file(), local.join(CREDENTIALS_FILE));
        assert!(paths.is_local());
    }

    #[cfg(unix)]
    #[test]
    fn modes_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("cfg");
        let store = CredentialStore::new(dir.join(CREDENTIALS_FILE), "latchkey");
        store.save(&sample()).unwrap();
        let dmode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        let fmode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);
        assert_eq!(fmode, 0o600);
        // An existing group-readable directory is tightened.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        store.save(&sample()).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let t = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(t.path().join(CREDENTIALS_FILE), "latchkey");
        store.save(&sample()).unwrap();
        let mut c = sample();
        c.created_at = 99;
        store.save(&c).unwrap();
        assert_eq!(store.load().unwrap().unwrap().created_at, 99);
        let names: Vec<String> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![CREDENTIALS_FILE.to_owned()]);

        // A failed write (target is a directory) cleans its temp file up.
        let bad = t.path().join("sub");
        fs::create_dir_all(bad.join("x")).unwrap();
        assert!(write_atomic(&bad.join("x"), b"data", 0o600).is_err());
        assert_eq!(fs::read_dir(&bad).unwrap().count(), 1);
    }

    #[test]
    fn corrupt_file_is_an_error_and_untouched() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join(CREDENTIALS_FILE);
        fs::write(&path, b"{ this is not json").unwrap();
        let store = CredentialStore::new(&path, "latchkey");
        let err = store.load().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(err.hint().unwrap().contains("latchkey login"));
        assert_eq!(fs::read(&path).unwrap(), b"{ this is not json");
    }

    #[test]
    fn missing_file_is_none_and_delete_reports() {
        let t = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(t.path().join(CREDENTIALS_FILE), "latchkey");
        assert!(store.load().unwrap().is_none());
        assert!(!store.delete().unwrap());
        store.save(&sample()).unwrap();
        assert!(store.delete().unwrap());
        assert!(!store.exists());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn lock_is_exclusive() {
        let t = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(t.path().join(CREDENTIALS_FILE), "latchkey");
        let guard = store.lock().await.unwrap();
        // A second handle (as another process would have) cannot take it...
        let err = store
            .lock_with_timeout(Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }));
        drop(guard);
        // ...until the first one is released.
        let _g = store
            .lock_with_timeout(Duration::from_millis(500))
            .await
            .unwrap();
        assert!(store.lock_path().ends_with("credentials.json.lock"));
    }

    #[test]
    fn lock_serialises_threads() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join(CREDENTIALS_FILE);
        let inside = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (path, inside, max_seen) = (path.clone(), inside.clone(), max_seen.clone());
                std::thread::spawn(move || {
                    let store = CredentialStore::new(path, "latchkey");
                    let _g = store.lock_blocking().unwrap();
                    let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    max_seen.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(max_seen.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn env_var_names() {
        assert_eq!(env_var_name("latchkey", "TOKEN"), "LATCHKEY_TOKEN");
        assert_eq!(env_var_name("my-tool", "API_KEY"), "MY_TOOL_API_KEY");
    }
}
