//! A standard OAuth client (the `oauth2` crate) performs the device flow against latchkeyd.

use latchkey_server::config::Settings;
use latchkey_server::testkit::{Browser, TestServer};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, DeviceAuthorizationUrl, HttpRequest, HttpResponse, Scope,
    StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};

/// oauth2's HTTP hook, implemented with reqwest.
async fn send(req: HttpRequest) -> Result<HttpResponse, reqwest::Error> {
    let client = super::http();
    let (parts, body) = req.into_parts();
    let mut rb = client
        .request(parts.method, parts.uri.to_string())
        .body(body);
    for (k, v) in &parts.headers {
        rb = rb.header(k, v);
    }
    let resp = rb.send().await?;
    let mut out = http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    Ok(out.body(resp.bytes().await?.to_vec()).expect("response"))
}

#[tokio::test]
async fn oauth2_crate_device_flow() {
    let srv = TestServer::start_with(Settings {
        device_poll_interval: Some(1),
        ..Settings::default()
    })
    .await;
    let base = srv.url().to_owned();
    let browser = Browser::new(&base);
    browser
        .sign_up("kim@example.com", "correct horse battery")
        .await;

    let client = BasicClient::new(ClientId::new("latchkey-cli".into()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(TokenUrl::new(format!("{base}/oauth/token")).unwrap())
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(format!("{base}/oauth/device_authorization")).unwrap(),
        );
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("email".into()))
        .request_async(&send)
        .await
        .unwrap();
    let code = details.user_code().secret().clone();
    let approver = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        browser.approve_device(&code).await;
    });
    let token = client
        .exchange_device_access_token(&details)
        .request_async(&send, tokio::time::sleep, None)
        .await
        .unwrap();
    approver.await.unwrap();
    assert!(token.refresh_token().is_some());
    let (s, _, me) = super::get_json(
        &format!("{base}/v1/me"),
        Some(token.access_token().secret()),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(me["user"]["email"], "kim@example.com");

    // And the standard refresh.
    let refreshed = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request_async(&send)
        .await
        .unwrap();
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        token.refresh_token().unwrap().secret()
    );
    srv.stop().await;
}
