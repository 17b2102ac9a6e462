//! The HTTP client every request goes through: one place for the User-Agent and
//! `Latchkey-Client-Version` headers, timeouts, TLS set-up and turning transport failures into
//! readable errors.
//!
//! The underlying `reqwest::Client` is built lazily, so commands that answer from the local
//! cache (`token` with a valid token) never pay for TLS initialisation.

use crate::error::{Error, Result};
use latchkey_proto::ErrorResponse;
use serde::de::DeserializeOwned;
use std::sync::OnceLock;
use std::time::Duration;

/// Header carrying the embedding CLI's version, so the server can answer 426 to old clients.
pub const CLIENT_VERSION_HEADER: &str = "Latchkey-Client-Version";

/// Largest response body read, to bound memory on a misbehaving server.
const MAX_BODY: usize = 1 << 20;

/// A lazily built HTTP client with latchkey's headers.
#[derive(Debug)]
pub(crate) struct Http {
    client: OnceLock<reqwest::Client>,
    user_agent: String,
    version: String,
    timeout: Duration,
}

/// A fully read response.
#[derive(Debug)]
pub(crate) struct Response {
    pub url: String,
    pub status: u16,
    pub body: Vec<u8>,
    /// `Retry-After` in seconds, when the server sent one (429, 503).
    pub retry_after: Option<u64>,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Parses the body as JSON, or explains what came back instead.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Protocol {
            url: self.url.clone(),
            reason: format!(
                "HTTP {} with a body that is not the expected JSON ({e})",
                self.status
            ),
        })
    }

    /// The RFC 6749 §5.2 error in the body, if it is one.
    pub fn oauth_error(&self) -> Option<ErrorResponse> {
        serde_json::from_slice(&self.body).ok()
    }

    /// An error for a status this call did not expect.
    pub fn unexpected(&self) -> Error {
        let reason = match self.oauth_error() {
            Some(e) => format!(
                "HTTP {}: {}{}",
                self.status,
                e.error,
                e.error_description
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            None => format!("HTTP {}", self.status),
        };
        Error::Protocol {
            url: self.url.clone(),
            reason,
        }
    }
}

impl Http {
    pub fn new(app: &str, version: &str, timeout: Duration) -> Self {
        let lib = env!("CARGO_PKG_VERSION");
        let user_agent = if app == "latchkey" {
            format!("latchkey/{version}")
        } else {
            format!("{app}/{version} latchkey-client/{lib}")
        };
        Self {
            client: OnceLock::new(),
            user_agent,
            version: version.to_owned(),
            timeout,
        }
    }

