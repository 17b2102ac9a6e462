//! Sign-in through an upstream identity provider: a real OpenID provider (node-oidc-provider,
//! `testing/oidc-provider/upstream.js`) on loopback, signed in to through its own pages.
//! Without Node.js the tests say so and pass, unless CI=true or LATCHKEY_REQUIRE_INTEROP=1
//! (scripts/test sets it) makes them fail.

use crate::*;
use latchkey_server::config::Settings;
use latchkey_server::federation::UpstreamSettings;
use latchkey_server::federation::config::ClientSecret;
use latchkey_server::testkit::oidc::{
    Hop, HopBrowser, OidcProvider, TEST_SECRET_KEY, UPSTREAM_CLIENT_ID, UPSTREAM_CLIENT_SECRET,
};
use latchkey_server::testkit::{TestServer, hidden_fields};
use std::collections::BTreeMap;

fn corp(issuer: &str) -> UpstreamSettings {
    UpstreamSettings {
        name: Some("Corp ID".into()),
        issuer: Some(issuer.into()),
        client_id: Some(UPSTREAM_CLIENT_ID.into()),
        client_secret: Some(UPSTREAM_CLIENT_SECRET.into()),
        domains: Some(vec!["corp.test".into()]),
        ..UpstreamSettings::default()
    }
}

