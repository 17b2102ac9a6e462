//! Upstream sign-in pages: `/sso/{id}` and `/sso/org/{slug}` send the browser to the provider,
//! `.../callback` brings it back; `/signin/sso` routes an email's domain to its organization's
//! provider; `/sso/link` links an upstream account to an existing user after that user signs
//! in. Every failure is a page that says what happened and what to do, never a 500.
//!
//! Account rules (docs/federation.md):
//! - an identity is linked by provider + subject; the next sign-in finds the same user;
//! - a new identity with a verified email nobody uses creates the user (just in time);
//! - a verified email that an existing user has is linked only after that user signs in and
//!   confirms, never silently; an unverified or missing email is refused;
//! - an organization's provider vouches only for addresses in the organization's verified
//!   domains; those users join the organization with its default role;
//! - an organization that requires SSO refuses every other way in for its domains.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::extract::{ClientIp, UserAgent, cookie};
use super::web::{WebCtx, WebForm, cookie_header, safe_next};
use crate::domain::accounts::normalize_email;
use crate::domain::pkce::s256;
use crate::domain::sealing::{self, SealError};
use crate::domain::secrets::{constant_time_eq, hash_secret, new_secret};
use crate::federation::UpstreamIdentity;
use crate::federation::client::{FederationError, Pending};
use crate::federation::config::{ClientSecret, UpstreamConfig};
use crate::state::{AppState, SharedState};
use crate::store::{OrgRow, OrgSsoRow, PendingLinkRow, StoreError, UpstreamLoginRow, UserRow};

/// Cookie binding a sign-in in flight to the browser that started it.
const BINDING_COOKIE: &str = "lk_sso";
/// Cookie naming a pending link.
const LINK_COOKIE: &str = "lk_link";
/// Seconds a sign-in may take at the provider.
const LOGIN_TTL: i64 = 600;
/// Seconds a pending link waits for the user to sign in.
const LINK_TTL: i64 = 900;

/// A provider: configured by the operator, or an organization's own.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per request, never stored
pub enum Source {
    /// `[upstream.ID]`.
    Config(Box<UpstreamConfig>),
    /// An organization's OpenID provider.
    Org {
        /// The organization.
        org: OrgRow,
        /// Its settings.
        sso: OrgSsoRow,
        /// As a provider.
        cfg: Box<UpstreamConfig>,
    },
}

impl Source {
    /// Key of its identities: the provider id, or `org:<org id>`.
    pub fn key(&self) -> String {
        match self {
            Source::Config(c) => c.id.clone(),
            Source::Org { org, .. } => format!("org:{}", org.id),
        }
    }

    fn cfg(&self) -> &UpstreamConfig {
        match self {
            Source::Config(c) | Source::Org { cfg: c, .. } => c,
        }
    }

    /// Path of its start page; the callback is this plus `/callback`.
    pub fn path(&self) -> String {
        match self {
            Source::Config(c) => format!("/sso/{}", c.id),
            Source::Org { org, .. } => format!("/sso/org/{}", org.slug),
        }
    }

    fn label(&self) -> &str {
        &self.cfg().name
    }
}

/// Why an organization's provider cannot be used.
pub enum OrgSourceError {
    /// Storage.
    Store(StoreError),
    /// Its client secret does not open with this server's keys.
    Secret(SealError),
}

impl From<StoreError> for OrgSourceError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// An organization's stored client secret, opened with this server's keys.
pub fn open_org_secret(st: &AppState, sso: &OrgSsoRow) -> Result<Option<ClientSecret>, SealError> {
    sso.client_secret
        .as_deref()
        .map(|sealed| {
            st.config
                .sealing_keys
                .open(
                    sealed,
                    &sealing::org_sso_context(&sso.org_id, &sso.issuer, &sso.client_id),
                )
                .map(ClientSecret::new)
        })
        .transpose()
}

/// The provider of an organization, when it has SSO set up.
pub async fn org_source(st: &AppState, slug: &str) -> Result<Option<Source>, OrgSourceError> {
    let Some(org) = st.store.org(slug).await? else {
        return Ok(None);
    };
    let Some(sso) = st.store.org_sso(&org.id).await? else {
        return Ok(None);
    };
    let secret = open_org_secret(st, &sso).map_err(|e| {
        tracing::warn!(org = %org.id, error = %e, "organization SSO client secret cannot be opened");
        OrgSourceError::Secret(e)
    })?;
    let cfg = UpstreamConfig::for_org(
        &org.slug,
        &format!("{} SSO", org.name),
        &sso.issuer,
        &sso.client_id,
        secret,
        !st.config.org_sso_allow_private_networks,
    );
    Ok(Some(Source::Org {
        org,
        sso,
        cfg: Box::new(cfg),
    }))
}

