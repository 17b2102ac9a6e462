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
use crate::domain::ratelimit::RateLimiter;
use crate::http::pages::Templates;
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
    /// Device polling discipline.
    pub polls: PollTracker,
    /// Failed user-code entries per IP (RFC 8628 §5.1).
    pub user_code_failures: RateLimiter,
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
    hash_permits: Semaphore,
    hash_waiting: AtomicUsize,
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
    /// Connects the store, migrates, loads (or creates) signing keys.
    pub async fn new(config: Config, issuer: String, clock: SharedClock) -> anyhow::Result<Self> {
        let store = Store::connect(&config.database_url, config.backend).await?;
        store.migrate(clock.now()).await?;
        let mut keyset = KeySet::new(store.signing_keys().await?);
        if keyset.active(clock.now()).is_none() {
            let key = keys::generate();
            store.insert_signing_key(&key, clock.now()).await?;
            tracing::info!(kid = %key.kid, "generated a new Ed25519 signing key");
            keyset = KeySet::new(store.signing_keys().await?);
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
            polls: PollTracker::default(),
            user_code_failures: RateLimiter::new(10, 60),
            signin_per_ip: RateLimiter::new(30, 60),
            signin_per_account: RateLimiter::new(10, 300),
            anonymous_per_ip: RateLimiter::new(30, 600),
            clients: builtin(),
            templates: Templates::new(),
            hash_permits,
            hash_waiting: AtomicUsize::new(0),
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

    /// A snapshot of the signing keys.
    pub fn keyset(&self) -> KeySet {
        self.keys.read().map(|k| k.clone()).unwrap_or_default()
    }

    /// Reloads signing keys from the database (after a rotation by another replica).
    pub async fn reload_keys(&self) -> Result<(), StoreError> {
        let ks = KeySet::new(self.store.signing_keys().await?);
        if let Ok(mut k) = self.keys.write() {
            *k = ks;
        }
        Ok(())
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
