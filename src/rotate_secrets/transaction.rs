//! The database part of a run: one transaction per database holding copies, each on a silenced
//! session; all begun, and their ids recorded in the staged pending file, before any copy
//! changes; committed one after the other; then the pending file published.
//!
//! PostgreSQL cannot span two databases with one transaction, so a crash between two `COMMIT`s
//! leaves a run committed in some databases only. The pending file then records which
//! transactions those were; the next run finishes the others (`settle`) through this same
//! code, with the committed ones carried in the marker and the pending file never discarded.

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use super::plan::Plan;
use super::RotateSecretsOptions;
use crate::db;
use crate::envfile::{EnvFile, LockedEnv};
use crate::error::{Error, Result};
use crate::rotation::crash::{self, CrashPoint};
use crate::rotation::silence;
use crate::rotation::xact::{self, Status, Xact};
use crate::stack::connection::connection_settings;

/// One run's database work.
pub(super) struct Transact<'a> {
    /// The run's options (lock timeout, connection).
    pub args: &'a RotateSecretsOptions,
    /// The locked `.env`, where the pending file is staged and published.
    pub env_lock: &'a LockedEnv,
    /// Where a test asked the process to die.
    pub crash: Option<CrashPoint>,
    /// Finishing an interrupted run: its transactions that committed. They stay in the marker,
    /// and the pending file, then the only record of the values those databases hold, is kept
    /// whatever fails.
    pub committed_before: &'a [Xact],
}

impl Transact<'_> {
    /// Runs `plan`'s steps on `sessions` (one per database with steps), stages `new_env` (made
    /// from `base_env`) with the transaction ids, commits, publishes. Returns the transactions.
    pub async fn run(
        &self,
        base_env: &EnvFile,
        new_env: &EnvFile,
        plan: &Plan,
        sessions: &[(String, Client)],
    ) -> Result<Vec<Xact>> {
        let xacts = match begin(self.args, sessions).await {
            Ok(xacts) => xacts,
            Err(err) => {
                rollback(sessions).await;
                return Err(err);
            }
        };
        let recorded: Vec<Xact> = self.committed_before.iter().chain(&xacts).cloned().collect();
        let staged = EnvFile::parse(&format!("{}{}", xact::marker(&recorded), new_env.render().as_str()), None)?;
        if let Err(err) = self.env_lock.stage(base_env, &staged) {
            rollback(sessions).await;
            return Err(err.into());
        }
        crash::at(self.crash, CrashPoint::Staged);
        if let Err(err) = apply(plan, sessions).await {
            rollback(sessions).await;
            self.discard();
            return Err(err);
        }
        for (i, (dbname, client)) in sessions.iter().enumerate() {
            if i > 0 {
                crash::at(self.crash, CrashPoint::BetweenCommits);
            }
            if let Err(e) = client.batch_execute(silence::RESET_AND_COMMIT).await {
                if i == 0 {
                    // Nothing committed yet unless this COMMIT did: ask.
                    return self.settle_failed_commit(&xacts, dbname, &e).await;
                }
                return Err(Error::OutcomeUnknown {
                    what: format!("COMMIT in database {dbname} failed ({})", db::describe(&e)),
                    recovery: self.run_again(),
                });
            }
        }
        crash::at(self.crash, CrashPoint::Committed);
        publish(self.env_lock)?;
        Ok(xacts)
    }

    fn run_again(&self) -> String {
        format!(
            "run rotate-secrets again: it asks the database which transactions committed and finishes the others; \
             keep {} until then",
            self.env_lock.pending_path().display()
        )
    }

    /// Deletes the pending file of a run that changed nothing; never when finishing a run that
    /// committed elsewhere.
    fn discard(&self) {
        if self.committed_before.is_empty() {
            let _ = self.env_lock.discard_pending();
        }
    }

    /// The first `COMMIT` failed: ask the database (from a new session) whether it committed.
    async fn settle_failed_commit(&self, xacts: &[Xact], dbname: &str, e: &tokio_postgres::Error) -> Result<Vec<Xact>> {
        let env = self.env_lock.read_existing()?;
        let target = db::resolve(&self.args.rotation.connect, &connection_settings(&env))?.target;
        let client = target.connect().await?;
        match xact::status(&client, xacts[0].xid).await {
            Ok(Status::Aborted) => {
                self.discard();
                Err(failed(&format!("COMMIT in database {dbname}"), e))
            }
            Ok(Status::Committed) if xacts.len() == 1 => {
                publish(self.env_lock)?;
                Ok(xacts.to_vec())
            }
            _ => Err(Error::OutcomeUnknown {
                what: format!("COMMIT in database {dbname} failed ({})", db::describe(e)),
                recovery: self.run_again(),
            }),
        }
    }
}

