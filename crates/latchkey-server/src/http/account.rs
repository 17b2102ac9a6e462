//! Signed-in pages: `/connect` (download and connect the CLI), `/account` (profile, password,
//! sessions, organizations, API keys), `/orgs/{slug}` (members, roles, invitations) and
//! `/invite/{token}`. Every change goes through the same functions as the cloud API, so the
//! permission rules are the same on both.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::orgs::{self, Actor};
use super::web::{WebCtx, WebForm};
use crate::domain::accounts::{self, Role, validate_new_password};
use crate::domain::roles::{self, Action};
use crate::domain::secrets::hash_secret;
use crate::state::{AppState, SharedState};
use crate::store::UserRow;

/// "5 minutes ago", "in 3 days": times relative to now, for tables.
pub fn relative(now: i64, t: i64) -> String {
    let d = t - now;
    let (n, unit) = match d.abs() {
        s if s < 60 => {
            return if d <= 0 {
                "just now".into()
            } else {
                "in a minute".into()
            };
        }
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s => (s / 86_400, "day"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if d < 0 {
        format!("{n} {unit}{plural} ago")
    } else {
        format!("in {n} {unit}{plural}")
    }
}

/// Redirects to sign-in (coming back to `here`) when nobody is signed in.
pub fn require_user(ctx: &WebCtx, here: &str) -> Result<UserRow, Box<Response>> {
    match &ctx.user {
        Some(u) => Ok(u.clone()),
        None => Err(Box::new(
            ctx.finish(
                Redirect::to(&format!(
                    "/signin?next={}",
                    url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>()
                ))
                .into_response(),
            ),
        )),
    }
}

/// The operating system and architecture a browser runs on, from its User-Agent:
/// (`linux`|`macos`|`windows`, `x86_64`|`arm64`, label).
pub fn platform(user_agent: &str) -> (&'static str, &'static str, String) {
    let ua = user_agent.to_ascii_lowercase();
    let os = if ua.contains("windows") {
        "windows"
    } else if ua.contains("mac os x") || ua.contains("macintosh") {
        "macos"
    } else {
        "linux"
    };
    // Browsers on Apple silicon report Intel; arm64 Macs are the common case now.
    let arch = if ua.contains("aarch64") || ua.contains("arm64") || (os == "macos") {
        "arm64"
    } else {
        "x86_64"
    };
    let label = match os {
        "windows" => format!("Windows ({arch})"),
        "macos" => "macOS (Apple silicon)".to_owned(),
        _ => format!("Linux ({arch})"),
    };
    (os, arch, label)
}

/// `GET /connect`.
pub async fn connect(State(st): State<SharedState>, ctx: WebCtx, headers: HeaderMap) -> Response {
    let user = match require_user(&ctx, "/connect") {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let org = match st.store.memberships(&user.id).await {
        Ok(m) => m.into_iter().next(),
        Err(e) => return ctx.internal(&e),
    };
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (os, arch, label) = platform(ua);
    let platform_url = st
        .config
        .download_asset_url
        .as_ref()
        .map(|t| t.replace("{os}", os).replace("{arch}", arch))
        .or_else(|| st.config.download_url.clone());
    ctx.page(
        "connect.html",
        "Connect your CLI",
        StatusCode::OK,
        json!({
            "main_class": "wide",
            "org": org.map(|m| json!({"name": m.name, "slug": m.slug, "role": m.role})),
            "platform": label,
            "platform_url": platform_url,
            "releases_url": st.config.download_url,
            "issuer": st.issuer,
        }),
    )
}

/// Renders `/account` with an optional notice, error or freshly created key.
async fn account_page(
    st: &AppState,
    ctx: &WebCtx,
    user: &UserRow,
    status: StatusCode,
    extra: Value,
) -> Response {
    let now = st.now();
    let (memberships, sessions, keys) = match tokio::try_join!(
        st.store.memberships(&user.id),
        st.store.sessions_of_user(&user.id),
        st.store.api_keys_visible_to(&user.id),
    ) {
        Ok(v) => v,
        Err(e) => return ctx.internal(&e),
    };
    let org_slug = |id: &Option<String>| {
        id.as_ref()
            .and_then(|id| memberships.iter().find(|m| &m.org_id == id))
            .map(|m| m.slug.clone())
    };
    let sessions: Vec<Value> = sessions
        .iter()
        .map(|s| {
            json!({
                "id": s.id, "name": s.name, "client": st.client(&s.client_id).map_or(s.client_id.clone(), |c| c.name.clone()),
                "method": s.method, "org": org_slug(&s.org_id), "ip": s.ip,
                "last_used": relative(now, s.last_used_at),
            })
        })
        .collect();
    let orgs: Vec<Value> = memberships
        .iter()
        .map(|m| json!({"name": m.name, "slug": m.slug, "role": m.role, "personal": m.personal}))
        .collect();
    let api_keys: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({
                "id": k.id, "name": k.name, "org": k.org_slug, "role": k.role,
                "expires": k.expires_at.map_or("never".to_owned(), |e| relative(now, e)),
                "last_used": k.last_used_at.map_or("never".to_owned(), |t| relative(now, t)),
            })
        })
        .collect();
    let identities = match super::sso_admin::identities_context(st, user).await {
        Ok(v) => v,
        Err(e) => return ctx.internal(&e),
    };
    let mut ctx_json = json!({
        "main_class": "wide", "sessions": sessions, "orgs": orgs, "api_keys": api_keys,
    });
    if let (Some(m), Value::Object(e)) = (ctx_json.as_object_mut(), identities) {
        m.extend(e);
    }
    if let (Some(m), Value::Object(e)) = (ctx_json.as_object_mut(), extra) {
        m.extend(e);
    }
    ctx.page("account.html", "Your account", status, ctx_json)
}

/// Query of pages that show a one-line notice after a redirect.
#[derive(Debug, Deserialize)]
pub struct NoticeQuery {
    done: Option<String>,
}

fn notice_text(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "profile" => "Profile saved.",
        "password" => "Password changed. Other browsers were signed out.",
        "session" => "Session revoked. That terminal is signed out.",
        "sessions" => "All sessions revoked.",
        "key-revoked" => "API key revoked.",
        "role" => "Role changed.",
        "removed" => "Member removed.",
        "transferred" => "Ownership transferred. You are now an admin.",
        "left" => "You left the organization.",
        "invitation-revoked" => "Invitation revoked.",
        "joined" => "Welcome! You joined the organization.",
        "created" => "Organization created.",
        "linked" => "Sign-in method linked. You can use it to sign in from now on.",
        "unlinked" => "Sign-in method unlinked.",
        "sso-saved" => "Single sign-on saved.",
        "sso-removed" => "Single sign-on removed.",
        "sso-required" => "Members from your verified domains must now sign in with SSO.",
        "sso-optional" => "SSO is no longer required.",
        "domain-added" => "Domain added. Publish the TXT record below, then verify it.",
        "domain-verified" => "Domain verified.",
        "domain-removed" => "Domain removed.",
        _ => return None,
    })
}

