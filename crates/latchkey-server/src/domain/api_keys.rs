//! API keys for automation: format, generation and the checksum that lets a typo (or a scanner
//! looking for leaked keys) be recognised without a database lookup.
//!
//! A key is `lk_` + a 16-character id + a 43-character secret + a 6-character checksum, all
//! base62: 68 characters. The secret has 43 × log2(62) ≈ 256 bits. The checksum is the CRC-32
//! of everything before it. The first 19 characters (`lk_` + id) are the key's public id,
//! which is also its OAuth `client_id`; the whole key is the `client_secret`.

use super::secrets::random_bytes;

use latchkey_proto::api_key::{ApiKeyFormatError, BASE62, check_format, checksum};
pub use latchkey_proto::api_key::{KEY_LEN, PREFIX, PUBLIC_ID_LEN, crc32};

const ID_LEN: usize = 16;
const SECRET_LEN: usize = 43;

fn random_base62(n: usize) -> String {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in random_bytes::<64>() {
            // 248 = 4 × 62: larger values would bias the result.
            if b < 248 && out.len() < n {
                out.push(BASE62[usize::from(b % 62)] as char);
            }
        }
    }
    out
}

/// A new key and its public id.
pub fn generate() -> (String, String) {
    let body = format!(
        "{PREFIX}{}{}",
        random_base62(ID_LEN),
        random_base62(SECRET_LEN)
    );
    let key = format!("{body}{}", checksum(&body));
    let id = key[..PUBLIC_ID_LEN].to_owned();
    (key, id)
}

/// Why a string is not a well-formed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormatError {
    /// Does not start with `lk_` or has the wrong length or characters.
    Shape,
    /// The checksum does not match: a typo or a truncated copy.
    Checksum,
}

/// Checks a key's shape and checksum (no database needed); returns its public id.
pub fn parse(key: &str) -> Result<&str, KeyFormatError> {
    check_format(key).map_err(|e| match e {
        ApiKeyFormatError::Checksum => KeyFormatError::Checksum,
        _ => KeyFormatError::Shape,
    })
}

/// Whether a string looks like a key at all (for routing a token to the right check).
pub fn looks_like_key(s: &str) -> bool {
    s.len() == KEY_LEN && s.starts_with(PREFIX)
}

/// Whether a string is an API key's public id (`lk_` + 16 base62 characters).
pub fn looks_like_public_id(s: &str) -> bool {
    latchkey_proto::api_key::is_public_id(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_vector() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn generated_keys_parse() {
        let (key, id) = generate();
        assert_eq!(key.len(), KEY_LEN);
        assert_eq!(parse(&key), Ok(id.as_str()));
        assert!(looks_like_key(&key));
        let (other, _) = generate();
        assert_ne!(key, other);
    }

    #[test]
    fn typos_fail_the_checksum() {
        let (key, _) = generate();
        let mut chars: Vec<char> = key.chars().collect();
        let i = 30;
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert_eq!(parse(&typo), Err(KeyFormatError::Checksum));
        assert_eq!(parse(&key[..KEY_LEN - 1]), Err(KeyFormatError::Shape));
        assert_eq!(
            parse(&key.replace("lk_", "xx_")),
            Err(KeyFormatError::Shape)
        );
    }
}
