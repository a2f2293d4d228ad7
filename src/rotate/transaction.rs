//! Step 5 of a rotation: the one transaction that changes the database.
//!
//! Round trips are few and nothing is hashed inside, so the window between `BEGIN` and `COMMIT`
//! is a few milliseconds on a quiet server. The session is silenced first (`silence`), before
//! `BEGIN`; the plaintext password then reaches the server only inside the analytics URL, as a
//! bind parameter.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_postgres::Client;
use zeroize::Zeroizing;

use super::plan::Prepared;
use super::recovery::{settle, Settlement};
use super::sql::{self, ADVISORY_LOCK_KEY};
use crate::analytics;
use crate::db::{describe, Target};
use crate::error::Error;
use crate::secret::Secret;

/// What the committed transaction did.
#[derive(Debug, Clone, Copy)]
pub struct Applied {
    /// Analytics rows whose URL now carries the new password.
    pub analytics_rows_updated: u64,
    /// Analytics rows left alone because their URL names no user.
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
const SERVER_SILENCE_LIMIT: Duration = Duration::from_secs(20);

/// How long `COMMIT` may take before the outcome is settled by asking the database. Generous:
/// a synchronous standby or a slow disk can delay a commit that will land.
const COMMIT_LIMIT: Duration = Duration::from_secs(60);

/// How long a best-effort `ROLLBACK` may take.
const ROLLBACK_LIMIT: Duration = Duration::from_secs(5);

/// Runs the transaction. `interrupted` resolving before `COMMIT` is sent rolls everything back.
///
/// A connection lost during `COMMIT` is settled here, at once, as crash recovery would: the
/// database is asked which password it holds, so the caller learns what happened rather than
/// that it might have.
pub async fn apply(
    client: &Client,
    session: &Target,
    prepared: &Prepared,
    lock_timeout: Duration,
    interrupted: impl Future<Output = ()>,
) -> Result<Applied, Failure> {
    crate::rotation::silence::silence(client).await.map_err(Failure::RolledBack)?;
    let started = Instant::now();
    let secrets: Vec<&str> =
        std::iter::once(&prepared.new_password).chain(&prepared.old_password).map(Secret::expose).collect();
    let fail = |step: &str, err: &tokio_postgres::Error| {
        let mut reason = scrub(&describe(err), &secrets);
        if err.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            reason.push_str(&format!(
                " — another session held a lock for longer than --lock-timeout ({} ms): a running \
                 supavisor holding _supavisor, or another rotation; retry, or raise --lock-timeout",
                lock_timeout.as_millis()
            ));
        }
        reason.push_str("; the transaction was rolled back");
        Error::Database { step: step.to_owned(), reason }
    };

    let work = async {
        // Its own round trip, before anything secret (the session is already silent).
        let setup = format!(
            "BEGIN; \
             SET LOCAL lock_timeout = '{}ms'; \
             SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY}); \
             {}",
            lock_timeout.as_millis().max(1),
            sql::fingerprint()
        );
        let messages = client.simple_query(&setup).await.map_err(|e| fail("setting up the transaction", &e))?;

        // Under the advisory lock: a rotation that committed since discovery shows here.
        if sql::last_value(&messages).as_deref() != Some(prepared.fingerprint.as_str()) {
            return Err(Error::Database {
                step: "the concurrency check".into(),
                reason: "the roles' passwords changed after this run read them (did another rotation \
                         commit meanwhile?); re-run to rotate from the current state"
                    .into(),
            });
        }

        let mut statements = Zeroizing::new(String::with_capacity(160 * prepared.verifiers.len()));
        for (role, verifier) in &prepared.verifiers {
            statements.push_str(&sql::alter_role_password(role, verifier.expose()));
        }
        let supavisor_reset = match &prepared.plan.supavisor_owner {
            Some(owner) => {
                statements.push_str(&sql::reset_supavisor(owner));
                true
            }
            None => false,
        };
        client
            .batch_execute(&statements)
            .await
            .map_err(|e| fail("changing the role passwords and resetting _supavisor", &e))?;

        let rewritten = match prepared.analytics_columns {
            Some(columns) => analytics::rewrite_passwords(client, columns, prepared.new_password.expose())
                .await
                .map_err(|e| fail("updating _analytics.source_backends", &e))?,
            None => analytics::Rewritten::default(),
        };
        let (updated, without_user) = (rewritten.updated, rewritten.without_user);
        Ok((updated, without_user, supavisor_reset))
    };

    // The server bounds every lock wait (lock_timeout); this bounds a server that stops
    // answering at all (a frozen process whose kernel still acknowledges TCP). Before COMMIT is
    // sent, giving up is safe: a transaction whose COMMIT never left cannot commit.
    let answer_deadline = lock_timeout * 4 + SERVER_SILENCE_LIMIT;
    let outcome = tokio::select! {
        outcome = work => outcome,
        () = tokio::time::sleep(answer_deadline) => Err(Error::Database {
            step: "the transaction".into(),
            reason: format!(
                "the server stopped answering for {} s before COMMIT was sent; the transaction cannot commit and \
                 is rolled back when its connection closes",
                answer_deadline.as_secs()
            ),
        }),
        () = interrupted => {
            // The statement in flight may be waiting for a lock; cancel it so ROLLBACK runs now.
            session.cancel(&client.cancel_token()).await;
            Err(Error::Interrupted)
        }
    };
    let (analytics_rows_updated, analytics_rows_without_user, supavisor_reset) = match outcome {
        Ok(done) => done,
        Err(err) => {
            // Best effort: if the connection is gone (or the server silent) the server rolls
            // back on its own when the connection closes.
            let _ = tokio::time::timeout(ROLLBACK_LIMIT, client.batch_execute("ROLLBACK")).await;
            return Err(Failure::RolledBack(err));
        }
    };

    let mut applied =
        Applied { analytics_rows_updated, analytics_rows_without_user, supavisor_reset, transaction_ms: None };
    // A COMMIT the server does not answer within the limit is treated as a lost connection:
    // the database is asked which password it holds.
    let commit = match tokio::time::timeout(COMMIT_LIMIT, client.batch_execute("COMMIT")).await {
        Ok(answer) => answer.map_err(|err| scrub(&describe(&err), &secrets)),
        Err(_) => Err(format!("no answer to COMMIT within {} s", COMMIT_LIMIT.as_secs())),
    };
    match commit {
        Ok(()) => {
            applied.transaction_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
            Ok(applied)
        }
        // No error answering COMMIT proves a rollback: a FATAL can follow a durable commit
        // record, and a pooler turns a lost upstream into an error response. So every failed
        // COMMIT is settled by asking the database, as crash recovery would. Every statement had
        // succeeded before COMMIT was sent: if it landed, `applied` is exactly what happened;
        // only the window's length is unknown.
        Err(reason) => match settle(session, &prepared.new_password, prepared.old_password.as_ref()).await {
            Settlement::Committed => Ok(applied),
            Settlement::NotCommitted => Err(Failure::RolledBack(Error::Database {
                step: "COMMIT".into(),
                reason: format!("COMMIT failed ({reason}) and the database kept the old password"),
            })),
            Settlement::Undetermined(why) => Err(Failure::Undetermined(format!("COMMIT failed ({reason}); {why}"))),
        },
    }
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
