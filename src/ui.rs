//! Everything the tool says to the operator on stderr, and the confirmation prompt.
//!
//! Commands report progress through [`Ui`] so `--quiet`, `--verbose` and colour are decided in
//! one place. Stdout is reserved for what the operator asked for (secrets, reports), so it can
//! be redirected into a file or a pipe without noise.

use std::io::{IsTerminal as _, Write as _};

use crate::envfile::{EnvFileError, LockedEnv};
use crate::error::{Error, Result};

/// Report formats of `rotate-passwords` and `check` (each variant's doc is its `--help` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// For people.
    Text,
    /// For machines.
    Json,
}

/// When to colour what is printed (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Only on a terminal, and never with NO_COLOR set.
    #[default]
    Auto,
    /// Always, even into a file or a pipe.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to colour a stream that is (or is not) a terminal, NO_COLOR (<https://no-color.org>)
    /// being `no_color`.
    fn paints(self, is_terminal: bool, no_color: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !no_color,
        }
    }
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
    /// Colour the lines on stderr.
    color: bool,
    /// Colour the text reports on stdout.
    color_stdout: bool,
}

impl Ui {
    /// With `--color auto`, each stream is coloured only when it is a terminal and `NO_COLOR`
    /// is unset or empty.
    pub fn new(verbosity: Verbosity, color: ColorChoice) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Ui {
            verbosity,
            color: color.paints(std::io::stderr().is_terminal(), no_color),
            color_stdout: color.paints(std::io::stdout().is_terminal(), no_color),
        }
    }

    /// Whether text reports on stdout are coloured.
    pub fn colors_stdout(&self) -> bool {
        self.color_stdout
    }

    /// Whether `--quiet` asked for errors only.
    pub fn is_quiet(&self) -> bool {
        self.verbosity == Verbosity::Quiet
    }

    /// Writes a command's report on stdout: always in JSON (a machine asked for it), in text
    /// unless `--quiet` (which prints only errors; they go to stderr).
    pub fn report(&self, format: ReportFormat, text: &str) -> Result<()> {
        if format == ReportFormat::Text && self.is_quiet() {
            return Ok(());
        }
        write_stdout(text)
    }

    /// Takes the lock of the `.env` at `path`, as every writer does (it must exist): waits at
    /// most `limit` while another process holds it, saying so and naming the holder; Ctrl-C or
    /// SIGTERM during that wait ends it with [`Error::Interrupted`] (nothing was read yet).
    pub fn lock_env(&self, path: &std::path::Path, limit: std::time::Duration) -> Result<LockedEnv> {
        let _shield = crate::interrupt::shield();
        LockedEnv::acquire_existing(path, limit, |waiting| self.info(waiting), crate::interrupt::requested).map_err(
            |error| match error {
                EnvFileError::Interrupted { .. } => Error::Interrupted,
                other => other.into(),
            },
        )
    }

    /// A plain line of progress.
    pub fn info(&self, line: &str) {
        if self.verbosity >= Verbosity::Normal {
            eprintln!("{line}");
        }
    }

    /// What a confirmation needs shown above its question (the plan, the consequences): shown
    /// even with `--quiet`, since the operator is about to be asked about it. Only called when
    /// the question will be asked (not with `--yes`).
    pub fn prompt_context(&self, line: &str) {
        eprintln!("{line}");
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
            // Said whatever the verbosity: the operator pressed a key and is owed an answer.
            Error::NoAnswer | Error::Interrupted => eprintln!("{}", capitalised(&err.to_string())),
            err if err.is_silent() => {}
            err => self.error(&err.to_string()),
        }
    }

    fn paint(&self, text: &str, ansi: &str) -> String {
        paint(self.color, text, ansi)
    }

    /// Asks `question` with `[y/N]` and Enter unless `assume_yes`; without a terminal on stdin,
    /// refuses (exit 3). For changes a second answer could undo; anything that ends sessions or
    /// breaks clients takes [`Ui::confirm_typed`] instead.
    ///
    /// `action` names what would change, for the refusal message.
    pub fn confirm(&self, question: &str, action: &str, assume_yes: bool) -> Result<()> {
        if assume_yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            return Err(Error::NoTerminal { action: action.to_owned() });
        }
        match read_answer(&format!("{question} [y/N, then Enter]"))? {
            answer if is_yes(&answer) => Ok(()),
            _ => Err(Error::Declined),
        }
    }

    /// Asks for a typed answer and Enter before a change that cannot be taken back by answering
    /// again (a live rotation, a new signing secret): a stray keypress must never start it.
    /// Accepted answers are `yes` and each of `also_accepted` (the database name, say), and the
    /// prompt names them all; anything else declines (exit 3), end of input (Ctrl-D) too, Ctrl-C
    /// interrupts (exit 130). Without a terminal on stdin and without `assume_yes`, refuses
    /// (exit 3).
    ///
    /// The one typed confirmation of the tool: every command that asks for one calls this.
    pub fn confirm_typed(&self, question: &str, also_accepted: &[&str], action: &str, assume_yes: bool) -> Result<()> {
        if assume_yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            return Err(Error::NoTerminal { action: action.to_owned() });
        }
        let answer = read_answer(&format!("{question} ({}; anything else stops):", typed_hint(also_accepted)))?;
        if is_typed_consent(&answer, also_accepted) {
            Ok(())
        } else {
            Err(Error::Declined)
        }
    }
}