/// The provider behind a stored key (`google`, `org:<id>`), for listing identities.
pub async fn source_label(st: &AppState, key: &str) -> String {
    if let Some(org_id) = key.strip_prefix("org:") {
        return match st.store.org(org_id).await {
            Ok(Some(o)) => format!("{} SSO", o.name),
            _ => "Organization SSO (removed)".to_owned(),
        };
    }
    st.upstream(key).map_or_else(
        || format!("{key} (no longer configured)"),
        |p| p.name.clone(),
    )
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Whether the sign-in page offers "Continue with SSO".
pub async fn sso_offered(st: &AppState) -> bool {
    st.config.upstreams.iter().any(|p| !p.domains.is_empty())
        || st.store.any_org_sso().await.unwrap_or(false)
}

/// The organization (name) requiring SSO for `email`'s domain, and the domain.
pub async fn sso_required(
    st: &AppState,
    email: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let Some((_, domain)) = email.rsplit_once('@') else {
        return Ok(None);
    };
    Ok(st
        .store
        .sso_requirement(domain)
        .await?
        .map(|r| (r.org_name, domain.to_owned())))
}

/// The sign-in page's message for a user whose organization requires SSO, or `None`.
pub async fn sso_required_message(
    st: &AppState,
    email: &str,
) -> Result<Option<String>, StoreError> {
    Ok(sso_required(st, email).await?.map(|(org, domain)| {
        format!(
            "{org} requires single sign-on for {domain} addresses. Use \u{201c}Continue with SSO\u{201d} \
             and enter your work email."
        )
    }))
}

/// Query of the start pages.
#[derive(Debug, Deserialize)]
pub struct StartQuery {
    next: Option<String>,
    login_hint: Option<String>,
    link: Option<String>,
}

/// Query of the callbacks (RFC 6749 §4.1.2, RFC 9207 `iss`).
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

fn unknown_provider(ctx: &WebCtx) -> Response {
    ctx.message_link(
        StatusCode::NOT_FOUND,
        "Unknown sign-in provider",
        "This server has no sign-in provider by that name. Go back to the sign-in page and pick one of its buttons.",
        "/signin",
        "Back to sign-in",
    )
}

fn failure_page(ctx: &WebCtx, label: &str, next: &str, e: &FederationError) -> Response {
    tracing::warn!(provider = label, error = %e, "upstream sign-in failed");
    let again = format!("/signin?next={}", enc(next));
    match e {
        FederationError::Unreachable(_) => ctx.message_link(
            StatusCode::BAD_GATEWAY,
            &format!("{label} is not answering"),
            &format!(
                "We could not reach {label} to sign you in. Try again in a few minutes, or sign in another way."
            ),
            &again,
            "Back to sign-in",
        ),
        FederationError::Refused(why) => ctx.message_link(
            StatusCode::BAD_GATEWAY,
            &format!("{label} did not accept the sign-in"),
            &format!("{label} refused to complete the sign-in ({why}). Start again; if it keeps failing, tell the administrator of this server."),
            &again,
            "Start again",
        ),
        FederationError::Misconfigured(_) => ctx.message_link(
            StatusCode::BAD_GATEWAY,
            &format!("{label} is not set up correctly"),
            &format!(
                "The settings of {label} on this server are not usable, so nobody can sign in with it right now. Tell the administrator who set it up (the server log says what is wrong), or sign in another way."
            ),
            &again,
            "Back to sign-in",
        ),
        FederationError::Invalid(_) | FederationError::NonceMismatch => ctx.message_link(
            StatusCode::BAD_REQUEST,
            "This sign-in could not be verified",
            &format!(
                "The answer from {label} did not pass our security checks, so nobody was signed in. Start again from the sign-in page."
            ),
            &again,
            "Start again",
        ),
    }
}

fn invalid_state(ctx: &WebCtx) -> Response {
    ctx.message_link(
        StatusCode::BAD_REQUEST,
        "This sign-in link is not valid",
        "The sign-in expired, was already used, or was started in another browser. Start again from the sign-in page.",
        "/signin",
        "Back to sign-in",
    )
}

/// A provider as a path names it.
enum Named {
    /// `/sso/{id}`.
    Config(String),
    /// `/sso/org/{slug}`.
    Org(String),
}

/// The provider a path names, or the page that says there is none.
async fn resolve(ctx: &WebCtx, named: Named) -> Result<Source, Response> {
    match named {
        Named::Config(id) => ctx
            .state()
            .upstream(&id)
            .cloned()
            .map(|p| Source::Config(Box::new(p)))
            .ok_or_else(|| unknown_provider(ctx)),
        Named::Org(slug) => match org_source(ctx.state(), &slug).await {
            Ok(Some(src)) => Ok(src),
            Ok(None) => Err(unknown_provider(ctx)),
            Err(OrgSourceError::Store(e)) => Err(ctx.internal(&e)),
            Err(OrgSourceError::Secret(_)) => Err(ctx.message_link(
                StatusCode::SERVICE_UNAVAILABLE,
                "Single sign-on is not available",
                "This organization's single sign-on cannot be used right now: its client secret was saved under a key this server no longer has. An owner of the organization must enter the client secret again on the organization's page, or the server's operator must restore the key. If you have a password or another linked sign-in, you can use it meanwhile.",
                "/signin",
                "Back to sign-in",
            )),
        },
    }
}

async fn start_named(
    ctx: WebCtx,
    ip: ClientIp,
    headers: HeaderMap,
    named: Named,
    q: StartQuery,
) -> Response {
    match resolve(&ctx, named).await {
        Ok(src) => start(ctx, ip, &headers, src, q, false).await,
        Err(r) => r,
    }
}

/// `GET /sso/{id}`.
pub async fn start_config(
    ctx: WebCtx,
    ip: ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<StartQuery>,
) -> Response {
    start_named(ctx, ip, headers, Named::Config(id), q).await
}

/// `GET /sso/org/{slug}`.
pub async fn start_org(
    ctx: WebCtx,
    ip: ClientIp,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Query(q): Query<StartQuery>,
) -> Response {
    start_named(ctx, ip, headers, Named::Org(slug), q).await
}

/// Starts linking `named` to the signed-in account, from a form of ours.
async fn link_named(
    ctx: WebCtx,
    ip: ClientIp,
    headers: HeaderMap,
    named: Named,
    form: &super::extract::Params,
) -> Response {
    if let Some(r) = ctx.csrf_rejection(form) {
        return r;
    }
    let q = StartQuery {
        next: Some("/account".into()),
        login_hint: None,
        link: Some("1".into()),
    };
    match resolve(&ctx, named).await {
        Ok(src) => start(ctx, ip, &headers, src, q, true).await,
        Err(r) => r,
    }
}

/// `POST /sso/{id}`: link the provider to the signed-in account (a form on /account).
pub async fn link_config(
    ctx: WebCtx,
    ip: ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
    WebForm(form): WebForm,
) -> Response {
    link_named(ctx, ip, headers, Named::Config(id), &form).await
}

/// `POST /sso/org/{slug}`: link the organization's SSO to the signed-in account.
pub async fn link_org(
    ctx: WebCtx,
    ip: ClientIp,
    headers: HeaderMap,
    Path(slug): Path<String>,
    WebForm(form): WebForm,
) -> Response {
    link_named(ctx, ip, headers, Named::Org(slug), &form).await
}

async fn start(
    ctx: WebCtx,
    ClientIp(ip): ClientIp,
    headers: &HeaderMap,
    src: Source,
    q: StartQuery,
    linking: bool,
) -> Response {
    let st = ctx.state().clone();
    let now = st.now();
    // Each start stores a row until it expires: as many per network as password sign-ins.
    if st
        .signin_per_ip
        .hit(ip.as_deref().unwrap_or("?"), now)
        .is_err()
    {
        st.metrics.login("sso", "rate_limited");
        return ctx.message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts",
            "Too many sign-ins were started from your network. Wait a minute and try again.",
            false,
        );
    }
    let next = safe_next(q.next.as_deref());
    let link_user_id = if q.link.as_deref() == Some("1") {
        match &ctx.user {
            Some(u) if linking => Some(u.id.clone()),
            // A link starts only from a form of ours (POST with the CSRF token): a link
            // another site opens must not attach someone's provider account to this user.
            Some(_) => {
                return ctx.page(
                    "sso_link.html",
                    "Link your account",
                    StatusCode::OK,
                    json!({"stage": "start", "provider": src.label(), "action": src.path()}),
                );
            }
            None => {
                return ctx.finish(Redirect::to("/signin?next=/account").into_response());
            }
        }
    } else {
        None
    };
    let ep = match st.federation.endpoints(src.cfg(), now).await {
        Ok(ep) => ep,
        Err(e) => return failure_page(&ctx, src.label(), &next, &e),
    };
    let binding = cookie(headers, BINDING_COOKIE)
        .filter(|c| c.len() == 43)
        .unwrap_or_else(|| new_secret(""));
    let (state, nonce, verifier) = (new_secret(""), new_secret(""), new_secret(""));
    let login_hint = q
        .login_hint
        .as_deref()
        .and_then(|h| normalize_email(h).ok());
    let row = UpstreamLoginRow {
        provider: src.key(),
        binding_hash: hash_secret(&binding),
        nonce: nonce.clone(),
        pkce_verifier: verifier.clone(),
        next,
        link_user_id,
        expires_at: now + LOGIN_TTL,
    };
    if let Err(e) = st
        .store
        .save_upstream_login(&hash_secret(&state), &row, login_hint.as_deref(), now)
        .await
    {
        return ctx.internal(&e);
    }
    let redirect_uri = format!("{}{}/callback", st.issuer, src.path());
    let url = st.federation.authorization_url(
        src.cfg(),
        &ep,
        &redirect_uri,
        &state,
        &nonce,
        &s256(&verifier),
        login_hint.as_deref(),
    );
    let mut r = Redirect::to(url.as_str()).into_response();
    // Set again each time so that it outlives this sign-in.
    r.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(BINDING_COOKIE, &binding, 3600, st.secure_cookies),
    );
    ctx.finish(r)
}

