//! The authorization endpoint (RFC 6749 §4.1) with PKCE S256 (RFC 7636) for loopback
//! redirects (RFC 8252): validation, sign-in hand-off, the consent page, and code issuance.
//!
//! Until the client and redirect URI are known good, errors are shown on a page and never
//! redirected (RFC 6749 §4.1.2.1); after that they go back to the client with `state`.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_proto::{ErrorCode, GRANT_AUTHORIZATION_CODE};
use serde_json::json;

use super::extract::{ClientIp, Params, UserAgent};
use super::web::{WebCtx, WebForm};
use crate::domain::pkce::{check_loopback_redirect, valid_pkce_string};
use crate::domain::scope::Scope;
use crate::domain::secrets::{hash_secret, new_secret};
use crate::state::{AppState, SharedState};
use crate::store::AuthCodeRow;

/// Lifetime of an authorization code, seconds (RFC 6749 §4.1.2 recommends at most 10 min).
pub const CODE_TTL: i64 = 60;

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthzRequest {
    client_id: String,
    client_name: String,
    redirect_uri: String,
    state: Option<String>,
    scope: Scope,
    code_challenge: String,
    nonce: Option<String>,
    device_name: Option<String>,
}

enum AuthzError {
    /// Shown on a page: the client or redirect URI cannot be trusted.
    Page(String),
    /// Sent back to the (validated) redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        code: ErrorCode,
        description: String,
    },
}

fn validate(st: &AppState, p: &Params) -> Result<AuthzRequest, AuthzError> {
    if !st.config.method_enabled(latchkey_proto::methods::BROWSER) {
        return Err(AuthzError::Page(
            "Browser sign-in is turned off on this server. Use `latchkey login --device` instead."
                .into(),
        ));
    }
    let client_id = p.get("client_id").ok_or_else(|| {
        AuthzError::Page(
            "The request does not say which application is asking (client_id is missing).".into(),
        )
    })?;
    let client = st
        .client(client_id)
        .filter(|c| c.allows(GRANT_AUTHORIZATION_CODE))
        .ok_or_else(|| {
            AuthzError::Page("The application asking to sign you in is not registered here.".into())
        })?;
    let redirect_uri = p
        .get("redirect_uri")
        .ok_or_else(|| AuthzError::Page("The request has no redirect_uri.".into()))?;
    check_loopback_redirect(redirect_uri)
        .map_err(|e| AuthzError::Page(format!("This sign-in request was refused: {e}.")))?;
    let state = p.get("state").map(str::to_owned);
    let back = |code: ErrorCode, d: &str| AuthzError::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        state: state.clone(),
        code,
        description: d.to_owned(),
    };
    match p.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(back(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
        None => return Err(back(ErrorCode::InvalidRequest, "response_type is missing")),
    }
    let challenge = p.get("code_challenge").ok_or_else(|| {
        back(
            ErrorCode::InvalidRequest,
            "PKCE is required: send code_challenge",
        )
    })?;
    if p.get("code_challenge_method") != Some("S256") {
        return Err(back(
            ErrorCode::InvalidRequest,
            "code_challenge_method must be S256 (plain is not accepted)",
        ));
    }
    if !valid_pkce_string(challenge) {
        return Err(back(
            ErrorCode::InvalidRequest,
            "code_challenge is malformed",
        ));
    }
    let scope =
        Scope::parse_requested(p.get("scope")).map_err(|e| back(ErrorCode::InvalidScope, &e))?;
    Ok(AuthzRequest {
        client_id: client.id.clone(),
        client_name: client.name.clone(),
        redirect_uri: redirect_uri.to_owned(),
        state,
        scope,
        code_challenge: challenge.to_owned(),
        nonce: p.get("nonce").map(|n| n.chars().take(256).collect()),
        device_name: p
            .get("device_name")
            .map(|n| n.chars().filter(|c| !c.is_control()).take(100).collect()),
    })
}

