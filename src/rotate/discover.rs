//! Step 1 of a rotation: what the cluster looks like before anything is decided.
//!
//! Nothing here changes the database. Discovery also takes a fingerprint of the roles'
//! stored verifiers, which the transaction compares again under the advisory lock: if another
//! rotation committed in between, this one stops instead of overwriting a password that some
//! other `.env` already holds.

use std::time::Duration;

use tokio_postgres::Client;

use super::sql;
use super::verifier::Encryption;
use crate::analytics::{self, UrlColumns};
use crate::db::{describe, Target};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::stack::internals::internals_candidates;
use crate::stack::roles::{rotated_role_names, PASSWORDLESS_ROLE};

/// `supabase_read_only_user`, as found.
#[derive(Debug, Clone)]
pub struct ReadOnlyRole {
    /// Whether it has `LOGIN`.
    pub can_login: bool,
    /// Its stored verifier, if it has a password (secret: an md5 verifier logs in).
    pub verifier: Option<Secret>,
}

/// `_analytics.source_backends` as found.
#[derive(Debug, Clone)]
pub struct Analytics {
    /// Where the URLs live.
    pub columns: UrlColumns,
    /// How many `type = 'postgres'` rows carry a URL.
    pub postgres_rows: i64,
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
}

/// Everything the plan is made from.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The database holding `_analytics` / `_supavisor` (where the transaction runs).
    pub work_db: String,
    /// `SHOW password_encryption`.
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
    password_encryption: String,
}

/// One round trip for everything that does not depend on the answer to something else.
async fn internals(client: &Client, lock_timeout: Duration) -> Result<Internals> {
    crate::db::bound_session(client, lock_timeout).await.map_err(|e| db_error("discovery", &e))?;
    let row = client.query_one(&sql::internals(), &[]).await.map_err(|e| db_error("discovery", &e))?;
    Ok(Internals {
        analytics: analytics::url_columns(row.get(0), row.get::<_, Option<String>>(1).as_deref(), row.get(2)),
        supavisor_owner: row.get(3),
        superuser: row.get::<_, Option<bool>>(4).unwrap_or(false),
        password_encryption: row.get(5),
    })
}

impl Internals {
    fn holds_internals(&self) -> bool {
        !matches!(self.analytics, Ok(None)) || self.supavisor_owner.is_some()
    }
}

/// Connects to the database that holds the Supabase internals and looks around.
///
/// `_supabase` is tried first (current stacks), then the main database (older stacks). Roles
/// are cluster-wide, so whichever database is chosen, one transaction covers every role.
///
/// Every statement is bounded: the session gets `lock_timeout` (an uncommitted `ALTER TABLE` on
/// `_analytics.source_backends` must not hold the run, and the `.env` lock, for ever) and a
/// `statement_timeout`.
pub async fn discover(target: &Target, lock_timeout: Duration) -> Result<(Discovery, Client, Target)> {
    // `_supabase` first: on current stacks that is the only login this needs (each login is a
    // SCRAM handshake, a few milliseconds of hashing on both sides). The last candidate (the
    // main database) is used whatever it holds, and must exist.
    let mut candidates = internals_candidates(target.dbname()).peekable();
    let mut chosen = None;
    while let Some(dbname) = candidates.next() {
        let last = candidates.peek().is_none();
        let candidate = target.in_database(dbname);
        let client = if last { Some(candidate.connect().await?) } else { candidate.connect_if_exists().await? };
        let Some(client) = client else { continue };
        let found = internals(&client, lock_timeout).await?;
        if last || found.holds_internals() {
            chosen = Some((client, candidate, found));
            break;
        }
    }
    // internals_candidates always yields at least one database, and the last one is chosen.
    let Some((client, work_target, internals)) = chosen else {
        return Err(Error::Database { step: "discovery".into(), reason: "no database to look in".into() });
    };

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

    let setting = &internals.password_encryption;
    let encryption = Encryption::from_setting(setting).ok_or_else(|| Error::Database {
        step: "discovery".into(),
        reason: format!("password_encryption is '{setting}', expected scram-sha-256 or md5"),
    })?;

    // The remaining reads are independent: sent together, they cost one round trip.
    let names: Vec<&str> = rotated_role_names().chain([PASSWORDLESS_ROLE]).collect();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&names, &PASSWORDLESS_ROLE];
    let roles_query = client.query(sql::ROLES, &params);
    let url_columns = internals
        .analytics
        .map_err(|unsupported| Error::Database { step: "discovery".into(), reason: unsupported.to_string() })?;
    let analytics_query = async {
        match url_columns {
            Some(columns) => analytics::count_postgres_urls(&client, columns)
                .await
                .map(|postgres_rows| Some(Analytics { columns, postgres_rows }))
                .map_err(|e| db_error("discovery", &e)),
            None => Ok(None),
        }
    };
    let (rows, fingerprint, analytics) = tokio::join!(roles_query, fingerprint(&client), analytics_query);
    let rows = rows.map_err(|e| db_error("discovery", &e))?;
    let (fingerprint, analytics) = (fingerprint?, analytics?);
    let login_of = |name: &str| rows.iter().find(|r| r.get::<_, String>(0) == name).map(|r| r.get::<_, bool>(1));
    let roles = rotated_role_names()
        .map(|name| RoleState { name, exists: login_of(name).is_some(), can_login: login_of(name).unwrap_or(false) })
        .collect();

    let discovery = Discovery {
        work_db: work_target.dbname().to_owned(),
        encryption,
        roles,
        read_only: rows
            .iter()
            .find(|r| r.get::<_, String>(0) == PASSWORDLESS_ROLE)
            .map(|r| ReadOnlyRole { can_login: r.get(1), verifier: r.get::<_, Option<String>>(2).map(Secret::new) }),
        analytics,
        supavisor_owner: internals.supavisor_owner,
        fingerprint,
    };
    Ok((discovery, client, work_target))
}

/// The fingerprint of the rotated roles' stored verifiers.
pub async fn fingerprint(client: &Client) -> Result<String> {
    let messages = client.simple_query(&sql::fingerprint()).await.map_err(|e| db_error("discovery", &e))?;
    Ok(sql::last_value(&messages).unwrap_or_default())
}

/// The stored verifier of `role`, read by a superuser; for crash recovery.
pub async fn stored_verifier(client: &Client, role: &str) -> Result<Option<String>> {
    let row = client
        .query_opt(sql::STORED_VERIFIER, &[&role])
        .await
        .map_err(|e| db_error("reading the stored verifier", &e))?;
    Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
}

/// The rotated roles that exist and have LOGIN, connecting as `admin`; for finishing a
/// recovered run. `supabase_read_only_user` counts when it holds the admin's password (the
/// interrupted rotation rotated it too).
pub async fn login_roles(admin: &Target, password: &Secret) -> Result<Vec<String>> {
    let client = admin.connect().await?;
    let step = |e: tokio_postgres::Error| db_error("listing LOGIN roles", &e);
    let mut roles = crate::discovery::login_role_names(&client).await.map_err(step)?;
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
