//! `rotate-passwords`: the live rotation that cannot half-happen (SPEC §2).
//!
//! The pipeline reads top to bottom in [`rotate`]:
//! lock `.env` → look at a leftover pending file → refuse early → connect and discover → plan →
//! confirm → stage → transact → publish → verify, report, restart.
//!
//! The invariant that makes it safe: at every instant, `.env` or `<env>.pending` holds a
//! password the database accepts. The pending file is fsync'd before `BEGIN`; `.env` is
//! replaced only after `COMMIT`; a run that finds a pending file settles it before anything else,
//! and `--dry-run` only says what a real run would do with it.

mod discover;
mod plan;
mod recovery;
mod report;
mod sql;
mod transaction;
pub mod verifier;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::db::{self, Target};
use crate::envfile::{EnvFile, EnvFileError, LockedEnv, Publication};
use crate::error::{Error, ExitCode, Result};
pub use crate::limits::parse_duration;
use crate::limits::Limit;
use crate::secret::Secret;
use crate::secrets;
use crate::stack::connection::connection_settings;
use crate::stack::server::OwnServer;
use crate::stack::POSTGRES_PASSWORD;
use crate::ui::{ReportFormat, Ui};

use crate::rotation::crash::{self, CrashPoint};
use crate::rotation::restart;
use crate::rotation::{own_help, OwnHelp, RotationOptions};
use recovery::Leftover;
use report::{Recovery, Report, Timings};

/// Options of `rotate-passwords`: the options every rotation takes, with the help of the two
/// flags whose meaning is this command's own.
#[derive(Debug, Clone, clap::Args)]
#[command(mut_args(own_help(OWN_HELP)))]
pub struct RotateOptions {
    #[command(flatten)]
    pub rotation: RotationOptions,
}

/// The help lines of the shared flags whose meaning is `rotate-passwords`' own.
pub const OWN_HELP: OwnHelp = &[
    ("env_file", "The stack's .env: read for the connection and the old password, rewritten afterwards"),
    ("restart", "After a verified rotation, recreate the services that hold the password (docker compose)"),
];

