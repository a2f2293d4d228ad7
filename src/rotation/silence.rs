//! Making the rotation's session silent before its transaction begins (SPEC §2 step 5).
//!
//! The transaction sends twelve verifiers (as secret as the password: an md5 one logs in as
//! its role) and, as a bind parameter, the analytics URL with the plaintext. Whatever a stack's
//! operator configured to watch sessions must not record them, so every such setting is
//! switched off for this session, in one round trip of its own, before `BEGIN`:
//!
//! - Session level (`SET`, not `SET LOCAL`): some logging is decided when a transaction starts
//!   (`log_transaction_sample_rate` samples at `BEGIN`), so it must already be off then.
//! - Its own round trip: the server shows (`pg_stat_activity`) and samples a simple-query batch
//!   as a whole, before any of its `SET`s has taken effect.
//! - `track_activities = off` keeps the query text out of `pg_stat_activity` and out of other
//!   sessions' deadlock reports, which quote every process's current query.
//! - Extensions' settings go through `set_config`, which works whether or not the extension is
//!   loaded (unloaded, the name is a placeholder; loaded, it is the real setting, which a
//!   superuser may change). Only settings that every version of the extension defines: a loaded
//!   extension reserves its prefix, and an unknown name under it is an error.
//! - `log_min_error_statement = 'panic'`: an error's log entry does not quote the statement.
//!
//! - Every one of these settings is session-level, so it is undone before the session ends:
//!   the transaction ends with `RESET ALL` (`sql::RESET_AND_COMMIT`, or
//!   `sql::roll_back_and_reset` on failure), inside the transaction, so the reset lands in the
//!   same server session even behind a transaction-mode pooler, which hands that server session
//!   to its next client.
//! - The silencing round trip returns its server session's pid; the transaction checks that it
//!   runs in the same one (a transaction-mode pooler may hand the next transaction another).
//!
//! All of these need a superuser, which the rotation requires anyway.

use tokio_postgres::Client;

use crate::db::describe;
use crate::error::Error;

/// The statements that silence a session; no secret in them, so they may themselves be logged.
pub const SILENCE_SQL: &str = "\
    SET log_statement = 'none'; \
    SET log_min_duration_statement = -1; \
    SET log_min_duration_sample = -1; \
    SET log_transaction_sample_rate = 0; \
    SET log_parameter_max_length = 0; \
    SET log_parameter_max_length_on_error = 0; \
    SET log_min_error_statement = 'panic'; \
    SET debug_print_parse = off; \
    SET debug_print_rewritten = off; \
    SET debug_print_plan = off; \
    SET track_activities = off; \
    SELECT set_config('pgaudit.log', 'none', false), \
           set_config('pgaudit.log_parameter', 'off', false), \
           set_config('pgaudit.role', '', false), \
           set_config('auto_explain.log_min_duration', '-1', false), \
           set_config('pg_stat_statements.track_utility', 'off', false), \
           set_config('pg_stat_statements.track', 'none', false), \
           pg_backend_pid()::text";

/// Silences `client`'s session until the transaction resets it; returns the server session's
/// pid. Nothing has changed if it fails.
pub async fn silence(client: &Client) -> Result<String, Error> {
    let messages = client.simple_query(SILENCE_SQL).await.map_err(|err| Error::Database {
        step: "silencing the session's logging before BEGIN".into(),
        reason: describe(&err),
    })?;
    // The pid is the last column of the one row the batch returns.
    let pid = messages.iter().rev().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => {
            row.len().checked_sub(1).and_then(|i| row.get(i)).map(str::to_owned)
        }
        _ => None,
    });
    Ok(pid.unwrap_or_default())
}
