//! Throwaway PostgreSQL clusters for the integration tests.
//!
//! `Cluster::start(ClusterOptions::default())` gives each test its own PostgreSQL server on
//! 127.0.0.1 with the Supabase-like fixture of `docker/init/supabase-fixture.sql` loaded. Roles are
//! cluster-wide, so every test that rotates passwords needs its own cluster.
//!
//! How it works
//! - The server binaries come from `PMOVES_TEST_PG_BIN`, else the highest
//!   `/usr/lib/postgresql/<N>/bin`, else `pg_config --bindir`, else `initdb` on `PATH`
//!   (`scripts/ensure-postgres.sh` installs them).
//! - Once per test process and per template key (password encryption, main database, layout,
//!   dropped roles) a template data directory is made: `initdb -U supabase_admin`, the fixture
//!   loaded over TCP, the server stopped cleanly (~0.7 s). Every `Cluster::start` copies it
//!   (`cp -a`), picks a free port (retrying with another one if the start fails), starts the copy
//!   with `pg_ctl start` and gives the Supabase LOGIN roles a new random password, in a session
//!   with `log_statement = none` (nothing secret reaches the server log). ~0.12 s per cluster.
//! - Cluster directories live in `/dev/shm` when it is a RAM disk with >= 1 GiB free, else in the
//!   system temporary directory (`PMOVES_TEST_PG_TMPDIR` overrides).
//! - As root, `initdb`, `pg_ctl` and the server run as the OS user `postgres`
//!   (`PMOVES_TEST_PG_OS_USER` to change it) through `runuser` (or `su`).
//! - `pg_hba.conf`: `scram-sha-256` (or `md5` for `PasswordEncryption::Md5`) for the Unix socket and
//!   for `host all all 127.0.0.1/32`; nothing else. The server listens on 127.0.0.1 only.
//! - The server log is `<cluster dir>/server.log` (`log_path()`, `server_log()`);
//!   `log_statement = 'all'` with `ClusterOptions::log_all()`.
//! - Settings: `fsync = off`, `listen_addresses = '127.0.0.1'`, `unix_socket_directories` = the
//!   cluster directory, `logging_collector = off` (the postmaster's stderr is the log file),
//!   `log_line_prefix = '%m [%p] %q%u@%d '`, `autovacuum = off`.
//! - Drop stops the server (immediate shutdown: SIGQUIT) and removes its directory; when the
//!   test is panicking (or `PMOVES_TEST_PG_KEEP=1`) the directory is kept and its path printed.
//!   Template directories are removed at process exit; directories left by a killed test process
//!   (their owner pid is gone) are stopped and removed by the next test process.
//! - Helper queries (`psql`, `query_strings`, `stored_verifier`, `hold_lock`, ...) log in as a
//!   harness-only superuser `pmoves_test_harness` with its own password, so they keep working
//!   after a test rotated the Supabase passwords. Rotation must not (and cannot know to) touch it.
//!
//! The bootstrap superuser is `supabase_admin` (as in the supabase/postgres image);
//! `postgres` is a demoted LOGIN role (NOSUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS).
//!
//! External database
//! - With `PMOVES_TEST_DATABASE_URL=postgresql://supabase_admin:PW@HOST:PORT/DB` (for example a
//!   real supabase/postgres container) `Cluster::start` uses that server instead. The fixture is
//!   NOT loaded there (no `app_user`, analytics rows only if the stack made them); the layout
//!   (`_supabase` or main database) is detected. Options that need a local cluster (md5, another
//!   layout or main database, dropped roles, `log_all`) make `start` panic: such tests should
//!   `if external_mode() { return; }`. `log_path()` is `None` and `server_log()` empty.
//! - Tests then share one cluster: `start` serialises them inside one process (a global lock held
//!   by the `Cluster` value) but run them with `--test-threads=1` anyway. The harness snapshots
//!   the stored verifiers of the Supabase roles and the `_analytics.source_backends` configs
//!   at start and writes them back when the `Cluster` is dropped, so passwords a test rotated
//!   are restored. A reset `_supavisor` schema cannot be restored (supavisor re-seeds it).
//!   Only unencrypted connections (`NoTls`) are used.
//!
//! Failures panic with what failed, the command line and its stderr, with every password
//! the harness knows replaced by `<redacted>`. `PMOVES_TEST_PG_VERBOSE=1` prints timings.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// The fixture, compiled in (path relative to this file, so it works from any crate).
pub const FIXTURE_SQL: &str = include_str!("../../../docker/init/supabase-fixture.sql");

/// The bootstrap superuser of the cluster (and the default user of `rotate-passwords`).
pub const SUPERUSER: &str = "supabase_admin";
/// Every role `rotate-passwords` changes (SPEC §2), in the spec's order.
pub const ROTATED_ROLES: [&str; 12] = [
    "anon",
    "authenticated",
    "authenticator",
    "dashboard_user",
    "pgbouncer",
    "postgres",
    "service_role",
    "supabase_admin",
    "supabase_auth_admin",
    "supabase_functions_admin",
    "supabase_replication_admin",
    "supabase_storage_admin",
];
/// Supabase roles with LOGIN and, in the fixture, the shared password.
pub const LOGIN_ROLES: [&str; 8] = [
    "authenticator",
    "pgbouncer",
    "postgres",
    "supabase_admin",
    "supabase_auth_admin",
    "supabase_functions_admin",
    "supabase_replication_admin",
    "supabase_storage_admin",
];
/// Supabase roles without LOGIN; the fixture gives them no password (as upstream).
pub const NOLOGIN_ROLES: [&str; 4] = ["anon", "authenticated", "dashboard_user", "service_role"];
/// LOGIN role without a password by design: rotation leaves it alone.
pub const READ_ONLY_USER: &str = "supabase_read_only_user";
/// The operator's own role, with its own password: rotation must never touch it.
pub const APP_USER: &str = "app_user";
pub const APP_USER_PASSWORD: &str = "app-user-password";
/// Harness-only superuser used by the helper queries. Not a Supabase role.
pub const HARNESS_USER: &str = "pmoves_test_harness";

const DIR_PREFIX: &str = "pmoves-pg-";
const LOCAL_HOST: &str = "127.0.0.1";

