//! A real OpenID provider for tests: node-oidc-provider from npm, started from
//! `testing/oidc-provider` on `127.0.0.1:0`, and a [`HopBrowser`] that walks its pages one
//! redirect at a time.
//!
//! Two scripts live there: `server.js`, the standard authorization server the client's interop
//! test signs in against (a native public client `latchkey-cli`), and `upstream.js`, the user's
//! identity provider for latchkeyd's upstream federation (a confidential web client
//! [`UPSTREAM_CLIENT_ID`] / [`UPSTREAM_CLIENT_SECRET`] whose redirect URI may be any
//! `http://127.0.0.1:<port>/...`; the login name decides the account, see the script's header).
//!
//! Both need Node.js and `npm ci --prefix testing/oidc-provider`. Without them
//! [`OidcProvider::start_or_skip`] says so and the test passes, unless `LATCHKEY_REQUIRE_INTEROP`
//! is set or `CI=true`, which make it fail.
//!
//! Federation tests tamper with URLs between hops (a swapped `state`, a replayed callback), so
//! [`HopBrowser`] never follows a redirect on its own: every hop is a [`Hop`] the test can
//! inspect, and [`HopBrowser::follow`] and the upstream helpers stop where they are told to.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use reqwest::cookie::Jar;

/// The client id latchkeyd has at `upstream.js`.
pub const UPSTREAM_CLIENT_ID: &str = "latchkey";
/// That client's secret (`client_secret_basic`).
pub const UPSTREAM_CLIENT_SECRET: &str = "upstream-test-secret";

/// A `secret_key` for servers whose organizations store client secrets (64 hex characters).
pub const TEST_SECRET_KEY: &str =
    "6c617463686b6579207465737420736563726574206b65792034207465737473";

/// Path of `testing/oidc-provider`, the npm project with node-oidc-provider and its scripts.
pub fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testing/oidc-provider")
}

/// A node-oidc-provider process (`testing/oidc-provider/<script>`); killed on drop.
pub struct OidcProvider {
    /// The issuer, `http://127.0.0.1:<port>` (no trailing slash).
    pub issuer: String,
    child: Child,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OidcProvider {
    /// Starts `script` (`"server.js"` or `"upstream.js"`) and waits until it listens.
    /// `Err(why)` when Node.js or node-oidc-provider is missing or the script does not start.
    pub fn start(script: &str) -> Result<OidcProvider, String> {
        let dir = provider_dir();
        if !dir.join("node_modules/oidc-provider").is_dir() {
            return Err(
                "node-oidc-provider is not installed; run `npm ci --prefix testing/oidc-provider`"
                    .to_owned(),
            );
        }
        let mut child = Command::new("node")
            .arg(script)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run node ({e}); install Node.js 20+ and run \
                     `npm ci --prefix testing/oidc-provider`"
                )
            })?;
        let mut stderr = child.stderr.take().expect("stderr");
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let read = reader.read_line(&mut line);
        let issuer = match (read, line.trim().strip_prefix("ISSUER ")) {
            (Ok(_), Some(issuer)) => issuer.to_owned(),
            (read, _) => {
                let _ = child.kill();
                let _ = child.wait();
                let mut err = String::new();
                let _ = stderr.read_to_string(&mut err);
                return Err(format!(
                    "node {script} did not start (first line {line:?}, {read:?}); its stderr:\n{err}"
                ));
            }
        };
        // Keep draining both pipes: a closed or full pipe would stop the provider.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Ok(OidcProvider { issuer, child })
    }

    /// Like [`start`](Self::start), but where Node.js or node-oidc-provider is missing: panics
    /// with the reason when `LATCHKEY_REQUIRE_INTEROP` is set (as `scripts/test` does when it
    /// installed them) or `CI=true`, and otherwise prints the reason and returns `None`, so the
    /// test can return early.
    pub fn start_or_skip(script: &str) -> Option<OidcProvider> {
        match Self::start(script) {
            Ok(p) => Some(p),
            Err(why)
                if std::env::var_os("LATCHKEY_REQUIRE_INTEROP").is_none()
                    && std::env::var("CI").as_deref() != Ok("true") =>
            {
                eprintln!("SKIPPED test with node-oidc-provider ({script}): {why}");
                None
            }
            Err(why) => panic!("{why}"),
        }
    }
}

/// A form found on a page: where it posts, its hidden fields, whether it asks for a login.
pub type Form = (String, Vec<(String, String)>, bool);

