//! Upstream identity providers as configured by the operator: `[upstream.ID]` tables in the
//! settings file and `LATCHKEYD_UPSTREAM_<ID>_<KEY>` environment variables, merged key by key
//! (environment wins), then validated into [`UpstreamConfig`] with a preset's defaults filled
//! in. Client secrets come from the environment or a file, never from the settings file, and
//! never reach a log line or a `Debug` print.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use url::Url;

use crate::config::ConfigError;

/// One provider's settings as given: every key optional.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct UpstreamSettings {
    /// `google`, `microsoft`, `gitlab`, `okta`, `github`, `oidc` (any OpenID provider) or
    /// `oauth2` (plain OAuth 2.0 with a userinfo mapping) [default: `oidc`].
    pub preset: Option<String>,
    /// Button label: "Continue with NAME".
    pub name: Option<String>,
    /// OpenID issuer URL (discovery document at `ISSUER/.well-known/openid-configuration`).
    pub issuer: Option<String>,
    /// Microsoft Entra tenant: a tenant id or one of its domains, `organizations`, `common` or
    /// `consumers`.
    pub tenant: Option<String>,
    /// The client id latchkeyd is registered under at the provider.
    pub client_id: Option<String>,
    /// Name of an environment variable holding the client secret.
    pub client_secret_env: Option<String>,
    /// File holding the client secret (surrounding whitespace ignored).
    pub client_secret_file: Option<PathBuf>,
    /// The secret itself: only from `LATCHKEYD_UPSTREAM_<ID>_CLIENT_SECRET`, never the file.
    #[serde(skip)]
    pub client_secret: Option<String>,
    /// Scopes asked for.
    pub scopes: Option<Vec<String>>,
    /// `oauth2`: the authorization endpoint.
    pub authorization_endpoint: Option<String>,
    /// `oauth2`: the token endpoint.
    pub token_endpoint: Option<String>,
    /// `oauth2`: the userinfo endpoint (JSON object, fetched with the access token).
    pub userinfo_endpoint: Option<String>,
    /// `oauth2`: an endpoint listing the user's addresses as `[{email, verified, primary}]`
    /// (GitHub's `/user/emails`).
    pub emails_endpoint: Option<String>,
    /// Claim (userinfo field) holding the stable user id [default: `sub`].
    pub subject_claim: Option<String>,
    /// Claim holding the email address [default: `email`].
    pub email_claim: Option<String>,
    /// Claim saying the address is verified [default: `email_verified`].
    pub email_verified_claim: Option<String>,
    /// Claim holding the display name [default: `name`].
    pub name_claim: Option<String>,
    /// Email domains whose users "Continue with SSO" sends to this provider.
    pub domains: Option<Vec<String>>,
    /// Treat the address as verified when the provider sends no verification claim (only for
    /// a provider that verifies every address it issues, such as a single-tenant directory).
    pub trust_email: Option<bool>,
    /// Set to false to hide the provider without deleting its settings [default: true].
    pub enabled: Option<bool>,
}

impl std::fmt::Debug for UpstreamSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamSettings")
            .field("preset", &self.preset)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret_env", &self.client_secret_env)
            .field("client_secret_file", &self.client_secret_file)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

macro_rules! merge_fields {
    ($a:ident, $b:ident, $($f:ident),*) => {
        UpstreamSettings { $($f: $a.$f.or($b.$f)),* }
    };
}

impl UpstreamSettings {
    /// Fills every unset key from `other` (lower precedence).
    pub fn or(self, other: UpstreamSettings) -> UpstreamSettings {
        let (a, b) = (self, other);
        merge_fields!(
            a,
            b,
            preset,
            name,
            issuer,
            tenant,
            client_id,
            client_secret_env,
            client_secret_file,
            client_secret,
            scopes,
            authorization_endpoint,
            token_endpoint,
            userinfo_endpoint,
            emails_endpoint,
            subject_claim,
            email_claim,
            email_verified_claim,
            name_claim,
            domains,
            trust_email,
            enabled
        )
    }
}

/// Merges two provider maps key by key: `a` wins.
pub fn merge(
    a: Option<BTreeMap<String, UpstreamSettings>>,
    b: Option<BTreeMap<String, UpstreamSettings>>,
) -> Option<BTreeMap<String, UpstreamSettings>> {
    match (a, b) {
        (None, b) => b,
        (a, None) => a,
        (Some(mut a), Some(b)) => {
            for (id, s) in b {
                let merged = match a.remove(&id) {
                    Some(x) => x.or(s),
                    None => s,
                };
                a.insert(id, merged);
            }
            Some(a)
        }
    }
}

