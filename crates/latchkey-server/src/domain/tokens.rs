//! Token contents: RFC 9068 access-token claims, OIDC ID-token claims, refresh-token format.

use serde::{Deserialize, Serialize};

/// Prefix of refresh tokens, so secret scanners and people can tell what leaked.
pub const REFRESH_PREFIX: &str = "lkr_";

/// JOSE `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TYP: &str = "at+jwt";

/// Claims of an access token (RFC 9068 §2.2) plus latchkey's `org` and `role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// Audience: the resource server (the cloud API).
    pub aud: String,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Unique token id.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Granted scope, space separated.
    pub scope: String,
    /// The session id; revoking the session makes `/v1/me` refuse the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Active organization id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Role of the user in the active organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// Claims of an OpenID Connect ID token (OIDC Core §2), issued when `openid` is granted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// The client id.
    pub aud: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// When the user authenticated.
    pub auth_time: i64,
    /// The nonce from the authorization request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Email, with the `email` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Name, with the `profile` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Whether a string looks like one of our refresh tokens (cheap check before a lookup).
pub fn looks_like_refresh_token(s: &str) -> bool {
    s.len() == REFRESH_PREFIX.len() + 43 && s.starts_with(REFRESH_PREFIX)
}