fn with_upstreams(list: Vec<(&str, UpstreamSettings)>) -> Settings {
    Settings {
        upstream: Some(
            list.into_iter()
                .map(|(id, s)| (id.to_owned(), s))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Settings::default()
    }
}

/// The upstream provider and a latchkeyd that federates to it as `corp`.
async fn setup() -> Option<(OidcProvider, TestServer)> {
    let upstream = OidcProvider::start_or_skip("upstream.js")?;
    let server =
        TestServer::start_with(with_upstreams(vec![("corp", corp(&upstream.issuer))])).await;
    Some((upstream, server))
}

/// Starts at `path` on latchkeyd, signs in at the upstream as `login`, follows to the end.
pub(crate) async fn sign_in_via(
    b: &HopBrowser,
    server: &TestServer,
    up: &OidcProvider,
    path: &str,
    login: &str,
) -> Hop {
    let hop = b.get(&format!("{}{path}", server.url())).await;
    assert_eq!(hop.status, 303, "start {path}: {}", hop.body);
    let hop = b.sign_in_upstream(hop, &up.issuer, login, None).await;
    b.follow(hop, None).await
}

fn csrf_of(html: &str) -> String {
    hidden_fields(html)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no csrf field on page:\n{html}"))
}

/// POSTs a form of latchkeyd's page `page_path` (its CSRF token included), follows redirects.
pub(crate) async fn submit(
    b: &HopBrowser,
    server: &TestServer,
    page_path: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> Hop {
    let page = b
        .follow(b.get(&format!("{}{page_path}", server.url())).await, None)
        .await;
    let mut form = vec![("csrf".to_owned(), csrf_of(&page.body))];
    form.extend(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let hop = b
        .post_form(&format!("{}{action}", server.url()), &form)
        .await;
    b.follow(hop, None).await
}

pub(crate) fn store(server: &TestServer) -> &latchkey_server::store::Store {
    &server.running().state.store
}

/// Saves `slug`'s SSO form as its owner `b`: `issuer`, the test client, `secret` (none: a
/// public client) and new members as `member`.
pub(crate) async fn save_org_sso(
    b: &HopBrowser,
    server: &TestServer,
    slug: &str,
    issuer: &str,
    secret: Option<&str>,
) -> Hop {
    let mut form = vec![
        ("issuer", issuer),
        ("client_id", UPSTREAM_CLIENT_ID),
        ("default_role", "member"),
    ];
    form.extend(secret.map(|s| ("client_secret", s)));
    let page = format!("/orgs/{slug}");
    submit(b, server, &page, &format!("{page}/sso"), &form).await
}

/// The organization's client secret as the database holds it.
pub(crate) async fn stored_secret(server: &TestServer, org_id: &str) -> Option<String> {
    store(server)
        .org_sso(org_id)
        .await
        .unwrap()
        .expect("the organization has SSO")
        .client_secret
}

/// Creates an account with a password on the sign-up page, signed in in `b`.
pub(crate) async fn sign_up(b: &HopBrowser, server: &TestServer, email: &str) -> Hop {
    let page = b.get(&format!("{}/signup", server.url())).await;
    let form = vec![
        ("csrf".to_owned(), csrf_of(&page.body)),
        ("email".to_owned(), email.to_owned()),
        ("password".to_owned(), PASSWORD.to_owned()),
        ("next".to_owned(), "/account".to_owned()),
    ];
    let hop = b
        .post_form(&format!("{}/signup", server.url()), &form)
        .await;
    b.follow(hop, None).await
}

/// Presses the link form `action` on latchkeyd's page `page_path` and signs in at the
/// upstream as `login`; returns where the browser lands.
async fn link_via_form(
    b: &HopBrowser,
    server: &TestServer,
    up: &OidcProvider,
    page_path: &str,
    action: &str,
    login: &str,
) -> Hop {
    let page = b.get(&format!("{}{page_path}", server.url())).await;
    let form = vec![("csrf".to_owned(), csrf_of(&page.body))];
    let hop = b
        .post_form(&format!("{}{action}", server.url()), &form)
        .await;
    b.follow(b.sign_in_upstream(hop, &up.issuer, login, None).await, None)
        .await
}

/// "Continue with SSO" with `email`: the answer (a redirect to the provider's start page).
async fn continue_with_sso(b: &HopBrowser, server: &TestServer, email: &str) -> Hop {
    let page = b.get(&format!("{}/signin/sso", server.url())).await;
    assert_eq!(page.status, 200);
    let form = vec![
        ("csrf".to_owned(), csrf_of(&page.body)),
        ("email".to_owned(), email.to_owned()),
        ("next".to_owned(), "/account".to_owned()),
    ];
    b.post_form(&format!("{}/signin/sso", server.url()), &form)
        .await
}

/// "Continue with SSO" as `email`, expecting to be sent to `path`, then signing in there.
async fn sso_by_email(
    b: &HopBrowser,
    server: &TestServer,
    up: &OidcProvider,
    email: &str,
    path: &str,
) -> Hop {
    let hop = continue_with_sso(b, server, email).await;
    assert!(
        hop.location.as_deref().unwrap_or("").contains(path),
        "{hop:?}"
    );
    let at_upstream = b.follow(hop, Some(&up.issuer)).await;
    b.follow(
        b.sign_in_upstream(at_upstream, &up.issuer, email, None)
            .await,
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sign_in_creates_the_user_and_the_second_finds_it() {
    let Some((up, server)) = setup().await else {
        return;
    };
    let signin = HopBrowser::new()
        .get(&format!("{}/signin", server.url()))
        .await;
    assert!(
        signin.body.contains("Continue with Corp ID"),
        "{}",
        signin.body
    );
    assert!(signin.body.contains("Continue with SSO"), "{}", signin.body);

    let b = HopBrowser::new();
    let page = sign_in_via(&b, &server, &up, "/sso/corp", "alice").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.url.ends_with("/connect"), "{}", page.url);
    assert!(page.body.contains("alice@example.com"), "{}", page.body);
    let user = store(&server)
        .user_by_email("alice@example.com")
        .await
        .unwrap()
        .expect("created just in time");
    assert_eq!(user.name.as_deref(), Some("Alice"));
    assert!(user.password_hash.is_none());
    let ids = store(&server).identities_of(&user.id).await.unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        (ids[0].provider.as_str(), ids[0].subject.as_str()),
        ("corp", "alice")
    );
    assert_eq!(ids[0].issuer, up.issuer);

    // Another browser, another upstream session: the same user, nothing new.
    let again = HopBrowser::new();
    let page = sign_in_via(&again, &server, &up, "/sso/corp", "alice").await;
    assert!(page.body.contains("alice@example.com"), "{}", page.body);
    let account = again.get(&format!("{}/account", server.url())).await;
    assert_eq!(account.status, 200);
    assert!(
        account.body.contains("Sign-in methods") && account.body.contains("Corp ID"),
        "{}",
        account.body
    );
    let same = store(&server)
        .user_by_email("alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(same.id, user.id);
    assert_eq!(
        store(&server).identities_of(&user.id).await.unwrap().len(),
        1
    );
    // The only way in cannot be unlinked, even with a link to a provider that is gone;
    // after setting a password it can.
    let now = server.running().state.now();
    store(&server)
        .link_identity(
            &user.id,
            "retired-idp",
            "alice",
            "https://gone.example",
            None,
            now,
        )
        .await
        .unwrap();
    let page = submit(
        &again,
        &server,
        "/account",
        &format!("/account/identities/{}/unlink", ids[0].id),
        &[],
    )
    .await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(page.body.contains("only way to sign in"), "{}", page.body);
    // Adding a password needs a recent sign-in (no current password to confirm).
    server.clock.advance(700);
    let page = submit(
        &again,
        &server,
        "/account",
        "/account/password",
        &[("new", PASSWORD)],
    )
    .await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.body.contains("sign in again"), "{}", page.body);
    // Signing in again (the provider remembers the browser) and a `next` off-site stays here.
    let page = sign_in_via(
        &again,
        &server,
        &up,
        "/sso/corp?next=//evil.example/x",
        "alice",
    )
    .await;
    assert!(
        page.url.starts_with(server.url()) && page.url.ends_with("/connect"),
        "{}",
        page.url
    );
    let page = submit(
        &again,
        &server,
        "/account",
        "/account/password",
        &[("new", PASSWORD)],
    )
    .await;
    page.assert_at("done=password");
    let page = submit(
        &again,
        &server,
        "/account",
        &format!("/account/identities/{}/unlink", ids[0].id),
        &[],
    )
    .await;
    page.assert_at("done=unlinked");
    let left = store(&server).identities_of(&user.id).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].provider, "retired-idp");
    let (s, _, _) = password_grant(server.url(), "alice@example.com", PASSWORD, "t").await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_approved_by_a_user_who_signed_in_upstream() {
    let Some((up, server)) = setup().await else {
        return;
    };
    let device = start_device(server.url()).await;
    let code = device["user_code"].as_str().unwrap();
    let b = HopBrowser::new();
    // The link the CLI prints leads to sign-in, whose button keeps the way back to the code.
    let hop = b
        .follow(
            b.get(device["verification_uri_complete"].as_str().unwrap())
                .await,
            None,
        )
        .await;
    assert!(hop.url.contains("/signin?next="), "{}", hop.url);
    let next = url::Url::parse(&hop.url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "next")
        .unwrap()
        .1
        .into_owned();
    let path = format!(
        "/sso/corp?next={}",
        url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
    );
    let page = sign_in_via(&b, &server, &up, &path, "dev@corp.test").await;
    assert!(
        page.body.contains("Approve") && page.body.contains(code),
        "{}",
        page.body
    );
    let mut form: Vec<(String, String)> = Vec::new();
    for (k, v) in hidden_fields(&page.body) {
        if !form.iter().any(|(n, _)| *n == k) {
            form.push((k, v));
        }
    }
    form.push(("decision".into(), "approve".into()));
    let done = b
        .post_form(&format!("{}/device", server.url()), &form)
        .await;
    assert!(done.body.contains("Device connected"), "{}", done.body);
    let (s, tok) = poll(server.url(), device["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{tok}");
    let (s, _, me) = get_json(
        &format!("{}/v1/me", server.url()),
        tok["access_token"].as_str(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(me["user"]["email"], "dev@corp.test", "{me}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_with_sso_routes_by_email_domain() {
    let Some((up, server)) = setup().await else {
        return;
    };
    let b = HopBrowser::new();
    let page = submit(
        &b,
        &server,
        "/signin/sso",
        "/signin/sso",
        &[("email", "nobody@elsewhere.test"), ("next", "/account")],
    )
    .await;
    assert_eq!(page.status, 404, "{}", page.body);
    assert!(
        page.body.contains("not set up for elsewhere.test"),
        "{}",
        page.body
    );

    let hop = continue_with_sso(&b, &server, "Bob@Corp.Test").await;
    assert_eq!(hop.status, 303);
    let to = hop.location.clone().unwrap();
    assert!(
        to.contains("/sso/corp?") && to.contains("login_hint=bob%40corp.test"),
        "{to}"
    );
    let hop = b.follow(hop, Some(&up.issuer)).await;
    assert_eq!(
        hop.location_param("login_hint").as_deref(),
        Some("bob@corp.test")
    );
    let page = b
        .follow(
            b.sign_in_upstream(hop, &up.issuer, "bob@corp.test", None)
                .await,
            None,
        )
        .await;
    assert!(page.url.ends_with("/account"), "{}", page.url);
    assert!(
        store(&server)
            .user_by_email("bob@corp.test")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_state_nonce_or_browser_is_rejected() {
    let Some((up, server)) = setup().await else {
        return;
    };
    let callback = format!("{}/sso/corp/callback", server.url());

    // state: changed on the way back. The real one still works afterwards, once.
    let b = HopBrowser::new();
    let hop = b.get(&format!("{}/sso/corp", server.url())).await;
    let back = b
        .sign_in_upstream(hop, &up.issuer, "mallory", Some(&callback))
        .await;
    let real = back.location.clone().expect("redirect to the callback");
    assert!(real.contains("code=") && real.contains("state="), "{real}");
    let state = back.location_param("state").unwrap();
    let forged = real.replace(&format!("state={state}"), "state=forged");
    let page = b.get(&forged).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("not valid"), "{}", page.body);
    // In another browser (no binding cookie) the real answer is refused too, and spent.
    let other = HopBrowser::new().get(&real).await;
    assert_eq!(other.status, 400, "{}", other.body);
    let replay = b.get(&real).await;
    assert_eq!(
        replay.status, 400,
        "spent by the other browser's attempt: {}",
        replay.body
    );
    assert!(
        store(&server)
            .user_by_email("mallory@example.com")
            .await
            .unwrap()
            .is_none()
    );

    // A fresh attempt, untampered, signs in.
    let b = HopBrowser::new();
    let hop = b.get(&format!("{}/sso/corp", server.url())).await;
    let back = b
        .sign_in_upstream(hop, &up.issuer, "mallory", Some(&callback))
        .await;
    let page = b.follow(back, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        store(&server)
            .user_by_email("mallory@example.com")
            .await
            .unwrap()
            .is_some()
    );

    // nonce: changed in the request to the provider, so the ID token carries another one.
    let b = HopBrowser::new();
    let hop = b.get(&format!("{}/sso/corp", server.url())).await;
    let authorize = hop.location.clone().unwrap();
    let nonce = hop.location_param("nonce").unwrap();
    let tampered = authorize.replace(&format!("nonce={nonce}"), "nonce=tampered");
    let hop = b.get(&tampered).await;
    let page = b
        .follow(
            b.sign_in_upstream(hop, &up.issuer, "trudy", None).await,
            None,
        )
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("could not be verified"), "{}", page.body);
    assert!(
        store(&server)
            .user_by_email("trudy@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_unverified_and_unreachable_are_clear_pages() {
    let Some(up) = OidcProvider::start_or_skip("upstream.js") else {
        return;
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let server = TestServer::start_with(with_upstreams(vec![
        ("corp", corp(&up.issuer)),
        (
            "down",
            UpstreamSettings {
                name: Some("Downtime IdP".into()),
                issuer: Some(down),
                client_id: Some("x".into()),
                ..UpstreamSettings::default()
            },
        ),
    ]))
    .await;

    let b = HopBrowser::new();
    let hop = b.get(&format!("{}/sso/corp", server.url())).await;
    let page = b
        .follow(b.cancel_upstream(hop, &up.issuer, None).await, None)
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("Sign-in cancelled"), "{}", page.body);

    let page = sign_in_via(
        &HopBrowser::new(),
        &server,
        &up,
        "/sso/corp",
        "unverified-carol",
    )
    .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("not verified"), "{}", page.body);
    assert!(
        store(&server)
            .user_by_email("carol@example.com")
            .await
            .unwrap()
            .is_none()
    );

    let page = sign_in_via(&HopBrowser::new(), &server, &up, "/sso/corp", "noemail").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        page.body.contains("did not share an email"),
        "{}",
        page.body
    );

    let page = HopBrowser::new()
        .get(&format!("{}/sso/down", server.url()))
        .await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(
        page.body.contains("Downtime IdP is not answering"),
        "{}",
        page.body
    );
    // An answer for Corp ID brought to another provider's callback is refused (and spent).
    let b = HopBrowser::new();
    let hop = b.get(&format!("{}/sso/corp", server.url())).await;
    let corp_cb = format!("{}/sso/corp/callback", server.url());
    let back = b
        .sign_in_upstream(hop, &up.issuer, "ulla", Some(&corp_cb))
        .await;
    let moved = back
        .location
        .clone()
        .unwrap()
        .replace("/sso/corp/callback", "/sso/down/callback");
    let page = b.get(&moved).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        store(&server)
            .user_by_email("ulla@example.com")
            .await
            .unwrap()
            .is_none()
    );

    // A link made through another issuer under the same provider id does not sign in.
    let now = server.running().state.now();
    let victor = store(&server)
        .create_user(Some("victor@example.com"), None, None, false, now)
        .await
        .unwrap();
    store(&server)
        .link_identity(
            &victor.id,
            "corp",
            "victor",
            "https://old-idp.example",
            None,
            now,
        )
        .await
        .unwrap();
    let page = sign_in_via(&HopBrowser::new(), &server, &up, "/sso/corp", "victor").await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(page.body.contains("Corp ID changed"), "{}", page.body);

    let page = HopBrowser::new()
        .get(&format!("{}/sso/nope", server.url()))
        .await;
    assert_eq!(page.status, 404, "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_account_is_linked_only_after_it_signs_in() {
    let Some((up, server)) = setup().await else {
        return;
    };
    latchkey_server::testkit::Browser::new(server.url())
        .sign_up("erin@example.com", PASSWORD)
        .await;
    let erin = store(&server)
        .user_by_email("erin@example.com")
        .await
        .unwrap()
        .unwrap();

    let b = HopBrowser::new();
    let page = sign_in_via(&b, &server, &up, "/sso/corp?next=/account", "erin").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("already exists") && page.body.contains("Sign in to link"),
        "{}",
        page.body
    );
    // Not signed in, nothing linked yet.
    let account = b.get(&format!("{}/account", server.url())).await;
    assert_eq!(account.status, 303);
    assert!(
        store(&server)
            .identities_of(&erin.id)
            .await
            .unwrap()
            .is_empty()
    );

    // Sign in with the password; the confirmation follows; confirm.
    let signin = b
        .get(&format!("{}/signin?next=/sso/link", server.url()))
        .await;
    let form = vec![
        ("csrf".to_owned(), csrf_of(&signin.body)),
        ("next".to_owned(), "/sso/link".to_owned()),
        ("email".to_owned(), "erin@example.com".to_owned()),
        ("password".to_owned(), PASSWORD.to_owned()),
    ];
    let page = b
        .follow(
            b.post_form(&format!("{}/signin", server.url()), &form)
                .await,
            None,
        )
        .await;
    assert!(
        page.url.ends_with("/sso/link") && page.body.contains("Link Corp ID"),
        "{} {}",
        page.url,
        page.body
    );
    let page = submit(
        &b,
        &server,
        "/sso/link",
        "/sso/link",
        &[("decision", "link")],
    )
    .await;
    page.assert_at("done=linked");
    assert_eq!(
        store(&server).identities_of(&erin.id).await.unwrap().len(),
        1
    );

    // From now on the provider signs in to Erin's account directly.
    let fresh = HopBrowser::new();
    let page = sign_in_via(&fresh, &server, &up, "/sso/corp?next=/account", "erin").await;
    assert!(
        page.url.ends_with("/account") && page.body.contains("erin@example.com"),
        "{} {}",
        page.url,
        page.body
    );
    let users_named_erin = store(&server)
        .user_by_email("erin@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(users_named_erin.id, erin.id);
}

/// `acme` sets up its own SSO on its page; the domain is verified by the operator command's
/// store call (DNS verification has its own test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_sso_adds_members_and_can_be_required() {
    let Some(up) = OidcProvider::start_or_skip("upstream.js") else {
        return;
    };
    let mut settings = with_upstreams(vec![("corp", corp(&up.issuer))]);
    settings.org_sso_allow_private_networks = Some(true);
    settings.secret_key = Some(ClientSecret::new(TEST_SECRET_KEY));
    let server = TestServer::start_with(settings).await;
    // Before Acme sets anything up: Bob has a password account at acme.test and a CLI
    // session; Pat signed up through Corp ID; Quinn has a password and linked Corp ID
    // with a private address.
    latchkey_server::testkit::Browser::new(server.url())
        .sign_up("bob@acme.test", PASSWORD)
        .await;
    let (s, _, bob_cli) = password_grant(server.url(), "bob@acme.test", PASSWORD, "bob-box").await;
    assert_eq!(s, 200, "{bob_cli}");
    sign_in_via(
        &HopBrowser::new(),
        &server,
        &up,
        "/sso/corp",
        "pat@acme.test",
    )
    .await;
    assert!(
        store(&server)
            .user_by_email("pat@acme.test")
            .await
            .unwrap()
            .is_some()
    );
    let quinn = HopBrowser::new();
    sign_up(&quinn, &server, "quinn@acme.test").await;
    let page = quinn
        .get(&format!("{}/sso/corp?link=1", server.url()))
        .await;
    assert_eq!(
        page.status, 200,
        "a link starts only from a form: {}",
        page.body
    );
    assert!(page.body.contains("Continue to Corp ID"), "{}", page.body);
    let page = link_via_form(
        &quinn,
        &server,
        &up,
        "/account",
        "/sso/corp",
        "quinn.private@example.com",
    )
    .await;
    page.assert_at("done=linked");
    let owner = HopBrowser::new();
    sign_up(&owner, &server, "owner@acme.test").await;
    let page = submit(
        &owner,
        &server,
        "/account",
        "/orgs",
        &[("name", "Acme"), ("slug", "acme")],
    )
    .await;
    page.assert_at("/orgs/acme");
    assert!(page.body.contains("Single sign-on"), "{}", page.body);
    assert!(
        page.body.contains("sso&#x2f;org&#x2f;acme&#x2f;callback"),
        "{}",
        page.body
    );

    // A provider that does not answer discovery is not saved.
    let page = submit(
        &owner,
        &server,
        "/orgs/acme",
        "/orgs/acme/sso",
        &[
            ("issuer", "http://127.0.0.1:9"),
            ("client_id", "x"),
            ("default_role", "member"),
        ],
    )
    .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("Could not use"), "{}", page.body);
    let page = save_org_sso(
        &owner,
        &server,
        "acme",
        &up.issuer,
        Some(UPSTREAM_CLIENT_SECRET),
    )
    .await;
    page.assert_at("done=sso-saved");
    assert!(
        !page.body.contains(UPSTREAM_CLIENT_SECRET),
        "the secret is never shown again"
    );
    let acme = store(&server).org("acme").await.unwrap().unwrap();
    let sealed = stored_secret(&server, &acme.id).await.unwrap();
    assert!(
        sealed.starts_with("lks1.") && !sealed.contains(UPSTREAM_CLIENT_SECRET),
        "the database holds the secret sealed, not as given"
    );
    let page = submit(
        &owner,
        &server,
        "/orgs/acme",
        "/orgs/acme/domains",
        &[("domain", "acme.test")],
    )
    .await;
    assert!(
        page.body.contains("_latchkey-challenge.acme.test"),
        "{}",
        page.body
    );
    // Before verification the domain routes nowhere.
    let page = submit(
        &HopBrowser::new(),
        &server,
        "/signin/sso",
        "/signin/sso",
        &[("email", "dana@acme.test")],
    )
    .await;
    assert_eq!(page.status, 404, "{}", page.body);
    assert!(
        store(&server)
            .verify_org_domain(&acme.id, "acme.test", server.running().state.now())
            .await
            .unwrap()
    );
    // Requiring SSO needs the admin to have used it first.
    let page = submit(
        &owner,
        &server,
        "/orgs/acme",
        "/orgs/acme/sso/require",
        &[("require", "on")],
    )
    .await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(
        page.body.contains("to your own account first"),
        "{}",
        page.body
    );

    // A new colleague: Continue with SSO → Acme's provider → account + membership.
    let dana = HopBrowser::new();
    let page = sso_by_email(&dana, &server, &up, "dana@acme.test", "/sso/org/acme?").await;
    assert!(page.url.ends_with("/account"), "{} {}", page.url, page.body);
    let dana_row = store(&server)
        .user_by_email("dana@acme.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store(&server)
            .role_of(&acme.id, &dana_row.id)
            .await
            .unwrap()
            .map(|r| r.as_str()),
        Some("member")
    );
    // At its verified domain the org's provider is the authority, with or without an
    // `email_verified` claim (Microsoft Entra sends none).
    let page = sign_in_via(
        &HopBrowser::new(),
        &server,
        &up,
        "/sso/org/acme",
        "unverified-hal@acme.test",
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let hal = store(&server)
        .user_by_email("hal@acme.test")
        .await
        .unwrap()
        .unwrap();
    assert!(
        store(&server)
            .role_of(&acme.id, &hal.id)
            .await
            .unwrap()
            .is_some()
    );
    // Someone removed from the org is not added back by signing in again.
    store(&server)
        .remove_member(&acme.id, &hal.id)
        .await
        .unwrap();
    let page = sign_in_via(
        &HopBrowser::new(),
        &server,
        &up,
        "/sso/org/acme",
        "unverified-hal@acme.test",
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        store(&server)
            .role_of(&acme.id, &hal.id)
            .await
            .unwrap()
            .is_none()
    );
    // Acme's provider cannot vouch for addresses outside its verified domains.
    let page = sign_in_via(
        &HopBrowser::new(),
        &server,
        &up,
        "/sso/org/acme",
        "eve@elsewhere.test",
    )
    .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        store(&server)
            .user_by_email("eve@elsewhere.test")
            .await
            .unwrap()
            .is_none()
    );

    // The owner links the org's SSO (a form on the org page), then requires it.
    let page = link_via_form(
        &owner,
        &server,
        &up,
        "/orgs/acme",
        "/sso/org/acme",
        "owner@acme.test",
    )
    .await;
    page.assert_at("done=linked");
    let page = submit(
        &owner,
        &server,
        "/orgs/acme",
        "/orgs/acme/sso/require",
        &[("require", "on")],
    )
    .await;
    page.assert_at("done=sso-required");

    // Passwords are refused for acme.test, with the way to go.
    let b = HopBrowser::new();
    let page = b.get(&format!("{}/signin", server.url())).await;
    let form = vec![
        ("csrf".to_owned(), csrf_of(&page.body)),
        ("email".to_owned(), "owner@acme.test".to_owned()),
        ("password".to_owned(), PASSWORD.to_owned()),
        ("next".to_owned(), "/connect".to_owned()),
    ];
    let page = b
        .post_form(&format!("{}/signin", server.url()), &form)
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        page.body.contains("Acme requires single sign-on")
            && page.body.contains("Continue with SSO"),
        "{}",
        page.body
    );
    let (s, _, body) = password_grant(server.url(), "owner@acme.test", PASSWORD, "t").await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_uri"],
        format!("{}/signin/sso", server.url()),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("Acme requires single sign-on"),
        "{body}"
    );
    // Signing up a password account at the domain is refused as well.
    let page = b.get(&format!("{}/signup", server.url())).await;
    let form = vec![
        ("csrf".to_owned(), csrf_of(&page.body)),
        ("email".to_owned(), "frank@acme.test".to_owned()),
        ("password".to_owned(), PASSWORD.to_owned()),
    ];
    let page = b
        .post_form(&format!("{}/signup", server.url()), &form)
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    // Sessions made another way ended: Bob's CLI must sign in again (through SSO), Dana's
    // browser too; the owner's browser stays signed in.
    let (s, body) = refresh(server.url(), bob_cli["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(
        dana.get(&format!("{}/account", server.url())).await.status,
        303
    );
    assert_eq!(
        owner.get(&format!("{}/account", server.url())).await.status,
        200
    );
    // Other providers are refused for the domain: by the address they assert (Pat), and by
    // the account's own address when the provider asserts another one (Quinn).
    for login in ["pat@acme.test", "quinn.private@example.com"] {
        let page = sign_in_via(&HopBrowser::new(), &server, &up, "/sso/corp", login).await;
        assert_eq!(page.status, 403, "{login}: {}", page.body);
        assert!(
            page.body.contains("Acme requires single sign-on"),
            "{}",
            page.body
        );
    }
    // Bob, who never used SSO, signs in with Acme's: the verified domain vouches for him, so
    // his existing account is linked at once (a password he can no longer use cannot prove it).
    let bob = store(&server)
        .user_by_email("bob@acme.test")
        .await
        .unwrap()
        .unwrap();
    let page = sign_in_via(
        &HopBrowser::new(),
        &server,
        &up,
        "/sso/org/acme?next=/account",
        "bob@acme.test",
    )
    .await;
    assert!(
        page.url.ends_with("/account") && page.body.contains("bob@acme.test"),
        "{} {}",
        page.url,
        page.body
    );
    assert_eq!(
        store(&server).identities_of(&bob.id).await.unwrap().len(),
        1
    );
    // Other domains are unaffected.
    latchkey_server::testkit::Browser::new(server.url())
        .sign_up("gus@other.test", PASSWORD)
        .await;
    let (s, _, body) = password_grant(server.url(), "gus@other.test", PASSWORD, "t").await;
    assert_eq!(s, 200, "{body}");
    let page = sign_in_via(
        &HopBrowser::new(),
        &server,
        &up,
        "/sso/org/acme?next=/account",
        "owner@acme.test",
    )
    .await;
    assert!(
        page.url.ends_with("/account") && page.body.contains("owner@acme.test"),
        "{} {}",
        page.url,
        page.body
    );

    // Removing SSO and setting the same provider up again keeps its links.
    let owner_row = store(&server)
        .user_by_email("owner@acme.test")
        .await
        .unwrap()
        .unwrap();
    let org_links = async || {
        store(&server)
            .identities_of(&owner_row.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|i| i.provider.starts_with("org:"))
            .count()
    };
    assert_eq!(org_links().await, 1);
    submit(&owner, &server, "/orgs/acme", "/orgs/acme/sso/delete", &[])
        .await
        .assert_at("done=sso-removed");
    save_org_sso(
        &owner,
        &server,
        "acme",
        &up.issuer,
        Some(UPSTREAM_CLIENT_SECRET),
    )
    .await
    .assert_at("done=sso-saved");
    assert_eq!(
        org_links().await,
        1,
        "the same provider again keeps its links"
    );

    // Another provider (a second node-oidc-provider): the stored secret is not carried over
    // to it and the old provider's links are gone, so its subjects reach nobody by old links.
    let other = OidcProvider::start_or_skip("upstream.js").expect("a second provider");
    let page = save_org_sso(&owner, &server, "acme", &other.issuer, None).await;
    page.assert_at("done=sso-saved");
    let sso = store(&server).org_sso(&acme.id).await.unwrap().unwrap();
    assert_eq!(sso.issuer, other.issuer);
    assert!(
        sso.client_secret.is_none(),
        "the old secret must not go to a new issuer"
    );
    assert_eq!(org_links().await, 0, "links of the old provider are gone");

    // The same after removing SSO first: links left from a removed provider go when another
    // is set up.
    submit(&owner, &server, "/orgs/acme", "/orgs/acme/sso/delete", &[])
        .await
        .assert_at("done=sso-removed");
    let now = server.running().state.now();
    let provider = format!("org:{}", acme.id);
    let with_slash = format!("{}/", up.issuer);
    for (subject, issuer) in [
        ("by-other", &other.issuer),
        ("by-up", &up.issuer),
        ("by-up-slash", &with_slash),
    ] {
        store(&server)
            .link_identity(&owner_row.id, &provider, subject, issuer, None, now)
            .await
            .unwrap();
    }
    save_org_sso(&owner, &server, "acme", &up.issuer, None)
        .await
        .assert_at("done=sso-saved");
    let left = store(&server).identities_of(&owner_row.id).await.unwrap();
    let subjects: Vec<&str> = left
        .iter()
        .filter(|i| i.provider == provider)
        .map(|i| i.subject.as_str())
        .collect();
    let mut subjects = subjects;
    subjects.sort_unstable();
    assert_eq!(
        subjects,
        ["by-up", "by-up-slash"],
        "an `iss` with a trailing / is the same issuer: {left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_oauth2_provider_with_a_userinfo_mapping() {
    let Some(up) = OidcProvider::start_or_skip("upstream.js") else {
        return;
    };
    let doc: serde_json::Value = http()
        .get(format!("{}/.well-known/openid-configuration", up.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let s = |k: &str| Some(doc[k].as_str().unwrap().to_owned());
    let server = TestServer::start_with(with_upstreams(vec![(
        "hub",
        UpstreamSettings {
            preset: Some("oauth2".into()),
            name: Some("Hub".into()),
            authorization_endpoint: s("authorization_endpoint"),
            token_endpoint: s("token_endpoint"),
            userinfo_endpoint: s("userinfo_endpoint"),
            scopes: Some(vec!["openid".into(), "email".into(), "profile".into()]),
            client_id: Some(UPSTREAM_CLIENT_ID.into()),
            client_secret: Some(UPSTREAM_CLIENT_SECRET.into()),
            ..UpstreamSettings::default()
        },
    )]))
    .await;
    let b = HopBrowser::new();
    let hop = b.get(&format!("{}/sso/hub", server.url())).await;
    assert!(
        hop.location_param("nonce").is_none(),
        "plain OAuth 2.0 sends no nonce"
    );
    let page = b
        .follow(
            b.sign_in_upstream(hop, &up.issuer, "grace", None).await,
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let u = store(&server)
        .user_by_email("grace@example.com")
        .await
        .unwrap()
        .unwrap();
    let ids = store(&server).identities_of(&u.id).await.unwrap();
    assert_eq!(
        (ids[0].provider.as_str(), ids[0].subject.as_str()),
        ("hub", "grace")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_lists_providers_without_their_secrets() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
        .arg("check-config")
        .env("LATCHKEYD_UPSTREAM_GOOGLE_PRESET", "google")
        .env("LATCHKEYD_UPSTREAM_GOOGLE_CLIENT_ID", "g-client")
        .env(
            "LATCHKEYD_UPSTREAM_GOOGLE_CLIENT_SECRET",
            "very-secret-value",
        )
        .env(
            "LATCHKEYD_UPSTREAM_ACME_ISSUER",
            "https://acme.okta.example",
        )
        .env("LATCHKEYD_UPSTREAM_ACME_CLIENT_ID", "acme-client")
        .env("LATCHKEYD_UPSTREAM_ACME_DOMAINS", "acme.example")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("\"Continue with Google\" (google) https://accounts.google.com"),
        "{text}"
    );
    assert!(
        text.contains("acme") && text.contains("SSO for acme.example"),
        "{text}"
    );
    assert!(!text.contains("very-secret-value"), "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
        .arg("check-config")
        .env("LATCHKEYD_UPSTREAM_X_ISSUER", "https://x.example")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("client_id is required"));
}

/// A DNS server on loopback UDP answering TXT questions from a table (name → values).
struct TxtServer {
    addr: std::net::SocketAddr,
    records: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Vec<String>>>>,
}

impl TxtServer {
    async fn start() -> TxtServer {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let records =
            std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::<String, Vec<String>>::new()));
        let table = records.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
                let q = &buf[..n];
                // The question: labels from byte 12 to the zero byte, then type and class.
                let mut i = 12;
                let mut labels = Vec::new();
                while i < n && q[i] != 0 {
                    let len = q[i] as usize;
                    labels.push(String::from_utf8_lossy(&q[i + 1..i + 1 + len]).to_lowercase());
                    i += 1 + len;
                }
                let question_end = i + 5;
                let name = labels.join(".");
                let values = table
                    .lock()
                    .unwrap()
                    .get(&name)
                    .cloned()
                    .unwrap_or_default();
                let mut r = Vec::new();
                r.extend_from_slice(&q[..2]);
                r.extend_from_slice(&[0x81, 0x80, 0, 1]);
                r.extend_from_slice(&u16::try_from(values.len()).unwrap().to_be_bytes());
                r.extend_from_slice(&[0, 0, 0, 0]);
                r.extend_from_slice(&q[12..question_end]);
                for v in values {
                    r.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60]);
                    r.extend_from_slice(&u16::try_from(v.len() + 1).unwrap().to_be_bytes());
                    r.push(u8::try_from(v.len()).unwrap());
                    r.extend_from_slice(v.as_bytes());
                }
                let _ = sock.send_to(&r, peer).await;
            }
        });
        TxtServer { addr, records }
    }
}

