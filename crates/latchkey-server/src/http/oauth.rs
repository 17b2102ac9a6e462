//! OAuth 2.0 endpoints: metadata (RFC 8414), JWKS, CLI discovery, device authorization
//! (RFC 8628), the token endpoint (RFC 6749 §3.2), revocation (RFC 7009) and userinfo.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey_proto::{
    AccessToken, AuthorizationServerMetadata, CliConfig, DeviceAuthorizationResponse, ErrorCode,
    GRANT_ANONYMOUS, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_DEVICE_CODE,
    GRANT_PASSWORD, GRANT_REFRESH_TOKEN, RefreshToken, TokenResponse, methods,
};

use super::error::{OAuthError, no_store};
use super::extract::{ClientIp, OAuthParams, UserAgent};
use crate::domain::clients::RegisteredClient;
use crate::domain::device::{self, DEVICE_CODE_PREFIX, DeviceStatus, PollOutcome};
use crate::domain::keys::check_standard_claims;
use crate::domain::scope::Scope;
use crate::domain::secrets::{hash_secret, new_id, new_secret};
use crate::domain::tokens::{
    ACCESS_TYP, AccessClaims, IdClaims, REFRESH_PREFIX, looks_like_refresh_token,
};
use crate::state::{AppState, SharedState};
use crate::store::{DeviceRow, NewSession, RotateOutcome, SessionRow};

/// The metadata document, shared by RFC 8414 and OIDC discovery.
pub fn metadata(state: &AppState) -> AuthorizationServerMetadata {
    let i = &state.issuer;
    let strs = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    AuthorizationServerMetadata {
        issuer: i.clone(),
        authorization_endpoint: Some(format!("{i}/oauth/authorize")),
        token_endpoint: Some(format!("{i}/oauth/token")),
        device_authorization_endpoint: Some(format!("{i}/oauth/device_authorization")),
        revocation_endpoint: Some(format!("{i}/oauth/revoke")),
        introspection_endpoint: Some(format!("{i}/oauth/introspect")),
        jwks_uri: Some(format!("{i}/.well-known/jwks.json")),
        userinfo_endpoint: Some(format!("{i}/oauth/userinfo")),
        scopes_supported: strs(crate::domain::scope::SUPPORTED),
        response_types_supported: strs(&["code"]),
        grant_types_supported: [
            (GRANT_AUTHORIZATION_CODE, methods::BROWSER),
            (GRANT_DEVICE_CODE, methods::DEVICE),
            (GRANT_PASSWORD, methods::PASSWORD),
            (GRANT_ANONYMOUS, methods::ANONYMOUS),
        ]
        .iter()
        .filter(|(_, m)| state.config.method_enabled(m))
        .map(|(g, _)| (*g).to_owned())
        .chain([GRANT_REFRESH_TOKEN, GRANT_CLIENT_CREDENTIALS].map(str::to_owned))
        .collect(),
        token_endpoint_auth_methods_supported: strs(&[
            "none",
            "client_secret_basic",
            "client_secret_post",
        ]),
        code_challenge_methods_supported: strs(&["S256"]),
        revocation_endpoint_auth_methods_supported: strs(&["none"]),
        introspection_endpoint_auth_methods_supported: strs(&[
            "client_secret_basic",
            "client_secret_post",
        ]),
        subject_types_supported: strs(&["public"]),
        id_token_signing_alg_values_supported: strs(&["EdDSA"]),
        authorization_response_iss_parameter_supported: Some(true),
        service_documentation: None,
    }
}

/// `GET /.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`.
pub async fn metadata_doc(State(state): State<SharedState>) -> Response {
    cacheable(Json(metadata(&state)).into_response(), 300)
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(state): State<SharedState>) -> Response {
    cacheable(Json(state.keyset().jwks()).into_response(), 300)
}

/// `GET /v1/auth/cli/config`: everything a CLI needs from one cloud URL.
pub async fn cli_config(State(state): State<SharedState>) -> Response {
    let doc = CliConfig {
        issuer: state.issuer.clone(),
        client_id: latchkey_proto::CLI_CLIENT_ID.to_owned(),
        login_methods: state.config.login_methods.clone(),
        scope: None,
        min_cli_version: state.config.min_cli_version.clone(),
        download_url: state.config.download_url.clone(),
        api_url: Some(state.issuer.clone()),
    };
    cacheable(Json(doc).into_response(), 60)
}

