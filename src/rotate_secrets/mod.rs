//! `rotate-secrets`: every other secret of the stack rotated live, with every copy it has outside
//! `.env` (SPEC §8).
//!
//! The pipeline reads top to bottom in [`rotate`]: lock `.env` → settle a pending file left by an
//! interrupted run → choose keys and mint → look at the copies in the database → plan →
//! `--dry-run` stops → typed confirmation → refuse early (`--restart`, publishable `.env`) →
//! without database copies: one atomic rewrite of `.env`; with them: one transaction per
//! database holding copies, each on a silenced session, their ids recorded in the pending file
//! (staged before any database change), then `COMMIT`, publish → `--restart` → report.
//!
//! The copies and what happens to each are [`crate::stack::copies`]; reading them is
//! [`crate::service_copies`]; the shared machinery is [`crate::rotation`].

mod plan;

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use crate::db::{self, Target};
use crate::envfile::{EnvFile, LockedEnv};
use crate::error::{Error, ExitCode, Result};
use crate::rotation::crash::{self, CrashPoint};
use crate::rotation::restart::{self, ComposeProject};
use crate::rotation::silence;
use crate::rotation::xact::{self, Status, Xact};
use crate::rotation::{own_help, OwnHelp, RotationOptions, ROTATION_LOCK};
use crate::stack::connection::connection_settings;
use crate::stack::copies;
use crate::ui::{ReportFormat, Ui};

use plan::Plan;

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
    if let Some(done) = settle_leftover(args, ui, &env_lock, &env).await? {
        return Ok(done);
    }
    let minted = plan::mint(&env, &keys)?;
    let needs_database = minted.iter().any(|(key, _)| copies::has_database_copies(key));
    let mut sessions: Vec<(String, Client)> = Vec::new();
    let (steps, left) = if needs_database {
        let target = resolve_target(args, &env, ui)?;
        let main = target.connect().await?;
        let found = plan::database_steps(&target, &main, &env, &minted).await?;
        sessions.push((target.dbname().to_owned(), main));
        for dbname in found.0.iter().map(|s| s.dbname.clone()) {
            if !sessions.iter().any(|(d, _)| *d == dbname) {
                sessions.push((dbname.clone(), target.in_database(&dbname).connect().await?));
            }
        }
        found
    } else {
        (Vec::new(), Vec::new())
    };
    let services = plan::services(&minted);
    let plan = Plan { keys, minted, steps, left_to_services: left, services };
    let plan_ms = ms_since(started);
    if args.rotation.dry_run {
        return report(args, ui, &plan, true, &[], &[], plan_ms, started);
    }
    if args.rotation.format == ReportFormat::Text || !args.rotation.yes {
        ui.info(&plan.to_text(&args.rotation.env_file.display().to_string()));
    }
    ui.confirm_typed(
        "Rotate these secrets now?",
        &[],
        &format!("rotating {} and rewriting {}", plan.keys.join(", "), args.rotation.env_file.display()),
        args.rotation.yes,
    )?;
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
    env_lock.ensure_publishable()?;
    let mut new_env = env.clone();
    for (key, value) in &plan.minted {
        new_env.set(key, value.expose())?;
    }
    let xacts = if plan.steps.is_empty() {
        env_lock.write(&new_env)?;
        Vec::new()
    } else {
        let sessions: Vec<(String, Client)> =
            sessions.into_iter().filter(|(d, _)| plan.steps.iter().any(|s| s.dbname == *d)).collect();
        transact(args, &env_lock, &env, &new_env, &plan, &sessions, crash).await?
    };
    crash::at(crash, CrashPoint::Published);
    let restarted = match &compose {
        Some(project) => restart::restart(project)?,
        None => Vec::new(),
    };
    report(args, ui, &plan, false, &xacts, &restarted, plan_ms, started)
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

fn resolve_target(args: &RotateSecretsOptions, env: &EnvFile, ui: &Ui) -> Result<Target> {
    let resolved = db::resolve(&args.rotation.connect, &connection_settings(env))?;
    resolved.warnings.iter().for_each(|warning| ui.warn(warning));
    Ok(resolved.target)
}