/// An org proves its domain with a TXT record, asked for over real DNS (a loopback server),
/// before "Continue with SSO" routes the domain to it; another org cannot verify it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_are_verified_by_a_dns_txt_record() {
    let Some(up) = OidcProvider::start_or_skip("upstream.js") else {
        return;
    };
    let dns = TxtServer::start().await;
    let server = TestServer::start_with(Settings {
        dns_resolvers: Some(vec![dns.addr.to_string()]),
        org_sso_allow_private_networks: Some(true),
        secret_key: Some(ClientSecret::new(TEST_SECRET_KEY)),
        ..Settings::default()
    })
    .await;
    let admin_of = |email: &'static str, slug: &'static str| {
        let server = &server;
        let up = &up;
        async move {
            let b = HopBrowser::new();
            sign_up(&b, server, email).await;
            submit(
                &b,
                server,
                "/account",
                "/orgs",
                &[("name", slug), ("slug", slug)],
            )
            .await;
            let path = format!("/orgs/{slug}");
            let page = submit(
                &b,
                server,
                &path,
                &format!("{path}/sso"),
                &[
                    ("issuer", &up.issuer),
                    ("client_id", UPSTREAM_CLIENT_ID),
                    ("client_secret", UPSTREAM_CLIENT_SECRET),
                    ("default_role", "viewer"),
                ],
            )
            .await;
            assert!(page.url.contains("done=sso-saved"), "{}", page.body);
            let page = submit(
                &b,
                server,
                &path,
                &format!("{path}/domains"),
                &[("domain", "Globex.test")],
            )
            .await;
            let at = page
                .body
                .find("latchkey-domain-verification=")
                .expect("the record to publish");
            let value = page.body[at..at + "latchkey-domain-verification=".len() + 43].to_owned();
            (b, value)
        }
    };
    let (globex, value) = admin_of("admin@globex.test", "globex").await;
    let verify = "/orgs/globex/domains/globex.test/verify";
    let page = submit(&globex, &server, "/orgs/globex", verify, &[]).await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(page.body.contains("No TXT record"), "{}", page.body);
    dns.records.lock().unwrap().insert(
        "_latchkey-challenge.globex.test".into(),
        vec!["v=spf1 -all".into(), value.clone()],
    );
    let page = submit(&globex, &server, "/orgs/globex", verify, &[]).await;
    page.assert_at("done=domain-verified");
    assert!(page.body.contains("verified"), "{}", page.body);

    // Routing now goes to Globex; its provider adds the colleague as a viewer.
    let page = sso_by_email(
        &HopBrowser::new(),
        &server,
        &up,
        "hank@globex.test",
        "/sso/org/globex?",
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let globex_org = store(&server).org("globex").await.unwrap().unwrap();
    let hank = store(&server)
        .user_by_email("hank@globex.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store(&server)
            .role_of(&globex_org.id, &hank.id)
            .await
            .unwrap()
            .map(|r| r.as_str()),
        Some("viewer")
    );

    // A second org claiming the same domain (even with the record in place) cannot verify it.
    let (rival, rival_value) = admin_of("admin@rival.test", "rival").await;
    dns.records.lock().unwrap().insert(
        "_latchkey-challenge.globex.test".into(),
        vec![value, rival_value],
    );
    let page = submit(
        &rival,
        &server,
        "/orgs/rival",
        "/orgs/rival/domains/globex.test/verify",
        &[],
    )
    .await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(
        page.body
            .contains("Another organization has already verified"),
        "{}",
        page.body
    );
}
