//! pmoves-secrets: mint, rotate and audit the secrets of a self-hosted Supabase stack.
//!
//! `main` only parses, dispatches and maps the outcome to an exit code (SPEC §5); every
//! behaviour lives in the library, where it can be tested as a function.

use clap::{CommandFactory as _, Parser as _};

use pmoves_secrets::cli::{Cli, Command};
use pmoves_secrets::error::{Error, ExitCode, Result};
use pmoves_secrets::ui::{self, Ui};
use pmoves_secrets::{check, generate, rotate, rotate_keys};

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
    let ui = Ui::new(cli.verbosity());
    match run(cli.command, &ui) {
        Ok(code) => code.into(),
        // Declining is the operator's choice, not a failure: said in plain words, not in red.
        Err(Error::Declined) => {
            ui.info("You declined at the confirmation; nothing was changed.");
            ExitCode::Declined.into()
        }
        Err(err) => {
            if !err.is_silent() {
                ui.error(&err.to_string());
            }
            err.exit_code().into()
        }
    }
}

/// Sends each command to its module: the outline of the program.
fn run(command: Command, ui: &Ui) -> Result<ExitCode> {
    match command {
        Command::GenerateKeys(args) => generate::run(&args.into(), ui).map(|()| ExitCode::Success),
        Command::RotatePasswords(args) => rotate::run(&args.into(), ui),
        Command::Check(args) => check::run(&args.into(), ui),
        Command::RotateKeys(args) => rotate_keys::run(&args.into(), ui),
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pmoves-secrets", &mut text);
            ui::write_stdout(&String::from_utf8_lossy(&text)).map(|()| ExitCode::Success)
        }
        Command::Man => {
            let mut text = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut text)
                .map_err(|e| Error::Output { target: "standard output".into(), reason: e.to_string() })?;
            ui::write_stdout(&String::from_utf8_lossy(&text)).map(|()| ExitCode::Success)
        }
    }
}
