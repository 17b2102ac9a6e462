//! Logging in: the four methods (device code, browser, email and password, anonymous) and the
//! steps they share once the token endpoint has answered.
//!
//! Every method runs discovery (or reuses one the caller already ran to offer a choice), checks
//! that the cloud offers the method, gets a token response from its flow in `flows/`, and then
//! goes through the same ending: who signed in (`/v1/me`, the ID token or userinfo), the file
//! written atomically under the lock, and the session it replaces dealt with. A replaced session
//! is revoked, except an **anonymous** one replaced by a real login: that one is claimed
//! (`POST /v1/anonymous/claim`), which moves its organizations into the account. A claim that
//! cannot be made now keeps the anonymous credentials in `anonymous-*.json` next to the
//! credentials file and is retried at the next login; nothing made anonymously is dropped
//! silently.
//!
//! Nothing is written until a login succeeds, so dropping any of these futures (Ctrl-C) leaves
//! the previous state as it was.

use crate::credentials::{self, Credentials, Identity, Mode, OrgSummary, SessionSummary};
use crate::discovery::{Discovery, Overrides, same_issuer};
use crate::error::{Error, Result};
use crate::flows::{self, device::DevicePrompt, loopback, password::Password};
use crate::http::join;
use crate::session::{self, Revocation};
use crate::store::{self, CredentialStore};
use crate::{Client, default_device_name, identity};
use latchkey_proto::{
    AccessToken, ApiError, ClaimAnonymousRequest, ClaimAnonymousResponse, Me, TokenResponse,
    methods,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Options every login method takes.
#[derive(Debug, Clone, Default)]
pub struct LoginOptions {
    /// `--auth-url`, `--client-id`, `--scope`.
    pub overrides: Overrides,
    /// The session's name (`--name`); default the host name.
    pub device_name: Option<String>,
    /// Store the credentials in a new workspace-local `.<app>/` in the current directory.
    pub local: bool,
    /// A discovery already run with the same `overrides` (for instance to offer a choice of
    /// methods); used instead of asking the server again.
    pub discovery: Option<Discovery>,
}

/// The options of [`Client::login_device`] (the same as every method's).
pub type DeviceLoginOptions = LoginOptions;

/// Options of [`Client::login_browser`].
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// How long to wait for the browser to come back (default 5 minutes).
    pub timeout: Duration,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        Self {
            timeout: loopback::DEFAULT_TIMEOUT,
        }
    }
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
    /// How the session was obtained (`anonymous` for [`Client::login_anonymous`]).
    pub mode: Mode,
    /// What happened to anonymous identities this login replaced or found waiting: each is
    /// moved into the account, found already ended, or kept for a later retry.
    pub claims: Vec<AnonymousClaim>,
}

/// The fate of an anonymous identity when a real login replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnonymousClaim {
    /// Its organizations (with everything in them) now belong to the signed-in account, and the
    /// anonymous user is gone.
    Moved {
        /// The organizations moved, with the account's role in them (`owner`).
        orgs: Vec<OrgSummary>,
    },
    /// The anonymous session had already ended (signed out, or cleaned up after being idle), so
    /// there was nothing left to move.
    AlreadyEnded,
    /// It could not be moved now; its credentials are kept in `path` (0600) and the next login
    /// (or [`Client::claim_pending_anonymous`]) tries again.
    Kept {
        /// Why it could not be moved.
        reason: String,
        /// The file holding the anonymous credentials.
        path: PathBuf,
    },
}

/// Prefix of the files keeping anonymous credentials whose claim is pending.
pub const PENDING_ANONYMOUS_PREFIX: &str = "anonymous-";

/// Where a login writes, and what it replaces.
struct Target {
    store: CredentialStore,
    local_parent: Option<PathBuf>,
    previous: Option<Credentials>,
}

impl Client {
    fn login_target(&self, opts: &LoginOptions) -> Result<Target> {
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
        Ok(Target {
            store,
            local_parent,
            previous,
        })
    }

