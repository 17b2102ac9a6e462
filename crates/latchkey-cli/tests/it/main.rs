//! Integration tests of the `latchkey` binary against a real `latchkeyd` (testkit) on
//! 127.0.0.1:0, with a temporary config directory. One test binary for the crate, with one module
//! per area.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod anonymous;
mod api_keys;
mod browser;
mod config;
mod files;
mod interop;
mod login;
mod orgs;
mod password;
mod picker;
mod qr;
mod refresh;
mod reliability;
mod sessions;
mod util;
mod web;
mod web_chrome;
