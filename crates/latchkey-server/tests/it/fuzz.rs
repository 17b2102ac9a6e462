//! Property tests and a fuzz harness that runs on stable (issue 10): arbitrary and mutated
//! input into every parser a request reaches (form bodies, user codes, JWTs, API keys, scopes,
//! PKCE values, redirect URIs, JSON bodies), then the same mutations sent over HTTP to a real
//! `latchkeyd` with its log kept.
//!
//! Every property asserts an outcome (a round trip, a refusal), not only "no panic".
//!
//! Knobs, all with small defaults so the suite stays fast in CI:
//! - `PROPTEST_CASES`: cases per property (default 64 here; proptest's own is 256).
//!   proptest seeds randomly; `PROPTEST_RNG_SEED` replays a run.
//! - `LATCHKEY_FUZZ_ITERATIONS`: mutated inputs per parser in the byte-mutation loop (default
//!   2000).
//! - `LATCHKEY_FUZZ_REQUESTS`: mutated HTTP requests sent to the server (default 400).
//! - `LATCHKEY_FUZZ_SEED`: seed of the mutation loops (default fixed, so CI is deterministic;
//!   printed on failure).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_proto::device::{USER_CODE_ALPHABET, USER_CODE_LEN};
use latchkey_proto::{ErrorCode, ErrorResponse, UserCode};
use latchkey_server::domain::api_keys::{self, KEY_LEN, KeyFormatError};
use latchkey_server::domain::keys::{self, JwtError, KeyEntry, KeySet};
use latchkey_server::domain::pkce;
use latchkey_server::domain::scope::{SUPPORTED, Scope};
use latchkey_server::domain::tokens::{ACCESS_TYP, AccessClaims};
use latchkey_server::http::extract::{FormError, Params};
use latchkey_server::testkit::{Browser, TestDatabase};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::crash::{LoggedDaemon, assert_no_secret_logged};

// ---------------------------------------------------------------------------------------------
// Knobs and a small deterministic RNG.

/// A number from the environment, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: expected a number")),
        Err(_) => default,
    }
}

/// The seed of the mutation loops (`LATCHKEY_FUZZ_SEED`, default fixed).
pub fn seed() -> u64 {
    env_u64("LATCHKEY_FUZZ_SEED", 0x1a7c_4e11_5eed)
}

/// xorshift64*: tiny, deterministic, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced: xorshift must not start at 0).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn cfg() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 64;
    }
    c
}

// ---------------------------------------------------------------------------------------------
// The mutator.

/// Byte strings that tend to matter to parsers: separators, escapes, encodings, JSON, limits.
const INTERESTING: &[&[u8]] = &[
    b"%",
    b"%%",
    b"%0",
    b"%00",
    b"%FF",
    b"%C3%28",
    b"%E2%80%AE",
    b"+",
    b"&",
    b"&&",
    b"=",
    b"==",
    b";",
    b"-",
    b".",
    b"..",
    b"/",
    b"\\",
    b" ",
    b"\t",
    b"\r\n",
    b"\0",
    b"\"",
    b"'",
    b"{",
    b"}",
    b"[",
    b"]",
    b"[]",
    b"{}",
    b":",
    b",",
    b"null",
    b"true",
    b"-1",
    b"0",
    b"1e999",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"\\u0000",
    b"\\ud800",
    b"\xff",
    b"\xc3",
    b"\xe2\x80\xae",
    b"\xf0\x9f\x94\x91",
    b"lkr_",
    b"lk_",
    b"lkd_",
    b"eyJ",
    b"..",
    b"%2e%2e%2f",
    b"http://",
    b"127.0.0.1",
    b"[::1]",
    b"@",
    b"#",
    b"?",
];

/// Returns a mutation of `input` that differs from it: 1 to 4 byte-level edits, sometimes a
/// splice with another corpus entry.
pub fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    loop {
        let mut out = input.to_vec();
        for _ in 0..1 + rng.below(4) {
            let len = out.len();
            match rng.below(11) {
                0 if len > 0 => {
                    let i = rng.below(len);
                    out[i] ^= 1 << rng.below(8);
                }
                1 if len > 0 => {
                    let i = rng.below(len);
                    out[i] = rng.next() as u8;
                }
                2 if len > 0 => {
                    // Another printable ASCII character: the typo case.
                    let i = rng.below(len);
                    out[i] = 0x20 + rng.below(95) as u8;
                }
                3 => {
                    let i = rng.below(len + 1);
                    let chunk = rng.pick(INTERESTING);
                    out.splice(i..i, chunk.iter().copied());
                }
                4 if len > 0 => {
                    let i = rng.below(len);
                    let n = 1 + rng.below((len - i).min(16));
                    out.drain(i..i + n);
                }
                5 if len > 0 => {
                    let i = rng.below(len);
                    let n = 1 + rng.below((len - i).min(32));
                    let chunk: Vec<u8> = out[i..i + n].to_vec();
                    let at = rng.below(out.len() + 1);
                    out.splice(at..at, chunk);
                }
                6 if len > 0 => out.truncate(rng.below(len)),
                7 if !corpus.is_empty() => {
                    let other = rng.pick(corpus);
                    let cut = rng.below(len + 1);
                    let from = rng.below(other.len() + 1);
                    out.truncate(cut);
                    out.extend_from_slice(&other[from..]);
                }
                8 => {
                    // A long run, to find length limits.
                    let i = rng.below(len + 1);
                    let n = 64 << rng.below(6);
                    let b = *rng.pick(b"a%=&0{[\"");
                    out.splice(i..i, std::iter::repeat_n(b, n));
                }
                9 if len > 1 => {
                    let i = rng.below(len - 1);
                    out.swap(i, i + 1);
                }
                _ => {
                    let i = rng.below(len + 1);
                    out.insert(i, rng.next() as u8);
                }
            }
        }
        if out != input {
            return out;
        }
    }
}