    async fn login_discovery(&self, opts: &LoginOptions, method: &str) -> Result<Discovery> {
        let disc = match &opts.discovery {
            Some(d) => d.clone(),
            None => self.discover(&opts.overrides).await?,
        };
        if disc.method_disabled(method) {
            return Err(Error::MethodDisabled {
                method: method.to_owned(),
                enabled: disc.login_methods(),
                app: self.app.clone(),
            });
        }
        Ok(disc)
    }

    fn token_endpoint(disc: &Discovery) -> Result<String> {
        disc.metadata
            .token_endpoint
            .clone()
            .ok_or_else(|| Error::Discovery {
                issuer: disc.issuer.clone(),
                reason: "the metadata has no token_endpoint".to_owned(),
            })
    }

    /// Signs in with the device authorization grant. `show` is called once with the code and URL
    /// to display; then this polls until the user approves, denies or the code expires. Nothing is
    /// written until the login succeeds, so dropping the future (Ctrl-C) leaves no file behind.
    pub async fn login_device<F>(&self, opts: &LoginOptions, show: F) -> Result<LoginOutcome>
    where
        F: FnOnce(&DevicePrompt),
    {
        let target = self.login_target(opts)?;
        let disc = self.login_discovery(opts, methods::DEVICE).await?;
        let device_endpoint = disc
            .metadata
            .device_authorization_endpoint
            .clone()
            .ok_or_else(|| Error::DeviceFlowUnsupported {
                issuer: disc.issuer.clone(),
            })?;
        let token_endpoint = Self::token_endpoint(&disc)?;
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
        self.finish_login(target, &disc, token_endpoint, tr, Mode::Oauth, device_name)
            .await
    }

    /// Signs in in the browser: authorization code + PKCE with a loopback redirect (RFC 8252).
    /// Binds `127.0.0.1:0`, calls `show` once with the URL to open (open it and print it), and
    /// waits up to `browser.timeout` for the browser to come back to `/callback`. The browser
    /// gets a page saying how it went. Dropping the future closes the listener; nothing is
    /// written until the login succeeds.
    pub async fn login_browser<F>(
        &self,
        opts: &LoginOptions,
        browser: &BrowserOptions,
        show: F,
    ) -> Result<LoginOutcome>
    where
        F: FnOnce(&loopback::BrowserPrompt),
    {
        let target = self.login_target(opts)?;
        let disc = self.login_discovery(opts, methods::BROWSER).await?;
        let endpoint = disc
            .metadata
            .authorization_endpoint
            .clone()
            .ok_or_else(|| Error::BrowserFlowUnsupported {
                issuer: disc.issuer.clone(),
                app: self.app.clone(),
            })?;
        let token_endpoint = Self::token_endpoint(&disc)?;
        let device_name = opts.device_name.clone().unwrap_or_else(default_device_name);

        let mut server = loopback::LoopbackServer::bind(&self.app).await?;
        let verifier = loopback::PkceVerifier::generate()?;
        let state = loopback::CsrfState::generate()?;
        let redirect_uri = server.redirect_uri().to_owned();
        let url = loopback::authorization_url(&loopback::AuthorizationRequest {
            endpoint: &endpoint,
            client_id: &disc.client_id,
            redirect_uri: &redirect_uri,
            state: &state,
            code_challenge: &verifier.challenge(),
            scope: disc.scope.as_deref(),
            device_name: Some(&device_name),
        })?;
        show(&loopback::BrowserPrompt {
            url,
            redirect_uri: redirect_uri.clone(),
            timeout: browser.timeout,
        });

        let deadline = tokio::time::Instant::now() + browser.timeout;
        // A request to the callback path that carries neither a code nor an error is not an
        // answer to this login (a prefetch, a bookmark): it gets an error page and the wait
        // goes on. Any real answer ends it, whatever it says.
        let (hit, callback) = loop {
            let Some(hit) = server.next_callback(deadline).await else {
                return Err(Error::LoginTimedOut {
                    app: self.app.clone(),
                    waited_secs: browser.timeout.as_secs(),
                });
            };
            match loopback::parse_callback(&hit.query) {
                Ok(cb) => break (hit, cb),
                Err(reason) => hit.respond(false, "Not a sign-in answer", &reason).await,
            }
        };
        let failed = "Sign-in failed";
        let iss_required =
            disc.metadata.authorization_response_iss_parameter_supported == Some(true);
        let checked =
            loopback::check_callback(callback, &state, &disc.issuer, iss_required, &self.app);
        let code = match checked {
            Ok(c) => c,
            Err(e) => {
                hit.respond(false, failed, &e.to_string()).await;
                return Err(e);
            }
        };
        let exchanged = loopback::exchange(
            &self.http,
            &token_endpoint,
            &disc.client_id,
            &code,
            &redirect_uri,
            &verifier,
            &self.app,
        )
        .await;
        let tr = match exchanged {
            Ok(tr) => tr,
            Err(e) => {
                hit.respond(false, failed, &e.to_string()).await;
                return Err(e);
            }
        };
        let outcome = self
            .finish_login(target, &disc, token_endpoint, tr, Mode::Oauth, device_name)
            .await;
        match &outcome {
            Ok(o) => {
                let msg = format!("{} is signed in as {}.", self.app, o.identity.label());
                hit.respond(true, "Signed in", &msg).await;
            }
            Err(e) => hit.respond(false, failed, &e.to_string()).await,
        }
        drop(server);
        outcome
    }

