//! Sign-in through upstream identity providers: operator-configured ones (`[upstream.ID]`,
//! with presets for Google, Microsoft Entra, GitLab, Okta and GitHub) and each organization's
//! own OpenID provider. [`config`] validates the settings, [`client`] speaks the protocols;
//! the pages and the account rules are in `http::sso`.

pub mod client;
pub mod config;

pub use client::{Federation, FederationError, UpstreamIdentity};
pub use config::{UpstreamConfig, UpstreamSettings};
