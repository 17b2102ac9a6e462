//! Signing keys and JWTs: Ed25519 (EdDSA) keys, the JWKS document, signing and verification,
//! and the rotation schedule.
//!
//! The algorithm is pinned: a token whose header says anything but `EdDSA` is refused before
//! its signature is looked at, so `alg` is never taken from the token (RFC 8725 §3.1).
//!
//! Rotation, so that no verifier ever sees a token signed by a key it cannot know yet, and no
//! token outlives the publication of its key:
//!
//! 1. **pending**: a new key is stored with an activation time in the future. It is published
//!    in the JWKS at once but does not sign yet, so every replica (reloading keys from the
//!    database) and every resource server (caching the JWKS) learns it first.
//! 2. **active**: from its activation time the newest activated key signs.
//! 3. **retiring**: once a newer key is active the old one stops signing but stays published
//!    for [`KeySet::published`]'s grace (the access token lifetime plus clock skew), so the
//!    tokens it signed keep verifying until they expire.
//! 4. **retired**: after that it is unpublished and deleted from the database.

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
    /// Unix seconds the key was created (and first published).
    pub created_at: i64,
    /// Unix seconds from which the key may sign.
    pub activates_at: i64,
    /// Unix seconds after which the key no longer signs (it stays published for verification).
    pub retired_at: Option<i64>,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
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
        activates_at: i64,
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
            activates_at,
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

/// The keys a server knows: the most recently activated one signs, all of them verify.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    /// Newest activation first.
    keys: Vec<KeyEntry>,
}

/// Clock skew allowed between this server, other replicas and verifiers, seconds: added to the
/// time a retiring key stays published.
pub const KEY_SKEW_SECS: i64 = 300;

/// Where a key stands in its life cycle (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Pending,
    /// Signing.
    Active,
    /// Superseded: published so its tokens verify until they expire, no longer signing.
    Retiring,
    /// Past its publication: to be deleted.
    Retired,
}

impl KeyState {
    /// A lower-case name, for listings and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Retiring => "retiring",
            Self::Retired => "retired",
        }
    }
}

