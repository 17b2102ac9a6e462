//! Web sign-in sessions (the browser cookie), stored by hash.

use sqlx::Row;

use super::{Result, Store};

/// A web session joined with its user.
#[derive(Debug, Clone)]
pub struct WebSessionRow {
    /// The signed-in user.
    pub user_id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

impl Store {
    /// Stores a web session.
    pub async fn create_web_session(
        &self,
        id_hash: &str,
        user_id: &str,
        now: i64,
        expires_at: i64,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, user_id, created_at, expires_at, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .bind(ip)
        .bind(user_agent)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A live web session by hash.
    pub async fn web_session(&self, id_hash: &str, now: i64) -> Result<Option<WebSessionRow>> {
        let row = sqlx::query(
            "SELECT w.user_id, w.created_at, w.expires_at FROM web_sessions w \
             JOIN users u ON u.id = w.user_id \
             WHERE w.id_hash = $1 AND w.expires_at > $2 AND u.disabled = 0",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(WebSessionRow {
                user_id: r.try_get("user_id")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends a web session.
    pub async fn delete_web_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
