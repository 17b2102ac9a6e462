//! The organizations API (`/v1/orgs…`, `/v1/invitations…`, `/v1/session/org`). Permissions come
//! from `domain::roles`; the last-owner invariant from the store.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use latchkey_proto::{Invitation, Member, OrgDetail, OrgList, OrgMembership, SwitchOrgRequest};
use serde::Deserialize;

use super::api::{Caller, caller, json_body, person};
use super::error::ApiError;
use crate::domain::accounts::{Role, normalize_email};
use crate::domain::roles::{self, Action};
use crate::domain::secrets::{hash_secret, new_secret};
use crate::state::{AppState, SharedState};
use crate::store::{OrgChangeError, OrgRow};

/// Lifetime of an invitation link, seconds.
pub const INVITATION_TTL: i64 = 7 * 86_400;

fn not_member() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no organization of yours has that id or slug; list them with GET /v1/orgs",
    )
}

fn denied(action: &str, role: Role) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("your role ({}) may not {action}", role.as_str()),
    )
}

fn org_change(e: OrgChangeError) -> ApiError {
    match e {
        OrgChangeError::LastOwner => ApiError::new(
            StatusCode::CONFLICT,
            "last_owner",
            "an organization must keep an owner: make someone else owner first",
        ),
        OrgChangeError::NotMember => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "that user is not a member",
        ),
        OrgChangeError::InvitationInvalid => ApiError::new(
            StatusCode::GONE,
            "invitation_invalid",
            "this invitation was used, revoked or has expired; ask for a new one",
        ),
        OrgChangeError::WrongEmail => ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_email",
            "this invitation is for another email address; sign in with that address",
        ),
        OrgChangeError::Store(e) => e.into(),
    }
}

/// Who acts: a person, or an API key (acting with its own role, only in its own org).
pub struct Actor<'a> {
    /// The person (for a key, its creator).
    pub user_id: &'a str,
    /// For an API key: its org and role.
    pub key: Option<(&'a str, Role)>,
}

impl Caller {
    /// The caller as an actor on organizations.
    pub fn actor(&self) -> Actor<'_> {
        Actor {
            user_id: &self.user.id,
            key: self.api_key.as_ref().map(|k| {
                (
                    k.org_id.as_str(),
                    self.claims
                        .role
                        .as_deref()
                        .and_then(Role::parse)
                        .unwrap_or(Role::Viewer),
                )
            }),
        }
    }
}

/// The org named by id or slug and the actor's role in it.
pub async fn org_and_role(
    st: &AppState,
    a: &Actor<'_>,
    org: &str,
) -> Result<(OrgRow, Role), ApiError> {
    let row = st.store.org(org).await?.ok_or_else(not_member)?;
    let role = st
        .store
        .role_of(&row.id, a.user_id)
        .await?
        .ok_or_else(not_member)?;
    if let Some((key_org, key_role)) = a.key {
        if key_org != row.id {
            return Err(not_member());
        }
        return Ok((row, key_role.max(role)));
    }
    Ok((row, role))
}

/// Creates an org with `user_id` as owner.
pub async fn create_org(
    st: &AppState,
    user_id: &str,
    name: &str,
    slug: Option<String>,
) -> Result<OrgRow, ApiError> {
    let name = clean_name(name)?;
    let slug = slug.unwrap_or_else(|| slugify(&name));
    if !valid_slug(&slug) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "a slug is 2 to 40 characters of a-z, 0-9 and dashes",
        ));
    }
    match st.store.create_org(&slug, &name, user_id, st.now()).await {
        Ok(o) => Ok(o),
        Err(crate::store::StoreError::Conflict) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "slug_taken",
            format!("the slug `{slug}` is taken; choose another"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Changes `user`'s role in `org`, if the actor may.
pub async fn set_role(
    st: &AppState,
    a: &Actor<'_>,
    org: &str,
    user: &str,
    new_role: Role,
) -> Result<(), ApiError> {
    let (o, role) = org_and_role(st, a, org).await?;
    let target = st
        .store
        .role_of(&o.id, user)
        .await?
        .ok_or_else(|| org_change(OrgChangeError::NotMember))?;
    if !roles::may_manage(role, target, Some(new_role)) {
        return Err(denied(
            &format!("make a {} a {}", target.as_str(), new_role.as_str()),
            role,
        ));
    }
    st.store
        .change_role(&o.id, user, new_role)
        .await
        .map_err(org_change)
}

/// Removes `user` from `org` (or lets the actor leave, with their own id).
pub async fn remove(st: &AppState, a: &Actor<'_>, org: &str, user: &str) -> Result<(), ApiError> {
    let (o, role) = org_and_role(st, a, org).await?;
    if user != a.user_id {
        let target = st
            .store
            .role_of(&o.id, user)
            .await?
            .ok_or_else(|| org_change(OrgChangeError::NotMember))?;
        if !roles::may_manage(role, target, None) {
            return Err(denied(&format!("remove a {}", target.as_str()), role));
        }
    } else if o.personal {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "personal_org",
            "you cannot leave your personal organization",
        ));
    }
    st.store
        .remove_member(&o.id, user)
        .await
        .map_err(org_change)
}

