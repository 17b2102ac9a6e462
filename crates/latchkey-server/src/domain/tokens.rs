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

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The refresh token that replaces `presented` when it is rotated:
/// `lkr_` + base64url(HMAC-SHA256(server secret, presented)).
///
/// Deterministic on purpose: a client that lost the response to a refresh and retries with
/// the same token within the grace window gets the same new token again, without the server
/// ever storing a refresh token in a recoverable form. Without the server secret nobody can
/// compute it.
pub fn derive_refresh(secret: &[u8], presented: &str) -> String {
    use base64::Engine;
    let mac = hmac_sha256(secret, presented.as_bytes());
    format!(
        "{REFRESH_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
    )
}

/// Whether a string looks like one of our refresh tokens (cheap check before a lookup).
pub fn looks_like_refresh_token(s: &str) -> bool {
    s.len() == REFRESH_PREFIX.len() + 43 && s.starts_with(REFRESH_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::secrets::hex;

    #[test]
    fn hmac_rfc4231_vectors() {
        // Test case 1.
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block size.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn derived_tokens_look_like_refresh_tokens() {
        let t = derive_refresh(b"secret", "lkr_old");
        assert!(looks_like_refresh_token(&t));
        assert_eq!(t, derive_refresh(b"secret", "lkr_old"));
        assert_ne!(t, derive_refresh(b"other", "lkr_old"));
    }
}
