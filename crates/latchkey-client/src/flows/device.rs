//! The OAuth 2.0 device authorization grant (RFC 8628): ask for a code, let the user approve it
//! on any device, poll the token endpoint until they do.
//!
//! Polling honours the server's `interval`, adds 5 seconds on `slow_down` (§3.5), backs off
//! exponentially on connection trouble, and stops at `access_denied`, `expired_token` or the
//! code's lifetime. Dropping the future cancels the login: nothing is stored until it succeeds.

use crate::error::{Error, Result};
use crate::http::Http;
use latchkey_proto::{
    DeviceAuthorizationResponse, DeviceFlowAction, GRANT_DEVICE_CODE, TokenResponse,
};
use std::time::{Duration, Instant};

/// RFC 8628 §3.2: the interval when the server sends none.
pub const DEFAULT_INTERVAL: u64 = 5;
/// RFC 8628 §3.5: what `slow_down` adds to the interval.
pub const SLOW_DOWN_STEP: u64 = 5;
/// Consecutive transport failures tolerated while polling.
const MAX_NETWORK_FAILURES: u32 = 5;

/// What the user has to see to approve the login: show it prominently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePrompt {
    /// The code to type or confirm, e.g. `BCDF-GHJK`.
    pub user_code: String,
    /// The page where the user enters the code.
    pub verification_uri: String,
    /// The page with the code filled in, when the server offers one (best to open in a browser).
    pub verification_uri_complete: Option<String>,
    /// How long the code stays valid.
    pub expires_in: Duration,
    /// The polling interval the server asked for.
    pub interval: Duration,
}

impl DevicePrompt {
    /// The URL to open in a browser: the complete one when available.
    pub fn browser_url(&self) -> &str {
        self.verification_uri_complete
            .as_deref()
            .unwrap_or(&self.verification_uri)
    }
}

impl From<&DeviceAuthorizationResponse> for DevicePrompt {
    fn from(r: &DeviceAuthorizationResponse) -> Self {
        Self {
            user_code: r.user_code.clone(),
            verification_uri: r.verification_uri.clone(),
            verification_uri_complete: r.verification_uri_complete.clone(),
            expires_in: Duration::from_secs(r.expires_in),
            interval: Duration::from_secs(r.interval.unwrap_or(DEFAULT_INTERVAL)),
        }
    }
}

/// RFC 8628 §3.1–3.2: requests a device code. `device_name` is latchkey's extension parameter
/// naming the session; standard servers ignore unknown parameters.
pub(crate) async fn start(
    http: &Http,
    endpoint: &str,
    client_id: &str,
    scope: Option<&str>,
    device_name: Option<&str>,
) -> Result<DeviceAuthorizationResponse> {
    let mut form = vec![("client_id", client_id)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    if let Some(n) = device_name {
        form.push(("device_name", n));
    }
    let resp = http.post_form(endpoint, &form).await?;
    if resp.is_success() {
        return resp.json();
    }
    match resp.oauth_error() {
        Some(e) => Err(Error::OAuth {
            code: e.error,
            description: e.error_description,
        }),
        None => Err(resp.unexpected()),
    }
}

/// The next step of the polling loop after one token-endpoint answer, as a pure function of the
/// action and the current interval (seconds).
pub fn next_interval(action: DeviceFlowAction, interval: u64) -> Option<u64> {
    match action {
        DeviceFlowAction::Continue => Some(interval),
        DeviceFlowAction::SlowDown => Some(interval + SLOW_DOWN_STEP),
        DeviceFlowAction::Denied | DeviceFlowAction::Expired | DeviceFlowAction::Fail => None,
    }
}

/// RFC 8628 §3.4–3.5: polls the token endpoint until the user approves, denies or the code
/// expires.
pub(crate) async fn poll(
    http: &Http,
    token_endpoint: &str,
    client_id: &str,
    auth: &DeviceAuthorizationResponse,
    app: &str,
) -> Result<TokenResponse> {
    let mut interval = auth.interval.unwrap_or(DEFAULT_INTERVAL).max(1);
    let deadline = Instant::now() + Duration::from_secs(auth.expires_in);
    let mut failures = 0u32;
    let expired = || Error::CodeExpired {
        app: app.to_owned(),
    };
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        if Instant::now() >= deadline {
            return Err(expired());
        }
        let form = [
            ("grant_type", GRANT_DEVICE_CODE),
            ("device_code", auth.device_code.as_str()),
            ("client_id", client_id),
        ];
        let resp = match http.post_form(token_endpoint, &form).await {
            Ok(r) => r,
            Err(e @ Error::Network { .. }) => {
                failures += 1;
                if failures >= MAX_NETWORK_FAILURES {
                    return Err(e);
                }
                interval = (interval * 2).min(60);
                tracing::debug!(error = %e, interval, "polling failed; backing off");
                continue;
            }
            Err(e) => return Err(e),
        };
        if resp.is_success() {
            return resp.json();
        }
        let Some(err) = resp.oauth_error() else {
            if resp.status >= 500 {
                failures += 1;
                if failures >= MAX_NETWORK_FAILURES {
                    return Err(resp.unexpected());
                }
                interval = (interval * 2).min(60);
                continue;
            }
            return Err(resp.unexpected());
        };
        failures = 0;
        let action = DeviceFlowAction::for_error(&err.error);
        match next_interval(action, interval) {
            Some(i) => {
                if i != interval {
                    tracing::debug!(interval = i, "server asked to slow down");
                }
                interval = i;
            }
            None => {
                return Err(match action {
                    DeviceFlowAction::Denied => Error::AccessDenied,
                    DeviceFlowAction::Expired => expired(),
                    _ => Error::OAuth {
                        code: err.error,
                        description: err.error_description,
                    },
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_rules() {
        assert_eq!(next_interval(DeviceFlowAction::Continue, 5), Some(5));
        assert_eq!(next_interval(DeviceFlowAction::SlowDown, 5), Some(10));
        assert_eq!(next_interval(DeviceFlowAction::Denied, 5), None);
        assert_eq!(next_interval(DeviceFlowAction::Expired, 5), None);
    }

    #[test]
    fn prompt_prefers_complete_uri() {
        let r = DeviceAuthorizationResponse {
            device_code: "dc".into(),
            user_code: "BCDF-GHJK".into(),
            verification_uri: "http://x/device".into(),
            verification_uri_complete: Some("http://x/device?user_code=BCDFGHJK".into()),
            expires_in: 600,
            interval: None,
        };
        let p = DevicePrompt::from(&r);
        assert_eq!(p.browser_url(), "http://x/device?user_code=BCDFGHJK");
        assert_eq!(p.interval, Duration::from_secs(5));
    }
}
