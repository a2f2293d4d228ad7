//! The command line: the top-level clap definitions and the usage rules that span commands.
//!
//! Doc comments are the `--help` text. Each command's options are its own struct, deriving
//! clap's `Args` in the command's module (`generate::GenerateOptions`, `rotate::RotateOptions`,
//! `rotate_secrets::RotateSecretsOptions`, `check::CheckOptions`, with `db::ConnectOptions`
//! flattened in, and the two rotations' shared flags in `rotation::RotationOptions`), so the command takes what clap parsed and no copy sits between the two.
//! Values are parsed by clap (a bad value is a usage error, exit 2, with the valid ones listed).
//! `rotate-keys` is the exception: its phases are subcommands here, turned into the one
//! [`RotateKeysOptions`] the command takes (the phase and its options resolved together).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::check::CheckOptions;
use crate::error::EXIT_CODES_HELP;
use crate::generate::GenerateOptions;
use crate::limits::parse_lock_wait;
use crate::rotate::RotateOptions;
use crate::rotate_keys::{Phase, RotateKeysOptions};
use crate::rotate_secrets::RotateSecretsOptions;
use crate::ui::{ColorChoice, ReportFormat, Verbosity};

/// Mint, rotate and audit the secrets of a self-hosted Supabase stack.
///
/// For PMOVES.AI and upstream supabase/docker stacks. Secret values are printed only where you
/// ask for them (stdout of generate-keys, the files you name) and never in errors or logs.
#[derive(Debug, Parser)]
#[command(name = "pmoves-secrets", version, about, long_about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Print only errors (and the secrets and JSON reports you asked for).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail about each step (never secret values).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// When to colour findings and messages: auto colours only a terminal, and never with
    /// NO_COLOR set.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The operator channel's verbosity from the global `--quiet` / `--verbose` flags.
    pub fn verbosity(&self) -> Verbosity {
        match (self.quiet, self.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, _) => Verbosity::Verbose,
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mint every secret a fresh stack needs.
    #[command(after_help = with_exit_codes(GENERATE_EXAMPLES))]
    GenerateKeys(GenerateOptions),

    /// Rotate the database password of every Supabase role, live, in one confirmed transaction.
    #[command(after_help = with_exit_codes(ROTATE_EXAMPLES))]
    RotatePasswords(RotateOptions),

    /// Rotate any other secret live, with every copy the stack keeps outside .env (SPEC §8).
    #[command(after_help = with_exit_codes(ROTATE_SECRETS_EXAMPLES))]
    RotateSecrets(RotateSecretsOptions),

    /// Audit an .env (and optionally the live database) for unsafe, default or inconsistent secrets.
    // `--db-url` and `--sslmode` say how to reach the database, so they need `--db`: without it
    // they would be ignored and the run would report "no problems" about a database it never
    // read. A usage error (rather than implying `--db`) keeps `--db` the one switch that makes
    // `check` connect, as `--restart` is for `rotate-passwords`' compose options.
    #[command(
        after_help = with_exit_codes(CHECK_EXAMPLES),
        mut_arg("db_url", |arg| arg.requires("db")),
        mut_arg("sslmode", |arg| arg.requires("db"))
    )]
    Check(CheckOptions),

    /// Rotate the ES256 signing key with overlap (stage, promote, revoke), or the opaque API keys.
    #[command(after_help = with_exit_codes(ROTATE_KEYS_EXAMPLES))]
    RotateKeys(RotateKeysArgs),

    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff) to stdout, e.g. `pmoves-secrets man > pmoves-secrets.1`.
    Man,
}

/// A command's examples followed by the exit codes, for its `--help`.
fn with_exit_codes(examples: &str) -> String {
    format!("{examples}\n\n{EXIT_CODES_HELP}")
}

