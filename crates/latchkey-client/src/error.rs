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

    /// An API key is configured, but API-key sign-in is not implemented by this version.
    #[error(
        "an API key is set in {source_name}, but this version of {app} cannot sign in with API keys yet"
    )]
    ApiKeyUnsupported {
        /// Where the key came from (`LATCHKEY_API_KEY` or `cloud.api_key`).
        source_name: String,
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
            Self::ApiKeyUnsupported { source_name, .. } => format!(
                "API-key sign-in comes with a later version; unset {source_name} to use your login instead."
            ),
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