/// `GET /account`.
pub async fn account(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let user = match require_user(&ctx, "/account") {
        Ok(u) => u,
        Err(r) => return *r,
    };
    account_page(
        &st,
        &ctx,
        &user,
        StatusCode::OK,
        json!({"notice": notice_text(q.done.as_deref())}),
    )
    .await
}

/// Runs a signed-in form action: user and CSRF checked, then `f`; an `ApiError` re-renders the
/// account page with its message.
macro_rules! form_action {
    ($ctx:ident, $form:ident, $here:expr) => {{
        if let Some(r) = $ctx.csrf_rejection(&$form) {
            return r;
        }
        match require_user(&$ctx, $here) {
            Ok(u) => u,
            Err(r) => return *r,
        }
    }};
}

async fn account_error(st: &AppState, ctx: &WebCtx, user: &UserRow, e: ApiError) -> Response {
    let (status, msg) = e.parts();
    account_page(st, ctx, user, status, json!({"error": msg})).await
}

/// `POST /account/profile`.
pub async fn save_profile(
    State(st): State<SharedState>,
    ctx: WebCtx,
    WebForm(form): WebForm,
) -> Response {
    let user = form_action!(ctx, form, "/account");
    let name: String = form
        .get("name")
        .unwrap_or("")
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let name = (!name.is_empty()).then_some(name);
    if let Err(e) = st
        .store
        .set_user_name(&user.id, name.as_deref(), st.now())
        .await
    {
        return ctx.internal(&e);
    }
    Redirect::to("/account?done=profile").into_response()
}

