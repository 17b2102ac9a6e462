//! The cloud API (`/v1/...`): bearer-token authentication (RFC 6750), `/v1/me`, and the CLI
//! version gate that answers 426 to CLIs older than the configured minimum.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey_proto::{
    ApiKeyInfo, ApiKeyList, ClaimAnonymousRequest, ClaimAnonymousResponse, CreateApiKeyRequest,
    CreateApiKeyResponse, Me, MeUser, OrgMembership, OrgRef, SessionInfo, SessionList,
};

use super::error::ApiError;
use super::oauth::verify_access;
use crate::config::parse_version;
use crate::domain::accounts::Role;
use crate::domain::secrets::hash_secret;
use crate::domain::tokens::{AccessClaims, looks_like_refresh_token};
use crate::state::{AppState, SharedState};
use crate::store::{ApiKeyRow, SessionRow, UserRow};

/// Header in which a CLI built on latchkey-client sends its version.
pub const CLIENT_VERSION_HEADER: &str = "latchkey-client-version";

/// The bearer token of a request (RFC 6750 §2.1).
pub fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::missing_token());
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::bad_auth_header("the Authorization header is not ASCII"))?;
    match v.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::bad_auth_header(
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

/// Middleware on `/v1`: a CLI that says it is older than `min_cli_version` gets 426.
pub async fn require_cli_version(
    State(state): State<SharedState>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(min) = state.config.min_cli_version.as_deref() {
        let sent = req
            .headers()
            .get(CLIENT_VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_version);
        if let (Some(sent), Some(min_v)) = (sent, parse_version(min))
            && sent < min_v
        {
            {
                let mut msg = format!("this CLI is too old; version {min} or newer is required");
                if let Some(url) = &state.config.download_url {
                    msg.push_str(&format!("; download it from {url}"));
                }
                return ApiError::new(StatusCode::UPGRADE_REQUIRED, "upgrade_required", msg)
                    .into_response();
            }
        }
    }
    next.run(req).await
}

/// The caller of a `/v1` endpoint: a verified bearer token, its session and its user.
pub struct Caller {
    /// Verified claims.
    pub claims: AccessClaims,
    /// The token's live session, if it has one.
    pub session: Option<SessionRow>,
    /// The user (enabled); for an API-key token, the key's creator.
    pub user: UserRow,
    /// The API key, when the token was obtained with one.
    pub api_key: Option<ApiKeyRow>,
}

/// Authenticates a `/v1` request by its bearer token.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = bearer(headers)?;
    let (claims, session) = verify_access(state, token)
        .await
        .map_err(ApiError::invalid_token)?;
    let api_key = if claims.sid.is_none()
        && crate::domain::api_keys::looks_like_public_id(&claims.client_id)
    {
        state.store.api_key(&claims.client_id).await?
    } else {
        None
    };
    let user_id = match &api_key {
        Some(k) => k.created_by.clone().unwrap_or_default(),
        None => claims.sub.clone(),
    };
    let user = state
        .store
        .user_by_id(&user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| ApiError::invalid_token("the account no longer exists or is disabled"))?;
    Ok(Caller {
        claims,
        session,
        user,
        api_key,
    })
}

/// The public listing of a key.
pub fn api_key_info(k: ApiKeyRow) -> ApiKeyInfo {
    ApiKeyInfo {
        id: k.id,
        name: k.name,
        org: OrgRef {
            id: k.org_id,
            slug: k.org_slug,
        },
        role: k.role,
        created_by: k.created_by_email,
        created_at: k.created_at,
        expires_at: k.expires_at,
        last_used_at: k.last_used_at,
    }
}

fn forbidden(msg: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", msg.to_owned())
}

/// Extracts a JSON body, or explains the expected shape.
pub fn json_body<T>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
    example: &str,
) -> Result<T, ApiError> {
    body.map(|Json(b)| b).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("send JSON like {example}: {}", e.body_text()),
        )
    })
}

/// The caller as a person: API-key tokens may not manage credentials.
pub fn person(c: &Caller) -> Result<(), ApiError> {
    if c.api_key.is_some() {
        Err(forbidden(
            "API keys cannot manage credentials; sign in as a person with `latchkey login`",
        ))
    } else {
        Ok(())
    }
}

