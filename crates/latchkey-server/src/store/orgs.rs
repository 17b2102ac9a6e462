//! Organizations, members and invitations. Every change that could leave an org without an
//! owner is checked inside the same write transaction that makes it.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, StoreError, map_unique};
use crate::domain::accounts::Role;
use crate::domain::secrets::new_id;

/// An organization.
#[derive(Debug, Clone)]
pub struct OrgRow {
    /// Id.
    pub id: String,
    /// Unique URL-safe name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Someone's personal org.
    pub personal: bool,
}

/// A member of an org.
#[derive(Debug, Clone)]
pub struct MemberRow {
    /// User id.
    pub user_id: String,
    /// Email (`None` for anonymous users).
    pub email: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Role.
    pub role: String,
    /// Unix seconds they joined.
    pub joined_at: i64,
}

/// A pending (or past) invitation.
#[derive(Debug, Clone)]
pub struct InvitationRow {
    /// Id.
    pub id: String,
    /// Org id.
    pub org_id: String,
    /// Invited email.
    pub email: String,
    /// Role on acceptance.
    pub role: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Set once accepted.
    pub accepted_at: Option<i64>,
    /// Set once revoked.
    pub revoked_at: Option<i64>,
}

/// Why an org change was refused by the store's invariants.
#[derive(Debug, thiserror::Error)]
pub enum OrgChangeError {
    /// It would leave the org without an owner.
    #[error("an organization must keep at least one owner")]
    LastOwner,
    /// The user is not a member.
    #[error("not a member of this organization")]
    NotMember,
    /// The invitation is unknown, used, revoked or expired.
    #[error("this invitation is no longer valid")]
    InvitationInvalid,
    /// The invitation is for another email.
    #[error("this invitation is for another email address")]
    WrongEmail,
    /// A database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for OrgChangeError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(e))
    }
}

fn org_from(r: &AnyRow) -> Result<OrgRow> {
    Ok(OrgRow {
        id: r.try_get("id")?,
        slug: r.try_get("slug")?,
        name: r.try_get("name")?,
        personal: r.try_get::<i64, _>("personal")? != 0,
    })
}

