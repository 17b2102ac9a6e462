//! Login sessions and their rotating refresh tokens.
//!
//! Every state change that must happen once (spending a device code, rotating a refresh
//! token) is a conditional `UPDATE` whose affected-row count decides who won, inside a write
//! transaction, so two concurrent requests can never both succeed.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store};
use crate::domain::secrets::new_id;

/// What a new session is made of.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The user.
    pub user_id: String,
    /// The active org.
    pub org_id: Option<String>,
    /// The client.
    pub client_id: String,
    /// Device name.
    pub name: Option<String>,
    /// `device`, `authorization_code`, `password`, ...
    pub method: String,
    /// Granted scope.
    pub scope: String,
    /// IP of the login.
    pub ip: Option<String>,
    /// User agent of the login.
    pub user_agent: Option<String>,
    /// When the user authenticated.
    pub auth_time: i64,
}

/// A session as stored.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// Id (`ses_...`), the `sid` claim.
    pub id: String,
    /// The user.
    pub user_id: String,
    /// Active org.
    pub org_id: Option<String>,
    /// The client.
    pub client_id: String,
    /// Device name.
    pub name: Option<String>,
    /// How it was created.
    pub method: String,
    /// Granted scope.
    pub scope: String,
    /// IP of the login.
    pub ip: Option<String>,
    /// User agent of the login.
    pub user_agent: Option<String>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last refresh.
    pub last_used_at: i64,
    /// Set once revoked.
    pub revoked_at: Option<i64>,
}

/// Result of a refresh-token rotation.
#[derive(Debug)]
pub enum RotateOutcome {
    /// Rotated: the new token is stored, the old one is spent.
    Rotated(Box<SessionRow>),
    /// The token was rotated moments ago (inside the grace window) and its successor was never
    /// used: a retry after a lost response. The same successor is handed out again.
    Retry(Box<SessionRow>),
    /// A spent token came back after its successor was used, or after the grace window: a sign
    /// of theft (RFC 9700 §4.14.2). The whole session was revoked.
    Reused(String),
    /// Unknown or expired, or its session is revoked.
    Invalid,
}

const COLS: &str = "id, user_id, org_id, client_id, name, method, scope, ip, user_agent, \
                    auth_time, created_at, last_used_at, revoked_at";

