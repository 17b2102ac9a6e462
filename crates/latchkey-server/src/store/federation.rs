//! Upstream sign-in: linked identities, sign-ins in flight, pending links, organizations' SSO
//! settings and their email domains.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::users::{UserRow, insert_user};
use super::{OrgRow, Result, Store, StoreError, map_unique};
use crate::domain::secrets::new_id;

/// An upstream account linked to a user.
#[derive(Debug, Clone)]
pub struct IdentityRow {
    /// Id (`idn_...`).
    pub id: String,
    /// The user.
    pub user_id: String,
    /// Configured provider id, or `org:<org id>`.
    pub provider: String,
    /// The provider's id of the user.
    pub subject: String,
    /// Who asserted it.
    pub issuer: String,
    /// Email at the provider, as last seen.
    pub email: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub last_used_at: i64,
}

/// A sign-in waiting for the provider's answer.
pub struct UpstreamLoginRow {
    /// Provider key.
    pub provider: String,
    /// Hash of the browser binding cookie.
    pub binding_hash: String,
    /// Nonce sent.
    pub nonce: String,
    /// PKCE verifier.
    pub pkce_verifier: String,
    /// Where to go afterwards.
    pub next: String,
    /// Set when a signed-in user links another way in.
    pub link_user_id: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

impl std::fmt::Debug for UpstreamLoginRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamLoginRow")
            .field("provider", &self.provider)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// An upstream account waiting to be linked to an existing user.
#[derive(Debug, Clone)]
pub struct PendingLinkRow {
    /// The user it would be linked to.
    pub user_id: String,
    /// Provider key.
    pub provider: String,
    /// Subject at the provider.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// Email at the provider.
    pub email: Option<String>,
    /// Where to go afterwards.
    pub next: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// An organization's OpenID provider.
#[derive(Clone)]
pub struct OrgSsoRow {
    /// The org.
    pub org_id: String,
    /// Issuer URL.
    pub issuer: String,
    /// Client id at the provider.
    pub client_id: String,
    /// Client secret, sealed under the operator's secret key (`domain::sealing`).
    pub client_secret: Option<String>,
    /// Role of members added on first sign-in.
    pub default_role: String,
    /// Whether members from the org's domains must use SSO.
    pub require_sso: bool,
}

impl std::fmt::Debug for OrgSsoRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgSsoRow")
            .field("org_id", &self.org_id)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("require_sso", &self.require_sso)
            .finish_non_exhaustive()
    }
}

/// A domain an organization claims.
#[derive(Debug, Clone)]
pub struct OrgDomainRow {
    /// Domain, lowercase.
    pub domain: String,
    /// Value to publish in DNS.
    pub token: String,
    /// Set once verified.
    pub verified_at: Option<i64>,
}

/// An organization that requires SSO for an email domain.
#[derive(Debug, Clone)]
pub struct SsoRequirement {
    /// Org name, for messages.
    pub org_name: String,
    /// Org slug: its SSO starts at `/sso/org/SLUG`.
    pub org_slug: String,
}

/// Why an identity could not be unlinked.
#[derive(Debug, thiserror::Error)]
pub enum UnlinkError {
    /// Nothing to unlink.
    #[error("not found")]
    NotFound,
    /// It is the last way in.
    #[error("last way to sign in")]
    LastWayIn,
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for UnlinkError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(e))
    }
}

const IDENTITY_COLS: &str =
    "id, user_id, provider, subject, issuer, email, created_at, last_used_at";