fn cacheable(mut resp: Response, secs: u32) -> Response {
    if let Ok(v) = format!("public, max-age={secs}").parse() {
        resp.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    resp
}

/// Authenticates the client of a request (RFC 6749 §2.3): `client_id` in the body, or HTTP
/// Basic with an empty secret for public clients. Both at once must agree.
fn authenticate_client<'a>(
    state: &'a AppState,
    req: &OAuthParams,
    grant_type: Option<&str>,
) -> Result<&'a RegisteredClient, OAuthError> {
    let basic = basic_client_id(&req.headers)?;
    let body = req.params.get("client_id");
    let id = match (basic.as_deref(), body) {
        (Some(a), Some(b)) if a != b => {
            return Err(OAuthError::invalid_request(
                "client_id in the body and in the Authorization header differ",
            ));
        }
        (Some(a), _) => a.to_owned(),
        (None, Some(b)) => b.to_owned(),
        (None, None) => {
            return Err(OAuthError::invalid_client(
                "the client_id parameter is missing",
            ));
        }
    };
    let client = state
        .client(&id)
        .ok_or_else(|| OAuthError::invalid_client("unknown client_id"))?;
    if let Some(g) = grant_type
        && !client.allows(g)
    {
        {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client may not use this grant type",
            ));
        }
    }
    Ok(client)
}

/// The client id of an `Authorization: Basic` header (public clients send an empty secret).
fn basic_client_id(headers: &HeaderMap) -> Result<Option<String>, OAuthError> {
    match basic_credentials(headers)? {
        None => Ok(None),
        Some((_, secret)) if !secret.is_empty() => Err(OAuthError::invalid_client(
            "public clients have no secret; send client_id only",
        )),
        Some((id, _)) => Ok(Some(id)),
    }
}

/// `Authorization: Basic` credentials (RFC 6749 §2.3.1: both parts form-urlencoded).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad =
        || OAuthError::invalid_client("the Authorization header is not valid Basic credentials");
    let v = v.to_str().map_err(|_| bad())?;
    let Some((scheme, rest)) = v.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// Authenticates an API key presented as client credentials: `client_id` is the key's public
/// id (`lk_` + 16 characters), `client_secret` the whole key, in HTTP Basic or the body. A key
/// whose checksum fails is refused without touching the database. Returns the key and the
/// role its tokens carry (its own, capped by its creator's current role).
pub async fn authenticate_api_key(
    state: &AppState,
    headers: &HeaderMap,
    params: &super::extract::Params,
) -> Result<(crate::store::ApiKeyRow, crate::domain::accounts::Role), OAuthError> {
    use crate::domain::accounts::Role;
    use crate::domain::api_keys;
    let (id, secret) = match basic_credentials(headers)? {
        Some((id, secret)) => (Some(id), secret),
        None => (
            params.get("client_id").map(str::to_owned),
            params
                .get("client_secret")
                .ok_or_else(|| {
                    OAuthError::invalid_client(
                        "send the API key as client_secret (HTTP Basic or form body)",
                    )
                })?
                .to_owned(),
        ),
    };
    let public_id = match api_keys::parse(&secret) {
        Ok(p) => p.to_owned(),
        Err(api_keys::KeyFormatError::Checksum) => {
            return Err(OAuthError::invalid_client(
                "the API key has a typo: its checksum does not match; copy it again in full",
            ));
        }
        Err(api_keys::KeyFormatError::Shape) => {
            return Err(OAuthError::invalid_client(
                "that is not a latchkey API key (they start with lk_ and are 68 characters)",
            ));
        }
    };
    if id.as_deref().is_some_and(|i| i != public_id) {
        return Err(OAuthError::invalid_client(
            "client_id does not match the API key",
        ));
    }
    let now = state.now();
    // The key and its creator's role, from a cache of a few seconds (see `KEY_CACHE_TTL_S`).
    let found = state.store.api_key_for_grant(&public_id, now).await?;
    let (row, creator_role) = match found {
        Some((row, role)) => (Some(row), role),
        None => (None, None),
    };
    let row = row
        .filter(|k| {
            crate::domain::secrets::constant_time_eq(
                k.key_hash.as_bytes(),
                hash_secret(&secret).as_bytes(),
            )
        })
        .ok_or_else(|| OAuthError::invalid_client(format!("API key {public_id} does not exist")))?;
    if row.revoked_at.is_some() {
        return Err(OAuthError::invalid_client(format!(
            "API key {public_id} ({}) was revoked; create a new one",
            row.name
        )));
    }
    if row.expires_at.is_some_and(|e| e <= now) {
        return Err(OAuthError::invalid_client(format!(
            "API key {public_id} ({}) expired; create a new one",
            row.name
        )));
    }
    let Some(creator_role) = creator_role else {
        return Err(OAuthError::invalid_client(format!(
            "API key {public_id} ({}) no longer works: its creator left the organization",
            row.name
        )));
    };
    let key_role = Role::parse(&row.role).unwrap_or(Role::Viewer);
    // Role ordering puts the most powerful first: the weaker of the two wins.
    let role = key_role.max(creator_role);
    Ok((row, role))
}

