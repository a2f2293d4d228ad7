//! pmoves-secrets: mint, rotate and audit the secrets of a self-hosted Supabase stack.
//!
//! `main` only parses, dispatches and maps the outcome to an exit code (SPEC §5); every
//! behaviour lives in the library, where it can be tested as a function.

#![forbid(unsafe_code)]

use clap::Parser as _;

use pmoves_secrets::cli::{Cli, Command};
use pmoves_secrets::error::{ExitCode, Result};
use pmoves_secrets::ui::{self, Ui};
use pmoves_secrets::{check, generate, manual, rotate, rotate_keys, rotate_secrets};

fn main() -> std::process::ExitCode {
    pmoves_secrets::process::forbid_core_dumps();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version arrive here as "errors" that belong on stdout with exit 0.
            let _ = err.print();
            return if err.use_stderr() { ExitCode::Usage } else { ExitCode::Success }.into();
        }
    };
    let ui = Ui::new(cli.verbosity(), cli.color);
    match run(cli.command, &ui) {
        Ok(code) => code.into(),
        Err(err) => {
            ui.failure(&err);
            err.exit_code().into()
        }
    }
}

/// Sends each command to its module: the outline of the program.
fn run(command: Command, ui: &Ui) -> Result<ExitCode> {
    match command {
        Command::GenerateKeys(args) => generate::run(&args, ui).map(|()| ExitCode::Success),
        Command::RotatePasswords(args) => rotate::run(&args, ui),
        Command::Check(args) => check::run(&args, ui),
        Command::RotateKeys(args) => rotate_keys::run(&args.into(), ui),
        Command::RotateSecrets(args) => rotate_secrets::run(&args, ui),
        Command::Completions { shell } => {
            ui::write_stdout(&manual::completion_script(shell)).map(|()| ExitCode::Success)
        }
        Command::Man => ui::write_stdout(&manual::man_page()?).map(|()| ExitCode::Success),
    }
}
