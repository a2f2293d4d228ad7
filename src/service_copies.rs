//! The copies of secrets the services keep in the database ([`crate::stack::copies`]), found and
//! read on a live server. `check --db` compares them with the `.env`; a rotation rewrites them.
//!
//! Each table is looked for where its service creates it ([`Database`]): the internals database
//! first and then the main one for Supavisor's and Logflare's, the main database for Realtime's.
//! A table that is not there is [`Found::Absent`] (the stack does not run that service, or it has
//! not started yet); one that is there but cannot be read is [`Found::Unreadable`]. Values stay
//! wrapped ([`Secret`], zeroized bytes) and are never printed.

use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row};
use zeroize::Zeroizing;

use crate::db::{self, Located as Location, Target};
use crate::secret::Secret;
use crate::stack::copies::{Copy, CopyId, Database, LOGFLARE_TOKENS, REALTIME_CDC_EXTENSION, REALTIME_SEEDED_TENANT};

/// Where a copy's table is, and what was read there.
pub enum Found<T> {
    /// No candidate database has the table.
    Absent,
    /// The table's rows (those that hold copies).
    Rows {
        /// The database holding the table.
        dbname: String,
        /// What was read.
        rows: Vec<T>,
    },
    /// The table is there but could not be read.
    Unreadable {
        /// The database holding the table.
        dbname: String,
        /// Why, for the operator (no value in it).
        reason: String,
    },
}

/// Finds the first database that holds `copy`'s table, in the order of
/// [`Database::candidates`]. `main` is a session already open on `target`'s database; every
/// look is bounded by `lock_timeout`.
pub async fn locate<'a>(
    target: &Target,
    main: &'a Client,
    copy: &Copy,
    lock_timeout: Duration,
) -> Result<Option<Location<'a>>, (String, String)> {
    let candidates = copy.database.candidates(target.dbname());
    db::find_table(target, main, candidates, (copy.schema, copy.table), lock_timeout)
        .await
        .map_err(|(dbname, err)| (dbname, db::describe(&err)))
}

/// The rows `sql` returns where `copy`'s table is, each made by `row`: an unnamed statement in a
/// bounded read-only transaction of its own ([`db::bounded_read`]), so a transaction-mode pooler
/// neither carries a prepared statement between server sessions nor keeps a setting of ours.
async fn read<T>(
    target: &Target,
    main: &Client,
    copy: &Copy,
    lock_timeout: Duration,
    sql: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
    row: impl Fn(&Row) -> Result<T, tokio_postgres::Error>,
) -> Found<T> {
    match locate(target, main, copy, lock_timeout).await {
        Ok(None) => Found::Absent,
        Err((dbname, reason)) => Found::Unreadable { dbname, reason },
        Ok(Some(location)) => {
            let rows = db::bounded_read(location.client(), lock_timeout, sql, params).await;
            match rows.and_then(|rows| rows.iter().map(&row).collect()) {
                Ok(rows) => Found::Rows { dbname: location.dbname, rows },
                Err(err) => Found::Unreadable { dbname: location.dbname, reason: db::describe(&err) },
            }
        }
    }
}

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One row of `_supavisor.users`.
pub struct SupavisorUser {
    /// `db_user` (names the row in messages).
    pub db_user: String,
    /// `tenant_external_id`.
    pub tenant: String,
    /// `db_pass_encrypted`, as the vault wrote it.
    pub stored: Zeroizing<Vec<u8>>,
}

/// Supavisor's stored pooler credentials.
pub async fn supavisor_users(
    target: &Target,
    main: &Client,
    copy: &Copy,
    lock_timeout: Duration,
) -> Found<SupavisorUser> {
    let sql = "SELECT db_user::text, coalesce(tenant_external_id::text, ''), db_pass_encrypted \
               FROM _supavisor.users ORDER BY tenant_external_id, db_user";
    read(target, main, copy, lock_timeout, sql, &[], |row| {
        Ok(SupavisorUser { db_user: row.try_get(0)?, tenant: row.try_get(1)?, stored: Zeroizing::new(row.try_get(2)?) })
    })
    .await
}

/// One row of `_realtime.tenants`.
pub struct RealtimeTenant {
    /// `external_id`.
    pub external_id: String,
    /// `jwt_secret`, encrypted (`None`: the tenant verifies with a JWKS only).
    pub jwt_secret: Option<Secret>,
}

/// Realtime's tenants.
pub async fn realtime_tenants(
    target: &Target,
    main: &Client,
    copy: &Copy,
    lock_timeout: Duration,
) -> Found<RealtimeTenant> {
    let sql = "SELECT external_id::text, jwt_secret::text FROM _realtime.tenants ORDER BY external_id";
    read(target, main, copy, lock_timeout, sql, &[], |row| {
        Ok(RealtimeTenant {
            external_id: row.try_get::<_, Option<String>>(0)?.unwrap_or_default(),
            jwt_secret: row.try_get::<_, Option<String>>(1)?.map(Secret::new),
        })
    })
    .await
}

