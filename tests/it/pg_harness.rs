//! Tests of the throwaway-cluster harness (`common::pg`) and of the Supabase fixture it loads.

use crate::common::pg::*;
use crate::common::skip_on_external_database;
use std::time::Instant;

const ROLE_ATTRS_SQL: &str = "SELECT rolname, rolsuper::text, rolinherit::text, rolcreaterole::text, \
     rolcreatedb::text, rolcanlogin::text, rolreplication::text, rolbypassrls::text \
     FROM pg_roles WHERE rolname = ";

/// (role, super, inherit, createrole, createdb, login, replication, bypassrls) as upstream has them.
const EXPECTED_ROLES: [(&str, [bool; 7]); 15] = [
    ("supabase_admin", [true, true, true, true, true, true, true]),
    ("postgres", [false, true, true, true, true, true, true]),
    ("anon", [false, true, false, false, false, false, false]),
    ("authenticated", [false, true, false, false, false, false, false]),
    ("service_role", [false, true, false, false, false, false, true]),
    ("authenticator", [false, false, false, false, true, false, false]),
    ("dashboard_user", [false, true, true, true, false, true, false]),
    ("pgbouncer", [false, true, false, false, true, false, false]),
    ("supabase_auth_admin", [false, false, true, false, true, false, false]),
    ("supabase_storage_admin", [false, false, true, false, true, false, false]),
    ("supabase_functions_admin", [false, false, true, false, true, false, false]),
    ("supabase_replication_admin", [false, true, false, false, true, true, false]),
    ("supabase_read_only_user", [false, true, false, false, true, false, true]),
    ("app_user", [false, true, false, false, true, false, false]),
    ("pmoves_test_harness", [true, true, false, false, true, false, false]),
];

fn cell(rows: &[Vec<Option<String>>], r: usize, c: usize) -> String {
    rows.get(r)
        .and_then(|row| row.get(c))
        .cloned()
        .flatten()
        .unwrap_or_else(|| panic!("no value at row {r} column {c} in {rows:?}"))
}