/// `POST /account/password`: needs the current password; other web sessions end.
pub async fn change_password(
    State(st): State<SharedState>,
    ctx: WebCtx,
    WebForm(form): WebForm,
) -> Response {
    let user = form_action!(ctx, form, "/account");
    let current = form.get("current").unwrap_or("").to_owned();
    let new = form.get("new").unwrap_or("").to_owned();
    if let Err(msg) = validate_new_password(&new) {
        return account_page(
            &st,
            &ctx,
            &user,
            StatusCode::BAD_REQUEST,
            json!({"error": msg}),
        )
        .await;
    }
    let phc = user.password_hash.clone();
    // Someone who signs in only through a provider has no password to confirm: a sign-in in
    // the last 10 minutes stands in for it, so a stolen old cookie cannot add one.
    if phc.is_none() && ctx.signed_in_for().is_none_or(|s| s > 600) {
        return account_page(
            &st,
            &ctx,
            &user,
            StatusCode::UNAUTHORIZED,
            json!({"error": "Sign out and sign in again, then set your password within 10 minutes."}),
        )
        .await;
    }
    let ok = phc.is_none()
        || st
            .hash_work(move || accounts::verify_password(&current, phc.as_deref()))
            .await
            .unwrap_or(false);
    if !ok {
        return account_page(
            &st,
            &ctx,
            &user,
            StatusCode::UNAUTHORIZED,
            json!({"error": "The current password is wrong."}),
        )
        .await;
    }
    let new_phc = match st.hash_work(move || accounts::hash_password(&new)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return ctx.internal(&e),
        Err(e) => return ctx.internal(&e),
    };
    if let Err(e) = st
        .store
        .set_password(&user.id, &new_phc, ctx.session_hash(), st.now())
        .await
    {
        return ctx.internal(&e);
    }
    tracing::info!(user = %user.id, "password changed");
    Redirect::to("/account?done=password").into_response()
}

/// `POST /account/sessions/{id}/revoke`.
pub async fn revoke_session(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path(id): Path<String>,
    WebForm(form): WebForm,
) -> Response {
    let user = form_action!(ctx, form, "/account");
    match st.store.revoke_user_session(&user.id, &id, st.now()).await {
        Ok(_) => Redirect::to("/account?done=session#sessions").into_response(),
        Err(e) => ctx.internal(&e),
    }
}

/// `POST /account/sessions/revoke-all`.
pub async fn revoke_all_sessions(
    State(st): State<SharedState>,
    ctx: WebCtx,
    WebForm(form): WebForm,
) -> Response {
    let user = form_action!(ctx, form, "/account");
    let now = st.now();
    let sessions = match st.store.sessions_of_user(&user.id).await {
        Ok(s) => s,
        Err(e) => return ctx.internal(&e),
    };
    for s in sessions {
        if let Err(e) = st.store.revoke_session(&s.id, now).await {
            return ctx.internal(&e);
        }
    }
    Redirect::to("/account?done=sessions#sessions").into_response()
}

/// `POST /account/api-keys`: shows the new key once.
pub async fn create_api_key(
    State(st): State<SharedState>,
    ctx: WebCtx,
    WebForm(form): WebForm,
) -> Response {
    let user = form_action!(ctx, form, "/account");
    let req = latchkey_proto::CreateApiKeyRequest {
        name: form.get("name").unwrap_or("").to_owned(),
        org: form.get("org").map(str::to_owned),
        role: form.get("role").map(str::to_owned),
        expires_in_days: form.get("expires_in_days").and_then(|d| d.parse().ok()),
    };
    match super::api::new_api_key(&st, &user, None, req).await {
        Ok(created) => {
            account_page(
                &st,
                &ctx,
                &user,
                StatusCode::CREATED,
                json!({"new_key": created.key}),
            )
            .await
        }
        Err(e) => account_error(&st, &ctx, &user, e).await,
    }
}

/// `POST /account/api-keys/{id}/revoke`.
pub async fn revoke_api_key(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path(id): Path<String>,
    WebForm(form): WebForm,
) -> Response {
    let user = form_action!(ctx, form, "/account");
    match super::api::revoke_key_of(&st, &user, &id).await {
        Ok(()) => Redirect::to("/account?done=key-revoked#api-keys").into_response(),
        Err(e) => account_error(&st, &ctx, &user, e).await,
    }
}

/// `POST /orgs`: create an org from the account page.
pub async fn create_org(
    State(st): State<SharedState>,
    ctx: WebCtx,
    WebForm(form): WebForm,
) -> Response {
    let user = form_action!(ctx, form, "/account");
    match orgs::create_org(&st, &user.id, form.get("name").unwrap_or(""), None).await {
        Ok(o) => Redirect::to(&format!("/orgs/{}?done=created", o.slug)).into_response(),
        Err(e) => account_error(&st, &ctx, &user, e).await,
    }
}

fn actor(user: &UserRow) -> Actor<'_> {
    Actor {
        user_id: &user.id,
        key: None,
    }
}

