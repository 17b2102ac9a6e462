//! Keeping a session alive: a valid access token from the cache, a refresh under the file lock
//! when it is about to expire (or was rejected), and revocation at logout.
//!
//! The rule that makes concurrent processes safe with rotating refresh tokens: read without a
//! lock; if a refresh looks needed, take the exclusive lock, *re-read* the file, and refresh only
//! if it is still needed. Whoever waited behind the lock finds the fresh tokens the first process
//! wrote and uses them, so one refresh happens and nobody spends a dead refresh token.

use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::http::{Http, Response, SendError};
use crate::store::CredentialStore;
use latchkey_proto::{AccessToken, ErrorCode, GRANT_REFRESH_TOKEN, TokenResponse};
use std::time::{Duration, Instant};

/// A cached access token is used only while it stays valid for more than this many seconds.
pub const REFRESH_MARGIN_SECS: i64 = 60;

/// Attempts at one refresh whose answer is lost in transit (the first included).
const REFRESH_ATTEMPTS: usize = 4;

/// The pause before each retry of a refresh whose answer was lost.
const REFRESH_BACKOFF: [Duration; REFRESH_ATTEMPTS - 1] = [
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_millis(1000),
];

/// How long one refresh attempt may take (capped by the client's timeout).
const REFRESH_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// No retry starts later than this after the first attempt: well inside latchkeyd's refresh
/// grace window (30 s by default), within which the server answers a re-presented refresh token
/// with the same successor instead of treating it as stolen.
const REFRESH_RETRY_WINDOW: Duration = Duration::from_secs(20);

/// The current time in unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Whether `creds` must be refreshed at `now`: expiring within the margin, or the token the server
/// just rejected (`rejected`) is still the one on file.
pub fn needs_refresh(creds: &Credentials, rejected: Option<&AccessToken>, now: i64) -> bool {
    match rejected {
        Some(r) => creds.access_token == *r,
        None => !creds.valid_for_more_than(REFRESH_MARGIN_SECS, now),
    }
}

/// Stores a token response into the credentials (the refresh token is kept when the server does
/// not rotate it).
pub fn apply_token_response(creds: &mut Credentials, tr: TokenResponse, now: i64) {
    creds.access_token = tr.access_token;
    if let Some(rt) = tr.refresh_token {
        creds.refresh_token = Some(rt);
    }
    creds.expires_at = tr
        .expires_in
        .map(|s| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX)));
    if tr.scope.is_some() {
        creds.scope = tr.scope;
    }
    creds.token_type = tr.token_type;
}

/// Credentials whose access token is usable, refreshing under the lock if needed. `rejected` is
/// the access token a server just answered 401 to, which forces a refresh unless another process
/// already replaced it.
pub(crate) async fn fresh_credentials(
    http: &Http,
    store: &CredentialStore,
    app: &str,
    rejected: Option<&AccessToken>,
) -> Result<Credentials> {
    let not_signed_in = || Error::NotSignedIn {
        app: app.to_owned(),
    };
    let creds = store.load()?.ok_or_else(not_signed_in)?;
    if !needs_refresh(&creds, rejected, now()) {
        return Ok(creds);
    }
    let _lock = store.lock().await?;
    let mut creds = store.load()?.ok_or_else(not_signed_in)?;
    if !needs_refresh(&creds, rejected, now()) {
        tracing::debug!("another process refreshed the session");
        return Ok(creds);
    }
    let t = now();
    match refresh(http, &creds, app).await {
        Ok(tr) => {
            apply_token_response(&mut creds, tr, t);
            creds.refreshed_at = Some(t);
            store.save(&creds)?;
            Ok(creds)
        }
        // Offline, but the cached token is still good for a while: use it.
        Err(Error::Network { .. }) if rejected.is_none() && creds.valid_for_more_than(0, now()) => {
            Ok(creds)
        }
        Err(e) => Err(e),
    }
}

/// Refreshes now, whatever the token's expiry, under the lock, after a change at the server that
/// only a new token carries (a switch of the active org). `update` edits the credentials before
/// they are saved. Returns whether a new token was obtained: `false` (with `update` applied)
/// when there is no refresh token to use.
pub(crate) async fn force_refresh(
    http: &Http,
    store: &CredentialStore,
    app: &str,
    update: impl FnOnce(&mut Credentials),
) -> Result<bool> {
    let _lock = store.lock().await?;
    let mut creds = store.load()?.ok_or_else(|| Error::NotSignedIn {
        app: app.to_owned(),
    })?;
    let refreshed = if creds.refresh_token.is_some() {
        let t = now();
        let tr = refresh(http, &creds, app).await?;
        apply_token_response(&mut creds, tr, t);
        creds.refreshed_at = Some(t);
        true
    } else {
        false
    };
    update(&mut creds);
    store.save(&creds)?;
    Ok(refreshed)
}

