//! Sign-in for Rust command-line tools.
//!
//! `latchkey-client` gives a CLI `login`, `whoami`, `logout` and `token` against latchkeyd or any
//! standards-compliant OAuth 2.0 authorization server: discovery from one cloud URL, every login
//! method (the device authorization grant of RFC 8628, browser sign-in with a loopback redirect
//! and PKCE per RFC 8252, email and password, anonymous identities that a later login claims),
//! credentials stored privately and atomically, and a silent refresh that is safe when many
//! processes run at once.
//!
//! ```no_run
//! # async fn run() -> Result<(), latchkey_client::Error> {
//! use latchkey_client::{Client, DeviceLoginOptions};
//!
//! let client = Client::from_config("acme", "1.4.0")?; // reads ~/.config/acme/config.yaml
//! let outcome = client
//!     .login_device(&DeviceLoginOptions::default(), |prompt| {
//!         eprintln!("Open {} and enter {}", prompt.verification_uri, prompt.user_code);
//!     })
//!     .await?;
//! eprintln!("Signed in as {}", outcome.identity.label());
//! let token = client.access_token().await?; // cached, refreshed when needed
//! # let _ = token; Ok(()) }
//! ```
//!
//! See `docs/client.md` and `examples/embed.rs` for a complete embedding CLI.

pub mod api_keys;
pub mod config;
pub mod credentials;
pub mod discovery;
pub mod error;
pub mod flows;
mod http;
mod identity;
mod login;
pub mod orgs;
pub mod session;
mod sessions;
pub mod store;

pub use credentials::{Credentials, Identity, Mode, OrgSummary, SessionSummary};
pub use discovery::{Discovery, Overrides};
pub use error::{Error, Result};
pub use flows::device::DevicePrompt;
pub use flows::loopback::BrowserPrompt;
pub use flows::password::Password;
pub use http::CLIENT_VERSION_HEADER;
pub use latchkey_proto::{AccessToken, ConfigFile, Me};
pub use latchkey_proto::{SessionInfo, SessionList};
pub use login::{
    AnonymousClaim, BrowserOptions, DeviceLoginOptions, LoginOptions, LoginOutcome,
    PENDING_ANONYMOUS_PREFIX,
};
pub use session::Revocation;
pub use store::{CredentialStore, Paths};

pub use api_keys::{ApiKey, ApiKeyFormatError};
pub use latchkey_proto::{
    ApiKeyInfo, CreateApiKeyRequest, CreateApiKeyResponse, OrgList, OrgMembership,
};
pub use orgs::OrgSwitch;

use http::{Http, Response, join};
use serde::de::DeserializeOwned;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Configures a [`Client`]: the embedding app's name and version, and optional overrides of the
/// directories and the cloud URL.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    app: String,
    version: String,
    config_dir: Option<PathBuf>,
    current_dir: Option<PathBuf>,
    cloud_url: Option<String>,
    default_client_id: String,
    timeout: Duration,
    use_env: bool,
}

impl ClientBuilder {
    /// Uses this config directory instead of resolving `$<APP>_CONFIG_DIR` / XDG / `~/.config`.
    pub fn config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config_dir = Some(dir.into());
        self
    }

    /// Looks for a workspace-local `.<app>/` from this directory instead of the process's.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// Uses this cloud URL instead of `cloud.url` from `config.yaml`.
    pub fn cloud_url(mut self, url: impl Into<String>) -> Self {
        self.cloud_url = Some(url.into());
        self
    }

    /// The client id used when neither flags, config nor the cloud name one (default
    /// `latchkey-cli`).
    pub fn default_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.default_client_id = client_id.into();
        self
    }

    /// Timeout of each HTTP request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Ignores the process environment (`$<APP>_TOKEN`, `$<APP>_API_KEY`, `$<APP>_CONFIG_DIR`,
    /// XDG); with it, set [`ClientBuilder::config_dir`].
    pub fn ignore_environment(mut self) -> Self {
        self.use_env = false;
        self
    }

    /// Resolves the directories and reads `config.yaml`. No network.
    pub fn build(self) -> Result<Client> {
        let use_env = self.use_env;
        let env = move |k: &str| -> Option<OsString> {
            if use_env {
                std::env::var_os(k).filter(|v| !v.is_empty())
            } else {
                None
            }
        };
        let config_dir = match self.config_dir {
            Some(d) => d,
            None => store::resolve_config_dir(&self.app, &env)?,
        };
        let cwd = match self.current_dir {
            Some(d) => Some(d),
            None => std::env::current_dir().ok(),
        };
        let local_dir = cwd
            .as_deref()
            .and_then(|d| store::find_local_dir(&self.app, d));
        let paths = Paths {
            config_dir,
            local_dir,
        };
        let config = config::load(&paths.config_file(), &self.app)?;
        let token_var = store::env_var_name(&self.app, "TOKEN");
        let env_token = env(&token_var)
            .map(|v| AccessToken::new(v.to_string_lossy().trim().to_owned()))
            .map(|t| (token_var, t));
        // Precedence: <APP>_TOKEN, then <APP>_API_KEY, then cloud.api_key, then the stored login.
        let key_var = store::env_var_name(&self.app, "API_KEY");
        let api_key = match env(&key_var) {
            Some(v) => Some((key_var, v.to_string_lossy().into_owned())),
            None => config
                .cloud
                .api_key
                .clone()
                .map(|k| ("cloud.api_key".to_owned(), k)),
        }
        .map(|(source, key)| api_keys::KeyAuth::new(source, ApiKey::new(key)));
        // <APP>_CLOUD_URL stands in for cloud.url, so CI needs no config file at all.
        let url_var = store::env_var_name(&self.app, "CLOUD_URL");
        let env_cloud_url = match env(&url_var) {
            Some(v) => {
                let v = v.to_string_lossy().trim().to_owned();
                config::validate_url(&url_var, &v)?;
                Some(v)
            }
            None => None,
        };
        let cloud_url = self
            .cloud_url
            .or(env_cloud_url)
            .or_else(|| config.cloud.url.clone());
        Ok(Client {
            http: Http::new(&self.app, &self.version, self.timeout),
            app: self.app,
            version: self.version,
            paths,
            config,
            cloud_url,
            env_token,
            api_key,
            default_client_id: self.default_client_id,
            cwd,
        })
    }
}

