//! Shared server state: configuration, the store, signing keys, the clock, in-memory limiters
//! and the bounded password-hashing pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::domain::clients::{RegisteredClient, builtin};
use crate::domain::clock::SharedClock;
use crate::domain::device::PollTracker;
use crate::domain::keys::{self, KeySet};
use crate::domain::ratelimit::{Backoff, GuessLimits, RateLimiter};
use crate::federation::{Federation, UpstreamConfig};
use crate::http::pages::Templates;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Everything handlers share.
pub struct AppState {
    /// Validated configuration.
    pub config: Config,
    /// The issuer: the public URL without a trailing slash.
    pub issuer: String,
    /// `aud` of access tokens.
    pub audience: String,
    /// Whether cookies get `Secure` (public URL is https).
    pub secure_cookies: bool,
    /// The database.
    pub store: Store,
    /// The time.
    pub clock: SharedClock,
    /// Signing keys, reloaded from the database.
    pub keys: RwLock<KeySet>,
    /// Key of the refresh-token derivation (`domain::tokens::derive_refresh`), shared by
    /// every replica through the database.
    pub refresh_secret: Vec<u8>,
    /// Device polling discipline.
    pub polls: PollTracker,
    /// Wrong user-code entries per IP, per user and in all (RFC 8628 §5.1).
    pub user_code_guesses: GuessLimits,
    /// Back-off per account after failed password sign-ins.
    pub password_backoff: Backoff,
    /// Token requests per client and IP; `None` when turned off.
    pub token_per_client: Option<RateLimiter>,
    /// Sign-in attempts per IP.
    pub signin_per_ip: RateLimiter,
    /// Failed sign-ins per account.
    pub signin_per_account: RateLimiter,
    /// Anonymous sign-ups per IP.
    pub anonymous_per_ip: RateLimiter,
    /// Registered clients.
    pub clients: Vec<RegisteredClient>,
    /// HTML templates.
    pub templates: Templates,
    /// Counters and histograms for `/metrics`.
    pub metrics: Metrics,
    /// The client side of upstream sign-in (HTTP client, discovery and key caches).
    pub federation: Federation,
    hash_permits: Semaphore,
    hash_waiting: AtomicUsize,
}

/// How long a signing key stays published after it stops signing: the lifetime of the tokens it
/// signed plus clock skew.
pub fn key_grace(config: &Config) -> i64 {
    config.access_token_ttl + keys::KEY_SKEW_SECS
}

/// The state as handlers receive it.
pub type SharedState = Arc<AppState>;

/// Why a password hash could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Too many sign-ins are waiting; refused fast instead of queueing without bound.
    #[error("too many sign-ins at once; try again in a few seconds")]
    Busy,
    /// The hashing thread failed.
    #[error("password hashing failed: {0}")]
    Failed(String),
}

impl AppState {
    /// Connects the store, migrates (unless `auto_migrate` is off, then checks the schema is
    /// current), loads signing keys, creating the first one in an empty database.
    pub async fn new(config: Config, issuer: String, clock: SharedClock) -> anyhow::Result<Self> {
        let store = Store::connect_with(
            &config.database_url,
            config.backend,
            config.database_max_connections,
        )
        .await?;
        if config.auto_migrate {
            store.migrate(clock.now()).await?;
        } else {
            let status = store.schema_status().await?;
            if !status.is_current() {
                anyhow::bail!(
                    "the database needs migrations {:?}; run `latchkeyd migrate` first \
                     (or set auto_migrate = true)",
                    status.pending
                );
            }
        }
        let key = keys::generate();
        if store.ensure_signing_key(&key, clock.now()).await? {
            tracing::info!(kid = %key.kid, "generated the first Ed25519 signing key");
        }
        let keyset =
            KeySet::new(store.signing_keys().await?).published(clock.now(), key_grace(&config));
        let refresh_secret = store
            .server_secret("refresh_derivation", clock.now())
            .await?;
        let bound = crate::domain::device::guess_bound_log2(
            config.user_code_length,
            config.user_code_global_failures,
            config.max_pending_device_codes,
        );
        if bound > -32.0 {
            tracing::info!(
                bound_log2 = format!("{bound:.1}"),
                "user-code guessing is bounded by 2^{bound:.1} per code lifetime; \
                 user_code_length = 16 keeps it below 2^-32 (docs/security.md)"
            );
        }
        let audience = config.audience.clone().unwrap_or_else(|| issuer.clone());
        let secure_cookies = issuer.starts_with("https://");
        let hash_permits = Semaphore::new(config.hash_concurrency);
        Ok(Self {
            issuer,
            audience,
            secure_cookies,
            store,
            clock,
            keys: RwLock::new(keyset),
            refresh_secret,
            polls: PollTracker::default(),
            user_code_guesses: GuessLimits::new(config.user_code_global_failures),
            password_backoff: Backoff::new(3, 300),
            token_per_client: (config.token_rate_limit > 0)
                .then(|| RateLimiter::new(config.token_rate_limit, 60)),
            signin_per_ip: RateLimiter::new(30, 60),
            signin_per_account: RateLimiter::new(10, 300),
            anonymous_per_ip: RateLimiter::new(30, 600),
            clients: builtin(),
            templates: Templates::new(),
            hash_permits,
            hash_waiting: AtomicUsize::new(0),
            metrics: Metrics::default(),
            federation: Federation::new(),
            config,
        })
    }

    /// Current unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A registered client by id.
    pub fn client(&self, id: &str) -> Option<&RegisteredClient> {
        self.clients.iter().find(|c| c.id == id)
    }

    /// A configured upstream provider by id.
    pub fn upstream(&self, id: &str) -> Option<&UpstreamConfig> {
        self.config.upstreams.iter().find(|p| p.id == id)
    }

