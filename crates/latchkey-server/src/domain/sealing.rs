//! Sealing: the few secrets latchkeyd must send somewhere itself (an organization's single
//! sign-on client secret) cannot be hashed like the secrets it hands out, so they are encrypted
//! with AES-256-GCM under the operator's secret key, which is kept outside the database
//! (`secret_key_file` or `LATCHKEYD_SECRET_KEY`). A copy of the database or of a backup then
//! holds no usable secret.
//!
//! Sealed text is `lks1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The key id (8 hex
//! characters of a SHA-256 of the key) says which key sealed it, so several keys can be
//! configured during a rotation: the first seals, every one opens. The caller's `context`
//! (which organization and provider the secret belongs to) is authenticated with it, so a
//! sealed value moved to another row of the database does not open.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

use crate::domain::secrets::{hex, random_bytes};

/// What sealed text starts with.
const PREFIX: &str = "lks1.";

/// The operator's sealing keys; the first one seals. `Debug` shows only the key ids.
#[derive(Clone, Default)]
pub struct SealingKeys {
    keys: Arc<Vec<SealingKey>>,
}

struct SealingKey {
    id: String,
    key: LessSafeKey,
}

/// Why a secret could not be sealed or opened. No variant carries the secret or the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// No secret key is configured, so nothing can be sealed or opened.
    #[error("this server has no secret key (set secret_key_file or LATCHKEYD_SECRET_KEY)")]
    NoKey,
    /// The value was sealed with a key that is no longer configured.
    #[error("sealed with key {0}, which this server no longer has")]
    UnknownKey(String),
    /// The value is not sealed text, or it was altered or moved.
    #[error("the sealed value is damaged or belongs to another record")]
    Corrupt,
}

impl SealingKeys {
    /// Parses one or more keys separated by commas, spaces or new lines (a key file may hold
    /// the new key on its first line and the old ones below; `#` starts a comment to the end
    /// of the line). Each key is 32 bytes written as 64 hexadecimal characters or as base64
    /// (`latchkeyd secrets generate-key` makes one). Errors name the position of a bad key,
    /// never its text.
    pub fn parse(text: &str) -> Result<SealingKeys, String> {
        let mut keys: Vec<SealingKey> = Vec::new();
        for (i, raw) in text
            .lines()
            .map(|line| line.split('#').next().unwrap_or(""))
            .flat_map(|line| line.split(|c: char| c == ',' || c.is_whitespace()))
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            let bytes = decode_key(raw).ok_or_else(|| {
                format!(
                    "key {} is not 32 bytes as 64 hex characters or base64; make one with \
                     `latchkeyd secrets generate-key`",
                    i + 1
                )
            })?;
            let id = key_id(&bytes);
            if keys.iter().any(|k| k.id == id) {
                continue;
            }
            let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| format!("key {} cannot be used with AES-256-GCM", i + 1))?;
            keys.push(SealingKey {
                id,
                key: LessSafeKey::new(unbound),
            });
        }
        if keys.is_empty() {
            return Err("no key given".into());
        }
        Ok(SealingKeys {
            keys: Arc::new(keys),
        })
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, the sealing one first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Seals `secret` for `context` under the first key.
    pub fn seal(&self, secret: &str, context: &str) -> Result<String, SealError> {
        let k = self.keys.first().ok_or(SealError::NoKey)?;
        let nonce = random_bytes::<NONCE_LEN>();
        let mut buf = secret.as_bytes().to_vec();
        k.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SealError::Corrupt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}{}.{}", k.id, URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens text made by [`seal`](Self::seal) with the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SealError> {
        let (id, body) = parts(sealed).ok_or(SealError::Corrupt)?;
        if self.keys.is_empty() {
            return Err(SealError::NoKey);
        }
        let k = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Corrupt)?;
        if raw.len() < NONCE_LEN {
            return Err(SealError::Corrupt);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Corrupt)?;
        let mut buf = ciphertext.to_vec();
        let plain = k
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| SealError::Corrupt)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Corrupt)
    }

    /// Whether `sealed` was sealed with the current (first) key.
    pub fn is_current(&self, sealed: &str) -> bool {
        self.keys
            .first()
            .is_some_and(|k| parts(sealed).is_some_and(|(id, _)| id == k.id))
    }
}

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKeys")
            .field("ids", &self.ids())
            .finish()
    }
}

