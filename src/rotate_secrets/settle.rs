//! A pending file left by an interrupted run is settled before anything else, by asking the
//! database whether the transactions its marker records committed (SPEC §2, §8):
//!
//! - all committed: the `.env` is published and the run stops (nothing else is done);
//! - none committed: the pending file is discarded (after the confirmation, never in a dry run)
//!   and the run goes on;
//! - some committed (a crash between two `COMMIT`s): the run is finished. The committed
//!   databases are done; their copies hold the new values. In each of the others the copies
//!   still hold the old ones, the `.env`'s (it is published only after every `COMMIT`), so
//!   the steps are planned again for those databases only, old values from the `.env` and new
//!   ones from the pending file, and run in a new transaction; then the `.env` is published.
//!   A Realtime row is decrypted with the key that holds it at that moment: the `.env`'s, in a
//!   database that did not commit; the rows of one that did are not read at all.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::plan::{self, Plan, Scope};
use super::transaction::{publish, Transact};
use super::{resolve_target, RotateSecretsOptions};
use crate::db::Target;
use crate::envfile::{self, EnvFile, LockedEnv};
use crate::error::{Error, ExitCode, Result};
use crate::rotation::crash::CrashPoint;
use crate::rotation::restart::{self, ComposeProject};
use crate::rotation::xact::{self, Status, Xact};
use crate::secret::Secret;
use crate::stack::{copies, keys};
use crate::ui::{ReportFormat, Ui};

/// Settles a pending file, if there is one: `Some(exit code)` when that ends the run.
pub(super) async fn leftover(
    args: &RotateSecretsOptions,
    ui: &Ui,
    env_lock: &LockedEnv,
    env: &EnvFile,
    crash: Option<CrashPoint>,
    started: Instant,
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
        statuses.push(status_of(&client, x, args.rotation.lock_timeout, env_lock).await?);
    }
    if statuses.iter().all(|s| *s == Status::Committed) {
        let plan = interrupted_plan(staged(env_lock, &pending, &text)?, Vec::new());
        if args.rotation.dry_run {
            let said = "an interrupted rotation committed: a real run would publish its .env and stop";
            return conclude(args, ui, &plan, &xacts, None, said, started).map(Some);
        }
        let compose = super::compose_project(args, &plan)?;
        publish(env_lock)?;
        let said = format!(
            "an interrupted rotation of {} had committed: {} now holds its values (nothing else was rotated)",
            plan.keys.join(", "),
            env_lock.path().display()
        );
        return conclude(args, ui, &plan, &xacts, compose, &said, started).map(Some);
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
    let (mut committed, mut unfinished) = (Vec::new(), Vec::new());
    for (x, status) in xacts.into_iter().zip(statuses) {
        if status == Status::Committed {
            committed.push(x)
        } else {
            unfinished.push(x)
        }
    }
    let partial = Partial { args, env_lock, env, pending: &pending, text: &text, committed, unfinished };
    partial.finish(ui, &target, client, crash, started).await.map(Some)
}

/// The status of `x`, waiting up to `limit` while it is still running. What cannot be told is
/// an error that says how to get out.
async fn status_of(client: &Client, x: &Xact, limit: Duration, env_lock: &LockedEnv) -> Result<Status> {
    let pending = env_lock.pending_path();
    let deadline = Instant::now() + limit.max(Duration::from_secs(1));
    loop {
        let status = xact::status(client, x.xid).await.map_err(|why| Error::OutcomeUnknown {
            what: format!("it cannot be told whether the interrupted rotation committed ({why})"),
            recovery: format!("keep {} and run rotate-secrets again once the database answers", pending.display()),
        })?;
        match status {
            Status::InProgress if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Status::InProgress => {
                return Err(Error::OutcomeUnknown {
                    what: format!(
                        "transaction {} of the interrupted rotation is still running in database {}",
                        x.xid, x.dbname
                    ),
                    recovery: format!(
                        "keep {}; once that transaction has ended (its session is in pg_stat_activity with \
                         backend_xid {}), run rotate-secrets again",
                        pending.display(),
                        x.xid
                    ),
                })
            }
            Status::Forgotten => {
                return Err(Error::OutcomeUnknown {
                    what: format!(
                        "the server no longer knows whether transaction {} of the interrupted rotation (database {}) \
                         committed: it is older than the commit log the server keeps",
                        x.xid, x.dbname
                    ),
                    recovery: format!(
                        "ask the copies instead: `pmoves-secrets check --db --env-file {pending}` reports no stale \
                         copy if they hold the pending file's values, `pmoves-secrets check --db` if they hold the \
                         .env's. In the first case put the pending file's new values of the keys it changes into \
                         the .env with an editor, then delete {pending}; in the second, delete {pending}. If each \
                         file matches some of the copies, put the pending file's values into the .env and follow \
                         what `pmoves-secrets check --db` then says of each copy it reports",
                        pending = pending.display()
                    ),
                })
            }
            done => return Ok(done),
        }
    }
}

