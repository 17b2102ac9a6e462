//! An identity without an account: latchkey's extension grant
//! `urn:latchkey:params:oauth:grant-type:anonymous` (RFC 6749 §4.5), documented in
//! `docs/protocol.md`.
//!
//! The server creates a real user with no email and a personal organization, and answers with an
//! ordinary token response, so the session refreshes and revokes like any other. Its refresh
//! token is also the proof that lets a later real login claim the anonymous organization
//! (`POST /v1/anonymous/claim`; see the crate root), which is why nothing about it is special
//! on disk except `mode: anonymous`.

use crate::error::{Error, Result};
use crate::http::Http;
use latchkey_proto::{GRANT_ANONYMOUS, TokenResponse, methods};

/// Requests an anonymous identity. A server that does not offer it answers
/// `unsupported_grant_type` ([`Error::MethodDisabled`]).
pub(crate) async fn request(
    http: &Http,
    token_endpoint: &str,
    client_id: &str,
    scope: Option<&str>,
    device_name: Option<&str>,
    app: &str,
) -> Result<TokenResponse> {
    let mut form = vec![("grant_type", GRANT_ANONYMOUS), ("client_id", client_id)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    if let Some(n) = device_name {
        form.push(("device_name", n));
    }
    super::token_request(
        http,
        token_endpoint,
        &form,
        methods::ANONYMOUS,
        app,
        |description| Error::OAuth {
            code: latchkey_proto::ErrorCode::InvalidGrant,
            description,
        },
    )
    .await
}