// ------------------------------------------------------------------------------------------ options

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
    fn fixture_name(self) -> &'static str {
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

    fn template_key(&self) -> TemplateKey {
        let mut drop_roles = self.drop_roles.clone();
        drop_roles.sort();
        drop_roles.dedup();
        TemplateKey {
            password_encryption: self.password_encryption,
            main_db: self.main_db.clone(),
            layout: self.layout,
            drop_roles,
        }
    }
}

/// True when `PMOVES_TEST_DATABASE_URL` points the harness at an external server.
pub fn external_mode() -> bool {
    std::env::var_os("PMOVES_TEST_DATABASE_URL").is_some_and(|v| !v.is_empty())
}

// ------------------------------------------------------------------------------------------ cluster

pub struct Cluster {
    host: String,
    port: u16,
    superuser: String,
    password: String,
    main_db: String,
    work_db: String,
    layout: Layout,
    password_encryption: PasswordEncryption,
    harness_password: String,
    /// Query string of the external URL (kept in `db_url`), empty for local clusters.
    url_query: String,
    kind: Kind,
}

enum Kind {
    Local(Local),
    External(External),
}

struct Local {
    root: PathBuf,
    data: PathBuf,
    log: PathBuf,
    running: bool,
}

struct External {
    _guard: ExternalGuard,
    roles: Vec<(String, Option<String>)>,
    analytics: Vec<(String, String)>,
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

