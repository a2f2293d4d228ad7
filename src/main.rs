//! pmoves-secrets: mint, rotate and audit the secrets of a self-hosted Supabase stack.
//!
//! `main` only parses, runs and maps the outcome to an exit code (SPEC §5); every behaviour
//! lives in a module where it can be tested as a function.

mod analytics;
mod app;
mod check;
mod cli;
mod db;
mod dburl;
mod envfile;
mod error;
mod generate;
mod rotate;
mod secrets;
mod ui;

use clap::Parser as _;

use crate::error::ExitCode;

fn main() -> std::process::ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version arrive here as "errors" that belong on stdout with exit 0.
            let _ = err.print();
            return if err.use_stderr() { ExitCode::Usage } else { ExitCode::Success }.into();
        }
    };
    let ui = app::ui_for(&cli);
    match app::run(cli, &ui) {
        Ok(code) => code.into(),
        // Declining is the operator's choice, not a failure: said in plain words, not in red.
        Err(error::Error::Declined) => {
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
