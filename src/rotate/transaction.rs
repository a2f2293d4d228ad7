//! Step 5 of a rotation: the one transaction that changes the database.
//!
//! Round trips are few and nothing is hashed inside, so the window between `BEGIN` and `COMMIT`
//! is a few milliseconds on a quiet server: `BEGIN` and the rotation lock; then the `ALTER
//! ROLE`s, the `_supavisor` reset and the analytics rows, three query strings sent together;
//! then `RESET ALL; COMMIT`. The session is silenced first (`silence`), before `BEGIN`; the
//! plaintext password then reaches the server only inside the analytics URL, as a bind
//! parameter.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_postgres::Client;
use zeroize::Zeroizing;

use super::plan::Prepared;
use super::recovery::{settle, Settlement};
use super::sql::{self, Contended};
use crate::analytics;
use crate::db::{describe, Target};
use crate::error::Error;
use crate::limits::Limit;
use crate::rotation::silence::{self, ROLLBACK_LIMIT};
use crate::secret::Secret;

/// What the committed transaction did.
#[derive(Debug, Clone, Copy)]
pub struct Applied {
    /// Analytics rows whose URL now carries the new password.
    pub analytics_rows_updated: u64,
    /// Analytics rows left alone: their URL names no user, or is not the stack's own.
    pub analytics_rows_without_user: u64,
    /// Whether `_supavisor` was dropped and re-created.
    pub supavisor_reset: bool,
    /// From sending `BEGIN` to the server's answer to `COMMIT`; `None` when the answer was lost
    /// and the commit was established by asking the database afterwards.
    pub transaction_ms: Option<f64>,
}

/// How the transaction failed.
#[derive(Debug)]
pub enum Failure {
    /// Before `COMMIT`, refused by it, or lost during it and found not committed: rolled back,
    /// nothing changed.
    RolledBack(Error),
    /// The connection broke during `COMMIT` and the database could not tell the outcome.
    Undetermined(String),
}

/// Replaces every occurrence of the given secrets in a server message.
pub fn scrub(message: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(crate::dburl::redact_in_text(message), |text, secret| text.replace(secret, "<redacted>"))
}

/// How long the server may stay silent, beyond its own lock waits, before the transaction gives
/// up (before `COMMIT` is sent).
const SERVER_SILENCE_LIMIT: Limit = Limit::new("server-silence", Duration::from_secs(20));

/// How long `COMMIT` may take before the outcome is settled by asking the database. Generous:
/// a synchronous standby or a slow disk can delay a commit that will land.
const COMMIT_LIMIT: Limit = Limit::new("commit", Duration::from_secs(60));

/// Everything the transaction works with: the session (already silent-able, in the database
/// the transaction runs in), how to reach it again, the plan and its secrets, the lock timeout.
pub struct Work<'a> {
    /// The session discovery opened.
    pub client: &'a Client,
    /// Where it is connected (to cancel a statement, and to settle a lost `COMMIT`).
    pub session: &'a Target,
    /// The plan, its verifiers and passwords.
    pub prepared: &'a Prepared,
    /// `--lock-timeout`.
    pub lock_timeout: Duration,
}

/// Why the transaction stopped before `COMMIT`: a statement the server refused (which step,
/// to name who held a lock), or a reason of the tool's own.
enum Stop {
    Refused { contended: Contended, step: &'static str, err: tokio_postgres::Error },
    Other(Error),
}

/// What the statements did, before `COMMIT`.
struct Done {
    analytics: analytics::Rewritten,
    supavisor_reset: bool,
}

/// Runs the transaction. `interrupted` resolving before `COMMIT` is sent rolls everything back.
///
/// The session is silenced first, in a round trip of its own before `BEGIN`; every setting that
/// made it silent is reset inside the transaction, whichever way it ends, so the server session
/// goes back to a pooler as it came. A connection lost during `COMMIT` is settled here, at once,
/// as crash recovery would: the database is asked which password it holds.
pub async fn apply(work: &Work<'_>, interrupted: impl Future<Output = ()>) -> Result<Applied, Failure> {
    let silenced_pid = silence::silence(work.client).await.map_err(Failure::RolledBack)?;
    let started = Instant::now();
    match work.bounded(work.statements(&silenced_pid), interrupted).await {
        Ok(done) => work.commit(done, started).await,
        Err(stop) => {
            work.roll_back().await;
            Err(Failure::RolledBack(work.explain(stop).await))
        }
    }
}

impl Work<'_> {
    fn secrets(&self) -> Vec<&str> {
        std::iter::once(&self.prepared.new_password).chain(&self.prepared.old_password).map(Secret::expose).collect()
    }

