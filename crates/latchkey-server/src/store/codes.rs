//! Authorization codes (RFC 6749 §4.1.2): single use; a second use revokes what the first
//! one issued.

use sqlx::Row;

use super::sessions::{insert_session, revoke_in};
use super::{NewSession, Result, SessionRow, Store};

/// An authorization code as stored (the code itself only as a hash).
#[derive(Debug, Clone)]
pub struct AuthCodeRow {
    /// SHA-256 of the code.
    pub code_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The approving user.
    pub user_id: String,
    /// The active org chosen.
    pub org_id: Option<String>,
    /// The exact redirect URI of the authorization request.
    pub redirect_uri: String,
    /// Granted scope.
    pub scope: String,
    /// The S256 challenge.
    pub code_challenge: String,
    /// OIDC nonce.
    pub nonce: Option<String>,
    /// Session name requested by the client.
    pub device_name: Option<String>,
    /// IP of the browser that approved.
    pub ip: Option<String>,
    /// User agent of the browser that approved.
    pub user_agent: Option<String>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Set once redeemed.
    pub used_at: Option<i64>,
}

/// Result of redeeming a code.
#[derive(Debug)]
pub enum RedeemOutcome {
    /// First use: the new session.
    Issued(Box<SessionRow>),
    /// A second use: the session issued by the first use was revoked.
    Reused,
}

impl Store {
    /// Stores a new code.
    pub async fn insert_auth_code(&self, c: &AuthCodeRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO auth_codes (code_hash, client_id, user_id, org_id, redirect_uri, scope, \
             code_challenge, nonce, device_name, ip, user_agent, auth_time, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&c.code_hash)
        .bind(&c.client_id)
        .bind(&c.user_id)
        .bind(&c.org_id)
        .bind(&c.redirect_uri)
        .bind(&c.scope)
        .bind(&c.code_challenge)
        .bind(&c.nonce)
        .bind(&c.device_name)
        .bind(&c.ip)
        .bind(&c.user_agent)
        .bind(c.auth_time)
        .bind(c.created_at)
        .bind(c.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A code by hash.
    pub async fn auth_code(&self, code_hash: &str) -> Result<Option<AuthCodeRow>> {
        let row = sqlx::query(
            "SELECT code_hash, client_id, user_id, org_id, redirect_uri, scope, code_challenge, \
             nonce, device_name, ip, user_agent, auth_time, created_at, expires_at, used_at \
             FROM auth_codes WHERE code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(AuthCodeRow {
                code_hash: r.try_get("code_hash")?,
                client_id: r.try_get("client_id")?,
                user_id: r.try_get("user_id")?,
                org_id: r.try_get("org_id")?,
                redirect_uri: r.try_get("redirect_uri")?,
                scope: r.try_get("scope")?,
                code_challenge: r.try_get("code_challenge")?,
                nonce: r.try_get("nonce")?,
                device_name: r.try_get("device_name")?,
                ip: r.try_get("ip")?,
                user_agent: r.try_get("user_agent")?,
                auth_time: r.try_get("auth_time")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                used_at: r.try_get("used_at")?,
            })
        })
        .transpose()
    }

    /// Spends a code and creates its session, atomically. If the code was already spent, the
    /// session the first use created is revoked (RFC 6749 §4.1.2) and `Reused` is returned.
    pub async fn redeem_auth_code(
        &self,
        code_hash: &str,
        s: &NewSession,
        refresh_hash: &str,
        refresh_expires_at: i64,
        now: i64,
    ) -> Result<RedeemOutcome> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(code_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            let first: Option<Option<String>> =
                sqlx::query_scalar("SELECT session_id FROM auth_codes WHERE code_hash = $1")
                    .bind(code_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(Some(sid)) = first {
                revoke_in(&mut tx, &sid, now).await?;
            }
            tx.commit().await?;
            return Ok(RedeemOutcome::Reused);
        }
        let session = insert_session(&mut tx, s, refresh_hash, refresh_expires_at, now).await?;
        sqlx::query("UPDATE auth_codes SET session_id = $1 WHERE code_hash = $2")
            .bind(&session.id)
            .bind(code_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RedeemOutcome::Issued(Box::new(session)))
    }
}