const GENERATE_EXAMPLES: &str = "\
Examples:
  pmoves-secrets generate-keys > .env                  a complete, commented .env
  pmoves-secrets generate-keys --output .env           the same, created with mode 0600
  pmoves-secrets generate-keys --template .env.example --output .env
  pmoves-secrets generate-keys --env-file .env         fill missing, demo, placeholder or weak secrets
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
  pmoves-secrets check --format json                   for CI gates
  pmoves-secrets check --compose docker-compose.yml    also read the compose file";

// ----------------------------------------------------------------------------- rotate-secrets

const ROTATE_SECRETS_EXAMPLES: &str = "\
Examples:
  pmoves-secrets rotate-secrets VAULT_ENC_KEY --dry-run   the plan: every copy, every service
  pmoves-secrets rotate-secrets LOGFLARE_PUBLIC_ACCESS_TOKEN LOGFLARE_PRIVATE_ACCESS_TOKEN --restart
  pmoves-secrets rotate-secrets --all --yes --format json";

const ROTATE_KEYS_EXAMPLES: &str = "\
Examples:
  pmoves-secrets rotate-keys status                    each key's state and the next step
  pmoves-secrets rotate-keys stage                     a new key, verify only; recreate the services
  pmoves-secrets rotate-keys promote                   20+ minutes later: the new key signs
  pmoves-secrets rotate-keys rollback                  before revoke: the previous key signs again
  pmoves-secrets rotate-keys revoke                    JWT_EXPIRY + 15 minutes later: the old key goes
  pmoves-secrets rotate-keys opaque                    a new SUPABASE_PUBLISHABLE_KEY / SUPABASE_SECRET_KEY";

/// Options of `rotate-keys`: the phase, each a subcommand with the options it takes.
#[derive(Debug, Args)]
pub struct RotateKeysArgs {
    /// The stack's .env, rewritten in place.
    #[arg(long, value_name = "FILE", default_value = ".env", global = true)]
    pub env_file: PathBuf,

    /// How long to wait while another run holds the .env's lock (e.g. 30s, 2m; 0: do not wait).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_lock_wait, global = true)]
    pub lock_wait: Duration,

    /// What to do.
    #[command(subcommand)]
    pub phase: RotateKeysPhase,
}

/// The phases of `rotate-keys`.
#[derive(Debug, Subcommand)]
pub enum RotateKeysPhase {
    /// A new P-256 key joins JWT_KEYS (verify only) and JWT_JWKS.
    Stage(ChangeArgs),
    /// The standby key becomes the signing key; the gateway's asymmetric API keys are re-minted.
    Promote(WaitingChangeArgs),
    /// The previous key leaves both sets (cannot be undone).
    Revoke(WaitingChangeArgs),
    /// Before revoke: the previous key signs again, the promoted one returns to standby.
    Rollback(ChangeArgs),
    /// Each key's state, since when, and the earliest next step.
    Status(StatusArgs),
    /// Re-mint SUPABASE_PUBLISHABLE_KEY and SUPABASE_SECRET_KEY.
    Opaque(ChangeArgs),
}

/// Options of every phase that changes the file.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// The stack's compose file (repeatable, like compose's -f): refuse a key set no signer reads,
    /// and the files --restart uses.
    #[arg(long, value_name = "FILE", alias = "compose-file")]
    pub compose: Vec<PathBuf>,

    /// After the write, recreate exactly the services whose input changed (docker compose), and
    /// count the waits from when they are up.
    #[arg(long)]
    pub restart: bool,

    /// Compose project directory, for --restart [default: the .env's directory].
    #[arg(long, value_name = "DIR", requires = "restart")]
    pub project_directory: Option<PathBuf>,
}

/// Options of `promote` and `revoke`, which have a waiting time.
#[derive(Debug, Args)]
pub struct WaitingChangeArgs {
    #[command(flatten)]
    pub change: ChangeArgs,

    /// Skip the waiting time (promote: 20 minutes after stage; revoke: JWT_EXPIRY + 15 minutes after promote).
    #[arg(long)]
    pub force: bool,
}

/// Options of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

