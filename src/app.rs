//! Sends each command to its module; the outline of the program.

use clap::CommandFactory as _;

use crate::cli::{Cli, Command};
use crate::error::{Error, ExitCode, Result};
use crate::ui::{Ui, Verbosity};
use crate::{check, generate, rotate, rotate_keys};

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
        Command::RotateKeys(args) => rotate_keys::run(&args.options(), ui),
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pmoves-secrets", &mut text);
            crate::ui::write_stdout(&String::from_utf8_lossy(&text)).map(|()| ExitCode::Success)
        }
        Command::Man => {
            let mut text = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut text)
                .map_err(|e| Error::Output { target: "standard output".into(), reason: e.to_string() })?;
            crate::ui::write_stdout(&String::from_utf8_lossy(&text)).map(|()| ExitCode::Success)
        }
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
