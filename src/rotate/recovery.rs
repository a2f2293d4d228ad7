//! Crash recovery: deciding whether an interrupted rotation committed, when a pending `.env`
//! exists or the connection broke during `COMMIT`.
//!
//! The pending file is written and fsync'd before the transaction starts, so at every instant
//! either `.env` or `<env>.pending` holds a password the database accepts — unless someone
//! changes the passwords by hand meanwhile. Recovery asks the database which one, with
//! whatever credentials work (the operator's `--db-url` as another superuser included), by
//! reading the stored verifiers and comparing them on the client; it never changes the
//! database itself: it only tells the caller, who makes `.env` agree (and, during `--dry-run`,
//! only says what it would do). When neither password is live it says so, and how to get out.

use super::sql;
use super::verifier;
use crate::db::{describe, Target, DEFAULT_USER};
use crate::envfile::{EnvFileError, LockedEnv};
use crate::error::{Error, Result};
use crate::limits::Limit;
use crate::secret::Secret;
use crate::stack::roles::{is_rotated_role, rotated_role_names, PASSWORDLESS_ROLE};
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
    /// The stored passwords match neither file (changed by hand since), read with credentials
    /// that work: it may be discarded after the confirmation, and the rotation then gives every
    /// role a password both files agree on. Says what was found.
    NeitherLive(String),
}

/// What the database says about a rotation whose outcome this run did not see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// The stack's roles hold the new (pending) password: the rotation committed.
    Committed,
    /// They hold the old (current `.env`) password: it never committed.
    NotCommitted,
    /// Neither password is live: the stored verifiers match neither (`connected`: read with
    /// credentials that work), or every login with either was rejected (`!connected`).
    NeitherLive {
        /// Whether some credentials worked (so this run can go on and rotate).
        connected: bool,
        /// What was found.
        why: String,
    },
    /// Neither could be confirmed; the reason says why (unreachable, a rotation still in
    /// flight, no credentials that may read the stored passwords).
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
    // A pending file staged by rotate-secrets is settled by rotate-secrets (it asks the database
    // about its transactions); taken for an uncommitted rotation here, it would be discarded.
    if crate::rotation::xact::parse_marker(&pending.render()).is_some() {
        return Err(Error::Precondition(format!(
            "{} is left by an interrupted rotate-secrets run; run `pmoves-secrets rotate-secrets` with the same keys to \
             settle it first; nothing was changed",
            pending_path.display()
        )));
    }
    let Some(new_password) =
        pending.get(POSTGRES_PASSWORD).filter(|v| !v.is_empty()).map(|v| Secret::new(v.to_owned()))
    else {
        ui.warn(&format!("{} has no {POSTGRES_PASSWORD}; it cannot stem from a rotation", pending_path.display()));
        return Ok(Some(Leftover::Uncommitted));
    };
    if current.is_some_and(|c| c == &new_password) {
        return Ok(Some(Leftover::Uncommitted));
    }
    match settle(target, &new_password, current).await {
        Settlement::Committed => Ok(Some(Leftover::Committed(new_password))),
        Settlement::NotCommitted => Ok(Some(Leftover::Uncommitted)),
        Settlement::NeitherLive { connected: true, why } => Ok(Some(Leftover::NeitherLive(why))),
        Settlement::NeitherLive { connected: false, why } => Err(neither_live(env_lock, target, &why)),
        Settlement::Undetermined(why) => Err(super::undetermined(env_lock, &why)),
    }
}

/// Exit 4 when neither file's password is accepted and no credentials given can read the
/// stored ones: says so, and the one way out that works (a rerun alone cannot).
fn neither_live(env_lock: &LockedEnv, target: &Target, why: &str) -> Error {
    Error::NeitherPasswordLive {
        what: format!(
            "neither {env}'s password nor {pending}'s is live ({why}): someone changed the roles' passwords \
             after the interrupted rotation",
            env = env_lock.path().display(),
            pending = env_lock.pending_path().display()
        ),
        recovery: format!(
            "run rotate-passwords again with the live password of a superuser, in --db-url \
             postgresql://<superuser>@{host}/{db} or (kept out of `ps`) in the {var} variable; it reads \
             which password the roles hold, discards {pending} after the confirmation and gives every role a \
             new password that {env} then holds. Both files are kept until then",
            host = target.host_port(),
            db = target.dbname(),
            var = crate::db::DB_URL_VAR,
            env = env_lock.path().display(),
            pending = env_lock.pending_path().display()
        ),
    }
}

/// How long recovery waits for a session that still holds the rotation lock.
const SETTLE_TIMEOUT: Limit = Limit::new("settle", std::time::Duration::from_secs(30));

/// How much longer than [`SETTLE_TIMEOUT`] the server may take to answer at all.
const SETTLE_SILENCE_LIMIT: Limit = Limit::new("settle-silence", std::time::Duration::from_secs(30));

/// Waits until no session holds the rotation lock (cluster-wide), so the transaction it
/// guards has finished one way or the other. A backend whose client vanished during `COMMIT`
/// may still be committing (or only about to read `COMMIT` from its socket); reading the
/// verifiers before it is done could see the old password and discard a pending file whose
/// password is about to become the live one.
async fn wait_for_rotations_to_finish(client: &tokio_postgres::Client) -> std::result::Result<(), String> {
    client.batch_execute(&sql::wait_for_rotation_lock(SETTLE_TIMEOUT.get())).await.map_err(|e| {
        format!(
            "a rotation still holds its lock after {} s ({}); it may still be committing",
            SETTLE_TIMEOUT.get().as_secs(),
            describe(&e)
        )
    })
}

