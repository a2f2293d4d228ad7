//! The command line, as clap definitions only.
//!
//! Doc comments here are the `--help` text. Nothing in this file decides anything: values are
//! resolved and checked against each other in `options.rs`, so every rule is a plain function
//! that unit tests can call.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::EXIT_CODES_HELP;

/// Mint, rotate and audit the secrets of a self-hosted Supabase stack.
///
/// For PMOVES.AI and upstream supabase/docker stacks. Secret values are printed only where you
/// ask for them (stdout of generate-keys, the files you name) and never in errors or logs.
#[derive(Debug, Parser)]
#[command(name = "pmoves-secrets", version, about, long_about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Print only errors (and the secrets you asked for).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail about each step (never secret values).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mint every secret a fresh stack needs.
    #[command(after_help = GENERATE_EXAMPLES)]
    GenerateKeys(GenerateArgs),

    /// Rotate the database password of every Supabase role, live, in one confirmed transaction.
    #[command(after_help = ROTATE_EXAMPLES)]
    RotatePasswords(RotateArgs),

    /// Audit an .env (and optionally the live database) for unsafe, default or inconsistent secrets.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),

    /// Rotate the ES256 signing key with overlap (stage, promote, revoke), or the opaque API keys.
    #[command(after_help = ROTATE_KEYS_EXAMPLES)]
    RotateKeys(RotateKeysArgs),

    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff) to stdout.
    #[command(hide = true)]
    Man,
}

const GENERATE_EXAMPLES: &str = "\
Examples:
  pmoves-secrets generate-keys > .env                  a complete, commented .env
  pmoves-secrets generate-keys --output .env           the same, created with mode 0600
  pmoves-secrets generate-keys --template .env.example > .env
  pmoves-secrets generate-keys --env-file .env         fill missing or demo secrets in place
  pmoves-secrets generate-keys --env-file .env --only JWT_SECRET --yes
  pmoves-secrets generate-keys --format k8s --name supabase --namespace prod | kubectl apply -f -";

const ROTATE_EXAMPLES: &str = "\
Examples:
  pmoves-secrets rotate-passwords --dry-run            show the plan, change nothing
  pmoves-secrets rotate-passwords                      rotate, after a confirmation
  PMOVES_SECRETS_DB_URL=postgresql://supabase_admin@db:5432/postgres pmoves-secrets rotate-passwords --yes";

const CHECK_EXAMPLES: &str = "\
Examples:
  pmoves-secrets check                                 audit ./.env
  pmoves-secrets check --env-file prod.env --db        also log in as every role
  pmoves-secrets check --format json                   for CI gates";

const ROTATE_KEYS_EXAMPLES: &str = "\
Examples:
  pmoves-secrets rotate-keys status                    each key's state and the next step
  pmoves-secrets rotate-keys stage                     a new key, verify only; recreate the services
  pmoves-secrets rotate-keys promote                   20+ minutes later: the new key signs
  pmoves-secrets rotate-keys revoke                    JWT_EXPIRY + 15 minutes later: the old key goes
  pmoves-secrets rotate-keys opaque                    a new SUPABASE_PUBLISHABLE_KEY / SUPABASE_SECRET_KEY";

/// Output formats of `generate-keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecretsFormat {
    /// KEY=value lines, a complete commented .env.
    Env,
    /// One JSON object of KEY to value.
    Json,
    /// A Kubernetes v1 Secret manifest (stringData), usable with envFrom.
    K8s,
}

/// Report formats of `rotate-passwords` and `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// For people.
    Text,
    /// For machines.
    Json,
}

/// TLS modes, as libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS when the server offers it.
    Prefer,
    /// Require TLS (the certificate is not verified, as libpq's `require`).
    Require,
}

/// Options of `generate-keys`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Also emit the newer asymmetric auth keys (JWT_KEYS, JWT_JWKS, ES256 API keys, opaque keys).
    #[arg(long)]
    pub asymmetric: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = SecretsFormat::Env)]
    pub format: SecretsFormat,

    /// metadata.name of the Kubernetes Secret (--format k8s).
    #[arg(long, default_value = "supabase-secrets")]
    pub name: String,

    /// metadata.namespace of the Kubernetes Secret (--format k8s).
    #[arg(long)]
    pub namespace: Option<String>,

    /// Print FILE (e.g. upstream's .env.example) with every secret filled in.
    #[arg(long, value_name = "FILE", group = "target")]
    pub template: Option<PathBuf>,

    /// Update FILE in place: fill secrets that are missing, empty or a known demo value.
    #[arg(long, value_name = "FILE", group = "target")]
    pub env_file: Option<PathBuf>,

    /// Write to a new FILE created with mode 0600 instead of stdout.
    #[arg(long, short, value_name = "FILE", group = "target")]
    pub output: Option<PathBuf>,

    /// With --env-file: regenerate these keys even when set (comma-separated).
    #[arg(long, value_name = "KEY[,KEY...]", value_delimiter = ',', requires = "env_file")]
    pub only: Vec<String>,

    /// With --output: replace an existing file.
    #[arg(long, requires = "output")]
    pub force: bool,

    /// Do not ask before changing a file.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// How to reach the database. The password is best kept in the .env or in