    /// The server bounds every lock wait (lock_timeout); this bounds a server that stops
    /// answering at all (a frozen process whose kernel still acknowledges TCP). Before COMMIT is
    /// sent, giving up is safe: a transaction whose COMMIT never left cannot commit.
    async fn bounded(
        &self,
        statements: impl Future<Output = Result<Done, Stop>>,
        interrupted: impl Future<Output = ()>,
    ) -> Result<Done, Stop> {
        let answer_deadline = self.lock_timeout * 4 + SERVER_SILENCE_LIMIT.get();
        tokio::select! {
            outcome = statements => outcome,
            () = tokio::time::sleep(answer_deadline) => Err(Stop::Other(Error::Database {
                step: "the transaction".into(),
                reason: format!(
                    "the server stopped answering for {} s before COMMIT was sent; the transaction cannot commit \
                     and is rolled back when its connection closes",
                    answer_deadline.as_secs()
                ),
            })),
            () = interrupted => {
                // The statement in flight may be waiting for a lock; cancel it so ROLLBACK runs now.
                self.session.cancel(&self.client.cancel_token()).await;
                Err(Stop::Other(Error::Interrupted))
            }
        }
    }

    /// `BEGIN` to the last statement before `COMMIT`.
    async fn statements(&self, silenced_pid: &str) -> Result<Done, Stop> {
        self.set_up(silenced_pid).await?;
        let prepared = self.prepared;
        let mut alter = Zeroizing::new(String::with_capacity(160 * prepared.verifiers.len()));
        for (role, verifier) in &prepared.verifiers {
            alter.push_str(&sql::alter_role_password(role, verifier.expose()));
        }
        let refused = |contended, step| move |err| Stop::Refused { contended, step, err };
        // Three query strings, sent together (one round trip), answered in order: the ALTER
        // ROLEs, the schema statements on their own, the analytics rows.
        let roles = async {
            self.client.batch_execute(&alter).await.map_err(refused(Contended::Roles, "changing the role passwords"))
        };
        let supavisor = async {
            let Some(owner) = &prepared.plan.supavisor_owner else { return Ok(false) };
            let reset = self.client.batch_execute(&sql::reset_supavisor(owner)).await;
            reset.map(|()| true).map_err(refused(Contended::Supavisor, "resetting _supavisor"))
        };
        let analytics = async {
            let step = "updating _analytics.source_backends";
            self.rewrite_analytics().await.map_err(refused(Contended::Analytics, step))
        };
        let ((), supavisor_reset, analytics) = tokio::try_join!(roles, supavisor, analytics)?;
        Ok(Done { analytics, supavisor_reset })
    }

    /// `BEGIN`, the rotation lock, and two checks under it: the same server session as the
    /// silenced one, and the roles' verifiers as discovery saw them.
    async fn set_up(&self, silenced_pid: &str) -> Result<(), Stop> {
        let messages = self.client.simple_query(&sql::setup(self.lock_timeout)).await.map_err(|err| Stop::Refused {
            contended: Contended::RotationLock,
            step: "taking the rotation lock",
            err,
        })?;
        let row = sql::last_row(&messages).unwrap_or_default();
        let (pid, fingerprint) = (row.first().cloned().flatten(), row.get(1).cloned().flatten());
        silence::same_session(silenced_pid, pid.as_deref()).map_err(Stop::Other)?;
        // Under the rotation lock: a rotation that committed since discovery shows here.
        if fingerprint.as_deref() != Some(self.prepared.fingerprint.as_str()) {
            return Err(Stop::Other(Error::Database {
                step: "the concurrency check".into(),
                reason: "the roles' passwords changed after this run read them (did another rotation \
                         commit meanwhile?); re-run to rotate from the current state"
                    .into(),
            }));
        }
        Ok(())
    }

    async fn rewrite_analytics(&self) -> Result<analytics::Rewritten, tokio_postgres::Error> {
        let prepared = self.prepared;
        let Some(columns) = prepared.analytics_columns else { return Ok(analytics::Rewritten::default()) };
        let follows = |url: &str| prepared.follows(url);
        analytics::rewrite_passwords(self.client, columns, prepared.new_password.expose(), &follows).await
    }

