//! `latchkey orgs` and `latchkey orgs switch NAME`: the user's organizations, and changing the
//! active one without a new login.
//!
//! The switch is made on the session at the server, and the access token is refreshed right away
//! so the next `whoami` or `token` (in any process) already carries the new org and role.

use super::ExitStatus;
use crate::cli::{OrgsArgs, OrgsCommand};
use crate::output::{self, Style};
use crate::settings::Settings;
use anyhow::Result;
use latchkey_client::{Client, CredentialSource, Error, OrgList, OrgMembership};
use serde_json::json;

/// Runs `orgs` or one of its subcommands.
pub async fn run(args: OrgsArgs, settings: &Settings) -> Result<ExitStatus> {
    let client = settings.client()?;
    match args.command {
        None => list(&client, args.json).await,
        Some(OrgsCommand::List { json }) => list(&client, json || args.json).await,
        Some(OrgsCommand::Switch { org }) => switch(&client, &org).await,
    }
}

async fn list(client: &Client, json_out: bool) -> Result<ExitStatus> {
    let list = client.orgs().await?;
    if json_out {
        let orgs: Vec<_> = list
            .orgs
            .iter()
            .map(|o| {
                json!({
                    "id": o.id, "slug": o.slug, "name": o.name, "role": o.role,
                    "active": list.active.as_deref() == Some(o.id.as_str()),
                })
            })
            .collect();
        output::print_json(&json!({ "orgs": orgs, "active": list.active }));
        return Ok(ExitStatus::Success);
    }
    if list.orgs.is_empty() {
        eprintln!("You belong to no organization.");
        return Ok(ExitStatus::Success);
    }
    print!("{}", table(&list, Style::stdout()));
    Ok(ExitStatus::Success)
}

async fn switch(client: &Client, wanted: &str) -> Result<ExitStatus> {
    let wanted = wanted.trim();
    if wanted.is_empty() {
        anyhow::bail!("name the organization, e.g. `latchkey orgs switch acme`");
    }
    // A display name is accepted too: it is resolved here, since the server takes a slug or id.
    let known = client.orgs().await.ok();
    let target = known
        .as_ref()
        .and_then(|l| resolve(&l.orgs, wanted))
        .map_or_else(|| wanted.to_owned(), |o| o.slug.clone());
    let switched = match client.switch_org(&target).await {
        Ok(s) => s,
        Err(e @ Error::Rejected { status: 404, .. }) => {
            output::report(&anyhow::Error::from(e));
            if let Some(l) = known.filter(|l| !l.orgs.is_empty()) {
                let slugs: Vec<&str> = l.orgs.iter().map(|o| o.slug.as_str()).collect();
                output::hint(&format!("Your organizations: {}", slugs.join(", ")));
            }
            return Ok(ExitStatus::Failure);
        }
        Err(e) => return Err(e.into()),
    };
    let s = Style::stderr();
    output::success(&format!(
        "Switched to {} (role: {})",
        s.bold(&switched.org.slug),
        switched.org.role
    ));
    if !switched.token_refreshed {
        match client.source() {
            CredentialSource::Environment { var } => output::warning(&format!(
                "the token in ${var} still carries the previous organization until it expires"
            )),
            _ => output::warning(
                "the server issued no refresh token, so the current token keeps the previous organization until it expires",
            ),
        }
    }
    Ok(ExitStatus::Success)
}

/// The org `wanted` names: an exact id or slug, else a unique case-insensitive name or slug.
fn resolve<'a>(orgs: &'a [OrgMembership], wanted: &str) -> Option<&'a OrgMembership> {
    if let Some(o) = orgs.iter().find(|o| o.id == wanted || o.slug == wanted) {
        return Some(o);
    }
    let mut matches = orgs
        .iter()
        .filter(|o| o.name.eq_ignore_ascii_case(wanted) || o.slug.eq_ignore_ascii_case(wanted));
    match (matches.next(), matches.next()) {
        (Some(o), None) => Some(o),
        _ => None,
    }
}

/// The orgs as an aligned table; `*` marks the active one.
fn table(list: &OrgList, s: Style) -> String {
    let slug_w = list
        .orgs
        .iter()
        .map(|o| o.slug.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let name_w = list
        .orgs
        .iter()
        .map(|o| o.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!("  {:<slug_w$}  {:<name_w$}  ROLE\n", "SLUG", "NAME");
    for o in &list.orgs {
        let active = list.active.as_deref() == Some(o.id.as_str());
        let mark = if active { "*" } else { " " };
        let slug = format!("{:<slug_w$}", o.slug);
        let slug = if active { s.bold(&slug) } else { slug };
        out.push_str(&format!("{mark} {slug}  {:<name_w$}  {}\n", o.name, o.role));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, slug: &str, name: &str, role: &str) -> OrgMembership {
        OrgMembership {
            id: id.into(),
            slug: slug.into(),
            name: name.into(),
            role: role.into(),
        }
    }

    #[test]
    fn names_resolve() {
        let orgs = [
            m("org_1", "acme", "Acme Corp", "owner"),
            m("org_2", "team", "Team", "admin"),
        ];
        assert_eq!(resolve(&orgs, "team").map(|o| o.id.as_str()), Some("org_2"));
        assert_eq!(
            resolve(&orgs, "org_1").map(|o| o.id.as_str()),
            Some("org_1")
        );
        assert_eq!(
            resolve(&orgs, "acme corp").map(|o| o.id.as_str()),
            Some("org_1")
        );
        assert!(resolve(&orgs, "nope").is_none());
    }

    #[test]
    fn table_marks_the_active_org() {
        let list = OrgList {
            orgs: vec![
                m("org_1", "acme", "Acme Corp", "owner"),
                m("org_2", "team", "Team", "admin"),
            ],
            active: Some("org_2".into()),
        };
        assert_eq!(
            table(&list, Style::for_stream(false)),
            "  SLUG  NAME       ROLE\n  acme  Acme Corp  owner\n* team  Team       admin\n"
        );
    }
}
