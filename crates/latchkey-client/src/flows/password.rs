//! Email and password typed in the terminal: the resource owner password credentials grant
//! (RFC 6749 §4.3), which latchkeyd offers to its first-party CLI client only and can switch off.
//!
//! The password goes straight from the prompt to one token request and is dropped; it is never
//! stored, logged or put in an error. The server answers an unknown email and a wrong password
//! the same way, so the client cannot (and does not try to) tell them apart.

use crate::error::{Error, Result};
use crate::http::Http;
use latchkey_proto::{GRANT_PASSWORD, TokenResponse, methods};
use std::fmt;

/// A password on its way to the token endpoint. `Debug` is redacted and there is no `Clone`:
/// it is read once, sent once and dropped.
pub struct Password(String);

impl Password {
    /// Wraps a password as typed (a trailing newline from `--password-stdin` should already be
    /// removed; other whitespace is kept, it may be part of the password).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The password itself.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Whether nothing was typed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// What one password token request needs besides the credentials.
pub(crate) struct PasswordRequest<'a> {
    pub token_endpoint: &'a str,
    pub client_id: &'a str,
    pub scope: Option<&'a str>,
    pub device_name: Option<&'a str>,
    pub app: &'a str,
}

/// RFC 6749 §4.3.2: exchanges email and password for tokens. `invalid_grant` means wrong
/// email or password ([`Error::WrongCredentials`]).
pub(crate) async fn request(
    http: &Http,
    req: &PasswordRequest<'_>,
    email: &str,
    password: &Password,
) -> Result<TokenResponse> {
    let mut form = vec![
        ("grant_type", GRANT_PASSWORD),
        ("username", email),
        ("password", password.secret()),
        ("client_id", req.client_id),
    ];
    if let Some(s) = req.scope {
        form.push(("scope", s));
    }
    if let Some(n) = req.device_name {
        form.push(("device_name", n));
    }
    let app = req.app.to_owned();
    super::token_request(
        http,
        req.token_endpoint,
        &form,
        methods::PASSWORD,
        req.app,
        |_| Error::WrongCredentials { app },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::new("hunter2 hunter2");
        assert_eq!(format!("{p:?}"), "Password([redacted])");
        assert_eq!(p.secret(), "hunter2 hunter2");
        assert!(!p.is_empty());
    }
}