#[tokio::test]
async fn cluster_starts_with_supabase_admin_as_bootstrap_superuser() {
    let t = Instant::now();
    let pg = Cluster::start(ClusterOptions::default());
    eprintln!("Cluster::start took {} ms", t.elapsed().as_millis());
    assert!(pg.can_login(pg.superuser(), pg.password()).await);
    let url = pg.db_url("supabase_admin", "p@ss/word", "postgres");
    assert_eq!(url, format!("postgresql://supabase_admin:p%40ss%2Fword@{}:{}/postgres", pg.host(), pg.port()));
    if external_mode() {
        return;
    }
    assert_eq!(pg.superuser(), SUPERUSER);
    assert_eq!(pg.password().len(), 32);
    assert!(pg.password().bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(pg.host(), "127.0.0.1");
    assert_eq!(pg.main_db(), "postgres");
    assert_eq!(pg.work_db(), "_supabase");
    let rows = pg
        .query_strings(
            "SELECT (SELECT rolname FROM pg_authid WHERE oid = 10), current_setting('password_encryption'), \
             current_setting('listen_addresses'), current_setting('log_statement'), \
             (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'postgres')",
        )
        .await;
    assert_eq!(cell(&rows, 0, 0), "supabase_admin");
    assert_eq!(cell(&rows, 0, 1), "scram-sha-256");
    assert_eq!(cell(&rows, 0, 2), "127.0.0.1");
    assert_eq!(cell(&rows, 0, 3), "none");
    assert_eq!(cell(&rows, 0, 4), "postgres", "upstream migrate.sh makes postgres own database postgres");
    let hba = pg.psql_in(
        pg.main_db(),
        "SELECT string_agg(type || ' ' || array_to_string(user_name, ',') || ' ' || coalesce(address, '-') \
         || ' ' || auth_method, ', ' ORDER BY line_number) FROM pg_hba_file_rules",
    );
    assert_eq!(
        hba,
        "local pmoves_test_harness - md5, host pmoves_test_harness 127.0.0.1 md5, \
         local all - scram-sha-256, host all 127.0.0.1 scram-sha-256",
        "only the harness's own role may log in with md5"
    );
}

#[tokio::test]
async fn fixture_roles_have_the_upstream_attributes() {
    if skip_on_external_database("the fixture's roles and their attributes") {
        return;
    }
    let pg = Cluster::start(ClusterOptions::default());
    for (role, expected) in EXPECTED_ROLES {
        let rows = pg.query_strings(&format!("{ROLE_ATTRS_SQL}'{role}'")).await;
        assert_eq!(rows.len(), 1, "role {role} missing");
        let got: Vec<bool> = (1..8).map(|c| cell(&rows, 0, c) == "true").collect();
        assert_eq!(
            got, expected,
            "attributes of {role}: super inherit createrole createdb login replication bypassrls"
        );
    }
    let members = pg.psql(
        "SELECT string_agg(r.rolname || '>' || m.rolname, ' ' ORDER BY r.rolname, m.rolname) \
             FROM pg_auth_members am JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member \
             WHERE m.rolname IN ('authenticator', 'supabase_read_only_user')",
    );
    assert_eq!(
        members,
        "anon>authenticator authenticated>authenticator pg_read_all_data>supabase_read_only_user service_role>authenticator"
    );
    for role in LOGIN_ROLES {
        let v = pg.stored_verifier(role).unwrap_or_else(|| panic!("{role} has no password"));
        assert!(v.starts_with("SCRAM-SHA-256$4096:"), "{role}: {}", &v[..14]);
    }
    for role in NOLOGIN_ROLES {
        assert_eq!(pg.stored_verifier(role), None, "{role} should have no password");
    }
    assert_eq!(pg.stored_verifier(READ_ONLY_USER), None);
    assert!(pg.stored_verifier(APP_USER).is_some());
    assert_eq!(pg.stored_verifier("no_such_role"), None);
    assert!(!pg.role_exists("no_such_role"));
}

#[tokio::test]
async fn login_roles_log_in_over_tcp_with_their_passwords() {
    let pg = Cluster::start(ClusterOptions::default());
    for role in LOGIN_ROLES {
        assert!(pg.can_login(role, pg.password()).await, "{role} should log in");
        assert!(!pg.can_login(role, "wrong-password").await, "{role} accepted a wrong password");
    }
    if external_mode() {
        return;
    }
    assert!(pg.can_login(APP_USER, APP_USER_PASSWORD).await);
    assert!(!pg.can_login(APP_USER, pg.password()).await);
    assert!(!pg.can_login(READ_ONLY_USER, pg.password()).await, "read-only user has no password");
    assert!(!pg.can_login(READ_ONLY_USER, "").await);
    for role in NOLOGIN_ROLES {
        assert!(!pg.can_login(role, pg.password()).await, "{role} is NOLOGIN");
    }
    let client = pg.connect("postgres", pg.password(), pg.main_db()).await.expect("connect as postgres");
    let row = client.query_one("SELECT current_user::text", &[]).await.expect("query");
    assert_eq!(row.get::<_, String>(0), "postgres");
}

#[tokio::test]
async fn supabase_database_holds_analytics_rows_and_populated_supavisor() {
    if skip_on_external_database("the fixture's analytics rows and _supavisor tables") {
        return;
    }
    let pg = Cluster::start(ClusterOptions::default());
    let rows = pg
        .query_strings(
            "SELECT id::text, type, config->>'url', config::text FROM _analytics.source_backends ORDER BY id",
        )
        .await;
    assert_eq!(rows.len(), 3);
    assert_eq!(cell(&rows, 0, 1), "postgres");
    assert_eq!(cell(&rows, 0, 2), format!("postgresql://supabase_admin:{}@db:5432/postgres", pg.password()));
    assert_eq!(cell(&rows, 1, 1), "postgres");
    assert_eq!(
        cell(&rows, 1, 2),
        format!(
            "postgres://supabase_admin:{}@supabase-db:5432/_supabase?sslmode=disable",
            pct_encode_all(pg.password())
        )
    );
    assert_eq!(cell(&rows, 2, 1), "bigquery");
    assert_eq!(rows[2][2], None);
    assert_eq!(cell(&rows, 2, 3), r#"{"dataset_id": "analytics", "project_id": "pmoves-logs"}"#);
    let counts = pg
        .query_strings(
            "SELECT (SELECT count(*) FROM _supavisor.tenants)::text, (SELECT count(*) FROM _supavisor.users)::text, \
             (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = '_supavisor'), \
             (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = '_analytics'), \
             (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '_supabase')",
        )
        .await;
    assert_eq!(
        counts,
        vec![vec![
            Some("1".into()),
            // The pooler's user row is encrypted under the test's own VAULT_ENC_KEY: tests write it.
            Some("0".into()),
            Some("supabase_admin".into()),
            Some("supabase_admin".into()),
            Some("supabase_admin".into())
        ]]
    );
    // The main database has neither schema on the current layout.
    let main = pg
        .query_strings_in(
            pg.main_db(),
            "SELECT count(*)::text FROM pg_namespace WHERE nspname IN ('_analytics', '_supavisor')",
        )
        .await;
    assert_eq!(cell(&main, 0, 0), "0");
}

#[tokio::test]
async fn legacy_layout_with_custom_main_db_and_a_missing_role() {
    if skip_on_external_database("another layout and main database, a dropped role") {
        return;
    }
    let pg = Cluster::start(ClusterOptions::new().main_db("pmoves").legacy().without_role("pgbouncer"));
    assert_eq!(pg.main_db(), "pmoves");
    assert_eq!(pg.work_db(), "pmoves");
    assert_eq!(pg.layout(), Layout::Legacy);
    assert!(!pg.role_exists("pgbouncer"));
    assert!(pg.role_exists("supabase_auth_admin"));
    assert_eq!(pg.psql("SELECT count(*) FROM pg_database WHERE datname = '_supabase'"), "0");
    assert_eq!(pg.psql("SELECT count(*) FROM _analytics.source_backends WHERE type = 'postgres'"), "2");
    assert_eq!(pg.psql("SELECT db_database FROM _supavisor.tenants"), "pmoves");
    assert!(pg.can_login("supabase_admin", pg.password()).await);
    assert!(!pg.can_login("pgbouncer", pg.password()).await);
    let url = pg.psql("SELECT config->>'url' FROM _analytics.source_backends WHERE id = 1");
    assert!(url.contains(pg.password()));
}

#[tokio::test]
async fn bare_layout_has_no_analytics_and_drop_role_works_at_runtime() {
    if skip_on_external_database("the bare layout, a dropped role") {
        return;
    }
    let pg = Cluster::start(ClusterOptions::new().layout(Layout::Bare));
    assert_eq!(pg.work_db(), "postgres");
    assert_eq!(pg.psql("SELECT count(*) FROM pg_namespace WHERE nspname IN ('_analytics', '_supavisor')"), "0");
    assert_eq!(pg.psql("SELECT count(*) FROM pg_database WHERE datname = '_supabase'"), "0");
    assert!(pg.role_exists("pgbouncer"));
    pg.drop_role("pgbouncer");
    assert!(!pg.role_exists("pgbouncer"));
    assert!(pg.can_login("supabase_admin", pg.password()).await);
}

#[tokio::test]
async fn two_clusters_run_concurrently_with_their_own_passwords() {
    if skip_on_external_database("two clusters at once") {
        return;
    }
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Cluster::start(ClusterOptions::default()));
        let b = s.spawn(|| Cluster::start(ClusterOptions::default()));
        (a.join().expect("cluster a"), b.join().expect("cluster b"))
    });
    assert_ne!(a.port(), b.port());
    assert_ne!(a.password(), b.password());
    assert!(a.can_login("postgres", a.password()).await);
    assert!(b.can_login("postgres", b.password()).await);
    assert!(!a.can_login("postgres", b.password()).await);
    assert!(!b.can_login("postgres", a.password()).await);
    // Roles are per cluster: changing one leaves the other alone.
    a.psql("ALTER ROLE app_user PASSWORD 'changed-in-a'");
    assert!(a.can_login(APP_USER, "changed-in-a").await);
    assert!(b.can_login(APP_USER, APP_USER_PASSWORD).await);
}

