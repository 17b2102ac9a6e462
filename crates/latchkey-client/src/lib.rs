//! Sign-in for Rust command-line tools.
//!
//! `latchkey-client` gives a CLI `login`, `whoami`, `logout` and `token` against latchkeyd or any
//! standards-compliant OAuth 2.0 authorization server: discovery from one cloud URL, the device
//! authorization grant (RFC 8628), credentials stored privately and atomically, and a silent
//! refresh that is safe when many processes run at once.
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

pub mod config;
pub mod credentials;
pub mod discovery;
pub mod error;
pub mod flows;
mod http;
mod identity;
pub mod session;
pub mod store;

pub use credentials::{Credentials, Identity, Mode, OrgSummary, SessionSummary};
pub use discovery::{Discovery, Overrides};
pub use error::{Error, Result};
pub use flows::device::DevicePrompt;
pub use http::CLIENT_VERSION_HEADER;
pub use latchkey_proto::{AccessToken, ConfigFile, Me};
pub use session::Revocation;
pub use store::{CredentialStore, Paths};

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
        let key_var = store::env_var_name(&self.app, "API_KEY");
        let api_key_source = if env(&key_var).is_some() {
            Some(key_var)
        } else if config.cloud.api_key.is_some() {
            Some("cloud.api_key".to_owned())
        } else {
            None
        };
        let cloud_url = self.cloud_url.or_else(|| config.cloud.url.clone());
        Ok(Client {
            http: Http::new(&self.app, &self.version, self.timeout),
            app: self.app,
            version: self.version,
            paths,
            config,
            cloud_url,
            env_token,
            api_key_source,
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
}

/// Options of [`Client::login_device`].
#[derive(Debug, Clone, Default)]
pub struct DeviceLoginOptions {
    /// `--auth-url`, `--client-id`, `--scope`.
    pub overrides: Overrides,
    /// The session's name (`--name`); default the host name.
    pub device_name: Option<String>,
    /// Store the credentials in a new workspace-local `.<app>/` in the current directory.
    pub local: bool,
}

/// The result of a successful login.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    /// Who signed in (as far as the server tells).
    pub identity: Identity,
    /// The session created.
    pub session: SessionSummary,
    /// The issuer.
    pub issuer: String,
    /// Where the credentials were written.
    pub credentials_path: PathBuf,
    /// Whether that is a workspace-local file.
    pub local: bool,
    /// Whether the server issued a refresh token (without one, the login lasts as long as the
    /// access token).
    pub refreshable: bool,
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
    api_key_source: Option<String>,
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

    /// Where credentials come from: the environment token, or the file in use.
    pub fn source(&self) -> CredentialSource {
        match &self.env_token {
            Some((var, _)) => CredentialSource::Environment { var: var.clone() },
            None => CredentialSource::File {
                path: self.paths.credentials_file(),
                local: self.paths.is_local(),
            },
        }
    }

    /// The stored credentials, without touching the network; `Ok(None)` when there are none.
    pub fn credentials(&self) -> Result<Option<Credentials>> {
        self.credential_store().load()
    }

    fn api_key_check(&self) -> Result<()> {
        match &self.api_key_source {
            Some(src) if self.env_token.is_none() => Err(Error::ApiKeyUnsupported {
                source_name: src.clone(),
                app: self.app.clone(),
            }),
            _ => Ok(()),
        }
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

    /// Signs in with the device authorization grant. `show` is called once with the code and URL
    /// to display; then this polls until the user approves, denies or the code expires. Nothing is
    /// written until the login succeeds, so dropping the future (Ctrl-C) leaves no file behind.
    pub async fn login_device<F>(&self, opts: &DeviceLoginOptions, show: F) -> Result<LoginOutcome>
    where
        F: FnOnce(&DevicePrompt),
    {
        let (store, local_parent) = if opts.local {
            let cwd = self.cwd.clone().unwrap_or_else(|| PathBuf::from("."));
            let path = cwd
                .join(format!(".{}", self.app))
                .join(store::CREDENTIALS_FILE);
            (CredentialStore::new(path, self.app.clone()), Some(cwd))
        } else {
            (self.credential_store(), None)
        };
        // A corrupt file is never overwritten silently: this fails before anything else.
        let previous = store.load()?;

        let disc = self.discover(&opts.overrides).await?;
        let device_endpoint = disc
            .metadata
            .device_authorization_endpoint
            .clone()
            .ok_or_else(|| Error::DeviceFlowUnsupported {
                issuer: disc.issuer.clone(),
            })?;
        let token_endpoint =
            disc.metadata
                .token_endpoint
                .clone()
                .ok_or_else(|| Error::Discovery {
                    issuer: disc.issuer.clone(),
                    reason: "the metadata has no token_endpoint".to_owned(),
                })?;
        let device_name = opts.device_name.clone().unwrap_or_else(default_device_name);

        let auth = flows::device::start(
            &self.http,
            &device_endpoint,
            &disc.client_id,
            disc.scope.as_deref(),
            Some(&device_name),
        )
        .await?;
        show(&DevicePrompt::from(&auth));
        let tr = flows::device::poll(
            &self.http,
            &token_endpoint,
            &disc.client_id,
            &auth,
            &self.app,
        )
        .await?;
        if !tr.token_type.eq_ignore_ascii_case("bearer") {
            return Err(Error::Protocol {
                url: token_endpoint,
                reason: format!(
                    "token type `{}` is not supported (only Bearer)",
                    tr.token_type
                ),
            });
        }

        let now = session::now();
        let id_token_claims = tr
            .id_token
            .as_ref()
            .and_then(|t| identity::unverified_jwt_claims(t.secret()));
        let mut creds = Credentials {
            version: credentials::CREDENTIALS_VERSION,
            mode: Mode::Oauth,
            issuer: disc.issuer.clone(),
            client_id: disc.client_id.clone(),
            token_endpoint,
            revocation_endpoint: disc.metadata.revocation_endpoint.clone(),
            userinfo_endpoint: disc.metadata.userinfo_endpoint.clone(),
            cloud_url: disc.cloud_url.clone(),
            api_url: disc.api_url.clone(),
            download_url: disc.download_url.clone(),
            token_type: String::new(),
            access_token: AccessToken::new(String::new()),
            refresh_token: None,
            expires_at: None,
            scope: disc.scope.clone(),
            identity: Identity::default(),
            session: SessionSummary {
                id: None,
                name: Some(device_name),
            },
            created_at: now,
            refreshed_at: None,
        };
        session::apply_token_response(&mut creds, tr, now);
        let refreshable = creds.refresh_token.is_some();

        // Who signed in: /v1/me when the cloud has it, else ID token claims, else userinfo.
        if let Some(api) = &creds.api_url {
            match self
                .get_with(&join(api, "/v1/me"), &creds.access_token)
                .await
            {
                Ok(r) if r.is_success() => {
                    if let Ok(me) = r.json::<Me>() {
                        let (id, sess) = identity::from_me(&me);
                        creds.identity = id;
                        creds.session.id = sess.id;
                        if sess.name.is_some() {
                            creds.session.name = sess.name;
                        }
                    }
                }
                Ok(r) => tracing::debug!(status = r.status, "/v1/me after login failed"),
                Err(e) => tracing::debug!(error = %e, "/v1/me after login failed"),
            }
        }
        if creds.identity.user_id.is_none()
            && let Some(c) = &id_token_claims
        {
            creds.identity = identity::from_claims(c);
        }
        if creds.identity.email.is_none()
            && let Some(ui) = &creds.userinfo_endpoint
            && let Ok(r) = self.get_with(ui, &creds.access_token).await
            && r.is_success()
            && let Ok(v) = r.json::<serde_json::Value>()
        {
            let from_userinfo = identity::from_claims(&v);
            if from_userinfo.user_id.is_some() {
                creds.identity = from_userinfo;
            }
        }

        if let Some(parent) = &local_parent {
            store::create_local_dir(&self.app, parent)?;
        }
        {
            let _lock = store.lock().await?;
            store.save(&creds)?;
        }
        // The session this login replaces is ended at the server (best effort).
        if let Some(old) = previous
            && old.refresh_token.is_some()
            && old.refresh_token != creds.refresh_token
        {
            let r = session::revoke(&self.http, &old).await;
            tracing::debug!(?r, "revoked the replaced session");
        }
        Ok(LoginOutcome {
            identity: creds.identity,
            session: creds.session,
            issuer: creds.issuer,
            credentials_path: store.path().to_owned(),
            local: local_parent.is_some() || self.paths.is_local(),
            refreshable,
        })
    }

    /// A valid access token: `$<APP>_TOKEN` if set, else the cached one while it is valid for more
    /// than a minute (no network), else a refreshed one (under the lock; see [`session`]).
    pub async fn access_token(&self) -> Result<AccessToken> {
        if let Some((_, t)) = &self.env_token {
            return Ok(t.clone());
        }
        self.api_key_check()?;
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
        if self.env_token.is_some() {
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
        self.api_key_check()?;
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

    /// GET with the current token; on 401 refresh once (file credentials only) and retry.
    async fn authorized_get(&self, url: &str) -> Result<Response> {
        let token = self.access_token().await?;
        let resp = self.get_with(url, &token).await?;
        if resp.status != 401 || self.env_token.is_some() {
            return Ok(resp);
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