/// One transaction per database, on silenced sessions: all begun and their ids recorded in the
/// staged pending file before any copy changes; committed one after the other; then published.
async fn transact(
    args: &RotateSecretsOptions,
    env_lock: &LockedEnv,
    base_env: &EnvFile,
    new_env: &EnvFile,
    plan: &Plan,
    sessions: &[(String, Client)],
    crash: Option<CrashPoint>,
) -> Result<Vec<Xact>> {
    let mut xacts = Vec::new();
    let begun = async {
        for (i, (dbname, client)) in sessions.iter().enumerate() {
            silence::silence(client).await?;
            let lock_ms = args.rotation.lock_timeout.as_millis().max(1);
            client
                .batch_execute(&format!("BEGIN; SET LOCAL lock_timeout = '{lock_ms}ms'"))
                .await
                .map_err(|e| failed("BEGIN", &e))?;
            // The rotation lock is cluster-wide: taken once, in the transaction that commits
            // last, it keeps every other rotation out until this run has committed everywhere.
            if i + 1 == sessions.len() {
                client
                    .batch_execute(ROTATION_LOCK)
                    .await
                    .map_err(|e| failed("waiting for another rotation (the rotation lock on pg_authid)", &e))?;
            }
            let xid = xact::current(client)
                .await
                .map_err(|reason| Error::Database { step: "txid_current()".into(), reason })?;
            xacts.push(Xact { dbname: dbname.clone(), xid });
        }
        Ok::<(), Error>(())
    };
    if let Err(err) = begun.await {
        rollback(sessions).await;
        return Err(err);
    }
    let staged = EnvFile::parse(&format!("{}{}", xact::marker(&xacts), new_env.render().as_str()), None)?;
    if let Err(err) = env_lock.stage(base_env, &staged) {
        rollback(sessions).await;
        return Err(err.into());
    }
    crash::at(crash, CrashPoint::Staged);
    if let Err(err) = apply(plan, sessions).await {
        rollback(sessions).await;
        discard(env_lock);
        return Err(err);
    }
    for (i, (dbname, client)) in sessions.iter().enumerate() {
        if let Err(e) = client.batch_execute("RESET ALL; COMMIT").await {
            if i == 0 {
                // Nothing committed yet unless this COMMIT did: ask.
                return settle_after_failed_commit(args, env_lock, &xacts, dbname, &e).await;
            }
            return Err(Error::OutcomeUnknown {
                what: format!("COMMIT in database {dbname} failed ({})", db::describe(&e)),
                recovery: format!(
                    "run rotate-secrets again: it asks the database which transactions committed; keep {} until then",
                    env_lock.pending_path().display()
                ),
            });
        }
    }
    crash::at(crash, CrashPoint::Committed);
    publish(env_lock)?;
    Ok(xacts)
}

fn failed(step: &str, e: &tokio_postgres::Error) -> Error {
    Error::Database { step: step.to_owned(), reason: format!("{}; nothing was changed", db::describe(e)) }
}

async fn apply(plan: &Plan, sessions: &[(String, Client)]) -> Result<()> {
    for step in &plan.steps {
        let Some((_, client)) = sessions.iter().find(|(d, _)| *d == step.dbname) else { continue };
        let outcome = if step.params.is_empty() {
            client.batch_execute(&step.sql).await
        } else {
            let texts: Vec<&str> = step.params.iter().map(|p| p.expose()).collect();
            let params: Vec<&(dyn ToSql + Sync)> = texts.iter().map(|t| t as &(dyn ToSql + Sync)).collect();
            client.execute(step.sql.as_str(), &params).await.map(|_| ())
        };
        outcome.map_err(|e| failed(&format!("{} (database {})", step.what, step.dbname), &e))?;
    }
    Ok(())
}

async fn rollback(sessions: &[(String, Client)]) {
    for (_, client) in sessions {
        let _ = client.batch_execute("ROLLBACK; RESET ALL").await;
    }
}

fn discard(env_lock: &LockedEnv) {
    let _ = env_lock.discard_pending();
}

/// The first `COMMIT` failed: ask the database (from a new session) whether it committed.
async fn settle_after_failed_commit(
    args: &RotateSecretsOptions,
    env_lock: &LockedEnv,
    xacts: &[Xact],
    dbname: &str,
    e: &tokio_postgres::Error,
) -> Result<Vec<Xact>> {
    let env = env_lock.read_existing()?;
    let target = db::resolve(&args.rotation.connect, &connection_settings(&env))?.target;
    let client = target.connect().await?;
    match xact::status(&client, xacts[0].xid).await {
        Ok(Status::Aborted) => {
            discard(env_lock);
            Err(failed(&format!("COMMIT in database {dbname}"), e))
        }
        Ok(Status::Committed) if xacts.len() == 1 => {
            publish(env_lock)?;
            Ok(xacts.to_vec())
        }
        _ => Err(Error::OutcomeUnknown {
            what: format!("COMMIT in database {dbname} failed ({})", db::describe(e)),
            recovery: format!(
                "run rotate-secrets again: it asks the database which transactions committed; keep {} until then",
                env_lock.pending_path().display()
            ),
        }),
    }
}