#[tokio::test]
async fn md5_variant_stores_md5_verifiers() {
    if skip_on_external_database("md5") {
        return;
    }
    let pg = Cluster::start(ClusterOptions::new().md5());
    assert_eq!(pg.password_encryption(), PasswordEncryption::Md5);
    assert_eq!(pg.psql("SHOW password_encryption"), "md5");
    for role in LOGIN_ROLES {
        assert_eq!(
            pg.stored_verifier(role).as_deref(),
            Some(verifier(PasswordEncryption::Md5, role, pg.password()).as_str()),
            "{role}"
        );
        assert!(pg.can_login(role, pg.password()).await, "{role}");
    }
    assert_eq!(
        pg.stored_verifier(APP_USER).as_deref(),
        Some(verifier(PasswordEncryption::Md5, APP_USER, APP_USER_PASSWORD).as_str())
    );
    assert!(pg.can_login(APP_USER, APP_USER_PASSWORD).await);
    assert!(!pg.can_login("postgres", "wrong").await);
    let hba = pg.psql_in(pg.main_db(), "SELECT string_agg(DISTINCT auth_method, ',') FROM pg_hba_file_rules");
    assert_eq!(hba, "md5");
}

#[tokio::test]
async fn server_log_has_statements_with_log_all_and_never_the_password() {
    if skip_on_external_database("the server log") {
        return;
    }
    let pg = Cluster::start(ClusterOptions::new().log_all());
    assert_eq!(pg.psql("SHOW log_statement"), "all");
    let client = pg.connect("postgres", pg.password(), pg.main_db()).await.expect("connect");
    client.simple_query("SELECT 'marker-4f1d' AS m").await.expect("query");
    drop(client);
    let log_path = pg.log_path().expect("local cluster has a log").to_path_buf();
    assert!(log_path.ends_with("server.log"));
    let log = pg.server_log();
    assert!(log.contains("marker-4f1d"), "statement missing from the server log");
    assert!(!log.contains(pg.password()), "the harness leaked the cluster password into the server log");
    assert!(!log.contains(&pct_encode_all(pg.password())));

    let quiet = Cluster::start(ClusterOptions::default());
    let client = quiet.connect("postgres", quiet.password(), quiet.main_db()).await.expect("connect");
    client.simple_query("SELECT 'marker-77aa' AS m").await.expect("query");
    assert!(!quiet.server_log().contains("marker-77aa"));
}

