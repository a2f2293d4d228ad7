//! Step 1 of a rotation: what the cluster looks like before anything is decided.
//!
//! Nothing here changes the database. Discovery also takes a fingerprint of the roles'
//! stored verifiers, which the transaction compares again under the rotation lock: if another
//! rotation committed in between, this one stops instead of overwriting a password that some
//! other `.env` already holds.

use std::time::Duration;

use tokio_postgres::Client;

use super::sql;
use super::verifier::Encryption;
use crate::analytics::{self, UrlColumns};
use crate::db::{self, describe, Target};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::stack::internals::internals_candidates;
use crate::stack::roles::{rotated_role_names, PASSWORDLESS_ROLE};

/// `supabase_read_only_user`, as found.
#[derive(Debug, Clone)]
pub struct ReadOnlyRole {
    /// Whether it has `LOGIN`.
    pub can_login: bool,
    /// Why it cannot log in anyway, if so.
    pub cannot_log_in: Option<String>,
    /// Its stored verifier, if it has a password (secret: an md5 verifier logs in).
    pub verifier: Option<Secret>,
}

/// `_analytics.source_backends` as found.
pub struct Analytics {
    /// Where the URLs live.
    pub columns: UrlColumns,
    /// Its `type = 'postgres'` rows that carry a URL (secret: the URLs hold passwords).
    pub backends: Vec<analytics::Backend>,
}

/// One of the twelve roles, as found.
#[derive(Debug, Clone)]
pub struct RoleState {
    /// Its name.
    pub name: &'static str,
    /// Whether it exists in this cluster.
    pub exists: bool,
    /// Whether it has `LOGIN` (only those are verified by logging in).
    pub can_login: bool,
    /// The kind of verifier it has now, if it has one (it keeps that kind).
    pub verifier_kind: Option<Encryption>,
    /// Why a LOGIN role cannot log in anyway (`VALID UNTIL` in the past, `CONNECTION LIMIT 0`).
    pub cannot_log_in: Option<String>,
}

/// Everything the plan is made from.
pub struct Discovery {
    /// The database holding `_analytics` / `_supavisor` (where the transaction runs).
    pub work_db: String,
    /// The server's configured `password_encryption` (not a per-role or per-session override):
    /// what a role without a verifier gets.
    pub encryption: Encryption,
    /// The twelve roles.
    pub roles: Vec<RoleState>,
    /// `supabase_read_only_user`, if it exists.
    pub read_only: Option<ReadOnlyRole>,
    /// `_analytics.source_backends`, if present.
    pub analytics: Option<Analytics>,
    /// Owner of `_supavisor`, if the schema exists.
    pub supavisor_owner: Option<String>,
    /// md5 over the roles' names and stored verifiers (never the verifiers themselves).
    pub fingerprint: String,
}

fn db_error(step: &str, err: &tokio_postgres::Error) -> Error {
    Error::Database { step: step.to_owned(), reason: describe(err) }
}

/// What a database holds of the Supabase internals, and what the session may do there.
struct Internals {
    /// `_analytics.source_backends`: absent, or where its URLs are, or unsupported.
    analytics: std::result::Result<Option<UrlColumns>, analytics::Unsupported>,
    supavisor_owner: Option<String>,
    superuser: bool,
}

/// One read for everything that does not depend on the answer to something else, bounded in a
/// transaction of its own ([`db::bounded_read`]): nothing stays set on the session.
async fn internals(client: &Client, lock_timeout: Duration) -> Result<Internals> {
    let rows = db::bounded_read(client, lock_timeout, &sql::internals(), &[]).await;
    let rows = rows.map_err(|e| db_error("discovery", &e))?;
    let row = rows.first().ok_or_else(|| Error::Database { step: "discovery".into(), reason: "no answer".into() })?;
    Ok(Internals {
        analytics: analytics::url_columns(row.get(0), row.get::<_, Option<String>>(1).as_deref(), row.get(2)),
        supavisor_owner: row.get(3),
        superuser: row.get::<_, Option<bool>>(4).unwrap_or(false),
    })
}

impl Internals {
    fn holds_internals(&self) -> bool {
        !matches!(self.analytics, Ok(None)) || self.supavisor_owner.is_some()
    }
}

/// Connects to the database that holds the Supabase internals and looks around.
///
/// `_supabase` is tried first (current stacks), then the main database (older stacks), in the
/// order of [`internals_candidates`]. Roles are cluster-wide, so whichever database is chosen,
/// one transaction covers every role.
///
/// Every statement is bounded: each read runs in a read-only transaction of its own with
/// `lock_timeout` (an uncommitted `ALTER TABLE` on `_analytics.source_backends` must not hold
/// the run, and the `.env` lock, for ever) and a `statement_timeout`, set with `SET LOCAL`
/// ([`db::bounded_reads`]), so nothing of ours stays on a server connection that a
/// transaction-mode pooler hands to its next client (a dry run ends the session right after).
pub async fn discover(target: &Target, lock_timeout: Duration) -> Result<(Discovery, Client, Target)> {
    let (client, work_target, internals) = work_session(target, lock_timeout).await?;
    if !internals.superuser {
        return Err(Error::Connect {
            target: target.host_port(),
            user: target.user().to_owned(),
            reason: "this role is not a superuser; rotation needs one to silence statement logging \
                     (SET LOCAL log_statement) and to read pg_authid; connect as supabase_admin"
                .into(),
            sqlstate: None,
        });
    }

    let url_columns = internals
        .analytics
        .map_err(|unsupported| Error::Database { step: "discovery".into(), reason: unsupported.to_string() })?;
    let read = db::bounded_reads(&client, lock_timeout, async |client| the_rest(client, url_columns).await);
    let (rows, fingerprint, analytics, encryption) = read.await.map_err(|e| db_error("discovery", &e))??;
    let (roles, read_only) = role_states(&rows);
    let discovery = Discovery {
        work_db: work_target.dbname().to_owned(),
        encryption,
        roles,
        read_only,
        analytics,
        supavisor_owner: internals.supavisor_owner,
        fingerprint,
    };
    Ok((discovery, client, work_target))
}