/// The first `<form>` of an HTML page: its action (with `&amp;` decoded), its hidden fields,
/// and whether it has a `login` input.
pub fn first_form(html: &str) -> Option<Form> {
    let start = html.find("<form")?;
    let end = html[start..].find("</form>")? + start;
    let form = &html[start..end];
    let action = attr(&form[..form.find('>')?], "action")?;
    let mut fields = Vec::new();
    let mut rest = form;
    while let Some(i) = rest.find("<input") {
        let tag_end = rest[i..].find('>').map_or(rest.len(), |j| i + j);
        let tag = &rest[i..tag_end];
        if tag.contains("type=\"hidden\"")
            && let (Some(n), Some(v)) = (attr(tag, "name"), attr(tag, "value"))
        {
            fields.push((n, v));
        }
        rest = &rest[tag_end..];
    }
    let wants_login = form.contains("name=\"login\"");
    Some((action, fields, wants_login))
}

/// The value of attribute `name="..."` in `tag`, with `&amp;` decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let i = tag.find(&key)? + key.len();
    let j = tag[i..].find('"')? + i;
    Some(tag[i..j].replace("&amp;", "&"))
}

/// One answer as a browser received it, before following any redirect.
#[derive(Debug, Clone)]
pub struct Hop {
    /// The HTTP status.
    pub status: u16,
    /// The URL requested.
    pub url: String,
    /// The `Location` header, made absolute against [`url`](Self::url).
    pub location: Option<String>,
    /// The body.
    pub body: String,
}

impl Hop {
    /// Whether this answer is a redirect with somewhere to go.
    pub fn is_redirect(&self) -> bool {
        (300..400).contains(&self.status) && self.location.is_some()
    }

    /// The query parameters of [`location`](Self::location) (empty without one).
    pub fn location_query(&self) -> Vec<(String, String)> {
        self.location
            .as_deref()
            .and_then(|l| url::Url::parse(l).ok())
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default()
    }

    /// The first query parameter `name` of [`location`](Self::location).
    pub fn location_param(&self, name: &str) -> Option<String> {
        self.location_query()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Fails the test, showing where the browser ended and what it saw, unless the URL contains
    /// `needle`.
    #[track_caller]
    pub fn assert_at(&self, needle: &str) {
        assert!(
            self.url.contains(needle),
            "expected a URL with {needle:?}, got {} {}",
            self.url,
            self.body
        );
    }
}

/// At most this many redirects are followed in a row before a test is failed.
const MAX_HOPS: usize = 20;

/// A browser that does not follow redirects by itself: one cookie jar shared by every request,
/// so latchkeyd's and the upstream's cookies are both kept (both are on 127.0.0.1; cookies are
/// not per port, so, as in a real browser, each server also receives the other's cookies).
pub struct HopBrowser {
    /// The HTTP client (the jar below, redirects not followed).
    pub http: reqwest::Client,
    /// The cookies.
    pub jar: Arc<Jar>,
}

impl Default for HopBrowser {
    fn default() -> Self {
        Self::new()
    }
}

impl HopBrowser {
    /// A browser with an empty cookie jar.
    pub fn new() -> Self {
        super::install_crypto();
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self { http, jar }
    }

    /// One GET, no redirect followed.
    pub async fn get(&self, url: &str) -> Hop {
        let r = self
            .http
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        Self::hop(url, r).await
    }

    /// One form POST, no redirect followed.
    pub async fn post_form(&self, url: &str, form: &[(String, String)]) -> Hop {
        let r = self
            .http
            .post(url)
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        Self::hop(url, r).await
    }

    async fn hop(url: &str, r: reqwest::Response) -> Hop {
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(|l| {
                url::Url::parse(url)
                    .and_then(|base| base.join(l))
                    .map_or_else(|_| l.to_owned(), String::from)
            });
        let body = r
            .text()
            .await
            .unwrap_or_else(|e| panic!("body of {url}: {e}"));
        Hop {
            status,
            url: url.to_owned(),
            location,
            body,
        }
    }

    /// Follows redirects (GET) from `hop` until an answer that is not a redirect, or until the
    /// next location starts with `stop_at`: then returns the hop whose location it is, without
    /// requesting it. Panics after 20 redirects.
    pub async fn follow(&self, mut hop: Hop, stop_at: Option<&str>) -> Hop {
        for _ in 0..MAX_HOPS {
            let Some(next) = hop.location.clone().filter(|_| hop.is_redirect()) else {
                return hop;
            };
            if stop_at.is_some_and(|s| next.starts_with(s)) {
                return hop;
            }
            hop = self.get(&next).await;
        }
        panic!("more than {MAX_HOPS} redirects; last hop: {hop:?}");
    }