/// Silences each session, begins its transaction (checking it runs in the silenced server
/// session) and records its id. The rotation lock is cluster-wide: taken once, in the
/// transaction that commits last, it keeps every other rotation out until this run has
/// committed everywhere.
async fn begin(args: &RotateSecretsOptions, sessions: &[(String, Client)]) -> Result<Vec<Xact>> {
    let mut xacts = Vec::new();
    for (i, (dbname, client)) in sessions.iter().enumerate() {
        let silenced_pid = silence::silence(client).await?;
        let last = i + 1 == sessions.len();
        // Every statement after the first round trip bounded too (a server that stops answering).
        let lock_timeout = args.rotation.lock_timeout;
        let sql = format!(
            "{}; {}",
            silence::begin_sql(lock_timeout, last, "txid_current()::text"),
            db::bound_transaction_sql(lock_timeout)
        );
        let step =
            if last { "BEGIN and the rotation lock (on pg_authid; another rotation holds it?)" } else { "BEGIN" };
        let messages = client.simple_query(&sql).await.map_err(|e| failed(step, &e))?;
        let row = silence::last_row(&messages).unwrap_or_default();
        silence::same_session(&silenced_pid, row.first().cloned().flatten().as_deref())?;
        let xid = row.get(1).cloned().flatten().and_then(|id| id.parse().ok()).ok_or_else(|| Error::Database {
            step: format!("txid_current() in database {dbname}"),
            reason: "the server gave no transaction id".into(),
        })?;
        xacts.push(Xact { dbname: dbname.clone(), xid });
    }
    Ok(xacts)
}

fn failed(step: &str, e: &tokio_postgres::Error) -> Error {
    Error::Database { step: step.to_owned(), reason: db::describe(e) }
}

/// The steps, each an unnamed statement with its values bound as text (one round trip, nothing
/// a transaction-mode pooler would have to carry between server sessions).
async fn apply(plan: &Plan, sessions: &[(String, Client)]) -> Result<()> {
    for step in &plan.steps {
        let Some((_, client)) = sessions.iter().find(|(d, _)| *d == step.dbname) else { continue };
        let outcome = if step.params.is_empty() {
            client.batch_execute(&step.sql).await
        } else {
            let texts: Vec<&str> = step.params.iter().map(|p| p.expose()).collect();
            let params: Vec<(&(dyn ToSql + Sync), Type)> =
                texts.iter().map(|t| (t as &(dyn ToSql + Sync), Type::TEXT)).collect();
            client.execute_typed(step.sql.as_str(), &params).await.map(|_| ())
        };
        outcome.map_err(|e| failed(&format!("{} (database {})", step.what, step.dbname), &e))?;
    }
    Ok(())
}

/// Every session's transaction aborted (its recorded id reads as aborted), its settings reset.
async fn rollback(sessions: &[(String, Client)]) {
    for (_, client) in sessions {
        silence::abort(client).await;
    }
}

/// Publishes the pending file onto the `.env` as it is now (only the rotated keys are applied,
/// so neither the marker line nor an older copy of another line reaches it).
pub(super) fn publish(env_lock: &LockedEnv) -> Result<()> {
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