/// Purely random bytes, sometimes ASCII only.
fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    let n = rng.below(200);
    let ascii = rng.below(2) == 0;
    (0..n)
        .map(|_| {
            if ascii {
                0x20 + rng.below(95) as u8
            } else {
                rng.next() as u8
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Shared fixtures.

/// A signing key set from a fixed seed: Ed25519 signatures are deterministic, so the tokens
/// of the mutation loop are the same on every run.
fn fixed_key_set() -> KeySet {
    let seed = URL_SAFE_NO_PAD.encode([7u8; 32]);
    KeySet::new(vec![
        KeyEntry::from_stored("fuzz-kid".into(), &seed, 0, 0, None).unwrap(),
    ])
}

/// A well-formed API key with a fixed body (the checksum computed as `api_keys` documents it:
/// the CRC-32 of the rest, six base62 digits).
fn fixed_api_key(i: usize) -> String {
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let body: String = "lk_"
        .chars()
        .chain((0..59).map(|j| B62[(i * 31 + j * 7) % 62] as char))
        .collect();
    let mut n = u64::from(api_keys::crc32(body.as_bytes()));
    let mut check = [b'0'; 6];
    for slot in check.iter_mut().rev() {
        *slot = B62[(n % 62) as usize];
        n /= 62;
    }
    let key = format!("{body}{}", String::from_utf8_lossy(&check));
    assert_eq!(
        api_keys::parse(&key),
        Ok(&key[..19]),
        "the documented format"
    );
    key
}

fn key_set() -> KeySet {
    let k = keys::generate();
    KeySet::new(vec![
        KeyEntry::from_stored(k.kid, &k.private_b64, 0, 0, None).unwrap(),
    ])
}

fn claims(sub: &str) -> AccessClaims {
    AccessClaims {
        iss: "http://127.0.0.1:1".into(),
        sub: sub.into(),
        aud: "http://127.0.0.1:1".into(),
        exp: 10_000,
        iat: 100,
        jti: "jti_1".into(),
        client_id: "latchkey-cli".into(),
        scope: "email profile".into(),
        sid: Some("ses_1".into()),
        org: Some("org_1".into()),
        role: Some("owner".into()),
    }
}

fn refused(ks: &KeySet, token: &str) -> bool {
    ks.verify::<Value>(token, ACCESS_TYP).is_err()
        && ks.verify::<AccessClaims>(token, ACCESS_TYP).is_err()
}

/// Checks a parsed user code's invariants against what was typed.
fn check_user_code(input: &str, code: &UserCode) {
    let c = code.canonical();
    assert!(
        latchkey_proto::device::USER_CODE_LENGTHS.contains(&c.len()),
        "{input:?}"
    );
    assert!(
        c.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)),
        "{input:?}"
    );
    let typed: String = input
        .chars()
        .filter(|ch| *ch != '-' && !ch.is_whitespace())
        .map(|ch| ch.to_ascii_uppercase())
        .collect();
    assert_eq!(typed, c, "{input:?}");
    assert_eq!(UserCode::parse(&code.to_string()).as_ref(), Ok(code));
}

/// Checks a scope the parser accepted: only supported tokens, and a stable string form.
fn check_scope(scope: &Scope) {
    let s = scope.to_string();
    assert!(s.split(' ').all(|t| SUPPORTED.contains(&t)), "{s}");
    assert_eq!(Scope::parse_requested(Some(&s)).as_ref(), Ok(scope));
}

/// Checks a redirect URI the loopback policy accepted.
fn check_loopback(raw: &str, u: &url::Url) {
    assert_eq!(u.scheme(), "http", "{raw}");
    assert_eq!(u.path(), pkce::LOOPBACK_PATH, "{raw}");
    assert!(u.port().is_some() && u.query().is_none() && u.fragment().is_none());
    let loopback = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    assert!(loopback, "{raw}");
}

/// Parses `bytes` as `T`; when it parses, serializing and parsing again is a fixed point.
fn json_round_trip<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<T>(bytes) else {
        return false;
    };
    let once = serde_json::to_value(&v).unwrap();
    let again: T = serde_json::from_value(once.clone()).unwrap();
    assert_eq!(serde_json::to_value(&again).unwrap(), once);
    true
}

/// Every wire type a server or client parses from JSON; returns how many accepted `bytes`.
fn all_json_types(bytes: &[u8]) -> usize {
    use latchkey_proto::*;
    [
        json_round_trip::<TokenResponse>(bytes),
        json_round_trip::<ErrorResponse>(bytes),
        json_round_trip::<DeviceAuthorizationResponse>(bytes),
        json_round_trip::<AuthorizationServerMetadata>(bytes),
        json_round_trip::<CliConfig>(bytes),
        json_round_trip::<Me>(bytes),
        json_round_trip::<ApiError>(bytes),
        json_round_trip::<SessionList>(bytes),
        json_round_trip::<ClaimAnonymousRequest>(bytes),
        json_round_trip::<ClaimAnonymousResponse>(bytes),
        json_round_trip::<CreateApiKeyRequest>(bytes),
        json_round_trip::<CreateApiKeyResponse>(bytes),
        json_round_trip::<ApiKeyList>(bytes),
        json_round_trip::<OrgList>(bytes),
        json_round_trip::<OrgDetail>(bytes),
        json_round_trip::<Invitation>(bytes),
        json_round_trip::<SwitchOrgRequest>(bytes),
        json_round_trip::<AccessClaims>(bytes),
    ]
    .iter()
    .filter(|ok| **ok)
    .count()
}

fn base62_char() -> impl Strategy<Value = char> {
    prop::sample::select(
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
            .iter()
            .map(|b| *b as char)
            .collect::<Vec<_>>(),
    )
}

