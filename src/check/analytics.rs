//! `--db`, the analytics: Logflare's postgres backend keeps its own copy of the database
//! password in a URL in `_analytics.source_backends`, which a password changed elsewhere leaves
//! stale.
//!
//! The table's layout differs between Logflare versions; `crate::analytics` holds the one rule
//! (shared with rotation). A table that cannot be read is a warning, not a failed check.

use zeroize::Zeroizing;

use super::{Code, Finding};
use crate::analytics;
use crate::db::{self, Target};
use crate::dburl;
use crate::secret::Secret;
use crate::stack::POSTGRES_PASSWORD;
use crate::ui::Ui;

/// Logflare's postgres backend keeps its own copy of the password in a URL; the table is found
/// and read by `crate::analytics`, the module rotation rewrites it with.
pub(super) async fn check_analytics(
    target: &Target,
    admin: &tokio_postgres::Client,
    password: &Secret,
    ui: &Ui,
) -> Vec<Finding> {
    let (dbname, backends) = match analytics::find_and_read(target, admin, db::DEFAULT_LOCK_TIMEOUT.get()).await {
        analytics::Found::Backends { dbname, backends } => (dbname, backends),
        analytics::Found::Absent => {
            ui.detail("no _analytics.source_backends table: analytics not checked");
            return Vec::new();
        }
        analytics::Found::Unreadable { dbname, reason } => return vec![analytics_not_checked(&dbname, &reason)],
    };
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
    out
}

fn analytics_not_checked(dbname: &str, reason: &str) -> Finding {
    Finding::new(
        Code::AnalyticsNotChecked,
        None,
        format!("_analytics.source_backends in database {dbname} could not be read ({reason}); its password was not compared"),
    )
}
