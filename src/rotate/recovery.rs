//! Crash recovery: deciding which password the database holds when a pending `.env` exists.
//!
//! The pending file is written and fsync'd before the transaction starts, so at every instant
//! either `.env` or `<env>.pending` holds a password the database accepts. Recovery asks the
//! database which one, and never changes the database itself: it only makes `.env` agree.

use tokio_postgres::error::SqlState;

use super::discover::stored_verifier;
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
    matches!(err.code(), Some(c) if *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
}

/// Finds out whether `pending` or `current` is the admin role's password.
///
/// A successful login decides, unless the stored verifier can be read: then the verifier
/// decides, because a `trust` line in `pg_hba.conf` accepts any password.
pub async fn which_password(target: &Target, pending: &Secret, current: Option<&Secret>) -> Holder {
    let user = target.user().to_owned();
    let candidates = std::iter::once((pending, Holder::Pending)).chain(current.map(|c| (c, Holder::Current)));
    let mut rejected = 0;
    for (password, holder) in candidates {
        match target.as_login(&user, password).connect_raw().await {
            Ok(client) => {
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
