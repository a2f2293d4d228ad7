//! `--db`, the analytics: Logflare's postgres backend keeps its own copy of the database
//! password in a URL in `_analytics.source_backends`, which a password changed elsewhere leaves
//! stale.
//!
//! The table's columns differ between Logflare versions, so the query is built from the ones
//! that exist; a table that cannot be read is a warning, not a failed check.

use zeroize::Zeroizing;

use super::{Code, Finding};
use crate::analytics;
use crate::db::{self, Target};
use crate::dburl;
use crate::secrets::Secret;
use crate::stack::internals::INTERNALS_DATABASE;
use crate::stack::POSTGRES_PASSWORD;
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
    if target.dbname() != INTERNALS_DATABASE {
        match target.in_database(INTERNALS_DATABASE).connect().await {
            Ok(client) => match analytics_in(&client, INTERNALS_DATABASE, password).await {
                Ok(Some(findings)) => return findings,
                Ok(None) => {}
                Err(reason) => return vec![analytics_not_checked(INTERNALS_DATABASE, &reason)],
            },
            Err(err) => ui.detail(&format!("no internals database to check ({err})")),
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

/// The postgres backends of one database: `None` when the table is not there. The layout rule
/// and the reads are the ones rotation uses (`crate::analytics`).
async fn analytics_in(
    client: &tokio_postgres::Client,
    dbname: &str,
    password: &Secret,
) -> std::result::Result<Option<Vec<Finding>>, String> {
    db::bound_session(client, db::DEFAULT_LOCK_TIMEOUT).await.map_err(|e| db::describe(&e))?;
    let columns = match analytics::layout(client).await.map_err(|e| db::describe(&e))? {
        Ok(Some(columns)) => columns,
        Ok(None) => return Ok(None),
        Err(unsupported) => return Err(unsupported.to_string()),
    };
    let backends = analytics::read_postgres_backends(client, columns).await.map_err(|e| db::describe(&e))?;
    let mut out = Vec::new();
    for backend in backends {
        let Some(stored) = backend.url().and_then(|u| dburl::password(u.expose())).map(Zeroizing::new) else {
            continue;
        };
        if stored.as_str() != password.expose() {
            let row_name = if backend.id.is_empty() { "a row".to_owned() } else { format!("row id {}", backend.id) };
            out.push(Finding::new(
                Code::AnalyticsPasswordMismatch,
                Some(POSTGRES_PASSWORD),
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