/// A new random key, as 64 hexadecimal characters.
pub fn generate_key() -> String {
    hex(&random_bytes::<32>())
}

/// What binds a sealed client secret to its organization and provider.
pub fn org_sso_context(org_id: &str, issuer: &str, client_id: &str) -> String {
    format!("org_sso\0{org_id}\0{issuer}\0{client_id}")
}

/// The key id and body of sealed text.
fn parts(sealed: &str) -> Option<(&str, &str)> {
    sealed.strip_prefix(PREFIX)?.split_once('.')
}

fn decode_key(raw: &str) -> Option<[u8; 32]> {
    let bytes = if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&raw[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        STANDARD
            .decode(raw)
            .or_else(|_| URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')))
            .ok()?
    };
    bytes.try_into().ok()
}

fn key_id(key: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(b"latchkey sealing key id\0")
        .chain_update(key)
        .finalize();
    hex(&digest[..4])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn k2() -> String {
        STANDARD.encode([7u8; 32])
    }

    #[test]
    fn sealed_text_opens_only_with_its_context() {
        let keys = SealingKeys::parse(K1).unwrap();
        let sealed = keys.seal("upstream-secret", "org_sso\0a").unwrap();
        assert!(sealed.starts_with("lks1."), "{sealed}");
        assert!(!sealed.contains("upstream-secret"));
        assert_eq!(keys.open(&sealed, "org_sso\0a").unwrap(), "upstream-secret");
        assert_eq!(keys.open(&sealed, "org_sso\0b"), Err(SealError::Corrupt));
        // Two seals of one secret differ (a fresh nonce each time).
        assert_ne!(sealed, keys.seal("upstream-secret", "org_sso\0a").unwrap());
    }

    #[test]
    fn altered_or_foreign_text_does_not_open() {
        let keys = SealingKeys::parse(K1).unwrap();
        let sealed = keys.seal("s", "c").unwrap();
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(keys.open(&altered, "c"), Err(SealError::Corrupt));
        assert_eq!(keys.open("plain-secret", "c"), Err(SealError::Corrupt));
        let id = keys.ids()[0].to_owned();
        assert_eq!(
            keys.open(&format!("lks1.{id}.AAAA"), "c"),
            Err(SealError::Corrupt)
        );
        assert_eq!(SealingKeys::default().seal("s", "c"), Err(SealError::NoKey));
        assert_eq!(
            SealingKeys::default().open(&sealed, "c"),
            Err(SealError::NoKey)
        );
    }

    #[test]
    fn rotation_seals_with_the_first_key_and_opens_with_any() {
        let old = SealingKeys::parse(K1).unwrap();
        let sealed_old = old.seal("s", "c").unwrap();
        let both = SealingKeys::parse(&format!("# new, 2026-12\n{}\n{K1}  # old\n", k2())).unwrap();
        assert_eq!(both.ids().len(), 2);
        assert_eq!(both.open(&sealed_old, "c").unwrap(), "s");
        assert!(!both.is_current(&sealed_old));
        let sealed_new = both.seal("s", "c").unwrap();
        assert!(both.is_current(&sealed_new));
        // The old key alone cannot open what the new one sealed, and says which key is missing.
        assert_eq!(
            old.open(&sealed_new, "c"),
            Err(SealError::UnknownKey(both.ids()[0].to_owned()))
        );
    }

    #[test]
    fn keys_parse_from_hex_or_base64_and_errors_hide_them() {
        let hex_keys = SealingKeys::parse(K1).unwrap();
        let same = SealingKeys::parse(&STANDARD.encode((0u8..32).collect::<Vec<_>>())).unwrap();
        assert_eq!(hex_keys.ids(), same.ids());
        assert_eq!(
            SealingKeys::parse(&format!("{K1},{K1}"))
                .unwrap()
                .ids()
                .len(),
            1
        );
        let generated = generate_key();
        assert_eq!(generated.len(), 64);
        SealingKeys::parse(&generated).unwrap();
        for bad in ["", "  \n", "tooshort-secret-value", &K1[..62]] {
            let e = SealingKeys::parse(bad).unwrap_err();
            assert!(bad.trim().is_empty() || !e.contains(bad), "{e}");
        }
        let debug = format!("{hex_keys:?}");
        assert!(
            !debug.contains(K1) && debug.contains(hex_keys.ids()[0]),
            "{debug}"
        );
    }
}
