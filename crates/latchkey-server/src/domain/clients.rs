//! Registered OAuth clients. The first-party public CLI client is built in.

use latchkey_proto::{
    CLI_CLIENT_ID, GRANT_ANONYMOUS, GRANT_AUTHORIZATION_CODE, GRANT_DEVICE_CODE, GRANT_PASSWORD,
    GRANT_REFRESH_TOKEN,
};

/// An OAuth client this server knows.
#[derive(Debug, Clone)]
pub struct RegisteredClient {
    /// `client_id`.
    pub id: String,
    /// Name shown to users on approval pages.
    pub name: String,
    /// Public (no secret; RFC 6749 §2.1) or confidential.
    pub public: bool,
    /// Grants it may use.
    pub grant_types: Vec<String>,
}

impl RegisteredClient {
    /// Whether the client may use `grant_type`.
    pub fn allows(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

/// The built-in clients.
pub fn builtin() -> Vec<RegisteredClient> {
    vec![RegisteredClient {
        id: CLI_CLIENT_ID.to_owned(),
        name: "latchkey CLI".to_owned(),
        public: true,
        grant_types: vec![
            GRANT_DEVICE_CODE.to_owned(),
            GRANT_AUTHORIZATION_CODE.to_owned(),
            GRANT_REFRESH_TOKEN.to_owned(),
            // First-party only: the resource owner password grant (RFC 6749 §4.3) and the
            // anonymous extension grant are never offered to third-party clients.
            GRANT_PASSWORD.to_owned(),
            GRANT_ANONYMOUS.to_owned(),
        ],
    }]
}
