//! API keys: created, listed, revoked, looked up by public id at token exchange.

use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Result, Store};
use crate::domain::accounts::Role;

/// How long [`Store::api_key_for_grant`] reuses a key it looked up, with its creator's role.
/// Changes made through this process (revoking a key, changing or ending a membership) take
/// effect at once; a change made by another replica is seen within this many seconds.
pub const KEY_CACHE_TTL_S: i64 = 5;

/// Keys recently exchanged at the token endpoint, with their creator's role in the key's org,
/// so that a busy CI key costs no database round trip per token.
#[derive(Debug, Default)]
pub(super) struct KeyCache {
    /// Bumped by every change to keys or memberships: entries loaded before it are stale.
    generation: AtomicU64,
    entries: Mutex<HashMap<String, CachedKey>>,
}

#[derive(Debug)]
struct CachedKey {
    generation: u64,
    loaded_at: i64,
    key: ApiKeyRow,
    creator_role: Role,
}

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
        self.keys_changed();
        Ok(n == 1)
    }

    /// A key by public id with its creator's current role in the key's org (`None` when the
    /// key has no creator or the creator is no longer a member), for the client credentials
    /// grant. Reused from memory for up to [`KEY_CACHE_TTL_S`] seconds; see there.
    pub async fn api_key_for_grant(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<(ApiKeyRow, Option<Role>)>> {
        let cache = &self.key_cache;
        let generation = cache.generation.load(Ordering::Acquire);
        {
            let entries = cache.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = entries.get(id)
                && c.generation == generation
                && (c.loaded_at..c.loaded_at + KEY_CACHE_TTL_S).contains(&now)
            {
                return Ok(Some((c.key.clone(), Some(c.creator_role))));
            }
        }
        let Some(key) = self.api_key(id).await? else {
            return Ok(None);
        };
        let creator_role = match &key.created_by {
            Some(uid) => self.role_of(&key.org_id, uid).await?,
            None => None,
        };
        // Only working keys are kept: a refusal is always decided by the database.
        if let Some(role) = creator_role {
            let mut entries = cache.entries.lock().unwrap_or_else(|e| e.into_inner());
            if entries.len() >= 10_000 {
                entries.retain(|_, c| {
                    c.generation == generation && c.loaded_at > now - KEY_CACHE_TTL_S
                });
            }
            entries.insert(
                id.to_owned(),
                CachedKey {
                    generation,
                    loaded_at: now,
                    key: key.clone(),
                    creator_role: role,
                },
            );
        }
        Ok(Some((key, creator_role)))
    }

    /// Called after any change to API keys or memberships: forgets every cached key.
    pub(super) fn keys_changed(&self) {
        let cache = &self.key_cache;
        cache.generation.fetch_add(1, Ordering::AcqRel);
        cache
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Records a use (callers throttle this to once a minute per key).
    pub async fn touch_api_key(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        let mut entries = self
            .key_cache
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(c) = entries.get_mut(id) {
            c.key.last_used_at = Some(now);
        }
        Ok(())
    }
}
