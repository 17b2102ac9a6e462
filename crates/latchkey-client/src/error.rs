//! The one error type of `latchkey-client`.
//!
//! Every message says what happened in words a user understands; [`Error::hint`] says what to do
//! next, naming the embedding CLI's own commands. No variant ever carries a token, code, password
//! or key, so printing an error (or its `Debug`) cannot leak a secret.

use latchkey_proto::ErrorCode;
use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while signing in, storing credentials or calling the cloud.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No credentials on file (and no token in the environment).
    #[error("Not signed in.")]
    NotSignedIn {
        /// Name of the embedding CLI, for the hint.
        app: String,
    },

    /// The refresh token was rejected: the session was revoked or expired.
    #[error("Session expired. Run `{app} login` again.")]
    SessionExpired {
        /// Name of the embedding CLI.
        app: String,
    },

    /// Sign-in needs a cloud URL (or an explicit authorization server) and none is configured.
    #[error("cloud.url is not set")]
    CloudUrlNotSet {
        /// Name of the embedding CLI, for the fix command.
        app: String,
    },

    /// The credentials file exists but cannot be used. It is left untouched.
    #[error("the credentials file {} cannot be used: {reason}", path.display())]
    CorruptCredentials {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// Name of the embedding CLI.
        app: String,
    },

    /// `config.yaml` exists but is not valid.
    #[error("the config file {} is not valid: {reason}", path.display())]
    InvalidConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// Name of the embedding CLI.
        app: String,
    },

    /// A config value is not acceptable (e.g. a URL that is not http or https).
    #[error("invalid value for {key}: {reason}")]
    InvalidValue {
        /// The dotted key or flag.
        key: String,
        /// What is wrong.
        reason: String,
    },

    /// A file system operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was attempted ("read", "write", "lock", ...).
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// Another process held the credentials lock for too long.
    #[error("timed out waiting for the lock on {}", path.display())]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
    },

    /// The home directory (and so the config directory) could not be determined.
    #[error(
        "cannot find the config directory: neither ${env_var}, $XDG_CONFIG_HOME nor $HOME is set"
    )]
    NoConfigDir {
        /// The app's config-dir environment variable, e.g. `LATCHKEY_CONFIG_DIR`.
        env_var: String,
    },

    /// A server could not be reached (DNS, connection, TLS, timeout).
    #[error("could not reach {url}: {reason}")]
    Network {
        /// The URL (never contains a secret: secrets travel in bodies and headers).
        url: String,
        /// What failed.
        reason: String,
    },

    /// A server answered something this client cannot use.
    #[error("unexpected answer from {url}: {reason}")]
    Protocol {
        /// The URL.
        url: String,
        /// What was wrong with the answer.
        reason: String,
    },

    /// Discovery could not find the authorization server metadata.
    #[error("could not discover the authorization server for {issuer}: {reason}")]
    Discovery {
        /// The issuer that was looked up.
        issuer: String,
        /// Why it failed.
        reason: String,
    },

    /// The metadata names another issuer than the one asked for (RFC 8414 §3.3).
    #[error("the metadata of {expected} claims to be issued by {found}; refusing to use it")]
    IssuerMismatch {
        /// The issuer the client expected.
        expected: String,
        /// The issuer the document states.
        found: String,
    },

    /// The authorization server does not offer the device authorization grant.
    #[error("the authorization server {issuer} does not support device login (RFC 8628)")]
    DeviceFlowUnsupported {
        /// The issuer.
        issuer: String,
    },

    /// The server needs a newer version of this CLI (426, or `min_cli_version` in discovery).
    #[error("{app} {current} is too old for this cloud{}", required.as_ref().map(|r| format!("; it needs {r} or newer")).unwrap_or_default())]
    UpgradeRequired {
        /// Name of the embedding CLI.
        app: String,
        /// This version.
        current: String,
        /// The minimum version, when known.
        required: Option<String>,
        /// The server's message, when it sent one.
        message: Option<String>,
        /// Where to download a newer version, when known.
        download_url: Option<String>,
    },

    /// The user denied the sign-in request in the browser.
    #[error("the sign-in request was denied")]
    AccessDenied,

    /// The device code expired before the user approved it.
    #[error("the code expired before the sign-in was approved")]
    CodeExpired {
        /// Name of the embedding CLI.
        app: String,
    },

    /// The authorization server refused a request with an OAuth error (RFC 6749 §5.2).
    #[error("the authorization server refused the request: {code}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    OAuth {
        /// The error code.
        code: ErrorCode,
        /// The server's description.
        description: Option<String>,
    },

    /// A cloud API call failed with a non-success status.
    #[error("Failed to fetch {endpoint} ({status}){}", message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Api {
        /// The path that was called, e.g. `/v1/me`.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The stable error code of the cloud API, when present.
        code: Option<String>,
        /// The server's message, when present.
        message: Option<String>,
        /// Name of the embedding CLI.
        app: String,
    },

    /// The browser sign-in did not come back to the loopback listener in time.
    #[error("Login timed out")]
    LoginTimedOut {
        /// Name of the embedding CLI.
        app: String,
        /// How long the CLI waited, in seconds.
        waited_secs: u64,
    },

    /// The `state` that came back to the loopback callback is not the one this login sent
    /// (RFC 6749 §10.12): a stale tab or a forged request.
    #[error("State mismatch — aborting to prevent CSRF")]
    StateMismatch {
        /// Name of the embedding CLI.
        app: String,
    },

    /// The authorization response names another issuer than the one the login started with
    /// (RFC 9207 §2.4): a mix-up attack or a misconfiguration.
    #[error("the sign-in answer claims to come from {found}, not {expected}; aborting")]
    ResponseIssuerMismatch {
        /// The issuer the login started with.
        expected: String,
        /// What the `iss` parameter said (`(none)` when it was missing but required).
        found: String,
    },

    /// The authorization server has no authorization endpoint, so browser sign-in cannot work.
    #[error("the authorization server {issuer} does not support browser sign-in")]
    BrowserFlowUnsupported {
        /// The issuer.
        issuer: String,
        /// Name of the embedding CLI.
        app: String,
    },

    /// The local callback server for browser sign-in could not be started.
    #[error("could not start the local callback server for browser sign-in: {reason}")]
    Loopback {
        /// What failed.
        reason: String,
        /// Name of the embedding CLI.
        app: String,
    },

    /// The server has this login method switched off (`unsupported_grant_type`, or the cloud's
    /// `login_methods` does not list it).
    #[error("{} sign-in is disabled on this server", method_label(method))]
    MethodDisabled {
        /// The method: `browser`, `device`, `password` or `anonymous`.
        method: String,
        /// The methods the server does offer, when known.
        enabled: Vec<String>,
        /// Name of the embedding CLI.
        app: String,
    },

    /// The password grant was refused: the email is unknown or the password is wrong (the
    /// server does not say which).
    #[error("wrong email or password")]
    WrongCredentials {
        /// Name of the embedding CLI.
        app: String,
    },

    /// The server refused this way of signing in for this account and named a page to go on
    /// with (`invalid_grant` with an `error_uri`): for example, the account's organization
    /// requires single sign-on.
    #[error("{description}")]
    SignInRefused {
        /// The server's explanation.
        description: String,
        /// The page the server points to.
        uri: String,
        /// Name of the embedding CLI.
        app: String,
    },

    /// The server is rate-limiting sign-in attempts (429 or `temporarily_unavailable`).
    #[error("too many sign-in attempts{}", retry_after.map(|s| format!("; try again in {}", wait_text(s))).unwrap_or_default())]
    RateLimited {
        /// Seconds to wait, from `Retry-After`.
        retry_after: Option<u64>,
        /// The server's description.
        description: Option<String>,
    },

    /// `DELETE /v1/sessions/{id}` found no such session of the signed-in user.
    #[error("no session with id {id}")]
    SessionNotFound {
        /// The id that was given.
        id: String,
        /// Name of the embedding CLI.
        app: String,
    },

    /// The configured API key is malformed: caught locally, before anything is sent.
    #[error("the API key in {source_name} cannot be used: {problem}")]
    InvalidApiKey {
        /// Where the key came from (`LATCHKEY_API_KEY` or `cloud.api_key`).
        source_name: String,
        /// What is wrong with it (never the key itself).
        problem: crate::api_keys::ApiKeyFormatError,
        /// Name of the embedding CLI.
        app: String,
    },

    /// The server refused the API key: revoked, expired, unknown, or its creator left the org.
    #[error("the API key in {source_name} was refused: {}", reason.as_deref().unwrap_or("the server does not accept it"))]
    ApiKeyRejected {
        /// Where the key came from (`LATCHKEY_API_KEY` or `cloud.api_key`).
        source_name: String,
        /// The key's public id (`lk_` + 16 characters); not secret.
        key_id: String,
        /// The server's explanation, which names the key by id and name (never its secret).
        reason: Option<String>,
        /// Name of the embedding CLI.
        app: String,
    },

    /// The cloud API refused an action for lack of permission (403 `forbidden`).
    #[error("could not {action}: {message}")]
    Forbidden {
        /// What was attempted ("create the API key", "switch to acme").
        action: String,
        /// The server's explanation.
        message: String,
        /// Set when the request was made with an API key (`LATCHKEY_API_KEY` or
        /// `cloud.api_key`): keys act for automation and cannot manage credentials.
        api_key_source: Option<String>,
        /// Name of the embedding CLI.
        app: String,
    },

    /// The cloud API refused a request (other than 403 and 426).
    #[error("could not {action}: {}", message.clone().unwrap_or_else(|| format!("the server answered HTTP {status}")))]
    Rejected {
        /// What was attempted.
        action: String,
        /// The HTTP status.
        status: u16,
        /// The stable error code of the cloud API, when present (`not_found`, ...).
        code: Option<String>,
        /// The server's message, when present.
        message: Option<String>,
        /// Name of the embedding CLI.
        app: String,
    },
}

