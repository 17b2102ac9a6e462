//! The CLI's `config.yaml` document. Parsing the YAML happens in `latchkey-client`; this is
//! only the shape, so every embedding CLI reads and writes the same keys.

use serde::{Deserialize, Serialize};

/// `config.yaml`. Unknown keys are refused so a typo is reported instead of ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The cloud to talk to.
    #[serde(default, skip_serializing_if = "CloudSection::is_empty")]
    pub cloud: CloudSection,
    /// Overrides of what discovery would say.
    #[serde(default, skip_serializing_if = "AuthSection::is_empty")]
    pub auth: AuthSection,
}

/// `cloud.*` keys.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudSection {
    /// `cloud.url`: the one URL a CLI needs; everything else is discovered from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `cloud.api_key`: an API key for automation (CI); takes the place of a login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

impl CloudSection {
    fn is_empty(&self) -> bool {
        self.url.is_none() && self.api_key.is_none()
    }
}

impl std::fmt::Debug for CloudSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudSection")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// `auth.*` keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// `auth.url`: the issuer, instead of discovering it from the cloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `auth.client_id`: the OAuth client id, instead of discovering it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `auth.scope`: the scope to request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `auth.default_method`: the login method used without a TTY or flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_method: Option<String>,
}

impl AuthSection {
    fn is_empty(&self) -> bool {
        self.url.is_none()
            && self.client_id.is_none()
            && self.scope.is_none()
            && self.default_method.is_none()
    }
}

/// Every key `latchkey config get|set|unset` accepts.
pub const CONFIG_KEYS: &[&str] = &[
    "cloud.url",
    "cloud.api_key",
    "auth.url",
    "auth.client_id",
    "auth.scope",
    "auth.default_method",
];

impl ConfigFile {
    /// The value of a dotted key, `None` when unset. Unknown keys are `Err` with the list.
    pub fn get(&self, key: &str) -> Result<Option<&str>, UnknownKey> {
        Ok(match key {
            "cloud.url" => self.cloud.url.as_deref(),
            "cloud.api_key" => self.cloud.api_key.as_deref(),
            "auth.url" => self.auth.url.as_deref(),
            "auth.client_id" => self.auth.client_id.as_deref(),
            "auth.scope" => self.auth.scope.as_deref(),
            "auth.default_method" => self.auth.default_method.as_deref(),
            _ => return Err(UnknownKey(key.to_owned())),
        })
    }

    /// Sets (or with `None`, unsets) a dotted key.
    pub fn set(&mut self, key: &str, value: Option<String>) -> Result<(), UnknownKey> {
        let slot = match key {
            "cloud.url" => &mut self.cloud.url,
            "cloud.api_key" => &mut self.cloud.api_key,
            "auth.url" => &mut self.auth.url,
            "auth.client_id" => &mut self.auth.client_id,
            "auth.scope" => &mut self.auth.scope,
            "auth.default_method" => &mut self.auth.default_method,
            _ => return Err(UnknownKey(key.to_owned())),
        };
        *slot = value;
        Ok(())
    }
}

/// A config key that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey(pub String);

impl std::fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown config key `{}`; known keys: {}",
            self.0,
            CONFIG_KEYS.join(", ")
        )
    }
}

impl std::error::Error for UnknownKey {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_set_every_key() {
        let mut c = ConfigFile::default();
        for k in CONFIG_KEYS {
            assert_eq!(c.get(k), Ok(None));
            c.set(k, Some(format!("v-{k}"))).expect("known key");
            assert_eq!(c.get(k).expect("known"), Some(format!("v-{k}").as_str()));
        }
        assert!(c.get("cloud.nope").is_err());
        assert!(c.set("nope", None).is_err());
    }

    #[test]
    fn api_key_redacted_in_debug() {
        let mut c = ConfigFile::default();
        c.cloud.api_key = Some("lk_secret".into());
        assert!(!format!("{c:?}").contains("lk_secret"));
    }

    #[test]
    fn unknown_fields_refused() {
        assert!(serde_json::from_str::<ConfigFile>(r#"{"cloud":{"ulr":"x"}}"#).is_err());
        let ok: ConfigFile =
            serde_json::from_str(r#"{"cloud":{"url":"http://x"}}"#).expect("parse");
        assert_eq!(ok.cloud.url.as_deref(), Some("http://x"));
    }
}