impl From<RotateKeysArgs> for RotateKeysOptions {
    fn from(args: RotateKeysArgs) -> Self {
        let (phase, change) = match args.phase {
            RotateKeysPhase::Stage(change) => (Phase::Stage, Some(change)),
            RotateKeysPhase::Promote(w) => (Phase::Promote { force: w.force }, Some(w.change)),
            RotateKeysPhase::Revoke(w) => (Phase::Revoke { force: w.force }, Some(w.change)),
            RotateKeysPhase::Rollback(change) => (Phase::Rollback, Some(change)),
            RotateKeysPhase::Opaque(change) => (Phase::Opaque, Some(change)),
            RotateKeysPhase::Status(status) => (Phase::Status { format: status.format }, None),
        };
        let change =
            change.unwrap_or(ChangeArgs { yes: false, compose: Vec::new(), restart: false, project_directory: None });
        RotateKeysOptions {
            phase,
            env_file: args.env_file,
            yes: change.yes,
            compose: change.compose,
            restart: change.restart,
            project_directory: change.project_directory,
            lock_wait: args.lock_wait,
        }
    }
}

#[cfg(test)]
mod tests {

    /// `generate-keys --env-file`'s help names what it fills as the README does: each kind of
    /// value the README lists for it is in the help.
    #[test]
    fn env_file_help_names_what_the_readme_says_it_fills() {
        use clap::CommandFactory as _;
        let mut cli = Cli::command();
        let generate = cli.find_subcommand_mut("generate-keys").expect("generate-keys");
        let help = generate
            .get_arguments()
            .find(|arg| arg.get_id() == "env_file")
            .and_then(|arg| arg.get_help())
            .expect("--env-file has help")
            .to_string();
        let readme = include_str!("../README.md");
        let start = readme.find("- `--env-file .env` updates an existing `.env` in place").expect("README item");
        let item = &readme[start..start + readme[start..].find("\n- ").unwrap_or(readme.len() - start)];
        for kind in ["missing", "empty", "demo", "placeholder", "weak"] {
            assert!(item.contains(kind), "README: {kind}");
            assert!(help.contains(kind), "--env-file's help lacks {kind}: {help}");
        }
        // The one exception, in both: a set POSTGRES_PASSWORD that is only weak is kept.
        assert!(readme.contains("A set `POSTGRES_PASSWORD` is not changed by `generate-keys` when it is only weak"));
        assert!(help.contains("a weak POSTGRES_PASSWORD is kept"), "--env-file's help: {help}");
    }
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    /// Each command's own help line for a shared rotation flag names a flag the command has, and
    /// is the help `--help` shows for it (a misspelt id would leave the shared line in place).
    #[test]
    fn own_help_lines_replace_the_shared_ones() {
        let mut cli = Cli::command();
        for (command, lines) in
            [("rotate-passwords", crate::rotate::OWN_HELP), ("rotate-secrets", crate::rotate_secrets::OWN_HELP)]
        {
            let command = cli.find_subcommand_mut(command).expect("a command");
            for (id, help) in lines {
                let arg = command.get_arguments().find(|arg| arg.get_id() == *id).expect("a shared flag");
                assert_eq!(arg.get_help().map(ToString::to_string).as_deref(), Some(*help), "{id}");
            }
        }
    }

    #[test]
    fn check_takes_connection_options_only_with_db() {
        for args in [["--db-url", "postgresql://u@h/d"], ["--sslmode", "require"]] {
            let err = Cli::try_parse_from(["p", "check", args[0], args[1]]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument, "{args:?}");
            assert!(Cli::try_parse_from(["p", "check", "--db", args[0], args[1]]).is_ok(), "{args:?}");
        }
        assert!(Cli::try_parse_from(["p", "rotate-passwords", "--sslmode", "require"]).is_ok());
    }

