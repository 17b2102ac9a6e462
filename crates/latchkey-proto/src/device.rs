//! Device authorization (RFC 8628): the authorization response and the user code format.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The device authorization response (RFC 8628 §3.2).
///
/// `device_code` is a secret: it is never printed by the CLI and redacted in `Debug`.
#[derive(Clone, Serialize, Deserialize)]
pub struct DeviceAuthorizationResponse {
    /// The device verification code, used only when polling the token endpoint.
    pub device_code: String,
    /// The end-user verification code the user types or confirms.
    pub user_code: String,
    /// The end-user verification URI on the authorization server.
    pub verification_uri: String,
    /// The verification URI with the user code embedded (optional in the RFC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    /// Lifetime of both codes, in seconds.
    pub expires_in: u64,
    /// Minimum polling interval, in seconds (RFC 8628 §3.2 default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
}

impl fmt::Debug for DeviceAuthorizationResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorizationResponse")
            .field("device_code", &"[redacted]")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// The alphabet of latchkey user codes: 20 consonants, no vowels (no words), no look-alikes.
/// RFC 8628 §6.1 recommends this kind of alphabet; 20^8 ≈ 2^34.6 codes.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Number of characters of a user code by default, without the dash.
pub const USER_CODE_LEN: usize = 8;

/// The lengths a deployment may choose for its user codes: 8 (the default, ≈ 2^34.6 codes),
/// 12 (≈ 2^51.9) or 16 (≈ 2^69.2). Longer codes make guessing far harder; see
/// `docs/security.md`.
pub const USER_CODE_LENGTHS: [usize; 3] = [8, 12, 16];

/// A normalized user code: 8, 12 or 16 characters of [`USER_CODE_ALPHABET`], shown in groups
/// of four, `XXXX-XXXX` (RFC 8628 §6.1). Parsing accepts any case, with or without dashes and
/// spaces.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserCode(String);

/// Why a typed user code was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCodeError {
    /// Not 8 characters once dashes and spaces are removed.
    Length,
    /// Contains a character outside the alphabet.
    Character,
}

impl fmt::Display for UserCodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length => f.write_str("a code has 8 letters in groups of four, like BCDF-GHJK"),
            Self::Character => f.write_str(
                "a code uses only the consonants BCDFGHJKLMNPQRSTVWXZ (no vowels or digits)",
            ),
        }
    }
}

impl std::error::Error for UserCodeError {}

impl UserCode {
    /// Parses what a user typed.
    pub fn parse(input: &str) -> Result<Self, UserCodeError> {
        let mut out = String::with_capacity(USER_CODE_LEN);
        for c in input.chars() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            let up = c.to_ascii_uppercase();
            if !up.is_ascii() || !USER_CODE_ALPHABET.contains(&(up as u8)) {
                return Err(UserCodeError::Character);
            }
            if out.len() == USER_CODE_LENGTHS[USER_CODE_LENGTHS.len() - 1] {
                return Err(UserCodeError::Length);
            }
            out.push(up);
        }
        if !USER_CODE_LENGTHS.contains(&out.len()) {
            return Err(UserCodeError::Length);
        }
        Ok(Self(out))
    }

    /// Builds a code from alphabet indexes (each taken modulo 20); used by the generator.
    pub fn from_indexes(idx: &[u8]) -> Self {
        Self(
            idx.iter()
                .map(|i| USER_CODE_ALPHABET[usize::from(*i) % USER_CODE_ALPHABET.len()] as char)
                .collect(),
        )
    }

    /// The canonical form, without dashes: what is stored and compared.
    pub fn canonical(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserCode {
    /// The display form: groups of four joined by dashes, `XXXX-XXXX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, chunk) in self.0.as_bytes().chunks(4).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            f.write_str(std::str::from_utf8(chunk).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserCode({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_case_with_or_without_dash() {
        let a = UserCode::parse("bcdf-ghjk").expect("valid");
        let b = UserCode::parse(" BCDFGHJK ").expect("valid");
        let c = UserCode::parse("Bcdf ghjK").expect("valid");
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.to_string(), "BCDF-GHJK");
        assert_eq!(a.canonical(), "BCDFGHJK");
    }

    #[test]
    fn longer_codes() {
        let c = UserCode::parse("bcdf-ghjk-lmnp").expect("12");
        assert_eq!(c.to_string(), "BCDF-GHJK-LMNP");
        let c = UserCode::parse("BCDFGHJKLMNPQRST").expect("16");
        assert_eq!(c.to_string(), "BCDF-GHJK-LMNP-QRST");
        assert_eq!(UserCode::parse("BCDF-GHJK-LM"), Err(UserCodeError::Length));
        assert_eq!(UserCode::parse(&"B".repeat(17)), Err(UserCodeError::Length));
    }

    #[test]
    fn rejects_bad_codes() {
        assert_eq!(UserCode::parse("BCDF-GHJ"), Err(UserCodeError::Length));
        assert_eq!(UserCode::parse("BCDF-GHJKL"), Err(UserCodeError::Length));
        assert_eq!(UserCode::parse("ABCD-EFGH"), Err(UserCodeError::Character));
        assert_eq!(UserCode::parse("BCDF-GHJ1"), Err(UserCodeError::Character));
        assert_eq!(UserCode::parse("BCDF-GHJÉ"), Err(UserCodeError::Character));
        assert_eq!(UserCode::parse(""), Err(UserCodeError::Length));
    }

    #[test]
    fn from_indexes_stays_in_alphabet() {
        let c = UserCode::from_indexes(&[0, 19, 20, 39, 255, 7, 8, 9]);
        assert_eq!(c.canonical().len(), 8);
        assert!(UserCode::parse(c.canonical()).is_ok());
    }

    #[test]
    fn device_code_is_redacted_in_debug() {
        let r = DeviceAuthorizationResponse {
            device_code: "super-secret".into(),
            user_code: "BCDF-GHJK".into(),
            verification_uri: "http://x/device".into(),
            verification_uri_complete: None,
            expires_in: 600,
            interval: Some(5),
        };
        assert!(!format!("{r:?}").contains("super-secret"));
    }
}