/// One key's schedule, for `latchkeyd keys list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    /// The key id.
    pub kid: String,
    /// Where it stands now.
    pub state: KeyState,
    /// Created and published.
    pub created_at: i64,
    /// Signs from.
    pub activates_at: i64,
    /// Signs until (a newer key's activation or an explicit retirement), when known.
    pub signs_until: Option<i64>,
    /// Published until, when known.
    pub published_until: Option<i64>,
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
        keys.sort_by(|a, b| {
            (b.activates_at, b.created_at, &b.kid).cmp(&(a.activates_at, a.created_at, &a.kid))
        });
        Self { keys }
    }

    /// Whether there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, newest activation first.
    pub fn keys(&self) -> &[KeyEntry] {
        &self.keys
    }

    /// The key that signs now: the most recently activated key that is not retired.
    pub fn active(&self, now: i64) -> Option<&KeyEntry> {
        self.keys
            .iter()
            .find(|k| k.activates_at <= now && k.retired_at.is_none_or(|r| r > now))
    }

    /// When the key at `idx` stops signing: the activation of the next key, or its explicit
    /// retirement, whichever comes first.
    fn signs_until(&self, idx: usize) -> Option<i64> {
        let key = &self.keys[idx];
        let next = self.keys[..idx]
            .iter()
            .map(|k| k.activates_at)
            .filter(|a| *a > key.activates_at)
            .min();
        match (next, key.retired_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Every key's schedule at `now`, newest activation first. `grace` is how long a key stays
    /// published after it stops signing: the access token lifetime plus [`KEY_SKEW_SECS`].
    pub fn status(&self, now: i64, grace: i64) -> Vec<KeyStatus> {
        let active = self.active(now).map(|k| k.kid.clone());
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let signs_until = self.signs_until(i);
                let published_until = signs_until.map(|t| t + grace);
                let state = if now < k.activates_at {
                    KeyState::Pending
                } else if active.as_deref() == Some(&k.kid) {
                    KeyState::Active
                } else if published_until.is_none_or(|t| now < t) {
                    KeyState::Retiring
                } else {
                    KeyState::Retired
                };
                KeyStatus {
                    kid: k.kid.clone(),
                    state,
                    created_at: k.created_at,
                    activates_at: k.activates_at,
                    signs_until,
                    published_until,
                }
            })
            .collect()
    }

    /// The keys still published at `now` (every state but retired): what the JWKS lists and
    /// what verifies.
    pub fn published(&self, now: i64, grace: i64) -> KeySet {
        let keep: Vec<String> = self
            .status(now, grace)
            .into_iter()
            .filter(|s| s.state != KeyState::Retired)
            .map(|s| s.kid)
            .collect();
        KeySet {
            keys: self
                .keys
                .iter()
                .filter(|k| keep.contains(&k.kid))
                .cloned()
                .collect(),
        }
    }

    /// Ids of the keys past their publication, to delete.
    pub fn retired(&self, now: i64, grace: i64) -> Vec<String> {
        self.status(now, grace)
            .into_iter()
            .filter(|s| s.state == KeyState::Retired)
            .map(|s| s.kid)
            .collect()
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

    fn entry(created: i64, activates: i64) -> KeyEntry {
        let k = generate();
        KeyEntry::from_stored(k.kid, &k.private_b64, created, activates, None).expect("key")
    }

    fn set() -> KeySet {
        KeySet::new(vec![entry(100, 100)])
    }

    fn kid_of(token: &str) -> String {
        let h = token.split('.').next().expect("header");
        let v: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).expect("b64")).expect("json");
        v["kid"].as_str().expect("kid").to_owned()
    }

    #[test]
    fn rotation_publishes_before_use_and_retires_after_grace() {
        let grace = 3600 + KEY_SKEW_SECS;
        let old = entry(0, 0);
        // Rotated at t=1000, the new key activates at t=1900.
        let new = entry(1000, 1900);
        let ks = KeySet::new(vec![old.clone(), new.clone()]);
        let states = |now| {
            ks.status(now, grace)
                .into_iter()
                .map(|s| (s.kid, s.state))
                .collect::<Vec<_>>()
        };

        // Before activation: both published, the old one signs.
        assert_eq!(
            states(1500),
            vec![
                (new.kid.clone(), KeyState::Pending),
                (old.kid.clone(), KeyState::Active)
            ]
        );
        assert_eq!(ks.published(1500, grace).keys().len(), 2);
        let t_old = ks
            .sign(1500, "at+jwt", &serde_json::json!({}))
            .expect("sign");
        assert_eq!(kid_of(&t_old), old.kid);

        // After activation: the new one signs, the old one still verifies.
        let t_new = ks
            .sign(1900, "at+jwt", &serde_json::json!({}))
            .expect("sign");
        assert_eq!(kid_of(&t_new), new.kid);
        assert_eq!(
            states(1900),
            vec![
                (new.kid.clone(), KeyState::Active),
                (old.kid.clone(), KeyState::Retiring)
            ]
        );
        let during = ks.published(1900 + grace - 1, grace);
        assert!(during.verify::<serde_json::Value>(&t_old, "at+jwt").is_ok());
        assert!(during.verify::<serde_json::Value>(&t_new, "at+jwt").is_ok());
        assert!(ks.retired(1900 + grace - 1, grace).is_empty());

        // After the grace: the old key is unpublished and due for deletion.
        let after = ks.published(1900 + grace, grace);
        assert_eq!(after.keys().len(), 1);
        assert_eq!(
            after.verify::<serde_json::Value>(&t_old, "at+jwt"),
            Err(JwtError::UnknownKey)
        );
        assert_eq!(ks.retired(1900 + grace, grace), vec![old.kid.clone()]);
        let st = ks.status(1900, grace);
        assert_eq!(st[1].signs_until, Some(1900));
        assert_eq!(st[1].published_until, Some(1900 + grace));
        assert_eq!(st[0].signs_until, None);
    }

    #[test]
    fn only_pending_keys_do_not_sign() {
        let ks = KeySet::new(vec![entry(0, 50)]);
        assert!(ks.active(49).is_none());
        assert!(ks.sign(49, "at+jwt", &serde_json::json!({})).is_err());
        assert!(ks.active(50).is_some());
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
