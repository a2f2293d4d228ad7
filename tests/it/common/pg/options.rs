//! What a test asks for: `ClusterOptions` and its enums, and the checks on them.
//!
//! Kept apart from the machinery so a test reads the whole vocabulary in one short file.

use super::SUPERUSER;

/// `password_encryption` of the cluster; the fixture is loaded with it in force, so stored
/// verifiers are of that kind, and `pg_hba.conf` uses the same method name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PasswordEncryption {
    #[default]
    ScramSha256,
    Md5,
}

impl PasswordEncryption {
    pub fn setting(self) -> &'static str {
        match self {
            PasswordEncryption::ScramSha256 => "scram-sha-256",
            PasswordEncryption::Md5 => "md5",
        }
    }
}

/// Where `_analytics` / `_supavisor` live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Database `_supabase` holds `_analytics` and `_supavisor` (current supabase/docker).
    #[default]
    Current,
    /// No `_supabase`; `_analytics` and `_supavisor` are in the main database (older stacks).
    Legacy,
    /// No `_supabase`, no `_analytics`, no `_supavisor`.
    Bare,
}

impl Layout {
    pub(super) fn fixture_name(self) -> &'static str {
        match self {
            Layout::Current => "current",
            Layout::Legacy => "legacy",
            Layout::Bare => "bare",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClusterOptions {
    pub password_encryption: PasswordEncryption,
    /// The stack's main database (`POSTGRES_DB`): `postgres` upstream, `pmoves` in PMOVES.
    pub main_db: String,
    pub layout: Layout,
    /// Roles removed after loading the fixture (REASSIGN OWNED, DROP OWNED, DROP ROLE).
    pub drop_roles: Vec<String>,
    /// `log_statement = 'all'` in the server's configuration.
    pub log_statement_all: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            password_encryption: PasswordEncryption::ScramSha256,
            main_db: "postgres".to_string(),
            layout: Layout::Current,
            drop_roles: Vec::new(),
            log_statement_all: false,
        }
    }
}

impl ClusterOptions {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn md5(mut self) -> Self {
        self.password_encryption = PasswordEncryption::Md5;
        self
    }
    pub fn main_db(mut self, db: &str) -> Self {
        self.main_db = db.to_string();
        self
    }
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }
    /// The older stack: no `_supabase`, `_analytics`/`_supavisor` in the main database.
    pub fn legacy(self) -> Self {
        self.layout(Layout::Legacy)
    }
    pub fn without_role(mut self, role: &str) -> Self {
        self.drop_roles.push(role.to_string());
        self
    }
    pub fn log_all(mut self) -> Self {
        self.log_statement_all = true;
        self
    }
}

/// The database holding `_analytics` / `_supavisor` for `layout`.
pub(super) fn work_db_for(layout: Layout, main_db: &str) -> String {
    match layout {
        Layout::Current => "_supabase".to_string(),
        Layout::Legacy | Layout::Bare => main_db.to_string(),
    }
}

/// Names go into SQL and psql `\connect` lines unquoted, so only plain identifiers pass.
pub(super) fn validate_options(opts: &ClusterOptions) -> Result<(), String> {
    let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok(&opts.main_db) || opts.main_db == "_supabase" {
        return Err(format!("main_db {:?} must be [A-Za-z0-9_]+ and not _supabase", opts.main_db));
    }
    for r in &opts.drop_roles {
        if !ok(r) || r == SUPERUSER {
            return Err(format!("cannot drop role {r:?}"));
        }
    }
    Ok(())
}