#[tokio::test]
async fn preloaded_pgaudit_and_extra_settings_reach_the_server_and_the_harness_stays_silent() {
    if crate::common::skip_on_external_database("preloaded pgaudit, server settings") {
        return;
    }
    if !server_library_available("pgaudit") {
        crate::common::skipped("the server cannot load pgaudit (run scripts/ensure-postgres.sh)");
        return;
    }
    let options = ClusterOptions::new()
        .pgaudit()
        .setting("pgaudit.log", "all")
        .setting("log_transaction_sample_rate", "1.0")
        .setting("application_name", "it's quoted");
    let pg = Cluster::start(options);
    assert_eq!(pg.psql("SHOW shared_preload_libraries"), "pgaudit");
    assert_eq!(pg.psql("SHOW pgaudit.log"), "all");
    assert_eq!(pg.psql("SHOW log_transaction_sample_rate"), "1");
    let in_both = "SELECT count(*) FROM pg_extension WHERE extname = 'pgaudit'";
    assert_eq!(pg.psql_in(pg.main_db(), in_both), "1");
    assert_eq!(pg.psql_in(pg.work_db(), in_both), "1");
    // Everything is logged, yet the harness's own password-setting session left no trace.
    assert!(pg.server_log().contains("AUDIT: SESSION"), "pgaudit logs the harness's queries");
    assert!(!pg.server_log().contains(pg.password()), "the harness leaked the cluster password");
}

#[tokio::test]
async fn the_activity_watcher_sees_other_sessions_as_a_pg_monitor_member() {
    let pg = Cluster::start(ClusterOptions::default());
    let watcher = pg.watch_activity().await;
    // The marker must stay the session's last query while the watcher polls (pg_stat_activity
    // shows an idle session's last query), so the session sends nothing after it.
    let other = pg.connect("supabase_admin", pg.password(), pg.main_db()).await.expect("connect");
    other.batch_execute("SELECT 'marker-a11ce'").await.expect("marker query");
    // Two polls: the first may have started before the marker was sent.
    watcher.await_polls(2).await;
    drop(other);
    let monitor =
        pg.psql_in(pg.main_db(), &format!("SELECT rolsuper::text FROM pg_roles WHERE rolname = '{MONITOR_USER}'"));
    assert_eq!(monitor, "false", "the watcher is not a superuser");
    let seen = watcher.stop();
    assert!(seen.any_contains("marker-a11ce"), "the watcher saw another session's query");
    assert!(!pg.role_exists(MONITOR_USER), "the watcher's role is dropped when it stops");
}

