//! Storage: one [`Store`] over sqlx's `Any` driver, so each query is written once for SQLite
//! and PostgreSQL (placeholders are `$N`, which both accept). Per-backend files exist only for
//! migrations (`migrations/{sqlite,postgres}`).

mod codes;
mod device;
mod keys;
mod sessions;
mod users;
mod web;

pub use codes::{AuthCodeRow, RedeemOutcome};
pub use device::DeviceRow;
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

/// Migrations, in order: (version, name, sqlite sql, postgres sql).
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
];

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects (creating a SQLite file if missing) and configures each connection.
    pub async fn connect(url: &str, backend: Backend) -> Result<Store> {
        install_default_drivers();
        let (url, max) = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                (format!("{url}{sep}mode=rwc"), 8)
            }
            Backend::Sqlite => (url.to_owned(), 8),
            Backend::Postgres => (url.to_owned(), 16),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
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
            .connect(&url)
            .await?;
        Ok(Store { pool, backend })
    }

    /// Applies pending migrations; refuses a schema newer than this binary knows.
    pub async fn migrate(&self, now: i64) -> Result<()> {
        self.pool
            .execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .await?;
        let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await?;
        let current = current.unwrap_or(0);
        let latest = MIGRATIONS.last().map_or(0, |m| m.0);
        if current > latest {
            return Err(StoreError::SchemaTooNew(current));
        }
        for (version, name, sqlite, postgres) in MIGRATIONS {
            if *version <= current {
                continue;
            }
            let sql = match self.backend {
                Backend::Sqlite => *sqlite,
                Backend::Postgres => *postgres,
            };
            let mut tx = self.begin_write().await?;
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(*version)
            .bind(*name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::info!(version, name, "applied migration");
        }
        Ok(())
    }

    /// Whether the database answers and the schema is current.
    pub async fn ready(&self) -> Result<bool> {
        let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(current == MIGRATIONS.last().map(|m| m.0))
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so two writers queue instead of failing on lock upgrade.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
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
        Ok(a + b + c)
    }

    /// Closes the pool (used at shutdown so SQLite checkpoints its WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
