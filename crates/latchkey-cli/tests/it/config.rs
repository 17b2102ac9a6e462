//! `latchkey config ...`, completions and help.

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_set_unset_show_path() {
    let w = World::bare(fast_settings()).await;
    w.run(&["config", "get", "cloud.url"])
        .await
        .code(1)
        .stderr_has("cloud.url is not set");
    w.run(&["config", "set", "cloud.url", "https://cloud.example.com"])
        .await
        .success();
    w.run(&["config", "get", "cloud.url"])
        .await
        .success()
        .stdout_has("https://cloud.example.com\n");
    let set = w
        .run(&["config", "set", "cloud.api_key", "lk_secret_value"])
        .await
        .success();
    assert!(!set.stderr.contains("lk_secret_value"));
    let show = w.run(&["config", "show"]).await.success();
    assert!(
        show.stdout.contains("url: https://cloud.example.com"),
        "{show:?}"
    );
    assert!(show.stdout.contains("[redacted]") && !show.stdout.contains("lk_secret_value"));
    w.run(&["config", "unset", "cloud.api_key"]).await.success();
    assert!(
        !std::fs::read_to_string(w.config_dir.join("config.yaml"))
            .unwrap()
            .contains("api_key")
    );
    w.run(&["config", "path"])
        .await
        .success()
        .stdout_has(&w.config_dir.join("config.yaml").display().to_string());
    #[cfg(unix)]
    assert_eq!(mode(&w.config_dir.join("config.yaml")), 0o600);

    w.run(&["config", "set", "cloud.ulr", "https://x"])
        .await
        .code(1)
        .stderr_has("unknown config key `cloud.ulr`")
        .stderr_has("cloud.url");
    w.run(&["config", "set", "cloud.url", "cloud.example.com"])
        .await
        .code(1)
        .stderr_has("https://");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_validates_before_saving() {
    let w = World::bare(fast_settings()).await;
    let script = |name: &str, body: &str| {
        let p = w.tmp.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    };
    let good = script(
        "good-editor",
        "printf 'cloud:\\n  url: https://edited.example.com\\n' > \"$1\"",
    );
    let mut cmd = w.command(&["config", "edit"]);
    cmd.env("EDITOR", &good);
    run_command(cmd).await.success().stderr_has("Saved");
    w.run(&["config", "get", "cloud.url"])
        .await
        .success()
        .stdout_has("https://edited.example.com");

    let bad = script("bad-editor", "printf 'cloud:\\n  ulr: oops\\n' > \"$1\"");
    let mut cmd = w.command(&["config", "edit"]);
    cmd.env("VISUAL", &bad).env("EDITOR", &good);
    run_command(cmd)
        .await
        .code(1)
        .stderr_has("not valid")
        .stderr_has("was not changed");
    w.run(&["config", "get", "cloud.url"])
        .await
        .success()
        .stdout_has("https://edited.example.com");
    let names: Vec<String> = std::fs::read_dir(&w.config_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["config.yaml"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_help() {
    let w = World::bare(fast_settings()).await;
    for shell in ["bash", "zsh", "fish"] {
        let run = w.run(&["completions", shell]).await.success();
        assert!(
            run.stdout.contains("latchkey") && run.stdout.contains("whoami"),
            "{shell}"
        );
    }
    w.run(&["--help"])
        .await
        .success()
        .stdout_has("Examples:")
        .stdout_has("latchkey token");
    w.run(&["login", "--help"])
        .await
        .success()
        .stdout_has("--no-browser")
        .stdout_has("--auth-url")
        .stdout_has("--local");
    w.run(&["frobnicate"]).await.code(2);
}
