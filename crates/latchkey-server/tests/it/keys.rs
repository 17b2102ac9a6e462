//! Signing key rotation on replicas sharing a database, with the clock under test control:
//! a new key is published before it signs, the old one verifies until its tokens expire and
//! is then retired, and the automatic schedule rotates once however many replicas run it.

use latchkey_server::config::Settings;
use latchkey_server::domain::keys::{self, KeySet, KeyState};
use latchkey_server::state::key_grace;
use latchkey_server::testkit::TestServer;
use std::collections::BTreeSet;

use super::device_flow::login;
use super::{get_json, refresh};

async fn kids(srv: &TestServer) -> BTreeSet<String> {
    let (_, _, j) = get_json(&format!("{}/.well-known/jwks.json", srv.url()), None).await;
    j["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(jwt: &str) -> String {
    use base64::Engine;
    let h = jwt.split('.').next().unwrap();
    let v: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .unwrap(),
    )
    .unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

async fn me(srv: &TestServer, access: &str) -> u16 {
    get_json(&format!("{}/v1/me", srv.url()), Some(access))
        .await
        .0
}

fn settings() -> Settings {
    Settings {
        access_token_ttl: Some(600),
        key_activation_delay: Some(120),
        key_reload_interval: Some(60),
        key_rotation_interval: Some(7200),
        ..Settings::default()
    }
}

#[tokio::test]
async fn rotation_publishes_first_overlaps_then_retires() {
    let a = TestServer::start_with(settings()).await;
    let b = a.replica().await;
    let grace = key_grace(&a.running().state.config);
    let k1 = kids(&a).await;
    assert_eq!(k1.len(), 1);
    assert_eq!(kids(&b).await, k1, "the replica loaded the same key");
    let k1 = k1.into_iter().next().unwrap();
    let (access1, refresh1) = login(&a, "rot@example.com").await;
    assert_eq!(kid_of(&access1), k1);

    // Rotate (what `latchkeyd keys rotate` does): published now, signs in 120 s.
    let store = &a.running().state.store;
    let now = a.running().state.now();
    let new = keys::generate();
    store
        .insert_signing_key(&new, now, now + 120)
        .await
        .unwrap();
    let k2 = new.kid.clone();
    // Each replica picks it up on its next reload.
    assert!(!kids(&b).await.contains(&k2));
    for srv in [&a, &b] {
        srv.running().state.reload_keys().await.unwrap();
        assert_eq!(kids(srv).await, BTreeSet::from([k1.clone(), k2.clone()]));
    }
    // Published but not signing yet.
    let (s, t) = refresh(b.url(), &refresh1).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(kid_of(t["access_token"].as_str().unwrap()), k1);
    let refresh2 = t["refresh_token"].as_str().unwrap().to_owned();

    // Activation: the new key signs on both replicas; tokens of the old key still verify.
    a.clock.advance(121);
    let (s, t) = refresh(a.url(), &refresh2).await;
    assert_eq!(s, 200, "{t}");
    let access2 = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(kid_of(&access2), k2);
    let access_old = access1.clone();
    assert_eq!(
        me(&a, &access_old).await,
        200,
        "old key verifies in the overlap"
    );
    assert_eq!(me(&a, &access2).await, 200);
    let status =
        KeySet::new(store.signing_keys().await.unwrap()).status(a.running().state.now(), grace);
    assert_eq!(status[0].state, KeyState::Active);
    assert_eq!(status[1].state, KeyState::Retiring);
    assert_eq!(status[1].published_until, Some(now + 120 + grace));

    // Still published until every token it signed has expired (plus skew)... (margins of
    // half a minute: the test clock is real time plus an offset)
    a.clock.advance(grace - 30);
    a.running().state.maintain_keys().await.unwrap();
    assert!(kids(&a).await.contains(&k1));
    // ...then retired: unpublished on every replica and deleted from the database.
    a.clock.advance(40);
    a.running().state.maintain_keys().await.unwrap();
    b.running().state.reload_keys().await.unwrap();
    assert_eq!(kids(&a).await, BTreeSet::from([k2.clone()]));
    assert_eq!(kids(&b).await, BTreeSet::from([k2.clone()]));
    assert_eq!(
        store
            .signing_keys()
            .await
            .unwrap()
            .iter()
            .map(|k| k.kid.clone())
            .collect::<Vec<_>>(),
        vec![k2.clone()]
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn scheduled_rotation_happens_once_across_replicas() {
    let a = TestServer::start_with(settings()).await;
    let b = a.replica().await;
    let c = a.replica().await;
    let store = a.running().state.store.clone();
    let count = || async { store.signing_keys().await.unwrap().len() };
    assert_eq!(count().await, 1);
    // Not due yet.
    a.running().state.maintain_keys().await.unwrap();
    assert_eq!(count().await, 1);
    // Due: three replicas run their upkeep at the same moment; one new key is made.
    a.clock.advance(7200);
    let (ra, rb, rc) = tokio::join!(
        a.running().state.maintain_keys(),
        b.running().state.maintain_keys(),
        c.running().state.maintain_keys()
    );
    ra.unwrap();
    rb.unwrap();
    rc.unwrap();
    assert_eq!(count().await, 2, "one rotation, not one per replica");
    let ks = KeySet::new(store.signing_keys().await.unwrap());
    let grace = key_grace(&a.running().state.config);
    let st = ks.status(a.running().state.now(), grace);
    assert_eq!(st[0].state, KeyState::Pending);
    assert_eq!(st[0].activates_at, a.running().state.now() + 120);
    for srv in [&a, &b, &c] {
        assert_eq!(kids(srv).await.len(), 2, "every replica publishes it");
    }
    // Later the old key has retired, and the next rotation is due 7200 s after the last key
    // was made.
    // (Margins of a minute: the test clock is real time plus an offset.)
    a.clock.advance(3600);
    a.running().state.maintain_keys().await.unwrap();
    assert_eq!(count().await, 1, "the first key retired, no rotation yet");
    a.clock.advance(3660);
    b.running().state.maintain_keys().await.unwrap();
    assert_eq!(count().await, 2, "the next scheduled rotation");
    for s in [a, b, c] {
        s.stop().await;
    }
}
