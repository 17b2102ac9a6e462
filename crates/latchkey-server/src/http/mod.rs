//! Thin HTTP handlers by surface: OAuth endpoints, the cloud API, web pages, and operations.
//! Each handler extracts, calls the store and the domain, and maps the result.

pub mod account;
pub mod api;
pub mod authorize;
pub mod error;
pub mod extract;
pub mod oauth;
pub mod observe;
pub mod ops;
pub mod orgs;
pub mod pages;
pub mod sso;
pub mod sso_admin;
pub mod web;
