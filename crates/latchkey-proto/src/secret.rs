//! Secret-bearing newtypes: tokens that must never be printed by accident.
//!
//! Their `Debug` is redacted and the value is reached only through `secret()`, following
//! oauth2-rs `src/types.rs`. Serde is transparent so the wire format is the plain string.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! secret_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            /// The secret itself. Every call site is a place where the secret leaves its box.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_string!(
    /// An access token (RFC 6749 §1.4); for latchkeyd a JWT per RFC 9068.
    AccessToken
);
secret_string!(
    /// A refresh token (RFC 6749 §1.5); for latchkeyd opaque, `lkr_` prefixed, rotated on use.
    RefreshToken
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let t = AccessToken::new("eyJ-very-secret");
        assert_eq!(format!("{t:?}"), "AccessToken([redacted])");
        assert_eq!(t.secret(), "eyJ-very-secret");
        let r = RefreshToken::new("lkr_abc");
        assert!(!format!("{r:?}").contains("lkr_abc"));
    }
}
