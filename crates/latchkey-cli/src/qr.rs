//! A QR code of the verification URL in the terminal, so a phone can open the sign-in page
//! without typing it (`latchkey login` shows it under the code).
//!
//! Two modules per character cell with the half blocks `▀ ▄ █`, so a code for a typical URL
//! takes 31 to 35 columns and 16 to 18 lines. Blocks are the *light* modules: on the usual dark
//! terminal that gives dark modules on a light background, as scanners expect. When colors are
//! allowed the code is also painted bright white on black, so it scans on light themes too.
//!
//! `LATCHKEY_QR` decides: `always`, `never`, or `auto` (the default): shown only when stderr is
//! a terminal that is not `TERM=dumb` and is wide and tall enough (at least 50 columns, with
//! `COLUMNS` / `LINES` taking precedence over the terminal's reported size). `NO_COLOR` only
//! drops the colors: the code needs none.

use crate::output::Style;
use qrcode::{Color, EcLevel, QrCode};
use std::io::IsTerminal;

/// Modules of light margin around the code (the standard asks 4; 1 scans fine on a screen and
/// keeps it small).
const QUIET_ZONE: usize = 1;
/// Spaces before each line, to line up with the URL and code above it.
const INDENT: usize = 4;
/// Below this many columns the code is never shown in `auto` mode.
const MIN_COLUMNS: usize = 50;
/// Lines the rest of the prompt needs besides the code, so the code does not push the URL off.
const OTHER_LINES: usize = 12;

/// When to show the code (`LATCHKEY_QR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrMode {
    /// When the terminal can show it.
    Auto,
    /// Always (also when stderr is not a terminal).
    Always,
    /// Never.
    Never,
}

impl QrMode {
    /// Parses `LATCHKEY_QR`; anything unknown is `auto`.
    pub fn parse(value: Option<&str>) -> Self {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("always" | "1" | "yes" | "on" | "true") => Self::Always,
            Some("never" | "0" | "no" | "off" | "false") => Self::Never,
            _ => Self::Auto,
        }
    }
}

/// What is known about the terminal stderr writes to.
#[derive(Debug, Clone, Copy)]
pub struct Terminal {
    /// stderr is a terminal.
    pub tty: bool,
    /// `TERM=dumb`.
    pub dumb: bool,
    /// Width in columns, when known.
    pub columns: Option<usize>,
    /// Height in lines, when known.
    pub lines: Option<usize>,
}

impl Terminal {
    /// Looks at stderr and the environment.
    pub fn detect() -> Self {
        let env_num = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
        };
        let size = terminal_size::terminal_size_of(std::io::stderr());
        Self {
            tty: std::io::stderr().is_terminal(),
            dumb: std::env::var_os("TERM").is_some_and(|t| t == "dumb"),
            columns: env_num("COLUMNS").or(size.map(|(w, _)| usize::from(w.0))),
            lines: env_num("LINES").or(size.map(|(_, h)| usize::from(h.0))),
        }
    }
}

/// The code as lines of half blocks (no indent, no colors); `None` if the data cannot be
/// encoded (far too long for a URL).
pub fn render(data: &str) -> Option<Vec<String>> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L).ok()?;
    let n = code.width();
    let colors = code.to_colors();
    let size = n + 2 * QUIET_ZONE;
    // Light modules (and the quiet zone) are the ones drawn.
    let light = |x: usize, y: usize| -> bool {
        if x < QUIET_ZONE || y < QUIET_ZONE || x >= n + QUIET_ZONE || y >= n + QUIET_ZONE {
            return true;
        }
        colors[(y - QUIET_ZONE) * n + (x - QUIET_ZONE)] == Color::Light
    };
    let lines = (0..size)
        .step_by(2)
        .map(|y| {
            (0..size)
                .map(|x| {
                    let top = light(x, y);
                    let bottom = y + 1 >= size || light(x, y + 1);
                    match (top, bottom) {
                        (true, true) => '█',
                        (true, false) => '▀',
                        (false, true) => '▄',
                        (false, false) => ' ',
                    }
                })
                .collect()
        })
        .collect();
    Some(lines)
}

/// Whether a code of `width` × `height` characters is shown.
pub fn should_show(mode: QrMode, term: Terminal, width: usize, height: usize) -> bool {
    match mode {
        QrMode::Never => false,
        QrMode::Always => true,
        QrMode::Auto => {
            term.tty
                && !term.dumb
                && term
                    .columns
                    .is_some_and(|c| c >= MIN_COLUMNS.max(width + INDENT))
                && term.lines.is_none_or(|l| l >= height + OTHER_LINES)
        }
    }
}

