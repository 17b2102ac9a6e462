//! Browser sign-in with a loopback redirect: the authorization code grant (RFC 6749 §4.1) with
//! PKCE S256 (RFC 7636) for a native app (RFC 8252).
//!
//! The CLI listens on `127.0.0.1` on a port the OS picks, sends the browser to the
//! authorization endpoint with `redirect_uri=http://127.0.0.1:{port}/callback`, a fresh code
//! challenge and a random `state`, and waits for the browser to come back. Only `GET /callback`
//! is answered; anything else gets a 404 and the wait goes on. The callback is checked before
//! the code is used: `state` must match (RFC 6749 §10.12, a mismatch aborts), and `iss` must name
//! the issuer the login started with (RFC 9207 §2.4). The browser gets a small page saying how it
//! went; the terminal says the rest.
//!
//! Every connection is handled by a task of a `JoinSet` owned by the [`LoopbackServer`], so when
//! the login ends (done, failed, timed out, or the future dropped on Ctrl-C) the listener and
//! every connection are closed with it.

use crate::discovery::same_issuer;
use crate::error::{Error, Result};
use crate::http::Http;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_proto::{ErrorCode, GRANT_AUTHORIZATION_CODE, TokenResponse, methods};
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The only path the loopback server answers (the server accepts exactly this path).
pub const CALLBACK_PATH: &str = "/callback";
/// How long the CLI waits for the browser by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Largest request head read from the browser.
const MAX_HEAD: usize = 16 * 1024;
/// How long one connection may take to send its request head (browsers pre-open idle
/// connections; they must not hold anything up).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

fn random_bytes<const N: usize>(app: &str) -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| Error::Loopback {
        reason: format!("the operating system gave no random numbers ({e})"),
        app: app.to_owned(),
    })?;
    Ok(b)
}

/// A PKCE code verifier (RFC 7636 §4.1): 43 to 128 unreserved characters, here 32 random bytes
/// in base64url (43 characters). Secret until the token request; `Debug` is redacted and there is
/// no `Clone`.
pub struct PkceVerifier(String);

impl PkceVerifier {
    /// A fresh verifier with 256 bits of randomness.
    pub fn generate() -> Result<Self> {
        Ok(Self(
            URL_SAFE_NO_PAD.encode(random_bytes::<32>("latchkey")?),
        ))
    }

    /// A given verifier, if it has the RFC 7636 §4.1 form.
    pub fn new(value: impl Into<String>) -> Option<Self> {
        let v = value.into();
        let ok = (43..=128).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        ok.then_some(Self(v))
    }

    /// The verifier itself, sent only in the token request.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// The S256 code challenge: `BASE64URL(SHA256(ASCII(verifier)))` (RFC 7636 §4.2).
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PkceVerifier([redacted])")
    }
}

/// The `state` of one authorization request (RFC 6749 §10.12): 128 random bits, base64url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfState(String);

impl CsrfState {
    /// A fresh, unguessable state.
    pub fn generate() -> Result<Self> {
        Ok(Self(
            URL_SAFE_NO_PAD.encode(random_bytes::<16>("latchkey")?),
        ))
    }

    /// The value sent in the authorization request.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `returned` is this state, compared in constant time.
    pub fn matches(&self, returned: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), returned.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// An authorization code from the callback (RFC 6749 §4.1.2). Single use, short-lived, but a
/// secret until exchanged: `Debug` is redacted.
pub struct AuthorizationCode(String);

impl AuthorizationCode {
    /// The code itself.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthorizationCode([redacted])")
    }
}

/// What to show the user when the browser sign-in starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserPrompt {
    /// The authorization URL to open in a browser (print it too, for copying).
    pub url: String,
    /// Where the browser will come back (`http://127.0.0.1:PORT/callback`).
    pub redirect_uri: String,
    /// How long the CLI waits.
    pub timeout: Duration,
}

