//! `_analytics.source_backends`: Logflare's postgres backend keeps its own copy of the database
//! password in a connection URL there. One implementation for `rotate-passwords` (which
//! rewrites it inside its transaction) and `check --db` (which compares it with the `.env`).
//!
//! The table lives in `_supabase` on current stacks and in the main database on older ones:
//! [`find_and_read`] looks in that order. (Rotation reads the same layout inside its one-round-
//! trip discovery, where it also looks for `_supavisor`, and applies the same rule.)
//! Its layout differs between Logflare versions; the one rule for where the URL is: the `url`
//! key of `config` when there is a `config` column (json or jsonb, Logflare's current layout),
//! else a `url` text column. Only `type = 'postgres'` rows carry a database URL.

use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;
use zeroize::Zeroizing;

use crate::db::{self, Target};
use crate::dburl;
use crate::secret::Secret;
use crate::stack::internals::internals_candidates;

/// Where a backend's connection URL may be kept: the `url` key of `config` and/or a `url`
/// column. A table with both is read through `config` first, and each copy is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlColumns {
    /// `config` and its type, when the column is json or jsonb.
    pub config: Option<ConfigType>,
    /// Whether a plain `url` text column exists.
    pub url: bool,
}

/// The type of `config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// jsonb (Logflare's current layout).
    Jsonb,
    /// json.
    Json,
}

/// The table exists but keeps no URL this tool can read (an encrypted config, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "_analytics.source_backends has neither a config (json/jsonb) nor a url column; \
             this Logflare version is not supported",
        )
    }
}

/// The table, as `(schema, name)`.
const TABLE: (&str, &str) = ("_analytics", "source_backends");

/// The `pg_attribute` rows of the table's columns (catalogs only: cheap on a fresh session,
/// and readable without rights on the schema).
const COLUMN_OF_TABLE: &str = "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = '_analytics' AND c.relname = 'source_backends' AND a.attnum > 0 AND NOT a.attisdropped";

/// Three select-list expressions (table exists, type of `config`, `url` column exists), so a
/// caller can read the layout in a query of its own (discovery does, to save round trips).
pub fn layout_columns_sql() -> String {
    format!(
        "EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = '_analytics' AND c.relname = 'source_backends'), \
         (SELECT format_type(a.atttypid, NULL) {COLUMN_OF_TABLE} AND a.attname = 'config'), \
         EXISTS (SELECT 1 {COLUMN_OF_TABLE} AND a.attname = 'url')"
    )
}

/// The one rule: where URLs are, from what [`layout_columns_sql`] returned. `Ok(None)` when the
/// table does not exist.
pub fn url_columns(exists: bool, config_type: Option<&str>, has_url: bool) -> Result<Option<UrlColumns>, Unsupported> {
    if !exists {
        return Ok(None);
    }
    let config = match config_type {
        Some("jsonb") => Some(ConfigType::Jsonb),
        Some("json") => Some(ConfigType::Json),
        _ => None,
    };
    if config.is_none() && !has_url {
        return Err(Unsupported);
    }
    Ok(Some(UrlColumns { config, url: has_url }))
}

/// Reads the layout of the table in the database `client` is connected to.
pub async fn layout(client: &Client) -> Result<Result<Option<UrlColumns>, Unsupported>, tokio_postgres::Error> {
    let rows = client.query_typed(&format!("SELECT {}", layout_columns_sql()), &[]).await?;
    let Some(row) = rows.first() else { return Ok(Ok(None)) };
    Ok(url_columns(row.try_get(0)?, row.try_get::<_, Option<String>>(1)?.as_deref(), row.try_get(2)?))
}

impl UrlColumns {
    /// The SQL expression of the URL in `config` (NULL without the column).
    fn config_expr(self) -> &'static str {
        if self.config.is_some() {
            "(config::jsonb ->> 'url')"
        } else {
            "NULL::text"
        }
    }

    /// The SQL expression of the `url` column (NULL without it).
    fn url_expr(self) -> &'static str {
        if self.url {
            "url::text"
        } else {
            "NULL::text"
        }
    }
}

/// One postgres backend and its URLs (secret: they carry a password).
pub struct Backend {
    /// The row's `id`, for messages.
    pub id: String,
    /// The row's physical address, to update exactly this row.
    ctid: String,
    /// The URL in `config`, if any.
    config_url: Option<Secret>,
    /// The URL in the `url` column, if any.
    column_url: Option<Secret>,
}

impl Backend {
    /// The URL the backend uses: `config`'s first, else the column's.
    pub fn url(&self) -> Option<&Secret> {
        self.config_url.as_ref().or(self.column_url.as_ref())
    }
}

async fn postgres_backends(
    client: &Client,
    columns: UrlColumns,
    for_update: bool,
) -> Result<Vec<Backend>, tokio_postgres::Error> {
    let (config, url) = (columns.config_expr(), columns.url_expr());
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let sql = format!(
        "SELECT ctid::text, id::text, {config}, {url} FROM _analytics.source_backends \
         WHERE type = 'postgres' AND coalesce({config}, {url}) IS NOT NULL ORDER BY id{lock}"
    );
    // Unnamed statements throughout (`*_typed`): behind a transaction-mode pooler a named
    // statement outlives its client on the server connection and collides with the next one's.
    let rows = client.query_typed(&sql, &[]).await?;
    rows.iter()
        .map(|row| {
            Ok(Backend {
                ctid: row.try_get(0)?,
                id: row.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
                config_url: row.try_get::<_, Option<String>>(2)?.map(Secret::new),
                column_url: row.try_get::<_, Option<String>>(3)?.map(Secret::new),
            })
        })
        .collect()
}

