//! `latchkey api-keys create|list|revoke`: keys for CI and scripts.
//!
//! A new key is printed once, alone on stdout (`KEY=$(latchkey api-keys create ci)` captures
//! exactly the key); everything said about it goes to stderr. Listing never shows a secret, and
//! no message ever repeats a key. Only a person manages keys: with an API key in use the server
//! refuses, and the error says how to use the personal login instead.

use super::ExitStatus;
use crate::cli::{ApiKeyCreateArgs, ApiKeysCommand};
use crate::output::{self, Style};
use crate::settings::Settings;
use anyhow::Result;
use latchkey_client::{ApiKeyInfo, Client, CreateApiKeyRequest, session};
use serde_json::json;

/// Runs an `api-keys` subcommand.
pub async fn run(cmd: ApiKeysCommand, settings: &Settings) -> Result<ExitStatus> {
    let client = settings.client()?;
    match cmd {
        ApiKeysCommand::Create(args) => create(&client, args).await,
        ApiKeysCommand::List { json } => list(&client, json).await,
        ApiKeysCommand::Revoke { id } => revoke(&client, &id).await,
    }
}

async fn create(client: &Client, args: ApiKeyCreateArgs) -> Result<ExitStatus> {
    let name = args.name.trim().to_owned();
    if name.is_empty() {
        anyhow::bail!("the key needs a name, e.g. `latchkey api-keys create ci-deploy`");
    }
    let req = CreateApiKeyRequest {
        name,
        org: args.org,
        role: args.role,
        expires_in_days: args.expires_in_days,
    };
    let created = client.create_api_key(&req).await?;
    if args.json {
        output::print_json(&json!(created));
    } else {
        println!("{}", created.key);
    }
    let k = &created.api_key;
    let s = Style::stderr();
    output::success(&format!(
        "Created API key {} ({}) in {} with role {}; {}.",
        s.bold(&k.name),
        k.id,
        s.bold(&k.org.slug),
        k.role,
        match k.expires_at {
            Some(t) => format!("it expires {}", relative(t - session::now())),
            None => "it does not expire".to_owned(),
        }
    ));
    eprintln!(
        "Copy it now: it cannot be shown again. Store it as a secret, e.g. in your CI settings."
    );
    eprintln!(
        "{}",
        s.dim("Use it with `export LATCHKEY_API_KEY=<the key>`: latchkey then signs in with it, no login needed.")
    );
    Ok(ExitStatus::Success)
}

async fn list(client: &Client, json_out: bool) -> Result<ExitStatus> {
    let keys = client.list_api_keys().await?;
    if json_out {
        output::print_json(&json!({ "api_keys": keys }));
        return Ok(ExitStatus::Success);
    }
    if keys.is_empty() {
        eprintln!("No API keys. Create one with `latchkey api-keys create NAME`.");
        return Ok(ExitStatus::Success);
    }
    print!("{}", table(&keys, session::now()));
    Ok(ExitStatus::Success)
}

async fn revoke(client: &Client, given: &str) -> Result<ExitStatus> {
    let whole_key = given.trim().len() > latchkey_client::api_keys::PUBLIC_ID_LEN;
    let id = client.revoke_api_key(given).await?;
    output::success(&format!(
        "Revoked API key {id}. Tokens obtained with it stop working now."
    ));
    if whole_key {
        eprintln!(
            "{}",
            Style::stderr().dim("Only the key's id was sent, not the key.")
        );
    }
    Ok(ExitStatus::Success)
}

/// The keys as an aligned table, one per line.
fn table(keys: &[ApiKeyInfo], now: i64) -> String {
    let header = ["ID", "NAME", "ORG", "ROLE", "EXPIRES", "LAST USED"].map(str::to_owned);
    let rows: Vec<[String; 6]> = keys
        .iter()
        .map(|k| {
            [
                k.id.clone(),
                k.name.clone(),
                k.org.slug.clone(),
                k.role.clone(),
                k.expires_at
                    .map_or_else(|| "never".to_owned(), |t| relative(t - now)),
                k.last_used_at
                    .map_or_else(|| "never".to_owned(), |t| relative(t - now)),
            ]
        })
        .collect();
    let mut widths = [0usize; 6];
    for r in std::iter::once(&header).chain(rows.iter()) {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// "in 90 days", "in 3 hours", "5 minutes ago", "just now" (rounded to the nearest unit).
pub fn relative(delta: i64) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    let a = delta.abs();
    // Rounded to the nearest unit: a key made "for 30 days" a second ago expires "in 30 days".
    let round = |unit: i64| (a + unit / 2) / unit;
    let span = if a >= 2 * 86_400 {
        plural(round(86_400), "day")
    } else if a >= 2 * 3600 {
        plural(round(3600), "hour")
    } else if a >= 60 {
        plural(round(60), "minute")
    } else {
        return "just now".to_owned();
    };
    if delta > 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_proto::OrgRef;

    #[test]
    fn relative_times() {
        assert_eq!(relative(90 * 86_400), "in 90 days");
        assert_eq!(relative(30 * 86_400 - 3), "in 30 days");
        assert_eq!(relative(86_400 + 5), "in 24 hours");
        assert_eq!(relative(-3 * 3600), "3 hours ago");
        assert_eq!(relative(-61), "1 minute ago");
        assert_eq!(relative(10), "just now");
    }

    #[test]
    fn table_is_aligned() {
        let k = |id: &str, name: &str, exp: Option<i64>| ApiKeyInfo {
            id: id.into(),
            name: name.into(),
            org: OrgRef {
                id: "org_1".into(),
                slug: "acme".into(),
            },
            role: "member".into(),
            created_by: None,
            created_at: 0,
            expires_at: exp,
            last_used_at: None,
        };
        let t = table(
            &[
                k("lk_aaaaaaaaaaaaaaaa", "ci", Some(1000 + 30 * 86_400)),
                k("lk_bbbbbbbbbbbbbbbb", "a-longer-name", None),
            ],
            1000,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "ID                   NAME           ORG   ROLE    EXPIRES     LAST USED"
        );
        assert_eq!(
            lines[1],
            "lk_aaaaaaaaaaaaaaaa  ci             acme  member  in 30 days  never"
        );
        assert!(lines[2].contains("a-longer-name  acme  member  never"));
    }
}
