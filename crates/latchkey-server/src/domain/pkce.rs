//! PKCE (RFC 7636) with S256 only, and the loopback redirect URI policy for the public CLI
//! client (RFC 8252 §7.3, §8.3).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::secrets::constant_time_eq;

/// Whether `s` is a valid code verifier or S256 challenge: 43 to 128 characters of
/// `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"` (RFC 7636 §4.1, §4.2).
pub fn valid_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `BASE64URL(SHA256(ASCII(code_verifier)))` (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Verifies a code verifier against a stored S256 challenge, in constant time.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    valid_pkce_string(verifier) && constant_time_eq(s256(verifier).as_bytes(), challenge.as_bytes())
}

/// The only redirect path the public CLI client may use.
pub const LOOPBACK_PATH: &str = "/callback";

/// Checks a redirect URI for the public CLI client: `http`, an IP loopback literal
/// (`127.0.0.1` or `[::1]`; `localhost` is refused as RFC 8252 §8.3 advises, since a hosts file
/// or resolver can point it elsewhere), any port, exactly the path `/callback`, no query,
/// fragment or user info.
pub fn check_loopback_redirect(raw: &str) -> Result<url::Url, &'static str> {
    let u = url::Url::parse(raw).map_err(|_| "the redirect_uri is not a URL")?;
    if u.scheme() != "http" {
        return Err("the redirect_uri must use http:// on a loopback address (RFC 8252 §7.3)");
    }
    let loopback = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    if !loopback {
        return Err(
            "the redirect_uri must be http://127.0.0.1:PORT/callback or http://[::1]:PORT/callback",
        );
    }
    if u.port().is_none() {
        return Err("the redirect_uri must name a port");
    }
    if u.path() != LOOPBACK_PATH || u.query().is_some() || u.fragment().is_some() {
        return Err("the redirect_uri path must be exactly /callback, without query or fragment");
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("the redirect_uri must not contain user information");
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(s256(verifier), challenge);
        assert!(verify_s256(verifier, challenge));
        assert!(!verify_s256(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            challenge
        ));
    }

    #[test]
    fn verifier_format() {
        assert!(valid_pkce_string(&"a".repeat(43)));
        assert!(!valid_pkce_string(&"a".repeat(42)));
        assert!(!valid_pkce_string(&"a".repeat(129)));
        assert!(!valid_pkce_string(&format!("{}+", "a".repeat(43))));
    }

    #[test]
    fn loopback_policy() {
        assert!(check_loopback_redirect("http://127.0.0.1:49152/callback").is_ok());
        assert!(check_loopback_redirect("http://[::1]:8080/callback").is_ok());
        for bad in [
            "https://127.0.0.1:1/callback",
            "http://localhost:1/callback",
            "http://evil.example:1/callback",
            "http://127.0.0.1/callback",
            "http://127.0.0.1:1/other",
            "http://127.0.0.1:1/callback?x=1",
            "http://127.0.0.1:1/callback#f",
            "http://u:p@127.0.0.1:1/callback",
            "http://10.0.0.1:1/callback",
            "not a url",
        ] {
            assert!(check_loopback_redirect(bad).is_err(), "{bad}");
        }
    }
}
