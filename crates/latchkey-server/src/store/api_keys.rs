//! API keys: created, listed, revoked, looked up by public id at token exchange.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store};

/// A key as stored, joined with its org and creator for listing.
#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    /// Public id (`lk_` + 16).
    pub id: String,
    /// SHA-256 of the whole key.
    pub key_hash: String,
    /// Name.
    pub name: String,
    /// Org id.
    pub org_id: String,
    /// Org slug.
    pub org_slug: String,
    /// Role.
    pub role: String,
    /// Creator's user id.
    pub created_by: Option<String>,
    /// Creator's email.
    pub created_by_email: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    /// Unix seconds.
    pub last_used_at: Option<i64>,
    /// Unix seconds.
    pub revoked_at: Option<i64>,
}

const SELECT: &str = "SELECT k.id, k.key_hash, k.name, k.org_id, o.slug AS org_slug, k.role, \
                      k.created_by, u.email AS created_by_email, k.created_at, k.expires_at, \
                      k.last_used_at, k.revoked_at FROM api_keys k \
                      JOIN orgs o ON o.id = k.org_id LEFT JOIN users u ON u.id = k.created_by";

fn from_row(r: &AnyRow) -> Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: r.try_get("id")?,
        key_hash: r.try_get("key_hash")?,
        name: r.try_get("name")?,
        org_id: r.try_get("org_id")?,
        org_slug: r.try_get("org_slug")?,
        role: r.try_get("role")?,
        created_by: r.try_get("created_by")?,
        created_by_email: r.try_get("created_by_email")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        last_used_at: r.try_get("last_used_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

impl Store {
    /// Stores a new key.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_api_key(
        &self,
        id: &str,
        key_hash: &str,
        name: &str,
        org_id: &str,
        role: &str,
        created_by: &str,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, key_hash, name, org_id, role, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(key_hash)
        .bind(name)
        .bind(org_id)
        .bind(role)
        .bind(created_by)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A key by public id.
    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE k.id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Live keys the user created, plus every live key of orgs where the user is an admin or
    /// owner (the roles `domain::roles` allows `ManageApiKeys`); newest first.
    pub async fn api_keys_visible_to(&self, user_id: &str) -> Result<Vec<ApiKeyRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE k.revoked_at IS NULL AND (k.created_by = $1 OR k.org_id IN \
             (SELECT org_id FROM memberships WHERE user_id = $1 AND role IN ('owner', 'admin'))) \
             ORDER BY k.created_at DESC, k.id"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Revokes a key. Returns whether it was live.
    pub async fn revoke_api_key(&self, id: &str, now: i64) -> Result<bool> {
        let n =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(n == 1)
    }

    /// Records a use (callers throttle this to once a minute per key).
    pub async fn touch_api_key(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
