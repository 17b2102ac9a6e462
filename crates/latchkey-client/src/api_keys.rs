//! API keys for automation: recognising a key before anything is sent, exchanging it for a short
//! access token, and managing keys through the cloud API (`/v1/api-keys`).
//!
//! A CI job sets `<APP>_API_KEY` (or `cloud.api_key`) instead of logging in. The client checks
//! the key's shape and checksum locally, so a truncated or mistyped key fails at once with a
//! useful message and without a network call. It then exchanges the key with the client
//! credentials grant (RFC 6749 §4.4): `client_id` is the key's public id, `client_secret` the
//! whole key, sent with HTTP Basic (§2.3.1). latchkeyd chose that grant over an RFC 8693 token
//! exchange because every OAuth tool speaks it (see `docs/protocol.md`). The access token is
//! kept in memory for the life of the process and never written to disk; there is no refresh
//! token, so when it expires (or the server rejects it) the key is simply exchanged again.
//!
//! Precedence of credentials: `<APP>_TOKEN`, then `<APP>_API_KEY`, then `cloud.api_key`, then
//! the stored login.

use crate::error::{Error, Result};
use crate::http::{Response, join};
use crate::{Client, session};
use latchkey_proto::{
    AccessToken, ApiKeyInfo, ApiKeyList, CreateApiKeyRequest, CreateApiKeyResponse, ErrorCode,
    GRANT_CLIENT_CREDENTIALS, TokenResponse,
};
use std::fmt;

pub use latchkey_proto::api_key::{
    ApiKeyFormatError, BASE62, CHECK_LEN, KEY_LEN, PREFIX, PUBLIC_ID_LEN, check_format, checksum,
    crc32, is_public_id,
};

/// An access token bought with a key is reused while it stays valid for more than this.
const KEY_TOKEN_MARGIN_SECS: i64 = 30;