    /// Connects with `tokio_postgres` (no TLS); the connection task is spawned on the current
    /// runtime.
    pub async fn connect(
        &self,
        user: &str,
        password: &str,
        db: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = self.pg_config(user, password, db).connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// A connection as the harness superuser (unaffected by rotation); panics with the reason.
    pub async fn admin_client(&self, db: &str) -> tokio_postgres::Client {
        match self.connect(HARNESS_USER, &self.harness_password, db).await {
            Ok(c) => c,
            Err(e) => panic!(
                "pg harness: cannot connect as {HARNESS_USER} to {db} on {}:{}: {}",
                self.host,
                self.port,
                self.redact(&e.to_string())
            ),
        }
    }

    /// Whether `user` can log in with `password` (to the main database over TCP).
    /// `false` only for authentication failures (wrong/no password, NOLOGIN, no such role);
    /// any other error (server down, ...) panics so that a dead server never passes as
    /// "the old password is refused".
    pub async fn can_login(&self, user: &str, password: &str) -> bool {
        match self.connect(user, password, &self.main_db).await {
            Ok(_client) => true,
            Err(e) => {
                let auth = e.code().is_some_and(|c| {
                    *c == tokio_postgres::error::SqlState::INVALID_PASSWORD
                        || *c == tokio_postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                });
                if auth {
                    false
                } else {
                    panic!(
                        "pg harness: login attempt as {user} on {}:{} failed for a reason other than authentication: {}",
                        self.host,
                        self.port,
                        self.redact(&e.to_string())
                    )
                }
            }
        }
    }

    /// Runs `sql` (simple query protocol, may hold several statements) as the harness superuser
    /// in `work_db()`; every row of every result as strings (`None` for NULL).
    pub async fn query_strings(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let db = self.work_db.clone();
        self.query_strings_in(&db, sql).await
    }

    /// Like `query_strings`, in database `db`.
    pub async fn query_strings_in(&self, db: &str, sql: &str) -> Vec<Vec<Option<String>>> {
        let client = self.admin_client(db).await;
        let messages = match client.simple_query(sql).await {
            Ok(m) => m,
            Err(e) => panic!(
                "pg harness: query in {db} failed: {}\n--- query ---\n{}",
                self.redact(&error_text(&e)),
                self.redact(sql)
            ),
        };
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()
    }

    /// `rolpassword` of `role` in `pg_authid` (`None`: no password, or no such role).
    pub fn stored_verifier(&self, role: &str) -> Option<String> {
        let rows = self.psql_rows(
            &self.main_db.clone(),
            &format!("SELECT rolpassword FROM pg_authid WHERE rolname = {}", sql_literal(role)),
        );
        rows.into_iter().next().and_then(|mut r| r.pop()).flatten()
    }

    pub fn role_exists(&self, role: &str) -> bool {
        !self
            .psql_rows(&self.main_db.clone(), &format!("SELECT 1 FROM pg_roles WHERE rolname = {}", sql_literal(role)))
            .is_empty()
    }

    /// Runs `sql` with psql (`-X -q -A -t -v ON_ERROR_STOP=1`, script on stdin, so several
    /// statements and psql meta-commands are fine) as the harness superuser in `work_db()`;
    /// returns stdout without the final newline. Panics with psql's stderr on failure.
    pub fn psql(&self, sql: &str) -> String {
        let db = self.work_db.clone();
        self.psql_in(&db, sql)
    }

    pub fn psql_in(&self, db: &str, sql: &str) -> String {
        match self.try_psql_in(db, sql) {
            Ok(s) => s,
            Err(e) => panic!("pg harness: {e}"),
        }
    }

    pub fn try_psql_in(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = run_psql(
            &self.psql_target(db),
            HARNESS_USER,
            &self.harness_password,
            &[],
            None,
            sql,
            &self.secrets(),
            "psql",
        )?;
        Ok(out.trim_end_matches('\n').to_string())
    }

    /// Rows of `sql` (one statement) through psql, `None` for NULL.
    pub fn psql_rows(&self, db: &str, sql: &str) -> Vec<Vec<Option<String>>> {
        let out = match run_psql(
            &self.psql_target(db),
            HARNESS_USER,
            &self.harness_password,
            &["-F", "\u{1f}", "-R", "\u{1e}", "-P", "null=\u{1}"],
            None,
            sql,
            &self.secrets(),
            "psql",
        ) {
            Ok(s) => s,
            Err(e) => panic!("pg harness: {e}"),
        };
        let out = out.strip_suffix('\n').unwrap_or(&out);
        if out.is_empty() {
            return Vec::new();
        }
        out.split('\u{1e}')
            .map(|rec| rec.split('\u{1f}').map(|f| if f == "\u{1}" { None } else { Some(f.to_string()) }).collect())
            .collect()
    }

    /// Drops `role` cluster-wide (its objects reassigned to supabase_admin in every database).
    pub fn drop_role(&self, role: &str) {
        let sql = drop_roles_script(&[role.to_string()], &self.databases());
        self.psql_in(&self.main_db.clone(), &sql);
    }

    fn databases(&self) -> Vec<String> {
        self.psql_rows(&self.main_db.clone(), "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
            .into_iter()
            .filter_map(|mut r| r.pop().flatten())
            .collect()
    }

    /// Opens a separate session as the harness superuser in `work_db()`, runs `BEGIN` and `sql`
    /// (empty: `LOCK TABLE _supavisor.tenants IN ACCESS SHARE MODE`) and keeps that transaction
    /// open until the returned holder is dropped (then `ROLLBACK`, the session closed, before
    /// `drop` returns). The session lives on its own thread, so it is unaffected by what the
    /// test's runtime does meanwhile.
    pub async fn hold_lock(&self, sql: &str) -> LockHolder {
        let db = self.work_db.clone();
        self.hold_lock_in(&db, sql).await
    }

    pub async fn hold_lock_in(&self, db: &str, sql: &str) -> LockHolder {
        let sql = if sql.trim().is_empty() {
            "LOCK TABLE _supavisor.tenants IN ACCESS SHARE MODE".to_string()
        } else {
            sql.to_string()
        };
        let config = self.pg_config(HARNESS_USER, &self.harness_password, db);
        let secrets = self.secrets();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<i32, String>>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("pg-lock-holder".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot build a runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let (client, connection) = match config.connect(tokio_postgres::NoTls).await {
                        Ok(x) => x,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("connect: {}", error_text(&e))));
                            return;
                        }
                    };
                    let conn_task = tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    let setup = async {
                        client.batch_execute("BEGIN").await?;
                        client.batch_execute(&sql).await?;
                        let row = client.query_one("SELECT pg_backend_pid()", &[]).await?;
                        Ok::<i32, tokio_postgres::Error>(row.get(0))
                    };
                    match setup.await {
                        Ok(pid) => {
                            let _ = ready_tx.send(Ok(pid));
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!(
                                "{}\n--- sql ---\n{}",
                                error_text(&e),
                                redact(&sql, &secrets)
                            )));
                            return;
                        }
                    }
                    // Wait (blocking this private runtime only) until the holder is dropped.
                    let _ = release_rx.recv();
                    let _ = client.batch_execute("ROLLBACK").await;
                    drop(client);
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn_task).await;
                });
            })
            .expect("pg harness: cannot spawn the lock holder thread");
        match ready_rx.await {
            Ok(Ok(pid)) => LockHolder { release: Some(release_tx), thread: Some(thread), pid },
            Ok(Err(e)) => {
                let _ = thread.join();
                panic!("pg harness: hold_lock in {db} failed: {e}")
            }
            Err(_) => {
                let _ = thread.join();
                panic!("pg harness: hold_lock in {db}: the holder thread died")
            }
        }
    }

    /// Stops the server now (`pg_ctl -m fast stop`); Drop then only removes the directory.
    pub fn stop(&mut self) {
        if let Kind::Local(l) = &mut self.kind {
            if l.running {
                l.running = false;
                if let Err(e) = pg_ctl_stop(&l.data, "fast") {
                    eprintln!("pg harness: {e}");
                }
            }
        }
    }

    /// Starts a stopped local server again on the same port.
    pub fn restart(&mut self) {
        let secrets = self.secrets();
        if let Kind::Local(l) = &mut self.kind {
            if !l.running {
                if let Err(e) = pg_ctl_start(&l.data, &l.log) {
                    panic!("pg harness: restart failed: {}", redact(&e, &secrets));
                }
                l.running = true;
            }
        }
    }

    pub fn is_running(&self) -> bool {
        match &self.kind {
            Kind::Local(l) => l.running,
            Kind::External(_) => true,
        }
    }

    // ------------------------------------------------------------------ internals

    fn pg_config(&self, user: &str, password: &str, db: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(user)
            .password(password)
            .dbname(db)
            .application_name("pmoves-test-harness")
            .connect_timeout(Duration::from_secs(10));
        config
    }

    fn psql_target(&self, db: &str) -> PsqlTarget {
        PsqlTarget { host: self.host.clone(), port: self.port, db: db.to_string() }
    }

    fn secrets(&self) -> Vec<String> {
        secrets_for(&[&self.password, &self.harness_password])
    }

    fn redact(&self, text: &str) -> String {
        redact(text, &self.secrets())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        let secrets = self.secrets();
        match &mut self.kind {
            Kind::Local(l) => {
                if l.running {
                    l.running = false;
                    if let Err(e) = pg_ctl_stop(&l.data, "immediate") {
                        eprintln!("pg harness: {}", redact(&e, &secrets));
                    }
                }
                let keep = panicking || env_flag("PMOVES_TEST_PG_KEEP");
                if keep {
                    let _ = std::fs::write(l.root.join("KEPT"), b"");
                    eprintln!(
                        "pg harness: kept the cluster directory {} (server log {}); the next test run removes it after 24 h",
                        l.root.display(),
                        l.log.display()
                    );
                } else if let Err(e) = std::fs::remove_dir_all(&l.root) {
                    eprintln!("pg harness: cannot remove {}: {e}", l.root.display());
                }
            }
            Kind::External(x) => {
                let target = PsqlTarget { host: self.host.clone(), port: self.port, db: self.main_db.clone() };
                let restore = external_restore_script(&x.roles, &x.analytics, &self.work_db, self.layout);
                if let Err(e) = run_psql(
                    &target,
                    HARNESS_USER,
                    &self.harness_password,
                    &[],
                    Some(QUIET_LOG),
                    &restore,
                    &secrets,
                    "restoring the external cluster's passwords",
                ) {
                    eprintln!("pg harness: {e}");
                }
                // The original superuser password is back: drop the harness role with it.
                let drop_sql = format!("DROP ROLE IF EXISTS {}", sql_ident(HARNESS_USER));
                if let Err(e) = run_psql(
                    &target,
                    &self.superuser,
                    &self.password,
                    &[],
                    Some(QUIET_LOG),
                    &drop_sql,
                    &secrets,
                    "dropping the harness role",
                ) {
                    eprintln!("pg harness: {e}");
                }
            }
        }
    }
}

/// A transaction kept open in another session; see `Cluster::hold_lock`.
pub struct LockHolder {
    release: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pid: i32,
}

