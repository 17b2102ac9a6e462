//! The cloud API (`/v1/...`): bearer-token authentication (RFC 6750), `/v1/me`, and the CLI
//! version gate that answers 426 to CLIs older than the configured minimum.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey_proto::{
    ClaimAnonymousRequest, ClaimAnonymousResponse, Me, MeUser, OrgMembership, SessionInfo,
    SessionList,
};

use super::error::ApiError;
use super::oauth::verify_access;
use crate::config::parse_version;
use crate::domain::secrets::hash_secret;
use crate::domain::tokens::{AccessClaims, looks_like_refresh_token};
use crate::state::{AppState, SharedState};
use crate::store::{SessionRow, UserRow};

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
    /// The user (enabled).
    pub user: UserRow,
}

/// Authenticates a `/v1` request by its bearer token.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = bearer(headers)?;
    let (claims, session) = verify_access(state, token)
        .await
        .map_err(ApiError::invalid_token)?;
    let user = state
        .store
        .user_by_id(&claims.sub)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| ApiError::invalid_token("the account no longer exists or is disabled"))?;
    Ok(Caller {
        claims,
        session,
        user,
    })
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
    let org = claims
        .org
        .as_ref()
        .and_then(|id| orgs.iter().find(|o| &o.id == id).cloned());
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
    }))
}

/// Fallback for unknown `/v1` paths: the API's JSON error form.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint")
}