fn invitation_from(r: &AnyRow) -> Result<InvitationRow> {
    Ok(InvitationRow {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        email: r.try_get("email")?,
        role: r.try_get("role")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        accepted_at: r.try_get("accepted_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

const INVITATION_COLS: &str =
    "id, org_id, email, role, created_at, expires_at, accepted_at, revoked_at";

async fn owner_count(tx: &mut sqlx::Transaction<'static, sqlx::Any>, org_id: &str) -> Result<i64> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'owner'")
            .bind(org_id)
            .fetch_one(&mut **tx)
            .await?;
    Ok(n)
}

async fn role_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    org_id: &str,
    user_id: &str,
) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

impl Store {
    /// Creates an org with `owner_id` as its owner. `Err(Conflict)` when the slug is taken.
    pub async fn create_org(
        &self,
        slug: &str,
        name: &str,
        owner_id: &str,
        now: i64,
    ) -> Result<OrgRow> {
        let id = new_id("org_");
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO orgs (id, slug, name, personal, created_at) VALUES ($1, $2, $3, 0, $4)",
        )
        .bind(&id)
        .bind(slug)
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_unique)?;
        sqlx::query("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)")
            .bind(&id)
            .bind(owner_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(OrgRow {
            id,
            slug: slug.to_owned(),
            name: name.to_owned(),
            personal: false,
        })
    }

    /// An org by id or slug.
    pub async fn org(&self, id_or_slug: &str) -> Result<Option<OrgRow>> {
        let row =
            sqlx::query("SELECT id, slug, name, personal FROM orgs WHERE id = $1 OR slug = $1")
                .bind(id_or_slug)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(org_from).transpose()
    }

    /// Renames an org.
    pub async fn rename_org(&self, org_id: &str, name: &str) -> Result<()> {
        sqlx::query("UPDATE orgs SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(org_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The members of an org, owners first.
    pub async fn members(&self, org_id: &str) -> Result<Vec<MemberRow>> {
        let rows = sqlx::query(
            "SELECT u.id, u.email, u.name, m.role, m.created_at FROM memberships m \
             JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 \
             ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 WHEN 'member' THEN 2 ELSE 3 END, u.email",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MemberRow {
                    user_id: r.try_get("id")?,
                    email: r.try_get("email")?,
                    name: r.try_get("name")?,
                    role: r.try_get("role")?,
                    joined_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// A user's role in an org.
    pub async fn role_of(&self, org_id: &str, user_id: &str) -> Result<Option<Role>> {
        let r: Option<String> =
            sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
                .bind(org_id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(r.as_deref().and_then(Role::parse))
    }

    /// Changes a member's role, refusing to leave the org without an owner.
    pub async fn change_role(
        &self,
        org_id: &str,
        user_id: &str,
        role: Role,
    ) -> std::result::Result<(), OrgChangeError> {
        let mut tx = self.begin_write().await?;
        let current = role_in(&mut tx, org_id, user_id)
            .await?
            .ok_or(OrgChangeError::NotMember)?;
        if current == "owner" && role != Role::Owner && owner_count(&mut tx, org_id).await? <= 1 {
            return Err(OrgChangeError::LastOwner);
        }
        sqlx::query("UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3")
            .bind(role.as_str())
            .bind(org_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.keys_changed();
        Ok(())
    }

    /// Removes a member (or lets one leave), refusing to remove the last owner. Their sessions
    /// that had this org active lose it.
    pub async fn remove_member(
        &self,
        org_id: &str,
        user_id: &str,
    ) -> std::result::Result<(), OrgChangeError> {
        let mut tx = self.begin_write().await?;
        let current = role_in(&mut tx, org_id, user_id)
            .await?
            .ok_or(OrgChangeError::NotMember)?;
        if current == "owner" && owner_count(&mut tx, org_id).await? <= 1 {
            return Err(OrgChangeError::LastOwner);
        }
        sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE sessions SET org_id = NULL WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.keys_changed();
        Ok(())
    }

    /// Makes `to` an owner and `from` an admin, atomically.
    pub async fn transfer_ownership(
        &self,
        org_id: &str,
        from: &str,
        to: &str,
    ) -> std::result::Result<(), OrgChangeError> {
        let mut tx = self.begin_write().await?;
        role_in(&mut tx, org_id, to)
            .await?
            .ok_or(OrgChangeError::NotMember)?;
        sqlx::query("UPDATE memberships SET role = 'owner' WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(to)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE memberships SET role = 'admin' WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.keys_changed();
        Ok(())
    }

    /// Stores an invitation.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_invitation(
        &self,
        token_hash: &str,
        org_id: &str,
        email: &str,
        role: Role,
        invited_by: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<InvitationRow> {
        let id = new_id("inv_");
        sqlx::query(
            "INSERT INTO invitations (id, token_hash, org_id, email, role, invited_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(token_hash)
        .bind(org_id)
        .bind(email)
        .bind(role.as_str())
        .bind(invited_by)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(InvitationRow {
            id,
            org_id: org_id.to_owned(),
            email: email.to_owned(),
            role: role.as_str().to_owned(),
            created_at: now,
            expires_at,
            accepted_at: None,
            revoked_at: None,
        })
    }

    /// Pending invitations of an org.
    pub async fn pending_invitations(&self, org_id: &str, now: i64) -> Result<Vec<InvitationRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITATION_COLS} FROM invitations WHERE org_id = $1 AND accepted_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC"
        )))
        .bind(org_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(invitation_from).collect()
    }

    /// An invitation by the hash of its link token.
    pub async fn invitation_by_token(&self, token_hash: &str) -> Result<Option<InvitationRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITATION_COLS} FROM invitations WHERE token_hash = $1"
        )))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(invitation_from).transpose()
    }

    /// Revokes a pending invitation of `org_id`. Returns whether it was pending.
    pub async fn revoke_invitation(&self, org_id: &str, id: &str, now: i64) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE invitations SET revoked_at = $1 WHERE id = $2 AND org_id = $3 \
             AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(org_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Accepts an invitation for `user_id` whose email is `email`: adds the membership (an
    /// existing member keeps the stronger of the two roles) and spends the invitation.
    pub async fn accept_invitation(
        &self,
        token_hash: &str,
        user_id: &str,
        email: &str,
        now: i64,
    ) -> std::result::Result<InvitationRow, OrgChangeError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITATION_COLS} FROM invitations WHERE token_hash = $1"
        )))
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let inv = row
            .as_ref()
            .map(invitation_from)
            .transpose()?
            .filter(|i| i.accepted_at.is_none() && i.revoked_at.is_none() && i.expires_at > now)
            .ok_or(OrgChangeError::InvitationInvalid)?;
        if !inv.email.eq_ignore_ascii_case(email) {
            return Err(OrgChangeError::WrongEmail);
        }
        let invited = Role::parse(&inv.role).unwrap_or(Role::Viewer);
        let role = match role_in(&mut tx, &inv.org_id, user_id)
            .await?
            .as_deref()
            .and_then(Role::parse)
        {
            Some(existing) => existing.min(invited),
            None => invited,
        };
        sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org_id, user_id) DO UPDATE SET role = $3",
        )
        .bind(&inv.org_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE invitations SET accepted_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&inv.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(inv)
    }

    /// Sets a session's active org.
    pub async fn set_session_org(&self, session_id: &str, org_id: &str) -> Result<()> {
        sqlx::query("UPDATE sessions SET org_id = $1 WHERE id = $2")
            .bind(org_id)
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Updates a user's display name.
    pub async fn set_user_name(&self, user_id: &str, name: Option<&str>, now: i64) -> Result<()> {
        sqlx::query("UPDATE users SET name = $1, updated_at = $2 WHERE id = $3")
            .bind(name)
            .bind(now)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces a user's password hash and ends their other web sessions.
    pub async fn set_password(
        &self,
        user_id: &str,
        phc: &str,
        keep_web_session: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(phc)
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(user_id)
            .bind(keep_web_session.unwrap_or(""))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
