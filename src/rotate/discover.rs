//! Step 1 of a rotation: what the cluster looks like before anything is decided.
//!
//! Nothing here changes the database. Discovery also takes a fingerprint of the roles'
//! stored verifiers, which the transaction compares again under the advisory lock: if another
//! rotation committed in between, this one stops instead of overwriting a password that some
//! other `.env` already holds.

use tokio_postgres::Client;

use super::verifier::Encryption;
use crate::db::{describe, Target};
use crate::error::{Error, Result};
use crate::stack::internals::INTERNALS_DATABASE;
use crate::stack::roles::{login_role_names, rotated_role_names, PASSWORDLESS_ROLE};

/// Where `_analytics.source_backends` keeps a backend's connection URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlColumn {
    /// `config->>'url'` (Logflare's current layout; `config` is jsonb).
    ConfigJsonb,
    /// `config->>'url'` with `config` of type json.
    ConfigJson,
    /// A plain `url` text column.
    Url,
}

/// `_analytics.source_backends` as found.
#[derive(Debug, Clone)]
pub struct Analytics {
    /// Where the URL lives.
    pub column: UrlColumn,
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
    /// Whether `supabase_read_only_user` exists (reported as left alone).
    pub passwordless_role_exists: bool,
    /// `_analytics.source_backends`, if present.
    pub analytics: Option<Analytics>,
    /// Owner of `_supavisor`, if the schema exists.
    pub supavisor_owner: Option<String>,
    /// md5 over the roles' names and stored verifiers (never the verifiers themselves).
    pub fingerprint: String,
}

/// The SQL that fingerprints the stored verifiers of the rotated roles. Parameter-free (the
/// role names are fixed identifiers), so it travels in the simple protocol: one round trip,
/// and the transaction can send it in its first batch.
pub fn fingerprint_sql() -> String {
    let names: Vec<String> = rotated_role_names().map(|r| format!("'{r}'")).collect();
    format!(
        "SELECT coalesce(md5(string_agg(rolname || ':' || coalesce(rolpassword, ''), ',' ORDER BY rolname)), '') \
         FROM pg_authid WHERE rolname IN ({})",
        names.join(", ")
    )
}

/// The first column of the last row a simple query returned.
pub fn last_value(messages: &[tokio_postgres::SimpleQueryMessage]) -> Option<String> {
    messages.iter().rev().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
        _ => None,
    })
}

fn db_error(step: &str, err: &tokio_postgres::Error) -> Error {
    Error::Database { step: step.to_owned(), reason: describe(err) }
}

/// What a database holds of the Supabase internals, and what the session may do there.
struct Internals {
    analytics: bool,
    /// The type of `source_backends.config`, if that column exists.
    config_type: Option<String>,
    /// Whether `source_backends.url` exists.
    has_url_column: bool,
    supavisor_owner: Option<String>,
    superuser: bool,
    password_encryption: String,
}

/// The `pg_attribute` row of a column of `_analytics.source_backends`, by name.
const SOURCE_BACKENDS_COLUMN: &str = "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = '_analytics' AND c.relname = 'source_backends' AND a.attnum > 0 AND NOT a.attisdropped";

/// One round trip for everything that does not depend on the answer to something else. Only
/// catalogs are read (not `information_schema`, whose views cost milliseconds on a fresh
/// session), so a role without rights on the schemas still gets to the superuser check.
async fn internals(client: &Client) -> Result<Internals> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                        WHERE n.nspname = '_analytics' AND c.relname = 'source_backends'), \
                (SELECT format_type(a.atttypid, NULL) {SOURCE_BACKENDS_COLUMN} AND a.attname = 'config'), \
                EXISTS (SELECT 1 {SOURCE_BACKENDS_COLUMN} AND a.attname = 'url'), \
                (SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = '_supavisor'), \
                (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), \
                current_setting('password_encryption')"
    );
    let row = client.query_one(&sql, &[]).await.map_err(|e| db_error("discovery", &e))?;
    Ok(Internals {
        analytics: row.get(0),
        config_type: row.get(1),
        has_url_column: row.get(2),
        supavisor_owner: row.get(3),
        superuser: row.get::<_, Option<bool>>(4).unwrap_or(false),
        password_encryption: row.get(5),
    })
}