#[test]
fn bad_setting_and_library_names_are_refused() {
    if crate::common::skip_on_external_database("a local cluster's option checks") {
        return;
    }
    for options in [
        ClusterOptions::new().setting("log_statement = 'all'\nx", "1"),
        ClusterOptions::new().preload("pgaudit,auto_explain"),
        ClusterOptions::new().setting("", "1"),
    ] {
        let err = Cluster::try_start(options).expect_err("refused");
        assert!(err.contains("must be"), "{err}");
    }
}

#[tokio::test]
async fn hold_lock_keeps_a_conflicting_lock_until_dropped() {
    let pg = Cluster::start(ClusterOptions::default());
    if pg.layout() == Layout::Bare {
        return;
    }
    let holder = pg.hold_lock("").await;
    assert!(holder.backend_pid() > 0);
    let sql = "SET lock_timeout = '300ms'; BEGIN; DROP SCHEMA _supavisor CASCADE; ROLLBACK;";
    let client = pg.admin_client(pg.work_db()).await;
    let err = client.batch_execute(sql).await.expect_err("DROP SCHEMA must wait for the lock");
    assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE), "{err}");
    let _ = client.batch_execute("ROLLBACK").await;
    drop(holder);
    client.batch_execute(sql).await.expect("lock released on drop");
}

#[tokio::test]
async fn stop_restart_and_drop_stop_the_server() {
    if skip_on_external_database("stopping and restarting the server") {
        return;
    }
    let mut pg = Cluster::start(ClusterOptions::default());
    let port = pg.port();
    let dir = pg.data_dir().expect("local").parent().expect("root").to_path_buf();
    assert!(port_open(port));
    pg.stop();
    assert!(!port_open(port));
    pg.restart();
    assert!(pg.can_login("supabase_admin", pg.password()).await);
    drop(pg);
    assert!(!port_open(port), "server still listening after Drop");
    assert!(!dir.exists(), "cluster directory left behind: {}", dir.display());
}

/// Later clusters of the same options copy the template rather than running `initdb` again
/// (what makes them fast; the times are printed for the record, never asserted).
#[tokio::test]
async fn subsequent_starts_copy_the_template() {
    if skip_on_external_database("template copies") {
        return;
    }
    let first = Instant::now();
    let a = Cluster::start(ClusterOptions::default());
    let first = first.elapsed();
    let template = crate::common::pg::template_data_dir(&ClusterOptions::default()).expect("the template");
    let mut later = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let c = Cluster::start(ClusterOptions::default());
        later.push(t.elapsed());
        drop(c);
    }
    drop(a);
    eprintln!(
        "Cluster::start: first {} ms, then {:?} ms",
        first.as_millis(),
        later.iter().map(|d| d.as_millis()).collect::<Vec<_>>()
    );
    assert_eq!(
        crate::common::pg::template_data_dir(&ClusterOptions::default()).expect("the template"),
        template,
        "a later start made another template"
    );
    assert!(template.join("PG_VERSION").is_file(), "the template is a data directory");
}

/// A template directory records the pid of the test process that made it, and the sweep of a
/// later test process removes a harness directory whose owner is gone (a run killed before its
/// end) while it keeps one whose owner still runs.
#[test]
fn the_sweep_removes_a_dead_owners_template_directory() {
    if skip_on_external_database("template directories") {
        return;
    }
    let template = crate::common::pg::template_data_dir(&ClusterOptions::default()).expect("the template");
    let root = template.parent().expect("the template's directory");
    let owner = std::fs::read_to_string(root.join("owner.pid")).expect("the template records its owner");
    assert_eq!(owner.trim(), std::process::id().to_string());

    let mut gone = std::process::Command::new("true").spawn().expect("true runs");
    let gone_pid = gone.id();
    gone.wait().expect("true ends");
    let sweep_root = tempfile::tempdir().expect("a directory");
    let left = |name: &str, pid: u32| {
        let dir = sweep_root.path().join(name);
        std::fs::create_dir_all(dir.join("data")).expect("a data directory");
        std::fs::write(dir.join("data/PG_VERSION"), "15\n").expect("a file");
        std::fs::write(dir.join("owner.pid"), pid.to_string()).expect("owner.pid");
        dir
    };
    let dead = left("pmoves-pg-tpl-dead", gone_pid);
    let live = left("pmoves-pg-tpl-live", std::process::id());
    sweep(sweep_root.path());
    assert!(!dead.exists(), "the directory of a gone owner is swept");
    assert!(live.join("data/PG_VERSION").exists(), "the directory of a running owner is kept");
}