/// Makes `to` the owner of `org`; the actor becomes admin.
pub async fn transfer_to(
    st: &AppState,
    a: &Actor<'_>,
    org: &str,
    to: &str,
) -> Result<(), ApiError> {
    let (o, role) = org_and_role(st, a, org).await?;
    if !roles::allowed(role, Action::TransferOwnership) {
        return Err(denied("transfer ownership", role));
    }
    if to == a.user_id {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "you already own this organization",
        ));
    }
    st.store
        .transfer_ownership(&o.id, a.user_id, to)
        .await
        .map_err(org_change)
}

/// Accepts an invitation for a signed-in person.
pub async fn accept(
    st: &AppState,
    user: &crate::store::UserRow,
    token: &str,
) -> Result<OrgMembership, ApiError> {
    let email = user.email.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "anonymous_caller",
            "sign in to a real account to accept an invitation",
        )
    })?;
    let inv = st
        .store
        .accept_invitation(&hash_secret(token.trim()), &user.id, &email, st.now())
        .await
        .map_err(org_change)?;
    let o = st.store.org(&inv.org_id).await?.ok_or_else(not_member)?;
    let role = st
        .store
        .role_of(&o.id, &user.id)
        .await?
        .unwrap_or(Role::Viewer);
    Ok(membership(&o, role))
}

/// An org with a role, as the API lists it.
pub fn membership(o: &OrgRow, role: Role) -> OrgMembership {
    OrgMembership {
        id: o.id.clone(),
        slug: o.slug.clone(),
        name: o.name.clone(),
        role: role.as_str().to_owned(),
    }
}

/// `GET /v1/orgs`.
pub async fn list(
    State(st): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<OrgList>, ApiError> {
    let c = caller(&st, &headers).await?;
    let orgs = st
        .store
        .memberships(&c.user.id)
        .await?
        .into_iter()
        .map(|m| OrgMembership {
            id: m.org_id,
            slug: m.slug,
            name: m.name,
            role: m.role,
        })
        .collect();
    let active = c
        .session
        .as_ref()
        .and_then(|s| s.org_id.clone())
        .or(c.claims.org.clone());
    Ok(Json(OrgList { orgs, active }))
}

/// Body of `POST /v1/orgs` and `PATCH /v1/orgs/{org}`.
#[derive(Debug, Deserialize)]
pub struct OrgBody {
    name: String,
    #[serde(default)]
    slug: Option<String>,
}

fn clean_name(raw: &str) -> Result<String, ApiError> {
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    if name.is_empty() {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "give the organization a name",
        ))
    } else {
        Ok(name)
    }
}

/// Checks a slug: 2–40 of `a-z 0-9 -`, not starting or ending with `-`.
pub fn valid_slug(s: &str) -> bool {
    (2..=40).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A slug from a name: lower-case, other characters become dashes. Always a [`valid_slug`]: a
/// name with no ASCII letter or digit (`日本`) gets `org-` and a random suffix.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let s: String = out.trim_matches('-').chars().take(40).collect();
    // Cut at 40, it may end with a dash again.
    let s = s.trim_end_matches('-');
    match s.len() {
        0 => {
            use crate::domain::secrets::{hex, random_bytes};
            format!("org-{}", hex(&random_bytes::<4>()))
        }
        1 => format!("org-{s}"),
        _ => s.to_owned(),
    }
}

