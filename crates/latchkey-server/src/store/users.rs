//! Users, organizations and memberships.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, map_unique};
use crate::domain::accounts::{Role, personal_org_slug};
use crate::domain::secrets::new_id;

/// A user as stored.
#[derive(Clone)]
pub struct UserRow {
    /// Id (`usr_...`), the `sub` of tokens.
    pub id: String,
    /// Normalized email; `None` for anonymous users.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// argon2id PHC string.
    pub password_hash: Option<String>,
    /// Anonymous identity.
    pub anonymous: bool,
    /// Disabled by an operator.
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("anonymous", &self.anonymous)
            .finish_non_exhaustive()
    }
}

/// A user's membership of one org.
#[derive(Debug, Clone)]
pub struct MembershipRow {
    /// Org id.
    pub org_id: String,
    /// Org slug.
    pub slug: String,
    /// Org name.
    pub name: String,
    /// Whether it is the user's personal org.
    pub personal: bool,
    /// Role.
    pub role: String,
}

const USER_COLS: &str = "id, email, name, password_hash, anonymous, disabled, created_at";

fn user_from(row: &AnyRow) -> Result<UserRow> {
    Ok(UserRow {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        anonymous: row.try_get::<i64, _>("anonymous")? != 0,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Creates a user and their personal organization (where they are `owner`), atomically.
    /// `Err(Conflict)` when the email is taken.
    pub async fn create_user(
        &self,
        email: Option<&str>,
        name: Option<&str>,
        password_hash: Option<&str>,
        anonymous: bool,
        now: i64,
    ) -> Result<UserRow> {
        let mut tx = self.begin_write().await?;
        let user = insert_user(&mut tx, email, name, password_hash, anonymous, now).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Looks a user up by normalized email.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE email = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    /// Looks a user up by id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    /// The user's organizations with roles, personal first, then oldest first.
    pub async fn memberships(&self, user_id: &str) -> Result<Vec<MembershipRow>> {
        let rows = sqlx::query(
            "SELECT o.id, o.slug, o.name, o.personal, m.role FROM memberships m \
             JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1 \
             ORDER BY o.personal DESC, m.created_at ASC, o.slug ASC",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MembershipRow {
                    org_id: r.try_get("id")?,
                    slug: r.try_get("slug")?,
                    name: r.try_get("name")?,
                    personal: r.try_get::<i64, _>("personal")? != 0,
                    role: r.try_get("role")?,
                })
            })
            .collect()
    }

    /// Moves everything an anonymous user owns to `target`: their organizations (with all
    /// that belongs to them) become the target's, with the target as owner; the anonymous
    /// user is then deleted, which ends their sessions. Returns the moved organizations.
    pub async fn claim_anonymous(
        &self,
        anonymous_id: &str,
        target_id: &str,
        now: i64,
    ) -> Result<Vec<MembershipRow>> {
        let mut tx = self.begin_write().await?;
        let is_anon: Option<i64> = sqlx::query_scalar("SELECT anonymous FROM users WHERE id = $1")
            .bind(anonymous_id)
            .fetch_optional(&mut *tx)
            .await?;
        if is_anon != Some(1) || anonymous_id == target_id {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT o.id, o.slug, o.name, o.personal, m.role FROM memberships m \
             JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1",
        )
        .bind(anonymous_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut moved = Vec::with_capacity(rows.len());
        for r in &rows {
            let org_id: String = r.try_get("id")?;
            sqlx::query(
                "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (org_id, user_id) DO UPDATE SET role = $3",
            )
            .bind(&org_id)
            .bind(target_id)
            .bind(Role::Owner.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // The target keeps its own personal org; the claimed one becomes a shared org.
            sqlx::query("UPDATE orgs SET personal = 0 WHERE id = $1")
                .bind(&org_id)
                .execute(&mut *tx)
                .await?;
            moved.push(MembershipRow {
                org_id,
                slug: r.try_get("slug")?,
                name: r.try_get("name")?,
                personal: false,
                role: Role::Owner.as_str().to_owned(),
            });
        }
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(anonymous_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.keys_changed();
        Ok(moved)
    }

    /// Deletes anonymous users created before `cutoff` with no session used since, and their
    /// personal organizations. Returns how many users went.
    pub async fn purge_idle_anonymous(&self, cutoff: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let idle = "SELECT u.id FROM users u WHERE u.anonymous = 1 AND u.created_at < $1 \
                    AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id \
                    AND s.revoked_at IS NULL AND s.last_used_at >= $1)";
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM orgs WHERE personal = 1 AND id IN \
             (SELECT m.org_id FROM memberships m WHERE m.user_id IN ({idle}))"
        )))
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
        let n = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM users WHERE id IN ({idle})"
        )))
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if n > 0 {
            self.keys_changed();
        }
        Ok(n)
    }

    /// Adds `user_id` to an org with `role`, or changes their role if already a member.
    pub async fn set_membership(
        &self,
        org_id: &str,
        user_id: &str,
        role: Role,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org_id, user_id) DO UPDATE SET role = $3",
        )
        .bind(org_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.keys_changed();
        Ok(())
    }
}

/// Inserts a user and their personal organization (where they are `owner`) inside `tx`.
/// `Err(Conflict)` when the email is taken.
pub(super) async fn insert_user(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    email: Option<&str>,
    name: Option<&str>,
    password_hash: Option<&str>,
    anonymous: bool,
    now: i64,
) -> Result<UserRow> {
    let id = new_id("usr_");
    let org_id = new_id("org_");
    let org_name = match (name, email) {
        (Some(n), _) if !n.is_empty() => format!("{n}'s org"),
        (_, Some(e)) => format!("{e}'s org"),
        _ => "Anonymous".to_owned(),
    };
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, anonymous, disabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, $6)",
    )
    .bind(&id)
    .bind(email)
    .bind(name)
    .bind(password_hash)
    .bind(i64::from(anonymous))
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(map_unique)?;
    sqlx::query(
        "INSERT INTO orgs (id, slug, name, personal, created_at) VALUES ($1, $2, $3, 1, $4)",
    )
    .bind(&org_id)
    .bind(personal_org_slug(email))
    .bind(&org_name)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(map_unique)?;
    sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&org_id)
    .bind(&id)
    .bind(Role::Owner.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(UserRow {
        id,
        email: email.map(str::to_owned),
        name: name.map(str::to_owned),
        password_hash: password_hash.map(str::to_owned),
        anonymous,
        disabled: false,
        created_at: now,
    })
}