// ---------------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(cfg())]

    // --- form bodies (RFC 6749 §3.1) ---

    #[test]
    fn form_round_trips_distinct_parameters(
        pairs in prop::collection::btree_map("\\PC{1,12}", "\\PC{1,40}", 0..8)
    ) {
        let body = serde_urlencoded::to_string(&pairs).unwrap();
        let p = Params::parse(body.as_bytes()).unwrap();
        for (k, v) in &pairs {
            prop_assert_eq!(p.get(k), Some(v.as_str()));
        }
    }

    #[test]
    fn form_refuses_a_repeated_parameter(
        pairs in prop::collection::btree_map("[a-z_]{1,10}", "\\PC{1,20}", 1..6),
        again in "\\PC{1,20}",
        pick in any::<prop::sample::Index>(),
    ) {
        let mut list: Vec<(String, String)> = pairs.into_iter().collect();
        let k = list[pick.index(list.len())].0.clone();
        list.push((k.clone(), again));
        let body = serde_urlencoded::to_string(&list).unwrap();
        prop_assert_eq!(Params::parse(body.as_bytes()).unwrap_err(), FormError::Repeated(k));
    }

    #[test]
    fn form_drops_empty_values(keys in prop::collection::btree_set("[a-z]{1,8}", 1..6)) {
        let body: Vec<String> = keys.iter().map(|k| format!("{k}=")).collect();
        let p = Params::parse(body.join("&").as_bytes()).unwrap();
        for k in &keys {
            prop_assert_eq!(p.get(k), None);
        }
    }

    #[test]
    fn form_arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(p) = Params::parse(&body) {
            for k in ["grant_type", "client_id", "code", "refresh_token", "scope"] {
                prop_assert!(p.get(k).is_none_or(|v| !v.is_empty()));
            }
        }
    }

    // --- user codes (RFC 8628 §6.1) ---

    #[test]
    fn user_code_accepts_any_case_dash_and_spaces(
        idx in any::<[u8; USER_CODE_LEN]>(),
        lower in any::<[bool; USER_CODE_LEN]>(),
        seps in prop::collection::vec(prop::sample::select(vec!["", "", "-", " ", "\t"]), USER_CODE_LEN + 1),
    ) {
        let code = UserCode::from_indexes(&idx);
        prop_assert_eq!(code.to_string().len(), USER_CODE_LEN + 1);
        let mut typed = String::from(seps[0]);
        for (i, ch) in code.canonical().chars().enumerate() {
            typed.push(if lower[i] { ch.to_ascii_lowercase() } else { ch });
            typed.push_str(seps[i + 1]);
        }
        prop_assert_eq!(UserCode::parse(&typed), Ok(code.clone()));
        prop_assert_eq!(UserCode::parse(&code.to_string()), Ok(code));
    }

    #[test]
    fn user_code_refuses_other_characters_and_lengths(
        idx in any::<[u8; USER_CODE_LEN]>(),
        at in 0..USER_CODE_LEN,
        bad in "[^BCDFGHJKLMNPQRSTVWXZbcdfghjklmnpqrstvwxz\\s-]",
        extra in 1usize..4,
    ) {
        let code = UserCode::from_indexes(&idx).canonical().to_owned();
        let mut wrong = code.clone();
        wrong.replace_range(at..at + 1, &bad);
        prop_assert!(UserCode::parse(&wrong).is_err());
        prop_assert!(UserCode::parse(&code[..USER_CODE_LEN - extra]).is_err());
        let longer = format!("{code}{}", &code[..extra]);
        prop_assert!(UserCode::parse(&longer).is_err());
    }

    #[test]
    fn user_code_arbitrary_strings(input in "\\PC{0,24}") {
        if let Ok(c) = UserCode::parse(&input) {
            check_user_code(&input, &c);
        }
    }

    // --- access tokens (RFC 9068, RFC 8725) ---

    #[test]
    fn jwt_sign_verify_round_trip(sub in "\\PC{0,64}", exp in any::<i64>()) {
        let ks = key_set();
        let mut c = claims(&sub);
        c.exp = exp;
        let token = ks.sign(100, ACCESS_TYP, &c).unwrap();
        prop_assert_eq!(ks.verify::<AccessClaims>(&token, ACCESS_TYP), Ok(c));
        // Another server's key, or the wrong type, is refused.
        prop_assert_eq!(key_set().verify::<Value>(&token, ACCESS_TYP), Err(JwtError::UnknownKey));
        prop_assert_eq!(ks.verify::<Value>(&token, "JWT"), Err(JwtError::WrongHeader));
    }

    #[test]
    fn jwt_any_single_change_is_refused(
        at in any::<prop::sample::Index>(),
        with in prop_oneof![
            prop::sample::select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".to_vec()).prop_map(char::from),
            any::<char>(),
        ],
        op in 0..3u8,
    ) {
        let ks = key_set();
        let token = ks.sign(100, ACCESS_TYP, &claims("u1")).unwrap();
        let mut chars: Vec<char> = token.chars().collect();
        let i = at.index(chars.len());
        match op {
            0 => {
                prop_assume!(chars[i] != with);
                chars[i] = with;
            }
            1 => chars.insert(i, with),
            _ => {
                chars.remove(i);
            }
        }
        let changed: String = chars.into_iter().collect();
        prop_assert!(refused(&ks, &changed), "accepted: {}", changed);
    }

    #[test]
    fn jwt_forged_headers_are_refused(
        alg in prop::sample::select(vec!["none", "None", "HS256", "RS256", "ES256", "eddsa", "EdDSA ", "Ed25519", ""]),
        typ in prop::option::of(prop::sample::select(vec!["at+jwt", "JWT", "application/at+jwt", "jwt"])),
        keep_sig in any::<bool>(),
    ) {
        let ks = key_set();
        let token = ks.sign(100, ACCESS_TYP, &claims("u1")).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let kid = ks.keys()[0].kid.clone();
        let header = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&json!({"alg": alg, "typ": typ, "kid": kid})).unwrap(),
        );
        let forged_claims = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&claims("admin")).unwrap(),
        );
        let sig = if keep_sig { parts[2] } else { "" };
        for c in [parts[1], forged_claims.as_str()] {
            let forged = format!("{header}.{c}.{sig}");
            prop_assert!(refused(&ks, &forged), "accepted: {}", forged);
        }
    }

    #[test]
    fn jwt_arbitrary_strings_are_refused(
        s in prop_oneof!["\\PC{0,300}", "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,100}"]
    ) {
        let ks = key_set();
        prop_assert!(refused(&ks, &s));
    }

    // --- API keys ---

    #[test]
    fn api_key_any_single_change_fails_the_checksum_or_the_shape(
        at in 0..KEY_LEN,
        with in prop_oneof![base62_char(), any::<char>()],
    ) {
        let (key, id) = api_keys::generate();
        prop_assert_eq!(api_keys::parse(&key), Ok(id.as_str()));
        let mut chars: Vec<char> = key.chars().collect();
        prop_assume!(chars[at] != with);
        chars[at] = with;
        let typo: String = chars.into_iter().collect();
        let expected = if at >= api_keys::PREFIX.len() && with.is_ascii_alphanumeric() {
            KeyFormatError::Checksum
        } else {
            KeyFormatError::Shape
        };
        prop_assert_eq!(api_keys::parse(&typo), Err(expected));
    }

    #[test]
    fn api_key_swapped_neighbours_fail_the_checksum(at in api_keys::PREFIX.len()..KEY_LEN - 1) {
        let (key, _) = api_keys::generate();
        let mut b = key.clone().into_bytes();
        prop_assume!(b[at] != b[at + 1]);
        b.swap(at, at + 1);
        let swapped = String::from_utf8(b).unwrap();
        prop_assert_eq!(api_keys::parse(&swapped), Err(KeyFormatError::Checksum));
    }

    #[test]
    fn api_key_truncated_or_extended_is_a_shape_error(cut in 0..KEY_LEN, more in "[A-Za-z0-9]{1,4}") {
        let (key, _) = api_keys::generate();
        prop_assert_eq!(api_keys::parse(&key[..cut]), Err(KeyFormatError::Shape));
        let longer = format!("{key}{more}");
        prop_assert_eq!(api_keys::parse(&longer), Err(KeyFormatError::Shape));
    }

    #[test]
    fn api_key_arbitrary_strings(s in prop_oneof!["\\PC{0,80}", "lk_[A-Za-z0-9]{65}"]) {
        if let Ok(id) = api_keys::parse(&s) {
            prop_assert!(s.len() == KEY_LEN && s.starts_with("lk_") && s.starts_with(id));
        }
    }

    // --- scopes (RFC 6749 §3.3) ---

    #[test]
    fn scope_any_supported_subset_in_any_order(
        toks in prop::sample::subsequence(SUPPORTED.to_vec(), 1..=SUPPORTED.len()).prop_shuffle(),
        dup in any::<bool>(),
        spaces in prop::collection::vec(1usize..4, 8),
    ) {
        let mut list = toks.clone();
        if dup {
            list.push(toks[0]);
        }
        let mut raw = String::new();
        for (i, t) in list.iter().enumerate() {
            raw.push_str(&" ".repeat(spaces[i % spaces.len()]));
            raw.push_str(t);
        }
        let scope = Scope::parse_requested(Some(&raw)).unwrap();
        let sorted: BTreeSet<&str> = toks.iter().copied().collect();
        prop_assert_eq!(scope.to_string(), sorted.into_iter().collect::<Vec<_>>().join(" "));
        check_scope(&scope);
        // Narrowing to any part of it works; widening does not.
        let granted = Scope::from_stored(&scope.to_string());
        prop_assert_eq!(granted.narrow(Some(toks[0])).unwrap().to_string(), toks[0]);
        let missing: Vec<&&str> = SUPPORTED.iter().filter(|s| !scope.contains(s)).collect();
        if let Some(m) = missing.first() {
            prop_assert!(granted.narrow(Some(m)).is_err());
        }
    }

    #[test]
    fn scope_unknown_tokens_are_refused(
        known in prop::sample::subsequence(SUPPORTED.to_vec(), 0..=SUPPORTED.len()),
        unknown in "[!#-\\[\\]-~]{1,16}",
    ) {
        prop_assume!(!SUPPORTED.contains(&unknown.as_str()));
        let raw = format!("{} {unknown}", known.join(" "));
        prop_assert!(Scope::parse_requested(Some(&raw)).is_err());
    }

    #[test]
    fn scope_arbitrary_strings(s in "\\PC{0,60}") {
        match Scope::parse_requested(Some(&s)) {
            Ok(scope) => check_scope(&scope),
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    // --- PKCE (RFC 7636) and loopback redirects (RFC 8252) ---

    #[test]
    fn pkce_verifier_matches_only_its_challenge(
        v in "[A-Za-z0-9._~-]{43,128}",
        at in any::<prop::sample::Index>(),
        with in "[A-Za-z0-9._~-]",
    ) {
        prop_assert!(pkce::valid_pkce_string(&v));
        let challenge = pkce::s256(&v);
        prop_assert!(pkce::valid_pkce_string(&challenge));
        prop_assert_eq!(challenge.len(), 43);
        prop_assert!(pkce::verify_s256(&v, &challenge));
        let i = at.index(v.len());
        let mut other = v.clone();
        other.replace_range(i..i + 1, &with);
        prop_assert_eq!(pkce::verify_s256(&other, &challenge), other == v);
        // The verifier is not its own challenge.
        prop_assert!(!pkce::verify_s256(&v, &v));
    }

    #[test]
    fn pkce_bad_verifiers_are_refused(
        short in "[A-Za-z0-9]{0,42}",
        long in "[A-Za-z0-9]{129,200}",
        bad in "[A-Za-z0-9]{43,60}[^A-Za-z0-9._~-][A-Za-z0-9]{0,10}",
    ) {
        for v in [&short, &long, &bad] {
            prop_assert!(!pkce::valid_pkce_string(v));
            prop_assert!(!pkce::verify_s256(v, &pkce::s256(v)));
        }
    }

    #[test]
    fn loopback_redirects_any_port_exact_path(
        // Port 80 is left out: `url` drops a default port, so `:80` reads as "no port" and
        // is refused (see the report of issue 10).
        port in (1u16..).prop_filter("not the default port", |p| *p != 80),
        v6 in any::<bool>(),
        host in (0u8..=255, 0u8..=255, 1u8..=254),
        // Not starting with `/` or `.`, and too short for `x/../callback`: never normalizes
        // back to `/callback`.
        suffix in "[a-zA-Z0-9_~%-][a-zA-Z0-9/._~%-]{0,10}",
        query in "[a-z]{0,5}=[a-z0-9]{0,5}",
    ) {
        let loopback = if v6 { "[::1]".to_owned() } else { format!("127.{}.{}.{}", host.0, host.1, host.2) };
        let ok = format!("http://{loopback}:{port}/callback");
        let u = pkce::check_loopback_redirect(&ok).unwrap();
        check_loopback(&ok, &u);
        let bad_path = format!("http://{loopback}:{port}/callback{suffix}");
        prop_assert!(pkce::check_loopback_redirect(&bad_path).is_err(), "{}", bad_path);
        for bad in [
            format!("https://{loopback}:{port}/callback"),
            format!("http://{loopback}/callback"),
            format!("http://{loopback}:{port}/callback?{query}"),
            format!("http://{loopback}:{port}/callback#{query}"),
            format!("http://u@{loopback}:{port}/callback"),
            format!("http://localhost:{port}/callback"),
            format!("http://10.{}.{}.{}:{port}/callback", host.0, host.1, host.2),
        ] {
            prop_assert!(pkce::check_loopback_redirect(&bad).is_err(), "{}", bad);
        }
    }

    #[test]
    fn loopback_arbitrary_strings(s in prop_oneof!["\\PC{0,80}", "http://[\\[\\]0-9a-f:.@]{1,30}(:[0-9]{1,6})?/[a-z/%.]{0,12}"]) {
        if let Ok(u) = pkce::check_loopback_redirect(&s) {
            check_loopback(&s, &u);
        }
    }

    // --- org slugs ---

    #[test]
    fn slugify_always_gives_a_valid_slug(
        name in prop_oneof!["\\PC{0,80}", "[a-z0-9 -]{0,80}", "[^a-zA-Z0-9]{1,10}"]
    ) {
        let slug = latchkey_server::http::orgs::slugify(&name);
        prop_assert!(latchkey_server::http::orgs::valid_slug(&slug), "{:?} → {:?}", name, slug);
    }

    // --- JSON bodies into the wire types ---

    #[test]
    fn json_arbitrary_bytes_into_every_wire_type(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        all_json_types(&bytes);
    }

    #[test]
    fn json_arbitrary_values_into_every_wire_type(
        v in prop::collection::btree_map(
            prop::sample::select(vec!["access_token", "token_type", "expires_in", "refresh_token", "scope", "error", "error_description", "issuer", "name", "org", "role", "expires_in_days", "code", "message", "user", "client_id", "token_expires_at", "refresh_token"]),
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(|f| json!(f)),
                "\\PC{0,20}".prop_map(Value::from),
                Just(json!([])),
                Just(json!({})),
            ],
            0..8,
        )
    ) {
        let bytes = serde_json::to_vec(&v).unwrap();
        all_json_types(&bytes);
    }

    #[test]
    fn error_codes_and_error_bodies_round_trip(
        code in "[a-z_]{1,30}",
        desc in prop::option::of("\\PC{0,80}"),
    ) {
        let parsed = ErrorCode::parse(&code);
        prop_assert_eq!(parsed.as_str(), code.as_str());
        let e = ErrorResponse { error: ErrorCode::parse(&code), error_description: desc, error_uri: None };
        let back: ErrorResponse = serde_json::from_slice(&serde_json::to_vec(&e).unwrap()).unwrap();
        prop_assert_eq!(back, e);
    }
}