/// The refresh request (RFC 6749 §6). A rejected grant means the session is over.
async fn refresh(http: &Http, creds: &Credentials, app: &str) -> Result<TokenResponse> {
    let expired = || Error::SessionExpired {
        app: app.to_owned(),
    };
    let Some(rt) = &creds.refresh_token else {
        return Err(expired());
    };
    let form = [
        ("grant_type", GRANT_REFRESH_TOKEN),
        ("refresh_token", rt.secret()),
        ("client_id", creds.client_id.as_str()),
    ];
    let resp = post_refresh(http, &creds.token_endpoint, &form).await?;
    if resp.is_success() {
        return resp.json();
    }
    match resp.oauth_error() {
        Some(e)
            if matches!(
                e.error,
                ErrorCode::InvalidGrant | ErrorCode::InvalidToken | ErrorCode::InvalidClient
            ) =>
        {
            Err(expired())
        }
        Some(e) => Err(Error::OAuth {
            code: e.error,
            description: e.error_description,
        }),
        None if resp.status == 401 => Err(expired()),
        None => Err(resp.unexpected()),
    }
}

/// Sends the refresh request, retrying with the same refresh token, a bounded number of times,
/// when the answer was lost after the request may have reached the server (connection reset or
/// closed, truncated answer, timeout). The server may then have rotated the token already; only
/// re-presenting it inside its grace window gets the successor, and the caller still holds the
/// credentials lock, so no other process spends the old token meanwhile. Failures before the
/// request left (connection refused, DNS) and every HTTP answer, errors included, are returned
/// at once.
async fn post_refresh(http: &Http, endpoint: &str, form: &[(&str, &str)]) -> Result<Response> {
    let started = Instant::now();
    let mut backoff = REFRESH_BACKOFF.iter();
    loop {
        match http
            .post_form_attempt(endpoint, form, REFRESH_ATTEMPT_TIMEOUT)
            .await
        {
            Ok(resp) => return Ok(resp),
            Err(SendError::AnswerLost(e)) => match backoff.next() {
                Some(&pause) if started.elapsed() + pause < REFRESH_RETRY_WINDOW => {
                    // The error names the endpoint and the transport failure, never the token.
                    tracing::debug!(error = %e, "the refresh answer was lost; retrying");
                    tokio::time::sleep(pause).await;
                }
                _ => return Err(e),
            },
            Err(e) => return Err(e.into()),
        }
    }
}

/// What happened to the server-side session at logout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The server revoked it (RFC 7009 §2.2).
    Revoked,
    /// The server has no revocation endpoint; the tokens stay valid until they expire.
    NotSupported,
    /// The server could not be reached or refused; the reason says which.
    Failed(String),
    /// Nothing to revoke (e.g. the file was corrupt).
    NotAttempted,
}

