//! API keys: created by a person, exchanged with client_credentials, role ceiling, revocation,
//! expiry, typo detection, introspection.

use latchkey_server::domain::accounts::Role;
use latchkey_server::testkit::TestServer;
use serde_json::{Value, json};

use super::{get_json, http, post_form};

async fn person(base: &str, email: &str) -> String {
    super::new_account(base, email).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn create(base: &str, access: &str, body: Value) -> (u16, Value) {
    let r = http()
        .post(format!("{base}/v1/api-keys"))
        .bearer_auth(access)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn exchange(base: &str, key: &str) -> (u16, Value) {
    let id = &key[..19.min(key.len())];
    let r = http()
        .post(format!("{base}/oauth/token"))
        .basic_auth(id, Some(key))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn create_use_list_revoke() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let access = person(&base, "ka@example.com").await;
    let (s, created) = create(
        &base,
        &access,
        json!({"name": "ci-deploy", "role": "member"}),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("lk_") && key.len() == 68);
    let id = created["api_key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(&key[..19], id);
    assert_eq!(created["api_key"]["role"], "member");

    // Listing never shows the secret.
    let r = http()
        .get(format!("{base}/v1/api-keys"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(!text.contains(&key));
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["api_keys"][0]["name"], "ci-deploy");

    // Exchange (Basic), and with the key alone in the body.
    let (s, tok) = exchange(&base, &key).await;
    assert_eq!(s, 200, "{tok}");
    assert!(
        tok.get("refresh_token").is_none(),
        "client_credentials gets no refresh token"
    );
    let (s, _, body_tok) = post_form(
        &format!("{base}/oauth/token"),
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", &key),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body_tok}");
    let (s, _, me) = get_json(&format!("{base}/v1/me"), tok["access_token"].as_str()).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["api_key"]["name"], "ci-deploy");
    assert_eq!(me["api_key"]["id"], id);
    assert_eq!(me["user"]["email"], "ka@example.com");
    assert_eq!(
        me["org"]["role"], "member",
        "the key's role, not its creator's"
    );

    // API-key tokens cannot mint keys.
    let (s, b) = create(
        &base,
        tok["access_token"].as_str().unwrap(),
        json!({"name": "x"}),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (403, Some("forbidden")));

    // Revoke: the next exchange fails naming the key, and issued tokens stop working at /v1/me.
    let r = http()
        .delete(format!("{base}/v1/api-keys/{id}"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (s, b) = exchange(&base, &key).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    let desc = b["error_description"].as_str().unwrap();
    assert!(desc.contains(&id) && desc.contains("revoked"), "{desc}");
    assert!(
        !desc.contains(&key[19..]),
        "the secret part is never echoed"
    );
    let (s, _, _) = get_json(&format!("{base}/v1/me"), tok["access_token"].as_str()).await;
    assert_eq!(s, 401);
    srv.stop().await;
}

#[tokio::test]
async fn role_ceiling_and_token_role() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let owner = person(&base, "kb@example.com").await;
    let member = person(&base, "kc@example.com").await;
    // Put the second user in the first user's org as a member.
    let st = srv.running().state.clone();
    let owner_user = st
        .store
        .user_by_email("kb@example.com")
        .await
        .unwrap()
        .unwrap();
    let member_user = st
        .store
        .user_by_email("kc@example.com")
        .await
        .unwrap()
        .unwrap();
    let org = st.store.memberships(&owner_user.id).await.unwrap()[0].clone();
    st.store
        .set_membership(&org.org_id, &member_user.id, Role::Member, 0)
        .await
        .unwrap();

    let (s, b) = create(
        &base,
        &member,
        json!({"name": "x", "org": org.slug, "role": "admin"}),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (403, Some("forbidden")), "{b}");
    let (s, created) = create(
        &base,
        &member,
        json!({"name": "x", "org": org.slug, "role": "viewer"}),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let (_, tok) = exchange(&base, created["key"].as_str().unwrap()).await;
    let (_, _, intro) =
        post_form_bearer(&base, &owner, tok["access_token"].as_str().unwrap()).await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["role"], "viewer");
    assert_eq!(intro["org"], org.org_id);

    // The owner sees the member's key in their org and may revoke it.
    let r = http()
        .get(format!("{base}/v1/api-keys"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["api_keys"].as_array().unwrap().len(), 1);
    // A creator demoted below the key's role caps the key's tokens.
    st.store
        .set_membership(&org.org_id, &member_user.id, Role::Viewer, 0)
        .await
        .unwrap();
    let (s, created) = create(&base, &owner, json!({"name": "own", "role": "admin"})).await;
    assert_eq!(s, 201);
    st.store
        .set_membership(&org.org_id, &owner_user.id, Role::Member, 0)
        .await
        .unwrap();
    let (_, tok) = exchange(&base, created["key"].as_str().unwrap()).await;
    let (_, _, intro) =
        post_form_bearer(&base, &member, tok["access_token"].as_str().unwrap()).await;
    assert_eq!(intro["role"], "member");
    srv.stop().await;
}

async fn post_form_bearer(base: &str, bearer: &str, token: &str) -> (u16, (), Value) {
    let r = http()
        .post(format!("{base}/oauth/introspect"))
        .bearer_auth(bearer)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), (), r.json().await.unwrap())
}

#[tokio::test]
async fn typos_expiry_and_introspection() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let access = person(&base, "kd@example.com").await;
    let (_, created) = create(
        &base,
        &access,
        json!({"name": "short", "expires_in_days": 1}),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_owned();

    // A typo is caught by the checksum.
    let mut typo: Vec<char> = key.chars().collect();
    typo[40] = if typo[40] == 'Q' { 'R' } else { 'Q' };
    let typo: String = typo.into_iter().collect();
    let (s, b) = exchange(&base, &typo).await;
    assert_eq!(s, 401);
    assert!(b["error_description"].as_str().unwrap().contains("typo"));
    let (s, b) = exchange(&base, "lk_nonsense").await;
    assert_eq!(s, 401, "{b}");

    // Introspection: needs auth, answers for keys and tokens.
    let r = http()
        .post(format!("{base}/oauth/introspect"))
        .form(&[("token", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http()
        .post(format!("{base}/oauth/introspect"))
        .basic_auth(&key[..19], Some(&key))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    let intro: Value = r.json().await.unwrap();
    assert_eq!(intro["active"], true);
    assert_eq!(intro["username"], "kd@example.com");
    let (_, _, intro) = post_form_bearer(&base, &access, &key).await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["name"], "short");
    let (_, _, intro) = post_form_bearer(&base, &access, "garbage").await;
    assert_eq!(intro, json!({"active": false}));

    // Expiry.
    srv.clock.advance(2 * 86_400);
    let (s, b) = exchange(&base, &key).await;
    assert_eq!(s, 401);
    assert!(b["error_description"].as_str().unwrap().contains("expired"));
    srv.stop().await;
}
