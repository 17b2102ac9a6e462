//! Server-wide secrets shared by every replica through the database.

use super::{Result, Store};

impl Store {
    /// A server-wide secret by name, created (32 random bytes) on first use. Replicas racing to
    /// create it all end up with the one that was stored first.
    pub async fn server_secret(&self, name: &str, now: i64) -> Result<Vec<u8>> {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let fresh = URL_SAFE_NO_PAD.encode(crate::domain::secrets::random_bytes::<32>());
        sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(&fresh)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let stored: String = sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        URL_SAFE_NO_PAD
            .decode(stored)
            .map_err(|e| super::StoreError::Database(sqlx::Error::Decode(Box::new(e))))
    }
}