    #[test]
    fn file_modes_of_generate_keys_exclude_each_other() {
        let err = Cli::try_parse_from(["p", "generate-keys", "--template", "a", "--env-file", "b"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn output_goes_with_template_but_not_with_env_file() {
        assert!(Cli::try_parse_from(["p", "generate-keys", "--template", "a", "--output", "b"]).is_ok());
        let err = Cli::try_parse_from(["p", "generate-keys", "--env-file", "a", "--output", "b"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn only_takes_a_comma_separated_list_and_needs_env_file() {
        let cli = Cli::try_parse_from(["p", "generate-keys", "--env-file", ".env", "--only", "ANON_KEY, JWT_SECRET"])
            .unwrap();
        let Command::GenerateKeys(args) = cli.command else { panic!("wrong command") };
        let keys: Vec<&str> = args.only.iter().map(|spec| spec.key).collect();
        assert_eq!(keys, ["ANON_KEY", "JWT_SECRET"]);
        assert!(Cli::try_parse_from(["p", "generate-keys", "--only", "ANON_KEY"]).is_err());
    }

    #[test]
    fn rotate_defaults_match_the_spec() {
        let cli = Cli::try_parse_from(["p", "rotate-passwords"]).unwrap();
        let Command::RotatePasswords(args) = cli.command else { panic!("wrong command") };
        assert_eq!(args.rotation.env_file, PathBuf::from(".env"));
        assert_eq!(args.rotation.lock_timeout, Duration::from_secs(5));
        assert!(!args.rotation.dry_run && !args.rotation.yes);
    }

    #[test]
    fn an_unknown_only_key_is_a_usage_error_listing_the_catalogue() {
        let err =
            Cli::try_parse_from(["p", "generate-keys", "--env-file", ".env", "--only", "JWT_SECRET,nope"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        let text = err.to_string();
        assert!(text.contains("nope") && text.contains("SERVICE_ROLE_KEY"), "{text}");
    }

    #[test]
    fn every_writer_waits_30_s_for_the_env_lock_unless_told() {
        for args in [
            &["p", "rotate-passwords"][..],
            &["p", "rotate-keys", "stage"],
            &["p", "generate-keys", "--env-file", ".env"],
        ] {
            let waits = |extra: &[&str]| {
                let cli = Cli::try_parse_from(args.iter().chain(extra)).expect("parses");
                match cli.command {
                    Command::RotatePasswords(a) => a.rotation.lock_wait,
                    Command::RotateKeys(a) => a.lock_wait,
                    Command::GenerateKeys(a) => a.lock_wait,
                    _ => unreachable!("a writer"),
                }
            };
            assert_eq!(waits(&[]), Duration::from_secs(30), "{args:?}");
            assert_eq!(waits(&["--lock-wait", "0"]), Duration::ZERO, "{args:?}");
            assert_eq!(waits(&["--lock-wait", "2m"]), Duration::from_secs(120), "{args:?}");
            assert!(Cli::try_parse_from(args.iter().chain(&["--lock-wait", "forever"])).is_err(), "{args:?}");
        }
        assert!(Cli::try_parse_from(["p", "generate-keys", "--lock-wait", "1s"]).is_err(), "only with --env-file");
    }

    #[test]
    fn a_bad_lock_timeout_is_a_usage_error() {
        for bad in ["fast", "0s", "5h", ""] {
            let err = Cli::try_parse_from(["p", "rotate-passwords", "--lock-timeout", bad]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        }
        let cli = Cli::try_parse_from(["p", "rotate-passwords", "--lock-timeout", "500ms"]).unwrap();
        let Command::RotatePasswords(args) = cli.command else { panic!("wrong command") };
        assert_eq!(args.rotation.lock_timeout, Duration::from_millis(500));
    }

    #[test]
    fn kubernetes_names_are_checked_by_clap() {
        for args in [["--name", "Not_Valid"], ["--namespace", "a.b"]] {
            let err = Cli::try_parse_from(["p", "generate-keys", "--format", "k8s", args[0], args[1]]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{args:?}");
            assert!(err.to_string().contains(args[0]), "{err}");
        }
    }
}
