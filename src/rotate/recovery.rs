//! Crash recovery: deciding whether an interrupted rotation committed, when a pending `.env`
//! exists or the connection broke during `COMMIT`.
//!
//! The pending file is written and fsync'd before the transaction starts, so at every instant
//! either `.env` or `<env>.pending` holds a password the database accepts. Recovery asks the
//! database which one, and never changes the database itself: it only tells the caller, who
//! makes `.env` agree (and, during `--dry-run`, only says what it would do).

use super::sql;
use super::{discover, verifier};
use crate::db::{describe, Target};
use crate::envfile::{EnvFileError, LockedEnv};
use crate::error::{Error, Result};
use crate::limits::Limit;
use crate::secret::Secret;
use crate::stack::internals::internals_candidates;
use crate::stack::POSTGRES_PASSWORD;
use crate::ui::Ui;

/// What a leftover pending file is.
#[derive(Debug)]
pub enum Leftover {
    /// Its rotation committed: the database holds its password (given here).
    Committed(Secret),
    /// Its rotation never committed (or it is unusable): it may be discarded after the
    /// confirmation.
    Uncommitted,
}

/// What the database says about a rotation whose outcome this run did not see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// The admin role holds the new (pending) password: the rotation committed.
    Committed,
    /// The admin role holds the old (current `.env`) password: it never committed.
    NotCommitted,
    /// Neither could be confirmed; the reason says why (unreachable, both rejected, a rotation
    /// still in flight).
    Undetermined(String),
}

/// Finds out what a pending file left by an interrupted run is, changing nothing; `None` when
/// there is no pending file. An outcome nobody can determine is an error (exit 4, both files
/// kept).
pub async fn inspect(
    env_lock: &LockedEnv,
    target: &Target,
    current: Option<&Secret>,
    ui: &Ui,
) -> Result<Option<Leftover>> {
    let pending_path = env_lock.pending_path();
    let pending = match env_lock.read_pending() {
        Ok(Some(pending)) => pending,
        Ok(None) => return Ok(None),
        // Something other than a regular file at the pending name is refused, never followed
        // nor removed: the operator moves it away (SPEC §2).
        Err(err @ (EnvFileError::Symlink { .. } | EnvFileError::NotRegular { .. })) => return Err(err.into()),
        // A staged file was complete and readable when its rotation began; one that cannot be
        // read now (its mode or owner changed, a disk error) may still hold the live password,
        // so it is neither discarded nor overwritten: the operator decides.
        Err(err) => {
            return Err(Error::Precondition(format!(
                "{} is left from an interrupted rotation but cannot be read ({err}); it may hold the password \
                 the database now has. Make it readable and run again, or remove it only once `pmoves-secrets \
                 check --db` shows that the database accepts the password in {}; nothing was changed",
                pending_path.display(),
                env_lock.path().display()
            )))
        }
    };
    let Some(new_password) = pending.value(POSTGRES_PASSWORD).map(|v| Secret::new(v.to_owned())) else {
        ui.warn(&format!("{} has no {POSTGRES_PASSWORD}; it cannot stem from a rotation", pending_path.display()));
        return Ok(Some(Leftover::Uncommitted));
    };
    if current.is_some_and(|c| c == &new_password) {
        return Ok(Some(Leftover::Uncommitted));
    }
    match settle(target, &new_password, current).await {
        Settlement::Committed => Ok(Some(Leftover::Committed(new_password))),
        Settlement::NotCommitted => Ok(Some(Leftover::Uncommitted)),
        Settlement::Undetermined(why) => Err(super::undetermined(env_lock, &why)),
    }
}

/// How long recovery waits for a session that still holds the rotation's advisory lock.
const SETTLE_TIMEOUT: Limit = Limit::new("settle", std::time::Duration::from_secs(30));

/// How much longer than [`SETTLE_TIMEOUT`] the server may take to answer at all.
const SETTLE_SILENCE_LIMIT: Limit = Limit::new("settle-silence", std::time::Duration::from_secs(30));

/// The databases a rotation's transaction may run in: `_supabase` (current stacks) and the
/// target's own (older stacks). The advisory lock is per database, so recovery waits in each.
fn work_databases(target: &Target) -> Vec<Target> {
    internals_candidates(target.dbname()).map(|dbname| target.in_database(dbname)).collect()
}

