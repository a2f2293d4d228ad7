//! External mode: the tests run against the server of `PMOVES_TEST_DATABASE_URL`.
//!
//! Such a server is shared and not thrown away, so one test at a time holds it
//! (`ExternalGuard`), and what a test may change (role verifiers, `_analytics.source_backends`)
//! is snapshotted at start and written back on Drop.

use std::sync::{Condvar, Mutex};

use super::cluster::{Cluster, Kind};
use super::command::{run_psql, PsqlTarget, QUIET_LOG};
use super::options::{work_db_for, ClusterOptions, Layout, PasswordEncryption};
use super::secrets::{random_hex, secrets_for};
use super::sql::{sql_ident, sql_literal, verifier};
use super::url::pct_decode;
use super::{HARNESS_USER, READ_ONLY_USER, ROTATED_ROLES};

/// True when `PMOVES_TEST_DATABASE_URL` points the harness at an external server.
pub fn external_mode() -> bool {
    std::env::var_os("PMOVES_TEST_DATABASE_URL").is_some_and(|v| !v.is_empty())
}

/// Held (`true`) while a `Cluster` uses the external server: tests in one process take turns.
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

/// What a test may change on the shared server, as found at start.
pub(super) struct External {
    _guard: ExternalGuard,
    roles: Vec<(String, Option<String>)>,
    analytics: Vec<(String, String)>,
}

impl External {
    /// Writes the snapshot back, then drops the harness role (as the superuser, whose original
    /// password the snapshot has just restored).
    pub(super) fn restore(&self, cluster: &Cluster, secrets: &[String]) {
        let target = cluster.psql_target(&cluster.main_db);
        let restore = external_restore_script(&self.roles, &self.analytics, &cluster.work_db, cluster.layout);
        if let Err(e) = run_psql(
            &target,
            HARNESS_USER,
            &cluster.harness_password,
            &[],
            Some(QUIET_LOG),
            &restore,
            secrets,
            "restoring the external cluster's passwords",
        ) {
            eprintln!("pg harness: {e}");
        }
        // The original superuser password is back: drop the harness role with it.
        let drop_sql = format!("DROP ROLE IF EXISTS {}", sql_ident(HARNESS_USER));
        if let Err(e) = run_psql(
            &target,
            &cluster.superuser,
            &cluster.password,
            &[],
            Some(QUIET_LOG),
            &drop_sql,
            secrets,
            "dropping the harness role",
        ) {
            eprintln!("pg harness: {e}");
        }
    }
}

/// `PMOVES_TEST_DATABASE_URL`, decoded.
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

/// What in `opts` only a local cluster can give (md5, another layout, ...), given the external
/// server's database `external_db`; empty when the options suit the shared server.
fn local_only_options(opts: &ClusterOptions, external_db: &str) -> Vec<&'static str> {
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
    if opts.main_db != defaults.main_db && opts.main_db != external_db {
        unsupported.push("another main database");
    }
    if opts.log_statement_all {
        unsupported.push("log_statement=all / server log");
    }
    unsupported
}

/// In external mode, why `opts` cannot run on the shared server (`None` when it can, and
/// always `None` outside external mode). Lets a test report itself skipped instead of
/// panicking in `Cluster::start` or passing without running.
pub fn needs_local_cluster(opts: &ClusterOptions) -> Option<String> {
    if !external_mode() {
        return None;
    }
    let db = std::env::var("PMOVES_TEST_DATABASE_URL").ok().and_then(|url| parse_db_url(&url).ok()).map(|p| p.db)?;
    let unsupported = local_only_options(opts, &db);
    (!unsupported.is_empty()).then(|| unsupported.join(", "))
}

pub(super) fn start_external(opts: &ClusterOptions) -> Result<Cluster, String> {
    let url =
        std::env::var("PMOVES_TEST_DATABASE_URL").map_err(|_| "PMOVES_TEST_DATABASE_URL is not UTF-8".to_string())?;
    let parts = parse_db_url(&url)?;
    let unsupported = local_only_options(opts, &parts.db);
    if !unsupported.is_empty() {
        return Err(format!(
            "this test needs a local cluster ({}) but PMOVES_TEST_DATABASE_URL is set; check `needs_local_cluster` first and report the test skipped",
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

/// SQL that puts back the role verifiers and analytics configs of the snapshot.
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