/// Renders `/orgs/{slug}`.
pub async fn org_page(
    st: &AppState,
    ctx: &WebCtx,
    user: &UserRow,
    slug: &str,
    status: StatusCode,
    extra: Value,
) -> Response {
    let (org, role) = match orgs::org_and_role(st, &actor(user), slug).await {
        Ok(v) => v,
        Err(_) => {
            return ctx.message(
                StatusCode::NOT_FOUND,
                "Organization not found",
                "You are not a member of an organization by that name.",
                false,
            );
        }
    };
    let (members, invitations) = match tokio::try_join!(
        st.store.members(&org.id),
        st.store.pending_invitations(&org.id, st.now()),
    ) {
        Ok(v) => v,
        Err(e) => return ctx.internal(&e),
    };
    let members: Vec<Value> = members
        .iter()
        .map(|m| {
            let target = Role::parse(&m.role).unwrap_or(Role::Viewer);
            json!({
                "user_id": m.user_id, "email": m.email, "name": m.name, "role": m.role,
                "is_me": m.user_id == user.id,
                "manageable": m.user_id != user.id && roles::may_manage(role, target, None),
            })
        })
        .collect();
    let all = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];
    let assignable: Vec<&str> = all
        .iter()
        .filter(|r| roles::may_manage(role, Role::Viewer, Some(**r)))
        .map(|r| r.as_str())
        .collect();
    let invitable: Vec<&str> = all
        .iter()
        .filter(|r| roles::may_invite(role, **r))
        .map(|r| r.as_str())
        .collect();
    let invitations: Vec<Value> = invitations
        .iter()
        .map(|i| json!({"id": i.id, "email": i.email, "role": i.role}))
        .collect();
    let sso = match super::sso_admin::org_sso_context(st, &org, role).await {
        Ok(v) => v,
        Err(e) => return ctx.internal(&e),
    };
    let mut c = json!({
        "main_class": "wide",
        "org": {"name": org.name, "slug": org.slug},
        "personal": org.personal,
        "role": role.as_str(),
        "members": members,
        "assignable": assignable,
        "invitable": invitable,
        "invitations": invitations,
        "can_invite": roles::allowed(role, Action::Invite),
        "can_transfer": roles::allowed(role, Action::TransferOwnership),
        "sso": sso,
    });
    if let (Some(m), Value::Object(e)) = (c.as_object_mut(), extra) {
        m.extend(e);
    }
    ctx.page("org.html", &org.name, status, c)
}

/// `GET /orgs/{slug}`.
pub async fn org(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path(slug): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let user = match require_user(&ctx, &format!("/orgs/{slug}")) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    org_page(
        &st,
        &ctx,
        &user,
        &slug,
        StatusCode::OK,
        json!({"notice": notice_text(q.done.as_deref())}),
    )
    .await
}

async fn org_result(
    st: &AppState,
    ctx: &WebCtx,
    user: &UserRow,
    slug: &str,
    r: Result<(), ApiError>,
    done: &str,
) -> Response {
    match r {
        Ok(()) => Redirect::to(&format!("/orgs/{slug}?done={done}")).into_response(),
        Err(e) => {
            let (status, msg) = e.parts();
            org_page(st, ctx, user, slug, status, json!({"error": msg})).await
        }
    }
}

/// `POST /orgs/{slug}/invite`: shows the link to pass on.
pub async fn invite(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path(slug): Path<String>,
    WebForm(form): WebForm,
) -> Response {
    let user = form_action!(ctx, form, &format!("/orgs/{slug}"));
    let result = async {
        let (o, role) = orgs::org_and_role(&st, &actor(&user), &slug).await?;
        let invited = orgs::parse_role(form.get("role").unwrap_or("member"))?;
        orgs::invite(
            &st,
            &user.id,
            &o,
            role,
            form.get("email").unwrap_or(""),
            invited,
        )
        .await
    }
    .await;
    match result {
        Ok(inv) => {
            org_page(
                &st,
                &ctx,
                &user,
                &slug,
                StatusCode::CREATED,
                json!({"invite_link": inv.link, "invite_email": inv.email}),
            )
            .await
        }
        Err(e) => {
            let (status, msg) = e.parts();
            org_page(&st, &ctx, &user, &slug, status, json!({"error": msg})).await
        }
    }
}

/// `POST /orgs/{slug}/invitations/{id}/revoke`.
pub async fn revoke_invitation(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path((slug, id)): Path<(String, String)>,
    WebForm(form): WebForm,
) -> Response {
    let user = form_action!(ctx, form, &format!("/orgs/{slug}"));
    let r = async {
        let (o, role) = orgs::org_and_role(&st, &actor(&user), &slug).await?;
        if !roles::allowed(role, Action::Invite) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "your role may not revoke invitations",
            ));
        }
        st.store.revoke_invitation(&o.id, &id, st.now()).await?;
        Ok(())
    }
    .await;
    org_result(&st, &ctx, &user, &slug, r, "invitation-revoked").await
}

