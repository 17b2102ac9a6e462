//! `config.yaml`: reading, validating and writing the user's settings, and the environment
//! variables that stand in for them.
//!
//! The shape ([`ConfigFile`]) lives in `latchkey-proto` so every embedding CLI reads the same
//! keys; this module adds the YAML and the rules (URLs must be http(s), a method must be known).

use crate::error::{Error, Result};
use crate::store::{ensure_private_dir, write_atomic};
use latchkey_proto::ConfigFile;
use std::path::Path;

/// Loads `config.yaml`; a missing or empty file is the default (empty) config.
pub fn load(path: &Path, app: &str) -> Result<ConfigFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => {
            return Err(Error::InvalidConfig {
                path: path.to_owned(),
                reason: format!("it cannot be read ({e})"),
                app: app.to_owned(),
            });
        }
    };
    parse(&text).map_err(|reason| Error::InvalidConfig {
        path: path.to_owned(),
        reason,
        app: app.to_owned(),
    })
}

/// Parses and validates YAML text. The error says what is wrong (and where).
pub fn parse(text: &str) -> std::result::Result<ConfigFile, String> {
    let is_blank = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if is_blank {
        return Ok(ConfigFile::default());
    }
    let cfg: ConfigFile = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
    validate(&cfg).map_err(|e| e.to_string())?;
    Ok(cfg)
}

/// Renders the config as YAML.
pub fn to_yaml(cfg: &ConfigFile) -> String {
    if *cfg == ConfigFile::default() {
        return String::new();
    }
    yaml_serde::to_string(cfg).unwrap_or_default()
}

/// Writes `config.yaml` atomically with mode 0600 (it may hold an API key), creating the
/// directory (0700).
pub fn save(path: &Path, cfg: &ConfigFile) -> Result<()> {
    validate(cfg)?;
    if let Some(dir) = path.parent() {
        ensure_private_dir(dir)?;
    }
    write_atomic(path, to_yaml(cfg).as_bytes(), 0o600)
}

/// A copy with `cloud.api_key` replaced by `[redacted]`, for display.
pub fn redacted(cfg: &ConfigFile) -> ConfigFile {
    let mut c = cfg.clone();
    if c.cloud.api_key.is_some() {
        c.cloud.api_key = Some("[redacted]".to_owned());
    }
    c
}

/// Checks one value for a dotted key before it is stored.
pub fn validate_value(key: &str, value: &str) -> Result<()> {
    match key {
        "cloud.url" | "auth.url" => validate_url(key, value).map(|_| ()),
        "auth.default_method" => {
            use latchkey_proto::methods::*;
            let known = [DEVICE, BROWSER, PASSWORD, ANONYMOUS];
            if known.contains(&value) {
                Ok(())
            } else {
                Err(Error::InvalidValue {
                    key: key.to_owned(),
                    reason: format!("`{value}` is not one of {}", known.join(", ")),
                })
            }
        }
        "auth.client_id" | "cloud.api_key" if value.trim().is_empty() => Err(Error::InvalidValue {
            key: key.to_owned(),
            reason: "it is empty".to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Checks every set key of a config.
pub fn validate(cfg: &ConfigFile) -> Result<()> {
    for key in latchkey_proto::config::CONFIG_KEYS {
        if let Ok(Some(v)) = cfg.get(key) {
            validate_value(key, v)?;
        }
    }
    Ok(())
}

/// Parses an http(s) URL given for `what` (a key or flag name), refusing anything else.
pub fn validate_url(what: &str, value: &str) -> Result<url::Url> {
    let u = url::Url::parse(value.trim()).map_err(|e| Error::InvalidValue {
        key: what.to_owned(),
        reason: format!("`{value}` is not a URL ({e}); use a full URL like https://example.com"),
    })?;
    if u.scheme() != "https" && u.scheme() != "http" {
        return Err(Error::InvalidValue {
            key: what.to_owned(),
            reason: format!("`{value}` must start with https:// (or http://)"),
        });
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(Error::InvalidValue {
            key: what.to_owned(),
            reason: format!("`{value}` has no host"),
        });
    }
    Ok(u)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn yaml_round_trip() {
        let mut c = ConfigFile::default();
        c.set("cloud.url", Some("https://cloud.example".into()))
            .unwrap();
        c.set("auth.scope", Some("openid offline_access".into()))
            .unwrap();
        let y = to_yaml(&c);
        assert!(
            y.contains("cloud:") && y.contains("url: https://cloud.example"),
            "{y}"
        );
        assert_eq!(parse(&y).unwrap(), c);
        assert_eq!(parse("").unwrap(), ConfigFile::default());
        assert_eq!(parse("# nothing\n\n").unwrap(), ConfigFile::default());
        assert_eq!(to_yaml(&ConfigFile::default()), "");
    }

    #[test]
    fn invalid_configs_are_explained() {
        assert!(
            parse("cloud:\n  ulr: https://x\n")
                .unwrap_err()
                .contains("ulr")
        );
        assert!(
            parse("cloud:\n  url: ftp://x\n")
                .unwrap_err()
                .contains("https://")
        );
        assert!(parse("cloud: [1, 2]\n").is_err());
        assert!(parse("auth:\n  default_method: carrier-pigeon\n").is_err());
    }

    #[test]
    fn redaction() {
        let mut c = ConfigFile::default();
        c.cloud.api_key = Some("lk_secret".into());
        let shown = to_yaml(&redacted(&c));
        assert!(!shown.contains("lk_secret") && shown.contains("[redacted]"));
    }

    #[test]
    fn save_and_load() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("cfg/config.yaml");
        assert_eq!(load(&p, "latchkey").unwrap(), ConfigFile::default());
        let mut c = ConfigFile::default();
        c.cloud.url = Some("http://127.0.0.1:8080".into());
        save(&p, &c).unwrap();
        assert_eq!(load(&p, "latchkey").unwrap(), c);
        std::fs::write(&p, "cloud: {url: 3").unwrap();
        let e = load(&p, "latchkey").unwrap_err();
        assert!(e.to_string().contains("config.yaml"));
        assert!(e.hint().unwrap().contains("latchkey config edit"));
    }
}
