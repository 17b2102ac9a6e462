//! The QR code `latchkey login` prints: forced on with `LATCHKEY_QR=always`, it decodes (with
//! the rqrr QR reader) to the verification URL with the code; off when stderr is not a terminal
//! or with `LATCHKEY_QR=never`; on a pseudo-terminal (expectrl), shown and painted when the
//! terminal is big enough, not when it is too narrow or too short.

use crate::util::*;

/// The lines of stderr that are part of a half-block QR code.
fn qr_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.chars().count() >= 21 && l.chars().all(|c| matches!(c, '█' | '▀' | '▄' | ' '))
        })
        .map(str::to_owned)
        .collect()
}

/// Decodes half-block lines as a camera would see them: light blocks white, the rest black.
fn decode(lines: &[String]) -> String {
    const SCALE: usize = 6;
    const MARGIN: usize = 4; // extra white modules around, as a phone screen shot would have
    let cols = lines[0].chars().count();
    let rows = lines.len() * 2;
    let mut light = vec![vec![true; cols + 2 * MARGIN]; rows + 2 * MARGIN];
    for (r, line) in lines.iter().enumerate() {
        for (x, c) in line.chars().enumerate() {
            light[MARGIN + 2 * r][MARGIN + x] = matches!(c, '█' | '▀');
            light[MARGIN + 2 * r + 1][MARGIN + x] = matches!(c, '█' | '▄');
        }
    }
    let (w, h) = ((cols + 2 * MARGIN) * SCALE, (rows + 2 * MARGIN) * SCALE);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        if light[y / SCALE][x / SCALE] { 255 } else { 0 }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in:\n{}", lines.join("\n"));
    grids[0].decode().expect("decodes").1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_shows_a_scannable_qr_code_when_asked() {
    let w = World::new().await;
    let quinn = w.user("quinn@example.com").await;
    let mut cmd = w.command(&["login", "--no-browser"]);
    cmd.env("LATCHKEY_QR", "always");
    let pending = Pending::spawn(cmd);
    let code = pending.code().await;
    quinn.approve_device(&code).await;
    let run = pending
        .finish()
        .await
        .success()
        .stderr_has("Or scan this code with your phone:");
    let lines = qr_lines(&run.stderr);
    assert!(lines.len() >= 10, "{run:?}");
    assert!(
        lines.len() <= 20 && lines[0].chars().count() <= 40,
        "compact: {run:?}"
    );
    assert!(
        !run.stderr.contains("\x1b["),
        "no colors with NO_COLOR: {run:?}"
    );
    assert_eq!(
        decode(&lines),
        format!("{}/device?user_code={code}", w.url())
    );
    // The code and the URL are still printed as text.
    assert!(run.stderr.contains(&format!("Code: {code}")));

    // Not a terminal (the default here), or turned off: no code.
    for qr in [None, Some("never"), Some("auto")] {
        let mut cmd = w.command(&["login", "--no-browser", "--force"]);
        if let Some(v) = qr {
            cmd.env("LATCHKEY_QR", v);
        }
        let pending = Pending::spawn(cmd);
        let code = pending.code().await;
        quinn.approve_device(&code).await;
        let run = pending.finish().await.success();
        assert!(qr_lines(&run.stderr).is_empty(), "{qr:?}: {run:?}");
        assert!(!run.stderr.contains("scan"), "{run:?}");
    }
}

/// Drops ANSI escape sequences (colors, cursor moves of the spinner).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// `latchkey login --device --no-browser` on a pseudo-terminal of `columns` × `lines`, with
/// colors allowed; approves the code and returns everything the terminal showed.
async fn login_on_a_terminal(
    w: &World,
    browser: &latchkey_server::testkit::Browser,
    columns: &str,
    lines: &str,
) -> String {
    use expectrl::{Expect, Regex, Session};
    let mut cmd = w.command(&["login", "--device", "--no-browser", "--force"]);
    cmd.env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .env("COLUMNS", columns)
        .env("LINES", lines)
        .stdin(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit());
    let mut p = Session::spawn(cmd).expect("spawn on a pty");
    p.set_expect_timeout(Some(std::time::Duration::from_secs(30)));
    let (p, shown, code) = tokio::task::spawn_blocking(move || {
        let caps = p
            .expect(Regex("Code: (?:\x1b\\[[0-9;]*m)?([B-Z]{4}-[B-Z]{4})"))
            .expect("a code");
        let code = String::from_utf8_lossy(caps.get(1).expect("code")).into_owned();
        let caps = p.expect("expires in").expect("the rest of the prompt");
        let shown = String::from_utf8_lossy(caps.before()).into_owned();
        (p, shown, code)
    })
    .await
    .expect("join");
    browser.approve_device(&code).await;
    let rest = tokio::task::spawn_blocking(move || {
        let mut p = p;
        let caps = p.expect("Signed in as").expect("signed in");
        String::from_utf8_lossy(caps.before()).into_owned()
    })
    .await
    .expect("join");
    format!("{shown}{rest}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_terminal_gets_a_painted_code_and_a_narrow_one_none() {
    let w = World::new().await;
    let rosa = w.user("rosa@example.com").await;

    let wide = login_on_a_terminal(&w, &rosa, "100", "50").await;
    assert!(
        wide.contains("Or scan this code with your phone:"),
        "{wide}"
    );
    assert!(
        wide.contains("\x1b[97;40m█"),
        "painted white on black: {wide}"
    );
    let plain = strip_ansi(&wide);
    let lines = qr_lines(&plain);
    assert!(decode(&lines).starts_with(&format!("{}/device?user_code=", w.url())));

    let narrow = login_on_a_terminal(&w, &rosa, "40", "50").await;
    assert!(!narrow.contains("scan"), "{narrow}");
    assert!(qr_lines(&strip_ansi(&narrow)).is_empty(), "{narrow}");
    let short = login_on_a_terminal(&w, &rosa, "100", "20").await;
    assert!(!short.contains("scan"), "{short}");
}