fn identity_from(r: &AnyRow) -> Result<IdentityRow> {
    Ok(IdentityRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        provider: r.try_get("provider")?,
        subject: r.try_get("subject")?,
        issuer: r.try_get("issuer")?,
        email: r.try_get("email")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

fn sso_from(r: &AnyRow) -> Result<OrgSsoRow> {
    Ok(OrgSsoRow {
        org_id: r.try_get("org_id")?,
        issuer: r.try_get("issuer")?,
        client_id: r.try_get("client_id")?,
        client_secret: r.try_get("client_secret")?,
        default_role: r.try_get("default_role")?,
        require_sso: r.try_get::<i64, _>("require_sso")? != 0,
    })
}

const SSO_COLS: &str =
    "s.org_id, s.issuer, s.client_id, s.client_secret, s.default_role, s.require_sso";

async fn insert_identity(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: &str,
    provider: &str,
    subject: &str,
    issuer: &str,
    email: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO identities (id, user_id, provider, subject, issuer, email, created_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(new_id("idn_"))
    .bind(user_id)
    .bind(provider)
    .bind(subject)
    .bind(issuer)
    .bind(email)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(map_unique)?;
    Ok(())
}

impl Store {
    /// The identity `subject` at `provider`.
    pub async fn identity(&self, provider: &str, subject: &str) -> Result<Option<IdentityRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {IDENTITY_COLS} FROM identities WHERE provider = $1 AND subject = $2"
        )))
        .bind(provider)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(identity_from).transpose()
    }

    /// A user's linked identities, oldest first.
    pub async fn identities_of(&self, user_id: &str) -> Result<Vec<IdentityRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {IDENTITY_COLS} FROM identities WHERE user_id = $1 ORDER BY created_at, id"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(identity_from).collect()
    }

    /// Links an identity to a user. `Err(Conflict)` when it is linked already.
    pub async fn link_identity(
        &self,
        user_id: &str,
        provider: &str,
        subject: &str,
        issuer: &str,
        email: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_identity(&mut tx, user_id, provider, subject, issuer, email, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates a user (just in time, no password) with a linked identity, atomically.
    /// `Err(Conflict)` when the email or the identity is taken meanwhile.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_user_with_identity(
        &self,
        email: &str,
        name: Option<&str>,
        provider: &str,
        subject: &str,
        issuer: &str,
        now: i64,
    ) -> Result<UserRow> {
        let mut tx = self.begin_write().await?;
        let user = insert_user(&mut tx, Some(email), name, None, false, now).await?;
        insert_identity(
            &mut tx,
            &user.id,
            provider,
            subject,
            issuer,
            Some(email),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Records a sign-in through an identity.
    pub async fn touch_identity(&self, id: &str, email: Option<&str>, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE identities SET last_used_at = $1, email = COALESCE($2, email) WHERE id = $3",
        )
        .bind(now)
        .bind(email)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Unlinks an identity of `user_id`, unless it is their last way in (no password and no
    /// other identity). Returns the unlinked row.
    pub async fn unlink_identity(
        &self,
        user_id: &str,
        identity_id: &str,
    ) -> std::result::Result<IdentityRow, UnlinkError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {IDENTITY_COLS} FROM identities WHERE id = $1 AND user_id = $2"
        )))
        .bind(identity_id)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let identity = row
            .as_ref()
            .map(identity_from)
            .transpose()?
            .ok_or(UnlinkError::NotFound)?;
        let others: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM identities WHERE user_id = $1 AND id <> $2")
                .bind(user_id)
                .bind(identity_id)
                .fetch_one(&mut *tx)
                .await?;
        let has_password: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE id = $1 AND password_hash IS NOT NULL",
        )
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
        if others == 0 && has_password == 0 {
            return Err(UnlinkError::LastWayIn);
        }
        sqlx::query("DELETE FROM identities WHERE id = $1")
            .bind(identity_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(identity)
    }

    /// Saves a sign-in in flight.
    #[allow(clippy::too_many_arguments)]
    pub async fn save_upstream_login(
        &self,
        state_hash: &str,
        row: &UpstreamLoginRow,
        login_hint: Option<&str>,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO upstream_logins (state_hash, provider, binding_hash, nonce, pkce_verifier, next, \
             link_user_id, login_hint, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(state_hash)
        .bind(&row.provider)
        .bind(&row.binding_hash)
        .bind(&row.nonce)
        .bind(&row.pkce_verifier)
        .bind(&row.next)
        .bind(&row.link_user_id)
        .bind(login_hint)
        .bind(now)
        .bind(row.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes (reads and deletes) a sign-in in flight: a `state` works once.
    pub async fn take_upstream_login(&self, state_hash: &str) -> Result<Option<UpstreamLoginRow>> {
        let row = sqlx::query(
            "DELETE FROM upstream_logins WHERE state_hash = $1 RETURNING provider, binding_hash, nonce, \
             pkce_verifier, next, link_user_id, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<UpstreamLoginRow> {
            Ok(UpstreamLoginRow {
                provider: r.try_get("provider")?,
                binding_hash: r.try_get("binding_hash")?,
                nonce: r.try_get("nonce")?,
                pkce_verifier: r.try_get("pkce_verifier")?,
                next: r.try_get("next")?,
                link_user_id: r.try_get("link_user_id")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Saves an identity waiting to be linked.
    pub async fn save_pending_link(
        &self,
        token_hash: &str,
        row: &PendingLinkRow,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO pending_links (token_hash, user_id, provider, subject, issuer, email, next, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(token_hash)
        .bind(&row.user_id)
        .bind(&row.provider)
        .bind(&row.subject)
        .bind(&row.issuer)
        .bind(&row.email)
        .bind(&row.next)
        .bind(now)
        .bind(row.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An identity waiting to be linked.
    pub async fn pending_link(&self, token_hash: &str) -> Result<Option<PendingLinkRow>> {
        let row = sqlx::query(
            "SELECT user_id, provider, subject, issuer, email, next, expires_at FROM pending_links WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<PendingLinkRow> {
            Ok(PendingLinkRow {
                user_id: r.try_get("user_id")?,
                provider: r.try_get("provider")?,
                subject: r.try_get("subject")?,
                issuer: r.try_get("issuer")?,
                email: r.try_get("email")?,
                next: r.try_get("next")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Links a pending identity (once) and forgets it. `Ok(false)` when it was gone.
    pub async fn complete_pending_link(
        &self,
        token_hash: &str,
        user_id: &str,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "DELETE FROM pending_links WHERE token_hash = $1 AND user_id = $2 AND expires_at > $3 \
             RETURNING provider, subject, issuer, email",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else {
            return Ok(false);
        };
        let (provider, subject, issuer, email): (String, String, String, Option<String>) = (
            r.try_get("provider")?,
            r.try_get("subject")?,
            r.try_get("issuer")?,
            r.try_get("email")?,
        );
        insert_identity(
            &mut tx,
            user_id,
            &provider,
            &subject,
            &issuer,
            email.as_deref(),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Forgets a pending link (the user said not now).
    pub async fn delete_pending_link(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM pending_links WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Unlinks the identities of an org's provider that the provider now set up cannot have
    /// made: every one when `keep_issuer` is `None` (the client changed), else those of
    /// another issuer (subjects of an old provider mean nothing at the new one). Links keep the
    /// ID token's `iss` as sent, so a trailing `/` does not make another issuer. Returns how
    /// many went.
    pub async fn forget_org_identities(
        &self,
        org_id: &str,
        keep_issuer: Option<&str>,
    ) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM identities WHERE provider = $1 AND (CAST($2 AS TEXT) IS NULL \
             OR RTRIM(issuer, '/') <> RTRIM(CAST($2 AS TEXT), '/'))",
        )
        .bind(format!("org:{org_id}"))
        .bind(keep_issuer)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Ends the CLI sessions and web sign-ins of every user with an address at `domain`,
    /// except the web sign-in `keep` (the admin making the change). Returns the users.
    pub async fn end_sessions_at_domain(
        &self,
        domain: &str,
        keep: Option<&str>,
        now: i64,
    ) -> Result<u64> {
        let pattern = format!("%@{domain}");
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE revoked_at IS NULL AND user_id IN \
             (SELECT id FROM users WHERE email LIKE $2)",
        )
        .bind(now)
        .bind(&pattern)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM web_sessions WHERE id_hash <> $1 AND user_id IN \
             (SELECT id FROM users WHERE email LIKE $2)",
        )
        .bind(keep.unwrap_or(""))
        .bind(&pattern)
        .execute(&mut *tx)
        .await?;
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email LIKE $1")
            .bind(&pattern)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(u64::try_from(users).unwrap_or(0))
    }

    /// An org's SSO settings.
    pub async fn org_sso(&self, org_id: &str) -> Result<Option<OrgSsoRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SSO_COLS} FROM org_sso s WHERE s.org_id = $1"
        )))
        .bind(org_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(sso_from).transpose()
    }

    /// Whether any organization has SSO set up (the sign-in page then offers "Continue with
    /// SSO").
    pub async fn any_org_sso(&self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM org_sso")
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Creates or replaces an org's SSO settings. With `keep_secret`, a `None` secret keeps the
    /// stored one, if the stored row is still for the same issuer and client (another owner may
    /// have saved another provider meanwhile); without, the row's secret (maybe none) replaces
    /// it.
    pub async fn save_org_sso(&self, row: &OrgSsoRow, keep_secret: bool, now: i64) -> Result<()> {
        let sql = if keep_secret {
            "INSERT INTO org_sso (org_id, issuer, client_id, client_secret, default_role, require_sso, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org_id) DO UPDATE SET issuer = $2, client_id = $3, \
             client_secret = CASE WHEN org_sso.issuer = $2 AND org_sso.client_id = $3 \
             THEN COALESCE($4, org_sso.client_secret) ELSE $4 END, \
             default_role = $5, require_sso = $6, updated_at = $7"
        } else {
            "INSERT INTO org_sso (org_id, issuer, client_id, client_secret, default_role, require_sso, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org_id) DO UPDATE SET issuer = $2, client_id = $3, \
             client_secret = $4, default_role = $5, require_sso = $6, updated_at = $7"
        };
        sqlx::query(sql)
            .bind(&row.org_id)
            .bind(&row.issuer)
            .bind(&row.client_id)
            .bind(&row.client_secret)
            .bind(&row.default_role)
            .bind(i64::from(row.require_sso))
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every organization SSO with a stored (sealed) client secret, with the org's slug.
    pub async fn org_sso_secrets(&self) -> Result<Vec<(String, OrgSsoRow)>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SSO_COLS}, o.slug FROM org_sso s JOIN orgs o ON o.id = s.org_id \
             WHERE s.client_secret IS NOT NULL ORDER BY o.slug"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("slug")?, sso_from(r)?)))
            .collect()
    }

    /// Replaces an org's sealed client secret, unless it changed since it was read (`Ok(false)`).
    pub async fn replace_org_sso_secret(&self, org_id: &str, old: &str, new: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE org_sso SET client_secret = $3 WHERE org_id = $1 AND client_secret = $2",
        )
        .bind(org_id)
        .bind(old)
        .bind(new)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes an org's SSO (its linked identities stay, unused).
    pub async fn delete_org_sso(&self, org_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM org_sso WHERE org_id = $1")
            .bind(org_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// An org's claimed domains.
    pub async fn org_domains(&self, org_id: &str) -> Result<Vec<OrgDomainRow>> {
        let rows = sqlx::query(
            "SELECT domain, token, verified_at FROM org_domains WHERE org_id = $1 ORDER BY domain",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OrgDomainRow {
                    domain: r.try_get("domain")?,
                    token: r.try_get("token")?,
                    verified_at: r.try_get("verified_at")?,
                })
            })
            .collect()
    }

    /// Claims a domain for an org (unverified). `Err(Conflict)` when the org claimed it already.
    pub async fn add_org_domain(
        &self,
        org_id: &str,
        domain: &str,
        token: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO org_domains (org_id, domain, token, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(org_id)
        .bind(domain)
        .bind(token)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_unique)?;
        Ok(())
    }

    /// Marks a claimed domain verified. `Ok(false)` when the org has not claimed it;
    /// `Err(Conflict)` when another org verified it first.
    pub async fn verify_org_domain(&self, org_id: &str, domain: &str, now: i64) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE org_domains SET verified_at = $1 WHERE org_id = $2 AND domain = $3 AND verified_at IS NULL",
        )
        .bind(now)
        .bind(org_id)
        .bind(domain)
        .execute(&self.pool)
        .await
        .map_err(map_unique)?
        .rows_affected();
        if n > 0 {
            return Ok(true);
        }
        let exists: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM org_domains WHERE org_id = $1 AND domain = $2",
        )
        .bind(org_id)
        .bind(domain)
        .fetch_one(&self.pool)
        .await?;
        Ok(exists > 0)
    }

    /// Drops a domain claim.
    pub async fn remove_org_domain(&self, org_id: &str, domain: &str) -> Result<bool> {
        Ok(
            sqlx::query("DELETE FROM org_domains WHERE org_id = $1 AND domain = $2")
                .bind(org_id)
                .bind(domain)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }

    /// The org that verified `domain` and has SSO set up, with its settings.
    pub async fn org_sso_for_domain(&self, domain: &str) -> Result<Option<(OrgRow, OrgSsoRow)>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT o.id, o.slug, o.name, o.personal, {SSO_COLS} FROM org_domains d \
             JOIN org_sso s ON s.org_id = d.org_id JOIN orgs o ON o.id = d.org_id \
             WHERE d.domain = $1 AND d.verified_at IS NOT NULL"
        )))
        .bind(domain)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<(OrgRow, OrgSsoRow)> {
            Ok((
                OrgRow {
                    id: r.try_get("id")?,
                    slug: r.try_get("slug")?,
                    name: r.try_get("name")?,
                    personal: r.try_get::<i64, _>("personal")? != 0,
                },
                sso_from(&r)?,
            ))
        })
        .transpose()
    }

    /// Whether the org verified `domain`.
    pub async fn org_verified_domain(&self, org_id: &str, domain: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM org_domains WHERE org_id = $1 AND domain = $2 AND verified_at IS NOT NULL",
        )
        .bind(org_id)
        .bind(domain)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// The org requiring SSO for addresses at `domain`, if any.
    pub async fn sso_requirement(&self, domain: &str) -> Result<Option<SsoRequirement>> {
        Ok(self
            .org_sso_for_domain(domain)
            .await?
            .filter(|(_, s)| s.require_sso)
            .map(|(o, _)| SsoRequirement {
                org_name: o.name,
                org_slug: o.slug,
            }))
    }

    /// Adds a member with `role` unless they are one already. Returns whether they were added.
    pub async fn add_member_if_absent(
        &self,
        org_id: &str,
        user_id: &str,
        role: &str,
        now: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org_id, user_id) DO NOTHING",
        )
        .bind(org_id)
        .bind(user_id)
        .bind(role)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }
}