/// Where the credentials in use come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// A token passed through the environment (`LATCHKEY_TOKEN`).
    Environment {
        /// The variable's name.
        var: String,
    },
    /// A credentials file.
    File {
        /// The file.
        path: PathBuf,
        /// Whether it is a workspace-local file (`.latchkey/` in a parent directory).
        local: bool,
    },
    /// An API key (`LATCHKEY_API_KEY` or `cloud.api_key`), exchanged for an access token that
    /// is kept in memory only.
    ApiKey {
        /// `LATCHKEY_API_KEY` or `cloud.api_key`.
        source_name: String,
        /// The key's public id, when the key is well-formed enough to have one.
        key_id: Option<String>,
    },
}

/// The result of [`Client::whoami`].
#[derive(Debug, Clone)]
pub struct WhoAmI {
    /// Who is signed in.
    pub identity: Identity,
    /// The session.
    pub session: SessionSummary,
    /// latchkey's full `/v1/me` answer, when the server has that endpoint.
    pub me: Option<Me>,
    /// Whether the server confirmed the token just now (`/v1/me` or userinfo); `false` when only
    /// the stored identity could be shown.
    pub validated: bool,
    /// When the access token expires (unix seconds), if known.
    pub expires_at: Option<i64>,
    /// The issuer, when known.
    pub issuer: Option<String>,
    /// Where the credentials come from.
    pub source: CredentialSource,
}

/// The result of [`Client::logout`].
#[derive(Debug, Clone)]
pub struct LogoutOutcome {
    /// Whether there was a credentials file.
    pub had_credentials: bool,
    /// Who was signed in, when the file could be read.
    pub identity: Option<Identity>,
    /// What happened at the server.
    pub revocation: Revocation,
    /// The file that was deleted (or would have been).
    pub path: PathBuf,
}

/// A latchkey client: everything an embedding CLI needs for its sign-in commands.
#[derive(Debug)]
pub struct Client {
    app: String,
    version: String,
    paths: Paths,
    config: ConfigFile,
    cloud_url: Option<String>,
    env_token: Option<(String, AccessToken)>,
    api_key: Option<api_keys::KeyAuth>,
    default_client_id: String,
    cwd: Option<PathBuf>,
    http: Http,
}