/// Appends `params` to a redirect URI.
fn redirect_with(uri: &str, params: &[(&str, Option<&str>)]) -> Response {
    let mut u = match url::Url::parse(uri) {
        Ok(u) => u,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in params {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
    }
    let mut r = Redirect::to(u.as_str()).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error_response(ctx: &WebCtx, st: &AppState, e: AuthzError) -> Response {
    match e {
        AuthzError::Page(msg) => ctx.message(
            StatusCode::BAD_REQUEST,
            "Sign-in request refused",
            &msg,
            false,
        ),
        AuthzError::Redirect {
            redirect_uri,
            state,
            code,
            description,
        } => redirect_with(
            &redirect_uri,
            &[
                ("error", Some(code.as_str())),
                ("error_description", Some(&description)),
                ("state", state.as_deref()),
                ("iss", Some(&st.issuer)),
            ],
        ),
    }
}

/// `GET /oauth/authorize`: validate, sign in if needed, show the consent page.
pub async fn authorize_page(
    State(st): State<SharedState>,
    ctx: WebCtx,
    RawQuery(raw): RawQuery,
) -> Response {
    let raw = raw.unwrap_or_default();
    let params = match Params::parse(raw.as_bytes()) {
        Ok(p) => p,
        Err(e) => {
            return ctx.message(
                StatusCode::BAD_REQUEST,
                "Sign-in request refused",
                &format!("The request is malformed: {e}."),
                false,
            );
        }
    };
    let req = match validate(&st, &params) {
        Ok(r) => r,
        Err(e) => return error_response(&ctx, &st, e),
    };
    let Some(user) = &ctx.user else {
        let next = format!("/oauth/authorize?{raw}");
        let target = format!(
            "/signin?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        return ctx.finish(Redirect::to(&target).into_response());
    };
    let org = match st.store.memberships(&user.id).await {
        Ok(m) => m.into_iter().next().map(|m| m.name),
        Err(e) => return ctx.internal(&e),
    };
    let mut r = ctx.page(
        "consent.html",
        "Authorize",
        StatusCode::OK,
        json!({
            "client_name": req.client_name,
            "scope": req.scope.to_string(),
            "device_name": req.device_name,
            "org": org,
            "fields": [
                ["response_type", "code"],
                ["client_id", req.client_id],
                ["redirect_uri", req.redirect_uri],
                ["scope", req.scope.to_string()],
                ["state", req.state],
                ["code_challenge", req.code_challenge],
                ["code_challenge_method", "S256"],
                ["nonce", req.nonce],
                ["device_name", req.device_name],
            ],
        }),
    );
    // The approval form redirects to the loopback listener: allow exactly that target.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self' http://127.0.0.1:* http://[::1]:*; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r
}

/// `POST /oauth/authorize`: the consent decision.
pub async fn authorize_submit(
    State(st): State<SharedState>,
    ctx: WebCtx,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    WebForm(form): WebForm,
) -> Response {
    if let Some(r) = ctx.csrf_rejection(&form) {
        return r;
    }
    let req = match validate(&st, &form) {
        Ok(r) => r,
        Err(e) => return error_response(&ctx, &st, e),
    };
    let Some(user) = &ctx.user else {
        return ctx.finish(Redirect::to("/signin").into_response());
    };
    let deny = || {
        redirect_with(
            &req.redirect_uri,
            &[
                ("error", Some("access_denied")),
                ("error_description", Some("the user denied the request")),
                ("state", req.state.as_deref()),
                ("iss", Some(&st.issuer)),
            ],
        )
    };
    match form.get("decision") {
        Some("approve") => {}
        Some("deny") => return deny(),
        _ => {
            return ctx.message(
                StatusCode::BAD_REQUEST,
                "Choose approve or deny",
                "Go back and press a button.",
                false,
            );
        }
    }
    let now = st.now();
    let org_id = match st.store.memberships(&user.id).await {
        Ok(m) => m.into_iter().next().map(|m| m.org_id),
        Err(e) => return ctx.internal(&e),
    };
    let code = new_secret("lkc_");
    let row = AuthCodeRow {
        code_hash: hash_secret(&code),
        client_id: req.client_id.clone(),
        user_id: user.id.clone(),
        org_id,
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scope.to_string(),
        code_challenge: req.code_challenge.clone(),
        nonce: req.nonce.clone(),
        device_name: req.device_name.clone(),
        ip,
        user_agent: ua,
        auth_time: now,
        created_at: now,
        expires_at: now + CODE_TTL,
        used_at: None,
    };
    if let Err(e) = st.store.insert_auth_code(&row).await {
        return ctx.internal(&e);
    }
    tracing::info!(user = %user.id, "authorization code issued");
    redirect_with(
        &req.redirect_uri,
        &[
            ("code", Some(&code)),
            ("state", req.state.as_deref()),
            ("iss", Some(&st.issuer)),
        ],
    )
}