impl LockHolder {
    /// `pg_backend_pid()` of the holding session (to look it up in pg_locks / pg_stat_activity).
    pub fn backend_pid(&self) -> i32 {
        self.pid
    }
    /// Rolls back and closes the session (same as dropping the holder).
    pub fn release(self) {}
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ------------------------------------------------------------------------------------------ local clusters

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TemplateKey {
    password_encryption: PasswordEncryption,
    main_db: String,
    layout: Layout,
    drop_roles: Vec<String>,
}

struct Template {
    root: PathBuf,
    data: PathBuf,
    /// Password of the Supabase LOGIN roles in the template.
    password: String,
    harness_password: String,
}

type TemplateSlot = Arc<Mutex<Option<Result<Arc<Template>, String>>>>;

fn templates() -> &'static Mutex<HashMap<TemplateKey, TemplateSlot>> {
    static T: OnceLock<Mutex<HashMap<TemplateKey, TemplateSlot>>> = OnceLock::new();
    T.get_or_init(|| Mutex::new(HashMap::new()))
}

fn template_for(opts: &ClusterOptions) -> Result<Arc<Template>, String> {
    let key = opts.template_key();
    let slot = {
        let mut map = templates().lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.clone()).or_default().clone()
    };
    // One builder per key; other keys build in parallel.
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let started = Instant::now();
        let built = build_template(&key);
        if built.is_ok() && env_flag("PMOVES_TEST_PG_VERBOSE") {
            eprintln!("pg harness: template {key:?} built in {} ms", started.elapsed().as_millis());
        }
        *guard = Some(built);
    }
    guard.as_ref().expect("template slot filled").clone()
}

