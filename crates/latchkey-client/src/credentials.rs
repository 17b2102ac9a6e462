//! The `credentials.json` format: what one login leaves on disk.
//!
//! The file is versioned so later versions can migrate it, and it holds everything a refresh
//! needs (token endpoint, client id) so that `token` never has to run discovery. Reading and
//! writing the file (modes, atomic replace, locking) is `store.rs`; this module is only the shape
//! and the parsing rules.

use latchkey_proto::{AccessToken, RefreshToken};
use serde::{Deserialize, Serialize};

/// The format version this library writes and reads.
pub const CREDENTIALS_VERSION: u32 = 1;

/// How the session was obtained, so later commands know which path applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// An OAuth 2.0 login (device flow or authorization code): refreshable tokens.
    Oauth,
    /// A password login (RFC 6749 §4.3).
    Password,
    /// An anonymous identity (latchkey extension grant).
    Anonymous,
}

/// The organization a session acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSummary {
    /// Org id.
    pub id: String,
    /// URL-safe name.
    pub slug: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// The user's role in it.
    #[serde(default)]
    pub role: Option<String>,
}

/// Who is signed in, as last seen (from `/v1/me`, userinfo or the ID token). For display only:
/// the server decides what a token may do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Stable user id (`sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Email, when the user has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether this is an anonymous identity.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
    /// The active organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<OrgSummary>,
}

impl Identity {
    /// A short label for messages: the email, else the name, else the user id; an anonymous
    /// identity reads `anonymous (usr_…)`.
    pub fn label(&self) -> String {
        if self.anonymous && self.email.is_none() {
            return match &self.user_id {
                Some(id) => format!("anonymous ({id})"),
                None => "an anonymous user".to_owned(),
            };
        }
        self.email
            .clone()
            .or_else(|| self.name.clone())
            .or_else(|| self.user_id.clone())
            .unwrap_or_else(|| {
                if self.anonymous {
                    "an anonymous user".to_owned()
                } else {
                    "an unknown user".to_owned()
                }
            })
    }
}

/// The server-side session the tokens belong to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// Session id (`sid`), when the server tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The name given at login (`--name`, default the host name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The content of `credentials.json`. `Debug` never shows a token (the token types redact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Format version, [`CREDENTIALS_VERSION`].
    pub version: u32,
    /// How the session was obtained.
    pub mode: Mode,
    /// The issuer that minted the tokens.
    pub issuer: String,
    /// The OAuth client id the tokens were issued to (needed to refresh and revoke).
    pub client_id: String,
    /// Token endpoint, so a refresh needs no discovery.
    pub token_endpoint: String,
    /// Revocation endpoint (RFC 7009), when the server has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// OpenID userinfo endpoint, used by `whoami` when there is no cloud API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// The cloud URL the login was made for, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_url: Option<String>,
    /// Base URL of the cloud API (`/v1/me`), when the deployment has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Where to download a newer CLI, from discovery; shown on 426.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// Token type, normally `Bearer`.
    pub token_type: String,
    /// The access token; treated as opaque.
    pub access_token: AccessToken,
    /// The refresh token, rotated on every refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// When the access token expires (unix seconds), from `expires_in`; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Granted scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Who signed in.
    #[serde(default)]
    pub identity: Identity,
    /// The session.
    #[serde(default)]
    pub session: SessionSummary,
    /// When the login happened (unix seconds).
    pub created_at: i64,
    /// When the tokens were last refreshed (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<i64>,
}

impl Credentials {
    /// Whether the access token is still good for more than `margin` seconds at `now`.
    /// A token without a known expiry counts as valid until the server says otherwise.
    pub fn valid_for_more_than(&self, margin: i64, now: i64) -> bool {
        self.expires_at.is_none_or(|e| e - now > margin)
    }

