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
//!   the transaction ends with `RESET ALL` ([`RESET_AND_COMMIT`], or [`roll_back_and_reset`]
//!   on failure), inside the transaction, so the reset lands in the same server session even
//!   behind a transaction-mode pooler, which hands that server session to its next client.
//! - The silencing round trip returns its server session's pid; the transaction's first round
//!   trip ([`begin_sql`]) returns its own, and [`same_session`] refuses to go on in another one
//!   (a transaction-mode pooler may hand the next transaction another, unsilenced, session).
//! - Inside the transaction, statements with values go as unnamed statements with bound
//!   parameters (`query_typed`/`execute_typed`: parse, bind and execute in one round trip), never
//!   as named prepared statements, which a transaction-mode pooler does not carry between server
//!   sessions.
//!
//! All of these need a superuser, which the rotation requires anyway.

use std::time::Duration;

use tokio_postgres::Client;

use super::ROTATION_LOCK;
use crate::db::describe;
use crate::error::Error;
use crate::limits::Limit;

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

/// The savepoint right after `BEGIN`: a failed transaction rolls back to it, so the same server
/// session can still reset its settings and end cleanly behind a transaction pooler.
const SAVEPOINT: &str = "pmoves_rotation";

/// The transaction's first round trip on a silenced session: `BEGIN`, its savepoint, its
/// `lock_timeout`, the rotation lock when `rotation_lock`, then one row: the server session's
/// pid, then `columns` (parameter-free SQL expressions).
pub fn begin_sql(lock_timeout: Duration, rotation_lock: bool, columns: &str) -> String {
    let lock = if rotation_lock { format!("{ROTATION_LOCK}; ") } else { String::new() };
    format!(
        "BEGIN; SAVEPOINT {SAVEPOINT}; SET LOCAL lock_timeout = '{}ms'; {lock}SELECT pg_backend_pid()::text, {columns}",
        lock_timeout.as_millis().max(1)
    )
}

/// Every column of the last row a simple query returned (the row [`begin_sql`] asks for).
pub fn last_row(messages: &[tokio_postgres::SimpleQueryMessage]) -> Option<Vec<Option<String>>> {
    messages.iter().rev().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => {
            Some((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect())
        }
        _ => None,
    })
}

/// Refuses a transaction that runs in another server session than the silenced one: its
/// statements would be logged and audited as the server is configured to.
pub fn same_session(silenced_pid: &str, transaction_pid: Option<&str>) -> Result<(), Error> {
    if transaction_pid == Some(silenced_pid) {
        return Ok(());
    }
    Err(Error::Database {
        step: "the session check".into(),
        reason: "the transaction runs in another server session than the one silenced before BEGIN: a pooler in \
                 transaction mode is in between; connect to PostgreSQL itself (its own port, not pgbouncer's or \
                 supavisor's transaction port)"
            .into(),
    })
}

/// Ends a successful transaction: every setting the session got (silencing, timeouts) back to
/// its default, then `COMMIT`, in one query string. Inside the transaction, the reset lands in
/// the same server session whatever pooler is in between; nothing secret is in it.
pub const RESET_AND_COMMIT: &str = "RESET ALL; COMMIT";

/// Ends a failed transaction: back to the savepoint (the rotation's statements and lock are
/// undone), every setting reset, and the empty rest committed, in the same server session.
pub fn roll_back_and_reset() -> String {
    format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}; RESET ALL; COMMIT")
}

/// For a transaction that failed before its savepoint, or whose id must read as aborted: roll
/// back, then reset. One query string, so a transaction-mode pooler runs both in the same server
/// session.
pub const ROLLBACK_THEN_RESET: &str = "ROLLBACK; RESET ALL";

/// How long a best-effort `ROLLBACK` (or a question asked right after one) may take.
pub const ROLLBACK_LIMIT: Limit = Limit::new("rollback", Duration::from_secs(5));

/// Ends a failed transaction on `client` as well as it can, within [`ROLLBACK_LIMIT`]:
/// [`roll_back_and_reset`], else [`ROLLBACK_THEN_RESET`]. A connection that is gone (or a
/// server that is silent) rolls back on the server when it closes.
pub async fn roll_back(client: &Client) {
    let cleanup = async {
        if client.batch_execute(&roll_back_and_reset()).await.is_err() {
            let _ = client.batch_execute(ROLLBACK_THEN_RESET).await;
        }
    };
    let _ = tokio::time::timeout(ROLLBACK_LIMIT.get(), cleanup).await;
}

/// Ends a failed transaction on `client` so that its id reads as aborted, within
/// [`ROLLBACK_LIMIT`]: [`ROLLBACK_THEN_RESET`]. For a run that settles by asking
/// `txid_status()` ([`super::xact`]): [`roll_back`] commits the empty rest of the transaction
/// after the savepoint, so its id would read as committed.
pub async fn abort(client: &Client) {
    let _ = tokio::time::timeout(ROLLBACK_LIMIT.get(), client.batch_execute(ROLLBACK_THEN_RESET)).await;
}