fn from_row(r: &AnyRow) -> Result<SessionRow> {
    Ok(SessionRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        org_id: r.try_get("org_id")?,
        client_id: r.try_get("client_id")?,
        name: r.try_get("name")?,
        method: r.try_get("method")?,
        scope: r.try_get("scope")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        auth_time: r.try_get("auth_time")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// Revokes a session inside a write transaction: marks it revoked and deletes its refresh
/// tokens, so none of them works from now on. Returns whether it was live.
pub(super) async fn revoke_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    now: i64,
) -> Result<bool> {
    let n = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM refresh_tokens WHERE session_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(n == 1)
}

pub(super) async fn insert_session(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    s: &NewSession,
    refresh_hash: &str,
    refresh_expires_at: i64,
    now: i64,
) -> Result<SessionRow> {
    let id = new_id("ses_");
    sqlx::query(
        "INSERT INTO sessions (id, user_id, org_id, client_id, name, method, scope, ip, user_agent, \
         auth_time, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(&id)
    .bind(&s.user_id)
    .bind(&s.org_id)
    .bind(&s.client_id)
    .bind(&s.name)
    .bind(&s.method)
    .bind(&s.scope)
    .bind(&s.ip)
    .bind(&s.user_agent)
    .bind(s.auth_time)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(refresh_hash)
    .bind(&id)
    .bind(now)
    .bind(refresh_expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(SessionRow {
        id,
        user_id: s.user_id.clone(),
        org_id: s.org_id.clone(),
        client_id: s.client_id.clone(),
        name: s.name.clone(),
        method: s.method.clone(),
        scope: s.scope.clone(),
        ip: s.ip.clone(),
        user_agent: s.user_agent.clone(),
        auth_time: s.auth_time,
        created_at: now,
        last_used_at: now,
        revoked_at: None,
    })
}

impl Store {
    /// Creates a session with its first refresh token.
    pub async fn create_session(
        &self,
        s: &NewSession,
        refresh_hash: &str,
        refresh_expires_at: i64,
        now: i64,
    ) -> Result<SessionRow> {
        let mut tx = self.begin_write().await?;
        let row = insert_session(&mut tx, s, refresh_hash, refresh_expires_at, now).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Spends an approved device code and creates its session, atomically. `None` when the
    /// code was not (or no longer) approved: exactly one poller gets the tokens.
    pub async fn redeem_device(
        &self,
        code_hash: &str,
        s: &NewSession,
        refresh_hash: &str,
        refresh_expires_at: i64,
        now: i64,
    ) -> Result<Option<SessionRow>> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE device_codes SET status = 'consumed' WHERE code_hash = $1 AND status = 'approved'",
        )
        .bind(code_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let row = insert_session(&mut tx, s, refresh_hash, refresh_expires_at, now).await?;
        tx.commit().await?;
        Ok(Some(row))
    }

    /// Rotates a refresh token: spends `old_hash` and stores `new_hash` (its deterministic
    /// successor) for the same session. The spend is the first statement, so concurrent
    /// rotations queue and exactly one rotates; the others see a fresh rotation inside
    /// `grace_s` and get [`RotateOutcome::Retry`] with the same successor. A spent token seen
    /// after its successor was used, or after the grace window, revokes the session.
    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: i64,
        now: i64,
        grace_s: i64,
    ) -> Result<RotateOutcome> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = $1 \
             WHERE token_hash = $2 AND rotated_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(old_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            let spent = sqlx::query(
                "SELECT rotated_at, session_id FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(old_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(spent) = spent else {
                tx.rollback().await?;
                return Ok(RotateOutcome::Invalid);
            };
            let rotated_at: Option<i64> = spent.try_get("rotated_at")?;
            let session_id: String = spent.try_get("session_id")?;
            let Some(rotated_at) = rotated_at else {
                // Not rotated, so the update failed on expiry.
                tx.rollback().await?;
                return Ok(RotateOutcome::Invalid);
            };
            let successor_unused: Option<i64> = sqlx::query_scalar(
                "SELECT expires_at FROM refresh_tokens WHERE token_hash = $1 AND rotated_at IS NULL",
            )
            .bind(new_hash)
            .fetch_optional(&mut *tx)
            .await?;
            if now - rotated_at <= grace_s && successor_unused.is_some() {
                let sql =
                    format!("SELECT {COLS} FROM sessions WHERE id = $1 AND revoked_at IS NULL");
                let session = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&session_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.rollback().await?;
                return Ok(match session.as_ref().map(from_row).transpose()? {
                    Some(s) => RotateOutcome::Retry(Box::new(s)),
                    None => RotateOutcome::Invalid,
                });
            }
            revoke_in(&mut tx, &session_id, now).await?;
            tx.commit().await?;
            return Ok(RotateOutcome::Reused(session_id));
        }
        let sql = format!(
            "SELECT {COLS} FROM sessions WHERE id = \
             (SELECT session_id FROM refresh_tokens WHERE token_hash = $1)"
        );
        let session = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(old_hash)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(session) = session.as_ref().map(from_row).transpose()? else {
            tx.rollback().await?;
            return Ok(RotateOutcome::Invalid);
        };
        if session.revoked_at.is_some() {
            tx.rollback().await?;
            return Ok(RotateOutcome::Invalid);
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(new_hash)
        .bind(&session.id)
        .bind(now)
        .bind(new_expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&session.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RotateOutcome::Rotated(Box::new(SessionRow {
            last_used_at: now,
            ..session
        })))
    }

    /// The session a refresh token belongs to (rotated or not).
    pub async fn session_by_refresh(&self, token_hash: &str) -> Result<Option<SessionRow>> {
        let sql = format!(
            "SELECT {COLS} FROM sessions WHERE id = \
             (SELECT session_id FROM refresh_tokens WHERE token_hash = $1)"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// A session by id.
    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>> {
        let sql = format!("SELECT {COLS} FROM sessions WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// A user's live sessions, most recently used first.
    pub async fn sessions_of_user(&self, user_id: &str) -> Result<Vec<SessionRow>> {
        let sql = format!(
            "SELECT {COLS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL \
             ORDER BY last_used_at DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Revokes a session: its refresh tokens stop working at once. Returns whether it was live.
    pub async fn revoke_session(&self, id: &str, now: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let live = revoke_in(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(live)
    }

    /// Revokes one of `user_id`'s sessions. Returns false when it is not theirs or not live.
    pub async fn revoke_user_session(&self, user_id: &str, id: &str, now: i64) -> Result<bool> {
        let owned: Option<String> = sqlx::query_scalar(
            "SELECT id FROM sessions WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        match owned {
            Some(_) => self.revoke_session(id, now).await,
            None => Ok(false),
        }
    }

    /// Whether a refresh token is live: known, not rotated, not expired, session not revoked.
    pub async fn refresh_token_live(&self, token_hash: &str, now: i64) -> Result<bool> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT COUNT(*) FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
             WHERE r.token_hash = $1 AND r.rotated_at IS NULL AND r.expires_at > $2 \
             AND s.revoked_at IS NULL",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(n.unwrap_or(0) > 0)
    }
}