/// Waits until no session holds the rotation's advisory lock in the database `client` is in,
/// so the transaction it guards has finished one way or the other. A backend whose client
/// vanished during `COMMIT` may still be committing (or only about to read `COMMIT` from its
/// socket); reading the verifier before it is done could see the old password and discard a
/// pending file whose password is about to become the live one.
async fn wait_for_rotations_to_finish(
    client: &tokio_postgres::Client,
    dbname: &str,
) -> std::result::Result<(), String> {
    client.batch_execute(&sql::wait_for_rotation_lock(SETTLE_TIMEOUT.get())).await.map_err(|e| {
        format!(
            "a rotation still holds its lock in database {dbname} after {} s ({}); it may still be committing",
            SETTLE_TIMEOUT.get().as_secs(),
            describe(&e)
        )
    })
}

/// Finds out whether `pending` or `current` is the admin role's password.
///
/// First waits, in every database the rotation's transaction may run in, for any transaction
/// under the rotation lock to end. Then a successful login decides, unless the stored verifier
/// can be read: then the verifier decides, because a `trust` line in `pg_hba.conf` accepts any
/// password.
pub async fn settle(target: &Target, pending: &Secret, current: Option<&Secret>) -> Settlement {
    // The server bounds the lock wait; this bounds a server that stops answering altogether.
    let limit = SETTLE_TIMEOUT.get() + SETTLE_SILENCE_LIMIT.get();
    match tokio::time::timeout(limit, settle_with(target, pending, current)).await {
        Ok(settlement) => settlement,
        Err(_) => Settlement::Undetermined(format!(
            "{} stopped answering for {} s while being asked which password it holds",
            target.host_port(),
            limit.as_secs()
        )),
    }
}

async fn settle_with(target: &Target, pending: &Secret, current: Option<&Secret>) -> Settlement {
    let user = target.user().to_owned();
    let candidates =
        std::iter::once((pending, Settlement::Committed)).chain(current.map(|c| (c, Settlement::NotCommitted)));
    // Two rounds: a COMMIT still in flight may land between the two logins of the first round
    // (the pending password refused just before it, the current one just after). The password
    // changes at most once, so the second round sees it settled.
    let rounds = candidates.clone().chain(candidates);
    let mut rejected = 0;
    for (password, settlement) in rounds {
        let mut admin = None;
        for work in work_databases(&target.as_login(&user, password)) {
            match work.connect_raw().await {
                Ok(client) => {
                    if let Err(why) = wait_for_rotations_to_finish(&client, work.dbname()).await {
                        return Settlement::Undetermined(why);
                    }
                    admin = Some(client);
                }
                Err(err) if err.sqlstate() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) => {}
                Err(err) if err.is_auth_failure() => break,
                Err(err) => {
                    return Settlement::Undetermined(format!("cannot reach {}: {}", target.host_port(), err.describe()))
                }
            }
        }
        let Some(client) = admin else {
            rejected += 1;
            continue;
        };
        return match discover::stored_verifier(&client, &user).await {
            Ok(Some(stored)) if verifier::matches(&stored, pending.expose(), &user) => Settlement::Committed,
            Ok(Some(stored)) if current.is_some_and(|c| verifier::matches(&stored, c.expose(), &user)) => {
                Settlement::NotCommitted
            }
            Ok(Some(_)) => Settlement::Undetermined(format!(
                "the stored password of {user} is neither the pending nor the current one"
            )),
            // No verifier to read (not a superuser, or no password set): a login decides, made
            // after the wait, since the one above preceded it and a rotation may have committed
            // in between.
            Ok(None) => match target.as_login(&user, password).connect_raw().await {
                Ok(_) => settlement,
                Err(err) => Settlement::Undetermined(format!(
                    "{user} could log in with the {} password before waiting for the rotation lock but not after \
                     ({})",
                    if settlement == Settlement::Committed { "pending" } else { "current" },
                    err.describe()
                )),
            },
            Err(err) => Settlement::Undetermined(format!("cannot read the stored password of {user} ({err})")),
        };
    }
    Settlement::Undetermined(format!(
        "the server rejected every candidate password for {user} ({rejected} logins over two rounds)"
    ))
}
