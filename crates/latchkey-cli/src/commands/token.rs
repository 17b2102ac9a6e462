//! `latchkey token`: a valid access token on stdout and nothing else, for
//! `curl -H "Authorization: Bearer $(latchkey token)"`.
//!
//! With a cached token valid for more than a minute this reads one file and touches no network,
//! so scripts can call it before every request.

use super::ExitStatus;
use crate::settings::Settings;
use anyhow::Result;
use std::io::Write;

/// Prints the token.
pub async fn run(settings: &Settings) -> Result<ExitStatus> {
    let client = settings.client()?;
    let token = client.access_token().await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", token.secret())?;
    out.flush()?;
    Ok(ExitStatus::Success)
}