    fn client(&self) -> Result<&reqwest::Client> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&self.version) {
            headers.insert(CLIENT_VERSION_HEADER, v);
        }
        let c = reqwest::Client::builder()
            .user_agent(self.user_agent.clone())
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10).min(self.timeout))
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| Error::Network {
                url: String::new(),
                reason: format!("cannot set up HTTPS ({e})"),
            })?;
        Ok(self.client.get_or_init(|| c))
    }

    /// `GET url`, optionally with a bearer token.
    pub async fn get(&self, url: &str, bearer: Option<&str>) -> Result<Response> {
        let req = self.api_request(reqwest::Method::GET, url, bearer)?;
        self.send(url, req).await
    }

    /// A request to the cloud API: JSON accepted, the bearer token when there is one.
    fn api_request(
        &self,
        method: reqwest::Method,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<reqwest::RequestBuilder> {
        let req = self
            .client()?
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json");
        Ok(match bearer {
            Some(t) => req.bearer_auth(t),
            None => req,
        })
    }

    /// `POST url` with a JSON body and optionally a bearer token (cloud API).
    pub async fn post_json<B: serde::Serialize + ?Sized>(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: &B,
    ) -> Result<Response> {
        let req = self
            .api_request(reqwest::Method::POST, url, bearer)?
            .json(body);
        self.send(url, req).await
    }

    /// `DELETE url`, optionally with a bearer token (cloud API).
    pub async fn delete(&self, url: &str, bearer: Option<&str>) -> Result<Response> {
        let req = self.api_request(reqwest::Method::DELETE, url, bearer)?;
        self.send(url, req).await
    }

    /// `POST url` with a form body (OAuth endpoints).
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Response> {
        let req = self
            .client()?
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form);
        self.send(url, req).await
    }

    /// `POST url` with a form body, once, with its own `timeout` (capped by the client's), keeping
    /// apart the failures after which the request may have reached the server: what a caller
    /// that retries (a refresh) needs to know.
    pub async fn post_form_attempt(
        &self,
        url: &str,
        form: &[(&str, &str)],
        timeout: Duration,
    ) -> std::result::Result<Response, SendError> {
        let req = self
            .client()
            .map_err(SendError::Other)?
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(timeout.min(self.timeout))
            .form(form);
        self.send_classified(url, req).await
    }

    /// `POST url` with a form body and HTTP Basic client authentication (RFC 6749 §2.3.1):
    /// how a confidential client, such as an API key, authenticates at the token endpoint.
    pub async fn post_form_basic(
        &self,
        url: &str,
        (client_id, client_secret): (&str, &str),
        form: &[(&str, &str)],
    ) -> Result<Response> {
        // §2.3.1: both parts are form-urlencoded before they are joined.
        let enc =
            |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
        let req = self
            .client()?
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .basic_auth(enc(client_id), Some(enc(client_secret)))
            .form(form);
        self.send(url, req).await
    }

    /// `PUT url` with a JSON body and optionally a bearer token (cloud API).
    pub async fn put_json<B: serde::Serialize + ?Sized>(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: &B,
    ) -> Result<Response> {
        let req = self
            .api_request(reqwest::Method::PUT, url, bearer)?
            .json(body);
        self.send(url, req).await
    }

    async fn send(&self, url: &str, req: reqwest::RequestBuilder) -> Result<Response> {
        self.send_classified(url, req).await.map_err(Error::from)
    }

    async fn send_classified(
        &self,
        url: &str,
        req: reqwest::RequestBuilder,
    ) -> std::result::Result<Response, SendError> {
        let resp = req.send().await.map_err(|e| transport_error(url, &e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(url, &e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(SendError::Other(Error::Protocol {
                    url: url.to_owned(),
                    reason: "the response is too large".to_owned(),
                }));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            url: url.to_owned(),
            status,
            body,
            retry_after,
        })
    }
}

/// Why a request got no complete answer.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The request never left: DNS, connection refused, TLS set-up, connect timeout.
    NotSent(Error),
    /// The request may have reached the server, which may have acted on it, but its answer was
    /// lost: connection reset or closed early, a truncated body, a timeout after connecting.
    AnswerLost(Error),
    /// Anything else (an answer too large, a client that cannot be built).
    Other(Error),
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        match e {
            SendError::NotSent(e) | SendError::AnswerLost(e) | SendError::Other(e) => e,
        }
    }
}

/// Classifies a transport failure: before the request was sent (connect), or after.
fn transport_error(url: &str, e: &reqwest::Error) -> SendError {
    let err = network_error(url, e);
    if e.is_connect() || e.is_builder() {
        SendError::NotSent(err)
    } else if e.is_redirect() {
        SendError::Other(err)
    } else {
        SendError::AnswerLost(err)
    }
}

/// Describes a transport failure by its innermost cause ("Connection refused", "timed out").
fn network_error(url: &str, e: &reqwest::Error) -> Error {
    let reason = if e.is_timeout() {
        "the request timed out".to_owned()
    } else {
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        cause.to_string()
    };
    Error::Network {
        url: url.to_owned(),
        reason,
    }
}

/// Joins a base URL and an absolute path without doubling or losing the slash.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_paths() {
        assert_eq!(join("http://a/", "/v1/me"), "http://a/v1/me");
        assert_eq!(join("http://a/base", "v1/me"), "http://a/base/v1/me");
    }

    #[test]
    fn user_agents() {
        let h = Http::new("latchkey", "1.2.3", Duration::from_secs(1));
        assert_eq!(h.user_agent, "latchkey/1.2.3");
        let h = Http::new("acme", "0.9.0", Duration::from_secs(1));
        assert!(h.user_agent.starts_with("acme/0.9.0 latchkey-client/"));
    }
}