    /// Signs in with an email and password typed in the terminal (RFC 6749 §4.3; latchkeyd
    /// offers it to its first-party CLI only). The password is sent once and dropped. Errors:
    /// [`Error::WrongCredentials`] (the same for an unknown email),
    /// [`Error::RateLimited`], [`Error::MethodDisabled`].
    pub async fn login_password(
        &self,
        opts: &LoginOptions,
        email: &str,
        password: Password,
    ) -> Result<LoginOutcome> {
        let target = self.login_target(opts)?;
        let disc = self.login_discovery(opts, methods::PASSWORD).await?;
        let token_endpoint = Self::token_endpoint(&disc)?;
        let device_name = opts.device_name.clone().unwrap_or_else(default_device_name);
        let tr = flows::password::request(
            &self.http,
            &flows::password::PasswordRequest {
                token_endpoint: &token_endpoint,
                client_id: &disc.client_id,
                scope: disc.scope.as_deref(),
                device_name: Some(&device_name),
                app: &self.app,
            },
            email.trim(),
            &password,
        )
        .await?;
        drop(password);
        self.finish_login(
            target,
            &disc,
            token_endpoint,
            tr,
            Mode::Password,
            device_name,
        )
        .await
    }

    /// Gets an anonymous identity (latchkey's extension grant): a real user without an email,
    /// with a personal organization. It lives in the credentials file on this machine until a
    /// real login claims it. [`Error::MethodDisabled`] when the server does not offer it.
    pub async fn login_anonymous(&self, opts: &LoginOptions) -> Result<LoginOutcome> {
        let target = self.login_target(opts)?;
        let disc = self.login_discovery(opts, methods::ANONYMOUS).await?;
        let token_endpoint = Self::token_endpoint(&disc)?;
        let device_name = opts.device_name.clone().unwrap_or_else(default_device_name);
        let tr = flows::anonymous::request(
            &self.http,
            &token_endpoint,
            &disc.client_id,
            disc.scope.as_deref(),
            Some(&device_name),
            &self.app,
        )
        .await?;
        self.finish_login(
            target,
            &disc,
            token_endpoint,
            tr,
            Mode::Anonymous,
            device_name,
        )
        .await
    }

    /// Anonymous credentials kept because their claim failed (`anonymous-*.json` beside the
    /// credentials file in use), oldest first.
    pub fn pending_anonymous(&self) -> Vec<PathBuf> {
        let path = self.paths.credentials_file();
        pending_in(path.parent().unwrap_or(Path::new(".")))
    }

