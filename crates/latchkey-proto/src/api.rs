//! latchkey's own JSON documents: CLI discovery (`/v1/auth/cli/config`), the signed-in identity
//! (`/v1/me`) and the cloud API error form.

use serde::{Deserialize, Serialize};

/// What a CLI needs from one cloud URL (`GET /v1/auth/cli/config`). latchkey extension; see
/// `docs/protocol.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CliConfig {
    /// The OAuth issuer; the client fetches its RFC 8414 metadata next.
    pub issuer: String,
    /// The public client id the CLI uses.
    pub client_id: String,
    /// Login methods this deployment enables (see [`crate::methods`]), preferred first.
    #[serde(default)]
    pub login_methods: Vec<String>,
    /// Scope the CLI should request, if the deployment wants a specific one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Oldest CLI version the deployment accepts (semver `MAJOR.MINOR.PATCH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cli_version: Option<String>,
    /// Where to download the CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// The base URL of the cloud API (`/v1/...`), when it differs from the cloud URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeUser {
    /// Stable user id (the `sub` claim).
    pub id: String,
    /// Email; `None` for anonymous users.
    #[serde(default)]
    pub email: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether this is an anonymous identity.
    #[serde(default)]
    pub anonymous: bool,
}

/// One organization the user belongs to, with the user's role in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgMembership {
    /// Org id.
    pub id: String,
    /// URL-safe unique name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
}

/// A login session: what one `latchkey login` created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Session id (the `sid` claim).
    pub id: String,
    /// Device name given at login (`--name`, default the host name).
    #[serde(default)]
    pub name: Option<String>,
    /// The OAuth client that created it.
    pub client_id: String,
    /// How the session was created: `device`, `authorization_code`, `password`, ...
    #[serde(default)]
    pub method: Option<String>,
    /// IP address the login came from.
    #[serde(default)]
    pub ip: Option<String>,
    /// User agent of the login request.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last refresh.
    pub last_used_at: i64,
}

/// `GET /v1/me`: who the bearer token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The user.
    pub user: MeUser,
    /// The active organization of the token, with the user's role.
    #[serde(default)]
    pub org: Option<OrgMembership>,
    /// Every organization the user belongs to.
    #[serde(default)]
    pub orgs: Vec<OrgMembership>,
    /// The session of the token, if it belongs to one.
    #[serde(default)]
    pub session: Option<SessionInfo>,
    /// The client the token was issued to.
    pub client_id: String,
    /// Granted scope.
    #[serde(default)]
    pub scope: String,
    /// Expiry of the presented access token (unix seconds).
    pub token_expires_at: i64,
}

/// The error form of the cloud API (`/v1/...`): a stable machine-readable `code` and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable code, e.g. `unauthorized`, `not_found`, `invalid_request`, `upgrade_required`.
    pub code: String,
    /// What happened and what to do, for a person.
    pub message: String,
}

/// `GET /v1/sessions`: the signed-in user's live sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionList {
    /// Live sessions, most recently used first.
    pub sessions: Vec<SessionInfo>,
    /// The id of the session the presented token belongs to.
    #[serde(default)]
    pub current: Option<String>,
}

/// `POST /v1/anonymous/claim`: move an anonymous identity's organizations into the signed-in
/// account. latchkey extension; see `docs/protocol.md`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimAnonymousRequest {
    /// The anonymous session's refresh token (proof of holding it).
    pub refresh_token: crate::RefreshToken,
}

/// What the claim moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimAnonymousResponse {
    /// Organizations that now belong to the signed-in account.
    pub moved_orgs: Vec<OrgMembership>,
}