/// `GET /sso/{id}/callback`.
pub async fn callback_config(
    ctx: WebCtx,
    ip: ClientIp,
    ua: UserAgent,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    callback(ctx, ip, ua, &headers, Named::Config(id), q).await
}

/// `GET /sso/org/{slug}/callback`.
pub async fn callback_org(
    ctx: WebCtx,
    ip: ClientIp,
    ua: UserAgent,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    callback(ctx, ip, ua, &headers, Named::Org(slug), q).await
}

async fn callback(
    ctx: WebCtx,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    headers: &HeaderMap,
    named: Named,
    q: CallbackQuery,
) -> Response {
    let st = ctx.state().clone();
    let now = st.now();
    let src = match resolve(&ctx, named).await {
        Ok(src) => src,
        Err(r) => return r,
    };
    let Some(state) = q
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 200)
    else {
        return invalid_state(&ctx);
    };
    let row = match st.store.take_upstream_login(&hash_secret(state)).await {
        Ok(r) => r,
        Err(e) => return ctx.internal(&e),
    };
    let binding = cookie(headers, BINDING_COOKIE).unwrap_or_default();
    let Some(row) = row.filter(|r| {
        r.provider == src.key()
            && r.expires_at > now
            && constant_time_eq(hash_secret(&binding).as_bytes(), r.binding_hash.as_bytes())
    }) else {
        st.metrics.login("sso", "invalid_state");
        return invalid_state(&ctx);
    };
    let label = src.label().to_owned();
    let again = format!("/signin?next={}", enc(&row.next));
    if let Some(err) = q.error.as_deref() {
        let cancelled = err == "access_denied";
        st.metrics
            .login("sso", if cancelled { "cancelled" } else { "failed" });
        return if cancelled {
            ctx.message_link(
                StatusCode::FORBIDDEN,
                "Sign-in cancelled",
                &format!("You cancelled signing in with {label}, or {label} did not allow it. Nothing was changed."),
                &again,
                "Back to sign-in",
            )
        } else {
            let err: String = err
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(60)
                .collect();
            failure_page(&ctx, &label, &row.next, &FederationError::Refused(err))
        };
    }
    let ep = match st.federation.endpoints(src.cfg(), now).await {
        Ok(ep) => ep,
        Err(e) => return failure_page(&ctx, &label, &row.next, &e),
    };
    // RFC 9207: when the provider names itself, it must be the one this sign-in went to.
    if let (Some(iss), Some(expected)) = (q.iss.as_deref(), ep.issuer.as_deref())
        && iss.trim_end_matches('/') != expected
        && !src.cfg().tenant_issuer
    {
        return failure_page(
            &ctx,
            &label,
            &row.next,
            &FederationError::Invalid(format!("the answer names issuer {iss}")),
        );
    }
    if ep.iss_required && q.iss.is_none() {
        return failure_page(
            &ctx,
            &label,
            &row.next,
            &FederationError::Invalid("the provider promises iss but sent none".into()),
        );
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return failure_page(
            &ctx,
            &label,
            &row.next,
            &FederationError::Invalid("no code in the answer".into()),
        );
    };
    let redirect_uri = format!("{}{}/callback", st.issuer, src.path());
    let pending = Pending {
        verifier: &row.pkce_verifier,
        nonce: &row.nonce,
        redirect_uri: &redirect_uri,
    };
    let identity = match st
        .federation
        .finish(src.cfg(), &ep, code, &pending, now)
        .await
    {
        Ok(i) => i,
        Err(e) => {
            st.metrics.login("sso", "failed");
            return failure_page(&ctx, &label, &row.next, &e);
        }
    };
    complete(&ctx, ip.as_deref(), ua.as_deref(), &src, &row, identity).await
}