/// `POST /v1/orgs`: creates an org with the caller as owner.
pub async fn create(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Result<Json<OrgBody>, JsonRejection>,
) -> Result<(StatusCode, Json<OrgMembership>), ApiError> {
    let c = caller(&st, &headers).await?;
    person(&c)?;
    let b = json_body(body, r#"{"name": "Acme", "slug": "acme"}"#)?;
    let o = create_org(&st, &c.user.id, &b.name, b.slug).await?;
    Ok((StatusCode::CREATED, Json(membership(&o, Role::Owner))))
}

/// `GET /v1/orgs/{org}`.
pub async fn detail(
    State(st): State<SharedState>,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> Result<Json<OrgDetail>, ApiError> {
    let c = caller(&st, &headers).await?;
    let (o, role) = org_and_role(&st, &c.actor(), &org).await?;
    let members = st
        .store
        .members(&o.id)
        .await?
        .into_iter()
        .map(|m| Member {
            user_id: m.user_id,
            email: m.email,
            name: m.name,
            role: m.role,
            joined_at: m.joined_at,
        })
        .collect();
    Ok(Json(OrgDetail {
        org: membership(&o, role),
        personal: o.personal,
        members,
    }))
}

/// `PATCH /v1/orgs/{org}`: rename.
pub async fn rename(
    State(st): State<SharedState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Result<Json<OrgBody>, JsonRejection>,
) -> Result<Json<OrgMembership>, ApiError> {
    let c = caller(&st, &headers).await?;
    let (o, role) = org_and_role(&st, &c.actor(), &org).await?;
    if !roles::allowed(role, Action::Rename) {
        return Err(denied("rename the organization", role));
    }
    let b = json_body(body, r#"{"name": "New name"}"#)?;
    let name = clean_name(&b.name)?;
    st.store.rename_org(&o.id, &name).await?;
    Ok(Json(membership(&OrgRow { name, ..o }, role)))
}

/// Body of `POST /v1/orgs/{org}/invitations`.
#[derive(Debug, Deserialize)]
pub struct InviteBody {
    email: String,
    #[serde(default)]
    role: Option<String>,
}

/// Parses a role name, or explains the choices.
pub fn parse_role(r: &str) -> Result<Role, ApiError> {
    Role::parse(r).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("unknown role `{r}`; use owner, admin, member or viewer"),
        )
    })
}

/// Creates an invitation and runs the configured invite hook; shared by the API and the pages.
pub async fn invite(
    st: &AppState,
    inviter: &str,
    org: &OrgRow,
    actor_role: Role,
    email_raw: &str,
    role: Role,
) -> Result<Invitation, ApiError> {
    let email = normalize_email(email_raw)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", m))?;
    if !roles::may_invite(actor_role, role) {
        return Err(denied(
            &format!("invite someone as {}", role.as_str()),
            actor_role,
        ));
    }
    let token = new_secret("lki_");
    let now = st.now();
    let inv = st
        .store
        .create_invitation(
            &hash_secret(&token),
            &org.id,
            &email,
            role,
            inviter,
            now,
            now + INVITATION_TTL,
        )
        .await?;
    let link = format!("{}/invite/{token}", st.issuer);
    st.run_invite_hook(&email, &org.name, role.as_str(), &link)
        .await;
    tracing::info!(org = %org.id, invitation = %inv.id, "invitation created");
    Ok(Invitation {
        id: inv.id,
        email: inv.email,
        role: inv.role,
        expires_at: inv.expires_at,
        link: Some(link),
    })
}

