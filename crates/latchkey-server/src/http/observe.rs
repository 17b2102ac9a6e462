//! What every request goes through before its handler, for operators: the real client address
//! (forwarded headers believed only from configured proxies), a request id (in every log line
//! of the request and in the `X-Request-Id` response header), and metrics (requests by route
//! and status, latency, logins and refreshes by result at the token endpoint).

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use tracing::Instrument;

use super::error::OAuthError;
use super::extract::MAX_FORM_BYTES;
use crate::config::IpNet;
use crate::domain::secrets::random_bytes;
use crate::state::SharedState;

/// Response (and trusted request) header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The client's address as resolved from the TCP peer and, behind a trusted proxy,
/// `X-Forwarded-For`. Handlers read it through [`super::extract::ClientIp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The id of the request, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The client address: the TCP peer, unless the peer is a trusted proxy; then the
/// `X-Forwarded-For` chain is walked from the right (the hop the proxy itself added) and the
/// first address that is not a trusted proxy is the client. Anything left of it could have
/// been written by the client and is ignored.
pub fn resolve_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer = peer.to_canonical();
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // Garbage in the chain: stop at the last address we could trust.
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

fn new_request_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<12>())
}

/// A request id a trusted proxy sent, if it is short and plain enough to log.
fn forwarded_request_id(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(REQUEST_ID_HEADER)?.to_str().ok()?;
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| v.to_owned())
}

/// Middleware around every route: client address, request id and span, metrics.
pub async fn request_context(
    State(state): State<SharedState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let trusted_peer = peer.is_some_and(|p| {
        state
            .config
            .trusted_proxies
            .iter()
            .any(|n| n.contains(p.to_canonical()))
    });
    if let Some(peer) = peer {
        let client = resolve_client(peer, req.headers(), &state.config.trusted_proxies);
        req.extensions_mut().insert(ClientAddr(client));
    }
    let id = trusted_peer
        .then(|| forwarded_request_id(req.headers()))
        .flatten()
        .unwrap_or_else(new_request_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();

    let span = tracing::info_span!("request", request_id = %id);
    let mut resp = async {
        if method == Method::POST && route == "/oauth/token" {
            token_with_metrics(&state, req, next).await
        } else {
            next.run(req).await
        }
    }
    .instrument(span)
    .await;

    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    state.metrics.request(
        &route,
        &method,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// The login method a token request's `grant_type` stands for; `None` for refreshes.
fn grant_method(grant_type: &str) -> Option<&'static str> {
    Some(match grant_type {
        "refresh_token" => return None,
        latchkey_proto::GRANT_DEVICE_CODE => "device",
        "authorization_code" => "browser",
        "password" => "password",
        "client_credentials" => "api_key",
        g if g.contains("anonymous") => "anonymous",
        _ => "other",
    })
}

/// Runs the token endpoint and counts the outcome: a login by method, or a refresh, with
/// `success` or the OAuth error code. Device polls still waiting (`authorization_pending`,
/// `slow_down`) are not attempts and are not counted. The form body is read here (within the
/// endpoint's own limit) and handed on unchanged.
/// Runs the handler of a request in its own task, to completion, even when the client goes
/// away first. Otherwise a disconnect cancels the handler wherever it is waiting, and a
/// cancellation inside a database call is not safe: a `BEGIN` cancelled before its answer
/// leaves the PostgreSQL connection back in the pool inside an open transaction, so later
/// writes on that connection are answered as done and then rolled back (bench/run found it:
/// device codes handed out and gone). The client of a cancelled request gets nothing either
/// way; the work it started finishes (or fails) as a whole. A panic becomes a 500.
pub async fn run_to_completion(req: Request, next: Next) -> Response {
    match tokio::spawn(next.run(req).in_current_span()).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!(error = %e, "request handler failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn token_with_metrics(state: &SharedState, req: Request, next: Next) -> Response {
    let is_form = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        // The handler refuses it; count it without reading the body.
        let resp = next.run(req).await;
        return count_token_outcome(state, "", resp).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES + 1).await else {
        return OAuthError::invalid_request(format!(
            "the request body is larger than {MAX_FORM_BYTES} bytes"
        ))
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        .into_response();
    };
    let grant_type = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    count_token_outcome(state, &grant_type, resp).await
}

async fn count_token_outcome(state: &SharedState, grant_type: &str, resp: Response) -> Response {
    let (result, resp) = if resp.status().is_success() {
        ("success".to_owned(), resp)
    } else {
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024)
            .await
            .unwrap_or_default();
        let code = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "failure".to_owned());
        (code, Response::from_parts(parts, Body::from(bytes)))
    };
    if result == "authorization_pending" || result == "slow_down" {
        return resp;
    }
    match grant_method(grant_type) {
        None => state.metrics.refresh(&result),
        Some(method) => state.metrics.login(method, &result),
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| IpNet::parse(s).expect("net")).collect()
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().expect("hv"));
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let t = nets(&["10.0.0.0/8"]);
        assert_eq!(
            resolve_client(ip("203.0.113.9"), &xff("1.1.1.1"), &t),
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve_client(ip("10.0.0.2"), &xff("1.1.1.1"), &[]),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn rightmost_untrusted_hop_is_the_client() {
        let t = nets(&["10.0.0.0/8", "192.168.1.1"]);
        // The client forged the first entry; the proxies appended the rest.
        let h = xff("6.6.6.6, 198.51.100.7, 192.168.1.1");
        assert_eq!(resolve_client(ip("10.0.0.2"), &h, &t), ip("198.51.100.7"));
        // Ports and bracketed IPv6.
        assert_eq!(
            resolve_client(ip("10.0.0.2"), &xff("[2001:db8::7]:443"), &t),
            ip("2001:db8::7")
        );
        assert_eq!(
            resolve_client(ip("10.0.0.2"), &xff("198.51.100.8:1234"), &t),
            ip("198.51.100.8")
        );
        // Every hop trusted: the leftmost one.
        assert_eq!(
            resolve_client(ip("10.0.0.2"), &xff("10.0.0.9"), &t),
            ip("10.0.0.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            resolve_client(ip("10.0.0.2"), &HeaderMap::new(), &t),
            ip("10.0.0.2")
        );
        // Garbage stops the walk at the last good hop.
        assert_eq!(
            resolve_client(ip("10.0.0.2"), &xff("1.2.3.4, nonsense"), &t),
            ip("10.0.0.2")
        );
        // IPv4-mapped peers count as IPv4.
        assert_eq!(
            resolve_client(ip("::ffff:10.0.0.2"), &xff("198.51.100.1"), &t),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn request_ids() {
        let a = new_request_id();
        assert_eq!(a.len(), 16);
        assert_ne!(a, new_request_id());
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, "abc-123".parse().expect("hv"));
        assert_eq!(forwarded_request_id(&h).as_deref(), Some("abc-123"));
        h.insert(REQUEST_ID_HEADER, "a b".parse().expect("hv"));
        assert_eq!(forwarded_request_id(&h), None);
    }

    #[test]
    fn grant_methods() {
        assert_eq!(grant_method("refresh_token"), None);
        assert_eq!(
            grant_method("urn:ietf:params:oauth:grant-type:device_code"),
            Some("device")
        );
        assert_eq!(grant_method("authorization_code"), Some("browser"));
        assert_eq!(grant_method("nonsense"), Some("other"));
    }
}
