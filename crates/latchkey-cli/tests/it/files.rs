//! The files: modes, corrupt credentials, workspace-local precedence.

use crate::util::*;

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_modes_are_private() {
    let w = World::new().await;
    w.signed_in("kim@example.com").await;
    assert_eq!(mode(&w.config_dir), 0o700);
    assert_eq!(mode(&w.credentials_path()), 0o600);
    assert_eq!(mode(&w.config_dir.join("config.yaml")), 0o600);
    // Only the expected files: no temporary leftovers.
    let mut names: Vec<String> = std::fs::read_dir(&w.config_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["config.yaml", "credentials.json", "credentials.json.lock"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_credentials_are_reported_and_kept() {
    let w = World::new().await;
    let lee = w.user("lee@example.com").await;
    std::fs::create_dir_all(&w.config_dir).unwrap();
    let garbage = b"{\"version\": 1, \"access_token\": ";
    std::fs::write(w.credentials_path(), garbage).unwrap();
    let path = w.credentials_path().display().to_string();
    for args in [
        &["token"][..],
        &["whoami"][..],
        &["login", "--no-browser"][..],
    ] {
        w.run(args)
            .await
            .code(1)
            .stderr_has(&path)
            .stderr_has("cannot be used")
            .stderr_has("latchkey logout");
        assert_eq!(std::fs::read(w.credentials_path()).unwrap(), garbage);
    }
    // An explicit logout deletes it; then a login works.
    w.run(&["logout", "-y"]).await.success();
    assert!(!w.credentials_path().exists());
    w.login(&lee, &[]).await.success();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_local_credentials_take_precedence() {
    let w = World::new().await;
    w.signed_in("mia@example.com").await;
    let global_token = w.credentials()["access_token"].as_str().unwrap().to_owned();

    let project = w.tmp.path().join("project");
    let deep = project.join("src/module");
    std::fs::create_dir_all(&deep).unwrap();
    let ned = w.user("ned@example.com").await;
    w.login_in(&project, &ned, &["--local"])
        .await
        .success()
        .stderr_has("Signed in as ned@example.com")
        .stderr_has("workspace-local");
    let local_dir = project.join(".latchkey");
    assert_eq!(
        std::fs::read_to_string(local_dir.join(".gitignore")).unwrap(),
        "*\n"
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&local_dir), 0o700);
        assert_eq!(mode(&local_dir.join("credentials.json")), 0o600);
    }
    // From a subdirectory, the workspace's credentials win.
    w.run_in(&deep, &["whoami"])
        .await
        .success()
        .stdout_has("ned@example.com")
        .stdout_has(&format!(
            "{} (workspace-local)",
            local_dir.join("credentials.json").display()
        ));
    let local_token = w.run_in(&deep, &["token"]).await.success().stdout;
    assert_ne!(local_token.trim(), global_token);
    // Elsewhere, the global login is untouched.
    w.run(&["whoami"])
        .await
        .success()
        .stdout_has("mia@example.com");
    assert_eq!(
        w.run(&["token"]).await.success().stdout.trim(),
        global_token
    );
    // Logging out in the workspace removes only the workspace's credentials.
    w.run_in(&deep, &["logout", "-y"]).await.success();
    assert!(!local_dir.join("credentials.json").exists());
    assert!(w.credentials_path().exists());
}