    /// A snapshot of the signing keys.
    pub fn keyset(&self) -> KeySet {
        self.keys.read().map(|k| k.clone()).unwrap_or_default()
    }

    /// Reloads signing keys from the database (after a rotation by another replica), keeping
    /// the ones still published.
    pub async fn reload_keys(&self) -> Result<(), StoreError> {
        let ks = KeySet::new(self.store.signing_keys().await?)
            .published(self.now(), key_grace(&self.config));
        if let Ok(mut k) = self.keys.write() {
            *k = ks;
        }
        Ok(())
    }

    /// Key upkeep, run by every replica every `key_reload_interval`: rotates when the schedule
    /// says so (one replica wins), deletes retired keys, reloads.
    pub async fn maintain_keys(&self) -> Result<(), StoreError> {
        let now = self.now();
        let grace = key_grace(&self.config);
        let interval = self.config.key_rotation_interval;
        let stored = KeySet::new(self.store.signing_keys().await?);
        // Checked here first so that replicas take the lock only when a rotation is due.
        let due = stored
            .keys()
            .iter()
            .map(|k| k.created_at)
            .max()
            .is_none_or(|newest| newest <= now - interval);
        if interval > 0 && due {
            let key = keys::generate();
            let activates_at = now + self.config.key_activation_delay;
            if self
                .store
                .rotate_signing_key_if_due(&key, now, activates_at, now - interval)
                .await?
            {
                tracing::info!(kid = %key.kid, activates_at, "scheduled signing key rotation");
            }
        }
        let retired = stored.retired(now, grace);
        if !retired.is_empty() {
            let n = self.store.delete_signing_keys(&retired).await?;
            tracing::info!(keys = n, "deleted retired signing keys");
        }
        self.reload_keys().await
    }

    /// Periodic clean-up: expired codes and web sessions, idle anonymous users.
    pub async fn housekeeping(&self) {
        let now = self.now();
        match self.store.purge_expired(now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged expired rows"),
            Err(e) => tracing::warn!(error = %e, "purge of expired rows failed"),
        }
        match self
            .store
            .purge_idle_anonymous(now - self.config.anonymous_idle_ttl)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(users = n, "deleted idle anonymous users"),
            Err(e) => tracing::warn!(error = %e, "purge of idle anonymous users failed"),
        }
    }

    /// Runs the configured invite hook (if any) to deliver an invitation, in the environment
    /// of [`hook_environment`]. Failures are logged (without the link, which is a secret) and
    /// do not fail the invitation: the inviter is shown the link either way.
    pub async fn run_invite_hook(&self, email: &str, org: &str, role: &str, link: &str) {
        let Some(program) = self.config.invite_hook.clone() else {
            return;
        };
        let (email, org, role, link) = (
            email.to_owned(),
            org.to_owned(),
            role.to_owned(),
            link.to_owned(),
        );
        let result = tokio::task::spawn_blocking(move || {
            std::process::Command::new(&program)
                .env_clear()
                .envs(hook_environment(std::env::vars_os()))
                .env("LATCHKEY_INVITE_EMAIL", email)
                .env("LATCHKEY_INVITE_ORG", org)
                .env("LATCHKEY_INVITE_ROLE", role)
                .env("LATCHKEY_INVITE_LINK", link)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
        })
        .await;
        match result {
            Ok(Ok(s)) if s.success() => tracing::info!("invite hook delivered an invitation"),
            Ok(Ok(s)) => tracing::warn!(status = %s, "invite hook failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "invite hook could not run"),
            Err(e) => tracing::warn!(error = %e, "invite hook panicked"),
        }
    }

    /// Runs CPU-heavy password work on a blocking thread, at most `hash_concurrency` at once.
    /// When 16 requests per permit already wait, refuses at once so a flood of sign-ins cannot
    /// starve everything else.
    pub async fn hash_work<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let limit = self.config.hash_concurrency * 16;
        if self.hash_waiting.fetch_add(1, Ordering::SeqCst) >= limit {
            self.hash_waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(HashError::Busy);
        }
        let permit =
            tokio::time::timeout(Duration::from_secs(10), self.hash_permits.acquire()).await;
        self.hash_waiting.fetch_sub(1, Ordering::SeqCst);
        let _permit = match permit {
            Ok(Ok(p)) => p,
            _ => return Err(HashError::Busy),
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashError::Failed(e.to_string()))
    }
}

/// The part of latchkeyd's environment a hook program gets: what a program needs to run
/// (`PATH`, `HOME`, locale, time zone, temporary directory, user), never latchkeyd's settings
/// and secrets (`LATCHKEYD_SECRET_KEY`, the database URL, upstream client secrets, whatever
/// variable `client_secret_env` names).
pub fn hook_environment(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    const KEEP: [&str; 8] = [
        "PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL",
    ];
    vars.filter(|(k, _)| {
        k.to_str()
            .is_some_and(|k| KEEP.contains(&k) || k.starts_with("LC_"))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn hooks_get_no_settings_or_secrets() {
        let vars = [
            ("PATH", "/usr/bin"),
            ("HOME", "/var/lib/latchkeyd"),
            ("LC_ALL", "C.UTF-8"),
            ("LATCHKEYD_SECRET_KEY", "00ff"),
            ("LATCHKEYD_DATABASE_URL", "postgres://u:pw@db/latchkey"),
            ("LATCHKEYD_UPSTREAM_GOOGLE_CLIENT_SECRET", "g-secret"),
            ("GOOGLE_CLIENT_SECRET", "g-secret"),
            ("AWS_SECRET_ACCESS_KEY", "aws"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let kept: Vec<String> = hook_environment(vars.into_iter())
            .into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(kept, ["PATH", "HOME", "LC_ALL"]);
    }
}
