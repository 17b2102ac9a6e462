//! The relying-party side of upstream sign-in: OpenID discovery and JWKS (cached), the
//! authorization request (code + PKCE S256 + `state` + `nonce`), the code exchange, ID token
//! validation (OpenID Connect Core §3.1.3.7) and userinfo, or for plain OAuth 2.0 providers the
//! userinfo mapping.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

use super::config::{Protocol, UpstreamConfig};
use crate::domain::secrets::constant_time_eq;

/// How long a discovery document or key set is used before it is fetched again, seconds.
const CACHE_SECS: i64 = 3600;
/// A key set is fetched again for an unknown `kid` at most this often, seconds.
const JWKS_REFETCH_SECS: i64 = 30;
/// Clock skew allowed on `exp` and `iat`, seconds.
const SKEW_SECS: i64 = 120;

/// Why an upstream sign-in failed. Display texts are safe to log and show: no secret, code or
/// token is ever part of them.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// The provider could not be reached or answered nonsense.
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    /// The provider's token endpoint refused the code.
    #[error("the provider refused the sign-in: {0}")]
    Refused(String),
    /// The ID token or the answer failed validation.
    #[error("the provider's answer failed validation: {0}")]
    Invalid(String),
    /// The ID token's nonce is not the one this sign-in sent.
    #[error("the ID token's nonce does not match this sign-in")]
    NonceMismatch,
    /// The provider's settings or documents are not usable (wrong issuer, http endpoints,
    /// private addresses for an organization's provider).
    #[error("the provider is misconfigured: {0}")]
    Misconfigured(String),
}

/// Most bytes read from any provider answer (discovery, keys, tokens, userinfo).
const MAX_BODY: usize = 256 * 1024;
/// Most providers remembered in each cache.
const MAX_CACHED: usize = 256;

/// Whether an address is on the public internet (not loopback, private, link-local,
/// unique-local, multicast, documentation or unspecified).
pub fn is_public_ip(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || a.is_documentation()
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18))
        }
        IpAddr::V6(a) => {
            let seg = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || a.is_unique_local()
                || a.is_unicast_link_local()
                // NAT64 and 6to4 lead to IPv4 addresses, private ones included; documentation.
                || (seg[0] == 0x64 && seg[1] == 0xff9b)
                || seg[0] == 0x2002
                || (seg[0] == 0x2001 && seg[1] == 0xdb8))
        }
    }
}

/// Resolves names for organizations' providers, keeping public addresses only, so that a
/// name cannot lead the server to its own network (also after a DNS change).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public_ip(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether `url` may be requested for provider `p`: https (http on loopback for operator
/// providers); for organizations' providers no IP literal outside the public internet.
fn check_url(p: &UpstreamConfig, url: &Url) -> Result<(), FederationError> {
    let host = url.host_str().unwrap_or("");
    let ip_literal: Option<std::net::IpAddr> = host.trim_matches(['[', ']']).parse().ok();
    let loopback = host == "localhost" || ip_literal.is_some_and(|ip| ip.is_loopback());
    if p.restricted {
        if url.scheme() != "https" {
            return Err(FederationError::Misconfigured(format!(
                "{host}: an organization's provider must use https"
            )));
        }
        if host == "localhost" || ip_literal.is_some_and(|ip| !is_public_ip(ip)) {
            return Err(FederationError::Misconfigured(format!(
                "{host} is not a public address"
            )));
        }
        return Ok(());
    }
    if url.scheme() == "https" || (url.scheme() == "http" && loopback) {
        Ok(())
    } else {
        Err(FederationError::Misconfigured(format!(
            "{url} must be an https:// URL"
        )))
    }
}