/// An API key: a secret. `Debug` is redacted, the value is reached through [`ApiKey::secret`],
/// and there is no `Clone`, so a key is not copied around by accident.
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key as given (surrounding whitespace, e.g. a newline from a file, is dropped).
    pub fn new(value: impl Into<String>) -> Self {
        let v: String = value.into();
        Self(v.trim().to_owned())
    }

    /// The key itself. Every call site is a place where the secret leaves its box.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Checks the key's shape and checksum without any network; returns its public id.
    pub fn check(&self) -> std::result::Result<&str, ApiKeyFormatError> {
        check_format(&self.0)
    }

    /// The public id (`lk_` + 16 characters) when the key at least starts like one; it is not
    /// secret and may be shown.
    pub fn public_id(&self) -> Option<&str> {
        let id = self.0.get(..PUBLIC_ID_LEN)?;
        (id.starts_with(PREFIX)
            && id[PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric()))
        .then_some(id)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// The key a client signs in with, where it came from, and the access token it bought (kept in
/// memory only).
#[derive(Debug)]
pub(crate) struct KeyAuth {
    /// `LATCHKEY_API_KEY` or `cloud.api_key`.
    pub source_name: String,
    pub key: ApiKey,
    cache: tokio::sync::Mutex<Option<KeyToken>>,
}

/// An access token obtained with a key, and where the cloud API is.
#[derive(Debug, Clone)]
pub(crate) struct KeyToken {
    pub access_token: AccessToken,
    pub expires_at: Option<i64>,
    pub api_url: String,
    pub download_url: Option<String>,
}

impl KeyAuth {
    pub fn new(source_name: String, key: ApiKey) -> Self {
        Self {
            source_name,
            key,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    fn invalid(&self, problem: ApiKeyFormatError, app: &str) -> Error {
        Error::InvalidApiKey {
            source_name: self.source_name.clone(),
            problem,
            app: app.to_owned(),
        }
    }
}

impl Client {
    /// The access token bought with the API key: the cached one while it is valid, else a new
    /// exchange (`rejected` is a token the server just refused, which forces one).
    pub(crate) async fn api_key_token(
        &self,
        auth: &KeyAuth,
        rejected: Option<&AccessToken>,
    ) -> Result<KeyToken> {
        let public_id = auth
            .key
            .check()
            .map_err(|p| auth.invalid(p, &self.app))?
            .to_owned();
        let mut cache = auth.cache.lock().await;
        if let Some(t) = cache.as_ref() {
            let fresh = t
                .expires_at
                .is_none_or(|e| e - session::now() > KEY_TOKEN_MARGIN_SECS);
            if fresh && rejected.is_none_or(|r| *r != t.access_token) {
                return Ok(t.clone());
            }
        }
        *cache = None;
        let disc = self.discover(&crate::Overrides::default()).await?;
        let token_endpoint =
            disc.metadata
                .token_endpoint
                .clone()
                .ok_or_else(|| Error::Discovery {
                    issuer: disc.issuer.clone(),
                    reason: "the metadata has no token_endpoint".to_owned(),
                })?;
        let resp = self
            .http
            .post_form_basic(
                &token_endpoint,
                (&public_id, auth.key.secret()),
                &[("grant_type", GRANT_CLIENT_CREDENTIALS)],
            )
            .await?;
        let tr = exchange_result(&resp, auth, &public_id, &self.app)?;
        if !tr.token_type.eq_ignore_ascii_case("bearer") {
            return Err(Error::Protocol {
                url: token_endpoint,
                reason: format!(
                    "token type `{}` is not supported (only Bearer)",
                    tr.token_type
                ),
            });
        }
        let now = session::now();
        let token = KeyToken {
            access_token: tr.access_token,
            expires_at: tr
                .expires_in
                .map(|s| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX))),
            api_url: disc
                .api_url
                .or(disc.cloud_url)
                .unwrap_or_else(|| disc.issuer.clone()),
            download_url: disc.download_url,
        };
        *cache = Some(token.clone());
        Ok(token)
    }

    /// The public id of the API key in use, when the client signs in with one (and no
    /// `<APP>_TOKEN` overrides it).
    pub fn api_key_id(&self) -> Option<&str> {
        match (&self.env_token, &self.api_key) {
            (None, Some(k)) => k.key.public_id(),
            _ => None,
        }
    }

    /// Creates an API key (`POST /v1/api-keys`). Only a person can: a client that itself uses
    /// an API key gets [`Error::Forbidden`]. The answer holds the key; it is never shown again.
    pub async fn create_api_key(&self, req: &CreateApiKeyRequest) -> Result<CreateApiKeyResponse> {
        let resp = self
            .api_send(Method::Post, "/v1/api-keys", Some(req))
            .await?;
        self.check_write(&resp, "create the API key").await?;
        resp.json()
    }

    /// The API keys the signed-in person may manage (`GET /v1/api-keys`), never with secrets.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        let resp = self
            .api_send::<()>(Method::Get, "/v1/api-keys", None)
            .await?;
        self.check_write(&resp, "list API keys").await?;
        Ok(resp.json::<ApiKeyList>()?.api_keys)
    }

    /// Revokes an API key (`DELETE /v1/api-keys/{id}`) by its public id. Given a whole key (a
    /// leaked one, say), its id is used: the secret is not sent.
    pub async fn revoke_api_key(&self, id_or_key: &str) -> Result<String> {
        let given = id_or_key.trim();
        let id = if given.len() > PUBLIC_ID_LEN && given.starts_with(PREFIX) {
            &given[..PUBLIC_ID_LEN]
        } else {
            given
        };
        if !is_public_id(id) {
            return Err(Error::InvalidValue {
                key: "ID".to_owned(),
                reason: format!(
                    "an API key id is `{PREFIX}` and 16 letters or digits (see `{} api-keys list`)",
                    self.app
                ),
            });
        }
        let path = format!("/v1/api-keys/{id}");
        let resp = self.api_send::<()>(Method::Delete, &path, None).await?;
        self.check_write(&resp, &format!("revoke API key {id}"))
            .await?;
        Ok(id.to_owned())
    }

    /// Turns a failed cloud API answer into an error that names what was attempted. 426 keeps
    /// its own error; 403 `forbidden` becomes [`Error::Forbidden`].
    pub(crate) async fn check_write(&self, resp: &Response, action: &str) -> Result<()> {
        if resp.is_success() {
            return Ok(());
        }
        if resp.status == 426 {
            return self.check_api_response(action, resp, None).await;
        }
        let api_err: Option<latchkey_proto::ApiError> = serde_json::from_slice(&resp.body).ok();
        let (code, message) = match api_err {
            Some(e) => (Some(e.code), Some(e.message)),
            None => (None, None),
        };
        if resp.status == 403 {
            return Err(Error::Forbidden {
                action: action.to_owned(),
                message: message.unwrap_or_else(|| "permission denied".to_owned()),
                api_key_source: self
                    .api_key
                    .as_ref()
                    .filter(|_| self.env_token.is_none())
                    .map(|k| k.source_name.clone()),
                app: self.app.clone(),
            });
        }
        Err(Error::Rejected {
            action: action.to_owned(),
            status: resp.status,
            code,
            message,
            app: self.app.clone(),
        })
    }

    /// Sends a cloud API request with the current credentials; on 401 gets a new token once
    /// (refresh, or a new exchange of the API key) and retries.
    pub(crate) async fn api_send<B: serde::Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Response> {
        let (api, _) = self.api_base().await?;
        let url = join(&api, path);
        let token = self.access_token().await?;
        let resp = self.send_with(method, &url, &token, body).await?;
        if resp.status != 401 || self.env_token.is_some() {
            return Ok(resp);
        }
        let retry = match &self.api_key {
            Some(k) => self.api_key_token(k, Some(&token)).await?.access_token,
            None => {
                session::fresh_credentials(
                    &self.http,
                    &self.credential_store(),
                    &self.app,
                    Some(&token),
                )
                .await?
                .access_token
            }
        };
        self.send_with(method, &url, &retry, body).await
    }

    async fn send_with<B: serde::Serialize + ?Sized>(
        &self,
        method: Method,
        url: &str,
        token: &AccessToken,
        body: Option<&B>,
    ) -> Result<Response> {
        let bearer = Some(token.secret());
        match (method, body) {
            (Method::Get, _) => self.http.get(url, bearer).await,
            (Method::Delete, _) => self.http.delete(url, bearer).await,
            (Method::Post, Some(b)) => self.http.post_json(url, bearer, b).await,
            (Method::Post, None) => self.http.post_json(url, bearer, &()).await,
            (Method::Put, Some(b)) => self.http.put_json(url, bearer, b).await,
            (Method::Put, None) => self.http.put_json(url, bearer, &()).await,
        }
    }
}

