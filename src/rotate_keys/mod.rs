//! `rotate-keys`: rotate the ES256 signing key of a live stack with overlap, so nobody is logged
//! out (SPEC §7), and re-mint the opaque API key pair.
//!
//! Every changing phase is the same pipeline, in [`apply`]: lock `.env` → read → plan the phase
//! (refusals happen here, before anything is shown or asked) → show what changes (key ids and
//! states, never a value) → typed confirmation → one atomic write → the services to restart.
//! The key-state model (what state each key is in, and since when) is [`crate::keyring`], shared
//! with `check`; the phases only decide.
//!
//! - [`stage`], [`promote`], [`revoke`]: the three steps of a rotation, and [`rollback`], the
//!   way back from `promote` before `revoke`;
//! - [`opaque`]: a new `SUPABASE_PUBLISHABLE_KEY` / `SUPABASE_SECRET_KEY` pair;
//! - [`status`]: each key's state and the earliest next step, as text or JSON;
//! - [`services`]: which services read which variable, so each phase names what to restart;
//! - [`load`]: reading the ring from the file, with the refusals every phase shares;
//! - [`wiring`]: with `--compose`, a key set no signer reads is refused.
//!
//! With `--restart` a phase recreates exactly the services whose input changed (through
//! [`crate::rotation::restart`], pre-flighted before the question, in an environment without the `.env`'s
//! keys) and records its times once they run; without it the record holds the file's time.

mod load;
mod opaque;
mod promote;
mod revoke;
mod rollback;
mod services;
mod stage;
mod status;
mod wiring;

use std::path::{Path, PathBuf};

use crate::envfile::{self, EnvFile, LockedEnv};
use crate::error::{Error, ExitCode, Result};
use crate::keyring::{self, Clock, STATE_KEY};
use crate::rotation::restart::{self, ComposeProject};
use crate::secret::Secret;
use crate::secrets;
use crate::ui::{ReportFormat, Ui};

/// Which phase to run, with the options only that phase takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A new key joins both sets, verify only.
    Stage,
    /// The standby key becomes the signing key; the API keys are re-minted. `force` skips the
    /// 20-minute wait after `stage`.
    Promote {
        /// Skip the waiting time.
        force: bool,
    },
    /// The previous key leaves both sets. `force` skips the `JWT_EXPIRY` + 15 minutes wait.
    Revoke {
        /// Skip the waiting time.
        force: bool,
    },
    /// Before `revoke`: the previous key signs again, the promoted one returns to standby.
    Rollback,
    /// Print each key's state; change nothing.
    Status {
        /// Text or JSON, on stdout.
        format: ReportFormat,
    },
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
    /// The stack's compose files: a key set no signer reads is refused; `--restart` uses them.
    pub compose: Vec<PathBuf>,
    /// Recreate the services whose input changed, and count the waits from then.
    pub restart: bool,
    /// Compose project directory for `restart` (default: the `.env`'s directory).
    pub project_directory: Option<PathBuf>,
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
    envfile::require_existing(&opts.env_file)?;
    match opts.phase {
        Phase::Status { format } => status::run(&opts.env_file, format, ui),
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
    let plan = plan_phase(opts.phase, &file, path, now)?;
    if !opts.compose.is_empty() && opts.phase != Phase::Opaque {
        wiring::refuse_a_set_no_signer_reads(&opts.compose, path, ui)?;
    }
    // Only what really changes: `promote` rewrites JWT_JWKS to the same value, and recreating
    // its readers would drop every Realtime websocket for nothing.
    let changed: Vec<&str> =
        plan.values.iter().filter(|(k, v)| value(&file, k) != Some(v.expose())).map(|(k, _)| *k).collect();
    let services = services::readers_of(&changed);
    let project = opts.restart.then(|| {
        ComposeProject::new(path, &opts.compose, opts.project_directory.as_deref())
            .recreating(services.clone())
            .waiting()
    });
    if let Some(project) = &project {
        restart::preflight(project)?;
    }
    show_plan(&plan, &file, path, &services, ui);
    ui.confirm_typed(&plan.question, &[], &format!("rewriting {}", path.display()), opts.yes)?;
    // Onto the file as it is now: a hand edit saved while the operator answered is kept.
    let base = file.clone();
    for (key, value) in &plan.values {
        file.set(key, value.expose())?;
    }
    env.update(&base, &file)?;
    ui.info(&format!("updated {} ({}; mode and owner kept)", path.display(), changed.join(", ")));
    match &project {
        Some(project) => restart_and_record(project, &env, &mut file, now, ui)?,
        None => ui.info(&format!(
            "recreate the services that read them: docker compose --env-file {} up -d --force-recreate {}; the \
             waits count from that restart (the record holds the file's time: `rotate-keys status` reminds you)",
            path.display(),
            services.join(" ")
        )),
    }
    for line in &plan.afterwards {
        ui.info(line);
    }
    Ok(ExitCode::Success)
}

/// The phase's plan (its refusals included), before anything is shown.
fn plan_phase(phase: Phase, file: &EnvFile, path: &Path, now: u64) -> Result<Plan> {
    match phase {
        Phase::Stage => stage::plan(file, path, now),
        Phase::Promote { force } => promote::plan(file, path, now, force),
        Phase::Revoke { force } => revoke::plan(file, path, now, force),
        Phase::Rollback => rollback::plan(file, path, now),
        Phase::Opaque => Ok(opaque::plan(file)),
        Phase::Status { .. } => Err(Error::Usage("status changes nothing".into())),
    }
}

/// What changes and who must act, on stderr (names and key ids, never a value).
fn show_plan(plan: &Plan, file: &EnvFile, path: &Path, services: &[&str], ui: &Ui) {
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
    ui.info(&format!("then recreate: {}", services.join(" ")));
}

/// `--restart`: recreates exactly `services` and waits until they run, then records the phase's
/// times as counting from now (the services run the new set from here on).
fn restart_and_record(
    project: &ComposeProject,
    env: &LockedEnv,
    file: &mut EnvFile,
    written_at: u64,
    ui: &Ui,
) -> Result<()> {
    let recreated = restart::restart(project)?;
    let up = secrets::unix_now();
    if let Some(record) = value(file, STATE_KEY).and_then(|r| keyring::restarted_record(r, written_at, up)) {
        let base = file.clone();
        file.set(STATE_KEY, &record)?;
        env.update(&base, file)?;
    }
    ui.info(&format!(
        "recreated {} (running at {}); the waits count from then",
        recreated.join(" "),
        crate::clock::utc_time(up)
    ));
    Ok(())
}

/// What the phases say to clients, instead of any promise about the asymmetric API keys: those
/// are the gateway's own, compared byte for byte with the values it started with.
const CLIENTS_KEEP_THEIR_KEYS: &str = "clients keep the keys they hold: the opaque SUPABASE_PUBLISHABLE_KEY / \
     SUPABASE_SECRET_KEY pair (or the legacy ANON_KEY / SERVICE_ROLE_KEY); ANON_KEY_ASYMMETRIC and \
     SERVICE_ROLE_KEY_ASYMMETRIC are the gateway's own and go to no client";

/// How a recorded time is to be read, for messages.
fn clock_note(from: Clock) -> &'static str {
    match from {
        Clock::Restart => ", when the services were recreated",
        Clock::File => ", when the file was written: count from when the services were recreated",
    }
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