/// When an organization requires SSO for `email`'s domain and `src` is not its provider: the
/// page that says so. Applies to the address the provider asserts and to the account's own.
async fn refuse_unless_required_sso(
    ctx: &WebCtx,
    src: &Source,
    email: Option<&str>,
    label: &str,
    next: &str,
) -> Option<Response> {
    let d = email?.rsplit_once('@')?.1;
    match ctx.state().store.sso_requirement(d).await {
        Ok(Some(req)) if !matches!(src, Source::Org { org, .. } if org.slug == req.org_slug) => {
            ctx.state().metrics.login("sso", "sso_required");
            Some(ctx.message_link(
                StatusCode::FORBIDDEN,
                "Use your organization's single sign-on",
                &format!(
                    "{} requires single sign-on for {d} addresses, so signing in with {label} is not allowed. Use \u{201c}Continue with SSO\u{201d} with your work email.",
                    req.org_name
                ),
                &format!("/signin/sso?next={}", enc(next)),
                "Continue with SSO",
            ))
        }
        Ok(_) => None,
        Err(e) => Some(ctx.internal(&e)),
    }
}

/// Turns an upstream identity into a signed-in user (or a link, or a refusal).
async fn complete(
    ctx: &WebCtx,
    ip: Option<&str>,
    ua: Option<&str>,
    src: &Source,
    row: &UpstreamLoginRow,
    id: UpstreamIdentity,
) -> Response {
    let st = ctx.state().clone();
    let now = st.now();
    let label = src.label().to_owned();
    let key = src.key();
    let again = format!("/signin?next={}", enc(&row.next));
    let email = id.email.as_deref().and_then(|e| normalize_email(e).ok());
    let domain = email
        .as_deref()
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d.to_owned());
    // An organization's provider vouches only for its own verified domains, and for those
    // it is the authority: the organization proved it owns them, so its provider's word is
    // the verification (Microsoft Entra, for one, sends no `email_verified`).
    let org_vouches = match (src, &domain) {
        (Source::Org { org, .. }, Some(d)) => {
            match st.store.org_verified_domain(&org.id, d).await {
                Ok(v) => v,
                Err(e) => return ctx.internal(&e),
            }
        }
        _ => false,
    };
    let existing = match st.store.identity(&key, &id.subject).await {
        Ok(i) => i,
        Err(e) => return ctx.internal(&e),
    };
    // A subject means something only at the issuer that assigned it (OpenID Connect Core
    // §5.7): the same provider id pointed at another issuer must not reach old accounts.
    if let Some(i) = &existing
        && i.issuer != id.issuer
    {
        tracing::warn!(provider = %key, stored = %i.issuer, got = %id.issuer, "identity issuer changed; refused");
        return ctx.message_link(
            StatusCode::CONFLICT,
            &format!("{label} changed"),
            &format!("This {label} account was linked through another sign-in server than the one {label} uses now, so it cannot sign in here. Ask the administrator; sign in another way meanwhile."),
            &again,
            "Back to sign-in",
        );
    }
    // Linking from /account: the signed-in user adds this way in.
    if let Some(link_user) = &row.link_user_id {
        return match existing {
            Some(i) if &i.user_id == link_user => {
                ctx.finish(Redirect::to("/account?done=linked#identities").into_response())
            }
            Some(_) => ctx.message_link(
                StatusCode::CONFLICT,
                "Already linked to another account",
                &format!("This {label} account signs in to a different account here. Unlink it there first, or use another {label} account."),
                "/account#identities",
                "Back to your account",
            ),
            None => {
                let Some(me) = ctx.user.as_ref().filter(|u| &u.id == link_user) else {
                    return invalid_state(ctx);
                };
                if let Some(r) =
                    refuse_unless_required_sso(ctx, src, me.email.as_deref(), &label, "/account").await
                {
                    return r;
                }
                match st
                    .store
                    .link_identity(link_user, &key, &id.subject, &id.issuer, email.as_deref(), now)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(user = %link_user, provider = %key, "identity linked");
                        ctx.finish(Redirect::to("/account?done=linked#identities").into_response())
                    }
                    Err(StoreError::Conflict) => invalid_state(ctx),
                    Err(e) => ctx.internal(&e),
                }
            }
        };
    }
    // SSO required by an organization for the asserted address: only its provider may sign in.
    if let Some(r) = refuse_unless_required_sso(ctx, src, email.as_deref(), &label, &row.next).await
    {
        return r;
    }
    let newly_linked = existing.is_none();
    let user = if let Some(identity) = existing {
        let user = match st.store.user_by_id(&identity.user_id).await {
            Ok(Some(u)) => u,
            Ok(None) => return invalid_state(ctx),
            Err(e) => return ctx.internal(&e),
        };
        if let Err(e) = st
            .store
            .touch_identity(
                &identity.id,
                email.as_deref().filter(|_| id.email_verified),
                now,
            )
            .await
        {
            return ctx.internal(&e);
        }
        user
    } else {
        let Some(email) = email.clone() else {
            st.metrics.login("sso", "no_email");
            return ctx.message_link(
                StatusCode::FORBIDDEN,
                &format!("{label} did not share an email address"),
                &format!("We need the email address of your {label} account to create or find your account here. Allow access to your email address at {label} and try again."),
                &again,
                "Try again",
            );
        };
        if !id.email_verified && !org_vouches {
            st.metrics.login("sso", "unverified_email");
            return ctx.message_link(
                StatusCode::FORBIDDEN,
                "Your email address is not verified",
                &format!("{label} says {email} is not verified yet. Verify it at {label}, then sign in again."),
                &again,
                "Try again",
            );
        }
        if matches!(src, Source::Org { .. }) && !org_vouches {
            return ctx.message_link(
                StatusCode::FORBIDDEN,
                "This address is not part of the organization",
                &format!("{label} can sign in addresses of its organization's verified domains only, and {email} is not one of them. Sign in another way."),
                &again,
                "Back to sign-in",
            );
        }
        match st.store.user_by_email(&email).await {
            // The organization proved it owns this domain: its provider speaks for the
            // domain's addresses, so their accounts are linked without a second proof.
            Ok(Some(owner)) if org_vouches => {
                match st
                    .store
                    .link_identity(&owner.id, &key, &id.subject, &id.issuer, Some(&email), now)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(user = %owner.id, provider = %key, "identity linked by the organization's verified domain");
                        owner
                    }
                    Err(StoreError::Conflict) => return invalid_state(ctx),
                    Err(e) => return ctx.internal(&e),
                }
            }
            Ok(Some(owner)) => return offer_link(ctx, src, row, &id, &owner, &email).await,
            Ok(None) => {
                if let Some(r) = jit_refusal(ctx, &st, org_vouches, &email, &again) {
                    return r;
                }
                match create_jit(ctx, &st, &id, &email, &key, now, &again).await {
                    Ok(u) => u,
                    Err(r) => return r,
                }
            }
            Err(e) => return ctx.internal(&e),
        }
    };
    // The account's own address counts too: a linked provider with another address must not
    // get around its organization's requirement.
    if let Some(r) =
        refuse_unless_required_sso(ctx, src, user.email.as_deref(), &label, &row.next).await
    {
        return r;
    }
    if user.disabled {
        st.metrics.login("sso", "disabled");
        return ctx.message(
            StatusCode::FORBIDDEN,
            "Account disabled",
            "This account has been disabled. Contact the administrator of this server.",
            false,
        );
    }
    // Members join on their first sign-in through the organization's provider; someone an
    // admin removed later is not added back by signing in again.
    if let (Source::Org { org, sso, .. }, true) = (src, org_vouches && newly_linked) {
        match st
            .store
            .add_member_if_absent(&org.id, &user.id, &sso.default_role, now)
            .await
        {
            Ok(true) => tracing::info!(user = %user.id, org = %org.id, "joined through SSO"),
            Ok(false) => {}
            Err(e) => return ctx.internal(&e),
        }
    }
    st.metrics.login("sso", "success");
    tracing::info!(user = %user.id, provider = %key, "upstream sign-in");
    ctx.sign_in_and_redirect(&user, &row.next, ip, ua).await
}

