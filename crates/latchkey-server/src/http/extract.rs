//! Request extractors shared by the handlers: form parameters checked the way RFC 6749 wants
//! them (right content type, no repeated parameter, bounded size), the caller's IP and user
//! agent, and cookies.

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;

use super::error::OAuthError;

/// Largest form body accepted.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Why a form body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// Not `application/x-www-form-urlencoded`.
    ContentType,
    /// Over [`MAX_FORM_BYTES`].
    TooLarge,
    /// Not valid urlencoded UTF-8.
    Malformed,
    /// A parameter appears twice (RFC 6749 §3.1, §3.2).
    Repeated(String),
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ContentType => {
                f.write_str("send the parameters as application/x-www-form-urlencoded")
            }
            Self::TooLarge => write!(f, "the request body is larger than {MAX_FORM_BYTES} bytes"),
            Self::Malformed => f.write_str("the form body is not valid urlencoded UTF-8"),
            Self::Repeated(p) => write!(f, "the parameter `{p}` is repeated"),
        }
    }
}

/// Decoded form parameters, each present at most once. Empty values count as absent
/// (RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if they were omitted").
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses a urlencoded string.
    pub fn parse(body: &[u8]) -> Result<Self, FormError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|_| FormError::Malformed)?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            if v.is_empty() {
                continue;
            }
            if map.insert(k.clone(), v).is_some() {
                return Err(FormError::Repeated(k));
            }
        }
        Ok(Self(map))
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A required parameter, or `invalid_request` naming it.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| {
            OAuthError::invalid_request(format!("the `{name}` parameter is missing"))
        })
    }
}

/// Reads and parses a form body.
pub async fn read_form(req: Request) -> Result<(HeaderMap, Params), FormError> {
    let ct_ok = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !ct_ok {
        return Err(FormError::ContentType);
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| FormError::TooLarge)?;
    Ok((parts.headers, Params::parse(&bytes)?))
}

/// Form parameters of an OAuth endpoint; a bad body is an RFC 6749 JSON error.
#[derive(Debug)]
pub struct OAuthParams {
    /// Request headers (for client authentication).
    pub headers: HeaderMap,
    /// The parameters.
    pub params: Params,
}

impl<S: Send + Sync> FromRequest<S> for OAuthParams {
    type Rejection = OAuthError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        match read_form(req).await {
            Ok((headers, params)) => Ok(Self { headers, params }),
            Err(e) => {
                let status = match e {
                    FormError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                    FormError::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    _ => StatusCode::BAD_REQUEST,
                };
                Err(OAuthError::invalid_request(e.to_string()).with_status(status))
            }
        }
    }
}

/// The caller's IP address: the TCP peer, or behind a configured trusted proxy the address it
/// forwarded (resolved once by [`super::observe::request_context`]).
#[derive(Debug, Clone)]
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let resolved = parts
            .extensions
            .get::<super::observe::ClientAddr>()
            .map(|c| c.0.to_string());
        Ok(Self(resolved.or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
        })))
    }
}

/// The `User-Agent`, truncated to 200 characters.
#[derive(Debug, Clone)]
pub struct UserAgent(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(200).collect()),
        ))
    }
}

/// The value of cookie `name`, if sent.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_reject_repeats_and_drop_empty() {
        assert_eq!(
            Params::parse(b"a=1&a=2").expect_err("repeat"),
            FormError::Repeated("a".into())
        );
        let p = Params::parse(b"a=&b=x%20y").expect("ok");
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("x y"));
        // Invalid UTF-8 is decoded lossily (as browsers do), never a panic.
        assert_eq!(
            Params::parse(b"a=%FF").expect("lossy").get("a"),
            Some("\u{FFFD}")
        );
    }

    #[test]
    fn cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; lk_session=abc; b=2".parse().expect("hv"),
        );
        assert_eq!(cookie(&h, "lk_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "zz"), None);
    }
}
