//! Organizations' SSO client secrets are sealed under the operator's secret key: refused
//! without one, unreadable (a clear page, not a 500) on a replica with another key, and moved
//! to a new key by `latchkeyd secrets reseal`.

use crate::federation::{save_org_sso, sign_in_via, sign_up, store, stored_secret, submit};
use latchkey_server::config::Settings;
use latchkey_server::federation::config::ClientSecret;
use latchkey_server::testkit::TestServer;
use latchkey_server::testkit::oidc::{
    HopBrowser, OidcProvider, TEST_SECRET_KEY, UPSTREAM_CLIENT_ID, UPSTREAM_CLIENT_SECRET,
};

const OTHER_KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn keyed(key: Option<&str>) -> Settings {
    Settings {
        org_sso_allow_private_networks: Some(true),
        secret_key: key.map(ClientSecret::new),
        ..Settings::default()
    }
}

/// Runs `latchkeyd secrets reseal` on `server`'s database with `keys` in the environment.
fn reseal(server: &TestServer, keys: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
        .args([
            "secrets",
            "reseal",
            "--database-url",
            &server.database_url(),
        ])
        .env("LATCHKEYD_SECRET_KEY", keys)
        .env_remove("LATCHKEYD_SECRET_KEY_FILE")
        .output()
        .expect("run latchkeyd")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_client_secrets_are_sealed_under_the_operator_key() {
    let Some(up) = OidcProvider::start_or_skip("upstream.js") else {
        return;
    };
    let server = TestServer::start_with(keyed(None)).await;
    let owner = HopBrowser::new();
    sign_up(&owner, &server, "owner@acme.test").await;
    submit(
        &owner,
        &server,
        "/account",
        "/orgs",
        &[("name", "Acme"), ("slug", "acme")],
    )
    .await
    .assert_at("/orgs/acme");
    let acme = store(&server).org("acme").await.unwrap().unwrap();

    // Without a key the server keeps no client secret: the page says so, the form refuses one.
    let page = owner.get(&format!("{}/orgs/acme", server.url())).await;
    assert!(
        page.body.contains("keeps no client secrets"),
        "{}",
        page.body
    );
    let page = save_org_sso(
        &owner,
        &server,
        "acme",
        &up.issuer,
        Some(UPSTREAM_CLIENT_SECRET),
    )
    .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body.contains("cannot store client secrets"),
        "{}",
        page.body
    );
    assert!(store(&server).org_sso(&acme.id).await.unwrap().is_none());

    // With a key (a replica on the same database; the browser's session works there too) the
    // secret is stored sealed, and signing in through the provider works.
    let one = server.replica_with(keyed(Some(TEST_SECRET_KEY))).await;
    save_org_sso(
        &owner,
        &one,
        "acme",
        &up.issuer,
        Some(UPSTREAM_CLIENT_SECRET),
    )
    .await
    .assert_at("done=sso-saved");
    let sealed = stored_secret(&server, &acme.id).await.unwrap();
    assert!(
        sealed.starts_with("lks1.") && !sealed.contains(UPSTREAM_CLIENT_SECRET),
        "stored as given: {sealed}"
    );
    submit(
        &owner,
        &one,
        "/orgs/acme",
        "/orgs/acme/domains",
        &[("domain", "acme.test")],
    )
    .await;
    assert!(
        store(&server)
            .verify_org_domain(&acme.id, "acme.test", server.running().state.now())
            .await
            .unwrap()
    );
    sign_in_via(
        &HopBrowser::new(),
        &one,
        &up,
        "/sso/org/acme?next=/account",
        "zed@acme.test",
    )
    .await
    .assert_at("/account");

    // A replica with another key cannot open it: a page that says what to do, and the
    // organization's page asks for the secret again.
    let two = server.replica_with(keyed(Some(OTHER_KEY))).await;
    let page = HopBrowser::new()
        .get(&format!("{}/sso/org/acme", two.url()))
        .await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(
        page.body.contains("must enter the client secret again"),
        "{}",
        page.body
    );
    let page = owner.get(&format!("{}/orgs/acme", two.url())).await;
    assert!(page.body.contains("cannot be read"), "{}", page.body);

    // Without the old key, resealing names the organization and changes nothing.
    let out = reseal(&server, OTHER_KEY);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("acme") && stderr.contains("enter their client secret again"),
        "{stderr}"
    );
    assert!(!stderr.contains(UPSTREAM_CLIENT_SECRET) && !stderr.contains(OTHER_KEY));
    assert_eq!(stored_secret(&server, &acme.id).await, Some(sealed.clone()));

    // New key first, old below: every secret moves to the new key, and then the replica
    // that has only the new key signs people in.
    let out = reseal(&server, &format!("{OTHER_KEY},{TEST_SECRET_KEY}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 client secrets resealed"), "{stdout}");
    let resealed = stored_secret(&server, &acme.id).await.unwrap();
    assert_ne!(resealed, sealed);
    sign_in_via(
        &HopBrowser::new(),
        &two,
        &up,
        "/sso/org/acme?next=/account",
        "zed@acme.test",
    )
    .await
    .assert_at("/account");
    let out = reseal(&server, &format!("{OTHER_KEY},{TEST_SECRET_KEY}"));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 client secrets resealed"),
        "a second run has nothing to do"
    );

    // "No client secret" forgets the saved one (and cannot be ticked with a new secret).
    let mut public = vec![
        ("issuer", up.issuer.as_str()),
        ("client_id", UPSTREAM_CLIENT_ID),
        ("client_secret", UPSTREAM_CLIENT_SECRET),
        ("default_role", "member"),
        ("no_secret", "on"),
    ];
    let page = submit(&owner, &two, "/orgs/acme", "/orgs/acme/sso", &public).await;
    assert_eq!(page.status, 400, "{}", page.body);
    public.retain(|(k, _)| *k != "client_secret");
    submit(&owner, &two, "/orgs/acme", "/orgs/acme/sso", &public)
        .await
        .assert_at("done=sso-saved");
    assert_eq!(stored_secret(&server, &acme.id).await, None);

    // Keeping the saved secret keeps it only for the provider it was entered for, even when
    // another save changed the provider in between.
    save_org_sso(
        &owner,
        &two,
        "acme",
        &up.issuer,
        Some(UPSTREAM_CLIENT_SECRET),
    )
    .await
    .assert_at("done=sso-saved");
    assert!(stored_secret(&server, &acme.id).await.is_some());
    let mut stale = store(&server).org_sso(&acme.id).await.unwrap().unwrap();
    stale.issuer = "https://another.example".into();
    stale.client_secret = None;
    store(&server)
        .save_org_sso(&stale, true, server.running().state.now())
        .await
        .unwrap();
    assert_eq!(stored_secret(&server, &acme.id).await, None);
}

#[test]
fn generate_key_needs_no_settings_and_check_config_shows_only_key_ids() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
        .args(["secrets", "generate-key"])
        .env("LATCHKEYD_LISTEN", "not an address")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(key.len(), 64);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
        .arg("check-config")
        .env("LATCHKEYD_SECRET_KEY", format!("{key},{TEST_SECRET_KEY}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("secret key: ") && text.contains("for opening older secrets"),
        "{text}"
    );
    assert!(
        !text.contains(&key) && !text.contains(TEST_SECRET_KEY),
        "{text}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
        .arg("check-config")
        .env("LATCHKEYD_SECRET_KEY", "hunter2hunter2")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("generate-key") && !err.contains("hunter2"),
        "{err}"
    );
}