/// Creates an API key for `user` in one of their orgs (default: `active_org`, else their first),
/// with a role no higher than theirs there. Shared by the API and the account page.
pub async fn new_api_key(
    state: &AppState,
    user: &UserRow,
    active_org: Option<&str>,
    req: CreateApiKeyRequest,
) -> Result<CreateApiKeyResponse, ApiError> {
    let name: String = req
        .name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    if name.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "give the key a name",
        ));
    }
    let memberships = state.store.memberships(&user.id).await?;
    let target = match req.org.as_deref() {
        Some(o) => memberships.iter().find(|m| m.org_id == o || m.slug == o),
        None => active_org
            .and_then(|id| memberships.iter().find(|m| m.org_id == id))
            .or(memberships.first()),
    }
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "you are not a member of that organization",
        )
    })?;
    let my_role = Role::parse(&target.role).unwrap_or(Role::Viewer);
    let role = match req.role.as_deref() {
        None => my_role.max(Role::Member),
        Some(r) => Role::parse(r).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("unknown role `{r}`; use owner, admin, member or viewer"),
            )
        })?,
    };
    if !crate::domain::roles::may_create_api_key(my_role, role) {
        return Err(forbidden(&format!(
            "a key cannot have more power than you: your role in {} is {}",
            target.slug,
            my_role.as_str()
        )));
    }
    let now = state.now();
    let expires_at = match req.expires_in_days {
        None => None,
        Some(d) if (1..=3650).contains(&d) => Some(now + i64::from(d) * 86_400),
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "expires_in_days must be between 1 and 3650",
            ));
        }
    };
    let (key, id) = crate::domain::api_keys::generate();
    state
        .store
        .insert_api_key(
            &id,
            &hash_secret(&key),
            &name,
            &target.org_id,
            role.as_str(),
            &user.id,
            now,
            expires_at,
        )
        .await?;
    tracing::info!(api_key = %id, user = %user.id, "api key created");
    let info = state
        .store
        .api_key(&id)
        .await?
        .map(api_key_info)
        .ok_or_else(|| ApiError::internal(&"the new key vanished"))?;
    Ok(CreateApiKeyResponse { key, api_key: info })
}

/// Revokes a key `user` may manage: one they created, or one of an org they administer.
pub async fn revoke_key_of(state: &AppState, user: &UserRow, id: &str) -> Result<(), ApiError> {
    let visible = state.store.api_keys_visible_to(&user.id).await?;
    if !visible.iter().any(|k| k.id == id) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no live API key you may manage has that id; list them with GET /v1/api-keys",
        ));
    }
    state.store.revoke_api_key(id, state.now()).await?;
    tracing::info!(api_key = %id, user = %user.id, "api key revoked");
    Ok(())
}

