//! The HTTP layer's errors: one type per surface, each turned into the right response.
//!
//! OAuth endpoints answer RFC 6749 §5.2 JSON; the cloud API answers `{code, message}`; pages
//! answer HTML. Internal failures become a generic 500 and are logged once, here, without any
//! request data; nothing internal reaches the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_proto::{ErrorCode, ErrorResponse};

use crate::store::StoreError;

/// An error of an OAuth endpoint (RFC 6749 §5.2, RFC 8628 §3.5, RFC 6750 §3).
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    body: ErrorResponse,
    www_authenticate: Option<String>,
    retry_after: Option<i64>,
}

impl OAuthError {
    /// An error with the status RFC 6749 §5.2 gives it (400, or 401 for `invalid_client`).
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        let status = match code {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self {
            status,
            body: ErrorResponse::new(code, description),
            www_authenticate: None,
            retry_after: None,
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `invalid_client`, with the `WWW-Authenticate` challenge RFC 6749 §5.2 asks for.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorCode::InvalidClient, description);
        e.www_authenticate = Some("Basic realm=\"latchkey\"".into());
        e
    }

    /// Overrides the status (e.g. 413 for an oversized body, 429 when rate limited).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds `Retry-After` (seconds).
    /// Adds `error_uri` (RFC 6749 §5.2): a page about the error, where the user can go on.
    pub fn with_error_uri(mut self, uri: String) -> Self {
        self.body.error_uri = Some(uri);
        self
    }

    /// Adds `Retry-After`.
    pub fn with_retry_after(mut self, secs: i64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// A generic internal error; the cause is logged, not sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::ServerError, "the server failed; try again later")
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        Self::internal(&e)
    }
}

/// Headers every token-bearing or error response of an OAuth endpoint carries (RFC 6749 §5.1).
pub fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body)).into_response();
        no_store(&mut resp);
        if let Some(v) = self
            .www_authenticate
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// An error of the cloud API (`/v1/...`): `{code, message}` with a stable code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    www_authenticate: Option<String>,
}

impl ApiError {
    /// Any error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            www_authenticate: None,
        }
    }

    /// 401 for a missing bearer token (RFC 6750 §3.1: no error code in the challenge).
    pub fn missing_token() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs an access token: send `Authorization: Bearer <token>`",
        );
        e.www_authenticate = Some("Bearer realm=\"latchkey\"".into());
        e
    }

    /// 401 for an invalid, expired or revoked token (RFC 6750 §3.1 `invalid_token`).
    pub fn invalid_token(why: &str) -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            format!("{why}; sign in again or refresh the token"),
        );
        e.www_authenticate = Some(format!(
            "Bearer realm=\"latchkey\", error=\"invalid_token\", error_description=\"{why}\""
        ));
        e
    }

    /// 400 for a malformed Authorization header (RFC 6750 §3.1 `invalid_request`).
    pub fn bad_auth_header(why: &str) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_request", why.to_owned());
        e.www_authenticate = Some(format!(
            "Bearer realm=\"latchkey\", error=\"invalid_request\", error_description=\"{why}\""
        ));
        e
    }

    /// The status and the message, for showing the error on a page.
    pub fn parts(self) -> (StatusCode, String) {
        (self.status, self.message)
    }

    /// A generic internal error; the cause is logged, not sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; try again later",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::internal(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = latchkey_proto::ApiError {
            code: self.code.to_owned(),
            message: self.message,
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(v) = self
            .www_authenticate
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}
