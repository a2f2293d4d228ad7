//! SQL text: quoting, the verifiers PostgreSQL stores, and the role-removal script.
//!
//! The harness builds its statements as text for psql scripts (with `\connect` lines), so
//! every name and value goes through `sql_ident` / `sql_literal`.

use super::options::PasswordEncryption;
use super::SUPERUSER;

/// `s` as a single-quoted SQL string literal.
pub fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `s` as a double-quoted SQL identifier.
pub fn sql_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The verifier PostgreSQL stores for `password` (as `psql \password` computes it).
pub fn verifier(enc: PasswordEncryption, role: &str, password: &str) -> String {
    match enc {
        PasswordEncryption::ScramSha256 => postgres_protocol::password::scram_sha_256(password.as_bytes()),
        PasswordEncryption::Md5 => postgres_protocol::password::md5(password.as_bytes(), role),
    }
}

/// SQL that removes `roles` (objects reassigned to supabase_admin in every database of `dbs`).
pub(super) fn drop_roles_script(roles: &[String], dbs: &[String]) -> String {
    let mut sql = String::new();
    for db in dbs {
        sql.push_str(&format!("\\connect {db}\n"));
        for r in roles {
            sql.push_str(&format!("REASSIGN OWNED BY {r} TO {SUPERUSER};\nDROP OWNED BY {r};\n", r = sql_ident(r)));
        }
    }
    for r in roles {
        sql.push_str(&format!("DROP ROLE {};\n", sql_ident(r)));
    }
    sql
}
