//! A local cluster: a copy of a template data directory with its own server, port and
//! passwords; `stop`/`restart` for tests of a server that goes away, and removal on Drop.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use super::cluster::{Cluster, Kind};
use super::command::{run, QUIET_LOG};
use super::dirs::{append_file, make_dir};
use super::options::{work_db_for, ClusterOptions, Layout, PasswordEncryption};
use super::queries::simple_query_blocking;
use super::secrets::{random_hex, redact, secrets_for};
use super::server::{pg_ctl_start, pg_ctl_stop, start_on_free_port};
use super::sql::{sql_ident, sql_literal, verifier};
use super::template::Template;
use super::url::pct_encode_all;
use super::{env_flag, HARNESS_USER, LOCAL_HOST, LOGIN_ROLES, SUPERUSER};

/// The cluster directory (`root`), its data directory and server log.
pub(super) struct Local {
    pub(super) root: PathBuf,
    pub(super) data: PathBuf,
    pub(super) log: PathBuf,
    pub(super) running: bool,
}

impl Local {
    /// Stops the server (immediate shutdown) and removes the cluster directory, or keeps it
    /// when the test is panicking or `PMOVES_TEST_PG_KEEP` is set.
    pub(super) fn shut_down(&mut self, panicking: bool, secrets: &[String]) {
        if self.running {
            self.running = false;
            if let Err(e) = pg_ctl_stop(&self.data, "immediate") {
                eprintln!("pg harness: {}", redact(&e, secrets));
            }
        }
        let keep = panicking || env_flag("PMOVES_TEST_PG_KEEP");
        if keep {
            let _ = std::fs::write(self.root.join("KEPT"), b"");
            eprintln!(
                "pg harness: kept the cluster directory {} (server log {}); the next test run removes it after 24 h",
                self.root.display(),
                self.log.display()
            );
        } else if let Err(e) = std::fs::remove_dir_all(&self.root) {
            eprintln!("pg harness: cannot remove {}: {e}", self.root.display());
        }
    }
}

/// Copies `template`, starts it on a free port and gives the LOGIN roles a fresh password.
pub(super) fn start_local(opts: &ClusterOptions, template: &Template) -> Result<Cluster, String> {
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
        &format!(
            "\n# --- pmoves-secrets test harness (cluster) ---\nlog_statement = '{log_statement}'\n{}",
            server_configuration(opts)
        ),
    )?;
    cluster.port = start_on_free_port(&data, &log, &root)?;
    if let Kind::Local(l) = &mut cluster.kind {
        l.running = true;
    }
    let t_start = t0.elapsed();

    // A fresh password per cluster, its verifiers made here (one SCRAM salt for all roles) and
    // written to pg_authid directly, as the superuser may: ALTER ROLE ... PASSWORD runs the
    // verifier's 4096 SCRAM rounds on the server (to refuse an empty password) even for a
    // verifier given ready-made, 8 times per cluster. The session runs with log_statement = none,
    // so nothing secret reaches the log.
    let dropped: HashSet<&str> = opts.drop_roles.iter().map(String::as_str).collect();
    let roles: Vec<&str> = LOGIN_ROLES.iter().copied().filter(|r| !dropped.contains(r)).collect();
    let scram = std::cell::LazyCell::new(|| verifier(PasswordEncryption::ScramSha256, "", &cluster.password));
    let stored_for = |role: &str| match opts.password_encryption {
        PasswordEncryption::ScramSha256 => (*scram).clone(),
        PasswordEncryption::Md5 => verifier(PasswordEncryption::Md5, role, &cluster.password),
    };
    let cases: Vec<String> = roles
        .iter()
        .map(|role| format!("WHEN {} THEN {}", sql_literal(role), sql_literal(&stored_for(role))))
        .collect();
    let names: Vec<String> = roles.iter().map(|role| sql_literal(role)).collect();
    let mut sql = format!(
        "UPDATE pg_catalog.pg_authid SET rolpassword = CASE rolname {} END WHERE rolname IN ({});\n",
        cases.join(" "),
        names.join(", ")
    );
    sql.push_str(&create_extensions(opts));
    let mut work_sql = String::new();
    if opts.layout != Layout::Bare {
        if cluster.work_db != opts.main_db {
            work_sql.push_str(&create_extensions(opts));
        }
        work_sql.push_str(&format!(
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
    // On connections of the harness's own (no psql process per cluster), main database first.
    for (db, sql) in [(&opts.main_db, &sql), (&cluster.work_db, &work_sql)] {
        if sql.is_empty() {
            continue;
        }
        let mut config = cluster.pg_config(HARNESS_USER, &template.harness_password, db);
        config.options(QUIET_LOG);
        simple_query_blocking(&config, sql)
            .map_err(|e| redact(&format!("setting the cluster's passwords in {db}: {e}"), &secrets))?;
    }
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

/// The `postgresql.conf` lines of `ClusterOptions::preload` and `ClusterOptions::setting`.
fn server_configuration(opts: &ClusterOptions) -> String {
    let mut conf = String::new();
    if !opts.preload_libraries.is_empty() {
        conf.push_str(&format!("shared_preload_libraries = {}\n", sql_literal(&opts.preload_libraries.join(","))));
    }
    for (name, value) in &opts.server_settings {
        conf.push_str(&format!("{name} = {}\n", sql_literal(value)));
    }
    conf
}

/// `CREATE EXTENSION` lines for the current database of a psql script.
fn create_extensions(opts: &ClusterOptions) -> String {
    opts.extensions.iter().map(|e| format!("CREATE EXTENSION IF NOT EXISTS {};\n", sql_ident(e))).collect()
}

impl Cluster {
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
}