/// `POST /oauth/device_authorization` (RFC 8628 §3.1–3.2).
pub async fn device_authorization(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    req: OAuthParams,
) -> Result<Response, OAuthError> {
    let client = authenticate_client(&state, &req, Some(GRANT_DEVICE_CODE))?;
    require_method(&state, methods::DEVICE, "device sign-in")?;
    let pending = state.store.pending_device_flows(state.now()).await?;
    if pending >= i64::from(state.config.max_pending_device_codes) {
        tracing::warn!(
            pending,
            "device authorization refused: too many pending sign-ins"
        );
        return Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "too many sign-ins are waiting for approval; try again in a minute",
        )
        .with_retry_after(30));
    }
    let scope = Scope::parse_requested(req.params.get("scope"))
        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e))?;
    let device_name = req.params.get("device_name").map(|n| {
        n.chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect::<String>()
    });
    let now = state.now();
    let device_code = new_secret(DEVICE_CODE_PREFIX);
    let code_hash = hash_secret(&device_code);
    let mut user_code = device::generate_user_code(state.config.user_code_length);
    let mut row = DeviceRow {
        code_hash,
        user_code: user_code.canonical().to_owned(),
        client_id: client.id.clone(),
        scope: scope.to_string(),
        device_name,
        ip,
        user_agent: ua,
        created_at: now,
        expires_at: now + state.config.device_code_ttl,
        interval_s: state.config.device_poll_interval,
        status: DeviceStatus::Pending,
        user_id: None,
        org_id: None,
        decided_at: None,
    };
    let mut attempts = 0;
    loop {
        match state.store.insert_device(&row).await {
            Ok(()) => break,
            Err(crate::store::StoreError::Conflict) if attempts < 5 => {
                attempts += 1;
                user_code = device::generate_user_code(state.config.user_code_length);
                row.user_code = user_code.canonical().to_owned();
            }
            Err(e) => return Err(e.into()),
        }
    }
    let verification_uri = format!("{}/device", state.issuer);
    let body = DeviceAuthorizationResponse {
        device_code,
        user_code: user_code.to_string(),
        verification_uri_complete: Some(format!("{verification_uri}?user_code={user_code}")),
        verification_uri,
        expires_in: u64::try_from(state.config.device_code_ttl).unwrap_or(600),
        interval: Some(u64::try_from(state.config.device_poll_interval).unwrap_or(5)),
    };
    let mut resp = Json(body).into_response();
    no_store(&mut resp);
    Ok(resp)
}

/// `POST /oauth/token` (RFC 6749 §3.2): dispatches on `grant_type`.
pub async fn token(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    req: OAuthParams,
) -> Result<Response, OAuthError> {
    let grant_type = req.params.require("grant_type")?.to_owned();
    if let Some(limiter) = &state.token_per_client {
        // The client is named by client_id, or for API keys by the key's id; unauthenticated
        // names only cost the caller, since the key includes the IP.
        let client = req
            .params
            .get("client_id")
            .map(str::to_owned)
            .or_else(|| {
                basic_credentials(&req.headers)
                    .ok()
                    .flatten()
                    .map(|(id, _)| id)
            })
            .or_else(|| {
                req.params.get("client_secret").map(|s| {
                    s.chars()
                        .take(crate::domain::api_keys::PUBLIC_ID_LEN)
                        .collect()
                })
            })
            .unwrap_or_default();
        let key = format!("{client}|{}", ip.as_deref().unwrap_or("?"));
        if let Err(wait) = limiter.hit(&key, state.now()) {
            // Device polling already has its own answer for "too fast" (RFC 8628 §3.5).
            let code = if grant_type == GRANT_DEVICE_CODE {
                ErrorCode::SlowDown
            } else {
                ErrorCode::TemporarilyUnavailable
            };
            return Err(OAuthError::new(code, "too many token requests; slow down")
                .with_status(StatusCode::TOO_MANY_REQUESTS)
                .with_retry_after(wait));
        }
    }
    match grant_type.as_str() {
        GRANT_CLIENT_CREDENTIALS => client_credentials_grant(&state, &req).await,
        GRANT_DEVICE_CODE => {
            let client = authenticate_client(&state, &req, Some(&grant_type))?;
            device_code_grant(&state, client, &req).await
        }
        GRANT_REFRESH_TOKEN => {
            let client = authenticate_client(&state, &req, Some(&grant_type))?;
            refresh_grant(&state, client, &req).await
        }
        GRANT_AUTHORIZATION_CODE => {
            let client = authenticate_client(&state, &req, Some(&grant_type))?;
            require_method(&state, methods::BROWSER, "browser sign-in")?;
            authorization_code_grant(&state, client, &req).await
        }
        GRANT_PASSWORD => {
            let client = authenticate_client(&state, &req, Some(&grant_type))?;
            require_method(&state, methods::PASSWORD, "password sign-in")?;
            password_grant(&state, client, &req, ip, ua).await
        }
        GRANT_ANONYMOUS => {
            let client = authenticate_client(&state, &req, Some(&grant_type))?;
            require_method(&state, methods::ANONYMOUS, "anonymous sign-in")?;
            anonymous_grant(&state, client, &req, ip, ua).await
        }
        _ => {
            // Authenticate first so an unknown client hears invalid_client.
            authenticate_client(&state, &req, None)?;
            Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type `{grant_type}` is not supported"),
            ))
        }
    }
}

