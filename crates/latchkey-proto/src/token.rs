//! The successful token response (RFC 6749 §5.1).

use crate::secret::{AccessToken, RefreshToken};
use serde::{Deserialize, Serialize};

/// A successful access token response (RFC 6749 §5.1). `Debug` redacts both tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: AccessToken,
    /// The token type; `Bearer` (RFC 6750), compared case-insensitively.
    pub token_type: String,
    /// Lifetime of the access token in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// The refresh token, when one is issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// The granted scope when it differs from the request (space separated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// An OpenID Connect ID token, when a third-party server returns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<AccessToken>,
}
