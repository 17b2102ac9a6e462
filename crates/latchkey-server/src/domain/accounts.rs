//! Account rules: email and password validation, argon2id hashing, roles, personal orgs.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

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

fn params() -> Params {
    // OWASP's argon2id recommendation: m = 19 MiB, t = 2, p = 1.
    #[allow(clippy::expect_used)]
    Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid")
}

/// Computes an argon2 hash into `out`, in working memory that is given back to the system
/// afterwards.
///
/// argon2 needs `m` KiB (19 MiB) per hash. glibc serves an allocation that size from the heap
/// of the calling thread once it has freed one (its mmap threshold follows freed sizes up to
/// 32 MiB) and then keeps it: every blocking thread that ever hashed would hold 19 MiB, and a
/// burst of sign-ins left hundreds of MiB resident. Asking for more than 32 MiB of capacity
/// keeps every hash on a fresh mapping that is unmapped when it ends; only the pages argon2
/// touches (`m` KiB) are ever resident.
fn argon2_into(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    pw: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    const ALWAYS_MAPPED: usize = 33 << 20;
    let blocks = params.block_count();
    let mut memory = Vec::with_capacity(blocks.max(ALWAYS_MAPPED / Block::SIZE));
    memory.resize(blocks, Block::default());
    Argon2::new(algorithm, version, params).hash_password_into_with_memory(pw, salt, out, memory)
}

/// The PHC string of argon2 with `params` (what `PasswordHasher::hash_password` makes).
fn phc_hash<'a>(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    pw: &[u8],
    salt: argon2::password_hash::Salt<'a>,
) -> argon2::password_hash::Result<PasswordHash<'a>> {
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf)?;
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let phc_params = ParamsString::try_from(&params)?;
    let hash = Output::init_with(len, |out| {
        argon2_into(algorithm, version, params, pw, salt_bytes, out).map_err(Into::into)
    })?;
    Ok(PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: phc_params,
        salt: Some(salt),
        hash: Some(hash),
    })
}

/// Hashes a password with argon2id and a random salt (PHC string). CPU-heavy: call it on a
/// blocking thread, through the server's bounded hashing pool.
pub fn hash_password(pw: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| e.to_string())?;
    phc_hash(
        Algorithm::Argon2id,
        Version::V0x13,
        params(),
        pw.as_bytes(),
        salt.as_salt(),
    )
    .map(|h| h.to_string())
    .map_err(|e| e.to_string())
}

/// Whether `pw` matches a parsed PHC string, with its own algorithm, version and parameters
/// (what `PasswordVerifier::verify_password` does; the comparison is constant-time).
fn verify_phc(pw: &[u8], hash: &PasswordHash<'_>) -> bool {
    let (Some(salt), Some(expected)) = (hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(hash) else {
        return false;
    };
    match phc_hash(algorithm, version, params, pw, salt) {
        Ok(computed) => computed.hash.as_ref() == Some(expected),
        Err(_) => false,
    }
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
    let ok = verify_phc(pw.as_bytes(), &parsed);
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
    format!(
        "{base}-{}",
        crate::domain::secrets::hex(&random_bytes::<4>())
    )
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
    fn hashes_interoperate_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let lib = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        // Ours verifies the crate's hashes (every stored hash), and the crate verifies ours.
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let theirs = lib
            .hash_password(b"correct horse", &salt)
            .expect("hash")
            .to_string();
        assert!(verify_password("correct horse", Some(&theirs)));
        assert!(!verify_password("correct horsf", Some(&theirs)));
        let ours = phc_hash(
            Algorithm::Argon2id,
            Version::V0x13,
            params(),
            b"correct horse",
            salt.as_salt(),
        )
        .expect("hash")
        .to_string();
        assert_eq!(ours, theirs);
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(lib.verify_password(b"correct horse", &parsed).is_ok());
        // Other parameters (an older or future setting) are read from the string.
        let light = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).expect("params"),
        )
        .hash_password(b"pw", &salt)
        .expect("hash")
        .to_string();
        assert!(verify_password("pw", Some(&light)));
        assert!(!verify_password("px", Some(&light)));
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
