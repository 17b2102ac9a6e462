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
    /// When the token was obtained with an API key: that key (the `user` is its creator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKeyInfo>,
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

/// An API key as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    /// The key's public id: `lk_` + 16 characters, also its OAuth `client_id`.
    pub id: String,
    /// Name given at creation.
    pub name: String,
    /// The organization it acts in.
    pub org: OrgRef,
    /// Its role in that org (never above its creator's at creation).
    pub role: String,
    /// Email of the user who created it.
    #[serde(default)]
    pub created_by: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; `None` for keys that do not expire.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Unix seconds of the last token exchange (to the minute).
    #[serde(default)]
    pub last_used_at: Option<i64>,
}

/// A short reference to an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRef {
    /// Org id.
    pub id: String,
    /// Org slug.
    pub slug: String,
}

/// `POST /v1/api-keys`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateApiKeyRequest {
    /// A name to recognise the key by (`ci-deploy`).
    pub name: String,
    /// Org id or slug; default the caller's active org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Role; default `member`, never above the caller's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Lifetime in days; default no expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
}

/// The answer to a key creation: the only time the secret is shown.
#[derive(Clone, Serialize, Deserialize)]
pub struct CreateApiKeyResponse {
    /// The key itself. Store it now; it cannot be shown again.
    pub key: String,
    /// The key's listing.
    pub api_key: ApiKeyInfo,
}

impl std::fmt::Debug for CreateApiKeyResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateApiKeyResponse")
            .field("key", &"[redacted]")
            .field("api_key", &self.api_key)
            .finish()
    }
}

/// `GET /v1/api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyList {
    /// Keys the caller created, and every key of orgs the caller administers.
    pub api_keys: Vec<ApiKeyInfo>,
}

/// `GET /v1/orgs`: the caller's organizations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgList {
    /// Every org the caller belongs to, with the caller's role.
    pub orgs: Vec<OrgMembership>,
    /// The id of the active org of the presented token's session.
    #[serde(default)]
    pub active: Option<String>,
}

/// A member as listed in `GET /v1/orgs/{org}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// User id.
    pub user_id: String,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Role.
    pub role: String,
    /// Unix seconds.
    pub joined_at: i64,
}

/// `GET /v1/orgs/{org}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgDetail {
    /// The org, with the caller's role.
    pub org: OrgMembership,
    /// Whether it is someone's personal org.
    pub personal: bool,
    /// Its members.
    pub members: Vec<Member>,
}

/// An invitation as listed; `link` only in the answer to its creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// Id.
    pub id: String,
    /// Invited email.
    pub email: String,
    /// Role on acceptance.
    pub role: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The link to send to the invited person (shown once, to the inviter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// `PUT /v1/session/org`: make another org the active one of the caller's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchOrgRequest {
    /// Org id or slug.
    pub org: String,
}
