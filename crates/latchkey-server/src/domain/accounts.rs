//! Account rules: email and password validation, argon2id hashing, roles, personal orgs.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::secrets::random_bytes;

/// Shortest password accepted (NIST SP 800-63B §5.1.1.2 asks for at least 8).
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted; bounds hashing cost.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Normalizes and validates an email address: trimmed, lower-cased, one `@`, a dot in the
/// domain, no spaces, at most 254 characters.
pub fn normalize_email(raw: &str) -> Result<String, &'static str> {
    let e = raw.trim().to_lowercase();
    if e.is_empty() {
        return Err("Enter your email address.");
    }
    let valid = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && match e.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if valid {
        Ok(e)
    } else {
        Err("That doesn't look like an email address, like you@example.com.")
    }
}

/// Checks a new password against the policy.
pub fn validate_new_password(pw: &str) -> Result<(), &'static str> {
    let n = pw.chars().count();
    if n < MIN_PASSWORD_LEN {
        Err("Choose a password of at least 8 characters.")
    } else if pw.len() > MAX_PASSWORD_LEN {
        Err("That password is too long (at most 1024 bytes).")
    } else {
        Ok(())
    }
}

fn hasher() -> Argon2<'static> {
    // OWASP's argon2id recommendation: m = 19 MiB, t = 2, p = 1.
    #[allow(clippy::expect_used)]
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with argon2id and a random salt (PHC string). CPU-heavy: call it on a
/// blocking thread, through the server's bounded hashing pool.
pub fn hash_password(pw: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| e.to_string())?;
    hasher()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Verifies a password against a PHC string. With `None` (unknown user) it verifies against a
/// fixed dummy hash and returns false, so both cases take the same time.
pub fn verify_password(pw: &str, phc: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let target = match phc {
        Some(p) => p,
        None => DUMMY.get_or_init(|| hash_password("latchkey dummy password").unwrap_or_default()),
    };
    let Ok(parsed) = PasswordHash::new(target) else {
        return false;
    };
    let ok = hasher().verify_password(pw.as_bytes(), &parsed).is_ok();
    ok && phc.is_some()
}

/// A member's role in an organization, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Everything, including deleting the org and transferring ownership.
    Owner,
    /// Manage members and settings.
    Admin,
    /// Use the org's resources.
    Member,
    /// Read only.
    Viewer,
}

impl Role {
    /// Storage and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Viewer => "viewer",
        }
    }

    /// Parses the storage form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "owner" => Self::Owner,
            "admin" => Self::Admin,
            "member" => Self::Member,
            "viewer" => Self::Viewer,
            _ => return None,
        })
    }
}

/// Slug for a user's personal organization: the email's local part, cleaned, plus a random
/// suffix so it is unique without a lookup.
pub fn personal_org_slug(email: Option<&str>) -> String {
    let base: String = email
        .and_then(|e| e.split('@').next())
        .unwrap_or("anonymous")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(24)
        .collect();
    let base = base.trim_matches('-');
    let base = if base.is_empty() { "user" } else { base };
    let suffix: String = random_bytes::<4>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{base}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email("  Ada@Example.COM ").expect("valid"),
            "ada@example.com"
        );
        for bad in [
            "", "ada", "ada@", "@x.io", "a b@x.io", "a@b", "a@@b.io", "a@.b", "a@b.",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(validate_new_password("short").is_err());
        assert!(validate_new_password("long enough").is_ok());
        assert!(validate_new_password(&"x".repeat(2000)).is_err());
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&h)));
        assert!(!verify_password("wrong horse", Some(&h)));
        assert!(!verify_password("correct horse", None));
    }

    #[test]
    fn roles_order() {
        assert!(
            Role::Owner < Role::Admin && Role::Admin < Role::Member && Role::Member < Role::Viewer
        );
        for r in ["owner", "admin", "member", "viewer"] {
            assert_eq!(Role::parse(r).map(Role::as_str), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn slugs() {
        let s = personal_org_slug(Some("Ada.Lovelace@x.io"));
        assert!(s.starts_with("ada-lovelace-"), "{s}");
        assert!(personal_org_slug(None).starts_with("anonymous-"));
    }
}