    /// Serializes to the pretty JSON written on disk.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses a file's content. The error string says what is wrong, never a secret.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("not valid JSON (line {}, column {})", e.line(), e.column()))?;
        let version = value
            .get("version")
            .ok_or_else(|| "no `version` field".to_owned())?
            .as_u64()
            .ok_or_else(|| "`version` is not a number".to_owned())?;
        if version > u64::from(CREDENTIALS_VERSION) {
            return Err(format!(
                "it has format version {version}, written by a newer version; this one reads version {CREDENTIALS_VERSION}"
            ));
        }
        if version != u64::from(CREDENTIALS_VERSION) {
            return Err(format!("unknown format version {version}"));
        }
        serde_json::from_value(value).map_err(|e| redact_quoted(&e.to_string()))
    }
}

/// serde's messages quote string values (`invalid type: string "…"`); a misplaced token must not
/// end up in an error, so quoted parts are cut out.
fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut inside = false;
    for ch in msg.chars() {
        if ch == '"' {
            if inside {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            inside = !inside;
        } else if !inside {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Credentials {
        Credentials {
            version: CREDENTIALS_VERSION,
            mode: Mode::Oauth,
            issuer: "https://auth.example".into(),
            client_id: "latchkey-cli".into(),
            token_endpoint: "https://auth.example/oauth/token".into(),
            revocation_endpoint: Some("https://auth.example/oauth/revoke".into()),
            userinfo_endpoint: None,
            cloud_url: Some("https://cloud.example".into()),
            api_url: Some("https://cloud.example".into()),
            download_url: None,
            token_type: "Bearer".into(),
            access_token: AccessToken::new("at-secret"),
            refresh_token: Some(RefreshToken::new("lkr_secret")),
            expires_at: Some(1_000),
            scope: Some("openid".into()),
            identity: Identity {
                user_id: Some("u1".into()),
                email: Some("a@example.com".into()),
                name: None,
                anonymous: false,
                org: Some(OrgSummary {
                    id: "o1".into(),
                    slug: "acme".into(),
                    name: Some("Acme".into()),
                    role: Some("owner".into()),
                }),
            },
            session: SessionSummary {
                id: Some("s1".into()),
                name: Some("laptop".into()),
            },
            created_at: 10,
            refreshed_at: None,
        }
    }

    #[test]
    fn round_trip() {
        let c = sample();
        let bytes = c.to_json();
        let back = Credentials::parse(&bytes).unwrap();
        assert_eq!(back, c);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["mode"], "oauth");
        assert_eq!(v["access_token"], "at-secret");
        assert_eq!(v["identity"]["org"]["slug"], "acme");
    }

    #[test]
    fn labels() {
        let mut id = sample().identity;
        assert_eq!(id.label(), "a@example.com");
        id.email = None;
        assert_eq!(id.label(), "u1");
        id.anonymous = true;
        assert_eq!(id.label(), "anonymous (u1)");
        id.user_id = None;
        assert_eq!(id.label(), "an anonymous user");
    }

    #[test]
    fn debug_has_no_secret() {
        let s = format!("{:?}", sample());
        assert!(!s.contains("at-secret") && !s.contains("lkr_secret"));
    }

    #[test]
    fn validity() {
        let mut c = sample();
        assert!(c.valid_for_more_than(60, 900));
        assert!(!c.valid_for_more_than(60, 940));
        assert!(!c.valid_for_more_than(60, 2000));
        c.expires_at = None;
        assert!(c.valid_for_more_than(60, i64::MAX - 100));
    }

    #[test]
    fn bad_files_are_explained_without_secrets() {
        assert!(
            Credentials::parse(b"{not json")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(Credentials::parse(b"{}").unwrap_err().contains("version"));
        let newer = br#"{"version": 99}"#;
        assert!(Credentials::parse(newer).unwrap_err().contains("newer"));
        let mut v: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        v["expires_at"] = serde_json::json!("lkr_secret");
        let err = Credentials::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(
            !err.contains("lkr_secret") && err.contains("invalid type"),
            "{err}"
        );
        v["expires_at"] = serde_json::json!(5);
        v.as_object_mut().unwrap().remove("token_endpoint");
        assert!(
            Credentials::parse(&serde_json::to_vec(&v).unwrap())
                .unwrap_err()
                .contains("token_endpoint")
        );
    }
}
