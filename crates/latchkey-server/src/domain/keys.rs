//! Signing keys and JWTs: Ed25519 (EdDSA) keys, the JWKS document, signing and verification.
//!
//! The algorithm is pinned: a token whose header says anything but `EdDSA` is refused before
//! its signature is looked at, so `alg` is never taken from the token (RFC 8725 §3.1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::fmt;

use super::secrets::random_bytes;

/// One key as stored: its id, the public half, and (while it may still sign) the private half.
#[derive(Clone)]
pub struct KeyEntry {
    /// RFC 7638 JWK thumbprint of the public key.
    pub kid: String,
    /// The verifying key.
    pub public: VerifyingKey,
    /// The signing key.
    signing: SigningKey,
    /// Unix seconds the key was created.
    pub created_at: i64,
    /// Unix seconds after which the key no longer signs (it stays published for verification).
    pub retired_at: Option<i64>,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// A freshly generated key in its storable form.
pub struct NewKey {
    /// Thumbprint.
    pub kid: String,
    /// base64url of the 32-byte private seed.
    pub private_b64: String,
    /// base64url of the 32-byte public key.
    pub public_b64: String,
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Generates a new Ed25519 key.
pub fn generate() -> NewKey {
    let signing = SigningKey::from_bytes(&random_bytes::<32>());
    let public_b64 = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
    NewKey {
        kid: thumbprint(&public_b64),
        private_b64: URL_SAFE_NO_PAD.encode(signing.to_bytes()),
        public_b64,
    }
}

/// RFC 7638 thumbprint of an OKP/Ed25519 JWK with public value `x`.
pub fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

impl KeyEntry {
    /// Rebuilds a key from its stored form.
    pub fn from_stored(
        kid: String,
        private_b64: &str,
        created_at: i64,
        retired_at: Option<i64>,
    ) -> Result<Self, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(private_b64)
            .map_err(|_| format!("signing key {kid} is not valid base64url"))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("signing key {kid} is not 32 bytes"))?;
        let signing = SigningKey::from_bytes(&seed);
        Ok(Self {
            kid,
            public: signing.verifying_key(),
            signing,
            created_at,
            retired_at,
        })
    }
}

/// Errors verifying a JWT. Messages are safe to show: they never include the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("the token is malformed")]
    Malformed,
    /// `alg` is not EdDSA or `typ` is not the expected one.
    #[error("the token uses an unexpected algorithm or type")]
    WrongHeader,
    /// The `kid` is not one of ours.
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token signature is invalid")]
    BadSignature,
    /// Issuer or audience mismatch.
    #[error("the token was not issued for this service")]
    WrongAudience,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
}

/// The keys a server knows: the newest unretired one signs, all of them verify.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<KeyEntry>,
}

#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

impl KeySet {
    /// A key set from stored keys (any order).
    pub fn new(mut keys: Vec<KeyEntry>) -> Self {
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        Self { keys }
    }

    /// Whether there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key that signs now: the newest key that is not retired.
    pub fn active(&self, now: i64) -> Option<&KeyEntry> {
        self.keys
            .iter()
            .find(|k| k.retired_at.is_none_or(|r| r > now))
    }