/// Prints a code for `url` on stderr under a caption, if [`should_show`] agrees.
pub fn print_for_device(url: &str) {
    let Some(lines) = render(url) else { return };
    let width = lines.first().map_or(0, |l| l.chars().count());
    let mode = QrMode::parse(std::env::var("LATCHKEY_QR").ok().as_deref());
    if !should_show(mode, Terminal::detect(), width, lines.len()) {
        return;
    }
    let colored = Style::stderr().enabled();
    eprintln!("Or scan this code with your phone:");
    eprintln!();
    for line in lines {
        if colored {
            eprintln!("{:INDENT$}\x1b[97;40m{line}\x1b[0m", "");
        } else {
            eprintln!("{:INDENT$}{line}", "");
        }
    }
    eprintln!();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const URL: &str = "https://cloud.example.com/device?user_code=BCDF-GHJK";

    fn term(tty: bool, columns: Option<usize>, lines: Option<usize>) -> Terminal {
        Terminal {
            tty,
            dumb: false,
            columns,
            lines,
        }
    }

    #[test]
    fn modes() {
        assert_eq!(QrMode::parse(None), QrMode::Auto);
        assert_eq!(QrMode::parse(Some("ALWAYS")), QrMode::Always);
        assert_eq!(QrMode::parse(Some("never")), QrMode::Never);
        assert_eq!(QrMode::parse(Some("0")), QrMode::Never);
        assert_eq!(QrMode::parse(Some("whatever")), QrMode::Auto);
    }

    #[test]
    fn shown_only_where_it_fits() {
        let big = term(true, Some(120), Some(50));
        assert!(should_show(QrMode::Auto, big, 35, 18));
        assert!(!should_show(QrMode::Never, big, 35, 18));
        // Not a terminal, too narrow, too short, dumb, unknown width.
        assert!(!should_show(
            QrMode::Auto,
            term(false, Some(120), Some(50)),
            35,
            18
        ));
        assert!(!should_show(
            QrMode::Auto,
            term(true, Some(49), Some(50)),
            35,
            18
        ));
        assert!(!should_show(
            QrMode::Auto,
            term(true, Some(60), Some(24)),
            35,
            18
        ));
        assert!(!should_show(QrMode::Auto, term(true, None, None), 35, 18));
        let dumb = Terminal { dumb: true, ..big };
        assert!(!should_show(QrMode::Auto, dumb, 35, 18));
        // A very wide code needs a wider terminal; the height may be unknown.
        assert!(!should_show(
            QrMode::Auto,
            term(true, Some(60), None),
            57,
            29
        ));
        assert!(should_show(
            QrMode::Auto,
            term(true, Some(61), None),
            57,
            29
        ));
        // Forced: anywhere.
        assert!(should_show(QrMode::Always, term(false, None, None), 35, 18));
    }

    #[test]
    fn compact_rendering() {
        let lines = render(URL).unwrap();
        let w = lines[0].chars().count();
        assert!(w <= 40, "{w} columns");
        assert!(lines.len() <= 20, "{} lines", lines.len());
        assert!(lines.iter().all(|l| l.chars().count() == w));
        // The quiet zone is light all around: the first line is full blocks on top.
        assert!(lines[0].chars().all(|c| c == '█' || c == '▀'));
    }

    /// Reading the half blocks back gives exactly the modules of the code.
    #[test]
    fn blocks_map_to_modules() {
        let lines = render(URL).unwrap();
        let code = QrCode::with_error_correction_level(URL.as_bytes(), EcLevel::L).unwrap();
        let n = code.width();
        let colors = code.to_colors();
        let size = n + 2 * QUIET_ZONE;
        let mut light = vec![vec![false; size]; size + 1];
        for (row, line) in lines.iter().enumerate() {
            for (x, c) in line.chars().enumerate() {
                light[2 * row][x] = matches!(c, '█' | '▀');
                light[2 * row + 1][x] = matches!(c, '█' | '▄');
            }
        }
        for y in 0..n {
            for x in 0..n {
                let expect = colors[y * n + x] == Color::Light;
                assert_eq!(light[y + QUIET_ZONE][x + QUIET_ZONE], expect, "({x},{y})");
            }
        }
    }
}
