//! `latchkey orgs` and `latchkey orgs switch`: the list with the active org marked, and a switch
//! that the very next token already carries.

use crate::api_keys::{api, ci, create_key};
use crate::util::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_switch() {
    let w = World::new().await;
    w.signed_in("olaf@example.com").await;
    let one = w.run(&["orgs"]).await.success().stdout_has("SLUG");
    let lines: Vec<&str> = one.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{one:?}");
    assert!(
        lines[1].starts_with("* ") && lines[1].ends_with("owner"),
        "{one:?}"
    );

    let before = w.run(&["token"]).await.success().stdout.trim().to_owned();
    let (s, b) = api(
        &w,
        reqwest::Method::POST,
        "/v1/orgs",
        &before,
        Some(json!({"name": "Team", "slug": "team"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");

    let two = w.run(&["orgs"]).await.success();
    assert!(
        two.stdout.contains("\n  team ") && two.stdout.contains("Team"),
        "{two:?}"
    );
    let v: Value =
        serde_json::from_str(&w.run(&["orgs", "--json"]).await.success().stdout).unwrap();
    let orgs = v["orgs"].as_array().unwrap();
    assert_eq!(orgs.len(), 2);
    let personal = orgs.iter().find(|o| o["slug"] != "team").unwrap().clone();
    assert_eq!(v["active"], personal["id"]);
    assert_eq!(personal["active"], true);
    // `orgs list --json` is the same document.
    let l: Value =
        serde_json::from_str(&w.run(&["orgs", "list", "--json"]).await.success().stdout).unwrap();
    assert_eq!(l, v);

    w.run(&["orgs", "switch", "team"])
        .await
        .success()
        .stderr_has("Switched to team (role: owner)");
    // The token was refreshed at once (the old one had almost an hour left) and carries the org.
    let after = w.run(&["token"]).await.success().stdout.trim().to_owned();
    assert_ne!(after, before);
    assert_eq!(w.credentials()["identity"]["org"]["slug"], "team");
    w.run(&["whoami"])
        .await
        .success()
        .stdout_has("Organization team (owner)");
    w.run(&["orgs"]).await.success().stdout_has("* team ");

    // By display name and by id too.
    w.run(&["orgs", "switch", personal["name"].as_str().unwrap()])
        .await
        .success()
        .stderr_has(&format!(
            "Switched to {}",
            personal["slug"].as_str().unwrap()
        ));
    w.run(&["orgs", "switch", personal["id"].as_str().unwrap()])
        .await
        .success();
    w.run(&["orgs", "switch", "TEAM"]).await.success();

    // An org the user is not in.
    w.run(&["orgs", "switch", "nope"])
        .await
        .code(1)
        .stderr_has("error: could not switch to nope")
        .stderr_has("hint: Your organizations: ")
        .stderr_has("team");
    w.run(&["whoami"])
        .await
        .success()
        .stdout_has("Organization team (owner)");

    // An API key acts in one org and cannot switch.
    let key = create_key(&w, "bot", &[]).await;
    let fresh = w.tmp.path().join("fresh");
    run_command(ci(&w, &fresh, &key, &["orgs", "switch", "team"]))
        .await
        .code(1)
        .stderr_has("API keys cannot manage credentials")
        .stderr_has("hint: LATCHKEY_API_KEY is set");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_with_a_passed_through_token_warns() {
    let w = World::new().await;
    w.signed_in("pia@example.com").await;
    let token = w.run(&["token"]).await.success().stdout.trim().to_owned();
    let (s, _) = api(
        &w,
        reqwest::Method::POST,
        "/v1/orgs",
        &token,
        Some(json!({"name": "Side", "slug": "side"})),
    )
    .await;
    assert_eq!(s, 201);
    let mut c = w.command(&["orgs", "switch", "side"]);
    c.env("LATCHKEY_TOKEN", &token);
    run_command(c)
        .await
        .success()
        .stderr_has("Switched to side (role: owner)")
        .stderr_has(
            "warning: the token in $LATCHKEY_TOKEN still carries the previous organization",
        );
    w.run(&["orgs"]).await.code(0).stdout_has("* side ");
}
