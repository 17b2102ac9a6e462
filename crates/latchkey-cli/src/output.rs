//! How the CLI talks to people: styles that respect `NO_COLOR` and terminals, `error:` /
//! `hint:` / `warning:` lines on stderr, and the JSON writer for `--json`. Data goes to stdout,
//! everything else to stderr.

use std::io::IsTerminal;

/// Text styling for one stream; plain when colors are off.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    enabled: bool,
}

impl Style {
    /// Colors for a stream that is (or is not) a terminal, unless `NO_COLOR` or `TERM=dumb`.
    pub fn for_stream(is_tty: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Self {
            enabled: is_tty && !no_color && !dumb,
        }
    }

    /// Styling for stderr.
    pub fn stderr() -> Self {
        Self::for_stream(std::io::stderr().is_terminal())
    }

    /// Styling for stdout.
    pub fn stdout() -> Self {
        Self::for_stream(std::io::stdout().is_terminal())
    }

    /// Whether colors are on.
    pub fn enabled(self) -> bool {
        self.enabled
    }

    fn paint(self, code: &str, s: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    /// Bold.
    pub fn bold(self, s: &str) -> String {
        self.paint("1", s)
    }
    /// Dimmed.
    pub fn dim(self, s: &str) -> String {
        self.paint("2", s)
    }
    /// Green (success).
    pub fn green(self, s: &str) -> String {
        self.paint("32", s)
    }
    /// Bold red (errors).
    pub fn red(self, s: &str) -> String {
        self.paint("1;31", s)
    }
    /// Bold yellow (warnings).
    pub fn yellow(self, s: &str) -> String {
        self.paint("1;33", s)
    }
    /// Cyan (hints, URLs).
    pub fn cyan(self, s: &str) -> String {
        self.paint("36", s)
    }
}

/// `error: ...` on stderr.
pub fn error(msg: &str) {
    let s = Style::stderr();
    eprintln!("{} {msg}", s.red("error:"));
}

/// `hint: ...` on stderr.
pub fn hint(msg: &str) {
    let s = Style::stderr();
    eprintln!("{} {msg}", s.cyan("hint:"));
}

/// `warning: ...` on stderr.
pub fn warning(msg: &str) {
    let s = Style::stderr();
    eprintln!("{} {msg}", s.yellow("warning:"));
}

/// A success line (`✓ ...`) on stderr.
pub fn success(msg: &str) {
    let s = Style::stderr();
    eprintln!("{} {msg}", s.green("✓"));
}

/// Prints an error of any kind with its hint: library errors know their hint; other errors show
/// their chain of causes.
pub fn report(err: &anyhow::Error) {
    if let Some(e) = err.downcast_ref::<latchkey_client::Error>() {
        let inner = e.to_string();
        let outer = err.to_string();
        // Context added by the CLI goes in front of the library's message.
        if outer == inner {
            error(&inner);
        } else {
            error(&format!("{outer}: {inner}"));
        }
        if let Some(h) = e.hint() {
            hint(&h);
        }
        return;
    }
    let mut msg = err.to_string();
    for cause in err.chain().skip(1) {
        msg.push_str(&format!(": {cause}"));
    }
    error(&msg);
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".to_owned())
    );
}

/// "in 59 minutes", "in less than a minute", "2 minutes ago".
pub fn relative_minutes(seconds: i64) -> String {
    let plural = |n: i64| if n == 1 { "" } else { "s" };
    if seconds >= 60 {
        let m = seconds / 60;
        format!("in {m} minute{}", plural(m))
    } else if seconds > 0 {
        "in less than a minute".to_owned()
    } else {
        let m = (-seconds) / 60;
        if m == 0 {
            "just now".to_owned()
        } else {
            format!("{m} minute{} ago", plural(m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative() {
        assert_eq!(relative_minutes(3599), "in 59 minutes");
        assert_eq!(relative_minutes(61), "in 1 minute");
        assert_eq!(relative_minutes(30), "in less than a minute");
        assert_eq!(relative_minutes(-150), "2 minutes ago");
    }

    #[test]
    fn plain_when_disabled() {
        let s = Style::for_stream(false);
        assert_eq!(s.bold("x"), "x");
    }
}
