//! The compose services of a Supabase stack (upstream `supabase/docker`), and what each holds.
//!
//! Which services read each secret key is recorded on the key itself
//! ([`KeySpec::read_by`](super::KeySpec::read_by)); this module lists the services for the
//! question a rotation asks: which must be recreated to pick up a new database password.

/// The services that connect to PostgreSQL with `POSTGRES_PASSWORD` (directly or through a URL
/// built from it), so they must be recreated after a rotation. `db` itself is not among them:
/// the server already holds the new verifiers.
pub const HOLDING_DB_PASSWORD: &[&str] =
    &["auth", "rest", "realtime", "storage", "meta", "studio", "functions", "analytics", "supavisor"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::{key, POSTGRES_PASSWORD};

    #[test]
    fn every_service_holding_the_password_reads_postgres_password() {
        let readers = key(POSTGRES_PASSWORD).map(|spec| spec.read_by).unwrap_or_default();
        for service in HOLDING_DB_PASSWORD {
            assert!(readers.contains(service), "{service}");
        }
    }
}
