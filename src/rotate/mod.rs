//! `rotate-passwords`: the live rotation that cannot half-happen (SPEC §2).
//!
//! The pipeline reads top to bottom in [`rotate`]:
//! lock `.env` → resolve a leftover pending file → connect → discover → plan → confirm →
//! stage → transact → publish → verify → report.
//!
//! The invariant that makes it safe: at every instant, `.env` or `<env>.pending` holds a
//! password the database accepts. The pending file is fsync'd before `BEGIN`; `.env` is
//! replaced only after `COMMIT`; a run that finds a pending file settles it before anything else.

mod discover;
mod plan;
mod recovery;
mod report;
mod restart;
mod silence;
mod transaction;
pub mod verifier;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::db::{self, ConnectOptions, Target};
use crate::envfile::LockedEnv;
use crate::error::{Error, ExitCode, Result};
use crate::secrets::{self, Secret};
use crate::stack::POSTGRES_PASSWORD;
use crate::ui::{ReportFormat, Ui};

use recovery::Holder;
use report::{Recovery, Report, Timings};
use transaction::Failure;

/// The variable that makes the process abort at a step, so tests can crash it on purpose.
pub const CRASH_VAR: &str = "PMOVES_SECRETS_CRASH_AT";

/// Where a test asked the process to die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CrashPoint {
    /// After the pending file is staged, before `BEGIN`.
    Staged,
    /// After `COMMIT`, before the pending file is published.
    Committed,
    /// After publishing, before verification.
    Published,
}

impl CrashPoint {
    fn from_env() -> Result<Option<Self>> {
        match std::env::var(CRASH_VAR).ok().as_deref() {
            None | Some("") => Ok(None),
            Some("after-stage") => Ok(Some(CrashPoint::Staged)),
            Some("after-commit") => Ok(Some(CrashPoint::Committed)),
            Some("after-publish") => Ok(Some(CrashPoint::Published)),
            Some(other) => Err(Error::Usage(format!(
                "{CRASH_VAR}='{other}' is not one of after-stage, after-commit, after-publish"
            ))),
        }
    }
}

/// Aborts the process (no destructors, no cleanup) when `at` is the requested crash point.
fn crash_if(requested: Option<CrashPoint>, at: CrashPoint) {
    if requested == Some(at) {
        std::process::abort();
    }
}

/// What `rotate-passwords` is asked to do, resolved from the command line.
#[derive(Debug, Clone)]
pub struct RotateOptions {
    /// The stack's `.env`: read for the connection and the old password, rewritten afterwards.
    pub env_file: PathBuf,
    /// How to reach the database.
    pub connect: ConnectOptions,
    /// How long to wait for a lock before giving up and rolling back.
    pub lock_timeout: Duration,
    /// Print the plan and change nothing.
    pub dry_run: bool,
    /// Do not ask for confirmation.
    pub yes: bool,
    /// Report format.
    pub format: ReportFormat,
    /// After a verified rotation, recreate the services that hold the password.
    pub restart: bool,
    /// Compose files of the stack, for `restart`.
    pub compose_file: Vec<PathBuf>,
    /// Compose project directory, for `restart` (default: the `.env`'s directory).
    pub project_directory: Option<PathBuf>,
}

/// Parses a `--lock-timeout`: `5s`, `500ms`, `1m`, or a bare number of seconds, between 1 ms
/// and 1 h; `None` otherwise.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => return None,
    };
    (0.001..=3600.0).contains(&seconds).then(|| Duration::from_secs_f64(seconds))
}