// ---------------------------------------------------------------------------------------------
// The byte-mutation loop over a corpus, against every parser.

#[test]
fn fuzz_parsers_with_a_mutated_corpus() {
    let iterations = env_u64("LATCHKEY_FUZZ_ITERATIONS", 2000) as usize;
    let seed = seed();
    eprintln!("fuzz parsers: {iterations} iterations per parser, LATCHKEY_FUZZ_SEED={seed}");
    let started = Instant::now();
    let ks = fixed_key_set();
    let tokens: Vec<String> = (0..3)
        .map(|i| ks.sign(100, ACCESS_TYP, &claims(&format!("u{i}"))).unwrap())
        .collect();
    let api: Vec<String> = (0..3).map(fixed_api_key).collect();
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = pkce::s256(verifier);

    type Check<'a> = Box<dyn Fn(&[u8]) -> bool + 'a>;
    let targets: Vec<(&str, Vec<&str>, Check)> = vec![
        (
            "form",
            vec![
                "grant_type=refresh_token&refresh_token=lkr_abc&client_id=latchkey-cli",
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=lkd_x",
                "a=1&b=&c=%20%2B+x&scope=email+profile",
            ],
            Box::new(|b| match Params::parse(b) {
                Ok(p) => {
                    for k in ["grant_type", "refresh_token", "client_id", "a", "b", "c"] {
                        assert!(p.get(k).is_none_or(|v| !v.is_empty()));
                    }
                    true
                }
                Err(_) => false,
            }),
        ),
        (
            "user_code",
            vec!["BCDF-GHJK", "bcdf ghjk", " XZXZ-XZXZ "],
            Box::new(|b| {
                let s = String::from_utf8_lossy(b);
                match UserCode::parse(&s) {
                    Ok(c) => {
                        check_user_code(&s, &c);
                        true
                    }
                    Err(_) => false,
                }
            }),
        ),
        (
            "jwt",
            tokens.iter().map(String::as_str).collect(),
            Box::new(|b| {
                let s = String::from_utf8_lossy(b);
                let valid = tokens.iter().any(|t| *t == s);
                assert_eq!(!refused(&ks, &s), valid, "{s}");
                valid
            }),
        ),
        (
            "api_key",
            api.iter().map(String::as_str).collect(),
            Box::new(|b| {
                let s = String::from_utf8_lossy(b);
                let valid = api.iter().any(|k| *k == s);
                assert_eq!(api_keys::parse(&s).is_ok(), valid, "{s}");
                valid
            }),
        ),
        (
            "scope",
            vec![
                "openid profile email offline_access",
                "email",
                " profile  email ",
            ],
            Box::new(
                |b| match Scope::parse_requested(Some(&String::from_utf8_lossy(b))) {
                    Ok(s) => {
                        check_scope(&s);
                        true
                    }
                    Err(_) => false,
                },
            ),
        ),
        (
            "pkce",
            vec![verifier],
            Box::new(|b| {
                let s = String::from_utf8_lossy(b);
                let ok = pkce::verify_s256(&s, &challenge);
                assert_eq!(ok, s == verifier, "{s}");
                if pkce::valid_pkce_string(&s) {
                    assert!(pkce::verify_s256(&s, &pkce::s256(&s)));
                }
                ok
            }),
        ),
        (
            "redirect_uri",
            vec![
                "http://127.0.0.1:49152/callback",
                "http://[::1]:8080/callback",
                "http://[::1]:65535/callback",
            ],
            Box::new(|b| {
                let s = String::from_utf8_lossy(b);
                match pkce::check_loopback_redirect(&s) {
                    Ok(u) => {
                        check_loopback(&s, &u);
                        true
                    }
                    Err(_) => false,
                }
            }),
        ),
        (
            "json",
            vec![
                r#"{"access_token":"eyJ.x.y","token_type":"Bearer","expires_in":3600,"refresh_token":"lkr_x","scope":"email"}"#,
                r#"{"error":"slow_down","error_description":"poll slower"}"#,
                r#"{"name":"ci","org":"acme","role":"member","expires_in_days":30}"#,
                r#"{"user":{"id":"usr_1","email":null,"anonymous":true},"orgs":[],"client_id":"latchkey-cli","token_expires_at":1}"#,
                r#"{"issuer":"https://a","client_id":"c","login_methods":["device"]}"#,
                r#"{"refresh_token":"lkr_abc"}"#,
            ],
            Box::new(|b| all_json_types(b) > 0),
        ),
    ];

    let mut report = BTreeMap::new();
    for (n, (name, seeds, check)) in targets.iter().enumerate() {
        // One generator per parser: what one parser's corpus does to the sequence does not
        // change what the others get.
        let mut rng = Rng::new(seed ^ (n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let corpus: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
        for s in &corpus {
            assert!(
                check(s),
                "{name}: corpus entry refused: {}",
                String::from_utf8_lossy(s)
            );
        }
        let mut accepted = 0;
        for i in 0..iterations {
            let input = if i % 10 == 9 {
                random_bytes(&mut rng)
            } else {
                let base = rng.pick(&corpus).clone();
                mutate(&mut rng, &base, &corpus)
            };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input)));
            match outcome {
                Ok(true) => accepted += 1,
                Ok(false) => {}
                Err(_) => panic!(
                    "{name}: failed on input {:?} (iteration {i}, LATCHKEY_FUZZ_SEED={seed})",
                    String::from_utf8_lossy(&input)
                ),
            }
        }
        report.insert(*name, accepted);
    }
    eprintln!(
        "fuzz parsers: {} inputs, 0 panics, {:.1} s; accepted per parser: {report:?}",
        iterations * targets.len(),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// The same mutations over HTTP, to a real latchkeyd.

/// A request of the corpus.
#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Sent by the signed-in browser (its cookies) rather than a plain client.
    browser: bool,
}

