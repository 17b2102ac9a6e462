//! Discovery: from one cloud URL (or an explicit issuer) to everything a login needs.
//!
//! First `GET {cloud}/v1/auth/cli/config` (latchkey's document: issuer, client id, methods,
//! minimum CLI version), then the issuer's RFC 8414 metadata, falling back to OpenID discovery,
//! which is what Keycloak, Auth0 or node-oidc-provider serve. Flags and `config.yaml` override
//! what the cloud says, so the client also works against servers that have no cloud document.

use crate::error::{Error, Result};
use crate::http::{Http, join};
use latchkey_proto::config::AuthSection;
use latchkey_proto::{AuthorizationServerMetadata, CliConfig};
use std::cmp::Ordering;

/// Values given on the command line, which win over `config.yaml` and discovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// The issuer (`--auth-url`).
    pub auth_url: Option<String>,
    /// The client id (`--client-id`).
    pub client_id: Option<String>,
    /// The scope to request (`--scope`).
    pub scope: Option<String>,
}

/// The outcome of discovery: where and as whom to sign in.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The cloud URL, when one is configured.
    pub cloud_url: Option<String>,
    /// The cloud's CLI document, when the cloud has one.
    pub cli_config: Option<CliConfig>,
    /// The issuer.
    pub issuer: String,
    /// The client id to use.
    pub client_id: String,
    /// The scope to request, if any.
    pub scope: Option<String>,
    /// The authorization server metadata.
    pub metadata: AuthorizationServerMetadata,
    /// Base URL of the cloud API (`/v1/me`), when the deployment has one.
    pub api_url: Option<String>,
    /// Where to download the CLI, when the cloud says.
    pub download_url: Option<String>,
}

impl Discovery {
    /// The login methods this deployment offers, preferred first (see
    /// [`latchkey_proto::methods`]): the cloud's `login_methods` when it has a CLI document,
    /// else what the metadata shows (authorization endpoint → `browser`, device endpoint →
    /// `device`, the password or anonymous grant listed → `password`, `anonymous`).
    pub fn login_methods(&self) -> Vec<String> {
        use latchkey_proto::methods::*;
        if let Some(c) = &self.cli_config
            && !c.login_methods.is_empty()
        {
            return c.login_methods.clone();
        }
        let m = &self.metadata;
        let grant = |g: &str| m.grant_types_supported.iter().any(|x| x == g);
        let mut out = Vec::new();
        if m.authorization_endpoint.is_some()
            && (m.response_types_supported.is_empty()
                || m.response_types_supported.iter().any(|r| r == "code"))
        {
            out.push(BROWSER.to_owned());
        }
        if m.device_authorization_endpoint.is_some() {
            out.push(DEVICE.to_owned());
        }
        if grant(latchkey_proto::GRANT_PASSWORD) {
            out.push(PASSWORD.to_owned());
        }
        if grant(latchkey_proto::GRANT_ANONYMOUS) {
            out.push(ANONYMOUS.to_owned());
        }
        out
    }

    /// Whether the cloud's CLI document says `method` is switched off. Without a document the
    /// answer is `false`: the server is asked and decides.
    pub fn method_disabled(&self, method: &str) -> bool {
        self.cli_config.as_ref().is_some_and(|c| {
            !c.login_methods.is_empty() && !c.login_methods.iter().any(|m| m == method)
        })
    }
}

/// Everything [`discover`] needs to know besides the network.
pub(crate) struct DiscoverInput<'a> {
    pub app: &'a str,
    pub version: &'a str,
    pub cloud_url: Option<&'a str>,
    pub config: &'a AuthSection,
    pub overrides: &'a Overrides,
    pub default_client_id: &'a str,
}

/// Fetches the cloud's CLI document; `Ok(None)` when the cloud has none (404). A 426 means the
/// cloud refuses this CLI's version (`app` at `version`).
pub(crate) async fn fetch_cli_config(
    http: &Http,
    cloud_url: &str,
    app: &str,
    version: &str,
) -> Result<Option<CliConfig>> {
    let url = join(cloud_url, "/v1/auth/cli/config");
    let resp = http.get(&url, None).await?;
    match resp.status {
        200..=299 => resp.json().map(Some),
        404 => Ok(None),
        426 => Err(Error::UpgradeRequired {
            app: app.to_owned(),
            current: version.to_owned(),
            required: None,
            message: serde_json::from_slice::<latchkey_proto::ApiError>(&resp.body)
                .ok()
                .map(|e| e.message),
            download_url: None,
        }),
        _ => Err(resp.unexpected()),
    }
}