/// The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3).
#[derive(Debug, Clone)]
pub struct AuthorizationRequest<'a> {
    /// The authorization endpoint from the metadata.
    pub endpoint: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// The loopback redirect URI.
    pub redirect_uri: &'a str,
    /// The state.
    pub state: &'a CsrfState,
    /// The S256 code challenge.
    pub code_challenge: &'a str,
    /// The scope, if any.
    pub scope: Option<&'a str>,
    /// latchkey's `device_name` extension: the session's name (other servers ignore it).
    pub device_name: Option<&'a str>,
}

/// The authorization URL: the endpoint with the request's parameters appended to any query it
/// already has.
pub fn authorization_url(req: &AuthorizationRequest<'_>) -> Result<String> {
    let mut u = url::Url::parse(req.endpoint).map_err(|e| Error::Protocol {
        url: req.endpoint.to_owned(),
        reason: format!("the authorization endpoint is not a URL ({e})"),
    })?;
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", req.client_id)
            .append_pair("redirect_uri", req.redirect_uri)
            .append_pair("state", req.state.as_str())
            .append_pair("code_challenge", req.code_challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(s) = req.scope {
            q.append_pair("scope", s);
            // OpenID Connect Core §11: a request for offline_access (a refresh token) asks for
            // consent explicitly; servers such as node-oidc-provider drop the scope otherwise.
            if s.split(' ').any(|x| x == "offline_access") {
                q.append_pair("prompt", "consent");
            }
        }
        if let Some(n) = req.device_name {
            q.append_pair("device_name", n);
        }
    }
    Ok(u.into())
}

/// What came back to the callback (RFC 6749 §4.1.2 and §4.1.2.1, RFC 9207).
#[derive(Debug)]
pub enum Callback {
    /// The user approved: a code to exchange.
    Code {
        /// The authorization code.
        code: AuthorizationCode,
        /// The returned state.
        state: Option<String>,
        /// The issuer identifier (RFC 9207), when the server sends it.
        iss: Option<String>,
    },
    /// The request failed or was denied.
    Error {
        /// The error code (`access_denied` when the user pressed Deny).
        error: ErrorCode,
        /// The server's description.
        description: Option<String>,
        /// The returned state.
        state: Option<String>,
        /// The issuer identifier, when sent.
        iss: Option<String>,
    },
}

/// Parses the query string of a callback request. `Err` says what is missing.
pub fn parse_callback(query: &str) -> std::result::Result<Callback, String> {
    let mut code = None;
    let mut error = None;
    let mut description = None;
    let mut state = None;
    let mut iss = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match k.as_ref() {
            "code" => &mut code,
            "error" => &mut error,
            "error_description" => &mut description,
            "state" => &mut state,
            "iss" => &mut iss,
            _ => continue,
        };
        if slot.is_none() && !v.is_empty() {
            *slot = Some(v.into_owned());
        }
    }
    match (error, code) {
        (Some(e), _) => Ok(Callback::Error {
            error: ErrorCode::parse(&e),
            description,
            state,
            iss,
        }),
        (None, Some(c)) => Ok(Callback::Code {
            code: AuthorizationCode(c),
            state,
            iss,
        }),
        (None, None) => Err("the callback carries neither a code nor an error".to_owned()),
    }
}

/// Checks a callback against the request: the state first (a mismatch aborts whatever the
/// callback says), then the issuer (RFC 9207: when `iss` is sent it must be the issuer; when the
/// server announced it, it must be sent), then the outcome.
pub fn check_callback(
    callback: Callback,
    expected_state: &CsrfState,
    issuer: &str,
    iss_required: bool,
    app: &str,
) -> Result<AuthorizationCode> {
    let (state, iss) = match &callback {
        Callback::Code { state, iss, .. } | Callback::Error { state, iss, .. } => {
            (state.as_deref(), iss.as_deref())
        }
    };
    if !state.is_some_and(|s| expected_state.matches(s)) {
        return Err(Error::StateMismatch {
            app: app.to_owned(),
        });
    }
    match iss {
        Some(i) if !same_issuer(i, issuer) => {
            return Err(Error::ResponseIssuerMismatch {
                expected: issuer.to_owned(),
                found: i.to_owned(),
            });
        }
        None if iss_required => {
            return Err(Error::ResponseIssuerMismatch {
                expected: issuer.to_owned(),
                found: "(none)".to_owned(),
            });
        }
        _ => {}
    }
    match callback {
        Callback::Code { code, .. } => Ok(code),
        Callback::Error {
            error: ErrorCode::AccessDenied,
            ..
        } => Err(Error::AccessDenied),
        Callback::Error {
            error, description, ..
        } => Err(Error::OAuth {
            code: error,
            description,
        }),
    }
}

