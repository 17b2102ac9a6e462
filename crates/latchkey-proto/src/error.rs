//! OAuth 2.0 error responses (RFC 6749 §5.2, RFC 8628 §3.5, RFC 6750 §3.1, RFC 7009 §2.2.1).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An OAuth error code. One variant per registered code we use, plus `Extension` for any other
/// string a third-party server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// RFC 6749 §5.2: missing or malformed parameter.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed or unknown client.
    InvalidClient,
    /// RFC 6749 §5.2: the grant (code, refresh token, credentials) is invalid or expired.
    InvalidGrant,
    /// RFC 6749 §5.2: the client may not use this grant type.
    UnauthorizedClient,
    /// RFC 6749 §5.2: the grant type is not supported.
    UnsupportedGrantType,
    /// RFC 6749 §5.2: the requested scope is invalid or exceeds what was granted.
    InvalidScope,
    /// RFC 6749 §4.1.2.1: the resource owner or server denied the request.
    AccessDenied,
    /// RFC 6749 §4.1.2.1: the server does not support this response type.
    UnsupportedResponseType,
    /// RFC 6749 §4.1.2.1: unexpected server error (sent as a redirect parameter only).
    ServerError,
    /// RFC 6749 §4.1.2.1: the server is temporarily unable to handle the request.
    TemporarilyUnavailable,
    /// RFC 8628 §3.5: the user has not yet approved the device request.
    AuthorizationPending,
    /// RFC 8628 §3.5: poll more slowly; the interval grows by 5 seconds.
    SlowDown,
    /// RFC 8628 §3.5: the device code expired; start a new device authorization.
    ExpiredToken,
    /// RFC 6750 §3.1: the access token is expired, revoked or malformed.
    InvalidToken,
    /// RFC 6750 §3.1: the token lacks the scope needed.
    InsufficientScope,
    /// RFC 7009 §2.2.1: the server does not revoke this token type.
    UnsupportedTokenType,
    /// Any other code.
    Extension(String),
}

impl ErrorCode {
    /// The wire string of the code.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::Extension(s) => s,
        }
    }

    /// Parses a wire string; unknown strings become [`ErrorCode::Extension`].
    pub fn parse(s: &str) -> Self {
        match s {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "unsupported_response_type" => Self::UnsupportedResponseType,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            "authorization_pending" => Self::AuthorizationPending,
            "slow_down" => Self::SlowDown,
            "expired_token" => Self::ExpiredToken,
            "invalid_token" => Self::InvalidToken,
            "insufficient_scope" => Self::InsufficientScope,
            "unsupported_token_type" => Self::UnsupportedTokenType,
            other => Self::Extension(other.to_owned()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

/// The JSON error body of RFC 6749 §5.2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error code.
    pub error: ErrorCode,
    /// Human-readable text; never contains a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// A page with more about the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl ErrorResponse {
    /// An error with a description.
    pub fn new(error: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            error,
            error_description: Some(description.into()),
            error_uri: None,
        }
    }
}

/// What a polling device client does next after a token-endpoint error (RFC 8628 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceFlowAction {
    /// Keep polling at the current interval.
    Continue,
    /// Keep polling, with the interval increased by 5 seconds.
    SlowDown,
    /// Stop: the user denied the request.
    Denied,
    /// Stop: the device code expired.
    Expired,
    /// Stop: any other error is final.
    Fail,
}

impl DeviceFlowAction {
    /// Maps a device-flow token error to the client's next action.
    pub fn for_error(code: &ErrorCode) -> Self {
        match code {
            ErrorCode::AuthorizationPending => Self::Continue,
            ErrorCode::SlowDown => Self::SlowDown,
            ErrorCode::AccessDenied => Self::Denied,
            ErrorCode::ExpiredToken => Self::Expired,
            _ => Self::Fail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for s in [
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
            "access_denied",
            "authorization_pending",
            "slow_down",
            "expired_token",
            "invalid_token",
            "something_else",
        ] {
            assert_eq!(ErrorCode::parse(s).as_str(), s);
        }
        assert_eq!(
            ErrorCode::parse("x_custom"),
            ErrorCode::Extension("x_custom".into())
        );
    }

    #[test]
    fn error_json_shape() {
        let e = ErrorResponse::new(ErrorCode::SlowDown, "poll slower");
        let j = serde_json::to_value(&e).expect("serialize");
        assert_eq!(j["error"], "slow_down");
        assert_eq!(j["error_description"], "poll slower");
        assert!(j.get("error_uri").is_none());
        let back: ErrorResponse =
            serde_json::from_str(r#"{"error":"authorization_pending"}"#).expect("parse");
        assert_eq!(back.error, ErrorCode::AuthorizationPending);
    }

    #[test]
    fn device_actions() {
        use DeviceFlowAction as A;
        assert_eq!(A::for_error(&ErrorCode::AuthorizationPending), A::Continue);
        assert_eq!(A::for_error(&ErrorCode::SlowDown), A::SlowDown);
        assert_eq!(A::for_error(&ErrorCode::AccessDenied), A::Denied);
        assert_eq!(A::for_error(&ErrorCode::ExpiredToken), A::Expired);
        assert_eq!(A::for_error(&ErrorCode::InvalidGrant), A::Fail);
    }
}
