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
    /// `shared_preload_libraries` of the cluster (`pgaudit`, `auto_explain`, ...), in order.
    pub preload_libraries: Vec<String>,
    /// Extensions created (`CREATE EXTENSION IF NOT EXISTS`) in the main and the work database.
    pub extensions: Vec<String>,
    /// Further `name = 'value'` lines of `postgresql.conf`, in order (a later one wins).
    pub server_settings: Vec<(String, String)>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            password_encryption: PasswordEncryption::ScramSha256,
            main_db: "postgres".to_string(),
            layout: Layout::Current,
            drop_roles: Vec::new(),
            log_statement_all: false,
            preload_libraries: Vec::new(),
            extensions: Vec::new(),
            server_settings: Vec::new(),
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
    /// Adds `library` to `shared_preload_libraries` (the server loads it at start).
    pub fn preload(mut self, library: &str) -> Self {
        if !self.preload_libraries.iter().any(|l| l == library) {
            self.preload_libraries.push(library.to_string());
        }
        self
    }
    /// pgaudit as Supabase's images have it: preloaded, and its extension created.
    pub fn pgaudit(mut self) -> Self {
        self = self.preload("pgaudit");
        if !self.extensions.iter().any(|e| e == "pgaudit") {
            self.extensions.push("pgaudit".to_string());
        }
        self
    }
    /// `name = 'value'` in `postgresql.conf` (value quoted for the file; any server setting).
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.server_settings.push((name.to_string(), value.to_string()));
        self
    }
    /// Whether these options change the server's configuration beyond the template's.
    pub fn has_server_configuration(&self) -> bool {
        !self.preload_libraries.is_empty() || !self.extensions.is_empty() || !self.server_settings.is_empty()
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
    for name in opts.preload_libraries.iter().chain(&opts.extensions) {
        if !ok(name) {
            return Err(format!("library or extension name {name:?} must be [A-Za-z0-9_]+"));
        }
    }
    for (name, _) in &opts.server_settings {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            return Err(format!("setting name {name:?} must be [A-Za-z0-9_.]+"));
        }
    }
    for r in &opts.drop_roles {
        if !ok(r) || r == SUPERUSER {
            return Err(format!("cannot drop role {r:?}"));
        }
    }
    Ok(())
}
