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
//!   for `host all all 127.0.0.1/32`; nothing else. The server listens on 127.0.0.1 only. The
//!   harness's own role alone logs in with `md5` (cheap for psql; see `template.rs`).
//! - The server log is `<cluster dir>/server.log` (`log_path()`, `server_log()`);
//!   `log_statement = 'all'` with `ClusterOptions::log_all()`. Any other server setting with
//!   `ClusterOptions::setting(name, value)`, libraries in `shared_preload_libraries` with
//!   `preload(lib)`, and `pgaudit()` = preload pgaudit and `CREATE EXTENSION pgaudit` (the
//!   `postgresql-<major>-pgaudit` package, installed by `scripts/ensure-postgres.sh`). The
//!   harness's own secret-carrying sessions silence all of these at connection start.
//! - Settings: `fsync = off`, `listen_addresses = '127.0.0.1'`, `unix_socket_directories` = the
//!   cluster directory, `logging_collector = off` (the postmaster's stderr is the log file),
//!   `log_line_prefix = '%m [%p] %q%u@%d '`, `autovacuum = off`.
//! - Drop stops the server (immediate shutdown: SIGQUIT) and removes its directory; when the
//!   test is panicking (or `PMOVES_TEST_PG_KEEP=1`) the directory is kept and its path printed.
//!   Template directories are removed when the test process ends (a child process waits for the
//!   end of a pipe only this process writes); every directory records its owner's pid, so what a
//!   killed test process left (its owner pid is gone) is stopped and removed by the next one.
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
//!   layout or main database, dropped roles, `log_all`) make `start` panic: such tests ask
//!   `needs_local_cluster(&options)` first and report themselves skipped through
//!   `common::skipped` (never a silent pass). `log_path()` is `None` and `server_log()` empty.
//! - Tests then share one cluster: `start` serialises them inside one process (a global lock held
//!   by the `Cluster` value) but run them with `--test-threads=1` anyway. The harness snapshots
//!   the stored verifiers of the Supabase roles and the `_analytics.source_backends` configs
//!   at start and writes them back when the `Cluster` is dropped, so passwords a test rotated
//!   are restored. A reset `_supavisor` schema cannot be restored (supavisor re-seeds it).
//!   Only unencrypted connections (`NoTls`) are used.
//!
//! Failures panic with what failed, the command line and its stderr, with every password
//! the harness knows replaced by `<redacted>`. `PMOVES_TEST_PG_VERBOSE=1` prints timings.
//!
//! Where things are
//! - `options`: `ClusterOptions`, `Layout`, `PasswordEncryption` (what a test asks for).
//! - `cluster`: the `Cluster` handle: starting, addresses and URLs, Drop.
//! - `queries`: connections, login checks and queries as the harness superuser.
//! - `lock`: `hold_lock` and `LockHolder` (a transaction held open in another session).
//! - `activity`: `watch_activity` (polls `pg_stat_activity` as a non-superuser `pg_monitor`
//!   member for as long as a test needs).
//! - `template`: building and caching the template data directories.
//! - `local`: a cluster copied from a template: start, stop, restart, removal.
//! - `server`: `pg_ctl` start/stop, free ports, process liveness.
//! - `dirs`: where cluster directories live, removal at exit, sweeping orphans.
//! - `external`: `PMOVES_TEST_DATABASE_URL` mode: its URL, one test at a time, snapshot and restore.
//! - `binaries`: finding the PostgreSQL binaries, running them as the `postgres` OS user.
//! - `command`: running psql and other programs with redacted errors.
//! - `sql`, `url`, `secrets`: quoting SQL, percent-encoding URLs, making and redacting passwords.
//!
//! Only `super::` paths inside: `benches/rotate.rs` includes this module standalone.

#![allow(dead_code)]

mod activity;
mod binaries;
mod cluster;
mod command;
mod dirs;
mod external;
mod local;
mod lock;
mod options;
mod queries;
mod secrets;
mod server;
mod sql;
mod template;
mod url;

// The public surface, at the paths the tests use (`common::pg::X`). Like `dead_code` above:
// not every includer uses every helper (the bench uses few).
#[allow(unused_imports)]
pub use self::{
    activity::{ActivityWatcher, SeenActivity, MONITOR_USER},
    binaries::{pg_bin_dir, psql_path, server_library_available},
    cluster::Cluster,
    dirs::sweep,
    external::{external_mode, needs_local_cluster},
    lock::LockHolder,
    options::{ClusterOptions, Layout, PasswordEncryption},
    secrets::{random_hex, redact},
    server::port_open,
    sql::{sql_ident, sql_literal, verifier},
    template::template_data_dir,
    url::{pct_decode, pct_encode, pct_encode_all},
};

/// The fixture, compiled in (path relative to this file, so it works from any crate).
pub const FIXTURE_SQL: &str = include_str!("../../../../docker/init/supabase-fixture.sql");

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

/// The only address local clusters listen on.
const LOCAL_HOST: &str = "127.0.0.1";

/// True when the variable `name` is set to something other than empty or `0`.
fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Tests move clusters and lock holders across threads and tasks.
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Cluster>();
    is::<LockHolder>();
}