/// Why no account is created for `email`, if none may be.
fn jit_refusal(
    ctx: &WebCtx,
    st: &AppState,
    org_vouches: bool,
    email: &str,
    again: &str,
) -> Option<Response> {
    (!st.config.allow_signup && !org_vouches).then(|| {
        ctx.message_link(
            StatusCode::FORBIDDEN,
            "No account for this address",
            &format!("There is no account for {email} here and this server does not create accounts on its own. Ask its operator for one."),
            again,
            "Back to sign-in",
        )
    })
}

/// Creates the user just in time, with the identity linked.
async fn create_jit(
    ctx: &WebCtx,
    st: &AppState,
    id: &UpstreamIdentity,
    email: &str,
    key: &str,
    now: i64,
    again: &str,
) -> Result<UserRow, Response> {
    let name: Option<String> = id.name.as_deref().map(|n| {
        n.trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect()
    });
    match st
        .store
        .create_user_with_identity(email, name.as_deref(), key, &id.subject, &id.issuer, now)
        .await
    {
        Ok(u) => {
            tracing::info!(user = %u.id, provider = %key, "account created through upstream sign-in");
            Ok(u)
        }
        Err(StoreError::Conflict) => Err(ctx.message_link(
            StatusCode::CONFLICT,
            "Please try again",
            "Your account was being set up by another sign-in at the same moment. Sign in again.",
            again,
            "Sign in again",
        )),
        Err(e) => Err(ctx.internal(&e)),
    }
}