fn form(method: &'static str, path: &str, pairs: &[(&str, &str)]) -> Req {
    Req {
        method,
        path: path.to_owned(),
        headers: vec![(
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        )],
        body: serde_urlencoded::to_string(pairs).unwrap().into_bytes(),
        browser: false,
    }
}

fn json_req(method: &'static str, path: &str, bearer: &str, body: Value) -> Req {
    Req {
        method,
        path: path.to_owned(),
        headers: vec![
            ("content-type", "application/json".to_owned()),
            ("authorization", format!("Bearer {bearer}")),
        ],
        body: serde_json::to_vec(&body).unwrap(),
        browser: false,
    }
}

fn get(path: &str, bearer: Option<&str>) -> Req {
    Req {
        method: "GET",
        path: path.to_owned(),
        headers: bearer
            .map(|b| vec![("authorization", format!("Bearer {b}"))])
            .unwrap_or_default(),
        body: Vec::new(),
        browser: false,
    }
}

fn with_browser(mut r: Req) -> Req {
    r.browser = true;
    r
}

/// Header names a mutation may add or change.
const HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "cookie",
    "x-forwarded-for",
    "user-agent",
    "accept",
    "origin",
    "latchkey-client-version",
    "x-request-id",
    "content-encoding",
];

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "FUZZ",
];