    /// Retries the claim of every pending anonymous identity with the current (real) login.
    /// Claimed or ended ones are deleted; the others stay.
    pub async fn claim_pending_anonymous(&self) -> Result<Vec<AnonymousClaim>> {
        let pending = self.pending_anonymous();
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let store = self.credential_store();
        let creds = session::fresh_credentials(&self.http, &store, &self.app, None).await?;
        if creds.mode == Mode::Anonymous {
            return Ok(Vec::new());
        }
        let dir = store.path().parent().unwrap_or(Path::new(".")).to_owned();
        let mut out = Vec::new();
        for p in pending {
            match CredentialStore::new(&p, self.app.clone()).load() {
                Ok(Some(anon)) => out.push(self.claim_into(&anon, &creds, &dir, Some(&p)).await),
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "unreadable pending anonymous file"),
            }
        }
        Ok(out)
    }

    /// The ending every method shares: identity, storage, and the replaced session.
    async fn finish_login(
        &self,
        target: Target,
        disc: &Discovery,
        token_endpoint: String,
        tr: TokenResponse,
        mode: Mode,
        device_name: String,
    ) -> Result<LoginOutcome> {
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
            mode,
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
                .http
                .get(&join(api, "/v1/me"), Some(creds.access_token.secret()))
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
        if mode == Mode::Anonymous {
            creds.identity.anonymous = true;
        }
        if creds.identity.user_id.is_none()
            && let Some(c) = &id_token_claims
        {
            creds.identity = identity::from_claims(c);
        }
        if creds.identity.email.is_none()
            && mode != Mode::Anonymous
            && let Some(ui) = &creds.userinfo_endpoint
            && let Ok(r) = self.http.get(ui, Some(creds.access_token.secret())).await
            && r.is_success()
            && let Ok(v) = r.json::<serde_json::Value>()
        {
            let from_userinfo = identity::from_claims(&v);
            if from_userinfo.user_id.is_some() {
                creds.identity = from_userinfo;
            }
        }

        let Target {
            store,
            local_parent,
            previous,
        } = target;
        if let Some(parent) = &local_parent {
            store::create_local_dir(&self.app, parent)?;
        }
        {
            let _lock = store.lock().await?;
            store.save(&creds)?;
        }
        let dir = store.path().parent().unwrap_or(Path::new(".")).to_owned();

        // Anonymous identities are claimed by a real login: first any kept from an earlier
        // attempt, then the one this login replaces. Any other replaced session is revoked.
        let mut claims = Vec::new();
        if mode != Mode::Anonymous {
            for p in pending_in(&dir) {
                match CredentialStore::new(&p, self.app.clone()).load() {
                    Ok(Some(anon)) => {
                        claims.push(self.claim_into(&anon, &creds, &dir, Some(&p)).await);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(error = %e, "unreadable pending anonymous file"),
                }
            }
        }
        if let Some(old) = previous {
            if old.mode == Mode::Anonymous && mode != Mode::Anonymous {
                claims.push(self.claim_into(&old, &creds, &dir, None).await);
            } else if old.refresh_token.is_some() && old.refresh_token != creds.refresh_token {
                let r: Revocation = session::revoke(&self.http, &old).await;
                tracing::debug!(?r, "revoked the replaced session");
            }
        }
        Ok(LoginOutcome {
            identity: creds.identity,
            session: creds.session,
            issuer: creds.issuer,
            credentials_path: store.path().to_owned(),
            local: local_parent.is_some() || self.paths.is_local(),
            refreshable,
            mode,
            claims,
        })
    }

    /// Claims the anonymous identity `anon` for the account of `creds`
    /// (`POST {api}/v1/anonymous/claim` with the new bearer token and the anonymous refresh
    /// token as proof). When it cannot be done now, `anon` is kept in a pending file in `dir`
    /// (`pending`, when it already comes from one); a pending file whose identity was moved or
    /// has ended is deleted.
    async fn claim_into(
        &self,
        anon: &Credentials,
        creds: &Credentials,
        dir: &Path,
        pending: Option<&Path>,
    ) -> AnonymousClaim {
        let result = self.try_claim(anon, creds).await;
        match result {
            Ok(claim) => {
                if let Some(p) = pending {
                    let _ = std::fs::remove_file(p);
                }
                claim
            }
            Err(reason) => {
                let path = match pending {
                    Some(p) => p.to_owned(),
                    None => dir.join(pending_file_name(anon)),
                };
                if pending.is_none()
                    && let Err(e) = CredentialStore::new(&path, self.app.clone()).save(anon)
                {
                    return AnonymousClaim::Kept {
                        reason: format!("{reason}; and it could not be kept: {e}"),
                        path,
                    };
                }
                AnonymousClaim::Kept { reason, path }
            }
        }
    }

    /// One claim request. `Err` is a reason to keep the identity for later.
    async fn try_claim(
        &self,
        anon: &Credentials,
        creds: &Credentials,
    ) -> std::result::Result<AnonymousClaim, String> {
        let Some(rt) = anon.refresh_token.clone() else {
            tracing::debug!("anonymous credentials without a refresh token cannot be claimed");
            return Ok(AnonymousClaim::AlreadyEnded);
        };
        if !same_issuer(&anon.issuer, &creds.issuer) {
            return Err(format!(
                "it belongs to another server ({}), not {}",
                anon.issuer, creds.issuer
            ));
        }
        let Some(api) = &creds.api_url else {
            return Err(format!("{} has no cloud API to move it with", creds.issuer));
        };
        let url = join(api, "/v1/anonymous/claim");
        let body = ClaimAnonymousRequest { refresh_token: rt };
        let resp = self
            .http
            .post_json(&url, Some(creds.access_token.secret()), &body)
            .await
            .map_err(|e| e.to_string())?;
        if resp.is_success() {
            let moved: ClaimAnonymousResponse = resp.json().map_err(|e| e.to_string())?;
            return Ok(AnonymousClaim::Moved {
                orgs: moved.moved_orgs.iter().map(identity::org_summary).collect(),
            });
        }
        let api_err: Option<ApiError> = serde_json::from_slice(&resp.body).ok();
        match api_err {
            Some(e) if resp.status == 400 && e.code == "not_anonymous" => {
                Ok(AnonymousClaim::AlreadyEnded)
            }
            Some(e) => Err(format!("HTTP {}: {}", resp.status, e.message)),
            None => Err(format!("HTTP {} from {url}", resp.status)),
        }
    }
}