/// An existing user has this verified email: remember the identity and ask them to sign in
/// to their account to link it.
async fn offer_link(
    ctx: &WebCtx,
    src: &Source,
    row: &UpstreamLoginRow,
    id: &UpstreamIdentity,
    owner: &UserRow,
    email: &str,
) -> Response {
    let st = ctx.state();
    let now = st.now();
    let token = new_secret("");
    let pending = PendingLinkRow {
        user_id: owner.id.clone(),
        provider: src.key(),
        subject: id.subject.clone(),
        issuer: id.issuer.clone(),
        email: Some(email.to_owned()),
        next: row.next.clone(),
        expires_at: now + LINK_TTL,
    };
    if let Err(e) = st
        .store
        .save_pending_link(&hash_secret(&token), &pending, now)
        .await
    {
        return ctx.internal(&e);
    }
    let label = src.label();
    let mut r = ctx.page(
        "sso_link.html",
        "Link your account",
        StatusCode::OK,
        json!({
            "stage": "signin",
            "provider": label,
            "email": email,
            "signin": format!("/signin?next={}", enc("/sso/link")),
        }),
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(LINK_COOKIE, &token, LINK_TTL, st.secure_cookies),
    );
    r
}

async fn pending_from(
    ctx: &WebCtx,
    headers: &HeaderMap,
) -> Result<(String, PendingLinkRow), Response> {
    let st = ctx.state();
    let expired = || {
        ctx.message_link(
            StatusCode::NOT_FOUND,
            "Nothing to link",
            "This link request expired or was already used. Sign in with your provider again to start over.",
            "/signin",
            "Back to sign-in",
        )
    };
    let Some(token) = cookie(headers, LINK_COOKIE).filter(|t| t.len() == 43) else {
        return Err(expired());
    };
    let hash = hash_secret(&token);
    match st.store.pending_link(&hash).await {
        Ok(Some(p)) if p.expires_at > st.now() => Ok((hash, p)),
        Ok(_) => Err(expired()),
        Err(e) => Err(ctx.internal(&e)),
    }
}

