//! The signed-in pages, driven through their forms: connect, account (profile, password,
//! sessions, API keys, orgs), org management and invitations.

use latchkey_server::config::Settings;
use latchkey_server::testkit::{Browser, Page, TestServer};

use super::{get_json, refresh};

fn csrf_of(page: &Page) -> String {
    Browser::csrf(page)
}

async fn password_login(base: &str, email: &str, name: &str) -> serde_json::Value {
    let (s, _, tok) = super::password_grant(base, email, super::PASSWORD, name).await;
    assert_eq!(s, 200, "{tok}");
    tok
}

#[tokio::test]
async fn sign_up_lands_on_connect_with_org_role_and_download() {
    let srv = TestServer::start_with(Settings {
        download_url: Some("https://example.com/releases".into()),
        download_asset_url: Some("https://example.com/dl/latchkey-{os}-{arch}.tar.gz".into()),
        ..Settings::default()
    })
    .await;
    let base = srv.url().to_owned();
    let b = Browser::new(&base);
    let landing = b.get("/").await;
    assert!(landing.body.contains("Download CLI") && landing.body.contains("Create an account"));
    let page = b.sign_up("pg@example.com", "correct horse battery").await;
    assert!(page.url.ends_with("/connect"), "{}", page.url);
    assert!(page.body.contains("Signed in"));
    assert!(page.body.contains("owner"));
    assert!(
        page.text()
            .contains(&format!("latchkey config set cloud.url {base}"))
    );
    // reqwest's default UA has no OS: Linux x86_64 is the fallback guess.
    assert!(
        page.text()
            .contains("https://example.com/dl/latchkey-linux-x86_64.tar.gz"),
        "{}",
        page.body
    );
    assert!(page.body.contains("View all releases"));
    let r = b
        .http
        .get(format!("{base}/connect"))
        .header("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("latchkey-windows-x86_64") && body.contains("Windows (x86_64)"));
    srv.stop().await;
}

#[tokio::test]
async fn account_page_sessions_keys_profile_password() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let b = Browser::new(&base);
    b.sign_up("ac@example.com", "correct horse battery").await;
    let tok = password_login(&base, "ac@example.com", "build-box").await;

    let account = b.get("/account").await;
    assert_eq!(account.status, 200);
    assert!(account.body.contains("build-box"));
    let csrf = csrf_of(&account);

    // Revoke the CLI session from the page: its refresh token dies.
    let (_, _, me) = get_json(&format!("{base}/v1/me"), tok["access_token"].as_str()).await;
    let sid = me["session"]["id"].as_str().unwrap();
    let page = b
        .post(
            &format!("/account/sessions/{sid}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert!(page.body.contains("Session revoked"), "{}", page.body);
    let (s, _) = refresh(&base, tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 400);

    // Create an API key: shown once, then only its id.
    let page = b
        .post(
            "/account/api-keys",
            &[
                ("csrf", &csrf),
                ("name", "deploy"),
                ("role", "member"),
                ("expires_in_days", "30"),
            ],
        )
        .await;
    assert_eq!(page.status, 201, "{}", page.body);
    let start = page.body.find("lk_").unwrap();
    let key = &page.body[start..start + 68];
    assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    let again = b.get("/account").await;
    assert!(!again.body.contains(key), "the key is shown only once");
    assert!(again.body.contains(&key[..19]));
    let page = b
        .post(
            &format!("/account/api-keys/{}/revoke", &key[..19]),
            &[("csrf", &csrf)],
        )
        .await;
    assert!(page.body.contains("API key revoked"));

    // Profile and password.
    let page = b
        .post(
            "/account/profile",
            &[("csrf", &csrf), ("name", "Ada Lovelace")],
        )
        .await;
    assert!(page.body.contains("Profile saved") && page.body.contains("Ada Lovelace"));
    let page = b
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", "wrong one!"),
                ("new", "a new password 1"),
            ],
        )
        .await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("current password is wrong"));
    let page = b
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", "correct horse battery"),
                ("new", "a new password 1"),
            ],
        )
        .await;
    assert!(page.body.contains("Password changed"), "{}", page.body);
    let other = Browser::new(&base);
    assert_eq!(
        other
            .sign_in("ac@example.com", "correct horse battery")
            .await
            .status,
        401
    );
    assert_eq!(
        other
            .sign_in("ac@example.com", "a new password 1")
            .await
            .status,
        200
    );

    // Without a sign-in, the account page sends you to sign in and back.
    let anon = Browser::new(&base);
    let page = anon.get("/account").await;
    assert!(page.url.contains("/signin?next=%2Faccount"), "{}", page.url);
    srv.stop().await;
}