/// One encrypted field of a `postgres_cdc_rls` row of `_realtime.extensions`.
pub struct RealtimeSetting {
    /// `tenant_external_id`.
    pub tenant: String,
    /// The field's name in `settings`.
    pub field: String,
    /// The stored (encrypted) value.
    pub stored: Secret,
}

/// The encrypted fields `fields` of Realtime's `postgres_cdc_rls` extension settings.
pub async fn realtime_settings(
    target: &Target,
    main: &Client,
    copy: &Copy,
    lock_timeout: Duration,
) -> Found<RealtimeSetting> {
    let fields: Vec<String> = copy.fields.iter().map(|f| (*f).to_owned()).collect();
    let sql = "SELECT coalesce(e.tenant_external_id::text, ''), f.key, f.value \
               FROM _realtime.extensions e CROSS JOIN LATERAL jsonb_each_text(e.settings::jsonb) AS f \
               WHERE e.type = $1 AND f.key = ANY($2) AND f.value IS NOT NULL \
               ORDER BY 1, array_position($2, f.key)";
    let params: [(&(dyn ToSql + Sync), Type); 2] = [(&REALTIME_CDC_EXTENSION, Type::TEXT), (&fields, Type::TEXT_ARRAY)];
    read(target, main, copy, lock_timeout, sql, &params, |row| {
        Ok(RealtimeSetting { tenant: row.try_get(0)?, field: row.try_get(1)?, stored: Secret::new(row.try_get(2)?) })
    })
    .await
}

/// Logflare's single-tenant user and its legacy API key.
pub struct LogflareUser {
    /// `id`.
    pub id: i64,
    /// `api_key`.
    pub api_key: Secret,
}

/// The default user Logflare's single-tenant mode creates (`provider` and `provider_uid`
/// `default`).
pub async fn logflare_users(
    target: &Target,
    main: &Client,
    copy: &Copy,
    lock_timeout: Duration,
) -> Found<LogflareUser> {
    let sql = "SELECT id::bigint, api_key::text FROM _analytics.users \
               WHERE provider = 'default' AND provider_uid = 'default' AND api_key IS NOT NULL ORDER BY id";
    read(target, main, copy, lock_timeout, sql, &[], |row| {
        Ok(LogflareUser { id: row.try_get(0)?, api_key: Secret::new(row.try_get(1)?) })
    })
    .await
}

/// One live access-token row Logflare made from a `.env` token.
pub struct LogflareToken {
    /// `description`: the `.env` key the token came from.
    pub description: String,
    /// `token`.
    pub token: Secret,
}

/// The unrevoked access tokens Logflare created from `LOGFLARE_*_ACCESS_TOKEN`.
pub async fn logflare_tokens(
    target: &Target,
    main: &Client,
    copy: &Copy,
    lock_timeout: Duration,
) -> Found<LogflareToken> {
    let descriptions: Vec<String> = LOGFLARE_TOKENS.iter().map(|d| (*d).to_owned()).collect();
    let sql = "SELECT description::text, token::text FROM _analytics.oauth_access_tokens \
               WHERE revoked_at IS NULL AND description = ANY($1) ORDER BY id";
    read(target, main, copy, lock_timeout, sql, &[(&descriptions, Type::TEXT_ARRAY)], |row| {
        Ok(LogflareToken { description: row.try_get(0)?, token: Secret::new(row.try_get(1)?) })
    })
    .await
}

/// How many rows of `copy` hold a value that changing the `.env` alone would leave stale: every
/// row but those the service rewrites at its next start. `None` for a copy that never traps (its
/// service always rewrites it) or that is not counted here.
fn trap_count_sql(copy: &Copy) -> Option<&'static str> {
    Some(match copy.id {
        CopyId::SupavisorPoolerPassword => "SELECT count(*) FROM _supavisor.users",
        CopyId::RealtimeTenantJwtSecret => {
            "SELECT count(*) FROM _realtime.tenants WHERE jwt_secret IS NOT NULL AND external_id IS DISTINCT FROM $1"
        }
        CopyId::RealtimeDbPassword | CopyId::RealtimeDbConnection => {
            "SELECT count(*) FROM _realtime.extensions WHERE type = 'postgres_cdc_rls' \
             AND tenant_external_id IS DISTINCT FROM $1"
        }
        CopyId::LogflareUserApiKey => {
            "SELECT count(*) FROM _analytics.users WHERE provider = 'default' AND provider_uid = 'default'"
        }
        // Never traps: Logflare rewrites its tokens at every start.
        CopyId::LogflareAccessToken => return None,
        // Read by [`jwt_secret_settings`], the one reader of that setting.
        CopyId::JwtSecretSetting => return None,
    })
}

/// Why [`held`] could not look.
pub struct NotLooked {
    /// Whether a server answered (a refused login, a failed query) rather than nobody.
    pub answered: bool,
    /// Why, for the operator.
    pub reason: String,
}