impl Error {
    /// What the user should do next, if there is something useful to say.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::NotSignedIn { app } => format!("Run `{app} login` to sign in."),
            Self::SessionExpired { app } => {
                format!(
                    "The session was signed out or has expired; `{app} login` starts a new one."
                )
            }
            Self::CloudUrlNotSet { app } => {
                format!("Set it with `{app} config set cloud.url https://...` and try again.")
            }
            Self::CorruptCredentials { path, app, .. } => format!(
                "Fix the file by hand, or remove it with `{app} logout` (or `rm {}`) and run `{app} login` again.",
                path.display()
            ),
            Self::InvalidConfig { app, .. } => {
                format!("Fix it with `{app} config edit`.")
            }
            Self::LockTimeout { .. } => {
                "Another process is refreshing the session; try again in a moment.".to_owned()
            }
            Self::NoConfigDir { env_var } => format!("Set {env_var} to a directory."),
            Self::Network { .. } => {
                "Check your network connection and the configured URLs, then try again.".to_owned()
            }
            Self::IssuerMismatch { .. } => {
                "Check auth.url / --auth-url: it must be the exact issuer of the server.".to_owned()
            }
            Self::DeviceFlowUnsupported { .. } => {
                "Ask the administrator to enable the device authorization grant for this client."
                    .to_owned()
            }
            Self::UpgradeRequired {
                app,
                message,
                download_url,
                ..
            } => {
                let mut h = format!("Upgrade {app} to continue.");
                if let Some(m) = message {
                    h = format!("{m}. {h}");
                }
                if let Some(u) = download_url
                    && !h.contains(u.as_str())
                {
                    h.push_str(&format!(" Download it from {u}"));
                }
                h
            }
            Self::AccessDenied => "Run the login again if this was a mistake.".to_owned(),
            Self::CodeExpired { app } => {
                format!("Codes are short-lived; run `{app} login` again for a fresh one.")
            }
            Self::Api { app, status, .. } if *status == 401 || *status == 403 => format!(
                "The token may be expired or revoked; run `{app} login` again if this persists."
            ),
            Self::Api { app, .. } => format!(
                "The server may be having trouble, or the token may be expired; run `{app} login` again if this persists."
            ),
            Self::LoginTimedOut { app, waited_secs } => format!(
                "The browser sign-in must be finished within {}. Run `{app} login --web` to try again, or `{app} login --device` to sign in with a code instead (it works when the browser cannot reach this machine).",
                wait_text(*waited_secs)
            ),
            Self::StateMismatch { app } => format!(
                "Run `{app} login --web` again and finish the sign-in in the tab it opens (not an older one)."
            ),
            Self::ResponseIssuerMismatch { .. } => {
                "Check auth.url / --auth-url and try again; report this if it persists.".to_owned()
            }
            Self::BrowserFlowUnsupported { app, .. } => {
                format!("Use `{app} login --device` instead.")
            }
            Self::Loopback { app, .. } => {
                format!("Use `{app} login --device` instead: it needs no local server.")
            }
            Self::MethodDisabled {
                method,
                enabled,
                app,
            } => {
                let others: Vec<String> = enabled
                    .iter()
                    .filter(|m| *m != method)
                    .filter_map(|m| method_flag(m))
                    .map(|f| format!("`{app} login {f}`"))
                    .collect();
                if others.is_empty() {
                    format!("Run `{app} login` to use a method the server offers.")
                } else {
                    format!("This server offers {} instead.", others.join(" or "))
                }
            }
            Self::WrongCredentials { app } => format!(
                "Check the email and password and try again. Accounts are created on the web; `{app} login --web` signs in there."
            ),
            Self::SignInRefused { uri, app, .. } => format!(
                "Sign in through the browser instead: `{app} login --web`, or `{app} login --device` over SSH. More at {uri}"
            ),
            Self::RateLimited { .. } => {
                "Wait before trying again; repeated failures lock sign-in for a while.".to_owned()
            }
            Self::SessionNotFound { app, .. } => {
                format!("`{app} sessions` lists your sessions and their ids.")
            }
            Self::InvalidApiKey { .. } => format!(
                "Copy the key again in full: it is {} characters and starts with lk_. Nothing was sent to the server.",
                crate::api_keys::KEY_LEN
            ),
            Self::ApiKeyRejected {
                source_name, app, ..
            } => format!(
                "Create a new key with `{app} api-keys create NAME` (signed in as a person) or on your account page, and put it in {source_name}."
            ),
            Self::Forbidden {
                api_key_source: Some(src),
                app,
                ..
            } => format!(
                "{src} is set, and API keys are for automation: they cannot manage credentials. Unset it to use your own login (`{app} login`)."
            ),
            Self::Forbidden { .. } => {
                "Ask an owner or admin of the organization if you need this.".to_owned()
            }
            Self::Rejected {
                app, status: 401, ..
            } => {
                format!("Run `{app} login` to sign in again.")
            }
            _ => return None,
        })
    }

    /// Whether this error means the user has to sign in (again).
    pub fn needs_login(&self) -> bool {
        matches!(self, Self::NotSignedIn { .. } | Self::SessionExpired { .. })
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// How a login method is called in messages.
fn method_label(method: &str) -> &str {
    match method {
        "browser" => "Browser",
        "device" => "Device-code",
        "password" => "Password",
        "anonymous" => "Anonymous",
        other => other,
    }
}

/// The `login` flag that picks a method, for hints.
fn method_flag(method: &str) -> Option<&'static str> {
    Some(match method {
        "browser" => "--web",
        "device" => "--device",
        "password" => "--email",
        "anonymous" => "--anonymous",
        _ => return None,
    })
}