/// "type yes and press Enter", naming every other accepted word.
fn typed_hint(also_accepted: &[&str]) -> String {
    let names: Vec<&str> = also_accepted.iter().copied().filter(|w| !w.is_empty() && *w != "yes").collect();
    match names.as_slice() {
        [] => "type yes and press Enter to go on".to_owned(),
        names => format!("type yes or {} and press Enter to go on", names.join(" or ")),
    }
}

/// `y` or `yes`, any case, blanks ignored.
fn is_yes(answer: &str) -> bool {
    let answer = answer.trim();
    answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes")
}

/// Shows `prompt` on stderr and reads one line from the terminal on stdin, in the terminal's
/// own line mode (its echo, its editing keys; the tool changes no terminal setting, so there
/// is nothing to restore). Ctrl-C or SIGTERM while waiting ends with [`Error::Interrupted`],
/// end of input (Ctrl-D) with [`Error::NoAnswer`]; each first moves to a fresh line, so the
/// sentence that follows does not sit after the prompt.
fn read_answer(prompt: &str) -> Result<String> {
    use std::io::BufRead as _;
    let shield = crate::interrupt::shield();
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{prompt} ");
    let _ = stderr.flush();
    wait_for_input(&shield)?;
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) => {
            let _ = writeln!(stderr);
            Err(Error::NoAnswer)
        }
        Ok(_) => Ok(line),
        Err(_) if crate::interrupt::requested() => interrupted(),
        Err(e) => Err(Error::Prompt { reason: e.to_string() }),
    }
}

/// Waits until stdin has a line (or end of input) to read, or a signal arrives.
fn wait_for_input(_shield: &crate::interrupt::Shield) -> Result<()> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let stdin = std::io::stdin();
    // A signal may land on another thread and leave poll asleep: look at the flag every 100 ms.
    let tick = Timespec { tv_sec: 0, tv_nsec: 100_000_000 };
    loop {
        if crate::interrupt::requested() {
            return interrupted();
        }
        let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
        match poll(&mut fds, Some(&tick)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => {}
            Ok(_) => return Ok(()),
            Err(e) => return Err(Error::Prompt { reason: std::io::Error::from(e).to_string() }),
        }
    }
}

fn interrupted<T>() -> Result<T> {
    let _ = writeln!(std::io::stderr());
    Err(Error::Interrupted)
}

/// Whether a typed answer gives consent: exactly `yes` (any case) or one of the extra accepted
/// words, surrounding blanks ignored. `y` alone is not consent.
fn is_typed_consent(answer: &str, also_accepted: &[&str]) -> bool {
    let answer = answer.trim();
    answer.eq_ignore_ascii_case("yes") || also_accepted.iter().any(|word| !word.is_empty() && answer == *word)
}

/// A sentence with its first letter in capitals and a final full stop.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>()).unwrap_or_default();
    format!("{first}{}.", chars.as_str())
}

/// `text` in the SGR colour `ansi` (`31` red, `33` yellow, `32` green, `1;31` bold red) when
/// `color`, else as it is.
pub fn paint(color: bool, text: &str, ansi: &str) -> String {
    if color {
        format!("\x1b[{ansi}m{text}\x1b[0m")
    } else {
        text.to_owned()
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
    use super::{is_typed_consent, printable, ColorChoice};

    #[test]
    fn auto_colours_only_a_terminal_without_no_color() {
        assert!(ColorChoice::Auto.paints(true, false));
        assert!(!ColorChoice::Auto.paints(false, false));
        assert!(!ColorChoice::Auto.paints(true, true));
        assert!(ColorChoice::Always.paints(false, true));
        assert!(!ColorChoice::Never.paints(true, false));
    }

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