/// Keeps the bytes a header value may hold (no control characters but tab).
fn header_bytes(b: Vec<u8>) -> Vec<u8> {
    b.into_iter()
        .filter(|c| *c == b'\t' || (*c >= 0x20 && *c != 0x7f))
        .collect()
}

/// Mutates one part (or several) of a request.
fn mutate_request(rng: &mut Rng, r: &Req, bodies: &[Vec<u8>]) -> Req {
    let mut m = r.clone();
    let parts = 1 + usize::from(rng.below(5) == 0);
    for _ in 0..parts {
        match rng.below(20) {
            0..=10 => m.body = mutate(rng, &m.body, bodies),
            11..=14 => {
                let name = if !m.headers.is_empty() && rng.below(3) > 0 {
                    m.headers[rng.below(m.headers.len())].0
                } else {
                    *rng.pick(HEADERS)
                };
                let old = m
                    .headers
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| "Bearer eyJ.x.y".to_owned());
                let new = header_bytes(mutate(rng, old.as_bytes(), &[]));
                m.headers.retain(|(n, _)| *n != name);
                m.headers
                    .push((name, String::from_utf8_lossy(&new).into_owned()));
            }
            15..=18 => {
                let p = mutate(rng, m.path.as_bytes(), &[]);
                // Keep it a path: what a URL parser turns it into is what a client sends.
                let p = String::from_utf8_lossy(&p).into_owned();
                m.path = if p.starts_with('/') {
                    p
                } else {
                    format!("/{p}")
                };
            }
            _ => m.method = *rng.pick(METHODS),
        }
    }
    m
}