/// A run that committed in some databases only.
struct Partial<'a> {
    args: &'a RotateSecretsOptions,
    env_lock: &'a LockedEnv,
    /// The `.env`: the values the unfinished databases' copies are under.
    env: &'a EnvFile,
    /// The pending file: the new values.
    pending: &'a EnvFile,
    text: &'a str,
    committed: Vec<Xact>,
    unfinished: Vec<Xact>,
}

impl Partial<'_> {
    /// Plans the unfinished databases' steps again and runs them, then publishes (a dry run
    /// says so and stops).
    async fn finish(
        &self,
        ui: &Ui,
        target: &Target,
        main: Client,
        crash: Option<CrashPoint>,
        started: Instant,
    ) -> Result<ExitCode> {
        let names = |xacts: &[Xact]| xacts.iter().map(|x| x.dbname.clone()).collect::<Vec<_>>().join(", ");
        let what = format!(
            "an interrupted rotation committed in database {} but not in {}",
            names(&self.committed),
            names(&self.unfinished)
        );
        let (plan, sessions) = self.plan(target, main).await.map_err(|err| self.unfinishable(&what, err))?;
        let env_path = self.env_lock.path().display().to_string();
        if self.args.rotation.dry_run {
            let said = format!(
                "{what}: a real run would finish it in {} and then publish {env_path} and stop:\n{}",
                names(&self.unfinished),
                plan.to_text(&env_path)
            );
            return conclude(self.args, ui, &plan, &self.committed, None, &said, started);
        }
        // Every pre-flight before the question: an operator who types "yes" is not refused afterwards.
        let compose = super::compose_project(self.args, &plan).map_err(|err| self.unfinishable(&what, err))?;
        self.env_lock.ensure_publishable().map_err(|err| self.unfinishable(&what, err.into()))?;
        ui.info(&format!("{what}; finishing it:\n{}", plan.to_text(&env_path)));
        ui.confirm_typed(
            "Finish the interrupted rotation now?",
            &[],
            &format!("finishing the interrupted rotation of {}", plan.keys.join(", ")),
            self.args.rotation.yes,
        )?;
        let finished = async {
            let mut new_env = self.env.clone();
            for (key, value) in self.staged()? {
                new_env.set(&key, value.expose())?;
            }
            if plan.steps.is_empty() {
                publish(self.env_lock).map(|()| Vec::new())
            } else {
                let run =
                    Transact { args: self.args, env_lock: self.env_lock, crash, committed_before: &self.committed };
                run.run(self.env, &new_env, &plan, &sessions).await
            }
        };
        let xacts = finished.await.map_err(|err| self.unfinishable(&what, err))?;
        let said = format!(
            "the interrupted rotation of {} is finished ({} database change(s) in {}); {env_path} holds its values",
            plan.keys.join(", "),
            plan.steps.len(),
            names(&self.unfinished),
        );
        let all: Vec<Xact> = self.committed.iter().chain(&xacts).cloned().collect();
        conclude(self.args, ui, &plan, &all, compose, &said, started)
    }

    fn staged(&self) -> Result<Vec<(String, Secret)>> {
        staged(self.env_lock, self.pending, self.text)
    }

    /// The steps of the unfinished databases, and a session on each.
    async fn plan(&self, target: &Target, main: Client) -> Result<(Plan, Vec<(String, Client)>)> {
        let minted = interrupted_plan(self.staged()?, Vec::new()).minted;
        let unfinished: Vec<String> = self.unfinished.iter().map(|x| x.dbname.clone()).collect();
        let (steps, _) = plan::database_steps(target, &main, self.env, &minted, Scope::Only(&unfinished)).await?;
        let mut sessions: Vec<(String, Client)> = Vec::new();
        let mut main = Some(main);
        for dbname in &unfinished {
            if !steps.iter().any(|s| s.dbname == *dbname) {
                continue;
            }
            let client = match main.take() {
                Some(client) if dbname == target.dbname() => client,
                other => {
                    main = other;
                    target.in_database(dbname).connect().await?
                }
            };
            sessions.push((dbname.clone(), client));
        }
        Ok((interrupted_plan(self.staged()?, steps), sessions))
    }

    /// Why the run cannot be finished now, and the way out: the pending file is the only record
    /// of the values the committed databases hold.
    fn unfinishable(&self, what: &str, err: Error) -> Error {
        match err {
            Error::PartiallyApplied { .. }
            | Error::OutcomeUnknown { .. }
            | Error::NoTerminal { .. }
            | Error::Declined
            | Error::NoAnswer
            | Error::Interrupted => err,
            other => Error::PartiallyApplied {
                what: format!(
                    "{what}, and finishing it there failed ({}), so that part was rolled back",
                    match other {
                        Error::Database { step, reason } => format!("{step}: {reason}"),
                        other => other.to_string(),
                    }
                ),
                recovery: format!(
                    "keep {pending}: it holds the new values database {done} already uses, and the .env the old \
                     ones the copies in {undone} are still under (do not change those keys in the .env by hand). \
                     Fix the cause, then run rotate-secrets again: it finishes the rotation in {undone} and \
                     publishes the pending file",
                    pending = self.env_lock.pending_path().display(),
                    done = self.committed.iter().map(|x| x.dbname.as_str()).collect::<Vec<_>>().join(", "),
                    undone = self.unfinished.iter().map(|x| x.dbname.as_str()).collect::<Vec<_>>().join(", "),
                ),
            },
        }
    }
}