fn build_template(key: &TemplateKey) -> Result<Arc<Template>, String> {
    let bin = pg_bin_dir()?;
    let root = make_dir("tpl-")?;
    register_cleanup(&root);
    let data = root.join("data");
    let log = root.join("server.log");
    let password = random_hex(16);
    let harness_password = random_hex(16);
    let secrets = secrets_for(&[&password, &harness_password]);
    let method = key.password_encryption.setting();

    // initdb: the bootstrap superuser is supabase_admin, with the template password.
    let pwfile = root.join("pwfile");
    write_private(&pwfile, password.as_bytes())?;
    chown_to_pg_user(&pwfile)?;
    let mut initdb = server_command(&bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", SUPERUSER, "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"])
        .arg(format!("--auth={method}"))
        .arg(format!("--pwfile={}", pwfile.display()))
        .arg("--wal-segsize=1")
        .current_dir(&root);
    run(&mut initdb, "initdb", None, &secrets)?;
    let _ = std::fs::remove_file(&pwfile);

    append_file(
        &data.join("postgresql.conf"),
        &format!(
            "\n# --- pmoves-secrets test harness (template) ---\n\
             listen_addresses = '{LOCAL_HOST}'\n\
             password_encryption = '{method}'\n\
             fsync = off\n\
             full_page_writes = off\n\
             shared_buffers = 16MB\n\
             max_connections = 40\n\
             min_wal_size = 2MB\n\
             max_wal_size = 32MB\n\
             autovacuum = off\n\
             jit = off\n\
             logging_collector = off\n\
             log_destination = 'stderr'\n\
             log_line_prefix = '%m [%p] %q%u@%d '\n\
             log_statement = 'none'\n\
             timezone = 'UTC'\n"
        ),
    )?;
    std::fs::write(
        data.join("pg_hba.conf"),
        format!(
            "# pmoves-secrets test harness: passwords only, loopback only\n\
             local all all {method}\n\
             host  all all {LOCAL_HOST}/32 {method}\n"
        ),
    )
    .map_err(|e| format!("cannot write pg_hba.conf in {}: {e}", data.display()))?;
    chown_to_pg_user(&data.join("pg_hba.conf"))?;

    let port = start_on_free_port(&data, &log, &root)?;
    let target = PsqlTarget { host: LOCAL_HOST.to_string(), port, db: "postgres".to_string() };

    // Fixture, then the harness role, then optional role drops; all as supabase_admin.
    let result = (|| -> Result<(), String> {
        run_psql(
            &target,
            SUPERUSER,
            &password,
            &[
                "-v",
                &format!("pgpass={password}"),
                "-v",
                &format!("maindb={}", key.main_db),
                "-v",
                &format!("layout={}", key.layout.fixture_name()),
            ],
            None,
            FIXTURE_SQL,
            &secrets,
            "loading docker/init/supabase-fixture.sql",
        )?;
        let mut sql = format!(
            "CREATE ROLE {} WITH SUPERUSER LOGIN PASSWORD {};\n",
            sql_ident(HARNESS_USER),
            sql_literal(&harness_password)
        );
        if !key.drop_roles.is_empty() {
            let mut dbs = vec!["postgres".to_string(), key.main_db.clone()];
            if key.layout == Layout::Current {
                dbs.push("_supabase".to_string());
            }
            dbs.dedup();
            sql.push_str(&drop_roles_script(&key.drop_roles, &dbs));
        }
        sql.push_str("CHECKPOINT;\n");
        run_psql(&target, SUPERUSER, &password, &[], Some(QUIET_LOG), &sql, &secrets, "preparing the template")?;
        Ok(())
    })();
    let stopped = pg_ctl_stop(&data, "fast");
    result?;
    stopped?;
    Ok(Arc::new(Template { root, data, password, harness_password }))
}

fn start_local(opts: &ClusterOptions, template: &Template) -> Result<Cluster, String> {
    let t0 = Instant::now();
    let root = make_dir("")?;
    let data = root.join("data");
    let log = root.join("server.log");
    let mut cp = Command::new("cp");
    cp.arg("-a").arg("--reflink=auto").arg(&template.data).arg(&data);
    if let Err(e) = run(&mut cp, "copying the template data directory", None, &[]) {
        let _ = std::fs::remove_dir_all(&root);
        return Err(e);
    }
    let t_copy = t0.elapsed();
    let log_statement = if opts.log_statement_all { "all" } else { "none" };
    let mut cluster = Cluster {
        host: LOCAL_HOST.to_string(),
        port: 0,
        superuser: SUPERUSER.to_string(),
        password: random_hex(16),
        main_db: opts.main_db.clone(),
        work_db: work_db_for(opts.layout, &opts.main_db),
        layout: opts.layout,
        password_encryption: opts.password_encryption,
        harness_password: template.harness_password.clone(),
        url_query: String::new(),
        kind: Kind::Local(Local { root: root.clone(), data: data.clone(), log: log.clone(), running: false }),
    };
    append_file(
        &data.join("postgresql.conf"),
        &format!("\n# --- pmoves-secrets test harness (cluster) ---\nlog_statement = '{log_statement}'\n"),
    )?;
    cluster.port = start_on_free_port(&data, &log, &root)?;
    if let Kind::Local(l) = &mut cluster.kind {
        l.running = true;
    }
    let t_start = t0.elapsed();

    // Fresh per-cluster password, hashed by the server under the cluster's password_encryption;
    // the session runs with log_statement = none, so nothing secret reaches the log.
    let dropped: HashSet<&str> = opts.drop_roles.iter().map(String::as_str).collect();
    let mut sql = String::new();
    for role in LOGIN_ROLES.iter().filter(|r| !dropped.contains(*r)) {
        sql.push_str(&format!("ALTER ROLE {} PASSWORD {};\n", sql_ident(role), sql_literal(&cluster.password)));
    }
    if opts.layout != Layout::Bare {
        sql.push_str(&format!("\\connect {}\n", cluster.work_db));
        sql.push_str(&format!(
            "UPDATE _analytics.source_backends SET config = jsonb_set(config, '{{url}}', \
             to_jsonb(replace(replace(config->>'url', {}, {}), {}, {}))) \
             WHERE type = 'postgres' AND config ? 'url';\n",
            sql_literal(&template.password),
            sql_literal(&cluster.password),
            sql_literal(&pct_encode_all(&template.password)),
            sql_literal(&pct_encode_all(&cluster.password)),
        ));
    }
    let secrets = secrets_for(&[&cluster.password, &template.password, &template.harness_password]);
    run_psql(
        &cluster.psql_target(&opts.main_db),
        HARNESS_USER,
        &template.harness_password,
        &[],
        Some(QUIET_LOG),
        &sql,
        &secrets,
        "setting the cluster's passwords",
    )?;
    if env_flag("PMOVES_TEST_PG_VERBOSE") {
        eprintln!(
            "pg harness: cluster on port {} ready: copy {} ms, started {} ms, passwords set {} ms",
            cluster.port,
            t_copy.as_millis(),
            t_start.as_millis(),
            t0.elapsed().as_millis()
        );
    }
    Ok(cluster)
}

fn work_db_for(layout: Layout, main_db: &str) -> String {
    match layout {
        Layout::Current => "_supabase".to_string(),
        Layout::Legacy | Layout::Bare => main_db.to_string(),
    }
}

fn validate_options(opts: &ClusterOptions) -> Result<(), String> {
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

/// SQL that removes `roles` (objects reassigned to supabase_admin in every database of `dbs`).
fn drop_roles_script(roles: &[String], dbs: &[String]) -> String {
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

/// Starts the server on a free port, retrying with another port when the start fails.
fn start_on_free_port(data: &Path, log: &Path, socket_dir: &Path) -> Result<u16, String> {
    let mut last_err = String::new();
    for _ in 0..5 {
        let port = free_port()?;
        append_file(
            &data.join("postgresql.conf"),
            &format!("port = {port}\nunix_socket_directories = '{}'\n", socket_dir.display()),
        )?;
        match pg_ctl_start(data, log) {
            Ok(()) => return Ok(port),
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

/// `pg_ctl start -W`, then waits for `postmaster.pid` to say `ready` (polling every 5 ms,
/// where `pg_ctl -w` polls every 100 ms). Fails fast when the postmaster exits or logs FATAL.
fn pg_ctl_start(data: &Path, log: &Path) -> Result<(), String> {
    let bin = pg_bin_dir()?;
    let log_before = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    let log_tail = || {
        let text = std::fs::read(log).unwrap_or_default();
        let new = &text[(log_before as usize).min(text.len())..];
        tail(&String::from_utf8_lossy(new), 20)
    };
    let mut cmd = server_command(&bin.join("pg_ctl"));
    cmd.arg("-D").arg(data).arg("-l").arg(log).args(["-W", "-s", "start"]);
    if let Some(parent) = data.parent() {
        cmd.current_dir(parent);
    }
    run(&mut cmd, "pg_ctl start", None, &[])?;
    let pidfile = data.join("postmaster.pid");
    let started = Instant::now();
    let mut seen_pid: Option<u32> = None;
    loop {
        if let Ok(text) = std::fs::read_to_string(&pidfile) {
            let lines: Vec<&str> = text.lines().collect();
            if let Some(pid) = lines.first().and_then(|l| l.trim().parse().ok()) {
                seen_pid = Some(pid);
            }
            if lines.get(7).map(|l| l.trim()) == Some("ready") {
                return Ok(());
            }
        }
        let died = seen_pid.is_some_and(|pid| !process_alive(pid));
        let fatal = log_tail().contains("FATAL:");
        let waited = started.elapsed();
        if died || fatal || waited > Duration::from_secs(60) || (seen_pid.is_none() && waited > Duration::from_secs(10))
        {
            if let Some(pid) = seen_pid.filter(|p| process_alive(*p)) {
                let _ = Command::new("kill").args(["-QUIT", &pid.to_string()]).status();
            }
            return Err(format!(
                "the server in {} did not start ({}); --- server log (tail) ---\n{}",
                data.display(),
                if died || fatal { "it exited" } else { "timed out" },
                log_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Stops the server. `immediate`: SIGQUIT to the postmaster and wait (5 ms polls) until it is
/// gone; otherwise, or if that fails, `pg_ctl -m MODE -w stop`.
fn pg_ctl_stop(data: &Path, mode: &str) -> Result<(), String> {
    let pidfile = data.join("postmaster.pid");
    if mode == "immediate" {
        let pid: Option<u32> =
            std::fs::read_to_string(&pidfile).ok().and_then(|t| t.lines().next()?.trim().parse().ok());
        let Some(pid) = pid else {
            return Ok(()); // not running
        };
        let signalled = Command::new("kill")
            .args(["-QUIT", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if signalled {
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(20) {
                if !pidfile.exists() && !process_alive(pid) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    let bin = pg_bin_dir()?;
    let mut cmd = server_command(&bin.join("pg_ctl"));
    cmd.arg("-D").arg(data).args(["-m", mode, "-w", "-t", "60", "-s", "stop"]);
    if let Some(parent) = data.parent() {
        cmd.current_dir(parent);
    }
    run(&mut cmd, "pg_ctl stop", None, &[]).map(|_| ())
}

/// Whether `pid` is a live (not zombie) process.
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // "pid (comm) S ...": the state follows the last ')'.
            let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

fn free_port() -> Result<u16, String> {
    static USED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let used = USED.get_or_init(|| Mutex::new(HashSet::new()));
    for _ in 0..50 {
        let listener = TcpListener::bind((LOCAL_HOST, 0)).map_err(|e| format!("cannot bind {LOCAL_HOST}:0: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        drop(listener);
        if used.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return Ok(port);
        }
    }
    Err("no free TCP port found".to_string())
}

// ------------------------------------------------------------------------------------------ external

static EXTERNAL_LOCK: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

struct ExternalGuard;

impl ExternalGuard {
    fn acquire() -> ExternalGuard {
        let (lock, cv) = &EXTERNAL_LOCK;
        let mut busy = lock.lock().unwrap_or_else(|e| e.into_inner());
        while *busy {
            busy = cv.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        *busy = true;
        ExternalGuard
    }
}

impl Drop for ExternalGuard {
    fn drop(&mut self) {
        let (lock, cv) = &EXTERNAL_LOCK;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = false;
        cv.notify_one();
    }
}

struct UrlParts {
    user: String,
    password: String,
    host: String,
    port: u16,
    db: String,
    query: String,
}

/// Parses `postgres[ql]://user:password@host[:port][/db][?query]`. Errors never echo the URL.
fn parse_db_url(url: &str) -> Result<UrlParts, String> {
    let bad =
        |why: &str| format!("PMOVES_TEST_DATABASE_URL is not a postgresql://user:password@host:port/db URL ({why})");
    let rest =
        url.strip_prefix("postgresql://").or_else(|| url.strip_prefix("postgres://")).ok_or_else(|| bad("scheme"))?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (userinfo, hostpart) = rest.rsplit_once('@').ok_or_else(|| bad("no user@host"))?;
    let (hostport, db) = hostpart.split_once('/').unwrap_or((hostpart, ""));
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h.split_once(']').ok_or_else(|| bad("IPv6 host"))?;
        (h.to_string(), p.strip_prefix(':').unwrap_or(""))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (hostport.to_string(), ""),
        }
    };
    let port = if port.is_empty() { 5432 } else { port.parse().map_err(|_| bad("port"))? };
    let user = pct_decode(user).ok_or_else(|| bad("user encoding"))?;
    if user.is_empty() || host.is_empty() {
        return Err(bad("user and host are required"));
    }
    Ok(UrlParts {
        user,
        password: pct_decode(password).ok_or_else(|| bad("password encoding"))?,
        host,
        port,
        db: if db.is_empty() { "postgres".to_string() } else { pct_decode(db).ok_or_else(|| bad("db"))? },
        query: query.to_string(),
    })
}

fn start_external(opts: &ClusterOptions) -> Result<Cluster, String> {
    let url =
        std::env::var("PMOVES_TEST_DATABASE_URL").map_err(|_| "PMOVES_TEST_DATABASE_URL is not UTF-8".to_string())?;
    let parts = parse_db_url(&url)?;
    let defaults = ClusterOptions::default();
    let mut unsupported = Vec::new();
    if opts.password_encryption != defaults.password_encryption {
        unsupported.push("md5");
    }
    if opts.layout != defaults.layout {
        unsupported.push("another layout");
    }
    if !opts.drop_roles.is_empty() {
        unsupported.push("dropped roles");
    }
    if opts.main_db != defaults.main_db && opts.main_db != parts.db {
        unsupported.push("another main database");
    }
    if opts.log_statement_all {
        unsupported.push("log_statement=all / server log");
    }
    if !unsupported.is_empty() {
        return Err(format!(
            "this test needs a local cluster ({}) but PMOVES_TEST_DATABASE_URL is set; guard it with `if external_mode() {{ return; }}`",
            unsupported.join(", ")
        ));
    }
    let guard = ExternalGuard::acquire();
    let secrets = secrets_for(&[&parts.password]);
    let target = PsqlTarget { host: parts.host.clone(), port: parts.port, db: parts.db.clone() };
    let as_super = |sql: &str, what: &str, extra: &[&str]| {
        run_psql(&target, &parts.user, &parts.password, extra, Some(QUIET_LOG), sql, &secrets, what)
    };
    let fields = ["-F", "\u{1f}", "-R", "\u{1e}"];
    let probe = as_super(
        "SELECT rolsuper, current_setting('password_encryption'), \
         EXISTS (SELECT FROM pg_database WHERE datname = '_supabase'), \
         EXISTS (SELECT FROM pg_namespace WHERE nspname IN ('_analytics', '_supavisor')) \
         FROM pg_roles WHERE rolname = current_user",
        "probing PMOVES_TEST_DATABASE_URL",
        &fields,
    )?;
    let probe: Vec<&str> = probe.trim_end().split('\u{1f}').collect();
    if probe.first() != Some(&"t") {
        return Err(format!("PMOVES_TEST_DATABASE_URL: {} is not a superuser", parts.user));
    }
    let password_encryption =
        if probe.get(1) == Some(&"md5") { PasswordEncryption::Md5 } else { PasswordEncryption::ScramSha256 };
    let layout = if probe.get(2) == Some(&"t") {
        Layout::Current
    } else if probe.get(3) == Some(&"t") {
        Layout::Legacy
    } else {
        Layout::Bare
    };
    let work_db = work_db_for(layout, &parts.db);
    let harness_password = random_hex(16);
    let secrets = secrets_for(&[&parts.password, &harness_password]);
    let v = verifier(password_encryption, HARNESS_USER, &harness_password);
    run_psql(
        &target,
        &parts.user,
        &parts.password,
        &[],
        Some(QUIET_LOG),
        &format!(
            "DROP ROLE IF EXISTS {h};\nCREATE ROLE {h} WITH SUPERUSER LOGIN PASSWORD {v};\n",
            h = sql_ident(HARNESS_USER),
            v = sql_literal(&v)
        ),
        &secrets,
        "creating the harness role",
    )?;
    let mut cluster = Cluster {
        host: parts.host.clone(),
        port: parts.port,
        superuser: parts.user.clone(),
        password: parts.password.clone(),
        main_db: parts.db.clone(),
        work_db: work_db.clone(),
        layout,
        password_encryption,
        harness_password,
        url_query: parts.query.clone(),
        kind: Kind::External(External { _guard: guard, roles: Vec::new(), analytics: Vec::new() }),
    };
    let mut roles: Vec<&str> = ROTATED_ROLES.to_vec();
    roles.push(READ_ONLY_USER);
    let list = roles.iter().map(|r| sql_literal(r)).collect::<Vec<_>>().join(", ");
    let snapshot: Vec<(String, Option<String>)> = cluster
        .psql_rows(&parts.db, &format!("SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN ({list})"))
        .into_iter()
        .filter_map(|r| match r.as_slice() {
            [Some(name), pw] => Some((name.clone(), pw.clone())),
            _ => None,
        })
        .collect();
    let analytics: Vec<(String, String)> = if layout == Layout::Bare {
        Vec::new()
    } else {
        cluster
            .psql_rows(
                &work_db,
                "SELECT id::text, config::text FROM _analytics.source_backends \
                 WHERE to_regclass('_analytics.source_backends') IS NOT NULL AND config IS NOT NULL",
            )
            .into_iter()
            .filter_map(|r| match r.as_slice() {
                [Some(id), Some(config)] => Some((id.clone(), config.clone())),
                _ => None,
            })
            .collect()
    };
    if let Kind::External(x) = &mut cluster.kind {
        x.roles = snapshot;
        x.analytics = analytics;
    }
    Ok(cluster)
}

fn external_restore_script(
    roles: &[(String, Option<String>)],
    analytics: &[(String, String)],
    work_db: &str,
    layout: Layout,
) -> String {
    let mut sql = String::new();
    for (role, pw) in roles {
        let value = match pw {
            Some(v) => sql_literal(v),
            None => "NULL".to_string(),
        };
        sql.push_str(&format!("ALTER ROLE {} PASSWORD {value};\n", sql_ident(role)));
    }
    if !analytics.is_empty() && layout != Layout::Bare {
        sql.push_str(&format!("\\connect {work_db}\n"));
        for (id, config) in analytics {
            sql.push_str(&format!(
                "UPDATE _analytics.source_backends SET config = {}::jsonb WHERE id = {};\n",
                sql_literal(config),
                id.parse::<i64>().unwrap_or(-1)
            ));
        }
    }
    sql
}

// ------------------------------------------------------------------------------------------ processes

/// `PGOPTIONS` for sessions whose statements carry secrets: nothing of them reaches the log.
const QUIET_LOG: &str = "-c log_statement=none -c log_min_error_statement=panic -c log_min_duration_statement=-1";

struct PsqlTarget {
    host: String,
    port: u16,
    db: String,
}

#[allow(clippy::too_many_arguments)]
fn run_psql(
    target: &PsqlTarget,
    user: &str,
    password: &str,
    extra_args: &[&str],
    pgoptions: Option<&str>,
    script: &str,
    secrets: &[String],
    what: &str,
) -> Result<String, String> {
    let psql = psql_path();
    let mut cmd = Command::new(&psql);
    clear_pg_env(&mut cmd);
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(&target.host)
        .arg("-p")
        .arg(target.port.to_string())
        .arg("-U")
        .arg(user)
        .arg("-d")
        .arg(&target.db)
        .args(extra_args)
        .args(["-f", "-"])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGAPPNAME", "pmoves-test-harness");
    if target.host == LOCAL_HOST {
        cmd.env("PGSSLMODE", "disable");
    }
    if let Some(o) = pgoptions {
        cmd.env("PGOPTIONS", o);
    }
    let out = run(&mut cmd, what, Some(script.as_bytes()), secrets)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Runs `cmd`, feeding `stdin`; stdout on success, else a message with the command line and
/// stderr, every secret redacted.
fn run(cmd: &mut Command, what: &str, stdin: Option<&[u8]>, secrets: &[String]) -> Result<Vec<u8>, String> {
    let line = redact(&command_line(cmd), secrets);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("{what}: cannot run `{line}`: {e}"))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        // Write from a thread so a large script cannot deadlock against a full stdout pipe.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let out = child.wait_with_output().map_err(|e| format!("{what}: waiting for `{line}`: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{what} failed ({}): `{line}`\n--- stderr ---\n{}{}",
            out.status,
            redact(&String::from_utf8_lossy(&out.stderr), secrets),
            if out.stdout.is_empty() {
                String::new()
            } else {
                format!("--- stdout ---\n{}", redact(&String::from_utf8_lossy(&out.stdout), secrets))
            }
        ))
    }
}

fn command_line(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn clear_pg_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PG") {
            cmd.env_remove(k);
        }
    }
}

/// A command for a server binary, run as the PostgreSQL OS user when we are root.
fn server_command(program: &Path) -> Command {
    let mut cmd = match pg_os_user() {
        None => Command::new(program),
        Some(user) => {
            let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
                .into_iter()
                .map(Path::new)
                .find(|p| p.exists());
            match runuser {
                Some(r) => {
                    let mut c = Command::new(r);
                    c.args(["-u", &user.name, "--"]).arg(program);
                    c
                }
                None => {
                    // su -s /bin/sh USER -c 'exec "$0" "$@"' PROGRAM ARGS...
                    let mut c = Command::new("su");
                    c.args(["-s", "/bin/sh", &user.name, "-c", "exec \"$0\" \"$@\""]).arg(program);
                    c
                }
            }
        }
    };
    clear_pg_env(&mut cmd);
    cmd.env("LC_ALL", "C");
    cmd
}

#[derive(Clone)]
struct OsUser {
    name: String,
    uid: u32,
    gid: u32,
}

/// The OS user that owns and runs the servers when the tests run as root; `None` otherwise.
fn pg_os_user() -> Option<OsUser> {
    static U: OnceLock<Option<OsUser>> = OnceLock::new();
    U.get_or_init(|| {
        if effective_uid() != Some(0) {
            return None;
        }
        let name = std::env::var("PMOVES_TEST_PG_OS_USER").unwrap_or_else(|_| "postgres".to_string());
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let found = passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| (f[2].parse().ok(), f[3].parse().ok()))
        });
        match found {
            Some((Some(uid), Some(gid))) => Some(OsUser { name, uid, gid }),
            _ => panic!(
                "pg harness: running as root, but the OS user {name:?} (needed to run initdb and the server) does not exist: run scripts/ensure-postgres.sh or set PMOVES_TEST_PG_OS_USER"
            ),
        }
    })
    .clone()
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn chown_to_pg_user(path: &Path) -> Result<(), String> {
    if let Some(u) = pg_os_user() {
        std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid))
            .map_err(|e| format!("cannot chown {} to {}: {e}", path.display(), u.name))?;
    }
    Ok(())
}

/// The PostgreSQL server binary directory (see the module docs).
pub fn pg_bin_dir() -> Result<PathBuf, String> {
    static B: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    B.get_or_init(|| {
        let has_initdb = |d: &Path| d.join("initdb").is_file();
        if let Some(d) = std::env::var_os("PMOVES_TEST_PG_BIN") {
            let d = PathBuf::from(d);
            return if has_initdb(&d) {
                Ok(d)
            } else {
                Err(format!("PMOVES_TEST_PG_BIN={} has no initdb", d.display()))
            };
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                has_initdb(&bin).then_some((v, bin))
            })
            .collect();
        versions.sort();
        if let Some((_, d)) = versions.pop() {
            return Ok(d);
        }
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
            let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if out.status.success() && has_initdb(&d) {
                return Ok(d);
            }
        }
        if let Some(d) = find_on_path("initdb").and_then(|p| p.parent().map(Path::to_path_buf)) {
            return Ok(d);
        }
        Err("no PostgreSQL server binaries (initdb) found: run scripts/ensure-postgres.sh, or set PMOVES_TEST_PG_BIN"
            .to_string())
    })
    .clone()
}

fn psql_path() -> PathBuf {
    if let Some(p) = find_on_path("psql") {
        return p;
    }
    match pg_bin_dir() {
        Ok(d) if d.join("psql").is_file() => d.join("psql"),
        _ => PathBuf::from("psql"),
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

// ------------------------------------------------------------------------------------------ directories

/// Where cluster directories go: `PMOVES_TEST_PG_TMPDIR`, else `/dev/shm` when it is a RAM disk
/// with at least 1 GiB free (copying a data directory there takes ~30 ms instead of ~300 ms on
/// ext4), else the system temporary directory.
fn temp_root() -> PathBuf {
    static R: OnceLock<PathBuf> = OnceLock::new();
    R.get_or_init(|| {
        if let Some(d) = std::env::var_os("PMOVES_TEST_PG_TMPDIR") {
            return PathBuf::from(d);
        }
        let shm = Path::new("/dev/shm");
        let free_kib = Command::new("df")
            .args(["-Pk", "/dev/shm"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.lines().nth(1)?.split_whitespace().nth(3)?.parse::<u64>().ok()
            });
        if shm.is_dir() && free_kib.is_some_and(|k| k >= 1024 * 1024) {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    })
    .clone()
}

/// A new `pmoves-pg-<kind><random>` directory owned by the PostgreSQL OS user, marked with our pid.
fn make_dir(kind: &str) -> Result<PathBuf, String> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{DIR_PREFIX}{kind}"))
        .tempdir_in(temp_root())
        .map_err(|e| format!("cannot create a directory in {}: {e}", temp_root().display()))?
        .keep();
    std::fs::write(dir.join("owner.pid"), std::process::id().to_string())
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    chown_to_pg_user(&dir)?;
    Ok(dir)
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn append_file(path: &Path, text: &str) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    f.write_all(text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn cleanup_list() -> &'static Mutex<Vec<PathBuf>> {
    static L: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    L.get_or_init(|| Mutex::new(Vec::new()))
}

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::os::raw::c_int;
}

extern "C" fn remove_templates_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        if let Ok(list) = cleanup_list().try_lock() {
            for p in list.iter() {
                let _ = std::fs::remove_dir_all(p);
            }
        }
    });
}

/// Template directories are removed when the test process exits.
fn register_cleanup(dir: &Path) {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        // SAFETY: registers a plain `extern "C"` function with the C library's atexit.
        unsafe {
            atexit(remove_templates_at_exit);
        }
    });
    cleanup_list().lock().unwrap_or_else(|e| e.into_inner()).push(dir.to_path_buf());
}

/// Stops and removes what killed test processes left behind (once per process).
fn sweep_orphans() {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| {
        if !Path::new("/proc/self").exists() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(temp_root()) else { return };
        for e in entries.flatten() {
            let name = e.file_name();
            if !name.to_string_lossy().starts_with(DIR_PREFIX) {
                continue;
            }
            let dir = e.path();
            let age = |p: &Path| {
                std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .unwrap_or_default()
            };
            let alive = match std::fs::read_to_string(dir.join("owner.pid")) {
                Ok(pid) => pid.trim().parse().is_ok_and(process_alive),
                Err(_) => age(&dir) < Duration::from_secs(3600),
            };
            if alive {
                continue;
            }
            let data = dir.join("data");
            if data.join("postmaster.pid").exists() {
                let _ = pg_ctl_stop(&data, "immediate");
            }
            let kept = dir.join("KEPT");
            if kept.exists() && age(&kept) < Duration::from_secs(24 * 3600) {
                continue;
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    });
}

// ------------------------------------------------------------------------------------------ small helpers

/// 2*n lowercase hex chars from the OS CSPRNG.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("pg harness: cannot read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The verifier PostgreSQL stores for `password` (as `psql \password` computes it).
pub fn verifier(enc: PasswordEncryption, role: &str, password: &str) -> String {
    match enc {
        PasswordEncryption::ScramSha256 => postgres_protocol::password::scram_sha_256(password.as_bytes()),
        PasswordEncryption::Md5 => postgres_protocol::password::md5(password.as_bytes(), role),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn pct_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes every byte (`%XX`, upper case): the shape of analytics row 2's password.
pub fn pct_encode_all(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

pub fn pct_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

pub fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub fn sql_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The secrets to redact: each password and its percent-encoded forms.
fn secrets_for(passwords: &[&str]) -> Vec<String> {
    let mut v = Vec::new();
    for p in passwords.iter().filter(|p| !p.is_empty()) {
        v.push(p.to_string());
        v.push(pct_encode(p));
        v.push(pct_encode_all(p));
    }
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    v.dedup();
    v
}

pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s.as_str(), "<redacted>");
    }
    out
}

fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// True when something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&(std::net::Ipv4Addr::LOCALHOST, port).into(), Duration::from_millis(500)).is_ok()
}

fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Cluster>();
    is::<LockHolder>();
}
