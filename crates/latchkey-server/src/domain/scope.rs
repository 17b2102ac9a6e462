//! Scopes (RFC 6749 §3.3): parsing, validation against what the server supports, narrowing.

use std::collections::BTreeSet;

/// Scopes this server understands.
pub const SUPPORTED: &[&str] = &["openid", "profile", "email", "offline_access"];

/// Scope granted when a client asks for none (RFC 6749 §3.3 lets the server pick a default).
pub const DEFAULT: &str = "profile email offline_access";

/// A set of scope tokens, kept sorted so the string form is canonical.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// Parses a space-separated scope string. Unknown scope tokens are refused.
    pub fn parse_requested(raw: Option<&str>) -> Result<Self, String> {
        let raw = match raw.map(str::trim) {
            None | Some("") => DEFAULT,
            Some(s) => s,
        };
        let mut set = BTreeSet::new();
        for tok in raw.split(' ').filter(|t| !t.is_empty()) {
            if !tok
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
            {
                return Err("scope contains characters RFC 6749 §3.3 does not allow".into());
            }
            if !SUPPORTED.contains(&tok) {
                return Err(format!(
                    "unknown scope `{tok}`; supported: {}",
                    SUPPORTED.join(" ")
                ));
            }
            set.insert(tok.to_owned());
        }
        Ok(Self(set))
    }

    /// Parses a stored (already validated) scope string.
    pub fn from_stored(raw: &str) -> Self {
        Self(
            raw.split(' ')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// For a refresh request: the requested scope must be a subset of the granted one
    /// (RFC 6749 §6); no request keeps the granted scope.
    pub fn narrow(&self, requested: Option<&str>) -> Result<Self, String> {
        match requested.map(str::trim) {
            None | Some("") => Ok(self.clone()),
            Some(raw) => {
                let req = Self::from_stored(raw);
                if req.0.is_subset(&self.0) {
                    Ok(req)
                } else {
                    Err("the requested scope exceeds the scope originally granted".into())
                }
            }
        }
    }

    /// Whether a scope token is present.
    pub fn contains(&self, tok: &str) -> bool {
        self.0.contains(tok)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v: Vec<&str> = self.0.iter().map(String::as_str).collect();
        f.write_str(&v.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_unknown() {
        assert_eq!(
            Scope::parse_requested(None).expect("default").to_string(),
            "email offline_access profile"
        );
        assert!(Scope::parse_requested(Some("admin")).is_err());
        assert!(Scope::parse_requested(Some("email \"x")).is_err());
        assert_eq!(
            Scope::parse_requested(Some("email  profile"))
                .expect("ok")
                .to_string(),
            "email profile"
        );
    }

    #[test]
    fn narrowing() {
        let granted = Scope::from_stored("email profile offline_access");
        assert_eq!(
            granted.narrow(Some("email")).expect("subset").to_string(),
            "email"
        );
        assert_eq!(granted.narrow(None).expect("same"), granted);
        assert!(granted.narrow(Some("openid")).is_err());
    }
}
