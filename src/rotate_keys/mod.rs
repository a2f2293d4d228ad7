//! `rotate-keys`: rotate the ES256 signing key of a live stack with overlap, so nobody is logged
//! out (SPEC §7), and re-mint the opaque API key pair.
//!
//! Every changing phase is the same pipeline, in [`apply`]: lock `.env` → read → plan the phase
//! (refusals happen here, before anything is shown or asked) → show what changes (key ids and
//! states, never a value) → typed confirmation → one atomic write → the services to restart.
//! The key-state model (what state each key is in, and since when) is [`crate::keyring`], shared
//! with `check`; the phases only decide.
//!
//! - [`stage`], [`promote`], [`revoke`]: the three steps of a rotation;
//! - [`opaque`]: a new `SUPABASE_PUBLISHABLE_KEY` / `SUPABASE_SECRET_KEY` pair;
//! - [`status`]: each key's state and the earliest next step, as text or JSON;
//! - [`services`]: which services read which variable, so each phase names what to restart;
//! - [`load`]: reading the ring from the file, with the refusals every phase shares.

mod load;
mod opaque;
mod promote;
mod revoke;
mod services;
mod stage;
mod status;

use std::path::{Path, PathBuf};

use crate::envfile::{self, EnvFile};
use crate::error::{Error, ExitCode, Result};
use crate::secret::Secret;
use crate::secrets;
use crate::ui::{ReportFormat, Ui};

/// Which phase to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A new key joins both sets, verify only.
    Stage,
    /// The standby key becomes the signing key; the API keys are re-minted.
    Promote,
    /// The previous key leaves both sets.
    Revoke,
    /// Print each key's state; change nothing.
    Status,
    /// Re-mint the opaque API key pair.
    Opaque,
}

/// What `rotate-keys` is asked to do, resolved from the command line.
#[derive(Debug, Clone)]
pub struct RotateKeysOptions {
    /// The phase.
    pub phase: Phase,
    /// The stack's `.env`.
    pub env_file: PathBuf,
    /// Skip the confirmation.
    pub yes: bool,
    /// Skip the waiting times of `promote` and `revoke`.
    pub force: bool,
    /// Output of `status`.
    pub format: ReportFormat,
    /// How long to wait while another run holds the `.env`'s lock.
    pub lock_wait: std::time::Duration,
}

/// What a phase will do, decided before anything is shown or asked. `Debug` shows no value
/// (`Secret` is redacted).
#[derive(Debug)]
struct Plan {
    /// One line per change: key ids and states, never a value.
    lines: Vec<String>,
    /// What the operator must know before answering.
    warnings: Vec<String>,
    /// The values to set, in order.
    values: Vec<(&'static str, Secret)>,
    /// The question asked before writing.
    question: String,
    /// Printed after the write: who else must act (clients, other copies of the keys).
    afterwards: Vec<String>,
}

/// Runs `rotate-keys`.
pub fn run(opts: &RotateKeysOptions, ui: &Ui) -> Result<ExitCode> {
    if opts.force && !matches!(opts.phase, Phase::Promote | Phase::Revoke) {
        return Err(Error::Usage("--force only skips the waiting time of promote and revoke".into()));
    }
    if opts.format == ReportFormat::Json && opts.phase != Phase::Status {
        return Err(Error::Usage("--format json is the output of status; the other phases report on stderr".into()));
    }
    envfile::require_existing(&opts.env_file)?;
    match opts.phase {
        Phase::Status => status::run(opts, ui),
        _ => apply(opts, ui),
    }
}

/// The pipeline shared by every phase that changes the file.
fn apply(opts: &RotateKeysOptions, ui: &Ui) -> Result<ExitCode> {
    let path = opts.env_file.as_path();
    let env = ui.lock_env(path, opts.lock_wait)?;
    // A rotation of the database password in progress owns the file until it is settled.
    env.refuse_while_pending()?;
    let mut file = env.read_existing()?;
    let now = secrets::unix_now();
    let plan = match opts.phase {
        Phase::Stage => stage::plan(&file, path, now)?,
        Phase::Promote => promote::plan(&file, path, now, opts.force)?,
        Phase::Revoke => revoke::plan(&file, path, now, opts.force)?,
        Phase::Opaque => opaque::plan(&file),
        Phase::Status => return status::run(opts, ui),
    };
    for key in file.duplicate_keys().into_iter().filter(|k| plan.values.iter().any(|(v, _)| v == k)) {
        ui.warn(&format!("{key} is defined more than once in {}; every occurrence gets the new value", path.display()));
    }
    ui.info(&format!("{} will change:", path.display()));
    for line in &plan.lines {
        ui.info(&format!("  {line}"));
    }
    for warning in &plan.warnings {
        ui.warn(warning);
    }
    let changed: Vec<&str> = plan.values.iter().map(|(k, _)| *k).collect();
    let restart = services::readers_of(&changed);
    ui.info(&format!("then recreate: {}", restart.join(" ")));
    ui.confirm_typed(&plan.question, &[], &format!("rewriting {}", path.display()), opts.yes)?;
    // Onto the file as it is now: a hand edit saved while the operator answered is kept.
    let base = file.clone();
    for (key, value) in &plan.values {
        file.set(key, value.expose())?;
    }
    env.update(&base, &file)?;
    ui.info(&format!("updated {} ({}; mode and owner kept)", path.display(), changed.join(", ")));
    ui.info(&format!(
        "recreate the services that read them: docker compose --env-file {} up -d --force-recreate {}",
        path.display(),
        restart.join(" ")
    ));
    for line in &plan.afterwards {
        ui.info(line);
    }
    Ok(ExitCode::Success)
}

/// A refusal: names the file and key, says why and what to do; nothing was changed.
fn refused(path: &Path, key: &str, problem: String) -> Error {
    Error::BadValue {
        path: path.to_path_buf(),
        key: key.to_owned(),
        problem: format!("{problem} (nothing was changed)"),
    }
}

/// The value of `key` in `file`, empty counting as absent.
fn value<'a>(file: &'a EnvFile, key: &str) -> Option<&'a str> {
    file.value(key)
}