/// Every token, code and key in an answer (they are secrets the server handed out).
fn secrets_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    (
                        "access_token" | "refresh_token" | "id_token" | "device_code" | "key"
                        | "user_code",
                        Value::String(s),
                    ) if s.len() >= 6 => out.push(s.clone()),
                    _ => secrets_in(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| secrets_in(v, out)),
        _ => {}
    }
}

async fn send(
    plain: &reqwest::Client,
    browser: &reqwest::Client,
    base: &str,
    r: &Req,
) -> Result<(u16, Value), String> {
    let url = url::Url::parse(&format!("{base}{}", r.path)).map_err(|e| format!("url: {e}"))?;
    let method = reqwest::Method::from_bytes(r.method.as_bytes()).unwrap();
    let client = if r.browser { browser } else { plain };
    let mut req = client.request(method, url).body(r.body.clone());
    for (n, v) in &r.headers {
        if let Ok(v) = reqwest::header::HeaderValue::from_bytes(v.as_bytes()) {
            req = req.header(*n, v);
        }
    }
    let resp = req.send().await.map_err(|e| {
        if e.is_builder() {
            format!("url: {e}")
        } else {
            format!("transport: {e:?}")
        }
    })?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| format!("body: {e:?}"))?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

async fn ok_json(plain: &reqwest::Client, base: &str, r: &Req) -> Value {
    let (s, v) = send(plain, plain, base, r).await.unwrap();
    assert!((200..300).contains(&s), "{} {} → {s} {v}", r.method, r.path);
    v
}