async fn device_code_grant(
    state: &AppState,
    client: &RegisteredClient,
    req: &OAuthParams,
) -> Result<Response, OAuthError> {
    let code = req.params.require("device_code")?;
    let hash = hash_secret(code);
    let Some(row) = state.store.device_by_hash(&hash).await? else {
        return Err(OAuthError::invalid_grant("unknown device_code"));
    };
    if row.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the device_code was issued to another client",
        ));
    }
    let now_ms = state.clock.now_ms();
    let now = now_ms.div_euclid(1000);
    let too_fast = state
        .polls
        .poll(&hash, now_ms, row.interval_s, row.expires_at);
    match device::poll_outcome(row.status, row.expires_at, now, too_fast) {
        PollOutcome::Pending => Err(OAuthError::new(
            ErrorCode::AuthorizationPending,
            "the user has not approved the request yet",
        )),
        PollOutcome::SlowDown => Err(OAuthError::new(
            ErrorCode::SlowDown,
            "polling too fast; wait 5 more seconds between requests",
        )),
        PollOutcome::Denied => {
            state.polls.forget(&hash);
            Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "the user denied the request",
            ))
        }
        PollOutcome::Expired => {
            state.polls.forget(&hash);
            Err(OAuthError::new(
                ErrorCode::ExpiredToken,
                "the device code expired; start a new login",
            ))
        }
        PollOutcome::AlreadyUsed => Err(OAuthError::invalid_grant(
            "the device code was already used",
        )),
        PollOutcome::Issue => {
            let user_id = row
                .user_id
                .clone()
                .ok_or_else(|| OAuthError::internal(&"approved device row without user"))?;
            let session = NewSession {
                user_id,
                org_id: row.org_id.clone(),
                client_id: row.client_id.clone(),
                name: row.device_name.clone(),
                method: "device".into(),
                scope: row.scope.clone(),
                ip: row.ip.clone(),
                user_agent: row.user_agent.clone(),
                auth_time: row.decided_at.unwrap_or(now),
            };
            let refresh = new_secret(REFRESH_PREFIX);
            let expires = now + state.config.refresh_token_ttl;
            let Some(session) = state
                .store
                .redeem_device(&hash, &session, &hash_secret(&refresh), expires, now)
                .await?
            else {
                return Err(OAuthError::invalid_grant(
                    "the device code was already used",
                ));
            };
            state.polls.forget(&hash);
            tracing::info!(session = %session.id, method = "device", "login");
            issue(
                state,
                &session,
                Scope::from_stored(&session.scope),
                refresh,
                None,
            )
            .await
        }
    }
}

/// `grant_type=client_credentials` (RFC 6749 §4.4) with an API key: a short access token for
/// the key's org and role, no refresh token (§4.4.3).
async fn client_credentials_grant(
    state: &AppState,
    req: &OAuthParams,
) -> Result<Response, OAuthError> {
    let (key, role) = authenticate_api_key(state, &req.headers, &req.params).await?;
    let scope = Scope::parse_requested(req.params.get("scope"))
        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e))?;
    let now = state.now();
    if key.last_used_at.is_none_or(|t| t < now - 60) {
        state.store.touch_api_key(&key.id, now).await?;
    }
    let mut exp = now + state.config.access_token_ttl;
    if let Some(e) = key.expires_at {
        exp = exp.min(e);
    }
    let claims = AccessClaims {
        iss: state.issuer.clone(),
        sub: key.id.clone(),
        aud: state.audience.clone(),
        exp,
        iat: now,
        jti: new_id(""),
        client_id: key.id.clone(),
        scope: scope.to_string(),
        sid: None,
        org: Some(key.org_id.clone()),
        role: Some(role.as_str().to_owned()),
    };
    let access = state
        .keyset()
        .sign(now, ACCESS_TYP, &claims)
        .map_err(|e| OAuthError::internal(&e))?;
    let body = TokenResponse {
        access_token: AccessToken::new(access),
        token_type: "Bearer".into(),
        expires_in: u64::try_from(exp - now).ok(),
        refresh_token: None,
        scope: Some(scope.to_string()),
        id_token: None,
    };
    let mut resp = Json(body).into_response();
    no_store(&mut resp);
    Ok(resp)
}

