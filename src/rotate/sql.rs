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

/// Key of the transaction-level advisory lock that keeps two rotations apart. Any fixed
/// value works as long as every copy of the tool uses the same one ("pmoves-r" in ASCII).
/// Advisory locks are per database: it is taken in the database the transaction runs in.
pub const ADVISORY_LOCK_KEY: i64 = 0x706d_6f76_6573_2d72;

/// Discovery's first round trip: the analytics table's layout, the owner of `_supavisor`,
/// whether the session is a superuser, `password_encryption`. Catalogs only (not
/// `information_schema`, whose views cost milliseconds on a fresh session), so a role without
/// rights on the schemas still gets to the superuser check.
pub fn internals() -> String {
    format!(
        "SELECT {}, \
                (SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = '_supavisor'), \
                (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), \
                current_setting('password_encryption')",
        analytics::layout_columns_sql()
    )
}

/// `(rolname, rolcanlogin, verifier)` of the roles in `$1`; the verifier only for the role in
/// `$2` (the read-only role, whose password decides whether it is rotated).
pub const ROLES: &str = "SELECT rolname::text, rolcanlogin, CASE WHEN rolname = $2 THEN rolpassword END \
                         FROM pg_authid WHERE rolname = ANY($1)";

/// The stored verifier of the role in `$1`.
pub const STORED_VERIFIER: &str = "SELECT rolpassword FROM pg_authid WHERE rolname = $1";

/// The stored verifier of the role in `$1`, if it can log in.
pub const LOGIN_VERIFIER: &str = "SELECT rolpassword FROM pg_authid WHERE rolname = $1 AND rolcanlogin";

/// Fingerprints the stored verifiers of the rotated roles (an md5 of names and verifiers, never
/// the verifiers themselves). Parameter-free, so it travels in the simple protocol: one round
/// trip, and the transaction sends it in its first batch, under the advisory lock.
pub fn fingerprint() -> String {
    let names: Vec<String> = rotated_role_names().chain([PASSWORDLESS_ROLE]).map(|r| format!("'{r}'")).collect();
    format!(
        "SELECT coalesce(md5(string_agg(rolname || ':' || coalesce(rolpassword, ''), ',' ORDER BY rolname)), '') \
         FROM pg_authid WHERE rolname IN ({})",
        names.join(", ")
    )
}

/// Waits (at most `limit`) until no session holds the rotation's advisory lock in this
/// database, then lets go at once.
pub fn wait_for_rotation_lock(limit: Duration) -> String {
    format!(
        "SET lock_timeout = '{}ms'; SET statement_timeout = 0; \
         SELECT pg_advisory_lock({ADVISORY_LOCK_KEY}); SELECT pg_advisory_unlock({ADVISORY_LOCK_KEY}); \
         RESET lock_timeout; RESET statement_timeout",
        limit.as_millis()
    )
}

/// `ALTER ROLE … PASSWORD '<verifier>'`; zeroized when dropped (a verifier is as secret as the
/// password: an md5 one logs in).
pub fn alter_role_password(role: &str, verifier: &str) -> Zeroizing<String> {
    Zeroizing::new(format!("ALTER ROLE {} PASSWORD {};\n", quote_ident(role), quote_literal(verifier)))
}

/// Drops `_supavisor` and re-creates it empty with its owner (supavisor re-seeds it).
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
    fn the_fingerprint_covers_the_read_only_role() {
        assert!(fingerprint().contains("'supabase_read_only_user'"));
    }
}