#[tokio::test]
async fn fuzz_http_requests_never_get_a_server_error() {
    let requests = env_u64("LATCHKEY_FUZZ_REQUESTS", 400) as usize;
    let seed = seed();
    let started = Instant::now();
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("latchkeyd.log");
    let mut daemon = LoggedDaemon::start(
        &db.url,
        "127.0.0.1:0",
        &log,
        &[
            "--login-methods",
            "browser,device,password,anonymous",
            "--device-poll-interval",
            "1",
        ],
    );
    let base = daemon.url.clone();
    let plain = super::http();

    // A person with a browser session, tokens of several sessions, an API key, an org, an
    // invitation, device codes and an authorization code: what the corpus is built from.
    let password = "fuzzing password 1";
    let browser = Browser::new(&base);
    browser.sign_up("fuzz@example.com", password).await;
    let mut secrets: Vec<String> = vec![password.to_owned()];
    let login = form(
        "POST",
        "/oauth/token",
        &[
            ("grant_type", "password"),
            ("username", "fuzz@example.com"),
            ("password", password),
            ("client_id", "latchkey-cli"),
            ("scope", "openid email profile offline_access"),
        ],
    );
    let a = ok_json(&plain, &base, &login).await;
    let b = ok_json(&plain, &base, &login).await;
    let c = ok_json(&plain, &base, &login).await;
    let access = a["access_token"].as_str().unwrap().to_owned();
    let refresh_b = b["refresh_token"].as_str().unwrap().to_owned();
    let access_c = c["access_token"].as_str().unwrap().to_owned();
    let anon = ok_json(
        &plain,
        &base,
        &form(
            "POST",
            "/oauth/token",
            &[
                ("grant_type", latchkey_proto::GRANT_ANONYMOUS),
                ("client_id", "latchkey-cli"),
            ],
        ),
    )
    .await;
    let anon_refresh = anon["refresh_token"].as_str().unwrap().to_owned();
    let me = ok_json(&plain, &base, &get("/v1/me", Some(&access))).await;
    let user_id = me["user"]["id"].as_str().unwrap().to_owned();
    let created = ok_json(
        &plain,
        &base,
        &json_req("POST", "/v1/api-keys", &access, json!({"name": "fuzz-key"})),
    )
    .await;
    let api_key = created["key"].as_str().unwrap().to_owned();
    let org = ok_json(
        &plain,
        &base,
        &json_req(
            "POST",
            "/v1/orgs",
            &access,
            json!({"name": "Fuzz Org", "slug": "fuzz-org"}),
        ),
    )
    .await;
    let slug = org["slug"].as_str().unwrap().to_owned();
    let inv = ok_json(
        &plain,
        &base,
        &json_req(
            "POST",
            &format!("/v1/orgs/{slug}/invitations"),
            &access,
            json!({"email": "friend@example.com", "role": "member"}),
        ),
    )
    .await;
    let link = inv["link"].as_str().unwrap().to_owned();
    let invite_token = link.rsplit('/').next().unwrap().to_owned();
    let dev = ok_json(
        &plain,
        &base,
        &form(
            "POST",
            "/oauth/device_authorization",
            &[("client_id", "latchkey-cli"), ("device_name", "fuzz-box")],
        ),
    )
    .await;
    let device_code = dev["device_code"].as_str().unwrap().to_owned();
    let user_code = dev["user_code"].as_str().unwrap().to_owned();
    let device_page = browser.get(&format!("/device?user_code={user_code}")).await;
    let csrf = Browser::csrf(&device_page);
    let verifier = "fuzz-verifier-0123456789-0123456789-0123456789";
    let challenge = latchkey_server::domain::pkce::s256(verifier);
    let redirect = "http://127.0.0.1:49999/callback";
    let authorize_query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", "latchkey-cli"),
        ("redirect_uri", redirect),
        ("state", "st-1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    let location = browser
        .consent(&format!("{base}/oauth/authorize?{authorize_query}"), true)
        .await;
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    for v in [&a, &b, &c, &anon, &created, &dev] {
        secrets_in(v, &mut secrets);
    }
    secrets.extend([
        invite_token.clone(),
        code.clone(),
        verifier.to_owned(),
        csrf.clone(),
        user_code.replace('-', ""),
    ]);

    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{api_key}", &api_key[..19]))
    );
    let corpus = vec![
        login.clone(),
        form(
            "POST",
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_b),
                ("client_id", "latchkey-cli"),
                ("scope", "email"),
            ],
        ),
        form(
            "POST",
            "/oauth/token",
            &[
                ("grant_type", latchkey_proto::GRANT_DEVICE_CODE),
                ("device_code", &device_code),
                ("client_id", "latchkey-cli"),
            ],
        ),
        form(
            "POST",
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", verifier),
                ("redirect_uri", redirect),
                ("client_id", "latchkey-cli"),
            ],
        ),
        {
            let mut r = form(
                "POST",
                "/oauth/token",
                &[("grant_type", "client_credentials"), ("scope", "email")],
            );
            r.headers.push(("authorization", basic.clone()));
            r
        },
        form(
            "POST",
            "/oauth/device_authorization",
            &[
                ("client_id", "latchkey-cli"),
                ("scope", "email profile"),
                ("device_name", "box"),
            ],
        ),
        form(
            "POST",
            "/oauth/revoke",
            &[("token", &access_c), ("client_id", "latchkey-cli")],
        ),
        {
            let mut r = form(
                "POST",
                "/oauth/introspect",
                &[("token", &refresh_b), ("token_type_hint", "refresh_token")],
            );
            r.headers
                .push(("authorization", format!("Bearer {access}")));
            r
        },
        {
            let mut r = form("POST", "/oauth/introspect", &[("token", &access)]);
            r.headers.push(("authorization", basic.clone()));
            r
        },
        get("/v1/me", Some(&access)),
        get("/v1/sessions", Some(&access)),
        get("/v1/api-keys", Some(&access)),
        get("/v1/orgs", Some(&access)),
        get(&format!("/v1/orgs/{slug}"), Some(&access)),
        get(&format!("/v1/orgs/{slug}/invitations"), Some(&access)),
        get("/oauth/userinfo", Some(&access)),
        get("/v1/auth/cli/config", None),
        get("/.well-known/openid-configuration", None),
        get("/.well-known/jwks.json", None),
        get("/healthz", None),
        get("/openapi.json", None),
        json_req(
            "POST",
            "/v1/api-keys",
            &access,
            json!({"name": "k2", "org": slug, "role": "viewer", "expires_in_days": 30}),
        ),
        json_req(
            "POST",
            "/v1/orgs",
            &access,
            json!({"name": "Other", "slug": "other-org"}),
        ),
        json_req(
            "PATCH",
            &format!("/v1/orgs/{slug}"),
            &access,
            json!({"name": "Renamed"}),
        ),
        json_req(
            "POST",
            &format!("/v1/orgs/{slug}/invitations"),
            &access,
            json!({"email": "x@example.com", "role": "admin"}),
        ),
        json_req(
            "PATCH",
            &format!("/v1/orgs/{slug}/members/{user_id}"),
            &access,
            json!({"role": "admin"}),
        ),
        json_req(
            "POST",
            &format!("/v1/orgs/{slug}/transfer"),
            &access,
            json!({"user_id": user_id}),
        ),
        json_req(
            "POST",
            "/v1/invitations/accept",
            &access,
            json!({"token": invite_token}),
        ),
        json_req("PUT", "/v1/session/org", &access, json!({"org": slug})),
        json_req(
            "POST",
            "/v1/anonymous/claim",
            &access,
            json!({"refresh_token": anon_refresh}),
        ),
        json_req("DELETE", "/v1/sessions/ses_0000", &access, json!(null)),
        with_browser(get(&format!("/oauth/authorize?{authorize_query}"), None)),
        with_browser(get(&format!("/device?user_code={user_code}"), None)),
        with_browser(get(&format!("/invite/{invite_token}"), None)),
        with_browser(form(
            "POST",
            "/device",
            &[
                ("csrf", &csrf),
                ("user_code", &user_code),
                ("decision", "approve"),
            ],
        )),
        with_browser(form(
            "POST",
            "/signin",
            &[
                ("csrf", &csrf),
                ("email", "fuzz@example.com"),
                ("password", password),
                ("next", "/account"),
            ],
        )),
        with_browser(form(
            "POST",
            "/oauth/authorize",
            &[
                ("csrf", &csrf),
                ("response_type", "code"),
                ("client_id", "latchkey-cli"),
                ("redirect_uri", redirect),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("decision", "approve"),
            ],
        )),
    ];
    // Each entry once as it is (none may fail), then mutations.
    let bodies: Vec<Vec<u8>> = corpus.iter().map(|r| r.body.clone()).collect();
    let mut failures = Vec::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut rng = Rng::new(seed ^ 0x4854_5450);
    let total = corpus.len() + requests;
    for i in 0..total {
        let r = if i < corpus.len() {
            corpus[i].clone()
        } else {
            let pick = rng.below(corpus.len());
            mutate_request(&mut rng, &corpus[pick], &bodies)
        };
        match send(&plain, &browser.no_follow, &base, &r).await {
            Err(e) if e.starts_with("url:") => {}
            Err(e) => failures.push(format!("{e} on {r:?}")),
            Ok((s, v)) => {
                *statuses.entry(s).or_default() += 1;
                if s >= 500 {
                    failures.push(format!(
                        "{s} {v} for {} {} headers {:?} body {:?}",
                        r.method,
                        r.path,
                        r.headers,
                        String::from_utf8_lossy(&r.body)
                    ));
                }
                secrets_in(&v, &mut secrets);
            }
        }
    }
    let alive = daemon.is_running();
    daemon.stop();
    eprintln!(
        "fuzz http: {total} requests (LATCHKEY_FUZZ_SEED={seed}), statuses {statuses:?}, {} \
         failures, {:.1} s",
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(alive, "latchkeyd died");
    assert!(
        failures.is_empty(),
        "server errors or dropped connections:\n{}",
        failures.join("\n")
    );
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("request"), "debug logs were captured");
    assert!(!logs.contains("panicked"), "latchkeyd panicked:\n{logs}");
    assert_no_secret_logged(&logs, secrets.iter().map(String::as_str));
}