#[tokio::test]
async fn org_pages_invite_accept_roles() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let owner = Browser::new(&base);
    owner
        .sign_up("own@example.com", "correct horse battery")
        .await;
    let account = owner.get("/account").await;
    let csrf = csrf_of(&account);
    let page = owner
        .post("/orgs", &[("csrf", &csrf), ("name", "Skunk Works")])
        .await;
    assert!(
        page.url.ends_with("/orgs/skunk-works?done=created"),
        "{}",
        page.url
    );
    assert!(page.body.contains("Organization created"));

    let page = owner
        .post(
            "/orgs/skunk-works/invite",
            &[
                ("csrf", &csrf),
                ("email", "new@example.com"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(page.status, 201, "{}", page.body);
    let text = page.text();
    let start = text.find(&format!("{base}/invite/")).unwrap();
    let end = text[start..].find('<').unwrap() + start;
    let link = text[start..end].to_owned();

    // The invited person signs up from the link and accepts.
    let guest = Browser::new(&base);
    let to_signin = guest.get(&link).await;
    assert!(
        to_signin.url.contains("/signin?next=%2Finvite%2F"),
        "{}",
        to_signin.url
    );
    guest
        .sign_up("new@example.com", "correct horse battery")
        .await;
    let invite = guest.get(&link).await;
    assert!(invite.body.contains("Join Skunk Works") && invite.body.contains("admin"));
    let page = guest
        .post(&link.replace(&base, ""), &[("csrf", &csrf_of(&invite))])
        .await;
    assert!(
        page.url.ends_with("/orgs/skunk-works?done=joined"),
        "{}",
        page.url
    );
    assert!(page.body.contains("new@example.com") && page.body.contains("own@example.com"));
    // Used links are dead.
    let again = guest.get(&link).await;
    assert_eq!(again.status, 410);

    // The admin cannot remove the owner; the owner can demote the admin.
    let st = srv.running().state.clone();
    let owner_id = st
        .store
        .user_by_email("own@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    let guest_id = st
        .store
        .user_by_email("new@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    let gcsrf = csrf_of(&guest.get("/account").await);
    let page = guest
        .post(
            &format!("/orgs/skunk-works/members/{owner_id}/remove"),
            &[("csrf", &gcsrf)],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    let page = owner
        .post(
            &format!("/orgs/skunk-works/members/{guest_id}/role"),
            &[("csrf", &csrf), ("role", "viewer")],
        )
        .await;
    assert!(page.body.contains("Role changed"));
    // The owner cannot leave while the only owner.
    let page = owner
        .post("/orgs/skunk-works/leave", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 409);
    assert!(page.body.contains("must keep an owner"));
    // Transfer, then leave.
    let page = owner
        .post(
            "/orgs/skunk-works/transfer",
            &[("csrf", &csrf), ("user_id", &guest_id)],
        )
        .await;
    assert!(page.body.contains("Ownership transferred"));
    let page = owner
        .post("/orgs/skunk-works/leave", &[("csrf", &csrf)])
        .await;
    assert!(page.body.contains("You left"));
    let page = owner.get("/orgs/skunk-works").await;
    assert_eq!(page.status, 404);
    srv.stop().await;
}
