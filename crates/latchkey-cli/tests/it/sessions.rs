//! `latchkey sessions`: the user's sessions (this one marked), `--json`, and `revoke`: another
//! session's CLI gets "Session expired"; revoking this one is a logout.

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_revoke_sessions() {
    let w = World::new().await;
    let sam = w.user("sam@example.com").await;
    w.login(&sam, &["--name", "laptop"]).await.success();

    // A second CLI, elsewhere (its own config directory), signed in with a password.
    let other_dir = w.tmp.path().join("desktop-config");
    let url = w.url();
    let other = |args: &[&str]| {
        let mut c = w.command(args);
        c.env("LATCHKEY_CONFIG_DIR", &other_dir);
        c
    };
    run_with_stdin(
        other(&[
            "login",
            "--server",
            &url,
            "--email",
            "sam@example.com",
            "--password-stdin",
            "--name",
            "desktop",
        ]),
        &format!("{PASSWORD}\n"),
    )
    .await
    .success();

    let table = w
        .run(&["sessions"])
        .await
        .success()
        .stderr_has("* this session");
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{table:?}");
    assert!(
        lines[0].contains("ID") && lines[0].contains("LAST USED"),
        "{table:?}"
    );
    let mine = lines.iter().find(|l| l.contains("laptop")).unwrap();
    let theirs = lines.iter().find(|l| l.contains("desktop")).unwrap();
    assert!(mine.starts_with('*') && mine.contains("device"), "{mine}");
    assert!(
        theirs.starts_with(' ') && theirs.contains("password"),
        "{theirs}"
    );
    assert!(
        mine.contains("127.0.0.1") && mine.contains("just now"),
        "{mine}"
    );

    let json = w.run(&["sessions", "--json"]).await.success();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let sessions = v["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let desktop = sessions.iter().find(|s| s["name"] == "desktop").unwrap();
    let laptop = sessions.iter().find(|s| s["name"] == "laptop").unwrap();
    assert_eq!(laptop["current"], true);
    assert_eq!(desktop["current"], false);
    assert_eq!(v["current"], laptop["id"]);
    assert_eq!(w.credentials()["session"]["id"], laptop["id"]);
    // The list subcommand says the same.
    let again = w.run(&["sessions", "list", "--json"]).await.success();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&again.stdout).unwrap()["current"],
        v["current"]
    );

    // Revoke the desktop's session by a prefix of its id.
    let desktop_id = desktop["id"].as_str().unwrap();
    let prefix = &desktop_id[..desktop_id.len() - 4];
    w.run(&["sessions", "revoke", prefix])
        .await
        .success()
        .stderr_has(&format!("Revoked session {desktop_id} (desktop)"))
        .stderr_has("signed out at its next refresh");
    run_command(other(&["whoami"]))
        .await
        .code(1)
        .stderr_has("Session expired. Run `latchkey login` again.");
    w.run(&["sessions", "revoke", desktop_id])
        .await
        .code(1)
        .stderr_has(&format!("no session with id {desktop_id}"))
        .stderr_has("latchkey sessions");
    w.run(&["sessions", "revoke", "no/such"]).await.code(1);

    // Revoking this CLI's own session is a logout.
    let laptop_id = laptop["id"].as_str().unwrap();
    let token = w.credentials()["access_token"].as_str().unwrap().to_owned();
    w.run(&["sessions", "revoke", laptop_id, "--yes"])
        .await
        .success()
        .stderr_has("this one, so you are signed out here")
        .stderr_has("latchkey login");
    assert!(!w.credentials_path().exists());
    assert_eq!(me_status(&w.url(), &token).await, 401);
    w.run(&["sessions"])
        .await
        .code(1)
        .stderr_has("Not signed in.");
}
