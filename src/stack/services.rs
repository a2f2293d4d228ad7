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

    /// Every restart list the README gives for rotate-passwords (the dry run's `restart
    /// afterwards:`, the printed `docker compose up -d --force-recreate …`, the runbook's) names
    /// exactly these services, in this order, as the tool prints them.
    #[test]
    fn the_readmes_rotate_passwords_restart_lists_are_these_services() {
        let readme = include_str!("../../README.md");
        let section = readme.split_once("\n## `rotate-passwords`").expect("the rotate-passwords section").1;
        let section = section.split_once("\n## ").map_or(section, |(section, _)| section);
        let lists: Vec<&str> = section
            .lines()
            .filter_map(|line| {
                let line = line.trim_start();
                line.strip_prefix("restart afterwards: ")
                    .or_else(|| line.strip_prefix("docker compose up -d --force-recreate "))
            })
            .collect();
        assert!(lists.len() >= 3, "the dry run, the rotation's output and the runbook: {lists:?}");
        for list in lists {
            assert_eq!(list, HOLDING_DB_PASSWORD.join(" "));
        }
    }
}
