//! The options every live rotation takes (`rotate-passwords`, `rotate-secrets`), written once:
//! each command flattens [`RotationOptions`] into its own options, so a flag's grammar and help
//! are the same wherever it appears. A command whose help says more about a flag (what its `.env`
//! is read for, which services `--restart` recreates) replaces only that flag's help line, with
//! [`own_help`].

use std::path::PathBuf;
use std::time::Duration;

use crate::db::ConnectOptions;
use crate::limits::{parse_lock_timeout, parse_lock_wait};
use crate::ui::ReportFormat;

/// The options shared by the commands that rotate secrets live in the database.
#[derive(Debug, Clone, clap::Args)]
pub struct RotationOptions {
    /// The stack's .env: read for the connection and the current values, rewritten afterwards.
    #[arg(long, value_name = "FILE", default_value = ".env")]
    pub env_file: PathBuf,

    #[command(flatten)]
    pub connect: ConnectOptions,

    /// How long to wait for a table lock before giving up and rolling back (e.g. 5s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,

    /// How long to wait while another run holds the .env's lock (e.g. 30s, 2m; 0: do not wait).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_lock_wait)]
    pub lock_wait: Duration,

    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    /// Afterwards, recreate exactly the services whose input changed (docker compose).
    #[arg(long)]
    pub restart: bool,

    /// Compose file of the stack, for --restart (repeatable).
    #[arg(long, value_name = "FILE", requires = "restart")]
    pub compose_file: Vec<PathBuf>,

    /// Compose project directory, for --restart [default: the .env's directory].
    #[arg(long, value_name = "DIR", requires = "restart")]
    pub project_directory: Option<PathBuf>,
}

/// A command's own help lines for some of the shared flags, by argument id (the field's name).
pub type OwnHelp = &'static [(&'static str, &'static str)];

/// For a command's `#[command(mut_args(..))]`: gives the flags named in `lines` the command's own
/// help line, each where it stands (clap's `mut_arg` would move the flag to the end of the man
/// page and of the completions).
pub fn own_help(lines: OwnHelp) -> impl FnMut(clap::Arg) -> clap::Arg {
    move |arg| match lines.iter().find(|(id, _)| arg.get_id() == *id) {
        Some((_, help)) => arg.help(*help),
        None => arg,
    }
}