    /// Signs in at the upstream provider: from `hop`, an answer that is (or redirects, maybe
    /// through more redirects, to) a page of `upstream_issuer`, submits each page's first form
    /// (the sign-in form as `login` with any password, then the consent form) and follows the
    /// redirects after each, until the provider sends the browser elsewhere. From there it goes
    /// on as [`follow`](Self::follow) with `stop_at` (`None`: to the end, through latchkeyd's
    /// callback; `Some(prefix)`: returns the hop whose location starts with `prefix`, e.g.
    /// latchkeyd's callback, unrequested).
    ///
    /// Any page at the upstream that has no form (an error page) fails the test. A browser
    /// that has already signed in and consented there is sent straight back, without pages.
    pub async fn sign_in_upstream(
        &self,
        hop: Hop,
        upstream_issuer: &str,
        login: &str,
        stop_at: Option<&str>,
    ) -> Hop {
        let mut hop = hop;
        for _ in 0..MAX_HOPS {
            let page = match self.to_upstream_page(hop, upstream_issuer).await {
                Ok(page) => page,
                Err(leaving) => return self.follow(leaving, stop_at).await,
            };
            let (action, mut fields, wants_login) = first_form(&page.body).unwrap_or_else(|| {
                panic!(
                    "no form on the upstream's page {} (status {}):\n{}",
                    page.url, page.status, page.body
                )
            });
            if wants_login {
                fields.push(("login".into(), login.into()));
                fields.push(("password".into(), "any".into()));
            }
            hop = self.post_form(&resolve(&page.url, &action), &fields).await;
        }
        panic!("signing in at {upstream_issuer} did not finish after {MAX_HOPS} forms");
    }

    /// Like [`sign_in_upstream`](Self::sign_in_upstream), but presses the upstream page's
    /// `[ Cancel ]` link (node-oidc-provider's `/interaction/<uid>/abort`) instead of signing
    /// in. The provider then sends the browser back to the redirect URI with
    /// `error=access_denied`; from there it goes on as [`follow`](Self::follow) with `stop_at`.
    pub async fn cancel_upstream(
        &self,
        hop: Hop,
        upstream_issuer: &str,
        stop_at: Option<&str>,
    ) -> Hop {
        let page = match self.to_upstream_page(hop, upstream_issuer).await {
            Ok(page) => page,
            Err(leaving) => panic!(
                "the upstream sent the browser back without a page to cancel on: {leaving:?}"
            ),
        };
        let abort = abort_link(&page.body).unwrap_or_else(|| {
            panic!(
                "no cancel link on the upstream's page {}:\n{}",
                page.url, page.body
            )
        });
        let hop = self.get(&resolve(&page.url, &abort)).await;
        match self.to_upstream_page(hop, upstream_issuer).await {
            Ok(page) => panic!(
                "the upstream showed a page after cancel instead of redirecting back: {page:?}"
            ),
            Err(leaving) => self.follow(leaving, stop_at).await,
        }
    }

    /// Follows redirects from `hop` to a page of `upstream` (`Ok`), or to the first redirect that
    /// leaves it after having been there (`Err`, that hop, unrequested). Redirects before the
    /// upstream (latchkeyd sending the browser on) are followed.
    async fn to_upstream_page(&self, mut hop: Hop, upstream: &str) -> Result<Hop, Hop> {
        let mut been_there = same_origin(&hop.url, upstream);
        for _ in 0..MAX_HOPS {
            let Some(next) = hop.location.clone().filter(|_| hop.is_redirect()) else {
                if been_there {
                    return Ok(hop);
                }
                panic!("never reached the upstream {upstream}; ended at {hop:?}");
            };
            let there = same_origin(&next, upstream);
            if been_there && !there {
                return Err(hop);
            }
            been_there |= there;
            hop = self.get(&next).await;
        }
        panic!("more than {MAX_HOPS} redirects; last hop: {hop:?}");
    }
}

/// `reference` (absolute or relative) resolved against `base`.
fn resolve(base: &str, reference: &str) -> String {
    url::Url::parse(base)
        .and_then(|b| b.join(reference))
        .map_or_else(|_| reference.to_owned(), String::from)
}

/// Whether two URLs have the same scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// The `href` of node-oidc-provider's `[ Cancel ]` link (`/interaction/<uid>/abort`).
fn abort_link(html: &str) -> Option<String> {
    let end = html.find("/abort\"")? + "/abort".len();
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    Some(html[start..end].replace("&amp;", "&"))
}

#[cfg(test)]
mod tests {
    //! The harness against `upstream.js`, as latchkeyd will use it: an authorization request
    //! with PKCE and a nonce, sign-in, the code at the token endpoint with HTTP Basic, the
    //! claims in the ID token for each kind of login name; and a cancelled sign-in.

    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use sha2::{Digest, Sha256};