/// Reads at most [`MAX_BODY`] bytes of a body.
async fn read_capped(mut r: reqwest::Response, url: &Url) -> Result<Vec<u8>, FederationError> {
    let host = url.host_str().unwrap_or("the provider").to_owned();
    let too_big = || {
        FederationError::Unreachable(format!(
            "{host} sent an answer over {} KiB",
            MAX_BODY / 1024
        ))
    };
    if r.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_big());
    }
    let mut buf = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(|e| unreachable(url, &e))? {
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(too_big());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Text from a provider made safe for a log line and a page: printable, short.
fn sanitize(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Inserts into a bounded cache, dropping stale entries (and then everything) when full.
fn remember<T>(cache: &Mutex<HashMap<String, (i64, T)>>, key: &str, now: i64, value: T) {
    if let Ok(mut c) = cache.lock() {
        if c.len() >= MAX_CACHED {
            c.retain(|_, (at, _)| now - *at < CACHE_SECS);
            if c.len() >= MAX_CACHED {
                c.clear();
            }
        }
        c.insert(key.to_owned(), (now, value));
    }
}

/// Endpoints of a provider, from discovery or configuration.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Issuer (OpenID) as in the discovery document.
    pub issuer: Option<String>,
    /// Authorization endpoint.
    pub authorization: Url,
    /// Token endpoint.
    pub token: Url,
    /// Userinfo endpoint.
    pub userinfo: Option<Url>,
    /// Email list endpoint (plain OAuth 2.0).
    pub emails: Option<Url>,
    /// JWKS (OpenID).
    pub jwks: Option<Url>,
    /// Whether the token endpoint takes the client secret in the form instead of Basic.
    pub secret_in_body: bool,
    /// Whether the provider promises `iss` in its answers (RFC 9207), so one without is
    /// refused.
    pub iss_required: bool,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

/// Who the provider says signed in.
#[derive(Clone)]
pub struct UpstreamIdentity {
    /// Stable id at the provider.
    pub subject: String,
    /// Email address, when shared.
    pub email: Option<String>,
    /// Whether the provider vouches for the address.
    pub email_verified: bool,
    /// Display name.
    pub name: Option<String>,
    /// The issuer that asserted it (the ID token's `iss`; for OAuth 2.0 the authorization
    /// endpoint's origin).
    pub issuer: String,
}

impl std::fmt::Debug for UpstreamIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamIdentity")
            .field("issuer", &self.issuer)
            .field("email_verified", &self.email_verified)
            .finish_non_exhaustive()
    }
}

/// What the authorization request carried, needed again at the callback.
pub struct Pending<'a> {
    /// PKCE verifier.
    pub verifier: &'a str,
    /// The `nonce` sent.
    pub nonce: &'a str,
    /// The redirect URI sent.
    pub redirect_uri: &'a str,
}

/// A key set and when it was fetched.
type CachedKeys = (i64, Arc<Vec<Value>>);

/// HTTP clients and caches, shared by every request.
pub struct Federation {
    http: reqwest::Client,
    public: reqwest::Client,
    discovery: Mutex<HashMap<String, (i64, Arc<Endpoints>)>>,
    jwks: Mutex<HashMap<String, CachedKeys>>,
}

impl Default for Federation {
    fn default() -> Self {
        Self::new()
    }
}

fn unreachable(url: &Url, e: &reqwest::Error) -> FederationError {
    // reqwest errors name the URL; ours never carry secrets in URLs (codes go in bodies).
    let why = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection refused or failed".to_owned()
    } else {
        let mut s = e.to_string();
        if let Some(u) = e.url() {
            s = s.replace(u.as_str(), "");
        }
        s
    };
    FederationError::Unreachable(format!(
        "{}: {why}",
        url.host_str().unwrap_or("the provider")
    ))
}

fn claim_str(claims: &Map<String, Value>, key: &str) -> Option<String> {
    match claims.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn claim_true(claims: &Map<String, Value>, key: &str) -> Option<bool> {
    match claims.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(s == "true"),
        _ => None,
    }
}

