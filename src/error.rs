//! The one error type of the tool, and the exit codes of SPEC §5.
//!
//! Every failure an operator can meet is a variant here, and every variant knows its exit code,
//! so `main` never has to guess. Messages are single sentences that name the file, key, role or
//! host involved and say what to do. They never carry a secret value: variants hold names, paths
//! and already-sanitised reasons, never the values of `.env` keys.

use std::path::PathBuf;

// `envfile` is a self-contained library with its own error type (no crate imports); this enum
// wraps it, so `error` sits above `envfile` in the layers.
use crate::envfile::EnvFileError;

/// Process exit codes, exactly as SPEC §5 fixes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Success (`check`: no error-level finding).
    Success,
    /// Failed, nothing changed (`check`: error-level findings).
    Failure,
    /// The command line was wrong.
    Usage,
    /// Declined at the confirmation, or no terminal and no `--yes`; nothing changed.
    Declined,
    /// The database changed but a later step failed; the message says how to recover.
    PartiallyApplied,
    /// Ctrl-C or SIGTERM at a prompt or during a wait, before anything changed (128 + SIGINT,
    /// the code shells report for Ctrl-C).
    Interrupted,
}

impl From<ExitCode> for u8 {
    fn from(code: ExitCode) -> u8 {
        match code {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::Declined => 3,
            ExitCode::PartiallyApplied => 4,
            ExitCode::Interrupted => 130,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(u8::from(code))
    }
}

/// The exit-code table as shown in `--help` and the README.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success (check: no error-level finding)
  1  failed, nothing changed (check: error-level findings)
  2  usage error
  3  declined at the confirmation, or no terminal and no --yes; nothing changed
  4  the database changed but a later step failed: the message says how to recover
  130  interrupted (Ctrl-C or SIGTERM) at a prompt or while waiting; nothing changed";

/// Everything that can go wrong, as values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, parsing, locking or writing a `.env` file failed.
    #[error(transparent)]
    EnvFile(#[from] EnvFileError),

    /// Options that clap accepts one by one but that do not make sense together.
    #[error("{0}")]
    Usage(String),

    /// The operator answered "no" at the confirmation.
    #[error("declined at the confirmation; nothing was changed")]
    Declined,

    /// The confirmation got end of input (Ctrl-D) instead of an answer: taken as a no.
    #[error("no answer at the confirmation (end of input); nothing was changed")]
    NoAnswer,

    /// A change needs confirmation but nobody can be asked.
    #[error(
        "{action} needs a confirmation but standard input is not a terminal; \
         re-run with --yes to proceed without asking (nothing was changed)"
    )]
    NoTerminal {
        /// What would have been confirmed, e.g. "rewriting ./.env".
        action: String,
    },

    /// The confirmation prompt itself failed (terminal closed, interrupted).
    #[error("the confirmation prompt failed ({reason}); nothing was changed")]
    Prompt {
        /// Why the prompt failed.
        reason: String,
    },

    /// Writing the output (stdout or a file) failed. A truncated secret is worse than none.
    #[error("cannot write the output to {target}: {reason}; nothing usable was written")]
    Output {
        /// "standard output" or a path.
        target: String,
        /// The OS reason.
        reason: String,
    },

    /// A file other than a `.env` could not be read or written.
    #[error("cannot {action} {}: {reason}", path.display())]
    Io {
        /// "read", "write", ...
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The OS reason.
        reason: String,
    },

    /// A key could not be minted (a library refused the key material).
    #[error("cannot mint {key}: {reason}")]
    Mint {
        /// The variable being minted.
        key: &'static str,
        /// Why.
        reason: String,
    },

    /// A value read from the `.env` is unusable for what was asked.
    #[error("{key} in {}: {problem}", path.display())]
    BadValue {
        /// The `.env` involved.
        path: PathBuf,
        /// The key whose value is unusable.
        key: String,
        /// What is wrong and what to do (never the value itself).
        problem: String,
    },

    /// A connection URL could not be parsed.
    #[error("the connection URL in {source_name} ({shown}) is not valid: {reason}; expected postgresql://user@host:port/database")]
    BadUrl {
        /// `--db-url` or the variable it came from.
        source_name: &'static str,
        /// The URL with its password redacted.
        shown: String,
        /// The parser's reason.
        reason: String,
    },

    /// The database could not be reached or refused the login.
    #[error("cannot connect to PostgreSQL at {target} as {user}: {reason}")]
    Connect {
        /// `host:port` (never the password).
        target: String,
        /// The role used.
        user: String,
        /// Why, with a hint.
        reason: String,
        /// The server's SQLSTATE when it answered (e.g. `28P01`), for callers that classify.
        sqlstate: Option<String>,
    },

    /// A database step failed before anything was committed.
    #[error("{step} failed: {reason}; nothing was changed")]
    Database {
        /// Which step ("discovery", "ALTER ROLE authenticator", ...).
        step: String,
        /// The server's message, scrubbed of secrets.
        reason: String,
    },

    /// The database changed but a later step failed (exit 4).
    #[error("{what}; the database has already changed. To recover: {recovery}")]
    PartiallyApplied {
        /// What failed after the commit.
        what: String,
        /// Exactly what the operator must do.
        recovery: String,
    },

    /// A precondition of a later step does not hold, found before anything changed (exit 1).
    #[error("{0}")]
    Precondition(String),

    /// Nobody can tell whether the database changed (exit 4): both files are kept.
    #[error("{what}; the database may or may not have changed. To recover: {recovery}")]
    OutcomeUnknown {
        /// What could not be determined, and why.
        what: String,
        /// Exactly what the operator must do.
        recovery: String,
    },

    /// Neither the `.env`'s password nor the pending file's is accepted any more (someone
    /// changed the roles' passwords after an interrupted rotation), and no credentials given
    /// can read which one is (exit 4): both files are kept.
    #[error("{what}. To get out: {recovery}")]
    NeitherPasswordLive {
        /// What was found.
        what: String,
        /// Exactly what the operator must do (never "run again" alone: that cannot succeed).
        recovery: String,
    },

    /// `check` found error-level problems; the report has already been printed.
    #[error("{count} error-level finding(s)")]
    Findings {
        /// How many error-level findings.
        count: usize,
    },

    /// Ctrl-C or SIGTERM at a prompt, during a wait or before the rotation's `COMMIT` (exit 130).
    #[error("interrupted; nothing was changed")]
    Interrupted,
}

