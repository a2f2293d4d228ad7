//! `--db`, the analytics: Logflare's postgres backend keeps its own copy of the database
//! password in a URL in `_analytics.source_backends`, which a password changed elsewhere leaves
//! stale.
//!
//! The table's columns differ between Logflare versions, so the query is built from the ones
//! that exist; a table that cannot be read is a warning, not a failed check.

use zeroize::Zeroizing;

use super::{Code, Finding};
use crate::db::{self, Target};
use crate::dburl;
use crate::secrets::Secret;
use crate::ui::Ui;

/// Logflare's postgres backend keeps its own copy of the password in a URL. It lives in
/// `_supabase` on current stacks and in the main database on older ones; the first database
/// that has the table is the one analytics uses.
pub(super) async fn check_analytics(
    target: &Target,
    admin: &tokio_postgres::Client,
    password: &Secret,
    ui: &Ui,
) -> Vec<Finding> {
    if target.dbname() != "_supabase" {
        match target.in_database("_supabase").connect().await {
            Ok(client) => match analytics_in(&client, "_supabase", password).await {
                Ok(Some(findings)) => return findings,
                Ok(None) => {}
                Err(reason) => return vec![analytics_not_checked("_supabase", &reason)],
            },
            Err(err) => ui.detail(&format!("no _supabase database to check ({err})")),
        }
    }
    match analytics_in(admin, target.dbname(), password).await {
        Ok(Some(findings)) => findings,
        Ok(None) => {
            ui.detail("no _analytics.source_backends table: analytics not checked");
            Vec::new()
        }
        Err(reason) => vec![analytics_not_checked(target.dbname(), &reason)],
    }
}

fn analytics_not_checked(dbname: &str, reason: &str) -> Finding {
    Finding::new(
        Code::AnalyticsNotChecked,
        None,
        format!("_analytics.source_backends in database {dbname} could not be read ({reason}); its password was not compared"),
    )
}

/// The postgres backends of one database: `None` when the table is not there. Logflare keeps the
/// URL under `config` (jsonb) today; a `url` column is read where one exists.
async fn analytics_in(
    client: &tokio_postgres::Client,
    dbname: &str,
    password: &Secret,
) -> std::result::Result<Option<Vec<Finding>>, String> {
    let columns: Vec<String> = client
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = '_analytics' AND table_name = 'source_backends'",
            &[],
        )
        .await
        .map_err(|e| db::describe(&e))?
        .iter()
        .filter_map(|row| row.try_get::<_, String>(0).ok())
        .collect();
    if columns.is_empty() {
        return Ok(None);
    }
    let Some(sql) = backends_query(&columns) else {
        return Ok(Some(Vec::new()));
    };
    let rows = client.query(sql.as_str(), &[]).await.map_err(|e| db::describe(&e))?;
    let mut out = Vec::new();
    for row in rows {
        let id: Option<String> = row.try_get(0).map_err(|e| db::describe(&e))?;
        let url: Option<String> = row.try_get(1).map_err(|e| db::describe(&e))?;
        let url = url.map(Zeroizing::new);
        let Some(stored) = url.as_deref().and_then(|u| dburl::password(u)).map(Zeroizing::new) else { continue };
        if stored.as_str() != password.expose() {
            let row_name = id.map_or_else(|| "a row".to_owned(), |id| format!("row id {id}"));
            out.push(Finding::new(
                Code::AnalyticsPasswordMismatch,
                Some("POSTGRES_PASSWORD"),
                format!(
                    "differs from the password in the postgres URL of {row_name} of _analytics.source_backends (database \
                     {dbname}), so Logflare cannot write logs there; `pmoves-secrets rotate-passwords` rewrites that URL \
                     together with the role passwords"
                ),
            ));
        }
    }
    Ok(Some(out))
}

/// The query for `(id, url)` of the postgres backends, built from the columns that exist
/// (the names are fixed strings, never input). `None` when no column can hold a URL (an
/// encrypted config, for instance).
fn backends_query(columns: &[String]) -> Option<String> {
    let has = |name: &str| columns.iter().any(|c| c == name);
    let url = match (has("url"), has("config")) {
        (true, true) => "coalesce(url::text, config::jsonb ->> 'url')",
        (true, false) => "url::text",
        (false, true) => "config::jsonb ->> 'url'",
        (false, false) => return None,
    };
    let id = if has("id") { "id::text" } else { "NULL::text" };
    let filter = if has("type") { "WHERE type = 'postgres'" } else { "" };
    Some(format!("SELECT {id}, {url} FROM _analytics.source_backends {filter} ORDER BY 1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_query_uses_the_columns_that_exist() {
        let cols = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let sql = backends_query(&cols(&["id", "type", "config"])).unwrap();
        assert!(sql.contains("config::jsonb ->> 'url'") && sql.contains("WHERE type = 'postgres'"), "{sql}");
        assert!(backends_query(&cols(&["url"])).unwrap().contains("url::text"));
        assert!(backends_query(&cols(&["id", "config_encrypted"])).is_none());
    }
}
