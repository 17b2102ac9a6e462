//! Organizations: create, invite by link, accept, roles, last owner, transfer, leave, switch.

use latchkey_server::config::Settings;
use latchkey_server::testkit::TestServer;
use serde_json::{Value, json};

use super::{get_json, http, refresh};

struct Person {
    access: String,
    refresh: String,
    id: String,
}

async fn person(base: &str, email: &str) -> Person {
    let tok = super::new_account(base, email).await;
    let access = tok["access_token"].as_str().unwrap().to_owned();
    let (_, _, me) = get_json(&format!("{base}/v1/me"), Some(&access)).await;
    Person {
        access,
        refresh: tok["refresh_token"].as_str().unwrap().to_owned(),
        id: me["user"]["id"].as_str().unwrap().to_owned(),
    }
}

async fn call(
    method: reqwest::Method,
    url: String,
    bearer: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = http().request(method, url).bearer_auth(bearer);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

use reqwest::Method as M;

#[tokio::test]
async fn invitations_roles_owners_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("invite.txt");
    let hook = dir.path().join("hook.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$LATCHKEY_INVITE_EMAIL $LATCHKEY_INVITE_ORG $LATCHKEY_INVITE_ROLE $LATCHKEY_INVITE_LINK\" >> {}\n", out.display()),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&hook)
        .status()
        .unwrap();
    let srv = TestServer::start_with(Settings {
        invite_hook: Some(hook.display().to_string()),
        ..Settings::default()
    })
    .await;
    let base = srv.url().to_owned();
    let alice = person(&base, "alice@example.com").await;
    let bob = person(&base, "bob@example.com").await;
    let carol = person(&base, "carol@example.com").await;

    let (s, org) = call(
        M::POST,
        format!("{base}/v1/orgs"),
        &alice.access,
        Some(json!({"name": "Acme Corp"})),
    )
    .await;
    assert_eq!(s, 201, "{org}");
    assert_eq!(org["slug"], "acme-corp");
    assert_eq!(org["role"], "owner");
    let (s, _) = call(
        M::POST,
        format!("{base}/v1/orgs"),
        &bob.access,
        Some(json!({"name": "Acme Corp"})),
    )
    .await;
    assert_eq!(s, 409, "slugs are unique");

    // Invite Bob as member; the link is shown to the inviter and given to the hook.
    let (s, inv) = call(
        M::POST,
        format!("{base}/v1/orgs/acme-corp/invitations"),
        &alice.access,
        Some(json!({"email": "Bob@Example.com", "role": "member"})),
    )
    .await;
    assert_eq!(s, 201, "{inv}");
    let link = inv["link"].as_str().unwrap().to_owned();
    let token = link.rsplit('/').next().unwrap().to_owned();
    let hooked = std::fs::read_to_string(&out).unwrap();
    assert!(
        hooked.contains("bob@example.com Acme Corp member") && hooked.contains(&link),
        "{hooked}"
    );
    // Carol cannot use Bob's invitation.
    let (s, b) = call(
        M::POST,
        format!("{base}/v1/invitations/accept"),
        &carol.access,
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (403, Some("wrong_email")));
    let (s, b) = call(
        M::POST,
        format!("{base}/v1/invitations/accept"),
        &bob.access,
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["role"], "member");
    let (s, _) = call(
        M::POST,
        format!("{base}/v1/invitations/accept"),
        &bob.access,
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(s, 410, "an invitation is single use");

    // A member may not invite; an admin may, but not as owner.
    let (s, _) = call(
        M::POST,
        format!("{base}/v1/orgs/acme-corp/invitations"),
        &bob.access,
        Some(json!({"email": "carol@example.com"})),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = call(
        M::PATCH,
        format!("{base}/v1/orgs/acme-corp/members/{}", bob.id),
        &alice.access,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        M::POST,
        format!("{base}/v1/orgs/acme-corp/invitations"),
        &bob.access,
        Some(json!({"email": "carol@example.com", "role": "owner"})),
    )
    .await;
    assert_eq!(s, 403);
    let (s, inv) = call(
        M::POST,
        format!("{base}/v1/orgs/acme-corp/invitations"),
        &bob.access,
        Some(json!({"email": "carol@example.com", "role": "viewer"})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, pending) = call(
        M::GET,
        format!("{base}/v1/orgs/acme-corp/invitations"),
        &alice.access,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(pending.as_array().unwrap().len(), 1);
    assert!(pending[0].get("link").is_none(), "links are shown once");
    let (s, _) = call(
        M::DELETE,
        format!(
            "{base}/v1/orgs/acme-corp/invitations/{}",
            inv["id"].as_str().unwrap()
        ),
        &alice.access,
        None,
    )
    .await;
    assert_eq!(s, 204);

    // An admin cannot touch the owner.
    let (s, _) = call(
        M::PATCH,
        format!("{base}/v1/orgs/acme-corp/members/{}", alice.id),
        &bob.access,
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(s, 403);
    // The last owner can neither leave nor step down.
    let (s, b) = call(
        M::DELETE,
        format!("{base}/v1/orgs/acme-corp/members/{}", alice.id),
        &alice.access,
        None,
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (409, Some("last_owner")));
    let (s, _) = call(
        M::PATCH,
        format!("{base}/v1/orgs/acme-corp/members/{}", alice.id),
        &alice.access,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(s, 409);
    // Transfer, then Alice (now admin) may leave.
    let (s, _) = call(
        M::POST,
        format!("{base}/v1/orgs/acme-corp/transfer"),
        &alice.access,
        Some(json!({"user_id": bob.id})),
    )
    .await;
    assert_eq!(s, 204);
    let (_, detail) = call(
        M::GET,
        format!("{base}/v1/orgs/acme-corp"),
        &alice.access,
        None,
    )
    .await;
    let roles: Vec<(String, String)> = detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        vec![
            ("bob@example.com".into(), "owner".into()),
            ("alice@example.com".into(), "admin".into())
        ]
    );
    let (s, _) = call(
        M::DELETE,
        format!("{base}/v1/orgs/acme-corp/members/{}", alice.id),
        &alice.access,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        M::GET,
        format!("{base}/v1/orgs/acme-corp"),
        &alice.access,
        None,
    )
    .await;
    assert_eq!(s, 404);
    // Nobody leaves their personal org.
    let (_, mine) = call(M::GET, format!("{base}/v1/orgs"), &carol.access, None).await;
    let personal = mine["orgs"][0]["slug"].as_str().unwrap().to_owned();
    let (s, _) = call(
        M::DELETE,
        format!("{base}/v1/orgs/{personal}/members/{}", carol.id),
        &carol.access,
        None,
    )
    .await;
    assert_eq!(s, 409);
    srv.stop().await;
}

#[tokio::test]
async fn switch_active_org_without_new_login() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let alice = person(&base, "al@example.com").await;
    call(
        M::POST,
        format!("{base}/v1/orgs"),
        &alice.access,
        Some(json!({"name": "Team", "slug": "team"})),
    )
    .await;
    let before = get_json(&format!("{base}/v1/me"), Some(&alice.access))
        .await
        .2;
    assert_ne!(before["org"]["slug"], "team");

    let (s, b) = call(
        M::PUT,
        format!("{base}/v1/session/org"),
        &alice.access,
        Some(json!({"org": "team"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (_, list) = call(M::GET, format!("{base}/v1/orgs"), &alice.access, None).await;
    let team_id = list["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["slug"] == "team")
        .unwrap()["id"]
        .clone();
    assert_eq!(list["active"], team_id);
    // The next refresh carries the new org and role in the token.
    let (s, tok) = refresh(&base, &alice.refresh).await;
    assert_eq!(s, 200);
    let (_, _, me) = get_json(&format!("{base}/v1/me"), tok["access_token"].as_str()).await;
    assert_eq!(me["org"]["slug"], "team");
    assert_eq!(me["org"]["role"], "owner");
    let (s, _) = call(
        M::PUT,
        format!("{base}/v1/session/org"),
        &alice.access,
        Some(json!({"org": "nope"})),
    )
    .await;
    assert_eq!(s, 404);
    srv.stop().await;
}
