//! Signing keys. All replicas read the same keys from the database.

use sqlx::Row;

use super::{Result, Store};
use crate::domain::keys::{KeyEntry, NewKey};

impl Store {
    /// Every stored key.
    pub async fn signing_keys(&self) -> Result<Vec<KeyEntry>> {
        let rows = sqlx::query("SELECT kid, private_key, created_at, retired_at FROM signing_keys")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let kid: String = r.try_get("kid")?;
            let private: String = r.try_get("private_key")?;
            match KeyEntry::from_stored(
                kid,
                &private,
                r.try_get("created_at")?,
                r.try_get("retired_at")?,
            ) {
                Ok(k) => out.push(k),
                Err(e) => tracing::error!(error = %e, "skipping unreadable signing key"),
            }
        }
        Ok(out)
    }

    /// Stores a new key.
    pub async fn insert_signing_key(&self, key: &NewKey, now: i64) -> Result<()> {
        sqlx::query("INSERT INTO signing_keys (kid, private_key, created_at) VALUES ($1, $2, $3)")
            .bind(&key.kid)
            .bind(&key.private_b64)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