    const CALLBACK: &str = "http://127.0.0.1:9/sso/x/callback";
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    async fn authorize_url(b: &HopBrowser, issuer: &str) -> (String, String) {
        let discovery: serde_json::Value = b
            .http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(discovery["issuer"], issuer);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER));
        let mut url = url::Url::parse(discovery["authorization_endpoint"].as_str().unwrap())
            .expect("authorization endpoint");
        url.query_pairs_mut()
            .append_pair("client_id", UPSTREAM_CLIENT_ID)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid email profile")
            .append_pair("redirect_uri", CALLBACK)
            .append_pair("state", "st-1")
            .append_pair("nonce", "nonce-1")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let token_endpoint = discovery["token_endpoint"].as_str().unwrap().to_owned();
        (url.into(), token_endpoint)
    }

    /// Signs in as `login` in browser `b`, exchanges the code, and returns the ID token's claims.
    async fn sign_in(b: &HopBrowser, upstream: &OidcProvider, login: &str) -> serde_json::Value {
        let (url, token_endpoint) = authorize_url(b, &upstream.issuer).await;
        let first = b.get(&url).await;
        let back = b
            .sign_in_upstream(first, &upstream.issuer, login, Some("http://127.0.0.1:9/"))
            .await;
        assert!(
            back.location.as_deref().unwrap().starts_with(CALLBACK),
            "{back:?}"
        );
        assert_eq!(back.location_param("state").as_deref(), Some("st-1"));
        assert_eq!(
            back.location_param("iss").as_deref(),
            Some(upstream.issuer.as_str())
        );
        let code = back.location_param("code").expect("code");

        let token: serde_json::Value = b
            .http
            .post(&token_endpoint)
            .basic_auth(UPSTREAM_CLIENT_ID, Some(UPSTREAM_CLIENT_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id_token = token["id_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{token}"));
        let payload = id_token.split('.').nth(1).expect("JWS payload");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["iss"], upstream.issuer.as_str(), "{claims}");
        assert_eq!(claims["aud"], UPSTREAM_CLIENT_ID, "{claims}");
        assert_eq!(claims["nonce"], "nonce-1", "{claims}");
        claims
    }

    #[tokio::test]
    async fn sign_in_at_upstream_and_exchange_the_code() {
        let Some(upstream) = OidcProvider::start_or_skip("upstream.js") else {
            return;
        };
        let b = HopBrowser::new();
        let claims = sign_in(&b, &upstream, "alice").await;
        assert_eq!(claims["sub"], "alice", "{claims}");
        assert_eq!(claims["email"], "alice@example.com", "{claims}");
        assert_eq!(claims["email_verified"], true, "{claims}");
        assert_eq!(claims["name"], "Alice", "{claims}");

        // A signed-in browser is sent straight back with a new code, no pages: the login
        // given is not used.
        let claims = sign_in(&b, &upstream, "ignored").await;
        assert_eq!(claims["sub"], "alice", "{claims}");
    }

    #[tokio::test]
    async fn the_login_name_decides_the_account() {
        let Some(upstream) = OidcProvider::start_or_skip("upstream.js") else {
            return;
        };
        let cases = [
            ("bob@corp.test", Some(("bob@corp.test", true))),
            (
                "unverified-carol@corp.test",
                Some(("carol@corp.test", false)),
            ),
            ("unverified-carol", Some(("carol@example.com", false))),
            ("noemail", None),
        ];
        for (login, email) in cases {
            let claims = sign_in(&HopBrowser::new(), &upstream, login).await;
            assert_eq!(claims["sub"], login, "{claims}");
            match email {
                Some((email, verified)) => {
                    assert_eq!(claims["email"], email, "{claims}");
                    assert_eq!(claims["email_verified"], verified, "{claims}");
                }
                None => {
                    assert!(claims.get("email").is_none(), "{claims}");
                    assert!(claims.get("email_verified").is_none(), "{claims}");
                }
            }
        }
    }

    #[tokio::test]
    async fn cancel_at_upstream_is_access_denied() {
        let Some(upstream) = OidcProvider::start_or_skip("upstream.js") else {
            return;
        };
        let b = HopBrowser::new();
        let (url, _) = authorize_url(&b, &upstream.issuer).await;
        let first = b.get(&url).await;
        let back = b
            .cancel_upstream(first, &upstream.issuer, Some("http://127.0.0.1:9/"))
            .await;
        assert!(back.location.as_deref().unwrap().starts_with(CALLBACK));
        assert_eq!(
            back.location_param("error").as_deref(),
            Some("access_denied")
        );
        assert_eq!(back.location_param("state").as_deref(), Some("st-1"));
        assert!(back.location_param("code").is_none());
    }
}