impl Federation {
    /// Clients with short timeouts and no redirects (endpoints answer directly); the one for
    /// organizations' providers connects to public addresses only.
    pub fn new() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("latchkeyd/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
        };
        #[allow(clippy::expect_used)] // only fails without a TLS provider, installed above
        let (http, public) = (
            builder().build().expect("HTTP client"),
            builder()
                .dns_resolver(Arc::new(PublicOnly))
                .build()
                .expect("HTTP client"),
        );
        Self {
            http,
            public,
            discovery: Mutex::default(),
            jwks: Mutex::default(),
        }
    }

    fn client(&self, p: &UpstreamConfig) -> &reqwest::Client {
        if p.restricted {
            &self.public
        } else {
            &self.http
        }
    }

    async fn get_json(
        &self,
        p: &UpstreamConfig,
        url: &Url,
        bearer: Option<&str>,
    ) -> Result<Value, FederationError> {
        check_url(p, url)?;
        let mut req = self
            .client(p)
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| unreachable(url, &e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FederationError::Unreachable(format!(
                "{} answered {status}",
                url.host_str().unwrap_or("the provider")
            )));
        }
        let body = read_capped(resp, url).await?;
        serde_json::from_slice(&body).map_err(|_| {
            FederationError::Unreachable(format!(
                "{} did not answer with JSON",
                url.host_str().unwrap_or("the provider")
            ))
        })
    }

    /// The provider's endpoints: configured, or from its discovery document (cached an hour;
    /// a failed fetch is not cached).
    pub async fn endpoints(
        &self,
        p: &UpstreamConfig,
        now: i64,
    ) -> Result<Arc<Endpoints>, FederationError> {
        let issuer = match &p.protocol {
            Protocol::OAuth2(o) => {
                return Ok(Arc::new(Endpoints {
                    issuer: None,
                    authorization: o.authorization.clone(),
                    token: o.token.clone(),
                    userinfo: Some(o.userinfo.clone()),
                    emails: o.emails.clone(),
                    jwks: None,
                    // GitHub documents the secret as form fields, not Basic.
                    secret_in_body: p.preset == "github",
                    iss_required: false,
                }));
            }
            Protocol::Oidc { issuer } => issuer,
        };
        if let Ok(cache) = self.discovery.lock()
            && let Some((at, e)) = cache.get(&cache_key(p, issuer))
            && now - at < CACHE_SECS
        {
            return Ok(e.clone());
        }
        let url = Url::parse(&format!("{issuer}/.well-known/openid-configuration"))
            .map_err(|e| FederationError::Unreachable(e.to_string()))?;
        let doc: Discovery =
            serde_json::from_value(self.get_json(p, &url, None).await?).map_err(|e| {
                FederationError::Misconfigured(format!("its discovery document is incomplete: {e}"))
            })?;
        // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
        // Microsoft names a tenant given by domain (or `consumers`) by its GUID.
        let microsoft_tenant = p.preset == "microsoft"
            && doc.issuer.starts_with("https://login.microsoftonline.com/")
            && (!p.tenant_issuer || doc.issuer == MICROSOFT_TENANT_ISSUER);
        let same = doc.issuer.trim_end_matches('/') == issuer || microsoft_tenant;
        if !same {
            return Err(FederationError::Misconfigured(format!(
                "the discovery document names issuer {} instead of {issuer}",
                sanitize(&doc.issuer, 200)
            )));
        }
        let parse = |s: &str| {
            let u = Url::parse(s).map_err(|_| {
                FederationError::Misconfigured(format!(
                    "bad endpoint in discovery `{}`",
                    sanitize(s, 200)
                ))
            })?;
            check_url(p, &u)?;
            Ok::<Url, FederationError>(u)
        };
        let methods = &doc.token_endpoint_auth_methods_supported;
        let e = Arc::new(Endpoints {
            issuer: Some(doc.issuer.trim_end_matches('/').to_owned()),
            authorization: parse(&doc.authorization_endpoint)?,
            token: parse(&doc.token_endpoint)?,
            userinfo: doc.userinfo_endpoint.as_deref().map(parse).transpose()?,
            emails: None,
            jwks: Some(parse(&doc.jwks_uri)?),
            secret_in_body: !methods.is_empty()
                && !methods.iter().any(|m| m == "client_secret_basic")
                && methods.iter().any(|m| m == "client_secret_post"),
            iss_required: doc.authorization_response_iss_parameter_supported,
        });
        // Keyed by issuer and by who set it up, so an organization's entry (fetched with
        // the public-only client) is never used for an operator's provider or the reverse.
        remember(&self.discovery, &cache_key(p, issuer), now, e.clone());
        Ok(e)
    }

    /// The URL that sends the browser to the provider.
    #[allow(clippy::too_many_arguments)]
    pub fn authorization_url(
        &self,
        p: &UpstreamConfig,
        ep: &Endpoints,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        challenge: &str,
        login_hint: Option<&str>,
    ) -> Url {
        let mut u = ep.authorization.clone();
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &p.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", state)
                .append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256");
            if !p.scopes.is_empty() {
                q.append_pair("scope", &p.scopes.join(" "));
            }
            if matches!(p.protocol, Protocol::Oidc { .. }) {
                q.append_pair("nonce", nonce);
            }
            if let Some(h) = login_hint {
                q.append_pair("login_hint", h);
            }
        }
        u
    }

    /// Exchanges the code and finds out who signed in.
    pub async fn finish(
        &self,
        p: &UpstreamConfig,
        ep: &Endpoints,
        code: &str,
        pending: &Pending<'_>,
        now: i64,
    ) -> Result<UpstreamIdentity, FederationError> {
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", pending.redirect_uri),
            ("code_verifier", pending.verifier),
        ];
        check_url(p, &ep.token)?;
        let mut req = self
            .client(p)
            .post(ep.token.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match &p.client_secret {
            Some(secret) if ep.secret_in_body => {
                form.push(("client_id", &p.client_id));
                form.push(("client_secret", secret.expose()));
            }
            Some(secret) => {
                // RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let basic =
                    STANDARD.encode(format!("{}:{}", enc(&p.client_id), enc(secret.expose())));
                req = req.header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"));
            }
            None => form.push(("client_id", &p.client_id)),
        }
        let resp = req
            .form(&form)
            .send()
            .await
            .map_err(|e| unreachable(&ep.token, &e))?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|_| {
            FederationError::Unreachable(format!(
                "the token endpoint answered {status} without JSON"
            ))
        })?;
        // GitHub answers errors with 200.
        if let Some(err) = body.get("error").and_then(Value::as_str) {
            let desc = body
                .get("error_description")
                .and_then(Value::as_str)
                .map(|d| format!(" ({})", sanitize(d, 200)))
                .unwrap_or_default();
            return Err(FederationError::Refused(format!(
                "{}{desc}",
                sanitize(err, 60)
            )));
        }
        if !status.is_success() {
            return Err(FederationError::Refused(format!(
                "the token endpoint answered {status}"
            )));
        }
        let access_token = body.get("access_token").and_then(Value::as_str);
        match &p.protocol {
            Protocol::Oidc { issuer } => {
                let id_token = body
                    .get("id_token")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        FederationError::Invalid("the token response has no id_token".into())
                    })?;
                let claims = self
                    .validate_id_token(p, ep, issuer, id_token, pending.nonce, now)
                    .await?;
                let mut id = self.map_claims(p, &claims, claims_issuer(&claims))?;
                // Some providers keep the address out of the ID token: ask userinfo.
                if id.email.is_none()
                    && let (Some(ui), Some(at)) = (&ep.userinfo, access_token)
                {
                    let info = self.get_json(p, ui, Some(at)).await?;
                    let info = info.as_object().cloned().unwrap_or_default();
                    // OpenID Connect Core §5.3.2: userinfo's `sub` must be the ID token's.
                    if claim_str(&info, "sub").is_none()
                        || claim_str(&info, "sub") != claim_str(&claims, "sub")
                    {
                        return Err(FederationError::Invalid(
                            "userinfo describes another subject than the ID token".into(),
                        ));
                    }
                    let more = self.map_claims(p, &info, id.issuer.clone())?;
                    id.email = more.email;
                    id.email_verified = more.email_verified;
                    id.name = id.name.or(more.name);
                }
                Ok(id)
            }
            Protocol::OAuth2(o) => {
                let at = access_token.ok_or_else(|| {
                    FederationError::Invalid("the token response has no access_token".into())
                })?;
                let ui = ep.userinfo.as_ref().ok_or_else(|| {
                    FederationError::Invalid("no userinfo endpoint is configured".into())
                })?;
                let info = self.get_json(p, ui, Some(at)).await?;
                let info = info.as_object().cloned().ok_or_else(|| {
                    FederationError::Invalid("userinfo is not a JSON object".into())
                })?;
                let issuer = o.authorization.origin().ascii_serialization();
                let mut id = self.map_claims(p, &info, issuer)?;
                if let Some(emails) = &ep.emails {
                    let list = self.get_json(p, emails, Some(at)).await?;
                    let list = list.as_array().cloned().unwrap_or_default();
                    let pick = |primary_only: bool| {
                        list.iter().find(|e| {
                            e.get("verified").and_then(Value::as_bool) == Some(true)
                                && (!primary_only
                                    || e.get("primary").and_then(Value::as_bool) == Some(true))
                        })
                    };
                    match pick(true).or_else(|| pick(false)) {
                        Some(e) => {
                            id.email = e.get("email").and_then(Value::as_str).map(str::to_owned);
                            id.email_verified = id.email.is_some();
                        }
                        None => id.email_verified = false,
                    }
                }
                Ok(id)
            }
        }
    }

    fn map_claims(
        &self,
        p: &UpstreamConfig,
        claims: &Map<String, Value>,
        issuer: String,
    ) -> Result<UpstreamIdentity, FederationError> {
        let subject = claim_str(claims, &p.claims.subject).ok_or_else(|| {
            FederationError::Invalid(format!("the `{}` claim is missing", p.claims.subject))
        })?;
        let email = claim_str(claims, &p.claims.email);
        let verified = claim_true(claims, &p.claims.email_verified)
            // Microsoft Entra: `xms_edov` says the domain owner verified the address.
            .or_else(|| {
                (p.preset == "microsoft")
                    .then(|| claim_true(claims, "xms_edov"))
                    .flatten()
            })
            .unwrap_or(p.trust_email);
        let name = p.claims.name.iter().find_map(|c| claim_str(claims, c));
        Ok(UpstreamIdentity {
            subject,
            email_verified: email.is_some() && verified,
            email,
            name,
            issuer,
        })
    }

    async fn key_set(
        &self,
        p: &UpstreamConfig,
        url: &Url,
        now: i64,
        force: bool,
    ) -> Result<Arc<Vec<Value>>, FederationError> {
        if let Ok(cache) = self.jwks.lock()
            && let Some((at, keys)) = cache.get(url.as_str())
            && (now - at < CACHE_SECS && !force || now - at < JWKS_REFETCH_SECS)
        {
            return Ok(keys.clone());
        }
        let doc = self.get_json(p, url, None).await?;
        let keys = Arc::new(
            doc.get("keys")
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| FederationError::Unreachable("the JWKS has no keys".into()))?,
        );
        remember(&self.jwks, url.as_str(), now, keys.clone());
        Ok(keys)
    }

    async fn validate_id_token(
        &self,
        p: &UpstreamConfig,
        ep: &Endpoints,
        configured_issuer: &str,
        token: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Map<String, Value>, FederationError> {
        let invalid = |m: &str| FederationError::Invalid(m.to_owned());
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| invalid("the ID token is not a JWS"))?;
        const ALLOWED: [Algorithm; 9] = [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ];
        if !ALLOWED.contains(&header.alg) {
            return Err(FederationError::Invalid(format!(
                "the ID token is signed with {:?}; only asymmetric algorithms are accepted",
                header.alg
            )));
        }
        let jwks_url = ep
            .jwks
            .as_ref()
            .ok_or_else(|| invalid("the provider publishes no JWKS"))?;
        let mut key = None;
        for force in [false, true] {
            let keys = self.key_set(p, jwks_url, now, force).await?;
            key = find_key(&keys, header.kid.as_deref(), header.alg);
            if key.is_some() {
                break;
            }
        }
        let key =
            key.ok_or_else(|| invalid("no key of the provider's JWKS matches the ID token"))?;
        let mut v = Validation::new(header.alg);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v)
            .map_err(|_| invalid("the ID token's signature does not verify"))?;
        let c = data.claims;
        let iss = claims_issuer(&c);
        let expected_iss = match (&ep.issuer, p.tenant_issuer) {
            (Some(doc), true) if doc == MICROSOFT_TENANT_ISSUER => {
                let tid = claim_str(&c, "tid").ok_or_else(|| invalid("the ID token has no tid"))?;
                doc.replace("{tenantid}", &tid)
            }
            // The issuer the (checked) discovery document names, e.g. a Microsoft tenant GUID.
            (Some(doc), false) if p.preset == "microsoft" => doc.clone(),
            _ => configured_issuer.to_owned(),
        };
        if iss.trim_end_matches('/') != expected_iss {
            return Err(FederationError::Invalid(format!(
                "the ID token was issued by {iss}, not {expected_iss}"
            )));
        }
        let auds: Vec<&str> = match c.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !auds.contains(&p.client_id.as_str()) {
            return Err(invalid("the ID token is not meant for this client (aud)"));
        }
        if auds.len() > 1 && claim_str(&c, "azp").as_deref() != Some(p.client_id.as_str()) {
            return Err(invalid(
                "the ID token has several audiences and another azp",
            ));
        }
        let exp = c
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| invalid("the ID token has no exp"))?;
        if exp.saturating_add(SKEW_SECS) < now {
            return Err(invalid("the ID token has expired"));
        }
        if let Some(iat) = c.get("iat").and_then(Value::as_i64)
            && iat > now.saturating_add(SKEW_SECS)
        {
            return Err(invalid(
                "the ID token was issued in the future (check the clocks)",
            ));
        }
        let got = c.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !constant_time_eq(got.as_bytes(), nonce.as_bytes()) {
            return Err(FederationError::NonceMismatch);
        }
        Ok(c)
    }
}