/// Keys of `LATCHKEYD_UPSTREAM_<ID>_<KEY>`, longest first so `CLIENT_SECRET_FILE` is not
/// read as `CLIENT_SECRET`.
const ENV_KEYS: &[&str] = &[
    "EMAIL_VERIFIED_CLAIM",
    "AUTHORIZATION_ENDPOINT",
    "CLIENT_SECRET_FILE",
    "CLIENT_SECRET_ENV",
    "USERINFO_ENDPOINT",
    "EMAILS_ENDPOINT",
    "TOKEN_ENDPOINT",
    "SUBJECT_CLAIM",
    "CLIENT_SECRET",
    "EMAIL_CLAIM",
    "TRUST_EMAIL",
    "NAME_CLAIM",
    "CLIENT_ID",
    "ENABLED",
    "DOMAINS",
    "PRESET",
    "ISSUER",
    "TENANT",
    "SCOPES",
    "NAME",
];

fn list(v: &str) -> Vec<String> {
    v.split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Providers from `LATCHKEYD_UPSTREAM_<ID>_<KEY>` variables (`ID` is lowercased, `_` becomes
/// `-`); unknown keys are an error naming the variable.
pub fn from_env(
    vars: impl Iterator<Item = (String, String)>,
) -> Result<Option<BTreeMap<String, UpstreamSettings>>, ConfigError> {
    let mut out: BTreeMap<String, UpstreamSettings> = BTreeMap::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("LATCHKEYD_UPSTREAM_") else {
            continue;
        };
        let Some((id, key)) = ENV_KEYS.iter().find_map(|k| {
            rest.strip_suffix(k)
                .and_then(|id| id.strip_suffix('_'))
                .filter(|id| !id.is_empty())
                .map(|id| (id.to_ascii_lowercase().replace('_', "-"), *k))
        }) else {
            return Err(ConfigError::Invalid {
                key: "upstream",
                reason: format!(
                    "{name}: not a known setting; use LATCHKEYD_UPSTREAM_<ID>_<KEY> with KEY one of {}",
                    ENV_KEYS.join(", ")
                ),
            });
        };
        let s = out.entry(id).or_default();
        let bool_of = |v: &str| -> Result<bool, ConfigError> {
            match v {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(ConfigError::Invalid {
                    key: "upstream",
                    reason: format!("{name}: use true or false"),
                }),
            }
        };
        match key {
            "PRESET" => s.preset = Some(value),
            "NAME" => s.name = Some(value),
            "ISSUER" => s.issuer = Some(value),
            "TENANT" => s.tenant = Some(value),
            "CLIENT_ID" => s.client_id = Some(value),
            "CLIENT_SECRET" => s.client_secret = Some(value),
            "CLIENT_SECRET_ENV" => s.client_secret_env = Some(value),
            "CLIENT_SECRET_FILE" => s.client_secret_file = Some(value.into()),
            "SCOPES" => s.scopes = Some(list(&value)),
            "AUTHORIZATION_ENDPOINT" => s.authorization_endpoint = Some(value),
            "TOKEN_ENDPOINT" => s.token_endpoint = Some(value),
            "USERINFO_ENDPOINT" => s.userinfo_endpoint = Some(value),
            "EMAILS_ENDPOINT" => s.emails_endpoint = Some(value),
            "SUBJECT_CLAIM" => s.subject_claim = Some(value),
            "EMAIL_CLAIM" => s.email_claim = Some(value),
            "EMAIL_VERIFIED_CLAIM" => s.email_verified_claim = Some(value),
            "NAME_CLAIM" => s.name_claim = Some(value),
            "DOMAINS" => s.domains = Some(list(&value)),
            "TRUST_EMAIL" => s.trust_email = Some(bool_of(&value)?),
            _ => s.enabled = Some(bool_of(&value)?),
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// A client secret: shown nowhere.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret, for the token request only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Which protocol a provider speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// OpenID Connect: endpoints from discovery, identity from a validated ID token.
    Oidc {
        /// The issuer (no trailing slash), as in its discovery document.
        issuer: String,
    },
    /// Plain OAuth 2.0: configured endpoints, identity from a userinfo request.
    OAuth2(Box<OAuth2Endpoints>),
}

/// Endpoints of a plain OAuth 2.0 provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Endpoints {
    /// Authorization endpoint.
    pub authorization: Url,
    /// Token endpoint.
    pub token: Url,
    /// Userinfo endpoint.
    pub userinfo: Url,
    /// Email list endpoint.
    pub emails: Option<Url>,
}

/// Where identity claims are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMap {
    /// Stable user id.
    pub subject: String,
    /// Email address.
    pub email: String,
    /// Verification flag.
    pub email_verified: String,
    /// Display name (first of these present).
    pub name: Vec<String>,
}

/// A validated upstream provider.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Id: the `ID` of `[upstream.ID]`, part of the URLs `/sso/ID` and `/sso/ID/callback`.
    pub id: String,
    /// Label of its button.
    pub name: String,
    /// The preset it was built from.
    pub preset: String,
    /// Protocol and endpoints.
    pub protocol: Protocol,
    /// Client id at the provider.
    pub client_id: String,
    /// Client secret (confidential client); `None` for a public client using PKCE only.
    pub client_secret: Option<ClientSecret>,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// Claim names.
    pub claims: ClaimMap,
    /// Email domains routed here by "Continue with SSO".
    pub domains: Vec<String>,
    /// Whether an address without a verification claim counts as verified.
    pub trust_email: bool,
    /// Microsoft multi-tenant: the ID token's issuer names the user's tenant (`{tenantid}`).
    pub tenant_issuer: bool,
    /// Set up by an organization, not the operator: every URL must be https on a public
    /// address (no loopback, private or link-local networks), unless the operator allows it.
    pub restricted: bool,
}

