//! Operator actions run from `latchkeyd users ...`: disabling and re-enabling accounts.

use super::{Result, Store};

/// What disabling an account did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabledUser {
    /// The user id.
    pub user_id: String,
    /// Login sessions revoked (their refresh tokens stop working at once).
    pub sessions_revoked: u64,
    /// Web sign-ins ended.
    pub web_sessions_ended: u64,
}

impl Store {
    /// Disables the account with this (normalized) email and, atomically, revokes its login
    /// sessions and web sign-ins. `None` when no account has that email.
    pub async fn disable_user(&self, email: &str, now: i64) -> Result<Option<DisabledUser>> {
        let mut tx = self.begin_write().await?;
        let id: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(user_id) = id else {
            tx.rollback().await?;
            return Ok(None);
        };
        sqlx::query("UPDATE users SET disabled = 1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)",
        )
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
        let sessions_revoked = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let web_sessions_ended = sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
            .bind(&user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(Some(DisabledUser {
            user_id,
            sessions_revoked,
            web_sessions_ended,
        }))
    }

    /// Re-enables the account with this email. Returns whether such an account exists.
    pub async fn enable_user(&self, email: &str, now: i64) -> Result<bool> {
        let n = sqlx::query("UPDATE users SET disabled = 0, updated_at = $1 WHERE email = $2")
            .bind(now)
            .bind(email)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}