/// The reads after the superuser check: independent, so sent together they cost one round trip.
/// The roles' rows, the fingerprint of their verifiers, the analytics backends and the server's
/// configured `password_encryption`.
async fn the_rest(
    client: &Client,
    url_columns: Option<UrlColumns>,
) -> Result<(Vec<tokio_postgres::Row>, String, Option<Analytics>, Encryption)> {
    let names: Vec<&str> = rotated_role_names().chain([PASSWORDLESS_ROLE]).collect();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&names, &PASSWORDLESS_ROLE];
    let roles_query = client.query(sql::ROLES, &params);
    let encryption_query = client.query_one(sql::SERVER_PASSWORD_ENCRYPTION, &[]);
    let analytics_query = async {
        match url_columns {
            Some(columns) => analytics::read_backends(client, columns)
                .await
                .map(|backends| Some(Analytics { columns, backends }))
                .map_err(|e| db_error("discovery", &e)),
            None => Ok(None),
        }
    };
    let (rows, fingerprint, analytics, encryption) =
        tokio::join!(roles_query, fingerprint(client), analytics_query, encryption_query);
    let rows = rows.map_err(|e| db_error("discovery", &e))?;
    let encryption = configured_encryption(&encryption.map_err(|e| db_error("discovery", &e))?)?;
    Ok((rows, fingerprint?, analytics?, encryption))
}

/// The server's configured `password_encryption`, from its row.
fn configured_encryption(row: &tokio_postgres::Row) -> Result<Encryption> {
    let setting: String = row.get(0);
    Encryption::from_setting(&setting).ok_or_else(|| Error::Database {
        step: "discovery".into(),
        reason: format!("password_encryption is '{setting}', expected scram-sha-256 or md5"),
    })
}

/// The twelve roles and the read-only one, from the rows of `sql::ROLES`.
fn role_states(rows: &[tokio_postgres::Row]) -> (Vec<RoleState>, Option<ReadOnlyRole>) {
    let row_of = |name: &str| rows.iter().find(|r| r.get::<_, String>(0) == name);
    let kind_of =
        |row: &tokio_postgres::Row| row.get::<_, Option<String>>(3).and_then(|k| Encryption::from_setting(&k));
    let roles = rotated_role_names()
        .map(|name| match row_of(name) {
            Some(row) => RoleState {
                name,
                exists: true,
                can_login: row.get(1),
                verifier_kind: kind_of(row),
                cannot_log_in: row.get(4),
            },
            None => RoleState { name, exists: false, can_login: false, verifier_kind: None, cannot_log_in: None },
        })
        .collect();
    let read_only = row_of(PASSWORDLESS_ROLE).map(|r| ReadOnlyRole {
        can_login: r.get(1),
        cannot_log_in: r.get(4),
        verifier: r.get::<_, Option<String>>(2).map(Secret::new),
    });
    (roles, read_only)
}

/// The session in the work database and what it holds: the first of the stack's internals
/// candidates that holds them (`_supabase` on current stacks), else the database `target` names.
async fn work_session(target: &Target, lock_timeout: Duration) -> Result<(Client, Target, Internals)> {
    // The internals database first: on current stacks that is the only login this needs (each
    // login is a SCRAM handshake, a few milliseconds of hashing on both sides).
    for dbname in internals_candidates(target.dbname()).filter(|dbname| *dbname != target.dbname()) {
        let candidate = target.in_database(dbname);
        if let Some(client) = candidate.connect_if_exists().await? {
            let found = internals(&client, lock_timeout).await?;
            if found.holds_internals() {
                return Ok((client, candidate, found));
            }
        }
    }
    // The database the operator named is the work database whatever it holds.
    let main = target.connect().await?;
    let found = internals(&main, lock_timeout).await?;
    Ok((main, target.clone(), found))
}

/// The fingerprint of the rotated roles' stored verifiers.
pub async fn fingerprint(client: &Client) -> Result<String> {
    let messages = client.simple_query(&sql::fingerprint()).await.map_err(|e| db_error("discovery", &e))?;
    Ok(sql::last_value(&messages).unwrap_or_default())
}

/// The rotated roles that exist and can log in now (LOGIN, not expired, connections allowed),
/// connecting as `admin`; for finishing a recovered run. `supabase_read_only_user` counts when it holds the admin's password (the
/// interrupted rotation rotated it too).
pub async fn login_roles(admin: &Target, password: &Secret) -> Result<Vec<String>> {
    let client = admin.connect().await?;
    let step = |e: tokio_postgres::Error| db_error("listing LOGIN roles", &e);
    let names: Vec<&str> = rotated_role_names().collect();
    let rows = client.query(sql::LOGIN_ROLES_NOW, &[&names]).await.map_err(step)?;
    let mut roles: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let read_only = client
        .query_opt(sql::LOGIN_VERIFIER, &[&PASSWORDLESS_ROLE])
        .await
        .map_err(step)?
        .and_then(|row| row.get::<_, Option<String>>(0))
        .map(Secret::new);
    if read_only.is_some_and(|stored| super::verifier::matches(stored.expose(), password.expose(), PASSWORDLESS_ROLE)) {
        roles.push(PASSWORDLESS_ROLE.to_owned());
    }
    Ok(roles)
}