/// PMOVES_SECRETS_DB_URL: a password on the command line is visible to `ps`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// postgresql:// URL of the database (overrides the .env; also PMOVES_SECRETS_DB_URL).
    #[arg(long, value_name = "URL")]
    pub db_url: Option<String>,

    /// TLS mode [default: the URL's sslmode, PGSSLMODE, else prefer].
    #[arg(long, value_enum)]
    pub sslmode: Option<SslMode>,
}

/// Options of `rotate-passwords`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The stack's .env: read for the connection and the old password, rewritten afterwards.
    #[arg(long, value_name = "FILE", default_value = ".env")]
    pub env_file: PathBuf,

    #[command(flatten)]
    pub connect: ConnectArgs,

    /// How long to wait for a table lock before giving up and rolling back (e.g. 5s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub lock_timeout: String,

    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    /// After a verified rotation, recreate the services that hold the password (docker compose).
    #[arg(long)]
    pub restart: bool,

    /// Compose file of the stack, for --restart (repeatable).
    #[arg(long, value_name = "FILE", requires = "restart")]
    pub compose_file: Vec<PathBuf>,

    /// Compose project directory, for --restart [default: the .env's directory].
    #[arg(long, value_name = "DIR", requires = "restart")]
    pub project_directory: Option<PathBuf>,
}

/// Options of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The .env to audit.
    #[arg(long, value_name = "FILE", default_value = ".env")]
    pub env_file: PathBuf,

    /// Also log in to the database as each LOGIN role with POSTGRES_PASSWORD.
    #[arg(long)]
    pub db: bool,

    #[command(flatten)]
    pub connect: ConnectArgs,

    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// The phases of `rotate-keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RotateKeysPhase {
    /// A new P-256 key joins JWT_KEYS (verify only) and JWT_JWKS.
    Stage,
    /// The standby key becomes the signing key; the asymmetric API keys are re-minted.
    Promote,
    /// The previous key leaves both sets.
    Revoke,
    /// Each key's state, since when, and the earliest next step.
    Status,
    /// Re-mint SUPABASE_PUBLISHABLE_KEY and SUPABASE_SECRET_KEY.
    Opaque,
}

/// Options of `rotate-keys`.
#[derive(Debug, Args)]
pub struct RotateKeysArgs {
    /// What to do.
    #[arg(value_enum)]
    pub phase: RotateKeysPhase,

    /// The stack's .env, rewritten in place.
    #[arg(long, value_name = "FILE", default_value = ".env")]
    pub env_file: PathBuf,

    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// promote/revoke: skip the waiting time (20 minutes after stage; JWT_EXPIRY + 15 minutes after promote).
    #[arg(long)]
    pub force: bool,

    /// Output format of status.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

impl RotateKeysArgs {
    /// The plain options the command runs with.
    pub fn options(&self) -> crate::rotate_keys::Options {
        use crate::rotate_keys::{Format, Options, Phase};
        Options {
            phase: match self.phase {
                RotateKeysPhase::Stage => Phase::Stage,
                RotateKeysPhase::Promote => Phase::Promote,
                RotateKeysPhase::Revoke => Phase::Revoke,
                RotateKeysPhase::Status => Phase::Status,
                RotateKeysPhase::Opaque => Phase::Opaque,
            },
            env_file: self.env_file.clone(),
            yes: self.yes,
            force: self.force,
            format: match self.format {
                ReportFormat::Text => Format::Text,
                ReportFormat::Json => Format::Json,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn file_modes_of_generate_keys_exclude_each_other() {
        let err = Cli::try_parse_from(["p", "generate-keys", "--template", "a", "--env-file", "b"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn only_takes_a_comma_separated_list_and_needs_env_file() {
        let cli = Cli::try_parse_from(["p", "generate-keys", "--env-file", ".env", "--only", "A,B"]).unwrap();
        let Command::GenerateKeys(args) = cli.command else { panic!("wrong command") };
        assert_eq!(args.only, ["A", "B"]);
        assert!(Cli::try_parse_from(["p", "generate-keys", "--only", "A"]).is_err());
    }

    #[test]
    fn rotate_defaults_match_the_spec() {
        let cli = Cli::try_parse_from(["p", "rotate-passwords"]).unwrap();
        let Command::RotatePasswords(args) = cli.command else { panic!("wrong command") };
        assert_eq!(args.env_file, PathBuf::from(".env"));
        assert_eq!(args.lock_timeout, "5s");
        assert!(!args.dry_run && !args.yes);
    }
}
