//! Signing keys. All replicas read the same keys from the database; changes to the set (the
//! first key, a rotation) happen under a lock so concurrent replicas make each change once.

use sqlx::Row;

use super::{LOCK_KEYS, Result, Store};
use crate::domain::keys::{KeyEntry, NewKey};

impl Store {
    /// Every stored key.
    pub async fn signing_keys(&self) -> Result<Vec<KeyEntry>> {
        let rows = sqlx::query(
            "SELECT kid, private_key, created_at, COALESCE(activates_at, created_at) AS activates_at, \
             retired_at FROM signing_keys",
        )
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
                r.try_get("activates_at")?,
                r.try_get("retired_at")?,
            ) {
                Ok(k) => out.push(k),
                Err(e) => tracing::error!(error = %e, "skipping unreadable signing key"),
            }
        }
        Ok(out)
    }

    /// Stores a new key that is published now and signs from `activates_at`.
    pub async fn insert_signing_key(
        &self,
        key: &NewKey,
        now: i64,
        activates_at: i64,
    ) -> Result<()> {
        let mut tx = self.begin_locked(LOCK_KEYS).await?;
        insert_key(&mut tx, key, now, activates_at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores `key`, active at once, unless the database holds a key that can sign now. Returns
    /// whether it was stored. Replicas starting together on an empty database store one key,
    /// not one each.
    pub async fn ensure_signing_key(&self, key: &NewKey, now: i64) -> Result<bool> {
        let mut tx = self.begin_locked(LOCK_KEYS).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM signing_keys WHERE COALESCE(activates_at, created_at) <= $1 \
             AND (retired_at IS NULL OR retired_at > $1)",
        )
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if n > 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_key(&mut tx, key, now, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The scheduled rotation: stores `key` (signing from `activates_at`) only if the newest
    /// key was created at or before `due_if_newest_before`. Returns whether it was stored; of
    /// several replicas finding the rotation due at once, one stores a key.
    pub async fn rotate_signing_key_if_due(
        &self,
        key: &NewKey,
        now: i64,
        activates_at: i64,
        due_if_newest_before: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_locked(LOCK_KEYS).await?;
        let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(created_at) FROM signing_keys")
            .fetch_one(&mut *tx)
            .await?;
        if newest.is_some_and(|t| t > due_if_newest_before) {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_key(&mut tx, key, now, activates_at).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes keys by id (retired keys: past their publication). Returns how many went.
    pub async fn delete_signing_keys(&self, kids: &[String]) -> Result<u64> {
        let mut n = 0;
        for kid in kids {
            n += sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                .bind(kid)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(n)
    }
}

async fn insert_key(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    key: &NewKey,
    now: i64,
    activates_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, private_key, created_at, activates_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&key.kid)
    .bind(&key.private_b64)
    .bind(now)
    .bind(activates_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