/// The copies among `copies` that the server holds and that changing the `.env` alone would
/// leave stale, each as `(copy, database)`. Looks only: one bounded connection per database.
pub async fn held(
    target: &Target,
    copies: &[&'static Copy],
    lock_timeout: Duration,
) -> Result<Vec<(&'static Copy, String)>, NotLooked> {
    let main =
        target.connect_raw().await.map_err(|e| NotLooked { answered: e.sqlstate().is_some(), reason: e.describe() })?;
    held_on(target, &main, copies, lock_timeout).await.map_err(|reason| NotLooked { answered: true, reason })
}

async fn held_on(
    target: &Target,
    main: &Client,
    copies: &[&'static Copy],
    lock_timeout: Duration,
) -> Result<Vec<(&'static Copy, String)>, String> {
    let mut out = Vec::new();
    for &copy in copies {
        if copy.id == CopyId::JwtSecretSetting {
            if !jwt_secret_settings(main, lock_timeout).await?.is_empty() {
                out.push((copy, target.dbname().to_owned()));
            }
            continue;
        }
        let Some(sql) = trap_count_sql(copy) else { continue };
        let location = if copy.database == Database::Cluster {
            Some(Location::borrowed(target.dbname(), main))
        } else {
            locate(target, main, copy, lock_timeout).await.map_err(|(db, reason)| format!("{db}: {reason}"))?
        };
        let Some(location) = location else { continue };
        let client = location.client();
        let tenant: [(&(dyn ToSql + Sync), Type); 1] = [(&REALTIME_SEEDED_TENANT, Type::TEXT)];
        let params: &[(&(dyn ToSql + Sync), Type)] = if sql.contains("$1") { &tenant } else { &[] };
        let rows = db::bounded_read(client, lock_timeout, sql, params).await.map_err(|e| db::describe(&e))?;
        let count: i64 = rows.first().map_or(Ok(0), |row| row.try_get(0)).map_err(|e| db::describe(&e))?;
        if count > 0 {
            out.push((copy, location.dbname));
        }
    }
    Ok(out)
}

/// The setting upstream's first-start init leaves in the database.
pub const JWT_SECRET_SETTING: &str = "app.settings.jwt_secret";

/// One per-database or per-role setting of `app.settings.jwt_secret`, as `pg_db_role_setting`
/// records it.
pub struct JwtSecretSetting {
    /// The database it applies to (`None`: every database).
    pub database: Option<String>,
    /// The role it applies to (`None`: every role).
    pub role: Option<String>,
    /// The value (a copy of a JWT secret; never printed).
    pub value: Secret,
}

impl JwtSecretSetting {
    /// Where it is set, in words.
    pub fn place(&self) -> String {
        match (&self.database, &self.role) {
            (Some(d), None) => format!("for database {d}"),
            (None, Some(r)) => format!("for role {r}"),
            (Some(d), Some(r)) => format!("for role {r} in database {d}"),
            (None, None) => "for every database and role".to_owned(),
        }
    }

    /// The statement that removes it.
    pub fn reset_sql(&self) -> String {
        let setting = format!("\"{JWT_SECRET_SETTING}\"");
        match (&self.database, &self.role) {
            (Some(d), None) => format!("ALTER DATABASE {} RESET {setting}", quote_ident(d)),
            (None, Some(r)) => format!("ALTER ROLE {} RESET {setting}", quote_ident(r)),
            (Some(d), Some(r)) => {
                format!("ALTER ROLE {} IN DATABASE {} RESET {setting}", quote_ident(r), quote_ident(d))
            }
            (None, None) => format!("ALTER ROLE ALL RESET {setting}"),
        }
    }
}

/// Every per-database and per-role setting of `app.settings.jwt_secret` (`pg_db_role_setting`
/// is a shared catalog: any database of the server answers for all).
pub async fn jwt_secret_settings(client: &Client, lock_timeout: Duration) -> Result<Vec<JwtSecretSetting>, String> {
    let rows = db::bounded_read(
        client,
        lock_timeout,
        "SELECT d.datname::text, r.rolname::text, substr(cfg, length($1) + 2) \
             FROM pg_db_role_setting s \
             LEFT JOIN pg_database d ON d.oid = s.setdatabase \
             LEFT JOIN pg_roles r ON r.oid = s.setrole \
             CROSS JOIN LATERAL unnest(s.setconfig) AS cfg \
             WHERE cfg LIKE $1 || '=%' \
             ORDER BY 1 NULLS FIRST, 2 NULLS FIRST",
        &[(&JWT_SECRET_SETTING, Type::TEXT)],
    )
    .await
    .map_err(|e| db::describe(&e))?;
    let read = |row: &Row| {
        Ok(JwtSecretSetting {
            database: row.try_get(0)?,
            role: row.try_get(1)?,
            value: Secret::new(row.try_get::<_, String>(2)?),
        })
    };
    rows.iter().map(read).collect::<Result<_, tokio_postgres::Error>>().map_err(|e| db::describe(&e))
}