impl Client {
    /// A builder for the CLI named `app` (used for directories, environment variables and
    /// messages) at `version` (sent as `Latchkey-Client-Version`, compared with the cloud's
    /// minimum).
    pub fn builder(app: impl Into<String>, version: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            app: app.into(),
            version: version.into(),
            config_dir: None,
            current_dir: None,
            cloud_url: None,
            default_client_id: latchkey_proto::CLI_CLIENT_ID.to_owned(),
            timeout: Duration::from_secs(30),
            use_env: true,
        }
    }

    /// A client with the standard locations and the user's `config.yaml`.
    pub fn from_config(app: impl Into<String>, version: impl Into<String>) -> Result<Self> {
        Self::builder(app, version).build()
    }

    /// The embedding CLI's name.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The embedding CLI's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The resolved file locations.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The loaded `config.yaml`.
    pub fn config(&self) -> &ConfigFile {
        &self.config
    }

    /// The cloud URL in effect (builder, else `cloud.url`).
    pub fn cloud_url(&self) -> Option<&str> {
        self.cloud_url.as_deref()
    }

    /// The store of the credentials file in use (workspace-local if any, else global).
    pub fn credential_store(&self) -> CredentialStore {
        CredentialStore::new(self.paths.credentials_file(), self.app.clone())
    }

    /// Where credentials come from, in order of precedence: the environment token, an API key
    /// (environment, then `cloud.api_key`), or the credentials file in use.
    pub fn source(&self) -> CredentialSource {
        match (&self.env_token, &self.api_key) {
            (Some((var, _)), _) => CredentialSource::Environment { var: var.clone() },
            (None, Some(k)) => CredentialSource::ApiKey {
                source_name: k.source_name.clone(),
                key_id: k.key.public_id().map(str::to_owned),
            },
            (None, None) => CredentialSource::File {
                path: self.paths.credentials_file(),
                local: self.paths.is_local(),
            },
        }
    }

    /// The stored credentials, without touching the network; `Ok(None)` when there are none.
    pub fn credentials(&self) -> Result<Option<Credentials>> {
        self.credential_store().load()
    }

    /// Runs discovery with `overrides` on top of `config.yaml`.
    pub async fn discover(&self, overrides: &Overrides) -> Result<Discovery> {
        discovery::discover(
            &self.http,
            discovery::DiscoverInput {
                app: &self.app,
                version: &self.version,
                cloud_url: self.cloud_url.as_deref(),
                config: &self.config.auth,
                overrides,
                default_client_id: &self.default_client_id,
            },
        )
        .await
    }

    /// A valid access token: `$<APP>_TOKEN` if set; else, with an API key, one exchanged for the
    /// key (cached in memory for the process; see [`api_keys`]); else the stored one while it is
    /// valid for more than a minute (no network), else a refreshed one (under the lock; see
    /// [`session`]).
    pub async fn access_token(&self) -> Result<AccessToken> {
        if let Some((_, t)) = &self.env_token {
            return Ok(t.clone());
        }
        if let Some(k) = &self.api_key {
            return Ok(self.api_key_token(k, None).await?.access_token);
        }
        let creds =
            session::fresh_credentials(&self.http, &self.credential_store(), &self.app, None)
                .await?;
        Ok(creds.access_token)
    }

    /// `GET {api}{path}` with the session's bearer token, refreshing once on 401. Statuses other
    /// than 2xx become errors (426 → [`Error::UpgradeRequired`], others → [`Error::Api`]).
    pub async fn api_get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let (api, download_url) = self.api_base().await?;
        let url = join(&api, path);
        let resp = self.authorized_get(&url).await?;
        self.check_api_response(path, &resp, download_url).await?;
        resp.json()
    }

    /// Validates the session with the server and says who is signed in.
    pub async fn whoami(&self) -> Result<WhoAmI> {
        let source = self.source();
        if self.env_token.is_some() || self.api_key.is_some() {
            let me: Me = self.api_get("/v1/me").await?;
            let (identity, session) = identity::from_me(&me);
            return Ok(WhoAmI {
                identity,
                session,
                expires_at: Some(me.token_expires_at),
                me: Some(me),
                validated: true,
                issuer: None,
                source,
            });
        }
        let creds = self.credentials()?.ok_or_else(|| Error::NotSignedIn {
            app: self.app.clone(),
        })?;
        if creds.api_url.is_some() {
            let me: Me = self.api_get("/v1/me").await?;
            let (identity, session) = identity::from_me(&me);
            return Ok(WhoAmI {
                identity,
                session,
                expires_at: Some(me.token_expires_at),
                me: Some(me),
                validated: true,
                issuer: Some(creds.issuer),
                source,
            });
        }
        if let Some(ui) = &creds.userinfo_endpoint {
            let resp = self.authorized_get(ui).await?;
            self.check_api_response("userinfo", &resp, None).await?;
            let claims: serde_json::Value = resp.json()?;
            let fresh = self.credentials()?.unwrap_or(creds);
            let mut identity = identity::from_claims(&claims);
            identity.org = fresh.identity.org.clone();
            return Ok(WhoAmI {
                identity,
                session: fresh.session,
                me: None,
                validated: true,
                expires_at: fresh.expires_at,
                issuer: Some(fresh.issuer),
                source,
            });
        }
        // No identity endpoint: make sure the session still refreshes, show what is on file.
        let store = self.credential_store();
        let fresh = session::fresh_credentials(&self.http, &store, &self.app, None).await?;
        Ok(WhoAmI {
            identity: fresh.identity,
            session: fresh.session,
            me: None,
            validated: false,
            expires_at: fresh.expires_at,
            issuer: Some(fresh.issuer),
            source,
        })
    }

    /// Revokes the session at the server (best effort) and deletes the credentials file in use.
    /// A corrupt file is deleted too (this is an explicit request to forget it).
    pub async fn logout(&self) -> Result<LogoutOutcome> {
        let store = self.credential_store();
        let path = store.path().to_owned();
        if !store.exists() {
            return Ok(LogoutOutcome {
                had_credentials: false,
                identity: None,
                revocation: Revocation::NotAttempted,
                path,
            });
        }
        let _lock = store.lock().await?;
        let (identity, revocation) = match store.load() {
            Ok(Some(c)) => (
                Some(c.identity.clone()),
                session::revoke(&self.http, &c).await,
            ),
            Ok(None) => (None, Revocation::NotAttempted),
            Err(Error::CorruptCredentials { .. }) => (None, Revocation::NotAttempted),
            Err(e) => return Err(e),
        };
        let had_credentials = store.delete()?;
        Ok(LogoutOutcome {
            had_credentials,
            identity,
            revocation,
            path,
        })
    }

    /// The cloud API base and download URL: from the credentials file, else discovery.
    async fn api_base(&self) -> Result<(String, Option<String>)> {
        if self.env_token.is_none()
            && let Some(k) = &self.api_key
        {
            let t = self.api_key_token(k, None).await?;
            return Ok((t.api_url, t.download_url));
        }
        if self.env_token.is_none()
            && let Some(c) = self.credentials()?
            && let Some(api) = c.api_url
        {
            return Ok((api, c.download_url));
        }
        let cloud = self
            .cloud_url
            .clone()
            .ok_or_else(|| Error::CloudUrlNotSet {
                app: self.app.clone(),
            })?;
        match discovery::fetch_cli_config(&self.http, &cloud, &self.app, &self.version).await {
            Ok(Some(c)) => Ok((c.api_url.unwrap_or(cloud), c.download_url)),
            _ => Ok((cloud, None)),
        }
    }

    async fn get_with(&self, url: &str, token: &AccessToken) -> Result<Response> {
        self.http.get(url, Some(token.secret())).await
    }

    /// GET with the current token; on 401 refresh once (file credentials) or exchange the API
    /// key again, and retry.
    async fn authorized_get(&self, url: &str) -> Result<Response> {
        let token = self.access_token().await?;
        let resp = self.get_with(url, &token).await?;
        if resp.status != 401 || self.env_token.is_some() {
            return Ok(resp);
        }
        if let Some(k) = &self.api_key {
            tracing::debug!("401 from {url}; exchanging the API key again");
            let fresh = self.api_key_token(k, Some(&token)).await?;
            return self.get_with(url, &fresh.access_token).await;
        }
        tracing::debug!("401 from {url}; refreshing once");
        let creds = session::fresh_credentials(
            &self.http,
            &self.credential_store(),
            &self.app,
            Some(&token),
        )
        .await?;
        self.get_with(url, &creds.access_token).await
    }

    async fn check_api_response(
        &self,
        endpoint: &str,
        resp: &Response,
        download_url: Option<String>,
    ) -> Result<()> {
        if resp.is_success() {
            return Ok(());
        }
        let api_err: Option<latchkey_proto::ApiError> = serde_json::from_slice(&resp.body).ok();
        if resp.status == 426 {
            let download_url = match download_url {
                Some(u) => Some(u),
                None => match &self.cloud_url {
                    Some(c) => discovery::fetch_cli_config(&self.http, c, &self.app, &self.version)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|c| c.download_url),
                    None => None,
                },
            };
            return Err(Error::UpgradeRequired {
                app: self.app.clone(),
                current: self.version.clone(),
                required: None,
                message: api_err.map(|e| e.message),
                download_url,
            });
        }
        Err(Error::Api {
            endpoint: endpoint.to_owned(),
            status: resp.status,
            code: api_err.as_ref().map(|e| e.code.clone()),
            message: api_err.map(|e| e.message),
            app: self.app.clone(),
        })
    }
}

/// The default session name: this machine's host name.
pub fn default_device_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Opens `url` in the user's browser without waiting for it. A failure is for the caller to
/// mention, never to treat as fatal: the URL is always printed too.
pub fn open_browser(url: &str) -> std::io::Result<()> {
    open::that_detached(url)
}

/// Whether `path` is inside a workspace-local directory of `app`.
pub fn is_local_path(app: &str, path: &Path) -> bool {
    path.parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == std::ffi::OsStr::new(&format!(".{app}")))
}
