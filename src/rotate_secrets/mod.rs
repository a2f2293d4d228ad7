//! `rotate-secrets`: every other secret of the stack rotated live, with every copy it has outside
//! `.env` (SPEC §8).
//!
//! The pipeline reads top to bottom in [`rotate`]: lock `.env` → settle a pending file left by an
//! interrupted run (`settle`: publish it, discard it, or finish a run that committed in some
//! databases only) → choose keys and mint → look at the copies in the database → plan →
//! `--dry-run` stops → refuse early (`--restart`, publishable `.env`) → typed confirmation →
//! without database copies: one atomic rewrite of `.env`; with them: one transaction per
//! database holding copies, each on a silenced session, their ids recorded in the pending file
//! (staged before any database change), then `COMMIT`, publish (`transaction`) → `--restart` →
//! report.
//!
//! The copies and what happens to each are [`crate::stack::copies`]; reading them is
//! [`crate::service_copies`]; the shared machinery is [`crate::rotation`].

mod plan;
mod settle;
mod transaction;

use std::time::Instant;

use serde_json::json;
use tokio_postgres::Client;

use crate::db::{self, Target};
use crate::envfile::{EnvFile, LockedEnv};
use crate::error::{ExitCode, Result};
use crate::rotation::crash::{self, CrashPoint};
use crate::rotation::restart::{self, ComposeProject};
use crate::rotation::xact::Xact;
use crate::rotation::{own_help, OwnHelp, RotationOptions};
use crate::stack::connection::connection_settings;
use crate::stack::copies;
use crate::ui::{ReportFormat, Ui};

use plan::{Plan, Scope};
use transaction::Transact;

/// Options of `rotate-secrets`: the keys, then the options every rotation takes.
#[derive(Debug, Clone, clap::Args)]
#[command(mut_args(own_help(OWN_HELP)))]
pub struct RotateSecretsOptions {
    /// The secrets to rotate (JWT_SECRET, VAULT_ENC_KEY, REALTIME_DB_ENC_KEY, LOGFLARE_*, ...).
    #[arg(value_name = "KEY", required_unless_present = "all", conflicts_with = "all")]
    pub keys: Vec<String>,

    /// Every secret rotate-secrets rotates.
    #[arg(long)]
    pub all: bool,

    #[command(flatten)]
    pub rotation: RotationOptions,
}

/// The help line of the shared flag whose meaning is `rotate-secrets`' own.
pub const OWN_HELP: OwnHelp =
    &[("lock_timeout", "How long to wait for a lock in the database before giving up and rolling back")];

/// Runs `rotate-secrets` on its own runtime.
pub fn run(args: &RotateSecretsOptions, ui: &Ui) -> Result<ExitCode> {
    let crash = CrashPoint::from_env()?;
    db::runtime()?.block_on(rotate(args, ui, crash))
}

async fn rotate(args: &RotateSecretsOptions, ui: &Ui, crash: Option<CrashPoint>) -> Result<ExitCode> {
    let started = Instant::now();
    let keys = plan::chosen_keys(&args.keys, args.all)?;
    let env_lock = ui.lock_env(&args.rotation.env_file, args.rotation.lock_wait)?;
    let env = env_lock.read_existing()?;
    if let Some(done) = settle::leftover(args, ui, &env_lock, &env, crash, started).await? {
        return Ok(done);
    }
    let (plan, sessions) = make_plan(args, ui, &env, keys).await?;
    let plan_ms = ms_since(started);
    if args.rotation.dry_run {
        return report(args, ui, &plan, true, &[], &[], plan_ms, started);
    }
    // Every pre-flight before the question: an operator who types "yes" is not refused afterwards.
    let compose = compose_project(args, &plan)?;
    env_lock.ensure_publishable()?;
    confirm(args, ui, &plan)?;
    let xacts = apply(args, &env_lock, &env, &plan, sessions, crash).await?;
    crash::at(crash, CrashPoint::Published);
    let restarted = match &compose {
        Some(project) => restart::restart(project)?,
        None => Vec::new(),
    };
    report(args, ui, &plan, false, &xacts, &restarted, plan_ms, started)
}

/// A session on one database, by name.
type Session = (String, Client);