/// `anonymous-<user id>.json` (or a digest of the refresh token when the id is unknown).
fn pending_file_name(anon: &Credentials) -> String {
    let tag: String = match &anon.identity.user_id {
        Some(id) => id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
            .take(64)
            .collect(),
        None => String::new(),
    };
    let tag = if tag.is_empty() {
        use sha2::Digest;
        let rt = anon
            .refresh_token
            .as_ref()
            .map(|r| r.secret())
            .unwrap_or("");
        sha2::Sha256::digest(rt.as_bytes())
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect()
    } else {
        tag
    };
    format!("{PENDING_ANONYMOUS_PREFIX}{tag}.json")
}

/// The pending anonymous files in `dir`, oldest first.
fn pending_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with(PENDING_ANONYMOUS_PREFIX) && n.ends_with(".json")
        })
        .map(|e| {
            let t = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (t, e.path())
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::credentials::tests::sample;

    #[test]
    fn pending_files_are_named_and_found() {
        let mut anon = sample();
        anon.mode = Mode::Anonymous;
        anon.identity.user_id = Some("usr_ab/c..d".into());
        assert_eq!(pending_file_name(&anon), "anonymous-usr_abcd.json");
        anon.identity.user_id = None;
        let n = pending_file_name(&anon);
        assert!(n.starts_with("anonymous-") && n.len() == "anonymous-.json".len() + 12);

        let t = tempfile::tempdir().unwrap();
        assert!(pending_in(t.path()).is_empty());
        std::fs::write(t.path().join("anonymous-x.json"), b"{}").unwrap();
        std::fs::write(t.path().join("credentials.json"), b"{}").unwrap();
        std::fs::write(t.path().join(".anonymous-x.json.1.tmp"), b"{}").unwrap();
        assert_eq!(
            pending_in(t.path()),
            vec![t.path().join("anonymous-x.json")]
        );
    }
}