/// "45 seconds", "5 minutes", "1 minute 30 seconds".
fn wait_text(secs: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match (secs / 60, secs % 60) {
        (0, s) => plural(s, "second"),
        (m, 0) => plural(m, "minute"),
        (m, s) => format!("{} {}", plural(m, "minute"), plural(s, "second")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_app() {
        let e = Error::SessionExpired {
            app: "latchkey".into(),
        };
        assert_eq!(
            e.to_string(),
            "Session expired. Run `latchkey login` again."
        );
        let e = Error::CloudUrlNotSet { app: "acme".into() };
        assert!(
            e.hint()
                .unwrap_or_default()
                .contains("acme config set cloud.url https://")
        );
    }

    #[test]
    fn login_method_messages() {
        let e = Error::MethodDisabled {
            method: "password".into(),
            enabled: vec!["browser".into(), "device".into(), "password".into()],
            app: "latchkey".into(),
        };
        assert_eq!(e.to_string(), "Password sign-in is disabled on this server");
        assert_eq!(
            e.hint().unwrap_or_default(),
            "This server offers `latchkey login --web` or `latchkey login --device` instead."
        );
        let e = Error::RateLimited {
            retry_after: Some(300),
            description: None,
        };
        assert_eq!(
            e.to_string(),
            "too many sign-in attempts; try again in 5 minutes"
        );
        assert_eq!(wait_text(61), "1 minute 1 second");
        assert_eq!(wait_text(45), "45 seconds");
        let e = Error::LoginTimedOut {
            app: "acme".into(),
            waited_secs: 300,
        };
        assert_eq!(e.to_string(), "Login timed out");
        assert!(e.hint().unwrap_or_default().contains("acme login --device"));
    }

    #[test]
    fn api_error_message() {
        let e = Error::Api {
            endpoint: "/v1/me".into(),
            status: 500,
            code: None,
            message: None,
            app: "latchkey".into(),
        };
        assert_eq!(e.to_string(), "Failed to fetch /v1/me (500)");
        assert!(
            e.hint()
                .unwrap_or_default()
                .contains("token may be expired")
        );
    }
}