/// Revokes the session (best effort): the refresh token if there is one, else the access token.
pub(crate) async fn revoke(http: &Http, creds: &Credentials) -> Revocation {
    let Some(endpoint) = &creds.revocation_endpoint else {
        return Revocation::NotSupported;
    };
    let (token, hint) = match &creds.refresh_token {
        Some(rt) => (rt.secret(), "refresh_token"),
        None => (creds.access_token.secret(), "access_token"),
    };
    let form = [
        ("token", token),
        ("token_type_hint", hint),
        ("client_id", creds.client_id.as_str()),
    ];
    match http.post_form(endpoint, &form).await {
        Ok(r) if r.is_success() => Revocation::Revoked,
        Ok(r) => Revocation::Failed(r.unexpected().to_string()),
        Err(e) => Revocation::Failed(e.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::credentials::tests::sample;
    use latchkey_proto::RefreshToken;

    #[test]
    fn refresh_decision() {
        let c = sample(); // expires_at 1000
        assert!(!needs_refresh(&c, None, 900));
        assert!(needs_refresh(&c, None, 941));
        assert!(needs_refresh(&c, Some(&AccessToken::new("at-secret")), 0));
        // Someone else already replaced the rejected token: no refresh.
        assert!(!needs_refresh(&c, Some(&AccessToken::new("older")), 0));
    }

    /// What the stub token endpoint does with one request.
    #[derive(Clone, Copy)]
    enum Act {
        /// Reads the request, then closes without a byte of answer.
        Close,
        /// Reads the request, then resets the connection.
        Reset,
        /// Reads the request and never answers.
        Hang,
        /// Answers with this status and body.
        Answer(u16, &'static str),
    }

    /// Reads one HTTP request (head and `content-length` body); returns its body.
    async fn read_request(s: &mut tokio::net::TcpStream) -> String {
        use tokio::io::AsyncReadExt;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    return String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                }
            }
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "request cut short");
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// A token endpoint that plays `script`, one act per connection (the last one repeats).
    /// Returns its URL and the request bodies it received.
    async fn stub(script: Vec<Act>) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/oauth/token", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut hung = Vec::new();
            for i in 0.. {
                let (mut s, _) = listener.accept().await.unwrap();
                let body = read_request(&mut s).await;
                log.lock().unwrap().push(body);
                match script[i.min(script.len() - 1)] {
                    Act::Close => drop(s),
                    Act::Reset => {
                        s.set_zero_linger().unwrap();
                        drop(s);
                    }
                    Act::Hang => hung.push(s),
                    Act::Answer(status, body) => {
                        let resp = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        s.write_all(resp.as_bytes()).await.unwrap();
                    }
                }
            }
        });
        (url, seen)
    }

    fn creds_for(url: &str) -> Credentials {
        let mut c = sample();
        c.token_endpoint = url.to_owned();
        c
    }

    const TOKEN_OK: &str = r#"{"access_token":"new-at","token_type":"Bearer","expires_in":60,"refresh_token":"new-rt"}"#;

    #[tokio::test]
    async fn lost_refresh_answers_are_retried_with_the_same_token() {
        let (url, seen) = stub(vec![
            Act::Close,
            Act::Reset,
            Act::Hang,
            Act::Answer(200, TOKEN_OK),
        ])
        .await;
        let http = Http::new("latchkey", "1.0.0", Duration::from_millis(500));
        let tr = refresh(&http, &creds_for(&url), "latchkey").await.unwrap();
        assert_eq!(tr.refresh_token.unwrap().secret(), "new-rt");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), REFRESH_ATTEMPTS);
        assert!(seen[0].contains("refresh_token=lkr_secret"), "{}", seen[0]);
        assert!(seen.iter().all(|b| *b == seen[0]), "{seen:?}");
    }

    #[tokio::test]
    async fn refresh_retries_are_bounded() {
        let (url, seen) = stub(vec![Act::Close]).await;
        let http = Http::new("latchkey", "1.0.0", Duration::from_secs(5));
        let err = refresh(&http, &creds_for(&url), "latchkey")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Network { .. }), "{err:?}");
        assert!(!err.to_string().contains("lkr_secret"));
        assert_eq!(seen.lock().unwrap().len(), REFRESH_ATTEMPTS);
    }

    #[tokio::test]
    async fn http_errors_and_refused_connections_are_not_retried() {
        let http = Http::new("latchkey", "1.0.0", Duration::from_secs(5));
        let (url, seen) = stub(vec![Act::Answer(
            400,
            r#"{"error":"invalid_grant","error_description":"spent"}"#,
        )])
        .await;
        let err = refresh(&http, &creds_for(&url), "latchkey")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::SessionExpired { .. }), "{err:?}");
        assert_eq!(seen.lock().unwrap().len(), 1);

        let (url, seen) = stub(vec![Act::Answer(503, "{}")]).await;
        let err = refresh(&http, &creds_for(&url), "latchkey")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
        assert_eq!(seen.lock().unwrap().len(), 1);

        // Nothing listens: the request never left, so there is nothing to recover.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = Instant::now();
        let url = format!("http://127.0.0.1:{port}/oauth/token");
        let err = refresh(&http, &creds_for(&url), "latchkey")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Network { .. }), "{err:?}");
        assert!(started.elapsed() < REFRESH_BACKOFF[0], "not retried");
    }

    #[test]
    fn token_response_rotation() {
        let mut c = sample();
        let tr = TokenResponse {
            access_token: AccessToken::new("new-at"),
            token_type: "Bearer".into(),
            expires_in: Some(3600),
            refresh_token: Some(RefreshToken::new("new-rt")),
            scope: None,
            id_token: None,
        };
        apply_token_response(&mut c, tr, 100);
        assert_eq!(c.access_token.secret(), "new-at");
        assert_eq!(c.refresh_token.as_ref().map(|r| r.secret()), Some("new-rt"));
        assert_eq!(c.expires_at, Some(3700));
        assert_eq!(c.scope.as_deref(), Some("openid"));
        // A server that does not rotate: the old refresh token stays.
        let tr = TokenResponse {
            access_token: AccessToken::new("newer-at"),
            token_type: "Bearer".into(),
            expires_in: None,
            refresh_token: None,
            scope: None,
            id_token: None,
        };
        apply_token_response(&mut c, tr, 200);
        assert_eq!(c.refresh_token.as_ref().map(|r| r.secret()), Some("new-rt"));
        assert_eq!(c.expires_at, None);
    }
}
