//! The cloud API (`/v1/...`): bearer-token authentication (RFC 6750), `/v1/me`, and the CLI
//! version gate that answers 426 to CLIs older than the configured minimum.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey_proto::{Me, MeUser, OrgMembership, SessionInfo};

use super::error::ApiError;
use super::oauth::verify_access;
use crate::config::parse_version;
use crate::state::SharedState;

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

/// `GET /v1/me`: who the bearer token belongs to.
pub async fn me(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<Me>, ApiError> {
    let token = bearer(&headers)?;
    let (claims, session) = verify_access(&state, token)
        .await
        .map_err(ApiError::invalid_token)?;
    let user = state
        .store
        .user_by_id(&claims.sub)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| ApiError::invalid_token("the account no longer exists or is disabled"))?;
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
        session: session.map(|s| SessionInfo {
            id: s.id,
            name: s.name,
            client_id: s.client_id,
            method: Some(s.method),
            ip: s.ip,
            user_agent: s.user_agent,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
        }),
        client_id: claims.client_id,
        scope: claims.scope,
        token_expires_at: claims.exp,
    }))
}

/// Fallback for unknown `/v1` paths: the API's JSON error form.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint")
}