/// The issuer Microsoft's multi-tenant discovery documents name: each ID token's issuer is
/// this with the user's tenant id (`tid`).
const MICROSOFT_TENANT_ISSUER: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";

fn cache_key(p: &UpstreamConfig, issuer: &str) -> String {
    format!("{}{issuer}", if p.restricted { "org " } else { "" })
}

fn claims_issuer(c: &Map<String, Value>) -> String {
    claim_str(c, "iss").unwrap_or_default()
}

/// The JWK for `kid` (or the only key usable with `alg` when the token names none).
fn find_key(keys: &[Value], kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    let usable = keys.iter().filter(|k| {
        k.get("use")
            .and_then(Value::as_str)
            .is_none_or(|u| u == "sig")
            && kid.is_none_or(|kid| k.get("kid").and_then(Value::as_str) == Some(kid))
    });
    let candidates: Vec<DecodingKey> = usable
        .filter_map(|k| serde_json::from_value::<jsonwebtoken::jwk::Jwk>(k.clone()).ok())
        .filter_map(|jwk| {
            let family_ok = match (&jwk.algorithm, alg) {
                (jsonwebtoken::jwk::AlgorithmParameters::RSA(_), a) => {
                    matches!(
                        a,
                        Algorithm::RS256
                            | Algorithm::RS384
                            | Algorithm::RS512
                            | Algorithm::PS256
                            | Algorithm::PS384
                            | Algorithm::PS512
                    )
                }
                (jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_), a) => {
                    matches!(a, Algorithm::ES256 | Algorithm::ES384)
                }
                (jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_), a) => {
                    a == Algorithm::EdDSA
                }
                _ => false,
            };
            family_ok
                .then(|| DecodingKey::from_jwk(&jwk).ok())
                .flatten()
        })
        .collect();
    if kid.is_none() && candidates.len() != 1 {
        return None;
    }
    candidates.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keys::{KeyEntry, KeySet, generate};
    use crate::federation::config::UpstreamConfig;
    use serde_json::json;

    const ISSUER: &str = "https://idp.example";
    const NOW: i64 = 1_800_000_000;

    fn keyset() -> KeySet {
        let k = generate();
        KeySet::new(vec![
            KeyEntry::from_stored(k.kid, &k.private_b64, 0, 0, None).expect("key"),
        ])
    }

    /// A federation whose key cache already holds `ks`'s public keys, and the endpoints.
    fn federation(ks: &KeySet) -> (Federation, Endpoints, UpstreamConfig) {
        let fed = Federation::new();
        let jwks = Url::parse("https://idp.example/jwks").expect("url");
        let keys = ks.jwks()["keys"].as_array().cloned().expect("keys");
        fed.jwks
            .lock()
            .expect("lock")
            .insert(jwks.as_str().to_owned(), (NOW, Arc::new(keys)));
        let ep = Endpoints {
            issuer: Some(ISSUER.into()),
            authorization: Url::parse("https://idp.example/authorize").expect("url"),
            token: Url::parse("https://idp.example/token").expect("url"),
            userinfo: None,
            emails: None,
            jwks: Some(jwks),
            secret_in_body: false,
            iss_required: false,
        };
        let cfg = UpstreamConfig::for_org("acme", "Acme SSO", ISSUER, "client-1", None, true);
        (fed, ep, cfg)
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER, "aud": "client-1", "sub": "u1", "exp": NOW + 300, "iat": NOW,
            "nonce": "n-123", "email": "Ann@Example.com", "email_verified": true, "name": "Ann",
        })
    }

    async fn check(change: impl FnOnce(&mut Value)) -> Result<Map<String, Value>, FederationError> {
        let ks = keyset();
        let (fed, ep, cfg) = federation(&ks);
        let mut c = claims();
        change(&mut c);
        let token = ks.sign(NOW, "JWT", &c).expect("sign");
        fed.validate_id_token(&cfg, &ep, ISSUER, &token, "n-123", NOW)
            .await
    }

    #[tokio::test]
    async fn a_valid_id_token_passes_and_maps_to_an_identity() {
        let c = check(|_| {}).await.expect("valid");
        let (fed, _, cfg) = federation(&keyset());
        let id = fed.map_claims(&cfg, &c, ISSUER.into()).expect("identity");
        assert_eq!(id.subject, "u1");
        assert!(id.email_verified);
        assert_eq!(id.name.as_deref(), Some("Ann"));
        // Several audiences are fine when azp names us.
        check(|c| {
            c["aud"] = json!(["other", "client-1"]);
            c["azp"] = json!("client-1");
        })
        .await
        .expect("azp");
    }

    #[tokio::test]
    async fn every_claim_rule_is_enforced() {
        let invalid = |r: Result<Map<String, Value>, FederationError>, what: &str| match r {
            Err(FederationError::Invalid(m)) => assert!(m.contains(what), "{m}"),
            other => panic!("expected Invalid({what}), got {other:?}"),
        };
        invalid(
            check(|c| c["iss"] = json!("https://evil.example")).await,
            "issued by",
        );
        invalid(check(|c| c["aud"] = json!("someone-else")).await, "aud");
        invalid(
            check(|c| c["aud"] = json!(["other", "client-1"])).await,
            "azp",
        );
        invalid(check(|c| c["exp"] = json!(NOW - 3600)).await, "expired");
        invalid(check(|c| c["iat"] = json!(NOW + 3600)).await, "future");
        invalid(
            check(|c| {
                c.as_object_mut()
                    .map(|m| m.remove("exp"))
                    .map(drop)
                    .unwrap_or(())
            })
            .await,
            "exp",
        );
        assert!(matches!(
            check(|c| c["nonce"] = json!("other")).await,
            Err(FederationError::NonceMismatch)
        ));
        assert!(matches!(
            check(|c| c
                .as_object_mut()
                .map(|m| m.remove("nonce"))
                .map(drop)
                .unwrap_or(()))
            .await,
            Err(FederationError::NonceMismatch)
        ));
    }

    #[tokio::test]
    async fn signatures_keys_and_algorithms() {
        let ks = keyset();
        let (fed, ep, cfg) = federation(&ks);
        // Signed by a key the provider does not publish.
        let stranger = keyset().sign(NOW, "JWT", &claims()).expect("sign");
        let r = fed
            .validate_id_token(&cfg, &ep, ISSUER, &stranger, "n-123", NOW)
            .await;
        assert!(
            matches!(
                r,
                Err(FederationError::Invalid(_)) | Err(FederationError::Unreachable(_))
            ),
            "{r:?}"
        );
        // A signature over other claims.
        let good = ks.sign(NOW, "JWT", &claims()).expect("sign");
        let other = ks.sign(NOW, "JWT", &json!({"sub": "admin"})).expect("sign");
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            other.split('.').nth(1).expect("payload"),
            parts[2]
        );
        let r = fed
            .validate_id_token(&cfg, &ep, ISSUER, &forged, "n-123", NOW)
            .await;
        assert!(
            matches!(&r, Err(FederationError::Invalid(m)) if m.contains("signature")),
            "{r:?}"
        );
        // HS256 (a shared-secret MAC) and `none` are refused before any key is looked at.
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for alg in ["HS256", "none"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let token = format!("{header}.{}.{}", parts[1], parts[2]);
            let r = fed
                .validate_id_token(&cfg, &ep, ISSUER, &token, "n-123", NOW)
                .await;
            assert!(
                matches!(r, Err(FederationError::Invalid(_))),
                "{alg}: {r:?}"
            );
        }
        assert!(matches!(
            fed.validate_id_token(&cfg, &ep, ISSUER, "not a jwt", "n-123", NOW)
                .await,
            Err(FederationError::Invalid(_))
        ));
    }

    #[test]
    fn email_verification_claims() {
        let (fed, _, mut cfg) = federation(&keyset());
        let m = |v: Value| v.as_object().cloned().expect("object");
        let id = |fed: &Federation, cfg: &UpstreamConfig, v: Value| {
            fed.map_claims(cfg, &m(v), ISSUER.into()).expect("identity")
        };
        assert!(!id(&fed, &cfg, json!({"sub": "a", "email": "a@x.example"})).email_verified);
        assert!(
            !id(
                &fed,
                &cfg,
                json!({"sub": "a", "email": "a@x.example", "email_verified": false})
            )
            .email_verified
        );
        assert!(
            id(
                &fed,
                &cfg,
                json!({"sub": "a", "email": "a@x.example", "email_verified": "true"})
            )
            .email_verified
        );
        assert!(
            !id(&fed, &cfg, json!({"sub": "a", "email_verified": true})).email_verified,
            "no address, nothing verified"
        );
        assert_eq!(id(&fed, &cfg, json!({"sub": 42})).subject, "42");
        assert!(
            fed.map_claims(&cfg, &m(json!({"email": "a@x.example"})), ISSUER.into())
                .is_err()
        );
        cfg.trust_email = true;
        assert!(id(&fed, &cfg, json!({"sub": "a", "email": "a@x.example"})).email_verified);
        assert!(
            !id(
                &fed,
                &cfg,
                json!({"sub": "a", "email": "a@x.example", "email_verified": false})
            )
            .email_verified
        );
        cfg.trust_email = false;
        cfg.preset = "microsoft".into();
        assert!(
            id(
                &fed,
                &cfg,
                json!({"sub": "a", "email": "a@x.example", "xms_edov": true})
            )
            .email_verified
        );
    }

    #[test]
    fn public_addresses_and_urls_of_organizations_providers() {
        for ip in ["8.8.8.8", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert!(is_public_ip(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public_ip(ip.parse().expect("ip")), "{ip}");
        }
        let (_, _, org) = federation(&keyset());
        let url = |u: &str| Url::parse(u).expect("url");
        assert!(check_url(&org, &url("https://idp.example.com/x")).is_ok());
        for bad in [
            "http://idp.example.com/x",
            "https://127.0.0.1/x",
            "https://localhost/x",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://10.0.0.5/x",
        ] {
            assert!(
                matches!(
                    check_url(&org, &url(bad)),
                    Err(FederationError::Misconfigured(_))
                ),
                "{bad}"
            );
        }
        let mut operator = org.clone();
        operator.restricted = false;
        assert!(check_url(&operator, &url("http://127.0.0.1:8080/x")).is_ok());
        assert!(check_url(&operator, &url("http://idp.example.com/x")).is_err());
    }

    /// A provider that answers with an endless body is cut off at the limit.
    #[tokio::test]
    async fn answers_are_read_up_to_a_limit() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let _ = sock.read(&mut buf).await;
                    let _ = sock
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
                        .await;
                    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "[".repeat(64 * 1024));
                    for _ in 0..64 {
                        if sock.write_all(chunk.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let (fed, _, mut p) = federation(&keyset());
        p.restricted = false;
        let url =
            Url::parse(&format!("http://{addr}/.well-known/openid-configuration")).expect("url");
        match fed.get_json(&p, &url, None).await {
            Err(FederationError::Unreachable(m)) => assert!(m.contains("KiB"), "{m}"),
            other => panic!("expected a size refusal, got {other:?}"),
        }
    }
}
