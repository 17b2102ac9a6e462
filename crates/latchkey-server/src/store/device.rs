//! Device authorization requests (RFC 8628).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, map_unique};
use crate::domain::device::DeviceStatus;

/// A device request as stored. The device code itself is never stored, only its hash.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    /// SHA-256 of the device code.
    pub code_hash: String,
    /// Canonical user code (8 characters, no dash).
    pub user_code: String,
    /// Requesting client.
    pub client_id: String,
    /// Requested (validated) scope.
    pub scope: String,
    /// Device name the CLI sent.
    pub device_name: Option<String>,
    /// IP of the device request.
    pub ip: Option<String>,
    /// User agent of the device request.
    pub user_agent: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Polling interval.
    pub interval_s: i64,
    /// Where it stands.
    pub status: DeviceStatus,
    /// The approving (or denying) user.
    pub user_id: Option<String>,
    /// The org chosen at approval.
    pub org_id: Option<String>,
    /// When the user decided.
    pub decided_at: Option<i64>,
}

const COLS: &str = "code_hash, user_code, client_id, scope, device_name, ip, user_agent, \
                    created_at, expires_at, interval_s, status, user_id, org_id, decided_at";

fn from_row(r: &AnyRow) -> Result<DeviceRow> {
    Ok(DeviceRow {
        code_hash: r.try_get("code_hash")?,
        user_code: r.try_get("user_code")?,
        client_id: r.try_get("client_id")?,
        scope: r.try_get("scope")?,
        device_name: r.try_get("device_name")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        interval_s: r.try_get("interval_s")?,
        status: DeviceStatus::parse(&r.try_get::<String, _>("status")?),
        user_id: r.try_get("user_id")?,
        org_id: r.try_get("org_id")?,
        decided_at: r.try_get("decided_at")?,
    })
}

impl Store {
    /// Stores a new pending request. `Err(Conflict)` if the user code is taken (retry with a
    /// new one).
    pub async fn insert_device(&self, d: &DeviceRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO device_codes (code_hash, user_code, client_id, scope, device_name, ip, \
             user_agent, created_at, expires_at, interval_s, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&d.code_hash)
        .bind(&d.user_code)
        .bind(&d.client_id)
        .bind(&d.scope)
        .bind(&d.device_name)
        .bind(&d.ip)
        .bind(&d.user_agent)
        .bind(d.created_at)
        .bind(d.expires_at)
        .bind(d.interval_s)
        .bind(d.status.as_str())
        // The writer: on SQLite, concurrent sign-ins queue for it instead of for the lock.
        .execute(&self.writer)
        .await
        .map_err(map_unique)?;
        Ok(())
    }

    /// Finds a request by the hash of its device code (a read: polling never writes).
    pub async fn device_by_hash(&self, code_hash: &str) -> Result<Option<DeviceRow>> {
        let sql = format!("SELECT {COLS} FROM device_codes WHERE code_hash = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(code_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Finds a request by canonical user code.
    pub async fn device_by_user_code(&self, user_code: &str) -> Result<Option<DeviceRow>> {
        let sql = format!("SELECT {COLS} FROM device_codes WHERE user_code = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_code)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Records the user's decision on a pending, unexpired request. Returns false when the
    /// request was no longer pending (decided elsewhere, expired).
    pub async fn decide_device(
        &self,
        user_code: &str,
        approve: bool,
        user_id: &str,
        org_id: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let status = if approve {
            DeviceStatus::Approved
        } else {
            DeviceStatus::Denied
        };
        let n = sqlx::query(
            "UPDATE device_codes SET status = $1, user_id = $2, org_id = $3, decided_at = $4 \
             WHERE user_code = $5 AND status = 'pending' AND expires_at > $4",
        )
        .bind(status.as_str())
        .bind(user_id)
        .bind(org_id)
        .bind(now)
        .bind(user_code)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