/// `POST /v1/api-keys`: creates a key in one of the caller's orgs, with a role no higher than
/// the caller's there. The key is in this answer only.
pub async fn create_api_key(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Json<CreateApiKeyRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<CreateApiKeyResponse>), ApiError> {
    let c = caller(&state, &headers).await?;
    person(&c)?;
    let req = json_body(
        body,
        r#"{"name": "ci", "org": "slug", "role": "member", "expires_in_days": 90}"#,
    )?;
    let created = new_api_key(&state, &c.user, c.claims.org.as_deref(), req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET /v1/api-keys`: keys the caller created and keys of orgs the caller administers.
pub async fn list_api_keys(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<ApiKeyList>, ApiError> {
    let c = caller(&state, &headers).await?;
    person(&c)?;
    let keys = state.store.api_keys_visible_to(&c.user.id).await?;
    Ok(Json(ApiKeyList {
        api_keys: keys.into_iter().map(api_key_info).collect(),
    }))
}

/// `DELETE /v1/api-keys/{id}`: its creator, or an admin or owner of its org, revokes it.
pub async fn revoke_api_key(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let c = caller(&state, &headers).await?;
    person(&c)?;
    revoke_key_of(&state, &c.user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn session_info(s: SessionRow) -> SessionInfo {
    SessionInfo {
        id: s.id,
        name: s.name,
        client_id: s.client_id,
        method: Some(s.method),
        ip: s.ip,
        user_agent: s.user_agent,
        created_at: s.created_at,
        last_used_at: s.last_used_at,
    }
}

/// `GET /v1/sessions`: the caller's live sessions, the current one named.
pub async fn list_sessions(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<SessionList>, ApiError> {
    let c = caller(&state, &headers).await?;
    person(&c)?;
    let sessions = state.store.sessions_of_user(&c.user.id).await?;
    Ok(Json(SessionList {
        sessions: sessions.into_iter().map(session_info).collect(),
        current: c.claims.sid,
    }))
}

/// `DELETE /v1/sessions/{id}`: ends one of the caller's sessions.
pub async fn revoke_session(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let c = caller(&state, &headers).await?;
    person(&c)?;
    if state
        .store
        .revoke_user_session(&c.user.id, &id, state.now())
        .await?
    {
        tracing::info!(session = %id, "session revoked by its user");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no live session of yours has that id; list them with GET /v1/sessions",
        ))
    }
}

/// `POST /v1/anonymous/claim`: moves the organizations of the anonymous identity whose
/// refresh token is presented into the caller's account, then retires that identity.
pub async fn claim_anonymous(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Json<ClaimAnonymousRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ClaimAnonymousResponse>, ApiError> {
    let c = caller(&state, &headers).await?;
    person(&c)?;
    let Json(req) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!(
                "send JSON {{\"refresh_token\": \"lkr_...\"}}: {}",
                e.body_text()
            ),
        )
    })?;
    let not_anon = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_anonymous",
            "that refresh token does not belong to a live anonymous session",
        )
    };
    let token = req.refresh_token.secret();
    if !looks_like_refresh_token(token) {
        return Err(not_anon());
    }
    let session = state
        .store
        .session_by_refresh(&hash_secret(token))
        .await?
        .filter(|s| s.revoked_at.is_none())
        .ok_or_else(not_anon)?;
    let anon = state
        .store
        .user_by_id(&session.user_id)
        .await?
        .filter(|u| u.anonymous)
        .ok_or_else(not_anon)?;
    if c.user.anonymous {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "anonymous_caller",
            "sign in to a real account first; an anonymous identity cannot claim another",
        ));
    }
    let moved = state
        .store
        .claim_anonymous(&anon.id, &c.user.id, state.now())
        .await?;
    tracing::info!(user = %c.user.id, orgs = moved.len(), "anonymous identity claimed");
    Ok(Json(ClaimAnonymousResponse {
        moved_orgs: moved
            .into_iter()
            .map(|m| OrgMembership {
                id: m.org_id,
                slug: m.slug,
                name: m.name,
                role: m.role,
            })
            .collect(),
    }))
}

/// `GET /v1/me`: who the bearer token belongs to.
pub async fn me(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<Me>, ApiError> {
    let Caller {
        claims,
        session,
        user,
        api_key,
    } = caller(&state, &headers).await?;
    let orgs: Vec<OrgMembership> = state
        .store
        .memberships(&user.id)
        .await?
        .into_iter()
        .map(|m| OrgMembership {
            id: m.org_id,
            slug: m.slug,
            name: m.name,
            role: m.role,
        })
        .collect();
    let mut org = claims
        .org
        .as_ref()
        .and_then(|id| orgs.iter().find(|o| &o.id == id).cloned());
    // An API key acts with its own (capped) role, not its creator's.
    if api_key.is_some()
        && let (Some(o), Some(role)) = (org.as_mut(), claims.role.as_ref())
    {
        o.role = role.clone();
    }
    Ok(Json(Me {
        user: MeUser {
            id: user.id,
            email: user.email,
            name: user.name,
            anonymous: user.anonymous,
        },
        org,
        orgs,
        session: session.map(session_info),
        client_id: claims.client_id,
        scope: claims.scope,
        token_expires_at: claims.exp,
        api_key: api_key.map(api_key_info),
    }))
}

/// Fallback for unknown `/v1` paths: the API's JSON error form.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint")
}
