//! Whether the CLI writes ANSI colour and screen control: one pure decision from the
//! `--no-color` flag, `NO_COLOR`, `TERM` and whether stdout is a terminal, and its reader.

use std::ffi::OsStr;
use std::io::IsTerminal as _;

use crate::cli::get::Colorizer;

/// What the colour decision looks at, read once from the process (or given by a test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal<'a> {
    /// `NO_COLOR`, when set.
    pub no_color_env: Option<&'a OsStr>,
    /// `TERM`, when set.
    pub term: Option<&'a OsStr>,
    /// Whether stdout is a terminal.
    pub stdout_is_tty: bool,
}

/// Colour is on only on a terminal that is not `TERM=dumb`, with no `--no-color` and no
/// non-empty `NO_COLOR` (no-color.org: an empty value does not count as set).
pub fn color_enabled(no_color_flag: bool, t: Terminal<'_>) -> bool {
    let no_color_env = t.no_color_env.is_some_and(|v| !v.is_empty());
    let dumb = t.term.is_some_and(|v| v == "dumb");
    t.stdout_is_tty && !no_color_flag && !no_color_env && !dumb
}

/// Whether stdout is a terminal (watch frames redraw in place there, append elsewhere).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// The colour switch for stdout of this process.
pub fn stdout_colorizer(no_color_flag: bool) -> Colorizer {
    let no_color_env = std::env::var_os("NO_COLOR");
    let term = std::env::var_os("TERM");
    let t = Terminal {
        no_color_env: no_color_env.as_deref(),
        term: term.as_deref(),
        stdout_is_tty: stdout_is_terminal(),
    };
    Colorizer {
        enabled: color_enabled(no_color_flag, t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tty() -> Terminal<'static> {
        Terminal {
            no_color_env: None,
            term: Some(OsStr::new("xterm-256color")),
            stdout_is_tty: true,
        }
    }

    #[test]
    fn colour_on_a_plain_terminal() {
        assert!(color_enabled(false, tty()));
        assert!(color_enabled(
            false,
            Terminal {
                term: None,
                ..tty()
            }
        ));
    }

    #[test]
    fn each_switch_turns_colour_off() {
        assert!(!color_enabled(true, tty()));
        assert!(!color_enabled(
            false,
            Terminal {
                stdout_is_tty: false,
                ..tty()
            }
        ));
        assert!(!color_enabled(
            false,
            Terminal {
                term: Some(OsStr::new("dumb")),
                ..tty()
            }
        ));
        assert!(!color_enabled(
            false,
            Terminal {
                no_color_env: Some(OsStr::new("1")),
                ..tty()
            }
        ));
    }

    #[test]
    fn an_empty_no_color_does_not_count() {
        assert!(color_enabled(
            false,
            Terminal {
                no_color_env: Some(OsStr::new("")),
                ..tty()
            }
        ));
    }
}