impl Internals {
    /// Where `source_backends` keeps its URLs; an error when the table exists without either.
    fn url_column(&self) -> Result<Option<UrlColumn>> {
        if !self.analytics {
            return Ok(None);
        }
        match (self.config_type.as_deref(), self.has_url_column) {
            (Some("jsonb"), _) => Ok(Some(UrlColumn::ConfigJsonb)),
            (Some("json"), _) => Ok(Some(UrlColumn::ConfigJson)),
            (_, true) => Ok(Some(UrlColumn::Url)),
            _ => Err(Error::Database {
                step: "discovery".into(),
                reason: "_analytics.source_backends has neither a config (json/jsonb) nor a url column; \
                         this Logflare version is not supported"
                    .into(),
            }),
        }
    }
}

/// Connects to the database that holds the Supabase internals and looks around.
///
/// `_supabase` is tried first (current stacks), then the main database (older stacks). Roles
/// are cluster-wide, so whichever database is chosen, one transaction covers every role.
pub async fn discover(target: &Target) -> Result<(Discovery, Client, Target)> {
    // `_supabase` first: on current stacks that is the only login this needs (each login is a
    // SCRAM handshake, a few milliseconds of hashing on both sides).
    let supabase_target = target.in_database(INTERNALS_DATABASE);
    let in_supabase = match supabase_target.connect_if_exists().await? {
        Some(client) => {
            let found = internals(&client).await?;
            let holds_internals = found.analytics || found.supavisor_owner.is_some();
            (holds_internals || target.dbname() == INTERNALS_DATABASE).then_some((client, supabase_target, found))
        }
        None => None,
    };
    let (client, work_target, internals) = match in_supabase {
        Some(work) => work,
        None => {
            let main = target.connect().await?;
            let found = internals(&main).await?;
            (main, target.clone(), found)
        }
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
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&names];
    let roles_query = client.query("SELECT rolname::text, rolcanlogin FROM pg_roles WHERE rolname = ANY($1)", &params);
    let url_column = internals.url_column()?;
    let analytics_query = async {
        match url_column {
            Some(column) => analytics(&client, column).await.map(Some),
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
        passwordless_role_exists: login_of(PASSWORDLESS_ROLE).is_some(),
        analytics,
        supavisor_owner: internals.supavisor_owner,
        fingerprint,
    };
    Ok((discovery, client, work_target))
}

/// How many postgres rows carry a URL in `column`.
async fn analytics(client: &Client, column: UrlColumn) -> Result<Analytics> {
    let postgres_rows: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM _analytics.source_backends WHERE type = 'postgres' AND {} IS NOT NULL",
                url_expr(column)
            ),
            &[],
        )
        .await
        .map_err(|e| db_error("discovery", &e))?
        .get(0);
    Ok(Analytics { column, postgres_rows })
}

/// The SQL expression that reads a row's URL.
pub fn url_expr(column: UrlColumn) -> &'static str {
    match column {
        UrlColumn::ConfigJsonb | UrlColumn::ConfigJson => "(config::jsonb ->> 'url')",
        UrlColumn::Url => "url",
    }
}

/// The fingerprint of the rotated roles' stored verifiers.
pub async fn fingerprint(client: &Client) -> Result<String> {
    let messages = client.simple_query(&fingerprint_sql()).await.map_err(|e| db_error("discovery", &e))?;
    Ok(last_value(&messages).unwrap_or_default())
}

/// The stored verifier of `role`, read by a superuser; for crash recovery.
pub async fn stored_verifier(client: &Client, role: &str) -> Result<Option<String>> {
    let row = client
        .query_opt("SELECT rolpassword FROM pg_authid WHERE rolname = $1", &[&role])
        .await
        .map_err(|e| db_error("reading the stored verifier", &e))?;
    Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
}

/// [`login_role_names`], connecting as `admin`.
pub async fn login_roles(admin: &Target) -> Result<Vec<String>> {
    let client = admin.connect().await?;
    login_role_names(&client).await.map_err(|e| db_error("listing LOGIN roles", &e))
}