/// Where to look for an issuer's metadata, in order: RFC 8414 §3.1 (well-known segment inserted
/// before the issuer's path), then OpenID Connect Discovery (appended to the issuer), then the
/// RFC 8414 name appended, which some servers also serve.
pub fn metadata_urls(issuer: &str) -> Vec<String> {
    let trimmed = issuer.trim_end_matches('/');
    let mut urls = Vec::new();
    if let Ok(u) = url::Url::parse(trimmed) {
        let origin = u.origin().ascii_serialization();
        let path = u.path().trim_end_matches('/');
        urls.push(format!(
            "{origin}/.well-known/oauth-authorization-server{path}"
        ));
    }
    urls.push(format!("{trimmed}/.well-known/openid-configuration"));
    let appended = format!("{trimmed}/.well-known/oauth-authorization-server");
    if !urls.contains(&appended) {
        urls.push(appended);
    }
    urls
}

/// Whether two issuer identifiers are the same (RFC 8414 §3.3), tolerating only a trailing slash.
pub fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Fetches and checks the metadata of `issuer`.
pub(crate) async fn fetch_metadata(
    http: &Http,
    issuer: &str,
) -> Result<AuthorizationServerMetadata> {
    let mut tried = Vec::new();
    for url in metadata_urls(issuer) {
        let resp = http.get(&url, None).await?;
        if !resp.is_success() {
            tried.push(format!("{url} answered {}", resp.status));
            continue;
        }
        let meta: AuthorizationServerMetadata = match resp.json() {
            Ok(m) => m,
            Err(e) => {
                tried.push(e.to_string());
                continue;
            }
        };
        if !same_issuer(&meta.issuer, issuer) {
            return Err(Error::IssuerMismatch {
                expected: issuer.to_owned(),
                found: meta.issuer,
            });
        }
        return Ok(meta);
    }
    Err(Error::Discovery {
        issuer: issuer.to_owned(),
        reason: format!("no metadata found ({})", tried.join("; ")),
    })
}

/// Compares two `MAJOR.MINOR.PATCH` versions (a leading `v`, pre-release and build suffixes are
/// ignored). `None` when either does not parse.
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    fn parse(v: &str) -> Option<[u64; 3]> {
        let v = v.trim().trim_start_matches('v');
        let core = v.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let mut out = [0u64; 3];
        for slot in &mut out {
            *slot = match parts.next() {
                Some(p) => p.parse().ok()?,
                None => 0,
            };
        }
        if parts.next().is_some() {
            return None;
        }
        Some(out)
    }
    Some(parse(a)?.cmp(&parse(b)?))
}

