//! Wire types shared by `latchkeyd` and `latchkey-client`.
//!
//! Everything here is plain data with serde derives: OAuth 2.0 metadata (RFC 8414), token
//! responses and errors (RFC 6749 §5), device authorization (RFC 8628), the CLI discovery
//! document, the `/v1/me` identity and the CLI's `config.yaml`. No I/O happens in this crate, so
//! both sides agree on the wire format by construction.

pub mod api;
pub mod api_key;
pub mod config;
pub mod device;
pub mod error;
pub mod metadata;
pub mod secret;
pub mod token;

pub use api::{
    ApiError, ApiKeyInfo, ApiKeyList, ClaimAnonymousRequest, ClaimAnonymousResponse, CliConfig,
    CreateApiKeyRequest, CreateApiKeyResponse, Invitation, Me, MeUser, Member, OrgDetail, OrgList,
    OrgMembership, OrgRef, SessionInfo, SessionList, SwitchOrgRequest,
};
pub use config::ConfigFile;
pub use device::{DeviceAuthorizationResponse, UserCode, UserCodeError};
pub use error::{DeviceFlowAction, ErrorCode, ErrorResponse};
pub use metadata::AuthorizationServerMetadata;
pub use secret::{AccessToken, RefreshToken};
pub use token::TokenResponse;

/// The `client_id` of the first-party public CLI client that every `latchkeyd` pre-registers.
pub const CLI_CLIENT_ID: &str = "latchkey-cli";

/// `grant_type` of the device access token request (RFC 8628 §3.4).
pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `grant_type` of the authorization code grant (RFC 6749 §4.1.3).
pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";

/// `grant_type` of the refresh grant (RFC 6749 §6).
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";

/// `grant_type` of the resource owner password credentials grant (RFC 6749 §4.3).
pub const GRANT_PASSWORD: &str = "password";

/// `grant_type` of the client credentials grant (RFC 6749 §4.4), used with API keys.
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";

/// `grant_type` of latchkey's anonymous extension grant (RFC 6749 §4.5); see `docs/`.
pub const GRANT_ANONYMOUS: &str = "urn:latchkey:params:oauth:grant-type:anonymous";

/// Login methods a deployment can enable, as listed in [`CliConfig::login_methods`].
pub mod methods {
    /// OAuth 2.0 device authorization grant (RFC 8628).
    pub const DEVICE: &str = "device";
    /// Authorization code + PKCE with a loopback redirect (RFC 8252).
    pub const BROWSER: &str = "browser";
    /// Email and password typed in the terminal (RFC 6749 §4.3).
    pub const PASSWORD: &str = "password";
    /// Anonymous identity (latchkey extension grant).
    pub const ANONYMOUS: &str = "anonymous";
}