fn require_method(state: &AppState, method: &str, what: &str) -> Result<(), OAuthError> {
    if state.config.method_enabled(method) {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!("{what} is disabled on this server"),
        ))
    }
}

fn device_name(req: &OAuthParams) -> Option<String> {
    req.params
        .get("device_name")
        .map(|n| n.chars().filter(|c| !c.is_control()).take(100).collect())
}

/// Creates a session for a user who just authenticated at the token endpoint, and issues
/// its tokens. The active org is the user's first (personal) org.
#[allow(clippy::too_many_arguments)]
async fn new_session_and_issue(
    state: &AppState,
    user_id: &str,
    client: &RegisteredClient,
    method: &str,
    scope: Scope,
    name: Option<String>,
    ip: Option<String>,
    ua: Option<String>,
) -> Result<Response, OAuthError> {
    let now = state.now();
    let org_id = state
        .store
        .memberships(user_id)
        .await?
        .into_iter()
        .next()
        .map(|m| m.org_id);
    let refresh = new_secret(REFRESH_PREFIX);
    let session = state
        .store
        .create_session(
            &NewSession {
                user_id: user_id.to_owned(),
                org_id,
                client_id: client.id.clone(),
                name,
                method: method.to_owned(),
                scope: scope.to_string(),
                ip,
                user_agent: ua,
                auth_time: now,
            },
            &hash_secret(&refresh),
            now + state.config.refresh_token_ttl,
            now,
        )
        .await?;
    tracing::info!(session = %session.id, method, "login");
    issue(state, &session, scope, refresh, None).await
}

fn too_many(wait: i64) -> OAuthError {
    OAuthError::new(
        ErrorCode::TemporarilyUnavailable,
        format!("too many sign-in attempts; try again in {wait} seconds"),
    )
    .with_status(StatusCode::TOO_MANY_REQUESTS)
    .with_retry_after(wait)
}

/// `grant_type=password` (RFC 6749 §4.3), first-party CLI only. An unknown email and a wrong
/// password get the same answer, after the same amount of work.
async fn password_grant(
    state: &AppState,
    client: &RegisteredClient,
    req: &OAuthParams,
    ip: Option<String>,
    ua: Option<String>,
) -> Result<Response, OAuthError> {
    let username = req.params.require("username")?;
    let password = req.params.require("password")?.to_owned();
    let scope = Scope::parse_requested(req.params.get("scope"))
        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e))?;
    let now = state.now();
    state
        .signin_per_ip
        .hit(ip.as_deref().unwrap_or("?"), now)
        .map_err(too_many)?;
    let wrong = || OAuthError::invalid_grant("wrong email or password");
    let email = crate::domain::accounts::normalize_email(username).map_err(|_| wrong())?;
    if let Some((org, domain)) = super::sso::sso_required(state, &email).await? {
        state.metrics.login("password", "sso_required");
        // error_uri tells clients this is not a wrong password: the page to go on with.
        return Err(OAuthError::invalid_grant(format!(
            "{org} requires single sign-on for {domain} addresses, so password sign-in is off; \
             sign in through the browser (browser or device login) and use \"Continue with SSO\""
        ))
        .with_error_uri(format!("{}/signin/sso", state.issuer)));
    }
    state
        .signin_per_account
        .check(&email, now)
        .map_err(too_many)?;
    state
        .password_backoff
        .check(&email, now)
        .map_err(too_many)?;
    let user = state.store.user_by_email(&email).await?;
    let phc = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = state
        .hash_work(move || crate::domain::accounts::verify_password(&password, phc.as_deref()))
        .await
        .map_err(|e| match e {
            crate::state::HashError::Busy => OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "the server is busy; try again in a few seconds",
            )
            .with_retry_after(5),
            other => OAuthError::internal(&other),
        })?;
    match user {
        Some(u) if ok && !u.disabled => {
            state.password_backoff.succeed(&email);
            new_session_and_issue(
                state,
                &u.id,
                client,
                "password",
                scope,
                device_name(req),
                ip,
                ua,
            )
            .await
        }
        _ => {
            let _ = state.signin_per_account.hit(&email, now);
            state.password_backoff.fail(&email, now);
            Err(wrong())
        }
    }
}