/// Runs `rotate-passwords` on its own runtime.
pub fn run(args: &RotateOptions, ui: &Ui) -> Result<ExitCode> {
    let lock_timeout = args.lock_timeout;
    let crash = CrashPoint::from_env()?;
    crate::db::runtime()?.block_on(rotate(args, ui, lock_timeout, crash))
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

async fn rotate(args: &RotateOptions, ui: &Ui, lock_timeout: Duration, crash: Option<CrashPoint>) -> Result<ExitCode> {
    let started = Instant::now();
    let env_lock = lock_env(&args.env_file, ui)?;
    let env = env_lock.read()?.ok_or_else(|| Error::BadValue {
        path: args.env_file.clone(),
        key: POSTGRES_PASSWORD.into(),
        problem: "the file does not exist; rotate-passwords rewrites the stack's .env, so point --env-file at it"
            .into(),
    })?;
    for key in env.duplicate_keys() {
        ui.warn(&format!("{key} appears more than once in {}; every occurrence is updated", args.env_file.display()));
    }
    let target = db::resolve(&args.connect, Some(&env), ui)?;
    ui.detail(&format!("connecting as {}", target.display()));
    let current_password = env.get(POSTGRES_PASSWORD).filter(|v| !v.is_empty()).map(|v| Secret::new(v.to_owned()));

    let mut recovery = None;
    if let Some(outcome) = settle_pending(&env_lock, &target, current_password.as_ref(), ui).await? {
        match outcome {
            Settled::Finished(new_password) => {
                return finish_recovered(args, ui, &target, &new_password, started).await;
            }
            Settled::Discarded => recovery = Some(Recovery::DiscardedUncommittedPending),
        }
    }

    let (discovery, client, work_target) = discover::discover(&target).await?;
    let old_password = current_password.or_else(|| target.password());
    let prepared = plan::prepare(
        &discovery,
        target.display(),
        args.env_file.clone(),
        &env,
        old_password.as_ref(),
        secrets::random_hex(16),
    )?;
    let plan_ms = ms_since(started);
    ui.detail(&format!(
        "discovered in {plan_ms:.1} ms: database {}, password_encryption {}, {} of 12 roles present",
        prepared.plan.database,
        prepared.plan.password_encryption.as_str(),
        prepared.plan.roles_to_change.len()
    ));

    if args.dry_run {
        let report = Report::dry_run(&prepared.plan, recovery, plan_ms, ms_since(started));
        print_report(&report, args.format)?;
        return Ok(ExitCode::Success);
    }

    if args.format == ReportFormat::Text || !args.yes {
        ui.info(&prepared.plan.to_text());
    }
    ui.confirm(
        "Rotate the password of these roles now?",
        &format!("rotating the database passwords and rewriting {}", args.env_file.display()),
        args.yes,
    )?;
    let interrupted = interruption();

    env_lock.stage(&prepared.new_env)?;
    ui.detail(&format!("staged {}", env_lock.pending_path().display()));
    crash_if(crash, CrashPoint::Staged);

    let applied = match transaction::apply(&client, &work_target, &prepared, lock_timeout, interrupted).await {
        Ok(applied) => applied,
        Err(Failure::RolledBack(err)) => {
            discard_after_rollback(&env_lock, ui);
            return Err(err);
        }
        Err(Failure::Ambiguous(reason)) => {
            ui.warn(&format!(
                "the connection broke during COMMIT ({reason}); asking the database which password it holds"
            ));
            match recovery::which_password(&work_target, &prepared.new_password, old_password.as_ref()).await {
                // Every statement had succeeded before COMMIT was sent, so the plan happened;
                // only the window's length is unknown.
                Holder::Pending => transaction::Applied {
                    analytics_rows_updated: prepared.plan.analytics_rows.map_or(0, |n| n.unsigned_abs()),
                    analytics_rows_without_user: 0,
                    supavisor_reset: prepared.plan.supavisor_owner.is_some(),
                    transaction_ms: f64::NAN,
                },
                Holder::Current => {
                    discard_after_rollback(&env_lock, ui);
                    return Err(Error::Database { step: "COMMIT".into(), reason });
                }
                Holder::Unknown(why) => return Err(unknown_outcome(&env_lock, &why)),
            }
        }
    };
    ui.detail(&format!("committed; BEGIN to COMMIT took {:.1} ms", applied.transaction_ms));
    crash_if(crash, CrashPoint::Committed);

    publish(&env_lock)?;
    ui.detail(&format!("published {}", args.env_file.display()));
    crash_if(crash, CrashPoint::Published);

    let verify_started = Instant::now();
    let verification = db::logins(&target, &prepared.plan.login_roles, &prepared.new_password).await;
    let verify_ms = ms_since(verify_started);

    let report = Report::applied(
        &prepared.plan,
        recovery,
        &applied,
        verification,
        Timings { plan_ms, transaction_ms: applied.transaction_ms, verify_ms, total_ms: ms_since(started) },
    );
    print_report(&report, args.format)?;
    verification_outcome(&report, &args.env_file)?;
    restart_if_asked(args, ui)
}

/// `--restart`: recreate the services holding the password, after a verified rotation.
fn restart_if_asked(args: &RotateOptions, ui: &Ui) -> Result<ExitCode> {
    if !args.restart {
        return Ok(ExitCode::Success);
    }
    let project = restart::ComposeProject {
        files: args.compose_file.clone(),
        directory: args.project_directory.clone().unwrap_or_else(|| restart::default_directory(&args.env_file)),
        env_file: args.env_file.clone(),
    };
    let services = restart::restart(&project)?;
    ui.info(&format!("recreated {}", services.join(" ")));
    Ok(ExitCode::Success)
}

/// Takes the `.env` lock, saying so when another run holds it: waiting silently at 2 a.m.
/// looks like a hang.
fn lock_env(path: &Path, ui: &Ui) -> Result<LockedEnv> {
    if let Some(lock) = LockedEnv::try_acquire(path)? {
        return Ok(lock);
    }
    ui.info(&format!("waiting for another pmoves-secrets run that holds the lock on {}…", path.display()));
    Ok(LockedEnv::acquire(path)?)
}

/// What settling a leftover pending file came to.
enum Settled {
    /// The interrupted rotation had committed; `.env` now has its password.
    Finished(Secret),
    /// It had not; the pending file is gone and the requested rotation goes on.
    Discarded,
}

/// Resolves `<env>.pending` from an interrupted run, before anything else (SPEC §2).
async fn settle_pending(
    env_lock: &LockedEnv,
    target: &Target,
    current: Option<&Secret>,
    ui: &Ui,
) -> Result<Option<Settled>> {
    let pending_path = env_lock.pending_path();
    let pending = match env_lock.read_pending() {
        Ok(Some(pending)) => pending,
        Ok(None) => return Ok(None),
        Err(err) => {
            // Staging completes (fsync) before BEGIN, so a pending file that cannot be read
            // back was never the basis of a commit.
            ui.warn(&format!(
                "{} is unreadable ({err}); it cannot stem from a committed rotation, discarding it",
                pending_path.display()
            ));
            env_lock.discard_pending()?;
            return Ok(Some(Settled::Discarded));
        }
    };
    let Some(new_password) =
        pending.get(POSTGRES_PASSWORD).filter(|v| !v.is_empty()).map(|v| Secret::new(v.to_owned()))
    else {
        ui.warn(&format!("{} has no {POSTGRES_PASSWORD}; discarding it", pending_path.display()));
        env_lock.discard_pending()?;
        return Ok(Some(Settled::Discarded));
    };
    if current.is_some_and(|c| c == &new_password) {
        env_lock.discard_pending()?;
        return Ok(Some(Settled::Discarded));
    }
    match recovery::which_password(target, &new_password, current).await {
        Holder::Pending => {
            ui.info(&format!(
                "found {} from an interrupted rotation that had committed: publishing it, no second rotation",
                pending_path.display()
            ));
            publish(env_lock)?;
            Ok(Some(Settled::Finished(new_password)))
        }
        Holder::Current => {
            ui.info(&format!(
                "found {} from an interrupted rotation that never committed: discarding it and rotating as asked",
                pending_path.display()
            ));
            env_lock.discard_pending()?;
            Ok(Some(Settled::Discarded))
        }
        Holder::Unknown(why) => Err(unknown_outcome(env_lock, &why)),
    }
}

/// Steps 7–8 for a rotation that an earlier, interrupted run committed.
async fn finish_recovered(
    args: &RotateOptions,
    ui: &Ui,
    target: &Target,
    new_password: &Secret,
    started: Instant,
) -> Result<ExitCode> {
    let admin = target.as_login(target.user(), new_password);
    let login_roles = discover::login_roles(&admin).await.unwrap_or_else(|err| {
        ui.warn(&format!("cannot list the LOGIN roles ({err}); verifying the admin role only"));
        vec![target.user().to_owned()]
    });
    let roles: Vec<&str> = login_roles.iter().map(String::as_str).collect();
    let verify_started = Instant::now();
    let verification = db::logins(target, &roles, new_password).await;
    let verify_ms = ms_since(verify_started);
    let report = Report::recovered(&args.env_file, verification, verify_ms, ms_since(started));
    print_report(&report, args.format)?;
    verification_outcome(&report, &args.env_file)?;
    restart_if_asked(args, ui)
}

/// Step 6: the pending file becomes `.env`. Failing here leaves the new password in the
/// pending file, which the next run publishes.
fn publish(env_lock: &LockedEnv) -> Result<()> {
    env_lock.publish_pending().map_err(|err| Error::PartiallyApplied {
        what: format!("publishing the new .env failed ({err})"),
        recovery: format!(
            "the complete new .env is in {pending}; run this command again to publish it (it detects \
             the committed rotation), or move it into place yourself: mv {pending} {env}",
            pending = env_lock.pending_path().display(),
            env = env_lock.path().display()
        ),
    })
}

fn discard_after_rollback(env_lock: &LockedEnv, ui: &Ui) {
    if let Err(err) = env_lock.discard_pending() {
        ui.warn(&format!(
            "the transaction rolled back, but {} could not be removed ({err}); the next run discards it",
            env_lock.pending_path().display()
        ));
    }
}

fn unknown_outcome(env_lock: &LockedEnv, why: &str) -> Error {
    Error::PartiallyApplied {
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

fn print_report(report: &Report, format: ReportFormat) -> Result<()> {
    let text = match format {
        ReportFormat::Text => report.to_text(),
        ReportFormat::Json => report.to_json(),
    };
    crate::ui::write_stdout(&text)
}

/// Resolves when the operator presses Ctrl-C or the process gets SIGTERM. Registered only
/// after the confirmation: until then the default handling (terminate) is safe, because
/// nothing has changed yet.
fn interruption() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    async move {
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
}