/// RFC 6749 §4.1.3 with RFC 7636 §4.5: exchanges the code for tokens.
pub(crate) async fn exchange(
    http: &Http,
    token_endpoint: &str,
    client_id: &str,
    code: &AuthorizationCode,
    redirect_uri: &str,
    verifier: &PkceVerifier,
    app: &str,
) -> Result<TokenResponse> {
    let form = [
        ("grant_type", GRANT_AUTHORIZATION_CODE),
        ("code", code.secret()),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier.secret()),
        ("client_id", client_id),
    ];
    super::token_request(
        http,
        token_endpoint,
        &form,
        methods::BROWSER,
        app,
        |description| Error::OAuth {
            code: ErrorCode::InvalidGrant,
            description,
        },
    )
    .await
}

/// The method and request target of an HTTP/1.x request head, e.g. `("GET", "/callback?x=1")`.
pub fn parse_request_line(head: &str) -> Option<(&str, &str)> {
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    (version.starts_with("HTTP/1.") && parts.next().is_none()).then_some((method, target))
}

/// A browser request to the callback path, holding the connection until it is answered.
#[derive(Debug)]
pub(crate) struct Hit {
    /// The query string (without `?`).
    pub query: String,
    stream: TcpStream,
}

impl Hit {
    /// Answers the browser with a page and closes the connection.
    pub async fn respond(mut self, ok: bool, title: &str, message: &str) {
        let status = if ok { "200 OK" } else { "400 Bad Request" };
        let _ = write_page(&mut self.stream, status, &page(ok, title, message)).await;
    }
}

/// The loopback listener of one browser login. Dropping it closes the listener and every
/// connection.
#[derive(Debug)]
pub(crate) struct LoopbackServer {
    listener: TcpListener,
    redirect_uri: String,
    tasks: JoinSet<()>,
    tx: mpsc::Sender<Hit>,
    rx: mpsc::Receiver<Hit>,
}

impl LoopbackServer {
    /// Binds `127.0.0.1:0` (or `[::1]:0` where there is no IPv4 loopback).
    pub async fn bind(app: &str) -> Result<Self> {
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let listener = match TcpListener::bind(v4).await {
            Ok(l) => l,
            Err(e4) => TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0)))
                .await
                .map_err(|e6| Error::Loopback {
                    reason: format!("{e4}; on [::1]: {e6}"),
                    app: app.to_owned(),
                })?,
        };
        let addr = listener.local_addr().map_err(|e| Error::Loopback {
            reason: e.to_string(),
            app: app.to_owned(),
        })?;
        let redirect_uri = match addr {
            SocketAddr::V4(a) => format!("http://{}:{}{CALLBACK_PATH}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("http://[{}]:{}{CALLBACK_PATH}", a.ip(), a.port()),
        };
        let (tx, rx) = mpsc::channel(4);
        Ok(Self {
            listener,
            redirect_uri,
            tasks: JoinSet::new(),
            tx,
            rx,
        })
    }

    /// The redirect URI to send in the authorization request.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Serves connections until a request to the callback path arrives (`Some`) or the
    /// deadline passes (`None`). Other requests are answered 404 and do not end the wait.
    pub async fn next_callback(&mut self, deadline: Instant) -> Option<Hit> {
        loop {
            while self.tasks.try_join_next().is_some() {}
            tokio::select! {
                hit = self.rx.recv() => return hit,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let tx = self.tx.clone();
                        self.tasks.spawn(serve(stream, tx));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "accept failed on the loopback listener");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }
}