/// latchkey's anonymous extension grant: a real user with no email and a personal org.
async fn anonymous_grant(
    state: &AppState,
    client: &RegisteredClient,
    req: &OAuthParams,
    ip: Option<String>,
    ua: Option<String>,
) -> Result<Response, OAuthError> {
    let scope = Scope::parse_requested(req.params.get("scope"))
        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e))?;
    let now = state.now();
    state
        .anonymous_per_ip
        .hit(ip.as_deref().unwrap_or("?"), now)
        .map_err(too_many)?;
    let user = state.store.create_user(None, None, None, true, now).await?;
    tracing::info!(user = %user.id, "anonymous user created");
    new_session_and_issue(
        state,
        &user.id,
        client,
        "anonymous",
        scope,
        device_name(req),
        ip,
        ua,
    )
    .await
}

/// `grant_type=authorization_code` (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.6).
async fn authorization_code_grant(
    state: &AppState,
    client: &RegisteredClient,
    req: &OAuthParams,
) -> Result<Response, OAuthError> {
    let code = req.params.require("code")?;
    let redirect_uri = req.params.require("redirect_uri")?;
    let verifier = req.params.require("code_verifier")?;
    let invalid =
        || OAuthError::invalid_grant("the authorization code is invalid, expired or already used");
    let hash = hash_secret(code);
    let Some(row) = state.store.auth_code(&hash).await? else {
        return Err(invalid());
    };
    let now = state.now();
    if row.client_id != client.id || (row.used_at.is_none() && row.expires_at <= now) {
        return Err(invalid());
    }
    if row.used_at.is_none() {
        if row.redirect_uri != redirect_uri {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        if !crate::domain::pkce::verify_s256(verifier, &row.code_challenge) {
            return Err(OAuthError::invalid_grant(
                "the code_verifier does not match the code_challenge",
            ));
        }
    }
    let session = NewSession {
        user_id: row.user_id.clone(),
        org_id: row.org_id.clone(),
        client_id: row.client_id.clone(),
        name: row.device_name.clone(),
        method: "browser".into(),
        scope: row.scope.clone(),
        ip: row.ip.clone(),
        user_agent: row.user_agent.clone(),
        auth_time: row.auth_time,
    };
    let refresh = new_secret(REFRESH_PREFIX);
    let outcome = state
        .store
        .redeem_auth_code(
            &hash,
            &session,
            &hash_secret(&refresh),
            now + state.config.refresh_token_ttl,
            now,
        )
        .await?;
    match outcome {
        crate::store::RedeemOutcome::Issued(session) => {
            tracing::info!(session = %session.id, method = "browser", "login");
            let scope = Scope::from_stored(&session.scope);
            issue(state, &session, scope, refresh, row.nonce.clone()).await
        }
        crate::store::RedeemOutcome::Reused => {
            tracing::warn!("authorization code used twice; its session was revoked");
            Err(invalid())
        }
    }
}

async fn refresh_grant(
    state: &AppState,
    client: &RegisteredClient,
    req: &OAuthParams,
) -> Result<Response, OAuthError> {
    let token = req.params.require("refresh_token")?;
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    if !looks_like_refresh_token(token) {
        return Err(invalid());
    }
    let hash = hash_secret(token);
    let Some(session) = state.store.session_by_refresh(&hash).await? else {
        return Err(invalid());
    };
    if session.client_id != client.id {
        return Err(invalid());
    }
    let scope = Scope::from_stored(&session.scope)
        .narrow(req.params.get("scope"))
        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e))?;
    let now = state.now();
    // The successor is derived from the presented token, so a retry gets the same one.
    let new_refresh = crate::domain::tokens::derive_refresh(&state.refresh_secret, token);
    let outcome = state
        .store
        .rotate_refresh(
            &hash,
            &hash_secret(&new_refresh),
            now + state.config.refresh_token_ttl,
            now,
            state.config.refresh_grace_period,
        )
        .await?;
    match outcome {
        RotateOutcome::Rotated(session) => {
            tracing::info!(session = %session.id, "refresh");
            issue(state, &session, scope, new_refresh, None).await
        }
        RotateOutcome::Retry(session) => {
            tracing::info!(session = %session.id, "refresh retried within the grace window");
            issue(state, &session, scope, new_refresh, None).await
        }
        RotateOutcome::Reused(session) => {
            tracing::warn!(session = %session, "refresh token reused; session revoked");
            Err(OAuthError::invalid_grant(
                "this refresh token was already used; the session was ended as a precaution — sign in again",
            ))
        }
        RotateOutcome::Invalid => Err(invalid()),
    }
}