/// Finds out whether `pending` or `current` is the stack's password.
///
/// Logs in with whatever credentials work (the target as given, then the stack's admin role
/// with either password), waits for any transaction under the rotation lock to end, then
/// reads the stored verifiers of the stack's roles and compares them with both passwords on
/// the client. A login alone decides only when the verifiers cannot be read (not a
/// superuser): a `trust` line in `pg_hba.conf` accepts any password.
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

/// What a successful login with a candidate proves by itself (without the verifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evidence {
    Pending,
    Current,
    Nothing,
}

/// The logins to try, in order: the target as given (the operator's `--db-url`, or the
/// `.env`'s role and password), then its role and the stack's admin role with each password.
fn candidates(target: &Target, pending: &Secret, current: Option<&Secret>) -> Vec<(Target, Evidence)> {
    let evidence_of = |password: Option<&Secret>| match password {
        Some(p) if p == pending => Evidence::Pending,
        Some(p) if current == Some(p) => Evidence::Current,
        _ => Evidence::Nothing,
    };
    let mut out = vec![(target.clone(), evidence_of(target.password().as_ref()))];
    let mut users = vec![target.user().to_owned()];
    if target.user() != DEFAULT_USER {
        users.push(DEFAULT_USER.to_owned());
    }
    for user in users.iter().filter(|u| *u == DEFAULT_USER || is_rotated_role(u)) {
        for (password, evidence) in
            std::iter::once((pending, Evidence::Pending)).chain(current.map(|c| (c, Evidence::Current)))
        {
            let seen = out.iter().any(|(t, _)| t.user() == user && t.password().as_ref() == Some(password));
            if !seen {
                out.push((target.as_login(user, password), evidence));
            }
        }
    }
    out
}

async fn settle_with(target: &Target, pending: &Secret, current: Option<&Secret>) -> Settlement {
    let mut rejected = Vec::new();
    // Two passes: a rotation still committing can flip the password once, between a refused
    // login with the pending password and a refused one with the current password. The flip
    // happens at most once, so the second pass finds the password that is live.
    let logins = candidates(target, pending, current);
    for (login, evidence) in logins.iter().chain(logins.iter()) {
        match login.connect_raw().await {
            Ok(client) => return judge(&client, login, *evidence, pending, current).await,
            Err(err) if err.is_auth_failure() => rejected.push(login.user().to_owned()),
            Err(err) if err.sqlstate() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) => {
                rejected.push(format!("{} (no database {})", login.user(), login.dbname()))
            }
            Err(err) => {
                return Settlement::Undetermined(format!("cannot reach {}: {}", target.host_port(), err.describe()))
            }
        }
    }
    rejected.sort();
    rejected.dedup();
    Settlement::NeitherLive {
        connected: false,
        why: format!("the server rejected the pending and the current password for {}", rejected.join(", ")),
    }
}

/// Decides, on a session that logged in: the stored verifiers if they can be read, else what
/// the login itself proves (confirmed by a second login after the wait).
async fn judge(
    client: &tokio_postgres::Client,
    login: &Target,
    evidence: Evidence,
    pending: &Secret,
    current: Option<&Secret>,
) -> Settlement {
    if let Err(why) = wait_for_rotations_to_finish(client).await {
        return Settlement::Undetermined(why);
    }
    let names: Vec<&str> = rotated_role_names().chain([PASSWORDLESS_ROLE]).collect();
    if let Ok(rows) = client.query(sql::STORED_VERIFIERS, &[&names]).await {
        let stored: Vec<(String, Secret)> = rows
            .iter()
            .filter_map(|r| Some((r.get::<_, String>(0), Secret::new(r.get::<_, Option<String>>(1)?))))
            .collect();
        return classify(&stored, pending, current);
    }
    // No verifiers to read (not a superuser): the login decides, made again after the wait,
    // since the first one preceded it and a rotation may have committed in between.
    let settlement = match evidence {
        Evidence::Pending => Settlement::Committed,
        Evidence::Current => Settlement::NotCommitted,
        Evidence::Nothing => {
            return Settlement::Undetermined(format!(
                "{} may not read the stored passwords (pg_authid); connect as a superuser",
                login.user()
            ))
        }
    };
    match login.connect_raw().await {
        Ok(_) => settlement,
        Err(err) => Settlement::Undetermined(format!(
            "{} could log in before waiting for the rotation lock but not after ({})",
            login.user(),
            err.describe()
        )),
    }
}

/// The rotation's transaction changes every role at once: one role holding the pending
/// password proves it committed, one holding the current one that it did not (roles changed
/// by hand since do not count either way).
fn classify(stored: &[(String, Secret)], pending: &Secret, current: Option<&Secret>) -> Settlement {
    let holds =
        |password: &Secret| stored.iter().any(|(role, v)| verifier::matches(v.expose(), password.expose(), role));
    if holds(pending) {
        return Settlement::Committed;
    }
    if current.is_some_and(holds) {
        return Settlement::NotCommitted;
    }
    Settlement::NeitherLive {
        connected: true,
        why: format!(
            "the stored passwords of the stack's {} role(s) with one match neither the pending nor the current one",
            stored.len()
        ),
    }
}
