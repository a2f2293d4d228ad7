//! Crash recovery: deciding which password the database holds when a pending `.env` exists.
//!
//! The pending file is written and fsync'd before the transaction starts, so at every instant
//! either `.env` or `<env>.pending` holds a password the database accepts. Recovery asks the
//! database which one, and never changes the database itself: it only makes `.env` agree.

use super::discover::stored_verifier;
use super::transaction::ADVISORY_LOCK_KEY;
use super::verifier;
use crate::db::{describe, Target};
use crate::secrets::Secret;

/// Which password the database holds for the admin role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// The pending (new) password: the rotation committed.
    Pending,
    /// The current `.env`'s (old) password: the rotation never committed.
    Current,
    /// Neither could be confirmed; the reason says why (unreachable, both rejected).
    Unknown(String),
}

fn is_auth_failure(err: &tokio_postgres::Error) -> bool {
    err.code().is_some_and(|c| crate::db::is_auth_failure_code(c.code()))
}

/// How long recovery waits for a session that still holds the rotation's advisory lock.
const SETTLE_TIMEOUT_MS: u64 = 30_000;

/// Waits until no session holds the rotation's advisory lock, so the transaction it guards has
/// finished one way or the other. A backend whose client vanished during `COMMIT` may still be
/// committing (or only about to read `COMMIT` from its socket); reading the verifier before it
/// is done could see the old password and discard a pending file whose password is about to
/// become the live one.
async fn wait_for_rotations_to_finish(client: &tokio_postgres::Client) -> Result<(), String> {
    let sql = format!(
        "SET lock_timeout = '{SETTLE_TIMEOUT_MS}ms'; SELECT pg_advisory_lock({key}); SELECT pg_advisory_unlock({key}); RESET lock_timeout",
        key = ADVISORY_LOCK_KEY
    );
    client.batch_execute(&sql).await.map_err(|e| {
        format!(
            "another session still holds the rotation lock after {} s ({}); it may be a rotation in progress",
            SETTLE_TIMEOUT_MS / 1000,
            describe(&e)
        )
    })
}

/// Finds out whether `pending` or `current` is the admin role's password.
///
/// First waits for any transaction under the rotation lock to end. Then a successful login
/// decides, unless the stored verifier can be read: then the verifier decides, because a
/// `trust` line in `pg_hba.conf` accepts any password.
pub async fn which_password(target: &Target, pending: &Secret, current: Option<&Secret>) -> Holder {
    let user = target.user().to_owned();
    let candidates = std::iter::once((pending, Holder::Pending)).chain(current.map(|c| (c, Holder::Current)));
    let mut rejected = 0;
    for (password, holder) in candidates {
        match target.as_login(&user, password).connect_raw().await {
            Ok(client) => {
                if let Err(why) = wait_for_rotations_to_finish(&client).await {
                    return Holder::Unknown(why);
                }
                return match stored_verifier(&client, &user).await {
                    Ok(Some(stored)) if verifier::matches(&stored, pending.expose(), &user) => Holder::Pending,
                    Ok(Some(stored)) if current.is_some_and(|c| verifier::matches(&stored, c.expose(), &user)) => {
                        Holder::Current
                    }
                    Ok(Some(_)) => Holder::Unknown(format!(
                        "the stored password of {user} is neither the pending nor the current one"
                    )),
                    // No verifier to read (not a superuser, or no password set): the login decides.
                    _ => holder,
                };
            }
            Err(err) if is_auth_failure(&err) => rejected += 1,
            Err(err) => {
                return Holder::Unknown(format!("cannot reach {}: {}", target.host_port(), describe(&err)));
            }
        }
    }
    Holder::Unknown(format!("the server rejected all {rejected} candidate password(s) for {user}"))
}
