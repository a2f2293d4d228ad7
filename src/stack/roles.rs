//! The database roles of a Supabase stack (SPEC §2).
//!
//! All of them share the one `POSTGRES_PASSWORD`, so a rotation changes them together and
//! `check --db` logs in as each that can log in. Facts only: asking a server which of them
//! exist is [`crate::discovery`]'s.

/// A role that holds the stack's database password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// The role's name.
    pub name: &'static str,
    /// Whether the supabase/postgres image creates it with LOGIN. The others (`anon`,
    /// `authenticated`, `service_role`, `dashboard_user`) are switched to with `SET ROLE`.
    pub login_by_default: bool,
}

const fn role(name: &'static str, login_by_default: bool) -> Role {
    Role { name, login_by_default }
}

/// The twelve roles that share `POSTGRES_PASSWORD` (SPEC §2), in alphabetical order.
pub const ROTATED_ROLES: [Role; 12] = [
    role("anon", false),
    role("authenticated", false),
    role("authenticator", true),
    role("dashboard_user", false),
    role("pgbouncer", true),
    role("postgres", true),
    role("service_role", false),
    role("supabase_admin", true),
    role("supabase_auth_admin", true),
    role("supabase_functions_admin", true),
    role("supabase_replication_admin", true),
    role("supabase_storage_admin", true),
];

/// The role Studio's read-only connection uses. It has no password by design, so a rotation
/// leaves it alone unless it holds the old one.
pub const PASSWORDLESS_ROLE: &str = "supabase_read_only_user";

/// The names of the twelve rotated roles.
pub fn rotated_role_names() -> impl Iterator<Item = &'static str> {
    ROTATED_ROLES.iter().map(|role| role.name)
}

/// Whether `name` is one of the twelve rotated roles.
pub fn is_rotated_role(name: &str) -> bool {
    rotated_role_names().any(|role| role == name)
}

/// The rotated roles the supabase/postgres image creates with LOGIN: the guess used when the
/// server's own list cannot be read.
pub fn login_by_default() -> impl Iterator<Item = &'static str> {
    ROTATED_ROLES.iter().filter(|role| role.login_by_default).map(|role| role.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_of_the_twelve_log_in_by_default() {
        let login: Vec<&str> = login_by_default().collect();
        assert_eq!(login.len(), 8);
        for name in ["anon", "authenticated", "service_role", "dashboard_user"] {
            assert!(is_rotated_role(name) && !login.contains(&name), "{name}");
        }
        assert!(!is_rotated_role(PASSWORDLESS_ROLE));
    }
}