/// The keys a pending file changes (its record names them), with their new values.
fn staged(env_lock: &LockedEnv, pending: &EnvFile, text: &str) -> Result<Vec<(String, Secret)>> {
    let keys = envfile::staged_keys(text).ok_or_else(|| {
        Error::Precondition(format!("{} does not record which keys it changes", env_lock.pending_path().display()))
    })?;
    Ok(keys
        .into_iter()
        .filter_map(|key| {
            let value = pending.get(&key).map(|v| Secret::new(v.to_owned()));
            value.map(|value| (key, value))
        })
        .collect())
}

/// The plan of the interrupted run, as far as it is left: its keys, their new values, the
/// services their readers are, and `steps`.
fn interrupted_plan(staged: Vec<(String, Secret)>, steps: Vec<plan::Step>) -> Plan {
    let minted: Vec<(&'static str, Secret)> =
        staged.into_iter().filter_map(|(key, value)| Some((keys::key(&key)?.key, value))).collect();
    let keys: Vec<&'static str> =
        minted.iter().map(|(k, _)| *k).filter(|k| copies::rotated_here().any(|r| r == *k)).collect();
    let services = plan::services(&minted);
    Plan { keys, minted, steps, left_to_services: Vec::new(), services }
}

/// The end of a run that settled an interrupted one: `--restart` (checked before anything
/// changed), then what was done, in words or as the JSON report.
fn conclude(
    args: &RotateSecretsOptions,
    ui: &Ui,
    plan: &Plan,
    xacts: &[Xact],
    compose: Option<ComposeProject>,
    said: &str,
    started: Instant,
) -> Result<ExitCode> {
    let restarted = match &compose {
        Some(project) => restart::restart(project)?,
        None => Vec::new(),
    };
    if args.rotation.format == ReportFormat::Json {
        return super::report(args, ui, plan, args.rotation.dry_run, xacts, &restarted, 0.0, started);
    }
    let services = match restarted.as_slice() {
        [] if args.rotation.dry_run => String::new(),
        [] => format!("; recreate: {}", plan.services.join(" ")),
        done => format!("; recreated: {}", done.join(" ")),
    };
    ui.info(&format!("{said}{services}"));
    Ok(ExitCode::Success)
}
