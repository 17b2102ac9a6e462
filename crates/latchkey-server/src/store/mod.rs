//! Storage: one [`Store`] over sqlx's `Any` driver, so each query is written once for SQLite
//! and PostgreSQL (placeholders are `$N`, which both accept). Per-backend files exist only for
//! migrations (`migrations/{sqlite,postgres}`).

mod admin;
mod api_keys;
mod codes;
mod device;
mod federation;
mod keys;
mod orgs;
mod secrets;
mod sessions;
mod users;
mod web;

pub use admin::DisabledUser;
pub use api_keys::{ApiKeyRow, KEY_CACHE_TTL_S};
pub use codes::{AuthCodeRow, RedeemOutcome};
pub use device::DeviceRow;
pub use federation::{
    IdentityRow, OrgDomainRow, OrgSsoRow, PendingLinkRow, SsoRequirement, UnlinkError,
    UpstreamLoginRow,
};
pub use orgs::{InvitationRow, MemberRow, OrgChangeError, OrgRow};
pub use sessions::{NewSession, RotateOutcome, SessionRow};
pub use users::{MembershipRow, UserRow};
pub use web::WebSessionRow;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::time::Duration;

use crate::config::Backend;

/// A storage failure. Internal: mapped to a generic 500 by the HTTP layer and logged once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A uniqueness constraint was hit.
    #[error("already exists")]
    Conflict,
    /// The schema in the database is newer than this binary.
    #[error("the database schema (version {0}) is newer than this latchkeyd; upgrade latchkeyd")]
    SchemaTooNew(i64),
}

/// Turns unique-constraint violations into [`StoreError::Conflict`].
fn map_unique(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Database(e),
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// Migrations: (version, name, sqlite sql, postgres sql), in increasing version order.
/// Versions need not be contiguous: the runner applies every listed version the database has
/// not recorded yet, so a migration numbered below one already applied still runs. Each
/// migration must be transactional SQL (no `CREATE INDEX CONCURRENTLY`): all pending ones run
/// in one transaction.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "auth_codes",
        include_str!("../../migrations/sqlite/0002_auth_codes.sql"),
        include_str!("../../migrations/postgres/0002_auth_codes.sql"),
    ),
    (
        3,
        "api_keys",
        include_str!("../../migrations/sqlite/0003_api_keys.sql"),
        include_str!("../../migrations/postgres/0003_api_keys.sql"),
    ),
    (
        4,
        "invitations",
        include_str!("../../migrations/sqlite/0004_invitations.sql"),
        include_str!("../../migrations/postgres/0004_invitations.sql"),
    ),
    (
        5,
        "server_secrets",
        include_str!("../../migrations/sqlite/0005_server_secrets.sql"),
        include_str!("../../migrations/postgres/0005_server_secrets.sql"),
    ),
    (
        6,
        "federation",
        include_str!("../../migrations/sqlite/0006_federation.sql"),
        include_str!("../../migrations/postgres/0006_federation.sql"),
    ),
    (
        20,
        "key_rotation",
        include_str!("../../migrations/sqlite/0020_key_rotation.sql"),
        include_str!("../../migrations/postgres/0020_key_rotation.sql"),
    ),
];

/// PostgreSQL advisory lock ids (`pg_advisory_xact_lock`), so concurrent replicas migrate
/// once and rotate keys once. On SQLite `BEGIN IMMEDIATE` serializes writers instead.
const LOCK_MIGRATIONS: i64 = 0x6c6b_0001;
/// Lock id of signing-key changes.
const LOCK_KEYS: i64 = 0x6c6b_0002;

/// Where the database schema stands relative to this binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Versions this binary knows and the database has not recorded.
    pub pending: Vec<i64>,
    /// Versions the database recorded that this binary does not know (a newer latchkeyd
    /// migrated it).
    pub unknown: Vec<i64>,
}

impl SchemaStatus {
    /// Whether every migration this binary needs is applied (a newer schema is fine for a
    /// running server: migrations only add).
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Connection pool figures, for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    /// Open connections.
    pub size: u32,
    /// Open and idle connections.
    pub idle: u32,
    /// The pool's upper bound.
    pub max: u32,
}

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// Where write transactions ([`Store::begin_write`]) run. On SQLite a pool of one
    /// connection: writers then queue for it in order without blocking a thread, instead of
    /// contending for the database lock in SQLite's busy handler, which sleeps in steps of up
    /// to 100 ms. On PostgreSQL the same pool as reads.
    writer: AnyPool,
    backend: Backend,
    /// API keys recently exchanged at the token endpoint (see [`Store::api_key_for_grant`]).
    key_cache: std::sync::Arc<api_keys::KeyCache>,
}

