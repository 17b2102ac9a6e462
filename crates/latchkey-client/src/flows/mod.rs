//! Login flows, one file each: how a session is obtained from the authorization server.
//!
//! - [`device`]: the device authorization grant (RFC 8628), a code approved on any device;
//! - [`loopback`]: authorization code + PKCE with a loopback redirect (RFC 8252), the browser
//!   comes back to this machine;
//! - [`password`]: email and password typed in the terminal (RFC 6749 §4.3), first party only;
//! - [`anonymous`]: latchkey's extension grant for an identity without an account.
//!
//! Each flow ends in a token response; what happens next (identity, storage, replacing or
//! claiming the previous session) is the same for all and lives in the crate root. The token
//! request and its error mapping shared by the direct grants is here.

pub mod anonymous;
pub mod device;
pub mod loopback;
pub mod password;

use crate::error::{Error, Result};
use crate::http::Http;
use latchkey_proto::{ErrorCode, TokenResponse};

/// Posts a token request for the login `method` (`browser`, `password`, `anonymous`) and maps
/// the answers every grant shares: a switched-off grant (`unsupported_grant_type`) becomes
/// [`Error::MethodDisabled`], a rate limit (429 or `temporarily_unavailable`) becomes
/// [`Error::RateLimited`] with the server's `Retry-After`, other OAuth errors stay
/// [`Error::OAuth`]. `invalid_grant` is left to the caller through `on_invalid_grant`.
pub(crate) async fn token_request(
    http: &Http,
    endpoint: &str,
    form: &[(&str, &str)],
    method: &str,
    app: &str,
    on_invalid_grant: impl FnOnce(Option<String>) -> Error,
) -> Result<TokenResponse> {
    let resp = http.post_form(endpoint, form).await?;
    if resp.is_success() {
        return resp.json();
    }
    let err = resp.oauth_error();
    if resp.status == 429
        || err
            .as_ref()
            .is_some_and(|e| e.error == ErrorCode::TemporarilyUnavailable)
    {
        return Err(Error::RateLimited {
            retry_after: resp.retry_after,
            description: err.and_then(|e| e.error_description),
        });
    }
    match err {
        Some(e) if e.error == ErrorCode::UnsupportedGrantType => Err(Error::MethodDisabled {
            method: method.to_owned(),
            enabled: Vec::new(),
            app: app.to_owned(),
        }),
        Some(e) if e.error == ErrorCode::InvalidGrant => match e.error_uri {
            Some(uri) => Err(Error::SignInRefused {
                description: e
                    .error_description
                    .unwrap_or_else(|| "the server refused this sign-in".to_owned()),
                uri,
                app: app.to_owned(),
            }),
            None => Err(on_invalid_grant(e.error_description)),
        },
        Some(e) => Err(Error::OAuth {
            code: e.error,
            description: e.error_description,
        }),
        None => Err(resp.unexpected()),
    }
}