/// `POST /v1/orgs/{org}/invitations`: the answer holds the link to send.
pub async fn create_invitation(
    State(st): State<SharedState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Result<Json<InviteBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Invitation>), ApiError> {
    let c = caller(&st, &headers).await?;
    person(&c)?;
    let (o, role) = org_and_role(&st, &c.actor(), &org).await?;
    let b = json_body(body, r#"{"email": "ada@example.com", "role": "member"}"#)?;
    let invited = parse_role(b.role.as_deref().unwrap_or("member"))?;
    let inv = invite(&st, &c.user.id, &o, role, &b.email, invited).await?;
    Ok((StatusCode::CREATED, Json(inv)))
}

/// `GET /v1/orgs/{org}/invitations`: pending ones.
pub async fn list_invitations(
    State(st): State<SharedState>,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> Result<Json<Vec<Invitation>>, ApiError> {
    let c = caller(&st, &headers).await?;
    let (o, role) = org_and_role(&st, &c.actor(), &org).await?;
    if !roles::allowed(role, Action::Invite) {
        return Err(denied("see invitations", role));
    }
    let list = st
        .store
        .pending_invitations(&o.id, st.now())
        .await?
        .into_iter()
        .map(|i| Invitation {
            id: i.id,
            email: i.email,
            role: i.role,
            expires_at: i.expires_at,
            link: None,
        })
        .collect();
    Ok(Json(list))
}

/// `DELETE /v1/orgs/{org}/invitations/{id}`.
pub async fn revoke_invitation(
    State(st): State<SharedState>,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let c = caller(&st, &headers).await?;
    let (o, role) = org_and_role(&st, &c.actor(), &org).await?;
    if !roles::allowed(role, Action::Invite) {
        return Err(denied("revoke invitations", role));
    }
    if st.store.revoke_invitation(&o.id, &id, st.now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no pending invitation has that id",
        ))
    }
}

/// Body of `POST /v1/invitations/accept`.
#[derive(Debug, Deserialize)]
pub struct AcceptBody {
    token: String,
}

/// `POST /v1/invitations/accept`: the signed-in person joins with the invited role.
pub async fn accept_invitation(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Result<Json<AcceptBody>, JsonRejection>,
) -> Result<Json<OrgMembership>, ApiError> {
    let c = caller(&st, &headers).await?;
    person(&c)?;
    let b = json_body(body, r#"{"token": "lki_..."}"#)?;
    Ok(Json(accept(&st, &c.user, &b.token).await?))
}

/// Body of `PATCH /v1/orgs/{org}/members/{user}`.
#[derive(Debug, Deserialize)]
pub struct RoleBody {
    role: String,
}

/// `PATCH /v1/orgs/{org}/members/{user}`: change a member's role.
pub async fn change_role(
    State(st): State<SharedState>,
    headers: HeaderMap,
    Path((org, user)): Path<(String, String)>,
    body: Result<Json<RoleBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let c = caller(&st, &headers).await?;
    person(&c)?;
    let b = json_body(body, r#"{"role": "admin"}"#)?;
    set_role(&st, &c.actor(), &org, &user, parse_role(&b.role)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/orgs/{org}/members/{user}`: remove a member, or leave (your own id).
pub async fn remove_member(
    State(st): State<SharedState>,
    headers: HeaderMap,
    Path((org, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let c = caller(&st, &headers).await?;
    person(&c)?;
    remove(&st, &c.actor(), &org, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /v1/orgs/{org}/transfer`.
#[derive(Debug, Deserialize)]
pub struct TransferBody {
    user_id: String,
}

/// `POST /v1/orgs/{org}/transfer`: the owner makes another member the owner and becomes admin.
pub async fn transfer(
    State(st): State<SharedState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Result<Json<TransferBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let c = caller(&st, &headers).await?;
    person(&c)?;
    let b = json_body(body, r#"{"user_id": "usr_..."}"#)?;
    transfer_to(&st, &c.actor(), &org, &b.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/session/org`: switches the active org of the caller's session; the next refresh
/// (or `latchkey orgs switch`, which refreshes at once) carries it in the access token.
pub async fn switch_org(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Result<Json<SwitchOrgRequest>, JsonRejection>,
) -> Result<Json<OrgMembership>, ApiError> {
    let c = caller(&st, &headers).await?;
    person(&c)?;
    let b = json_body(body, r#"{"org": "acme"}"#)?;
    let session = c.session.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_session",
            "this token has no session to switch",
        )
    })?;
    let (o, role) = org_and_role(&st, &c.actor(), &b.org).await?;
    st.store.set_session_org(&session.id, &o.id).await?;
    tracing::info!(session = %session.id, org = %o.id, "active org switched");
    Ok(Json(membership(&o, role)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Acme Corp!"), "acme-corp");
        assert_eq!(slugify("A"), "org-a");
        assert!(valid_slug("acme-corp"));
        assert!(!valid_slug("-acme"));
        assert!(!valid_slug("Acme"));
        assert!(!valid_slug("a"));
    }
}