impl UpstreamConfig {
    /// An organization's own OpenID provider, as set up on its page.
    pub fn for_org(
        slug: &str,
        name: &str,
        issuer: &str,
        client_id: &str,
        client_secret: Option<ClientSecret>,
        restricted: bool,
    ) -> UpstreamConfig {
        UpstreamConfig {
            id: format!("org-{slug}"),
            name: name.to_owned(),
            preset: "oidc".into(),
            protocol: Protocol::Oidc {
                issuer: issuer.trim_end_matches('/').to_owned(),
            },
            client_id: client_id.to_owned(),
            client_secret,
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            claims: ClaimMap {
                subject: "sub".into(),
                email: "email".into(),
                email_verified: "email_verified".into(),
                name: vec!["name".into()],
            },
            domains: vec![],
            trust_email: false,
            tenant_issuer: false,
            restricted,
        }
    }
}

fn bad(id: &str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key: "upstream",
        reason: format!("[upstream.{id}]: {reason}"),
    }
}

fn parse_url(id: &str, key: &str, raw: &str) -> Result<Url, ConfigError> {
    let u = Url::parse(raw).map_err(|e| bad(id, format!("{key} `{raw}`: {e}")))?;
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if u.scheme() != "https" && !(u.scheme() == "http" && loopback) {
        return Err(bad(
            id,
            format!("{key} must be an https:// URL (http:// only on loopback)"),
        ));
    }
    Ok(u)
}

/// Checks an issuer URL and returns it without a trailing slash.
pub fn normalize_issuer(raw: &str) -> Result<String, String> {
    let u = Url::parse(raw.trim()).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if u.scheme() != "https" && !(u.scheme() == "http" && loopback) {
        return Err("the issuer must be an https:// URL".into());
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err("the issuer must not have a query or fragment".into());
    }
    Ok(u.as_str().trim_end_matches('/').to_owned())
}

/// Checks an email domain and returns it lowercased.
pub fn normalize_domain(raw: &str) -> Result<String, String> {
    let d = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(d)
    } else {
        Err(format!("`{raw}` is not a domain name like example.com"))
    }
}

/// Ids become URL path segments: lowercase letters, digits and `-`; `org` is taken by the
/// organizations' own providers.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 40
        && id != "org"
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn secret(id: &str, s: &UpstreamSettings) -> Result<Option<ClientSecret>, ConfigError> {
    if let Some(v) = &s.client_secret {
        return Ok(Some(ClientSecret::new(v.trim())));
    }
    if let Some(var) = &s.client_secret_env {
        return match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(ClientSecret::new(v.trim()))),
            _ => Err(bad(
                id,
                format!("client_secret_env names ${var}, which is not set"),
            )),
        };
    }
    if let Some(path) = &s.client_secret_file {
        return match std::fs::read_to_string(path) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(ClientSecret::new(v.trim()))),
            Ok(_) => Err(bad(
                id,
                format!("client_secret_file {} is empty", path.display()),
            )),
            Err(e) => Err(bad(
                id,
                format!("cannot read client_secret_file {}: {e}", path.display()),
            )),
        };
    }
    Ok(None)
}

