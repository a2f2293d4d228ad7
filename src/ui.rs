//! Everything the tool says to the operator on stderr, and the confirmation prompt.
//!
//! Commands report progress through [`Ui`] so `--quiet`, `--verbose` and colour are decided in
//! one place. Stdout is reserved for what the operator asked for (secrets, reports), so it can
//! be redirected into a file or a pipe without noise.

use std::io::{IsTerminal as _, Write as _};

use crate::error::{Error, Result};

/// Report formats of `rotate-passwords` and `check` (each variant's doc is its `--help` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// For people.
    Text,
    /// For machines.
    Json,
}

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
    /// Colour only on a terminal, never with `NO_COLOR` set (<https://no-color.org>).
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

    /// How a command's failure is told: once, on stderr. Declining is the operator's choice,
    /// not a failure, so it is said in plain words, not in red; findings were already printed.
    pub fn failure(&self, err: &Error) {
        match err {
            Error::Declined => self.info("You declined at the confirmation; nothing was changed."),
            err if err.is_silent() => {}
            err => self.error(&err.to_string()),
        }
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

    /// Asks for a typed answer and Enter before a change that cannot be taken back by answering
    /// again (a live rotation): a stray keypress must never start it. Accepted answers are `yes`
    /// and each of `also_accepted` (the database name, say); anything else declines (exit 3).
    /// Without a terminal on stdin and without `assume_yes`, refuses (exit 3).
    pub fn confirm_typed(&self, question: &str, also_accepted: &[&str], action: &str, assume_yes: bool) -> Result<()> {
        if assume_yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            return Err(Error::NoTerminal { action: action.to_owned() });
        }
        let hint = match also_accepted {
            [] => "type yes and press Enter to go on".to_owned(),
            names => format!("type yes (or {}) and press Enter to go on", names.join(" or ")),
        };
        let _ = std::io::stderr().flush();
        let answer: String = dialoguer::Input::new()
            .with_prompt(format!("{question} ({hint}; anything else stops)"))
            .allow_empty(true)
            .interact_text()
            .map_err(|e| Error::Prompt { reason: e.to_string() })?;
        if is_typed_consent(&answer, also_accepted) {
            Ok(())
        } else {
            Err(Error::Declined)
        }
    }
}

/// Whether a typed answer gives consent: exactly `yes` (any case) or one of the extra accepted
/// words, surrounding blanks ignored. `y` alone is not consent.
fn is_typed_consent(answer: &str, also_accepted: &[&str]) -> bool {
    let answer = answer.trim();
    answer.eq_ignore_ascii_case("yes") || also_accepted.iter().any(|word| !word.is_empty() && answer == *word)
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

/// `text` with every control character (line breaks and ANSI escapes included) written as its
/// Rust escape (`\u{1b}`): for text read from a file (a `kid`, a compose file's names, a path
/// found on disk) on its way to the terminal, where it could otherwise move the cursor, retitle
/// the window or hide what follows. Borrowed unchanged in the usual case.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::{is_typed_consent, printable};

    #[test]
    fn control_characters_are_written_as_escapes() {
        assert_eq!(printable("plain kid-1 ünïcode"), "plain kid-1 ünïcode");
        assert_eq!(printable("a\u{1b}[2Jb\nc\u{7}\u{9b}"), "a\\u{1b}[2Jb\\u{a}c\\u{7}\\u{9b}");
    }

    #[test]
    fn only_a_typed_yes_or_an_accepted_word_consents() {
        assert!(is_typed_consent("yes", &[]));
        assert!(is_typed_consent(" YES \n", &[]));
        assert!(is_typed_consent("postgres", &["postgres"]));
        assert!(!is_typed_consent("y", &["postgres"]));
        assert!(!is_typed_consent("", &[""]));
        assert!(!is_typed_consent("no", &[]));
        assert!(!is_typed_consent("Postgres", &["postgres"]));
    }
}