/// Publishes the pending file onto the `.env` as it is now (only the rotated keys are applied,
/// so neither the marker line nor an older copy of another line reaches it).
fn publish(env_lock: &LockedEnv) -> Result<()> {
    let failed = |err: &dyn std::fmt::Display| Error::PartiallyApplied {
        what: format!("the database committed, but publishing the new .env failed: {err}"),
        recovery: format!(
            "the complete new .env is in {}; fix the cause and run rotate-secrets again (it finds the committed run)",
            env_lock.pending_path().display()
        ),
    };
    env_lock.publish_pending().map_err(|e| failed(&e))?;
    let published = EnvFile::read(env_lock.path()).map_err(|e| failed(&e))?;
    let text = published.render();
    if let Some(rest) = xact::strip_marker(&text) {
        let clean = EnvFile::parse(rest, None).map_err(|e| failed(&e))?;
        env_lock.write(&clean).map_err(|e| failed(&e))?;
    }
    Ok(())
}

/// A pending file from an interrupted run is settled before anything else: committed → publish
/// and stop; never committed → discard (after the confirmation, not in a dry run) and go on.
async fn settle_leftover(
    args: &RotateSecretsOptions,
    ui: &Ui,
    env_lock: &LockedEnv,
    env: &EnvFile,
) -> Result<Option<ExitCode>> {
    let Some(pending) = env_lock.read_pending()? else { return Ok(None) };
    let text = pending.render();
    let Some(xacts) = xact::parse_marker(&text) else {
        return Err(Error::Precondition(format!(
            "{} is left by an interrupted rotate-passwords run; run `pmoves-secrets rotate-passwords` to settle it \
             first; nothing was changed",
            env_lock.pending_path().display()
        )));
    };
    let target = resolve_target(args, env, ui)?;
    let client = target.connect().await?;
    let mut statuses = Vec::new();
    for x in &xacts {
        let status =
            wait_for(&client, x.xid, args.rotation.lock_timeout).await.map_err(|why| Error::OutcomeUnknown {
                what: format!("it cannot be told whether the interrupted rotation committed ({why})"),
                recovery: format!(
                    "keep {} and run rotate-secrets again once the database answers",
                    env_lock.pending_path().display()
                ),
            })?;
        statuses.push(status);
    }
    if statuses.iter().all(|s| *s == Status::Committed) {
        if args.rotation.dry_run {
            ui.info("an interrupted rotation committed: a real run would publish its .env and stop");
            return Ok(Some(ExitCode::Success));
        }
        publish(env_lock)?;
        ui.info(&format!(
            "an interrupted rotation had committed: {} now holds its values (nothing else was done)",
            env_lock.path().display()
        ));
        return Ok(Some(ExitCode::Success));
    }
    if statuses.iter().all(|s| *s == Status::Aborted) {
        if args.rotation.dry_run {
            ui.info("an interrupted rotation never committed: a real run would discard its pending file");
            return Ok(None);
        }
        ui.info(&format!("an interrupted rotation never committed: {} discarded", env_lock.pending_path().display()));
        env_lock.discard_pending()?;
        return Ok(None);
    }
    let committed: Vec<&str> =
        xacts.iter().zip(&statuses).filter(|(_, s)| **s == Status::Committed).map(|(x, _)| x.dbname.as_str()).collect();
    Err(Error::PartiallyApplied {
        what: format!("an interrupted rotation committed in database(s) {} only", committed.join(", ")),
        recovery: format!(
            "{} holds the new values; publish it (mv it over the .env), then run `pmoves-secrets check --db` and \
             rotate the keys it reports again",
            env_lock.pending_path().display()
        ),
    })
}

/// The status of `xid`, waiting up to `limit` while it is still running.
async fn wait_for(client: &Client, xid: i64, limit: Duration) -> std::result::Result<Status, String> {
    let deadline = Instant::now() + limit.max(Duration::from_secs(1));
    loop {
        match xact::status(client, xid).await? {
            Status::InProgress if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Status::InProgress => return Err(format!("transaction {xid} is still running")),
            done => return Ok(done),
        }
    }
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