    /// Best effort, bounded: back to the savepoint, every setting reset, in the same server
    /// session. If the connection is gone (or the server silent) the server rolls back on its
    /// own when the connection closes.
    async fn roll_back(&self) {
        silence::roll_back(self.client).await;
    }

    /// The error for the operator: the server's reason without secrets, and for a lock wait that
    /// ran out, who held the lock (asked now, on the same session, after the rollback).
    async fn explain(&self, stop: Stop) -> Error {
        let (contended, step, err) = match stop {
            Stop::Other(err) => return err,
            Stop::Refused { contended, step, err } => (contended, step, err),
        };
        let mut reason = scrub(&describe(&err), &self.secrets());
        if err.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            reason.push_str(&format!(
                " — {} held a lock for longer than --lock-timeout ({} ms); {}",
                self.lock_holders(contended).await,
                self.lock_timeout.as_millis(),
                match contended {
                    Contended::Supavisor => "stop supavisor (docker compose stop supavisor) or retry",
                    _ => "retry once it is done, or raise --lock-timeout",
                }
            ));
        }
        reason.push_str("; the transaction was rolled back");
        Error::Database { step: step.to_owned(), reason }
    }

    /// Who holds what `contended` names, in words.
    async fn lock_holders(&self, contended: Contended) -> String {
        let asked =
            tokio::time::timeout(ROLLBACK_LIMIT.get(), self.client.simple_query(&sql::lock_holders(contended))).await;
        let rows: Vec<String> = match asked {
            Ok(Ok(messages)) => messages
                .iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => Some(format!(
                        "pid {} (user {}, application_name '{}', connected since {})",
                        row.get(0).unwrap_or("?"),
                        printable(row.get(1).unwrap_or("?")),
                        printable(row.get(2).unwrap_or("")),
                        row.get(3).unwrap_or("?")
                    )),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let what = match contended {
            Contended::RotationLock => "the rotation lock (pg_authid)",
            Contended::Roles => "a role's row in pg_authid",
            Contended::Supavisor => "_supavisor",
            Contended::Analytics => "_analytics.source_backends",
        };
        match rows.as_slice() {
            [] => format!("another session (gone by now) on {what}"),
            _ => format!("the session(s) {} on {what}", rows.join(", ")),
        }
    }

    /// `RESET ALL; COMMIT`. A `COMMIT` the server does not answer within the limit is treated as
    /// a lost connection: the database is asked which password it holds.
    async fn commit(&self, done: Done, started: Instant) -> Result<Applied, Failure> {
        let mut applied = Applied {
            analytics_rows_updated: done.analytics.updated,
            analytics_rows_without_user: done.analytics.without_user,
            supavisor_reset: done.supavisor_reset,
            transaction_ms: None,
        };
        let commit =
            match tokio::time::timeout(COMMIT_LIMIT.get(), self.client.batch_execute(sql::RESET_AND_COMMIT)).await {
                Ok(answer) => answer.map_err(|err| scrub(&describe(&err), &self.secrets())),
                Err(_) => Err(format!("no answer to COMMIT within {} s", COMMIT_LIMIT.get().as_secs())),
            };
        let reason = match commit {
            Ok(()) => {
                applied.transaction_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
                return Ok(applied);
            }
            Err(reason) => reason,
        };
        // No error answering COMMIT proves a rollback: a FATAL can follow a durable commit
        // record, and a pooler turns a lost upstream into an error response. So every failed
        // COMMIT is settled by asking the database, as crash recovery would. Every statement had
        // succeeded before COMMIT was sent: if it landed, `applied` is exactly what happened;
        // only the window's length is unknown.
        let prepared = self.prepared;
        match settle(self.session, &prepared.new_password, prepared.old_password.as_ref()).await {
            Settlement::Committed => Ok(applied),
            Settlement::NotCommitted => Err(Failure::RolledBack(Error::Database {
                step: "COMMIT".into(),
                reason: format!("COMMIT failed ({reason}) and the database kept the old password"),
            })),
            Settlement::Undetermined(why) | Settlement::NeitherLive { why, .. } => {
                Err(Failure::Undetermined(format!("COMMIT failed ({reason}); {why}")))
            }
        }
    }
}

/// A name read from the server, fit for the terminal.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_every_secret_and_url_password() {
        let out = scrub("bad value abcd1234 in postgresql://u:zzzz9999@h/db", &["abcd1234"]);
        assert!(!out.contains("abcd1234") && !out.contains("zzzz9999"), "{out}");
    }
}
