//! Everything the tool says to the operator on stderr, and the confirmation prompt.
//!
//! Commands report progress through [`Ui`] so `--quiet`, `--verbose` and colour are decided in
//! one place. Stdout is reserved for what the operator asked for (secrets, reports), so it can
//! be redirected into a file or a pipe without noise.

use std::io::{IsTerminal as _, Write as _};

use crate::error::{Error, Result};

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors only.
    Quiet,
    /// Progress and warnings.
    Normal,
    /// Every step.
    Verbose,
}

/// The operator-facing side channel (stderr) and the prompt.
#[derive(Debug, Clone)]
pub struct Ui {
    verbosity: Verbosity,
    color: bool,
}

impl Ui {
    /// Colour only on a terminal, never with `NO_COLOR` set (https://no-color.org).
    pub fn new(verbosity: Verbosity) -> Self {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Ui { verbosity, color }
    }

    /// A plain line of progress.
    pub fn info(&self, line: &str) {
        if self.verbosity >= Verbosity::Normal {
            eprintln!("{line}");
        }
    }

    /// Detail shown with `--verbose`.
    pub fn detail(&self, line: &str) {
        if self.verbosity >= Verbosity::Verbose {
            eprintln!("{line}");
        }
    }

    /// A warning: something the operator should know, that does not stop the command.
    pub fn warn(&self, line: &str) {
        if self.verbosity >= Verbosity::Normal {
            eprintln!("{}{line}", self.paint("warning: ", "33"));
        }
    }

    /// An error line, always shown.
    pub fn error(&self, line: &str) {
        eprintln!("{}{line}", self.paint("pmoves-secrets: error: ", "31"));
    }

    fn paint(&self, text: &str, ansi: &str) -> String {
        if self.color {
            format!("\x1b[{ansi}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Asks `question` unless `assume_yes`; without a terminal on stdin, refuses (exit 3).
    ///
    /// `action` names what would change, for the refusal message.
    pub fn confirm(&self, question: &str, action: &str, assume_yes: bool) -> Result<()> {
        if assume_yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            return Err(Error::NoTerminal { action: action.to_owned() });
        }
        let _ = std::io::stderr().flush();
        let answer = dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact_opt()
            .map_err(|e| Error::Prompt { reason: e.to_string() })?;
        match answer {
            Some(true) => Ok(()),
            _ => Err(Error::Declined),
        }
    }
}

/// Writes `text` to stdout in full or fails: a truncated secret (closed pipe, full disk) must
/// not look like success.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::Output { target: "standard output".into(), reason: e.to_string() })
}