/// Validates one provider, filling in its preset.
pub fn validate(id: &str, s: UpstreamSettings) -> Result<UpstreamConfig, ConfigError> {
    if !valid_id(id) {
        return Err(bad(
            id,
            "the id must be lowercase letters, digits and `-` (and not `org`)",
        ));
    }
    let preset = s.preset.clone().unwrap_or_else(|| "oidc".into());
    let client_id = s
        .client_id
        .clone()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| bad(id, "client_id is required"))?;
    let client_secret = secret(id, &s)?;
    let oidc_scopes = || vec!["openid".into(), "email".into(), "profile".into()];
    let issuer_of = |default: Option<&str>| -> Result<String, ConfigError> {
        let raw = s.issuer.as_deref().or(default).ok_or_else(|| {
            bad(
                id,
                format!(
                    "issuer is required for the `{preset}` preset (e.g. https://idp.example.com)"
                ),
            )
        })?;
        normalize_issuer(raw).map_err(|e| bad(id, e))
    };
    let default_claims = ClaimMap {
        subject: "sub".into(),
        email: "email".into(),
        email_verified: "email_verified".into(),
        name: vec!["name".into()],
    };
    let mut tenant_issuer = false;
    let (name, protocol, scopes, claims) = match preset.as_str() {
        "google" => (
            "Google",
            Protocol::Oidc {
                issuer: issuer_of(Some("https://accounts.google.com"))?,
            },
            oidc_scopes(),
            default_claims,
        ),
        "microsoft" => {
            let tenant = s.tenant.as_deref().unwrap_or("organizations");
            if tenant.is_empty()
                || !tenant
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                return Err(bad(
                    id,
                    "tenant must be a tenant id, a domain, `organizations` or `common`",
                ));
            }
            // These two accept users of many tenants; each ID token names its own tenant.
            tenant_issuer = matches!(tenant, "organizations" | "common");
            let default = format!("https://login.microsoftonline.com/{tenant}/v2.0");
            (
                "Microsoft",
                Protocol::Oidc {
                    issuer: issuer_of(Some(&default))?,
                },
                oidc_scopes(),
                default_claims,
            )
        }
        "gitlab" => (
            "GitLab",
            Protocol::Oidc {
                issuer: issuer_of(Some("https://gitlab.com"))?,
            },
            oidc_scopes(),
            default_claims,
        ),
        "okta" => (
            "Okta",
            Protocol::Oidc {
                issuer: issuer_of(None)?,
            },
            oidc_scopes(),
            default_claims,
        ),
        "oidc" => (
            "SSO",
            Protocol::Oidc {
                issuer: issuer_of(None)?,
            },
            oidc_scopes(),
            default_claims,
        ),
        "github" | "oauth2" => {
            let github = preset == "github";
            let endpoint =
                |key: &str, v: &Option<String>, default: &str| -> Result<Url, ConfigError> {
                    match (v.as_deref(), github) {
                        (Some(raw), _) => parse_url(id, key, raw),
                        (None, true) => parse_url(id, key, default),
                        (None, false) => Err(bad(
                            id,
                            format!("{key} is required for the `oauth2` preset"),
                        )),
                    }
                };
            let emails = match (&s.emails_endpoint, github) {
                (Some(raw), _) => Some(parse_url(id, "emails_endpoint", raw)?),
                (None, true) => Some(parse_url(
                    id,
                    "emails_endpoint",
                    "https://api.github.com/user/emails",
                )?),
                (None, false) => None,
            };
            let protocol = Protocol::OAuth2(Box::new(OAuth2Endpoints {
                authorization: endpoint(
                    "authorization_endpoint",
                    &s.authorization_endpoint,
                    "https://github.com/login/oauth/authorize",
                )?,
                token: endpoint(
                    "token_endpoint",
                    &s.token_endpoint,
                    "https://github.com/login/oauth/access_token",
                )?,
                userinfo: endpoint(
                    "userinfo_endpoint",
                    &s.userinfo_endpoint,
                    "https://api.github.com/user",
                )?,
                emails,
            }));
            if github {
                (
                    "GitHub",
                    protocol,
                    vec!["read:user".into(), "user:email".into()],
                    ClaimMap {
                        subject: "id".into(),
                        email: "email".into(),
                        email_verified: "email_verified".into(),
                        name: vec!["name".into(), "login".into()],
                    },
                )
            } else {
                ("Sign-in provider", protocol, vec![], default_claims)
            }
        }
        other => {
            return Err(bad(
                id,
                format!(
                    "unknown preset `{other}`; use google, microsoft, gitlab, okta, github, oidc or oauth2"
                ),
            ));
        }
    };
    let mut claims = claims;
    if let Some(c) = s.subject_claim {
        claims.subject = c;
    }
    if let Some(c) = s.email_claim {
        claims.email = c;
    }
    if let Some(c) = s.email_verified_claim {
        claims.email_verified = c;
    }
    if let Some(c) = s.name_claim {
        claims.name = vec![c];
    }
    if tenant_issuer && s.trust_email == Some(true) {
        // Any Entra tenant can put any address in `email`: trusting it lets one tenant sign
        // in as another's users ("nOAuth").
        return Err(bad(
            id,
            "trust_email cannot be used with a multi-tenant Microsoft tenant (organizations, common): any tenant could claim any address",
        ));
    }
    let scopes = s.scopes.unwrap_or(scopes);
    if matches!(protocol, Protocol::Oidc { .. }) && !scopes.iter().any(|x| x == "openid") {
        return Err(bad(
            id,
            "scopes must include `openid` for an OpenID provider",
        ));
    }
    let domains = s
        .domains
        .unwrap_or_default()
        .iter()
        .map(|d| normalize_domain(d).map_err(|e| bad(id, e)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(UpstreamConfig {
        id: id.to_owned(),
        name: s.name.unwrap_or_else(|| name.to_owned()),
        preset,
        protocol,
        client_id,
        client_secret,
        scopes,
        claims,
        domains,
        trust_email: s.trust_email.unwrap_or(false),
        tenant_issuer,
        restricted: false,
    })
}

/// Validates every enabled provider; a domain may be routed to one provider only.
pub fn validate_all(
    map: Option<BTreeMap<String, UpstreamSettings>>,
) -> Result<Vec<UpstreamConfig>, ConfigError> {
    let mut out: Vec<UpstreamConfig> = Vec::new();
    for (id, s) in map.unwrap_or_default() {
        if s.enabled == Some(false) {
            continue;
        }
        let p = validate(&id, s)?;
        for d in &p.domains {
            if let Some(other) = out.iter().find(|o| o.domains.contains(d)) {
                return Err(bad(
                    &id,
                    format!("domain {d} is already routed to [upstream.{}]", other.id),
                ));
            }
        }
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(toml_text: &str) -> BTreeMap<String, UpstreamSettings> {
        #[derive(Deserialize)]
        struct F {
            upstream: BTreeMap<String, UpstreamSettings>,
        }
        toml::from_str::<F>(toml_text).expect("toml").upstream
    }

    #[test]
    fn presets_fill_endpoints() {
        let all = validate_all(Some(s(r#"
            [upstream.google]
            preset = "google"
            client_id = "g"
            [upstream.entra]
            preset = "microsoft"
            client_id = "m"
            [upstream.gh]
            preset = "github"
            client_id = "h"
            [upstream.corp]
            issuer = "https://corp.okta.com/"
            client_id = "c"
            name = "Corp"
            domains = ["Corp.Example"]
        "#)))
        .expect("valid");
        let by = |id: &str| all.iter().find(|p| p.id == id).expect("provider");
        assert_eq!(
            by("google").protocol,
            Protocol::Oidc {
                issuer: "https://accounts.google.com".into()
            }
        );
        assert_eq!(by("google").name, "Google");
        assert!(by("entra").tenant_issuer);
        assert!(matches!(&by("gh").protocol, Protocol::OAuth2(e) if e.emails.is_some()));
        assert_eq!(by("gh").claims.subject, "id");
        assert_eq!(
            by("corp").protocol,
            Protocol::Oidc {
                issuer: "https://corp.okta.com".into()
            }
        );
        assert_eq!(by("corp").domains, vec!["corp.example"]);
    }

    #[test]
    fn mistakes_are_named() {
        let err = |t: &str| validate_all(Some(s(t))).expect_err("invalid").to_string();
        assert!(
            err("[upstream.x]\npreset = \"okta\"\nclient_id = \"c\"")
                .contains("issuer is required")
        );
        assert!(err("[upstream.x]\nissuer = \"https://a.example\"").contains("client_id"));
        assert!(
            err("[upstream.x]\npreset = \"nope\"\nclient_id = \"c\"").contains("unknown preset")
        );
        assert!(
            err("[upstream.x]\nissuer = \"http://a.example\"\nclient_id = \"c\"").contains("https")
        );
        assert!(
            err("[upstream.Bad]\nissuer = \"https://a.example\"\nclient_id = \"c\"")
                .contains("lowercase")
        );
        assert!(
            err("[upstream.x]\npreset = \"oauth2\"\nclient_id = \"c\"")
                .contains("authorization_endpoint")
        );
        assert!(
            err("[upstream.x]\nissuer = \"https://a.example\"\nclient_id = \"c\"\nclient_secret_env = \"LATCHKEY_TEST_SURELY_UNSET\"")
                .contains("LATCHKEY_TEST_SURELY_UNSET")
        );
        assert!(
            err("[upstream.a]\nissuer = \"https://a.example\"\nclient_id = \"c\"\ndomains = [\"x.example\"]\n[upstream.b]\nissuer = \"https://b.example\"\nclient_id = \"c\"\ndomains = [\"x.example\"]")
                .contains("already routed")
        );
        assert!(
            err("[upstream.ms]\npreset = \"microsoft\"\nclient_id = \"c\"\ntrust_email = true")
                .contains("any tenant could claim any address")
        );
        assert!(toml::from_str::<toml::Table>("").is_ok());
    }

    #[test]
    fn environment_variables_and_secrets() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("secret");
        std::fs::write(&file, "file-secret\n").expect("write");
        let env = vec![
            (
                "LATCHKEYD_UPSTREAM_CORP_SSO_ISSUER".to_owned(),
                "https://idp.example".to_owned(),
            ),
            (
                "LATCHKEYD_UPSTREAM_CORP_SSO_CLIENT_ID".to_owned(),
                "cid".to_owned(),
            ),
            (
                "LATCHKEYD_UPSTREAM_CORP_SSO_CLIENT_SECRET_FILE".to_owned(),
                file.display().to_string(),
            ),
            (
                "LATCHKEYD_UPSTREAM_CORP_SSO_SCOPES".to_owned(),
                "openid email".to_owned(),
            ),
            (
                "LATCHKEYD_UPSTREAM_GOOGLE_CLIENT_SECRET".to_owned(),
                "env-secret".to_owned(),
            ),
            ("PATH".to_owned(), "/bin".to_owned()),
        ];
        let env_map = from_env(env.into_iter()).expect("env");
        let file_map = s(
            "[upstream.google]\npreset = \"google\"\nclient_id = \"g\"\n[upstream.corp-sso]\nclient_id = \"overridden\"\nname = \"Corp\"",
        );
        let all = validate_all(merge(env_map, Some(file_map))).expect("valid");
        let corp = all.iter().find(|p| p.id == "corp-sso").expect("corp");
        assert_eq!(corp.client_id, "cid");
        assert_eq!(corp.name, "Corp");
        assert_eq!(corp.scopes, vec!["openid", "email"]);
        assert_eq!(
            corp.client_secret.as_ref().map(ClientSecret::expose),
            Some("file-secret")
        );
        let google = all.iter().find(|p| p.id == "google").expect("google");
        assert_eq!(
            google.client_secret.as_ref().map(ClientSecret::expose),
            Some("env-secret")
        );
        let shown = format!("{all:?}");
        assert!(
            !shown.contains("env-secret") && !shown.contains("file-secret"),
            "{shown}"
        );
        let bad_key = from_env(
            vec![("LATCHKEYD_UPSTREAM_X_COLOUR".to_owned(), "blue".to_owned())].into_iter(),
        );
        assert!(
            bad_key
                .expect_err("unknown")
                .to_string()
                .contains("LATCHKEYD_UPSTREAM_X_COLOUR")
        );
    }

    #[test]
    fn domains() {
        assert_eq!(
            normalize_domain("Example.COM.").as_deref(),
            Ok("example.com")
        );
        assert!(normalize_domain("localhost").is_err());
        assert!(normalize_domain("a..b").is_err());
        assert!(normalize_domain("-a.com").is_err());
        assert!(normalize_domain("a b.com").is_err());
    }
}