/// HTTP methods of the cloud API calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// The token endpoint's answer to an exchange. `invalid_client` means the key itself was
/// refused (revoked, expired, unknown): the server's description names the key by id and name.
fn exchange_result(
    resp: &Response,
    auth: &KeyAuth,
    public_id: &str,
    app: &str,
) -> Result<TokenResponse> {
    if resp.is_success() {
        return resp.json();
    }
    let secret = auth.key.secret();
    // A server must never echo a secret, but a message that reaches a CI log is cut just in case.
    let clean = |d: String| d.replace(secret, "[redacted]");
    match resp.oauth_error() {
        Some(e) if e.error == ErrorCode::InvalidClient || resp.status == 401 => {
            Err(Error::ApiKeyRejected {
                source_name: auth.source_name.clone(),
                key_id: public_id.to_owned(),
                reason: e.error_description.map(clean),
                app: app.to_owned(),
            })
        }
        Some(e) => Err(Error::OAuth {
            code: e.error,
            description: e.error_description.map(clean),
        }),
        None if resp.status == 401 => Err(Error::ApiKeyRejected {
            source_name: auth.source_name.clone(),
            key_id: public_id.to_owned(),
            reason: None,
            app: app.to_owned(),
        }),
        None => Err(resp.unexpected()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A well-formed key built the way latchkeyd builds them.
    fn key_with(id: &str, secret: &str) -> String {
        let body = format!("{PREFIX}{id}{secret}");
        format!("{body}{}", checksum(&body))
    }

    fn sample() -> String {
        key_with(
            "AbCdEfGh12345678",
            "s3cr3tS3CR3Ts3cr3tS3CR3Ts3cr3tS3CR3Ts3cr3tX",
        )
    }

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn checksum_is_six_base62_digits() {
        // 0xCBF43926 = 3421780262, in base62 digits.
        assert_eq!(checksum("123456789"), "3jZRME");
        for body in ["", "lk_", "lk_AAAA"] {
            let c = checksum(body);
            assert_eq!(c.len(), CHECK_LEN);
            assert!(c.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn well_formed_keys_pass() {
        let k = sample();
        assert_eq!(k.len(), KEY_LEN);
        assert_eq!(check_format(&k), Ok("lk_AbCdEfGh12345678"));
        let key = ApiKey::new(format!("  {k}\n"));
        assert_eq!(key.check(), Ok("lk_AbCdEfGh12345678"));
        assert_eq!(key.public_id(), Some("lk_AbCdEfGh12345678"));
    }

    #[test]
    fn every_single_typo_is_caught() {
        let k = sample();
        let bytes = k.as_bytes();
        for i in PREFIX.len()..KEY_LEN {
            for &c in BASE62 {
                if c == bytes[i] {
                    continue;
                }
                let mut t = bytes.to_vec();
                t[i] = c;
                let typo = String::from_utf8(t).unwrap();
                assert_eq!(
                    check_format(&typo),
                    Err(ApiKeyFormatError::Checksum),
                    "position {i}"
                );
            }
        }
        // Two neighbours swapped.
        let mut t = bytes.to_vec();
        t.swap(30, 31);
        if t != bytes {
            assert_eq!(
                check_format(&String::from_utf8(t).unwrap()),
                Err(ApiKeyFormatError::Checksum)
            );
        }
    }

    #[test]
    fn shapes_are_explained() {
        let k = sample();
        assert_eq!(check_format(""), Err(ApiKeyFormatError::Empty));
        assert_eq!(check_format("ghp_abcdef"), Err(ApiKeyFormatError::NotAKey));
        assert_eq!(
            check_format(&k[..KEY_LEN - 1]),
            Err(ApiKeyFormatError::WrongLength { len: 67 })
        );
        assert_eq!(
            check_format(&format!("{k}x")),
            Err(ApiKeyFormatError::WrongLength { len: 69 })
        );
        assert_eq!(
            check_format(&format!("{}-{}", &k[..20], &k[21..])),
            Err(ApiKeyFormatError::BadCharacter)
        );
        let msg = ApiKeyFormatError::WrongLength { len: 67 }.to_string();
        assert!(msg.contains("67") && msg.contains("68"), "{msg}");
    }

    #[test]
    fn debug_and_errors_never_show_the_key() {
        let k = sample();
        let key = ApiKey::new(k.clone());
        assert_eq!(format!("{key:?}"), "ApiKey([redacted])");
        let e = Error::InvalidApiKey {
            source_name: "LATCHKEY_API_KEY".into(),
            problem: ApiKeyFormatError::Checksum,
            app: "latchkey".into(),
        };
        let shown = format!("{e} {e:?} {}", e.hint().unwrap_or_default());
        assert!(!shown.contains(&k[PUBLIC_ID_LEN..]), "{shown}");
        assert!(shown.contains("LATCHKEY_API_KEY") && shown.contains("typo"));
    }

    #[test]
    fn public_ids() {
        assert!(is_public_id("lk_AbCdEfGh12345678"));
        assert!(!is_public_id("lk_AbCdEfGh1234567"));
        assert!(!is_public_id("xx_AbCdEfGh12345678"));
        assert_eq!(ApiKey::new("nope").public_id(), None);
    }
}
