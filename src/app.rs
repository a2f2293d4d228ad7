//! Sends each command to its module; the outline of the program.

use crate::cli::{Cli, Command};
use crate::error::{Error, ExitCode, Result};
use crate::ui::{Ui, Verbosity};
use crate::{check, generate, rotate};

/// The operator channel for the global `--quiet` / `--verbose` flags.
pub fn ui_for(cli: &Cli) -> Ui {
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, _) => Verbosity::Verbose,
    };
    Ui::new(verbosity)
}

/// Runs the parsed command line.
pub fn run(cli: Cli, ui: &Ui) -> Result<ExitCode> {
    match cli.command {
        Command::GenerateKeys(args) => generate::run(&args, ui).map(|()| ExitCode::Success),
        Command::RotatePasswords(args) => rotate::run(&args, ui),
        Command::Check(args) => check::run(&args, ui),
        Command::Completions { shell } => {
            crate::ui::write_stdout(&crate::manual::completion_script(shell)).map(|()| ExitCode::Success)
        }
        Command::Man => crate::ui::write_stdout(&crate::manual::man_page()?).map(|()| ExitCode::Success),
    }
}

/// A current-thread runtime for the commands that talk to PostgreSQL. `generate-keys` never
/// builds one, which keeps it a few-millisecond process.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Error::Io {
        action: "start",
        path: "the async runtime".into(),
        reason: e.to_string(),
    })
}
