//! The stack's own database server, under every name it goes by, and the one rule for which
//! connection strings are the stack's own copies of its database password (SPEC §2 step 3).
//!
//! Inside the compose network the database is `db` (its service name) or `supabase-db` (its
//! `container_name`; Logflare's backend URL uses it); the pooler in front of it is `supavisor`
//! (`supabase-pooler`), which logs in with the same roles (as `<role>.<POOLER_TENANT_ID>`).
//! Outside, it is `POSTGRES_HOST` and whatever host the tool itself connects to. Facts from
//! supabase/docker's `docker-compose.yml` (services `db` and `supavisor`, their
//! `container_name`s and ports `5432` and `POOLER_PROXY_PORT_TRANSACTION:6543`).

use std::collections::BTreeSet;

use crate::dburl;

/// Host names of the stack's database server inside the compose network.
pub const DB_SERVICE_NAMES: [&str; 4] = ["db", "supabase-db", "supavisor", "supabase-pooler"];

/// Ports the stack's server (or its pooler) listens on inside the compose network.
pub const SERVICE_PORTS: [u16; 2] = [5432, 6543];

/// `.env` keys that name the stack's server or one of its ports.
const HOST_KEYS: [&str; 1] = ["POSTGRES_HOST"];
const PORT_KEYS: [&str; 2] = ["POSTGRES_PORT", "POOLER_PROXY_PORT_TRANSACTION"];

/// The pooler's tenant, which qualifies role names (`postgres.<tenant>`).
const TENANT_KEY: &str = "POOLER_TENANT_ID";

/// Names that all mean this machine.
const LOOPBACK: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The stack's own database server: every host name and port it is reached by.
#[derive(Debug, Clone)]
pub struct OwnServer {
    names: BTreeSet<String>,
    ports: BTreeSet<u16>,
    tenant: Option<String>,
}

/// Whose a connection string is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whose {
    /// A rotated role's on the stack's server: it follows the rotation.
    Stack,
    /// Another role's (named here), on the stack's server.
    OtherRole(String),
    /// It names no user, so no role's password can be said to be in it.
    NoUser,
    /// Another server's (the first foreign `host:port`).
    OtherServer(String),
}

impl OwnServer {
    /// The server as the `.env` (`lookup`) names it, plus the host and port the tool connects to.
    pub fn new(lookup: impl Fn(&str) -> Option<String>, connected_host: &str, connected_port: u16) -> Self {
        let mut names: BTreeSet<String> = DB_SERVICE_NAMES.iter().map(|n| (*n).to_owned()).collect();
        names.extend(HOST_KEYS.iter().filter_map(|k| lookup(k)).map(|h| h.to_ascii_lowercase()));
        names.insert(connected_host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase());
        if names.iter().any(|n| LOOPBACK.contains(&n.as_str())) {
            names.extend(LOOPBACK.iter().map(|n| (*n).to_owned()));
        }
        let mut ports: BTreeSet<u16> = SERVICE_PORTS.into_iter().collect();
        ports.extend(PORT_KEYS.iter().filter_map(|k| lookup(k)).filter_map(|p| p.trim().parse::<u16>().ok()));
        ports.insert(connected_port);
        let tenant = lookup(TENANT_KEY).filter(|t| !t.is_empty());
        OwnServer { names, ports, tenant }
    }

    /// Whose `connection_string` is, given the roles the rotation changes. `None` when it is not
    /// a connection string.
    pub fn whose(&self, connection_string: &str, rotated: &[&str]) -> Option<Whose> {
        let endpoints = dburl::endpoints(connection_string)?;
        if let Some((host, port)) = endpoints.iter().find(|(host, port)| !self.is_own(host, *port)) {
            return Some(Whose::OtherServer(match port {
                Some(port) => format!("{host}:{port}"),
                None => host.clone(),
            }));
        }
        let Some(user) = dburl::user(connection_string) else { return Some(Whose::NoUser) };
        let role = match (&self.tenant, user.rsplit_once('.')) {
            (Some(tenant), Some((role, qualifier))) if qualifier == tenant => role,
            _ => user.as_str(),
        };
        Some(if rotated.contains(&role) { Whose::Stack } else { Whose::OtherRole(user) })
    }

    fn is_own(&self, host: &str, port: Option<u16>) -> bool {
        self.names.contains(host) && self.ports.contains(&port.unwrap_or(5432))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> OwnServer {
        let env = |key: &str| match key {
            "POSTGRES_HOST" => Some("pg.internal".to_owned()),
            "POSTGRES_PORT" => Some("5433".to_owned()),
            "POOLER_TENANT_ID" => Some("tenant1".to_owned()),
            _ => None,
        };
        OwnServer::new(env, "127.0.0.1", 54000)
    }

    #[test]
    fn every_name_of_the_stacks_server_is_its_own() {
        let rotated = ["postgres", "supabase_admin"];
        for url in [
            "postgresql://postgres:pw@db:5432/postgres",
            "postgresql://supabase_admin:pw@supabase-db:5432/_supabase",
            "postgresql://postgres:pw@pg.internal:5433/postgres",
            "postgresql://postgres:pw@localhost:54000/postgres",
            "postgresql://postgres.tenant1:pw@supavisor:6543/postgres",
            "host=db user=postgres password=pw",
        ] {
            assert_eq!(server().whose(url, &rotated), Some(Whose::Stack), "{url}");
        }
    }

    #[test]
    fn other_roles_and_other_servers_are_not() {
        let rotated = ["postgres"];
        let whose = |url: &str| server().whose(url, &rotated).unwrap();
        assert_eq!(whose("postgresql://app_user:pw@db/postgres"), Whose::OtherRole("app_user".into()));
        assert_eq!(
            whose("postgresql://postgres:pw@reports.example.com/r"),
            Whose::OtherServer("reports.example.com".into())
        );
        assert_eq!(whose("postgresql://postgres:pw@localhost:5499/r"), Whose::OtherServer("localhost:5499".into()));
        assert_eq!(whose("postgresql://postgres.other:pw@supavisor:6543/r"), Whose::OtherRole("postgres.other".into()));
        assert_eq!(whose("postgresql://db:5432/postgres"), Whose::NoUser);
        assert_eq!(server().whose("nats://a:b@nats", &rotated), None);
    }
}
