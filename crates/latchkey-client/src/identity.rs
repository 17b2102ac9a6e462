//! Who is signed in: from latchkey's `/v1/me`, from an OpenID userinfo endpoint, or from the
//! claims of an ID token, whichever the server offers.
//!
//! Only `/v1/me` and userinfo *validate* a token (the server answers for it). ID token claims are
//! read without checking the signature and only to show a name after login: nothing is
//! authorised on them. Access tokens are never decoded; they are opaque to the client.

use crate::credentials::{Identity, OrgSummary, SessionSummary};
use base64::Engine;
use latchkey_proto::{Me, OrgMembership};

/// The org summary of a membership.
pub(crate) fn org_summary(m: &OrgMembership) -> OrgSummary {
    OrgSummary {
        id: m.id.clone(),
        slug: m.slug.clone(),
        name: Some(m.name.clone()),
        role: Some(m.role.clone()),
    }
}

/// Identity and session as `/v1/me` describes them.
pub(crate) fn from_me(me: &Me) -> (Identity, SessionSummary) {
    let identity = Identity {
        user_id: Some(me.user.id.clone()),
        email: me.user.email.clone(),
        name: me.user.name.clone(),
        anonymous: me.user.anonymous,
        org: me.org.as_ref().map(org_summary),
    };
    let session = SessionSummary {
        id: me.session.as_ref().map(|s| s.id.clone()),
        name: me.session.as_ref().and_then(|s| s.name.clone()),
    };
    (identity, session)
}

/// Identity from OpenID claims (an ID token payload or a userinfo response).
pub(crate) fn from_claims(claims: &serde_json::Value) -> Identity {
    let s = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    Identity {
        user_id: s("sub"),
        email: s("email"),
        name: s("name").or_else(|| s("preferred_username")),
        anonymous: false,
        org: None,
    }
}

/// The payload of a JWT, decoded without verification (display only).
pub(crate) fn unverified_jwt_claims(jwt: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn claims_from_id_token() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"none"}"#),
            b64(r#"{"sub":"u-1","email":"a@example.com","preferred_username":"alice"}"#)
        );
        let id = from_claims(&unverified_jwt_claims(&jwt).unwrap());
        assert_eq!(id.user_id.as_deref(), Some("u-1"));
        assert_eq!(id.email.as_deref(), Some("a@example.com"));
        assert_eq!(id.name.as_deref(), Some("alice"));
        assert!(unverified_jwt_claims("not-a-jwt").is_none());
    }
}
