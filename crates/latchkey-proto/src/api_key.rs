//! The format of latchkey API keys, shared by the server that mints them and the clients that
//! check them before sending anything: `lk_` + a 16-character id + a 43-character secret + a
//! 6-character checksum, all base62. The checksum is the CRC-32 of everything before it, so a
//! typo or a truncated copy is caught without a database lookup, and secret scanners can
//! recognise a leaked key with certainty. The first 19 characters are the public id (the OAuth
//! `client_id`). No I/O here.

use std::fmt;

/// Prefix of every latchkey API key.
pub const PREFIX: &str = "lk_";
/// Length of a whole key: `lk_` + 16-character id + 43-character secret + 6-character checksum.
pub const KEY_LEN: usize = 68;
/// Length of a key's public id (`lk_` + 16 characters), which is also its OAuth `client_id`.
pub const PUBLIC_ID_LEN: usize = 19;
/// Length of a key's checksum.
pub const CHECK_LEN: usize = 6;
/// The base62 alphabet of keys, in digit order.
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a string is not a usable latchkey API key. Never carries the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyFormatError {
    /// Nothing was given.
    Empty,
    /// It does not start with `lk_`.
    NotAKey,
    /// It starts with `lk_` but has the wrong length (cut short, or pasted with extra text).
    WrongLength {
        /// Its length in characters.
        len: usize,
    },
    /// It contains a character keys never have (only letters and digits follow `lk_`).
    BadCharacter,
    /// The checksum does not match: a typo.
    Checksum,
}

impl fmt::Display for ApiKeyFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("it is empty"),
            Self::NotAKey => f.write_str("it is not a latchkey API key (those start with lk_)"),
            Self::WrongLength { len } => write!(
                f,
                "it has {len} characters instead of {KEY_LEN}: it was cut short or has extra characters"
            ),
            Self::BadCharacter => f.write_str(
                "it contains a character that keys never have (only letters and digits follow lk_)",
            ),
            Self::Checksum => f.write_str("it has a typo: its checksum does not match"),
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, as in zlib and PNG).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// The 6-character checksum of a key's body: its CRC-32 as base62 digits (`0-9A-Za-z`), most
/// significant first.
pub fn checksum(body: &str) -> String {
    let mut n = crc32(body.as_bytes());
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// Checks a key's shape and checksum; returns its public id. Pure: no network, no secret in
/// the error.
pub fn check_format(key: &str) -> std::result::Result<&str, ApiKeyFormatError> {
    if key.is_empty() {
        return Err(ApiKeyFormatError::Empty);
    }
    if !key.starts_with(PREFIX) {
        return Err(ApiKeyFormatError::NotAKey);
    }
    if !key[PREFIX.len()..]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric())
    {
        return Err(ApiKeyFormatError::BadCharacter);
    }
    if key.len() != KEY_LEN {
        return Err(ApiKeyFormatError::WrongLength { len: key.len() });
    }
    let (body, check) = key.split_at(KEY_LEN - CHECK_LEN);
    if checksum(body) != check {
        return Err(ApiKeyFormatError::Checksum);
    }
    Ok(&key[..PUBLIC_ID_LEN])
}

/// Whether `s` looks like a key's public id (`lk_` + 16 letters or digits).
pub fn is_public_id(s: &str) -> bool {
    s.len() == PUBLIC_ID_LEN
        && s.starts_with(PREFIX)
        && s[PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric())
}