/// `POST /orgs/{slug}/members/{user}/role`.
pub async fn set_role(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path((slug, target)): Path<(String, String)>,
    WebForm(form): WebForm,
) -> Response {
    let user = form_action!(ctx, form, &format!("/orgs/{slug}"));
    let r = async {
        let role = orgs::parse_role(form.get("role").unwrap_or(""))?;
        orgs::set_role(&st, &actor(&user), &slug, &target, role).await
    }
    .await;
    org_result(&st, &ctx, &user, &slug, r, "role").await
}

/// `POST /orgs/{slug}/members/{user}/remove`.
pub async fn remove_member(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path((slug, target)): Path<(String, String)>,
    WebForm(form): WebForm,
) -> Response {
    let user = form_action!(ctx, form, &format!("/orgs/{slug}"));
    let r = orgs::remove(&st, &actor(&user), &slug, &target).await;
    org_result(&st, &ctx, &user, &slug, r, "removed").await
}

/// `POST /orgs/{slug}/leave`.
pub async fn leave(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path(slug): Path<String>,
    WebForm(form): WebForm,
) -> Response {
    let user = form_action!(ctx, form, &format!("/orgs/{slug}"));
    match orgs::remove(&st, &actor(&user), &slug, &user.id).await {
        Ok(()) => Redirect::to("/account?done=left#orgs").into_response(),
        Err(e) => {
            let (status, msg) = e.parts();
            org_page(&st, &ctx, &user, &slug, status, json!({"error": msg})).await
        }
    }
}

/// `POST /orgs/{slug}/transfer`.
pub async fn transfer(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path(slug): Path<String>,
    WebForm(form): WebForm,
) -> Response {
    let user = form_action!(ctx, form, &format!("/orgs/{slug}"));
    let to = form.get("user_id").unwrap_or("").to_owned();
    let r = orgs::transfer_to(&st, &actor(&user), &slug, &to).await;
    org_result(&st, &ctx, &user, &slug, r, "transferred").await
}

/// `GET /invite/{token}`: sign in first, then a page to accept.
pub async fn invitation(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path(token): Path<String>,
) -> Response {
    let user = match require_user(&ctx, &format!("/invite/{token}")) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let _ = user;
    let inv = match st.store.invitation_by_token(&hash_secret(&token)).await {
        Ok(i) => i,
        Err(e) => return ctx.internal(&e),
    };
    let now = st.now();
    let Some(inv) =
        inv.filter(|i| i.accepted_at.is_none() && i.revoked_at.is_none() && i.expires_at > now)
    else {
        return ctx.message(
            StatusCode::GONE,
            "Invitation no longer valid",
            "It was used, revoked or has expired. Ask for a new one.",
            false,
        );
    };
    let org_name = match st.store.org(&inv.org_id).await {
        Ok(o) => o.map(|o| o.name).unwrap_or_default(),
        Err(e) => return ctx.internal(&e),
    };
    ctx.page(
        "invite.html",
        "Invitation",
        StatusCode::OK,
        json!({"org_name": org_name, "role": inv.role, "token": token}),
    )
}

/// `POST /invite/{token}`.
pub async fn accept_invitation(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path(token): Path<String>,
    WebForm(form): WebForm,
) -> Response {
    let user = form_action!(ctx, form, &format!("/invite/{token}"));
    match orgs::accept(&st, &user, &token).await {
        Ok(m) => Redirect::to(&format!("/orgs/{}?done=joined", m.slug)).into_response(),
        Err(e) => {
            let (status, msg) = e.parts();
            ctx.message(status, "Could not accept the invitation", &msg, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_from_user_agents() {
        let linux = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36";
        let mac =
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Safari/605.1.15";
        let win = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120";
        let arm = "Mozilla/5.0 (X11; Linux aarch64) AppleWebKit/537.36 Chrome/120";
        assert_eq!(platform(linux).0, "linux");
        assert_eq!(platform(linux).1, "x86_64");
        assert_eq!(platform(mac).0, "macos");
        assert_eq!(platform(win).0, "windows");
        assert_eq!(platform(arm).1, "arm64");
    }

    #[test]
    fn relative_times() {
        assert_eq!(relative(1000, 1000), "just now");
        assert_eq!(relative(1000, 1000 - 120), "2 minutes ago");
        assert_eq!(relative(0, 86_400 * 3), "in 3 days");
        assert_eq!(relative(7200, 3600), "1 hour ago");
    }
}