/// Runs `rotate-passwords` on its own runtime.
pub fn run(args: &RotateOptions, ui: &Ui) -> Result<ExitCode> {
    let crash = CrashPoint::from_env()?;
    crate::db::runtime()?.block_on(rotate(args, ui, args.rotation.lock_timeout, crash))
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// How long discovery may go unanswered beyond its own lock waits.
const DISCOVERY_SILENCE_LIMIT: Limit = Limit::new("discovery-silence", Duration::from_secs(40));

/// The database to rotate, from the command line, the `.env` and the environment.
fn resolve_target(args: &RotateOptions, env: &EnvFile, ui: &Ui) -> Result<db::Target> {
    let resolved = db::resolve(&args.rotation.connect, &connection_settings(env))?;
    resolved.warnings.iter().for_each(|warning| ui.warn(warning));
    Ok(resolved.target)
}

async fn rotate(args: &RotateOptions, ui: &Ui, lock_timeout: Duration, crash: Option<CrashPoint>) -> Result<ExitCode> {
    let started = Instant::now();
    let (env_lock, env) = lock_and_read_env(args, ui)?;
    let target = resolve_target(args, &env, ui)?;
    ui.detail(&format!("connecting as {}", target.display()));
    let current_password = env.value(POSTGRES_PASSWORD).map(|v| Secret::new(v.to_owned()));

    // A pending file from an interrupted run is settled first. Finding out what it is changes
    // nothing; a committed one is published (no confirmation: that only makes .env agree with
    // the database), an uncommitted one is discarded only after the confirmation.
    let leftover = recovery::inspect(&env_lock, &target, current_password.as_ref(), ui).await?;
    if let Some(Leftover::Committed(new_password)) = leftover {
        return finish_interrupted_rotation(args, ui, &env_lock, &target, &new_password, started).await;
    }
    let compose = refuse_early_restart(args)?;

    let old_password = current_password.or_else(|| target.password());
    let (prepared, client, work_target) = plan(args, ui, &target, &env, old_password, started).await?;
    let plan_ms = ms_since(started);
    if args.rotation.dry_run {
        return dry_run(args, ui, &env_lock, &prepared, leftover.as_ref(), plan_ms, started);
    }
    refuse_unpublishable(args, ui, &env_lock)?;
    confirm(args, ui, &prepared, target.dbname())?;
    let interrupted = interruption();
    let recovery = discard_uncommitted(&env_lock, leftover, ui)?;

    env_lock.stage(&env, &prepared.new_env)?;
    ui.detail(&format!("staged {}", env_lock.pending_path().display()));
    crash::at(crash, CrashPoint::Staged);

    let work = transaction::Work { client: &client, session: &work_target, prepared: &prepared, lock_timeout };
    let committed = commit(&work, interrupted, &env_lock, ui).await?;
    crash::at(crash, CrashPoint::Committed);

    publish(&env_lock)?;
    ui.detail(&format!("published {}", args.rotation.env_file.display()));
    crash::at(crash, CrashPoint::Published);

    let login_roles: Vec<String> = prepared.plan.login_roles.iter().map(|r| (*r).to_owned()).collect();
    let (verification, verify_ms) = verify(&target, &login_roles, &prepared.new_password).await;
    let timings = Timings { plan_ms, transaction_ms: committed.transaction_ms, verify_ms, total_ms: ms_since(started) };
    let report = Report::applied(&prepared.plan, recovery, &committed, verification, timings);
    report_verify_restart(args, ui, &report, compose.as_ref())
}

/// Takes the `.env`'s lock, finishes an in-place write an interrupted run began (not for
/// `--dry-run`), reads the file, and removes temporary files a crashed run left.
fn lock_and_read_env(args: &RotateOptions, ui: &Ui) -> Result<(LockedEnv, EnvFile)> {
    let env_lock = ui.lock_env(&args.rotation.env_file, args.rotation.lock_wait)?;
    if !args.rotation.dry_run && env_lock.finish_interrupted_write()? {
        ui.info(&format!(
            "finished writing {}, which an interrupted run had begun to write in place",
            args.rotation.env_file.display()
        ));
    }
    let env = read_env(&env_lock, ui)?;
    if !args.rotation.dry_run {
        remove_leftover_temp_files(&env_lock, ui)?;
    }
    Ok((env_lock, env))
}

/// Whatever could make publishing fail after COMMIT is found before the question (an operator
/// who typed "yes" is not refused afterwards): an immutable `.env` or directory, an owner or mode
/// the new file could not be given.
fn refuse_unpublishable(args: &RotateOptions, ui: &Ui, env_lock: &LockedEnv) -> Result<()> {
    if env_lock.ensure_publishable()? == Publication::InPlace {
        ui.info(&format!(
            "{} is a mount point of its own (a single-file bind mount?): it will be written in place, \
             the pending file kept until that write is on disk",
            args.rotation.env_file.display()
        ));
    }
    Ok(())
}

/// `--restart` needs `docker compose`: checked before anything changes (not for `--dry-run`).
fn refuse_early_restart(args: &RotateOptions) -> Result<Option<restart::ComposeProject>> {
    let compose = args.rotation.restart.then(|| compose_project(args));
    if let (Some(project), false) = (&compose, args.rotation.dry_run) {
        restart::preflight(project)?;
    }
    Ok(compose)
}

/// Steps 1–3: discover, then the plan with its verifiers and rewritten `.env`.
async fn plan(
    args: &RotateOptions,
    ui: &Ui,
    target: &Target,
    env: &EnvFile,
    old_password: Option<Secret>,
    started: Instant,
) -> Result<(plan::Prepared, tokio_postgres::Client, Target)> {
    let lock_timeout = args.rotation.lock_timeout;
    // Discovery's statements are bounded by the server (lock_timeout, statement_timeout); this
    // bounds a server that stops answering altogether, while the .env lock is held.
    let discovery_limit = lock_timeout * 4 + DISCOVERY_SILENCE_LIMIT.get();
    let (discovery, client, work_target) =
        tokio::time::timeout(discovery_limit, discover::discover(target, lock_timeout)).await.map_err(|_| {
            Error::Database {
                step: "discovery".into(),
                reason: format!("{} stopped answering for {} s", target.host_port(), discovery_limit.as_secs()),
            }
        })??;
    refuse_missing_database(&client, target, lock_timeout).await?;
    let inputs = plan::Inputs {
        target: target.display(),
        env_file: args.rotation.env_file.clone(),
        env,
        old_password: old_password.as_ref(),
        own_server: OwnServer::new(|key| env.get(key).map(str::to_owned), &target.host(), target.port()),
    };
    let prepared = plan::prepare(&discovery, inputs, secrets::random_hex(16))?;
    ui.detail(&format!(
        "discovered in {:.1} ms: database {}, password_encryption {}, {} role(s) to change",
        ms_since(started),
        prepared.plan.database,
        prepared.plan.password_encryption.as_str(),
        prepared.plan.roles_to_change.len()
    ));
    Ok((prepared, client, work_target))
}

/// The stack's own database (`POSTGRES_DB`, or the URL's) must exist, dry run included: the
/// transaction runs in `_supabase`, but every service and the verification log in to this one,
/// so a typo there would only show after `COMMIT`, as failed logins (exit 4).
async fn refuse_missing_database(
    client: &tokio_postgres::Client,
    target: &Target,
    lock_timeout: Duration,
) -> Result<()> {
    let sql = "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1";
    let params: [(&(dyn tokio_postgres::types::ToSql + Sync), tokio_postgres::types::Type); 1] =
        [(&target.dbname(), tokio_postgres::types::Type::TEXT)];
    let found = db::bounded_read(client, lock_timeout, sql, &params)
        .await
        .map_err(|e| Error::Database { step: "discovery".into(), reason: db::describe(&e) })?;
    match found.first() {
        Some(_) => Ok(()),
        None => Err(Error::Precondition(format!(
            "the database {} does not exist on {} (POSTGRES_DB in the .env, or the database of --db-url); \
             the services and the verification log in to it, so nothing was changed: fix the name and run again",
            target.dbname(),
            target.host_port()
        ))),
    }
}

/// `--dry-run`: the plan, and what a real run would do with a pending file; nothing written.
fn dry_run(
    args: &RotateOptions,
    ui: &Ui,
    env_lock: &LockedEnv,
    prepared: &plan::Prepared,
    leftover: Option<&Leftover>,
    plan_ms: f64,
    started: Instant,
) -> Result<ExitCode> {
    let pending = env_lock.pending_path();
    match leftover {
        Some(Leftover::NeitherLive(why)) => ui.info(&format!(
            "found {} from an interrupted rotation, but neither its password nor the .env's is live ({why}): a \
             real run would discard it after the confirmation and rotate; this dry run leaves it in place",
            pending.display()
        )),
        Some(_) => ui.info(&format!(
            "found {} from an interrupted rotation that never committed: a real run would discard it \
             after the confirmation; this dry run leaves it in place",
            pending.display()
        )),
        None => {}
    }
    let recovery = leftover.is_some().then_some(Recovery::WouldDiscardUncommittedPending);
    print_report(ui, &Report::dry_run(&prepared.plan, recovery, plan_ms, ms_since(started)), args.rotation.format)?;
    Ok(ExitCode::Success)
}

/// The typed confirmation of a live rotation: `yes`, the database the transaction runs in
/// (`_supabase`) or the stack's own (`POSTGRES_DB`, the name the operator knows), then Enter.
fn confirm(args: &RotateOptions, ui: &Ui, prepared: &plan::Prepared, stack_database: &str) -> Result<()> {
    if !args.rotation.yes {
        ui.prompt_context(&prepared.plan.to_text());
    } else if args.rotation.format == ReportFormat::Text {
        ui.info(&prepared.plan.to_text());
    }
    ui.confirm_typed(
        "Rotate the password of these roles now?",
        &[prepared.plan.database.as_str(), stack_database],
        &format!("rotating the database passwords and rewriting {}", args.rotation.env_file.display()),
        args.rotation.yes,
    )
}

/// After the confirmation: the pending file of an interrupted run that never committed, or
/// whose password is not live any more, goes.
fn discard_uncommitted(env_lock: &LockedEnv, leftover: Option<Leftover>, ui: &Ui) -> Result<Option<Recovery>> {
    let why = match leftover {
        Some(Leftover::Uncommitted) => "an interrupted rotation that never committed".to_owned(),
        Some(Leftover::NeitherLive(found)) => {
            format!("an interrupted rotation whose password is not live any more ({found})")
        }
        Some(Leftover::Committed(_)) | None => return Ok(None),
    };
    env_lock.discard_pending()?;
    // Said once, here, with why (the text report leaves it out; JSON has it as `recovery`).
    ui.info(&format!("discarded {} from {why}", env_lock.pending_path().display()));
    Ok(Some(Recovery::DiscardedUncommittedPending))
}

/// Step 5: the transaction; a rollback removes the pending file, an undetermined outcome keeps
/// both files (exit 4).
async fn commit(
    work: &transaction::Work<'_>,
    interrupted: impl std::future::Future<Output = ()>,
    env_lock: &LockedEnv,
    ui: &Ui,
) -> Result<transaction::Applied> {
    match transaction::apply(work, interrupted).await {
        Ok(committed) => {
            match committed.transaction_ms {
                Some(ms) => ui.detail(&format!("committed; BEGIN to COMMIT took {ms:.1} ms")),
                None => {
                    ui.warn("the connection broke during COMMIT; the database holds the new password: it committed")
                }
            }
            Ok(committed)
        }
        Err(transaction::Failure::RolledBack(err)) => {
            discard_after_rollback(env_lock, ui);
            Err(err)
        }
        Err(transaction::Failure::Undetermined(why)) => Err(undetermined(env_lock, &why)),
    }
}

/// Finishes a rotation that an interrupted run committed: publish its pending file, then verify,
/// report and restart like any rotation. `--dry-run` only says so.
async fn finish_interrupted_rotation(
    args: &RotateOptions,
    ui: &Ui,
    env_lock: &LockedEnv,
    target: &Target,
    new_password: &Secret,
    started: Instant,
) -> Result<ExitCode> {
    let pending = env_lock.pending_path();
    if args.rotation.dry_run {
        ui.info(&format!(
            "found {} from an interrupted rotation that had committed: a real run would publish its new \
             password into {} (no second rotation); this dry run changes nothing",
            pending.display(),
            args.rotation.env_file.display()
        ));
        print_report(ui, &Report::would_finish(&args.rotation.env_file, ms_since(started)), args.rotation.format)?;
        return Ok(ExitCode::Success);
    }
    let compose = args.rotation.restart.then(|| compose_project(args));
    if let Some(project) = &compose {
        restart::preflight(project)?;
    }
    ui.info(&format!(
        "found {} from an interrupted rotation that had committed: applying its new password to the .env, \
         no second rotation",
        pending.display()
    ));
    publish(env_lock)?;
    // The operator's own credentials first (another superuser's --db-url), then the admin
    // role with the password the rotation gave it.
    let listed = match discover::login_roles(target, new_password).await {
        Ok(roles) => Ok(roles),
        Err(_) => discover::login_roles(&target.as_login(target.user(), new_password), new_password).await,
    };
    let login_roles = listed.unwrap_or_else(|err| {
        ui.warn(&format!("cannot list the LOGIN roles ({err}); verifying those the stack creates with LOGIN"));
        crate::stack::roles::login_by_default().map(str::to_owned).collect()
    });
    let (verification, verify_ms) = verify(target, &login_roles, new_password).await;
    let report = Report::recovered(&args.rotation.env_file, verification, verify_ms, ms_since(started));
    report_verify_restart(args, ui, &report, compose.as_ref())
}

/// Step 7: every LOGIN role logs in with the new password; the results and how long it took.
async fn verify(target: &Target, roles: &[String], password: &Secret) -> (Vec<db::LoginResult>, f64) {
    let started = Instant::now();
    let results = db::logins(target, roles, password).await;
    (results, ms_since(started))
}

/// The shared tail of every run that changed the database: print the report, exit 4 when a
/// role could not log in, then `--restart`.
fn report_verify_restart(
    args: &RotateOptions,
    ui: &Ui,
    report: &Report,
    compose: Option<&restart::ComposeProject>,
) -> Result<ExitCode> {
    // The database has changed: a report that cannot be written (a closed pipe, a full disk)
    // must not stop the verification and the restart, nor pass for "nothing changed" (exit 1).
    let printed = print_report(ui, report, args.rotation.format);
    verification_outcome(report, &args.rotation.env_file)?;
    if let Some(project) = compose {
        let services = restart::restart(project)?;
        ui.info(&format!("recreated {}", services.join(" ")));
    }
    printed.map_err(|_| Error::PartiallyApplied {
        what: "the rotation is complete, but its report could not be written to standard output".into(),
        recovery: format!(
            "{env} and the database agree on the new password; `pmoves-secrets check --db --env-file {env}` shows \
             the state",
            env = args.rotation.env_file.display()
        ),
    })?;
    Ok(ExitCode::Success)
}

fn compose_project(args: &RotateOptions) -> restart::ComposeProject {
    restart::ComposeProject::new(
        &args.rotation.env_file,
        &args.rotation.compose_file,
        args.rotation.project_directory.as_deref(),
    )
}

/// The `.env` under the lock; it must exist (rotation rewrites the stack's own file).
fn read_env(env_lock: &LockedEnv, ui: &Ui) -> Result<EnvFile> {
    let path = env_lock.path();
    let env = env_lock.read()?.ok_or_else(|| Error::BadValue {
        path: path.to_owned(),
        key: POSTGRES_PASSWORD.into(),
        problem: "the file does not exist; rotate-passwords rewrites the stack's .env, so point --env-file at it"
            .into(),
    })?;
    for key in env.duplicate_keys() {
        ui.warn(&format!("{key} appears more than once in {}; every occurrence is updated", path.display()));
    }
    Ok(env)
}

/// A temporary file beside `.env` left by a killed run holds every secret: the next real run
/// removes it (under the `.env` lock, so it belongs to no live writer) and says so.
fn remove_leftover_temp_files(env_lock: &LockedEnv, ui: &Ui) -> Result<()> {
    for path in env_lock.remove_leftover_temp_files()? {
        ui.info(&format!("removed {}, a temporary file left by an interrupted run", path.display()));
    }
    Ok(())
}

/// Step 6: the rotated values go into `.env` as it is now. Failing here leaves the new password
/// in the pending file, which the next run publishes.
fn publish(env_lock: &LockedEnv) -> Result<()> {
    env_lock.publish_pending().map_err(|err| Error::PartiallyApplied {
        what: format!("the database committed, but publishing the new .env failed: {}", publish_failure(&err)),
        recovery: match err {
            EnvFileError::HandEdited { .. } => format!(
                "the database has the password in {pending}; once {env} has those lines, run this command again: \
                 it detects the committed rotation and finishes it",
                pending = env_lock.pending_path().display(),
                env = env_lock.path().display()
            ),
            _ => format!(
                "the new password is in {pending}; fix the cause, then run this command again: it detects the \
                 committed rotation and applies it to {env} as it is then (do not move {pending} over {env}: \
                 that would undo any edit made since)",
                pending = env_lock.pending_path().display(),
                env = env_lock.path().display()
            ),
        },
    })
}

/// Why publishing failed, without the "nothing was changed" that ends a plain write error:
/// after COMMIT, that would contradict the database.
fn publish_failure(err: &EnvFileError) -> String {
    match err {
        EnvFileError::Write { path, error } => format!("{} could not be replaced ({error})", path.display()),
        EnvFileError::Owner { uid, gid, error, .. } => {
            format!("the new file could not be given the owner uid {uid}, gid {gid} ({error})")
        }
        other => other.to_string(),
    }
}

fn discard_after_rollback(env_lock: &LockedEnv, ui: &Ui) {
    if let Err(err) = env_lock.discard_pending() {
        ui.warn(&format!(
            "the transaction rolled back, but {} could not be removed ({err}); the next run discards it",
            env_lock.pending_path().display()
        ));
    }
}

/// Exit 4 when nobody can tell whether the rotation committed: both files are kept.
fn undetermined(env_lock: &LockedEnv, why: &str) -> Error {
    Error::OutcomeUnknown {
        what: format!("it cannot be told whether the rotation committed ({why})"),
        recovery: format!(
            "{pending} holds the new password and {env} the old one; once the database is reachable, run \
             rotate-passwords again and it settles which one is live without changing the database; \
             do not delete either file until then",
            pending = env_lock.pending_path().display(),
            env = env_lock.path().display()
        ),
    }
}

/// Every LOGIN role logged in; otherwise exit 4 (the database has changed).
fn verification_outcome(report: &Report, env_file: &Path) -> Result<()> {
    let failed: Vec<&str> = report.verification.iter().filter(|r| !r.ok).map(|r| r.role.as_str()).collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(Error::PartiallyApplied {
        what: format!("{} LOGIN role(s) could not log in with the new password: {}", failed.len(), failed.join(", ")),
        recovery: format!(
            "{} and the database agree on the new password; check pg_hba.conf, the roles' VALID UNTIL and \
             CONNECTION LIMIT, then `pmoves-secrets check --db --env-file {}`",
            env_file.display(),
            env_file.display()
        ),
    })
}

fn print_report(ui: &Ui, report: &Report, format: ReportFormat) -> Result<()> {
    let text = match format {
        ReportFormat::Text => report.to_text(),
        ReportFormat::Json => report.to_json(),
    };
    ui.report(format, &text)
}

/// Resolves when the operator presses Ctrl-C or the process gets SIGTERM. Registered only
/// after the confirmation: until then the default handling (terminate) is safe, because
/// nothing has changed yet.
fn interruption() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    // The shield keeps the signals from ending the process while the transaction is open.
    let shield = crate::interrupt::shield();
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    async move {
        let _shield = shield;
        match (int, term) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("0s").is_none());
        assert!(parse_duration("fast").is_none());
        assert!(parse_duration("5h").is_none());
    }

    #[test]
    fn a_publish_failure_after_commit_never_says_nothing_changed() {
        let err = EnvFileError::Write {
            path: ".env".into(),
            error: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(!publish_failure(&err).contains("nothing was changed"));
    }
}