impl Store {
    /// Connects (creating a SQLite file if missing) and configures each connection, with the
    /// default pool size (8 for SQLite, 16 for PostgreSQL).
    pub async fn connect(url: &str, backend: Backend) -> Result<Store> {
        let max = match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        };
        Self::connect_with(url, backend, max).await
    }

    /// Connects with at most `max` connections (on SQLite one of them is the writer).
    pub async fn connect_with(url: &str, backend: Backend, max: u32) -> Result<Store> {
        install_default_drivers();
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = |max: u32| {
            AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(10))
                // A SQLite connection is a file handle in this process: there is nothing to
                // test, and the test is a round trip to the connection's thread per query.
                .test_before_acquire(backend == Backend::Postgres)
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            )
                            .await?;
                        }
                        Ok(())
                    })
                })
        };
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let (pool, writer) = match backend {
            Backend::Sqlite if !in_memory && max > 1 => {
                let pool = options(max - 1).connect(&url).await?;
                let writer = options(1).connect(&url).await?;
                (pool, writer)
            }
            _ => {
                let pool = options(max).connect(&url).await?;
                (pool.clone(), pool)
            }
        };
        Ok(Store {
            pool,
            writer,
            backend,
            key_cache: Default::default(),
        })
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending migrations, all in one transaction, and returns the versions applied.
    /// Safe to run from several processes at once: on PostgreSQL an advisory lock makes the
    /// others wait and then find nothing left to do; on SQLite the write lock does. Refuses a
    /// database that recorded a migration this binary does not know.
    pub async fn migrate(&self, now: i64) -> Result<Vec<i64>> {
        let mut tx = self.begin_locked(LOCK_MIGRATIONS).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
             version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await?;
        let status = schema_status(&applied);
        if let Some(v) = status.unknown.iter().max() {
            return Err(StoreError::SchemaTooNew(*v));
        }
        let mut done = Vec::new();
        for (version, name, sqlite, postgres) in MIGRATIONS {
            if !status.pending.contains(version) {
                continue;
            }
            let sql = match self.backend {
                Backend::Sqlite => *sqlite,
                Backend::Postgres => *postgres,
            };
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(*version)
            .bind(*name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            done.push(*version);
        }
        tx.commit().await?;
        for (version, name, _, _) in MIGRATIONS.iter().filter(|m| done.contains(&m.0)) {
            tracing::info!(version, name, "applied migration");
        }
        Ok(done)
    }

    /// Compares the migrations recorded in the database with the ones this binary knows.
    pub async fn schema_status(&self) -> Result<SchemaStatus> {
        let exists = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM pg_catalog.pg_tables \
                 WHERE schemaname = current_schema() AND tablename = 'schema_migrations'"
            }
        };
        let n: i64 = sqlx::query_scalar(exists).fetch_one(&self.pool).await?;
        let applied: Vec<i64> = if n == 0 {
            Vec::new()
        } else {
            sqlx::query_scalar("SELECT version FROM schema_migrations")
                .fetch_all(&self.pool)
                .await?
        };
        Ok(schema_status(&applied))
    }

    /// Whether the database answers and every migration this binary needs is applied.
    pub async fn ready(&self) -> Result<bool> {
        Ok(self.schema_status().await?.is_current())
    }

    /// Connection pool figures.
    pub fn pool_stats(&self) -> PoolStats {
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        PoolStats {
            size,
            idle: idle.min(size),
            max: self.pool.options().get_max_connections(),
        }
    }

    /// Starts a write transaction that holds `lock` until it ends: a transaction-scoped
    /// advisory lock on PostgreSQL, the database write lock on SQLite.
    async fn begin_locked(&self, lock: i64) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // `pg_advisory_xact_lock` returns `void`, which the Any driver cannot decode.
            sqlx::query("SELECT 1 AS locked FROM pg_advisory_xact_lock($1)")
                .bind(lock)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so two writers queue instead of failing on lock upgrade.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        })
    }

    /// Deletes expired device codes and web sessions; returns how many rows went.
    pub async fn purge_expired(&self, now: i64) -> Result<u64> {
        let a = sqlx::query("DELETE FROM device_codes WHERE expires_at < $1")
            .bind(now - 3600)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let c = sqlx::query("DELETE FROM auth_codes WHERE expires_at < $1")
            .bind(now - 3600)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let b = sqlx::query("DELETE FROM web_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let mut d = 0;
        for table in ["upstream_logins", "pending_links"] {
            d += sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE expires_at < $1"
            )))
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(a + b + c + d)
    }

    /// Device authorizations still waiting for the user (all replicas).
    pub async fn pending_device_flows(&self, now: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM device_codes WHERE status = 'pending' AND expires_at > $1",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Closes the pool (used at shutdown so SQLite checkpoints its WAL).
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

fn schema_status(applied: &[i64]) -> SchemaStatus {
    SchemaStatus {
        pending: MIGRATIONS
            .iter()
            .map(|m| m.0)
            .filter(|v| !applied.contains(v))
            .collect(),
        unknown: applied
            .iter()
            .copied()
            .filter(|v| !MIGRATIONS.iter().any(|m| m.0 == *v))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_unique() {
        for w in MIGRATIONS.windows(2) {
            assert!(w[0].0 < w[1].0, "migration {} is out of order", w[1].0);
        }
        for (v, name, sqlite, postgres) in MIGRATIONS {
            assert!(!name.is_empty() && !sqlite.trim().is_empty() && !postgres.trim().is_empty());
            assert!(
                !postgres.contains("CONCURRENTLY"),
                "migration {v} must be transactional"
            );
        }
    }

    #[test]
    fn gaps_in_versions_are_applied() {
        let all: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
        assert!(schema_status(&all).is_current());
        // A database that has the last migration but not an earlier one (a lower number added
        // later) still gets the earlier one.
        let last = all[all.len() - 1];
        let st = schema_status(&[last]);
        assert_eq!(st.pending, all[..all.len() - 1].to_vec());
        assert!(st.unknown.is_empty());
        let st = schema_status(&[1, 9999]);
        assert_eq!(st.unknown, vec![9999]);
    }
}
