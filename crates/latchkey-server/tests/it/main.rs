//! Integration tests of `latchkeyd`: the real server on `127.0.0.1:0`, driven over HTTP.
//! One test binary for the crate (link time matters on small machines); modules by topic.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod api_keys;
mod authorize;
mod bad_input;
mod binary;
mod crash;
mod device_flow;
mod federation;
mod fuzz;
mod interop;
mod keys;
mod limits;
mod methods;
mod ops;
mod org_secrets;
mod orgs;
mod pages;
mod replicas;

use latchkey_server::testkit::install_crypto;
use serde_json::Value;

/// A plain HTTP client (no cookies), like a CLI.
pub fn http() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// POSTs a form and returns status, headers and the JSON body (`Null` when not JSON).
pub async fn post_form(
    url: &str,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = http().post(url).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// GETs JSON with an optional bearer token.
pub async fn get_json(url: &str, bearer: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = http().get(url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

/// Starts a device authorization for the CLI client.
pub async fn start_device(base: &str) -> Value {
    let (status, _, body) = post_form(
        &format!("{base}/oauth/device_authorization"),
        &[
            ("client_id", "latchkey-cli"),
            ("device_name", "test-laptop"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls the token endpoint once for a device code.
pub async fn poll(base: &str, device_code: &str) -> (u16, Value) {
    let (s, _, b) = post_form(
        &format!("{base}/oauth/token"),
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("client_id", "latchkey-cli"),
        ],
    )
    .await;
    (s, b)
}

/// Redeems a refresh token.
pub async fn refresh(base: &str, token: &str) -> (u16, Value) {
    let (s, _, b) = post_form(
        &format!("{base}/oauth/token"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", "latchkey-cli"),
        ],
    )
    .await;
    (s, b)
}

/// Signs in with the password grant as the first-party CLI would.
pub async fn password_grant(
    base: &str,
    email: &str,
    password: &str,
    device_name: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    post_form(
        &format!("{base}/oauth/token"),
        &[
            ("grant_type", "password"),
            ("username", email),
            ("password", password),
            ("client_id", "latchkey-cli"),
            ("device_name", device_name),
        ],
    )
    .await
}

/// The password every test account gets.
pub const PASSWORD: &str = "correct horse battery";

/// Creates an account on the web form, then signs it in with the password grant; returns the
/// token response.
pub async fn new_account(base: &str, email: &str) -> Value {
    latchkey_server::testkit::Browser::new(base)
        .sign_up(email, PASSWORD)
        .await;
    let (s, _, tok) = password_grant(base, email, PASSWORD, "test").await;
    assert_eq!(s, 200, "{tok}");
    tok
}