/// One connection: read the request head; hand a callback to the login, answer anything else
/// with 404.
async fn serve(mut stream: TcpStream, tx: mpsc::Sender<Hit>) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(h)) => h,
        _ => return,
    };
    let target = match parse_request_line(&head) {
        Some(("GET", target)) => target.to_owned(),
        Some(_) => {
            let _ = write_page(
                &mut stream,
                "405 Method Not Allowed",
                &page(
                    false,
                    "Not here",
                    "This address only answers the sign-in callback.",
                ),
            )
            .await;
            return;
        }
        None => return,
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q.to_owned()),
        None => (target.as_str(), String::new()),
    };
    if path != CALLBACK_PATH {
        let _ = write_page(
            &mut stream,
            "404 Not Found",
            &page(
                false,
                "Not found",
                "This address only answers the sign-in callback.",
            ),
        )
        .await;
        return;
    }
    let _ = tx.send(Hit { query, stream }).await;
}

async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return String::from_utf8(buf).ok();
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    }
}

async fn write_page(stream: &mut TcpStream, status: &str, html: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Cache-Control: no-store\r\n\
         Referrer-Policy: no-referrer\r\n\
         X-Frame-Options: DENY\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n\
         Connection: close\r\n\r\n",
        html.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(html.as_bytes()).await?;
    stream.flush().await?;
    stream.shutdown().await
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// The small page the browser lands on.
pub fn page(ok: bool, title: &str, message: &str) -> String {
    let (mark, color) = if ok {
        ("&#10003;", "#1a7f37")
    } else {
        ("&#10007;", "#cf222e")
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1f2328}}\
         h1{{font-size:1.4rem}} .mark{{color:{color};font-size:2rem}} p{{line-height:1.5}}\
         </style></head><body><div class=\"mark\">{mark}</div><h1>{title}</h1><p>{message}</p>\
         <p>You can close this tab and return to the terminal.</p></body></html>\n",
        title = escape(title),
        message = escape(message),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let v = PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(v.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(format!("{v:?}"), "PkceVerifier([redacted])");
    }

    #[test]
    fn generated_verifiers_are_valid_and_distinct() {
        let a = PkceVerifier::generate().unwrap();
        let b = PkceVerifier::generate().unwrap();
        assert_eq!(a.secret().len(), 43);
        assert!(PkceVerifier::new(a.secret()).is_some());
        assert_ne!(a.secret(), b.secret());
        assert_eq!(a.challenge().len(), 43);
        assert!(PkceVerifier::new("short").is_none());
        assert!(PkceVerifier::new("a".repeat(129)).is_none());
        assert!(PkceVerifier::new(format!("{}+", "a".repeat(43))).is_none());
    }

    #[test]
    fn state_generation_and_comparison() {
        let s = CsrfState::generate().unwrap();
        let t = CsrfState::generate().unwrap();
        assert_eq!(s.as_str().len(), 22);
        assert_ne!(s, t);
        assert!(s.matches(s.as_str()));
        assert!(!s.matches(t.as_str()));
        assert!(!s.matches(""));
        assert!(!s.matches(&format!("{}x", s.as_str())));
    }

    #[test]
    fn authorization_url_has_every_parameter() {
        let state = CsrfState("st".into());
        let u = authorization_url(&AuthorizationRequest {
            endpoint: "https://as.example/oauth/authorize?tenant=a",
            client_id: "latchkey-cli",
            redirect_uri: "http://127.0.0.1:5000/callback",
            state: &state,
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            scope: Some("openid email"),
            device_name: Some("my box"),
        })
        .unwrap();
        let parsed = url::Url::parse(&u).unwrap();
        let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(q["tenant"], "a");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:5000/callback");
        assert_eq!(q["state"], "st");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["scope"], "openid email");
        assert_eq!(q["device_name"], "my box");
        assert!(!q.contains_key("prompt"));
    }

    #[test]
    fn callback_parsing() {
        let c = parse_callback("code=abc&state=st&iss=https%3A%2F%2Fas.example").unwrap();
        match c {
            Callback::Code { code, state, iss } => {
                assert_eq!(code.secret(), "abc");
                assert_eq!(format!("{code:?}"), "AuthorizationCode([redacted])");
                assert_eq!(state.as_deref(), Some("st"));
                assert_eq!(iss.as_deref(), Some("https://as.example"));
            }
            other => panic!("{other:?}"),
        }
        let c = parse_callback("error=access_denied&error_description=no+thanks&state=st").unwrap();
        match c {
            Callback::Error {
                error, description, ..
            } => {
                assert_eq!(error, ErrorCode::AccessDenied);
                assert_eq!(description.as_deref(), Some("no thanks"));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_callback("").is_err());
        assert!(parse_callback("state=st&code=").is_err());
    }

    #[test]
    fn callback_checks() {
        let st = CsrfState("good".into());
        let iss = "https://as.example";
        let check = |q: &str, required: bool| {
            check_callback(parse_callback(q).unwrap(), &st, iss, required, "latchkey")
        };
        assert_eq!(check("code=c&state=good", false).unwrap().secret(), "c");
        assert!(check("code=c&state=good&iss=https://as.example/", true).is_ok());
        assert!(matches!(
            check("code=c&state=bad", false),
            Err(Error::StateMismatch { .. })
        ));
        assert!(matches!(
            check("code=c", false),
            Err(Error::StateMismatch { .. })
        ));
        // A wrong state aborts even an error answer.
        assert!(matches!(
            check("error=access_denied&state=bad", false),
            Err(Error::StateMismatch { .. })
        ));
        assert!(matches!(
            check("code=c&state=good&iss=https://evil.example", false),
            Err(Error::ResponseIssuerMismatch { .. })
        ));
        assert!(matches!(
            check("code=c&state=good", true),
            Err(Error::ResponseIssuerMismatch { .. })
        ));
        assert!(matches!(
            check("error=access_denied&state=good", false),
            Err(Error::AccessDenied)
        ));
        assert!(matches!(
            check("error=invalid_scope&state=good", false),
            Err(Error::OAuth {
                code: ErrorCode::InvalidScope,
                ..
            })
        ));
        assert_eq!(
            Error::StateMismatch {
                app: "latchkey".into()
            }
            .to_string(),
            "State mismatch — aborting to prevent CSRF"
        );
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request_line("GET /callback?code=1 HTTP/1.1\r\nHost: x"),
            Some(("GET", "/callback?code=1"))
        );
        assert_eq!(parse_request_line("GET /x"), None);
        assert_eq!(parse_request_line("PRI * HTTP/2.0"), None);
    }

    #[test]
    fn pages_escape() {
        let p = page(false, "Sign-in failed", "<script>x</script>");
        assert!(p.contains("&lt;script&gt;") && !p.contains("<script>"));
        assert!(p.contains("close this tab"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn server_answers_only_the_callback() {
        let mut server = LoopbackServer::bind("latchkey").await.unwrap();
        let uri = server.redirect_uri().to_owned();
        assert!(uri.starts_with("http://127.0.0.1:") && uri.ends_with("/callback"));
        let base = uri.trim_end_matches(CALLBACK_PATH).to_owned();
        let addr = base.trim_start_matches("http://").to_owned();
        let client = tokio::spawn(async move {
            let get = |path: String| {
                let addr = addr.clone();
                async move {
                    let mut s = TcpStream::connect(&addr).await.unwrap();
                    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                        .await
                        .unwrap();
                    let mut out = String::new();
                    s.read_to_string(&mut out).await.unwrap();
                    out
                }
            };
            // An idle connection (a browser's pre-connect) holds nothing up.
            let _idle = TcpStream::connect(&addr).await.unwrap();
            let stray = get("/favicon.ico".into()).await;
            assert!(stray.starts_with("HTTP/1.1 404"), "{stray}");
            get("/callback?code=c&state=s".into()).await
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let hit = server.next_callback(deadline).await.unwrap();
        assert_eq!(hit.query, "code=c&state=s");
        hit.respond(true, "Signed in", "Signed in as a@example.com.")
            .await;
        let answer = client.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.contains("Signed in as a@example.com."));
        // Nothing else comes: the deadline ends the wait.
        let soon = Instant::now() + Duration::from_millis(50);
        assert!(server.next_callback(soon).await.is_none());
    }
}
