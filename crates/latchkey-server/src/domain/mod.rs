//! Pure rules of the service, with the current time passed in so tests control it.
//!
//! Nothing here performs I/O (except [`dns`], the one network lookup, kept here because it is
//! protocol code with no state): the HTTP layer reads from the store, calls these functions
//! and writes back what they decide.

pub mod accounts;
pub mod api_keys;
pub mod clients;
pub mod clock;
pub mod device;
pub mod dns;
pub mod keys;
pub mod pkce;
pub mod ratelimit;
pub mod roles;
pub mod scope;
pub mod sealing;
pub mod secrets;
pub mod tokens;