/// `GET /sso/link`: after signing in to the existing account, confirm the link.
pub async fn link_page(ctx: WebCtx, headers: HeaderMap) -> Response {
    let Some(user) = ctx.user.clone() else {
        return ctx
            .finish(Redirect::to(&format!("/signin?next={}", enc("/sso/link"))).into_response());
    };
    let (_, pending) = match pending_from(&ctx, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let label = source_label(ctx.state(), &pending.provider).await;
    if pending.user_id != user.id {
        return ctx.message_link(
            StatusCode::FORBIDDEN,
            "Signed in to a different account",
            &format!(
                "The {label} account belongs with {}, but you are signed in as {}. Sign out, then sign in as {}.",
                pending.email.as_deref().unwrap_or("another account"),
                user.email.as_deref().unwrap_or("someone else"),
                pending.email.as_deref().unwrap_or("that account"),
            ),
            "/signout",
            "Sign out",
        );
    }
    ctx.page(
        "sso_link.html",
        "Link your account",
        StatusCode::OK,
        json!({"stage": "confirm", "provider": label, "email": pending.email}),
    )
}

/// `POST /sso/link`: link (or not) and continue.
pub async fn link_submit(ctx: WebCtx, headers: HeaderMap, WebForm(form): WebForm) -> Response {
    if let Some(r) = ctx.csrf_rejection(&form) {
        return r;
    }
    let Some(user) = ctx.user.clone() else {
        return ctx
            .finish(Redirect::to(&format!("/signin?next={}", enc("/sso/link"))).into_response());
    };
    let (hash, pending) = match pending_from(&ctx, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let st = ctx.state();
    let clear = cookie_header(LINK_COOKIE, "", 0, st.secure_cookies);
    if form.get("decision") != Some("link") {
        if let Err(e) = st.store.delete_pending_link(&hash).await {
            return ctx.internal(&e);
        }
        let mut r = Redirect::to(&pending.next).into_response();
        r.headers_mut().append(header::SET_COOKIE, clear);
        return r;
    }
    match st.store.complete_pending_link(&hash, &user.id, st.now()).await {
        Ok(true) => {
            tracing::info!(user = %user.id, provider = %pending.provider, "identity linked after sign-in");
            let mut r = Redirect::to("/account?done=linked#identities").into_response();
            r.headers_mut().append(header::SET_COOKIE, clear);
            r
        }
        Ok(false) | Err(StoreError::Conflict) => ctx.message_link(
            StatusCode::CONFLICT,
            "Nothing was linked",
            "This request expired, or the account was linked meanwhile. Check the sign-in methods on your account page.",
            "/account#identities",
            "Your account",
        ),
        Err(e) => ctx.internal(&e),
    }
}

/// Query of `/signin/sso`.
#[derive(Debug, Deserialize)]
pub struct SsoQuery {
    next: Option<String>,
}

/// `GET /signin/sso`: enter a work email.
pub async fn sso_page(ctx: WebCtx, Query(q): Query<SsoQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    ctx.page(
        "sso_email.html",
        "Single sign-on",
        StatusCode::OK,
        json!({"next": next, "email": ""}),
    )
}

/// `POST /signin/sso`: send the email's domain to its provider.
pub async fn sso_submit(
    State(st): State<SharedState>,
    ctx: WebCtx,
    WebForm(form): WebForm,
) -> Response {
    if let Some(r) = ctx.csrf_rejection(&form) {
        return r;
    }
    let next = safe_next(form.get("next"));
    let raw = form.get("email").unwrap_or("").to_owned();
    let fail = |status: StatusCode, msg: &str| {
        ctx.page(
            "sso_email.html",
            "Single sign-on",
            status,
            json!({"next": next, "email": raw, "error": msg}),
        )
    };
    let Ok(email) = normalize_email(&raw) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "Enter your work email address, like you@company.com.",
        );
    };
    let Some((_, domain)) = email.rsplit_once('@') else {
        return fail(
            StatusCode::BAD_REQUEST,
            "Enter your work email address, like you@company.com.",
        );
    };
    let target = match st.store.org_sso_for_domain(domain).await {
        Ok(Some((org, _))) => Some(format!("/sso/org/{}", org.slug)),
        Ok(None) => st
            .config
            .upstreams
            .iter()
            .find(|p| p.domains.iter().any(|d| d == domain))
            .map(|p| format!("/sso/{}", p.id)),
        Err(e) => return ctx.internal(&e),
    };
    match target {
        Some(path) => ctx.finish(
            Redirect::to(&format!(
                "{path}?next={}&login_hint={}",
                enc(&next),
                enc(&email)
            ))
            .into_response(),
        ),
        None => fail(
            StatusCode::NOT_FOUND,
            &format!(
                "Single sign-on is not set up for {domain}. Sign in with your password or another button, or ask your administrator to set up SSO for {domain}."
            ),
        ),
    }
}