    /// The public JWK Set (RFC 7517 §5) of every known key.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(k.public.as_bytes()),
                    "kid": k.kid,
                    "use": "sig",
                    "alg": "EdDSA",
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Signs `claims` as a compact JWS with header `{alg: EdDSA, typ, kid}`.
    pub fn sign<C: Serialize>(&self, now: i64, typ: &str, claims: &C) -> Result<String, String> {
        let key = self.active(now).ok_or("no active signing key")?;
        let header = serde_json::json!({ "alg": "EdDSA", "typ": typ, "kid": key.kid });
        let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(|e| e.to_string())?);
        let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).map_err(|e| e.to_string())?);
        let input = format!("{h}.{c}");
        let sig = key.signing.sign(input.as_bytes());
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(sig.to_bytes())
        ))
    }

    /// Verifies a compact JWS: pinned `alg`, expected `typ`, known `kid`, signature. Returns the
    /// decoded claims; the caller checks `iss`, `aud` and `exp` with [`check_standard_claims`].
    pub fn verify<C: DeserializeOwned>(&self, token: &str, typ: &str) -> Result<C, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Header = URL_SAFE_NO_PAD
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(JwtError::Malformed)?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(typ) || t.eq_ignore_ascii_case(&format!("application/{typ}"))
        });
        if header.alg != "EdDSA" || !typ_ok {
            return Err(JwtError::WrongHeader);
        }
        let kid = header.kid.ok_or(JwtError::UnknownKey)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(JwtError::UnknownKey)?;
        let sig_bytes: [u8; 64] = URL_SAFE_NO_PAD
            .decode(s)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(JwtError::Malformed)?;
        let sig = Signature::from_bytes(&sig_bytes);
        let input_len = h.len() + 1 + c.len();
        key.public
            .verify_strict(&token.as_bytes()[..input_len], &sig)
            .map_err(|_| JwtError::BadSignature)?;
        let claims = URL_SAFE_NO_PAD.decode(c).map_err(|_| JwtError::Malformed)?;
        serde_json::from_slice(&claims).map_err(|_| JwtError::Malformed)
    }
}

/// Checks issuer, audience and expiry (RFC 9068 §4).
pub fn check_standard_claims(
    iss: &str,
    aud: &str,
    exp: i64,
    expected_iss: &str,
    expected_aud: &str,
    now: i64,
) -> Result<(), JwtError> {
    if iss != expected_iss || aud != expected_aud {
        return Err(JwtError::WrongAudience);
    }
    if exp <= now {
        return Err(JwtError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> KeySet {
        let k = generate();
        KeySet::new(vec![
            KeyEntry::from_stored(k.kid, &k.private_b64, 100, None).expect("key"),
        ])
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let ks = set();
        let tok = ks
            .sign(200, "at+jwt", &serde_json::json!({"sub": "u1"}))
            .expect("sign");
        let claims: serde_json::Value = ks.verify(&tok, "at+jwt").expect("verify");
        assert_eq!(claims["sub"], "u1");
        assert_eq!(
            ks.verify::<serde_json::Value>(&tok, "JWT"),
            Err(JwtError::WrongHeader)
        );
    }

    #[test]
    fn tampering_and_alg_none_are_refused() {
        let ks = set();
        let tok = ks
            .sign(200, "at+jwt", &serde_json::json!({"sub": "u1"}))
            .expect("sign");
        let mut parts: Vec<&str> = tok.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin"}"#);
        parts[1] = &forged;
        assert_eq!(
            ks.verify::<serde_json::Value>(&parts.join("."), "at+jwt"),
            Err(JwtError::BadSignature)
        );
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
        let t2 = format!("{none}.{forged}.");
        assert!(ks.verify::<serde_json::Value>(&t2, "at+jwt").is_err());
        assert_eq!(
            ks.verify::<serde_json::Value>("a.b", "at+jwt"),
            Err(JwtError::Malformed)
        );
        let other = set();
        assert_eq!(
            other.verify::<serde_json::Value>(&tok, "at+jwt"),
            Err(JwtError::UnknownKey)
        );
    }

    #[test]
    fn jwks_publishes_thumbprint_kid() {
        let ks = set();
        let j = ks.jwks();
        let x = j["keys"][0]["x"].as_str().expect("x");
        assert_eq!(j["keys"][0]["kid"], thumbprint(x));
        assert_eq!(j["keys"][0]["alg"], "EdDSA");
    }

    #[test]
    fn rfc7638_thumbprint_shape() {
        // RFC 8037 Appendix A.3: thumbprint of the example Ed25519 key.
        assert_eq!(
            thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn standard_claims() {
        assert!(check_standard_claims("i", "a", 10, "i", "a", 9).is_ok());
        assert_eq!(
            check_standard_claims("i", "a", 10, "i", "a", 10),
            Err(JwtError::Expired)
        );
        assert_eq!(
            check_standard_claims("x", "a", 10, "i", "a", 9),
            Err(JwtError::WrongAudience)
        );
    }
}