/// The plan: the new values and, when a minted key has copies in the database, the steps there
/// with a session on the main database and on every other database a step runs in.
async fn make_plan(
    args: &RotateSecretsOptions,
    ui: &Ui,
    env: &EnvFile,
    keys: Vec<&'static str>,
) -> Result<(Plan, Vec<Session>)> {
    let minted = plan::mint(env, &keys)?;
    let needs_database = minted.iter().any(|(key, _)| copies::has_database_copies(key));
    let mut sessions: Vec<Session> = Vec::new();
    let (steps, left_to_services) = if needs_database {
        let target = resolve_target(args, env, ui)?;
        let main = target.connect().await?;
        let found = plan::database_steps(&target, &main, env, &minted, Scope::All).await?;
        sessions.push((target.dbname().to_owned(), main));
        for dbname in found.0.iter().map(|s| s.dbname.clone()) {
            if !sessions.iter().any(|(d, _)| *d == dbname) {
                let session = match target.take_session(&dbname) {
                    Some(looked_with) => looked_with,
                    None => target.in_database(&dbname).connect().await?,
                };
                sessions.push((dbname.clone(), session));
            }
        }
        found
    } else {
        (Vec::new(), Vec::new())
    };
    let services = plan::services(&minted);
    Ok((Plan { keys, minted, steps, left_to_services, services }, sessions))
}

/// The plan shown (unless JSON was asked for with `--yes`), then the typed confirmation.
fn confirm(args: &RotateSecretsOptions, ui: &Ui, plan: &Plan) -> Result<()> {
    if args.rotation.format == ReportFormat::Text || !args.rotation.yes {
        ui.info(&plan.to_text(&args.rotation.env_file.display().to_string()));
    }
    ui.confirm_typed(
        "Rotate these secrets now?",
        &[],
        &format!("rotating {} and rewriting {}", plan.keys.join(", "), args.rotation.env_file.display()),
        args.rotation.yes,
    )
}

/// The new `.env` published: in one atomic rewrite when the plan changes nothing in the
/// database, else through one transaction per database that a step runs in (`transaction`).
/// Returns those transactions.
async fn apply(
    args: &RotateSecretsOptions,
    env_lock: &LockedEnv,
    env: &EnvFile,
    plan: &Plan,
    sessions: Vec<Session>,
    crash: Option<CrashPoint>,
) -> Result<Vec<Xact>> {
    let mut new_env = env.clone();
    for (key, value) in &plan.minted {
        new_env.set(key, value.expose())?;
    }
    if plan.steps.is_empty() {
        env_lock.write(&new_env)?;
        return Ok(Vec::new());
    }
    let sessions: Vec<Session> =
        sessions.into_iter().filter(|(d, _)| plan.steps.iter().any(|s| s.dbname == *d)).collect();
    let run = Transact { args, env_lock, crash, committed_before: &[] };
    run.run(env, &new_env, plan, &sessions).await
}

/// With `--restart`: the compose project recreating `plan`'s services, checked before anything
/// changes (`docker compose` is there).
fn compose_project(args: &RotateSecretsOptions, plan: &Plan) -> Result<Option<ComposeProject>> {
    let compose = args.rotation.restart.then(|| {
        ComposeProject::new(
            &args.rotation.env_file,
            &args.rotation.compose_file,
            args.rotation.project_directory.as_deref(),
        )
        .recreating(plan.services.clone())
    });
    if let Some(project) = &compose {
        restart::preflight(project)?;
    }
    Ok(compose)
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

fn resolve_target(args: &RotateSecretsOptions, env: &EnvFile, ui: &Ui) -> Result<Target> {
    let resolved = db::resolve(&args.rotation.connect, &connection_settings(env))?;
    resolved.warnings.iter().for_each(|warning| ui.warn(warning));
    Ok(resolved.target)
}

#[allow(clippy::too_many_arguments)]
fn report(
    args: &RotateSecretsOptions,
    ui: &Ui,
    plan: &Plan,
    dry_run: bool,
    xacts: &[Xact],
    restarted: &[&'static str],
    plan_ms: f64,
    started: Instant,
) -> Result<ExitCode> {
    match args.rotation.format {
        ReportFormat::Json => {
            let mut value = json!({
                "dry_run": dry_run,
                "env_file": args.rotation.env_file.display().to_string(),
                "plan": plan.to_json(),
                "transactions": xacts.iter().map(|x| json!({"database": x.dbname, "xid": x.xid})).collect::<Vec<_>>(),
                "restarted": restarted,
                "timings": {"plan_ms": plan_ms, "total_ms": ms_since(started)},
            });
            if dry_run {
                value["transactions"] = json!([]);
            }
            crate::ui::write_stdout(&format!("{value}\n"))?;
        }
        ReportFormat::Text if dry_run => {
            ui.info(&plan.to_text(&args.rotation.env_file.display().to_string()));
            ui.info("dry run: nothing was changed");
        }
        ReportFormat::Text => {
            ui.info(&format!(
                "rotated {} ({} database change(s)); {}",
                plan.keys.join(", "),
                plan.steps.len(),
                if restarted.is_empty() {
                    format!("recreate: {}", plan.services.join(" "))
                } else {
                    format!("recreated: {}", restarted.join(" "))
                }
            ));
        }
    }
    Ok(ExitCode::Success)
}