impl Error {
    /// The exit code this error ends the process with (SPEC §5).
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) => ExitCode::Usage,
            Error::Declined | Error::NoAnswer | Error::NoTerminal { .. } | Error::Prompt { .. } => ExitCode::Declined,
            Error::Interrupted => ExitCode::Interrupted,
            Error::PartiallyApplied { .. } | Error::OutcomeUnknown { .. } | Error::NeitherPasswordLive { .. } => {
                ExitCode::PartiallyApplied
            }
            Error::EnvFile(_)
            | Error::Output { .. }
            | Error::Io { .. }
            | Error::Mint { .. }
            | Error::BadValue { .. }
            | Error::BadUrl { .. }
            | Error::Connect { .. }
            | Error::Database { .. }
            | Error::Findings { .. }
            | Error::Precondition(_) => ExitCode::Failure,
        }
    }

    /// Whether `main` should print this error: the `check` report already said everything.
    pub fn is_silent(&self) -> bool {
        matches!(self, Error::Findings { .. })
    }
}

/// Result alias for the whole crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_spec_section_5() {
        assert_eq!(u8::from(ExitCode::Success), 0);
        assert_eq!(u8::from(ExitCode::Failure), 1);
        assert_eq!(u8::from(ExitCode::Usage), 2);
        assert_eq!(u8::from(ExitCode::Declined), 3);
        assert_eq!(u8::from(ExitCode::PartiallyApplied), 4);
        assert_eq!(u8::from(ExitCode::Interrupted), 130);
    }

    #[test]
    fn every_variant_maps_to_its_documented_code() {
        assert_eq!(Error::Usage("x".into()).exit_code(), ExitCode::Usage);
        assert_eq!(Error::Declined.exit_code(), ExitCode::Declined);
        assert_eq!(Error::NoTerminal { action: "x".into() }.exit_code(), ExitCode::Declined);
        assert_eq!(
            Error::PartiallyApplied { what: "a".into(), recovery: "b".into() }.exit_code(),
            ExitCode::PartiallyApplied
        );
        assert_eq!(Error::Interrupted.exit_code(), ExitCode::Interrupted);
        assert_eq!(Error::NoAnswer.exit_code(), ExitCode::Declined);
        assert_eq!(Error::Findings { count: 1 }.exit_code(), ExitCode::Failure);
    }

    #[test]
    fn help_table_lists_every_code() {
        for code in ["0 ", "1 ", "2 ", "3 ", "4 ", "130 "] {
            assert!(EXIT_CODES_HELP.contains(code), "missing {code}");
        }
    }

    /// The README's exit-code table says what `--help` says, row for row (backticks aside).
    #[test]
    fn the_readme_exit_code_table_is_the_help_table() {
        let readme = include_str!("../README.md");
        let start = readme.find("| code | meaning |").expect("the README has an exit-code table");
        let readme_rows: Vec<(String, String)> = readme[start..]
            .lines()
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .map(|line| {
                let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
                (cells[0].to_owned(), cells[1].replace('`', ""))
            })
            .collect();
        let help_rows: Vec<(String, String)> = EXIT_CODES_HELP
            .lines()
            .skip(1)
            .map(|line| {
                let (code, meaning) = line.trim().split_once(' ').expect("code and meaning");
                (code.to_owned(), meaning.trim().to_owned())
            })
            .collect();
        assert_eq!(readme_rows, help_rows);
    }

    /// Every variant, rendered with plain field values. The `match` has no wildcard, so a new
    /// variant does not compile until it has a sample here.
    fn every_variant() -> Vec<Error> {
        let samples = vec![
            Error::EnvFile(EnvFileError::Malformed { path: Some(".env".into()), line: 3, reason: "no '='" }),
            Error::Usage("the flag needs a value".into()),
            Error::Declined,
            Error::NoTerminal { action: "rewriting .env".into() },
            Error::Prompt { reason: "closed".into() },
            Error::Output { target: "standard output".into(), reason: "broken pipe".into() },
            Error::Io { action: "read", path: "x.yml".into(), reason: "denied".into() },
            Error::Mint { key: "ANON_KEY", reason: "no secret".into() },
            Error::BadValue { path: ".env".into(), key: "JWT_KEYS".into(), problem: "is not JSON".into() },
            Error::BadUrl { source_name: "--db-url", shown: "postgresql://u@h/d".into(), reason: "bad port".into() },
            Error::Connect { target: "h:5432".into(), user: "u".into(), reason: "refused".into(), sqlstate: None },
            Error::Database { step: "discovery".into(), reason: "timeout".into() },
            Error::PartiallyApplied { what: "publishing failed".into(), recovery: "run it again".into() },
            Error::Precondition("the lock is held".into()),
            Error::OutcomeUnknown { what: "COMMIT unanswered".into(), recovery: "run it again".into() },
            Error::NeitherPasswordLive { what: "neither password logs in".into(), recovery: "set one".into() },
            Error::Findings { count: 2 },
            Error::Interrupted,
            Error::NoAnswer,
        ];
        for sample in &samples {
            match sample {
                Error::EnvFile(_)
                | Error::Usage(_)
                | Error::Declined
                | Error::NoTerminal { .. }
                | Error::Prompt { .. }
                | Error::Output { .. }
                | Error::Io { .. }
                | Error::Mint { .. }
                | Error::BadValue { .. }
                | Error::BadUrl { .. }
                | Error::Connect { .. }
                | Error::Database { .. }
                | Error::PartiallyApplied { .. }
                | Error::Precondition(_)
                | Error::OutcomeUnknown { .. }
                | Error::NeitherPasswordLive { .. }
                | Error::Findings { .. }
                | Error::Interrupted
                | Error::NoAnswer => {}
            }
        }
        samples
    }

    /// A lost line continuation (`\` at the end of a line of a string literal) leaves the next
    /// line's indentation inside the message: a run of spaces in the middle of a sentence.
    fn runs_of_spaces(text: &str) -> bool {
        text.trim().contains("  ")
    }

    #[test]
    fn no_variants_message_has_a_run_of_spaces() {
        for error in every_variant() {
            let message = error.to_string();
            assert!(!runs_of_spaces(&message), "{error:?} renders as {message:?}");
        }
    }

    /// The messages callers build (the exit-4 recovery texts above all) are string literals in
    /// the code outside the tests: none may hold the indentation of a lost line continuation.
    #[test]
    fn no_message_literal_in_the_code_has_a_run_of_spaces() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut pending = vec![src];
        let mut found = Vec::new();
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|ext| ext == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let code = text.split("#[cfg(test)]").next().unwrap_or("");
                    for (number, line) in code.lines().enumerate() {
                        let literals = line.trim_start().split('"').skip(1).step_by(2);
                        // Indentation after an escaped newline (YAML, for instance) is meant.
                        let mid_sentence =
                            |literal: &str| literal.split("\\n").any(|piece| piece.trim_start().contains("   "));
                        if !line.trim_start().starts_with("//") && literals.clone().any(mid_sentence) {
                            found.push(format!("{}:{}: {}", path.display(), number + 1, line.trim()));
                        }
                    }
                }
            }
        }
        assert!(found.is_empty(), "string literals with a run of spaces:\n{}", found.join("\n"));
    }
}
