//! Login flows, one file each: how a session is obtained from the authorization server.
//!
//! Only the device authorization grant (RFC 8628) exists so far; the loopback browser flow,
//! password and anonymous logins go next to it.

pub mod device;