/// Signs an access token (and an ID token when `openid` is granted) for a session and builds
/// the RFC 6749 §5.1 response.
async fn issue(
    state: &AppState,
    session: &SessionRow,
    scope: Scope,
    refresh: String,
    nonce: Option<String>,
) -> Result<Response, OAuthError> {
    let now = state.now();
    let Some(user) = state.store.user_by_id(&session.user_id).await? else {
        return Err(OAuthError::invalid_grant("the account no longer exists"));
    };
    if user.disabled {
        return Err(OAuthError::invalid_grant("the account is disabled"));
    }
    let role = match &session.org_id {
        Some(org) => state
            .store
            .memberships(&user.id)
            .await?
            .into_iter()
            .find(|m| &m.org_id == org)
            .map(|m| m.role),
        None => None,
    };
    let exp = now + state.config.access_token_ttl;
    let claims = AccessClaims {
        iss: state.issuer.clone(),
        sub: user.id.clone(),
        aud: state.audience.clone(),
        exp,
        iat: now,
        jti: new_id(""),
        client_id: session.client_id.clone(),
        scope: scope.to_string(),
        sid: Some(session.id.clone()),
        org: if role.is_some() {
            session.org_id.clone()
        } else {
            None
        },
        role,
    };
    let keys = state.keyset();
    let access = keys
        .sign(now, ACCESS_TYP, &claims)
        .map_err(|e| OAuthError::internal(&e))?;
    let id_token = if scope.contains("openid") {
        let id = IdClaims {
            iss: state.issuer.clone(),
            sub: user.id.clone(),
            aud: session.client_id.clone(),
            exp,
            iat: now,
            auth_time: session.auth_time,
            nonce,
            email: user.email.clone().filter(|_| scope.contains("email")),
            name: user.name.clone().filter(|_| scope.contains("profile")),
            sid: Some(session.id.clone()),
        };
        Some(AccessToken::new(
            keys.sign(now, "JWT", &id)
                .map_err(|e| OAuthError::internal(&e))?,
        ))
    } else {
        None
    };
    let body = TokenResponse {
        access_token: AccessToken::new(access),
        token_type: "Bearer".into(),
        expires_in: u64::try_from(state.config.access_token_ttl).ok(),
        refresh_token: Some(RefreshToken::new(refresh)),
        scope: Some(scope.to_string()),
        id_token,
    };
    let mut resp = Json(body).into_response();
    no_store(&mut resp);
    Ok(resp)
}

/// `POST /oauth/revoke` (RFC 7009): revokes the session of a refresh or access token. Answers
/// 200 for unknown tokens too (§2.2), so it reveals nothing.
pub async fn revoke(
    State(state): State<SharedState>,
    req: OAuthParams,
) -> Result<Response, OAuthError> {
    let client = authenticate_client(&state, &req, None)?;
    let token = req.params.require("token")?;
    let now = state.now();
    let session_id = if looks_like_refresh_token(token) {
        state
            .store
            .session_by_refresh(&hash_secret(token))
            .await?
            .filter(|s| s.client_id == client.id)
            .map(|s| s.id)
    } else {
        state
            .keyset()
            .verify::<AccessClaims>(token, ACCESS_TYP)
            .ok()
            .filter(|c| c.iss == state.issuer && c.client_id == client.id)
            .and_then(|c| c.sid)
    };
    if let Some(id) = session_id
        && state.store.revoke_session(&id, now).await?
    {
        {
            tracing::info!(session = %id, "session revoked");
        }
    }
    let mut resp = StatusCode::OK.into_response();
    no_store(&mut resp);
    Ok(resp)
}

