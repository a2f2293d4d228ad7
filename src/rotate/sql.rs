//! The statements of the rotation built from the stack's facts (roles, verifiers, the advisory
//! lock, discovery's questions). Elsewhere: the session's silencing settings in `silence`, the
//! analytics table's statements in `crate::analytics`, the LOGIN-role list in
//! `crate::discovery`, and the bare `COMMIT`/`ROLLBACK` where `transaction` sends them. Role names are fixed identifiers and verifiers are quoted
//! literals; the only plaintext that reaches the server, the analytics URL, goes as a bind
//! parameter.

use std::time::Duration;

use zeroize::Zeroizing;

use crate::analytics;
use crate::stack::roles::{rotated_role_names, PASSWORDLESS_ROLE};

pub use crate::rotation::silence::{self, last_row, RESET_AND_COMMIT};
pub use crate::rotation::ROTATION_LOCK;

/// The transaction's first round trip: `BEGIN`, its savepoint, its `lock_timeout`, the rotation
/// lock, then one row: the server session's pid and the fingerprint of the roles' verifiers.
pub fn setup(lock_timeout: Duration) -> String {
    silence::begin_sql(lock_timeout, true, &format!("({})", fingerprint()))
}

/// What a session waited for when its `lock_timeout` expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contended {
    /// The rotation lock (another rotation or recovery, or a superuser's own lock on `pg_authid`).
    RotationLock,
    /// A role's row in `pg_authid` (another session changed a role and has not committed).
    Roles,
    /// `_supavisor` or one of its tables (a running supavisor).
    Supavisor,
    /// `_analytics.source_backends`.
    Analytics,
}

/// The sessions (other than this one) holding a lock on what `contended` names:
/// `(pid, user, application_name, backend_start)`.
pub fn lock_holders(contended: Contended) -> String {
    let this_db = "l.database = (SELECT oid FROM pg_database WHERE datname = current_database())";
    let on = match contended {
        Contended::RotationLock => "l.locktype = 'relation' AND l.relation = 'pg_catalog.pg_authid'::regclass \
             AND l.mode NOT IN ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock')"
            .to_owned(),
        Contended::Roles => {
            "l.locktype = 'relation' AND l.relation = 'pg_catalog.pg_authid'::regclass AND l.mode = 'RowExclusiveLock'"
                .to_owned()
        }
        Contended::Supavisor => format!(
            "{this_db} AND ((l.locktype = 'relation' AND l.relation IN (SELECT c.oid FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '_supavisor')) \
             OR (l.locktype = 'object' AND l.classid = 'pg_namespace'::regclass \
             AND l.objid = (SELECT oid FROM pg_namespace WHERE nspname = '_supavisor')))"
        ),
        Contended::Analytics => {
            format!("{this_db} AND l.locktype = 'relation' AND l.relation = to_regclass('_analytics.source_backends')")
        }
    };
    format!(
        "SELECT a.pid::text, coalesce(a.usename::text, ''), coalesce(a.application_name, ''), \
                coalesce(to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '') \
         FROM pg_stat_activity a WHERE a.pid <> pg_backend_pid() AND a.pid IN \
           (SELECT l.pid FROM pg_locks l WHERE l.granted AND {on}) ORDER BY a.backend_start"
    )
}

/// Discovery's first round trip: the analytics table's layout, the owner of `_supavisor`,
/// whether the session is a superuser. Catalogs only (not `information_schema`, whose views
/// cost milliseconds on a fresh session), so a role without rights on the schemas still gets
/// to the superuser check.
pub fn internals() -> String {
    format!(
        "SELECT {}, \
                (SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = '_supavisor'), \
                (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
        analytics::layout_columns_sql()
    )
}

/// The server's configured `password_encryption`: the configuration file's, the command
/// line's or the built-in default, never a per-role, per-database or per-session override
/// (`ALTER ROLE supabase_admin SET password_encryption = md5` changes what this session
/// shows, not what `pg_hba.conf` expects). `pg_file_settings` is readable by superusers only:
/// sent after the superuser check.
pub const SERVER_PASSWORD_ENCRYPTION: &str = "SELECT coalesce( \
       (SELECT setting FROM pg_settings WHERE name = 'password_encryption' \
          AND source NOT IN ('database', 'user', 'database user', 'client', 'session')), \
       (SELECT setting FROM pg_file_settings WHERE name = 'password_encryption' AND applied AND error IS NULL \
          ORDER BY seqno DESC LIMIT 1), \
       (SELECT boot_val FROM pg_settings WHERE name = 'password_encryption'))";