/// The postgres backends of the table in the database `client` is in (discovery reads them to
/// decide, before the confirmation, which of them follow a rotation).
pub async fn read_backends(client: &Client, columns: UrlColumns) -> Result<Vec<Backend>, tokio_postgres::Error> {
    postgres_backends(client, columns, false).await
}

/// What [`find_and_read`] found.
pub enum Found {
    /// The table is in `dbname`; these are its postgres backends.
    Backends {
        /// The database holding the table.
        dbname: String,
        /// Its postgres backends.
        backends: Vec<Backend>,
    },
    /// No candidate database has the table.
    Absent,
    /// The table is in `dbname` but could not be read (no rights, an unsupported layout, a
    /// lock held longer than the timeout).
    Unreadable {
        /// The database holding the table.
        dbname: String,
        /// Why, for the operator.
        reason: String,
    },
}

/// Finds the table in the first database that has it, the internals database first and then
/// the one `target` opens (older stacks), in the order of [`internals_candidates`], and reads its
/// postgres backends; every statement is bounded by `lock_timeout`. `main` is a session already
/// open on `target`'s database.
pub async fn find_and_read(target: &Target, main: &Client, lock_timeout: Duration) -> Found {
    let candidates = internals_candidates(target.dbname());
    let located = match db::find_table(target, main, candidates, TABLE, lock_timeout).await {
        Ok(Some(located)) => located,
        Ok(None) => return Found::Absent,
        Err((dbname, err)) => return Found::Unreadable { dbname, reason: db::describe(&err) },
    };
    match read_in(located.client(), lock_timeout).await {
        Ok(Some(backends)) => Found::Backends { dbname: located.dbname, backends },
        // Dropped between the look and the read.
        Ok(None) => Found::Absent,
        Err(reason) => Found::Unreadable { dbname: located.dbname, reason },
    }
}

/// The postgres backends of the database `client` is in; `None` when the table is not there.
/// One bounded read-only transaction ([`db::bounded_reads`]): nothing stays set on the session.
async fn read_in(client: &Client, lock_timeout: Duration) -> Result<Option<Vec<Backend>>, String> {
    let read = db::bounded_reads(client, lock_timeout, async |client| match layout(client).await? {
        Ok(Some(columns)) => postgres_backends(client, columns, false).await.map(|backends| Ok(Some(backends))),
        Ok(None) => Ok(Ok(None)),
        Err(unsupported) => Ok(Err(unsupported.to_string())),
    });
    read.await.and_then(|read| read).map_err(|e| db::describe(&e))?
}

/// What [`rewrite_passwords`] did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rewritten {
    /// Rows whose URL now carries the new password.
    pub updated: u64,
    /// Rows left alone: their URL is not one that `follows` (another server's, another
    /// role's, or one that names no user).
    pub without_user: u64,
}

/// Gives `new_password` to every postgres backend URL that `follows` the rotation (the
/// stack's own, by the rule of `stack::server`), keeping every other part of it (the
/// connection-string grammar of [`dburl`]); a log drain on another server keeps its own. Runs
/// inside the caller's transaction; the rows are locked first. The new URL goes as a bind
/// parameter.
pub async fn rewrite_passwords(
    client: &Client,
    columns: UrlColumns,
    new_password: &str,
    follows: &dyn Fn(&str) -> bool,
) -> Result<Rewritten, tokio_postgres::Error> {
    let backends = postgres_backends(client, columns, true).await?;
    let set_config = match columns.config {
        Some(ConfigType::Jsonb) => Some(
            "UPDATE _analytics.source_backends SET config = jsonb_set(config, '{url}', to_jsonb($2::text)) \
             WHERE ctid = $1::text::tid",
        ),
        Some(ConfigType::Json) => Some(
            "UPDATE _analytics.source_backends SET config = jsonb_set(config::jsonb, '{url}', to_jsonb($2::text))::json \
             WHERE ctid = $1::text::tid",
        ),
        None => None,
    };
    let set_column = columns.url.then_some("UPDATE _analytics.source_backends SET url = $2 WHERE ctid = $1::text::tid");
    let mut done = Rewritten::default();
    for backend in backends {
        let mut updated = false;
        for (url, statement) in [(&backend.config_url, &set_config), (&backend.column_url, &set_column)] {
            let (Some(url), Some(statement)) = (url, statement) else { continue };
            if !follows(url.expose()) {
                continue;
            }
            if let Some(new_url) = dburl::with_password(url.expose(), new_password).map(Zeroizing::new) {
                let params: [(&(dyn ToSql + Sync), Type); 2] =
                    [(&backend.ctid, Type::TEXT), (&new_url.as_str(), Type::TEXT)];
                client.execute_typed(statement, &params).await?;
                updated = true;
            }
        }
        if updated {
            done.updated += 1;
        } else {
            done.without_user += 1;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_rule_reads_config_and_or_a_url_column() {
        let both = UrlColumns { config: Some(ConfigType::Jsonb), url: true };
        assert_eq!(url_columns(true, Some("jsonb"), true), Ok(Some(both)));
        assert_eq!(
            url_columns(true, Some("json"), false),
            Ok(Some(UrlColumns { config: Some(ConfigType::Json), url: false }))
        );
        assert_eq!(url_columns(true, None, true), Ok(Some(UrlColumns { config: None, url: true })));
        assert_eq!(url_columns(true, Some("text"), false), Err(Unsupported));
        assert_eq!(url_columns(false, None, false), Ok(None));
    }
}