/// `POST /oauth/introspect` (RFC 7662). The caller authenticates with an access token
/// (`Authorization: Bearer`) or an API key as client credentials; any other caller gets 401.
/// Answers for access tokens, refresh tokens and API keys; anything unknown, expired or revoked
/// is `{"active": false}`.
pub async fn introspect(
    State(state): State<SharedState>,
    req: OAuthParams,
) -> Result<Response, OAuthError> {
    let bearer = req
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let authed = match bearer {
        Some(t) => verify_access(&state, &t).await.is_ok(),
        None => authenticate_api_key(&state, &req.headers, &req.params)
            .await
            .is_ok(),
    };
    if !authed {
        return Err(OAuthError::invalid_client(
            "introspection needs an access token (Bearer) or an API key as client credentials",
        ));
    }
    let token = req.params.require("token")?;
    let now = state.now();
    let inactive = serde_json::json!({ "active": false });
    let body = if crate::domain::api_keys::looks_like_key(token) {
        match crate::domain::api_keys::parse(token) {
            Ok(id) => match state.store.api_key(id).await? {
                Some(k)
                    if crate::domain::secrets::constant_time_eq(
                        k.key_hash.as_bytes(),
                        hash_secret(token).as_bytes(),
                    ) && k.revoked_at.is_none()
                        && k.expires_at.is_none_or(|e| e > now) =>
                {
                    serde_json::json!({
                        "active": true,
                        "token_type": "api_key",
                        "client_id": k.id,
                        "sub": k.id,
                        "iss": state.issuer,
                        "iat": k.created_at,
                        "exp": k.expires_at,
                        "org": k.org_id,
                        "role": k.role,
                        "name": k.name,
                    })
                }
                _ => inactive,
            },
            Err(_) => inactive,
        }
    } else if looks_like_refresh_token(token) {
        let hash = hash_secret(token);
        match state.store.session_by_refresh(&hash).await? {
            Some(s) if state.store.refresh_token_live(&hash, now).await? => serde_json::json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": s.client_id,
                "sub": s.user_id,
                "scope": s.scope,
                "iss": state.issuer,
                "sid": s.id,
            }),
            _ => inactive,
        }
    } else {
        match verify_access(&state, token).await {
            Ok((c, _)) => {
                let username = match &c.sid {
                    Some(_) => state.store.user_by_id(&c.sub).await?.and_then(|u| u.email),
                    None => None,
                };
                serde_json::json!({
                    "active": true,
                    "token_type": "Bearer",
                    "scope": c.scope,
                    "client_id": c.client_id,
                    "username": username,
                    "sub": c.sub,
                    "aud": c.aud,
                    "iss": c.iss,
                    "exp": c.exp,
                    "iat": c.iat,
                    "jti": c.jti,
                    "sid": c.sid,
                    "org": c.org,
                    "role": c.role,
                })
            }
            Err(_) => inactive,
        }
    };
    let mut resp = Json(body).into_response();
    no_store(&mut resp);
    Ok(resp)
}

/// Verifies a bearer access token: signature, issuer, audience, expiry, and that its session
/// is still live. Returns the claims and the session.
pub async fn verify_access(
    state: &AppState,
    token: &str,
) -> Result<(AccessClaims, Option<SessionRow>), &'static str> {
    let claims: AccessClaims = state
        .keyset()
        .verify(token, ACCESS_TYP)
        .map_err(|_| "the access token is invalid")?;
    check_standard_claims(
        &claims.iss,
        &claims.aud,
        claims.exp,
        &state.issuer,
        &state.audience,
        state.now(),
    )
    .map_err(|e| match e {
        crate::domain::keys::JwtError::Expired => "the access token expired",
        _ => "the access token was not issued for this service",
    })?;
    if claims.sid.is_none() && crate::domain::api_keys::looks_like_public_id(&claims.client_id) {
        let key = state
            .store
            .api_key(&claims.client_id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "api key lookup failed");
                "the API key could not be checked"
            })?
            .ok_or("the API key no longer exists")?;
        if key.revoked_at.is_some() {
            return Err("the API key was revoked");
        }
    }
    let session = match &claims.sid {
        Some(sid) => {
            let s = state
                .store
                .session(sid)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "session lookup failed");
                    "the session could not be checked"
                })?
                .ok_or("the session no longer exists")?;
            if s.revoked_at.is_some() {
                return Err("the session was revoked");
            }
            Some(s)
        }
        None => None,
    };
    Ok((claims, session))
}

/// `GET /oauth/userinfo` (OIDC Core §5.3).
pub async fn userinfo(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, super::error::ApiError> {
    let token = super::api::bearer(&headers)?;
    let (claims, _) = verify_access(&state, token)
        .await
        .map_err(super::error::ApiError::invalid_token)?;
    let user = state
        .store
        .user_by_id(&claims.sub)
        .await?
        .ok_or_else(|| super::error::ApiError::invalid_token("the account no longer exists"))?;
    let scope = Scope::from_stored(&claims.scope);
    let mut body = serde_json::json!({ "sub": user.id });
    if scope.contains("email") {
        body["email"] = user.email.clone().into();
        body["email_verified"] = false.into();
    }
    if scope.contains("profile") {
        body["name"] = user.name.clone().into();
    }
    Ok(Json(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_for_public_clients() {
        let mut h = HeaderMap::new();
        assert_eq!(basic_client_id(&h).expect("none"), None);
        h.insert(
            header::AUTHORIZATION,
            format!("Basic {}", STANDARD.encode("latchkey-cli:"))
                .parse()
                .expect("hv"),
        );
        assert_eq!(
            basic_client_id(&h).expect("ok").as_deref(),
            Some("latchkey-cli")
        );
        h.insert(
            header::AUTHORIZATION,
            format!("Basic {}", STANDARD.encode("latchkey-cli:s3cret"))
                .parse()
                .expect("hv"),
        );
        assert!(basic_client_id(&h).is_err());
        h.insert(header::AUTHORIZATION, "Basic !!!".parse().expect("hv"));
        assert!(basic_client_id(&h).is_err());
    }
}