/// The roles in `$1`: name, LOGIN, the verifier of the role in `$2` only (the read-only role,
/// whose password decides whether it is rotated), the kind of each one's verifier (never the
/// verifier), and why a LOGIN role cannot log in anyway (expired, no connection allowed).
pub const ROLES: &str = "SELECT rolname::text, rolcanlogin, CASE WHEN rolname = $2 THEN rolpassword END, \
       CASE WHEN starts_with(rolpassword, 'SCRAM-SHA-256') THEN 'scram-sha-256' \
            WHEN starts_with(rolpassword, 'md5') THEN 'md5' END, \
       CASE WHEN NOT rolcanlogin THEN NULL \
            WHEN rolvaliduntil < now() \
              THEN 'VALID UNTIL ' || to_char(rolvaliduntil, 'YYYY-MM-DD HH24:MI:SS TZ') || ' is in the past' \
            WHEN rolconnlimit = 0 THEN 'CONNECTION LIMIT 0' END \
     FROM pg_authid WHERE rolname = ANY($1)";

/// The rotated roles in `$1` that can log in now: LOGIN, not expired, connections allowed.
pub const LOGIN_ROLES_NOW: &str = "SELECT rolname::text FROM pg_roles WHERE rolcanlogin AND rolname = ANY($1) \
     AND (rolvaliduntil IS NULL OR rolvaliduntil > now()) AND rolconnlimit <> 0 ORDER BY rolname";

/// `(rolname, rolpassword)` of the roles in `$1` (recovery compares them with the candidate
/// passwords on the client).
pub const STORED_VERIFIERS: &str = "SELECT rolname::text, rolpassword FROM pg_authid WHERE rolname = ANY($1)";

/// The stored verifier of the role in `$1`, if it can log in.
pub const LOGIN_VERIFIER: &str = "SELECT rolpassword FROM pg_authid WHERE rolname = $1 AND rolcanlogin";

/// Fingerprints the stored verifiers of the rotated roles (an md5 of names and verifiers, never
/// the verifiers themselves). Parameter-free, so it travels in the simple protocol: one round
/// trip, and the transaction sends it in its first batch, under the rotation lock.
pub fn fingerprint() -> String {
    let names: Vec<String> = rotated_role_names().chain([PASSWORDLESS_ROLE]).map(|r| format!("'{r}'")).collect();
    format!(
        "SELECT coalesce(md5(string_agg(rolname || ':' || coalesce(rolpassword, ''), ',' ORDER BY rolname)), '') \
         FROM pg_authid WHERE rolname IN ({})",
        names.join(", ")
    )
}

/// Waits (at most `limit`) until no rotation holds the rotation lock, then lets go at once.
/// A session that may not take it (not a superuser) watches `pg_locks` for it instead, which
/// anyone may read. Every setting is transaction-local: nothing stays on a pooled session.
pub fn wait_for_rotation_lock(limit: Duration) -> String {
    let ms = limit.as_millis().max(1);
    format!(
        "BEGIN; SET LOCAL lock_timeout = '{ms}ms'; SET LOCAL statement_timeout = '{}ms'; \
         DO $pmoves$ BEGIN {ROTATION_LOCK}; \
           EXCEPTION WHEN insufficient_privilege THEN \
             WHILE EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'relation' \
                 AND relation = 'pg_catalog.pg_authid'::regclass AND mode = 'ShareUpdateExclusiveLock') \
             LOOP PERFORM pg_sleep(0.05); END LOOP; \
         END $pmoves$; COMMIT",
        ms + 1000
    )
}

/// `ALTER ROLE … PASSWORD '<verifier>'`; zeroized when dropped (a verifier is as secret as the
/// password: an md5 one logs in).
pub fn alter_role_password(role: &str, verifier: &str) -> Zeroizing<String> {
    Zeroizing::new(format!("ALTER ROLE {} PASSWORD {};\n", quote_ident(role), quote_literal(verifier)))
}

/// Drops `_supavisor` and re-creates it empty with its owner (supavisor re-seeds it). Sent as
/// a query string of its own: an event trigger on the schema DDL (a common DDL audit) sees
/// the whole string in `current_query()`, which must never hold an `ALTER ROLE`'s verifier.
pub fn reset_supavisor(owner: &str) -> String {
    format!(
        "DROP SCHEMA IF EXISTS _supavisor CASCADE;\nCREATE SCHEMA _supavisor AUTHORIZATION {};\n",
        quote_ident(owner)
    )
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The first column of the last row a simple query returned.
pub fn last_value(messages: &[tokio_postgres::SimpleQueryMessage]) -> Option<String> {
    messages.iter().rev().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(alter_role_password("a\"b", "v'1").as_str(), "ALTER ROLE \"a\"\"b\" PASSWORD 'v''1';\n");
    }

    #[test]
    fn the_schema_statements_carry_no_role_statement() {
        let reset = reset_supavisor("supabase_admin");
        assert!(reset.contains("DROP SCHEMA") && !reset.contains("ALTER ROLE") && !reset.contains("PASSWORD"));
    }

    #[test]
    fn the_fingerprint_covers_the_read_only_role() {
        assert!(fingerprint().contains("'supabase_read_only_user'"));
    }
}
