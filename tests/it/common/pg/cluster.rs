//! The `Cluster` handle a test holds: how it starts, where it is, and what Drop does.
//!
//! The handle is the same for a local cluster and an external server (`Kind`); what differs
//! lives in `local` and `external`, the queries in `queries` and `lock`.

use std::fmt;
use std::path::Path;

use super::command::PsqlTarget;
use super::dirs::sweep_orphans;
use super::external::{external_mode, start_external, External};
use super::local::{start_local, Local};
use super::options::{validate_options, ClusterOptions, Layout, PasswordEncryption};
use super::secrets::{redact, secrets_for};
use super::template::template_for;
use super::url::{pct_encode, url_host};

/// One test's PostgreSQL server; see the module docs of `pg` for what `start` sets up.
pub struct Cluster {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) superuser: String,
    pub(super) password: String,
    pub(super) main_db: String,
    pub(super) work_db: String,
    pub(super) layout: Layout,
    pub(super) password_encryption: PasswordEncryption,
    pub(super) harness_password: String,
    /// Query string of the external URL (kept in `db_url`), empty for local clusters.
    pub(super) url_query: String,
    pub(super) kind: Kind,
}

/// What is behind the handle, and what Drop has to undo.
pub(super) enum Kind {
    Local(Local),
    External(External),
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("superuser", &self.superuser)
            .field("password", &"<redacted>")
            .field("main_db", &self.main_db)
            .field("work_db", &self.work_db)
            .field("layout", &self.layout)
            .field("password_encryption", &self.password_encryption)
            .field("data_dir", &self.data_dir())
            .finish()
    }
}

impl Cluster {
    /// Starts a cluster (or attaches to `PMOVES_TEST_DATABASE_URL`); panics with the reason.
    pub fn start(opts: ClusterOptions) -> Cluster {
        match Cluster::try_start(opts) {
            Ok(c) => c,
            Err(e) => panic!("pg harness: {e}"),
        }
    }

    /// `Cluster::start(ClusterOptions::default())`.
    pub fn start_default() -> Cluster {
        Cluster::start(ClusterOptions::default())
    }

    pub fn try_start(opts: ClusterOptions) -> Result<Cluster, String> {
        if external_mode() {
            return start_external(&opts);
        }
        validate_options(&opts)?;
        sweep_orphans();
        let template = template_for(&opts)?;
        start_local(&opts, &template)
    }

    pub fn is_external(&self) -> bool {
        matches!(self.kind, Kind::External(_))
    }
    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// `supabase_admin` (the user of the external URL in external mode).
    pub fn superuser(&self) -> &str {
        &self.superuser
    }
    /// The initial password of every Supabase LOGIN role (32 hex chars, random per cluster).
    /// Not updated when a test rotates it.
    pub fn password(&self) -> &str {
        &self.password
    }
    pub fn main_db(&self) -> &str {
        &self.main_db
    }
    /// The database holding `_analytics` / `_supavisor`: `_supabase` (layout `Current`) or the
    /// main database.
    pub fn work_db(&self) -> &str {
        &self.work_db
    }
    pub fn layout(&self) -> Layout {
        self.layout
    }
    pub fn password_encryption(&self) -> PasswordEncryption {
        self.password_encryption
    }
    pub fn data_dir(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Local(l) => Some(&l.data),
            Kind::External(_) => None,
        }
    }
    /// The server log (`<cluster dir>/server.log`); `None` for an external server.
    pub fn log_path(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Local(l) => Some(&l.log),
            Kind::External(_) => None,
        }
    }
    /// The whole server log so far (lossy UTF-8); empty for an external server.
    pub fn server_log(&self) -> String {
        match self.log_path() {
            Some(p) => std::fs::read(p).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default(),
            None => String::new(),
        }
    }

    /// `postgresql://user:password@host:port/db`, user and password percent-encoded.
    pub fn db_url(&self, user: &str, password: &str, db: &str) -> String {
        let mut url = format!(
            "postgresql://{}:{}@{}:{}/{}",
            pct_encode(user),
            pct_encode(password),
            url_host(&self.host),
            self.port,
            pct_encode(db)
        );
        if !self.url_query.is_empty() {
            url.push('?');
            url.push_str(&self.url_query);
        }
        url
    }
    /// `db_url(superuser, password, main_db)`.
    pub fn superuser_url(&self) -> String {
        self.db_url(&self.superuser, &self.password, &self.main_db)
    }

    /// The `.env` variables that point the tool at this cluster.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        vec![
            ("POSTGRES_HOST".to_string(), self.host.clone()),
            ("POSTGRES_PORT".to_string(), self.port.to_string()),
            ("POSTGRES_DB".to_string(), self.main_db.clone()),
            ("POSTGRES_PASSWORD".to_string(), self.password.clone()),
        ]
    }

    // ------------------------------------------------------------------ internals

    pub(super) fn psql_target(&self, db: &str) -> PsqlTarget {
        PsqlTarget { host: self.host.clone(), port: self.port, db: db.to_string() }
    }

    pub(super) fn secrets(&self) -> Vec<String> {
        secrets_for(&[&self.password, &self.harness_password])
    }

    pub(super) fn redact(&self, text: &str) -> String {
        redact(text, &self.secrets())
    }
}

impl Drop for Cluster {
    /// A local cluster is stopped and its directory removed (or kept); an external one gets back
    /// what the snapshot taken at start recorded.
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        let secrets = self.secrets();
        if let Kind::Local(l) = &mut self.kind {
            l.shut_down(panicking, &secrets);
        }
        if let Kind::External(x) = &self.kind {
            x.restore(self, &secrets);
        }
    }
}