/// Runs discovery: cloud document (unless overrides make it unnecessary and it is missing),
/// version check, precedence of flags > config > cloud > defaults, then the metadata.
pub(crate) async fn discover(http: &Http, input: DiscoverInput<'_>) -> Result<Discovery> {
    let explicit_issuer = input
        .overrides
        .auth_url
        .clone()
        .or_else(|| input.config.url.clone());
    if let Some(i) = &explicit_issuer {
        crate::config::validate_url("the authorization server URL", i)?;
    }
    let cloud_url = input.cloud_url.map(|u| u.trim_end_matches('/').to_owned());

    let cli_config = match (&cloud_url, &explicit_issuer) {
        (None, None) => {
            return Err(Error::CloudUrlNotSet {
                app: input.app.to_owned(),
            });
        }
        (None, Some(_)) => None,
        (Some(cloud), None) => match fetch_cli_config(http, cloud, input.app, input.version).await?
        {
            Some(c) => Some(c),
            None => {
                return Err(Error::Discovery {
                    issuer: cloud.clone(),
                    reason: format!(
                        "{} does not exist; check cloud.url, or give the authorization server with --auth-url",
                        join(cloud, "/v1/auth/cli/config")
                    ),
                });
            }
        },
        // With an explicit issuer the cloud document is optional: use it when it is there.
        (Some(cloud), Some(_)) => {
            match fetch_cli_config(http, cloud, input.app, input.version).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "no CLI document from the cloud; using overrides");
                    None
                }
            }
        }
    };

    let download_url = cli_config.as_ref().and_then(|c| c.download_url.clone());
    if let Some(min) = cli_config
        .as_ref()
        .and_then(|c| c.min_cli_version.as_deref())
        && compare_versions(input.version, min) == Some(Ordering::Less)
    {
        return Err(Error::UpgradeRequired {
            app: input.app.to_owned(),
            current: input.version.to_owned(),
            required: Some(min.to_owned()),
            message: None,
            download_url,
        });
    }

    let issuer = match (&explicit_issuer, &cli_config) {
        (Some(i), _) => i.clone(),
        (None, Some(c)) => c.issuer.clone(),
        (None, None) => {
            return Err(Error::CloudUrlNotSet {
                app: input.app.to_owned(),
            });
        }
    };
    let client_id = input
        .overrides
        .client_id
        .clone()
        .or_else(|| input.config.client_id.clone())
        .or_else(|| cli_config.as_ref().map(|c| c.client_id.clone()))
        .unwrap_or_else(|| input.default_client_id.to_owned());
    let scope = input
        .overrides
        .scope
        .clone()
        .or_else(|| input.config.scope.clone())
        .or_else(|| cli_config.as_ref().and_then(|c| c.scope.clone()))
        .filter(|s| !s.trim().is_empty());
    let api_url = match (&cli_config, &cloud_url) {
        (Some(c), Some(cloud)) => Some(c.api_url.clone().unwrap_or_else(|| cloud.clone())),
        (Some(c), None) => c.api_url.clone(),
        (None, _) => None,
    };

    let metadata = fetch_metadata(http, &issuer).await?;
    Ok(Discovery {
        cloud_url,
        cli_config,
        issuer: metadata.issuer.clone(),
        client_id,
        scope,
        metadata,
        api_url,
        download_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_urls() {
        assert_eq!(
            metadata_urls("https://as.example"),
            vec![
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration",
            ]
        );
        // RFC 8414 §3.1 example: the well-known segment goes before the path.
        assert_eq!(
            metadata_urls("https://example.com/issuer1/"),
            vec![
                "https://example.com/.well-known/oauth-authorization-server/issuer1",
                "https://example.com/issuer1/.well-known/openid-configuration",
                "https://example.com/issuer1/.well-known/oauth-authorization-server",
            ]
        );
        assert_eq!(
            metadata_urls("http://127.0.0.1:8080/realms/dev")[1],
            "http://127.0.0.1:8080/realms/dev/.well-known/openid-configuration"
        );
    }

    #[test]
    fn issuer_comparison() {
        assert!(same_issuer("https://a.example", "https://a.example/"));
        assert!(!same_issuer("https://a.example", "https://b.example"));
        assert!(!same_issuer("https://a.example/x", "https://a.example"));
    }

    #[test]
    fn methods_from_cloud_or_metadata() {
        let mut d = Discovery {
            cloud_url: None,
            cli_config: None,
            issuer: "https://as.example".into(),
            client_id: "c".into(),
            scope: None,
            metadata: AuthorizationServerMetadata {
                issuer: "https://as.example".into(),
                authorization_endpoint: Some("https://as.example/authorize".into()),
                device_authorization_endpoint: Some("https://as.example/device".into()),
                grant_types_supported: vec!["authorization_code".into(), "password".into()],
                ..Default::default()
            },
            api_url: None,
            download_url: None,
        };
        assert_eq!(d.login_methods(), ["browser", "device", "password"]);
        assert!(!d.method_disabled("anonymous"));
        d.cli_config = Some(CliConfig {
            issuer: "https://as.example".into(),
            client_id: "c".into(),
            login_methods: vec!["device".into(), "anonymous".into()],
            scope: None,
            min_cli_version: None,
            download_url: None,
            api_url: None,
        });
        assert_eq!(d.login_methods(), ["device", "anonymous"]);
        assert!(d.method_disabled("browser"));
        assert!(!d.method_disabled("anonymous"));
    }

    #[test]
    fn versions() {
        use Ordering::*;
        assert_eq!(compare_versions("0.1.0", "0.2.0"), Some(Less));
        assert_eq!(compare_versions("1.10.0", "1.9.9"), Some(Greater));
        assert_eq!(compare_versions("v1.2", "1.2.0"), Some(Equal));
        assert_eq!(compare_versions("1.2.3-rc.1", "1.2.3"), Some(Equal));
        assert_eq!(compare_versions("1.2.x", "1.2.3"), None);
        assert_eq!(compare_versions("1.2.3.4", "1.2.3"), None);
    }
}
