//! The database side of a rotation: what it does on the server must hold against an operator's
//! ordinary day — a DDL audit trigger, connection strings that belong to someone else, a
//! transaction-mode pooler, a per-role `password_encryption`, a password changed by hand after an
//! interrupted run, an ordinary login holding a lock, roles that cannot log in anyway.

use std::time::Duration;

use serde_json::Value;

use crate::common::block_on;
use crate::common::pg::{Cluster, ClusterOptions, APP_USER, LOGIN_ROLES, ROTATED_ROLES};
use crate::common::skip_on_external_database;
use crate::common::stack::{local_cluster, stderr_of, value_in, Stack};

/// What takes the rotation lock, as the tool takes it (a lock only a superuser can take).
pub const ROTATION_LOCK_SQL: &str = "LOCK TABLE pg_catalog.pg_authid IN SHARE UPDATE EXCLUSIVE MODE";

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cluster_with(options: ClusterOptions, why: &str) -> Option<Cluster> {
    if skip_on_external_database(why) {
        return None;
    }
    Some(Cluster::start(options))
}

/// Whether the stored verifier of `role` is `password`'s (checked by logging in, after making
/// a NOLOGIN role able to for a moment).
fn holds_password(cluster: &Cluster, role: &str, password: &str) -> bool {
    let nologin = !LOGIN_ROLES.contains(&role);
    if nologin {
        cluster.psql(&format!("ALTER ROLE {role} LOGIN"));
    }
    let ok = block_on(cluster.can_login(role, password));
    if nologin {
        cluster.psql(&format!("ALTER ROLE {role} NOLOGIN"));
    }
    ok
}

// ----------------------------------------------------------------------------- a DDL audit trigger

#[test]
fn a_ddl_audit_trigger_sees_the_schema_statements_without_any_verifier() {
    let Some(cluster) = local_cluster() else { return };
    cluster.psql(
        "CREATE TABLE public.ddl_audit (query text);
         CREATE FUNCTION public.record_ddl() RETURNS event_trigger LANGUAGE plpgsql AS
           $$ BEGIN INSERT INTO public.ddl_audit VALUES (current_query()); END $$;
         CREATE EVENT TRIGGER record_ddl ON ddl_command_end EXECUTE FUNCTION public.record_ddl();",
    );
    let stack = Stack::new(&cluster);
    let out = stack.rotate().arg("--yes").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let seen: Vec<String> = block_on(cluster.query_strings("SELECT query FROM public.ddl_audit"))
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect();
    assert!(seen.iter().any(|q| q.contains("CREATE SCHEMA")), "the audit trigger fired: {seen:?}");
    for query in &seen {
        assert!(
            !query.contains("SCRAM-SHA-256$") && !query.contains("PASSWORD") && !query.contains(&stack.password()),
            "a verifier reached the DDL audit: {query}"
        );
    }
}

// --------------------------------------------------------------- someone else's connection strings

/// A log drain of its own in `_analytics.source_backends`, on another host; returns its id.
fn add_log_drain(cluster: &Cluster, url: &str) -> String {
    let rows = block_on(cluster.query_strings(&format!(
        "INSERT INTO _analytics.source_backends (source_id, type, config) \
         VALUES (1, 'postgres', jsonb_build_object('url', '{url}', 'schema', 'drain')) RETURNING id::text"
    )));
    rows[0][0].clone().unwrap()
}

fn backend_url(cluster: &Cluster, id: &str) -> String {
    block_on(cluster.query_strings(&format!("SELECT config->>'url' FROM _analytics.source_backends WHERE id = {id}")))
        [0][0]
        .clone()
        .unwrap()
}

#[test]
fn only_the_stacks_own_connection_strings_follow_and_the_others_are_named() {
    let Some(cluster) = local_cluster() else { return };
    let old = cluster.password().to_owned();
    let app_url = format!("postgresql://{APP_USER}:{old}@db:5432/postgres");
    let reporting_url = format!("postgresql://postgres:{old}@reporting.example.com:5432/reports");
    let drain_url = "postgresql://supabase_admin:drain-own-password-0123@logs.example.com:5432/drain";
    let drain_id = add_log_drain(&cluster, drain_url);
    let extra = format!(
        "APP_DATABASE_URL={app_url}\n\
         REPORTING_URL={reporting_url}\n\
         STACK_URL=postgresql://postgres:{old}@db:5432/postgres\n\
         POOLED_KV='host=supabase-db port=5432 user=supabase_admin password={old}'\n\
         LOCAL_URL=postgresql://supabase_admin:{old}@{host}:{port}/postgres\n",
        host = cluster.host(),
        port = cluster.port(),
    );
    let stack = Stack::with_password(&cluster, &old, &extra);

    let dry = stack.rotate().args(["--dry-run"]).output().unwrap();
    assert!(dry.status.success(), "{}", stderr_of(&dry));
    let plan = format!("{}{}", stdout_of(&dry), stderr_of(&dry));
    for named in ["APP_DATABASE_URL", "REPORTING_URL", &format!("id {drain_id}")] {
        assert!(plan.contains(named), "the plan names {named} as left alone:\n{plan}");
    }
    assert!(plan.contains("left alone"), "{plan}");
    assert!(!plan.contains(&old) && !plan.contains("drain-own-password"), "no password in the plan:\n{plan}");

    let out = stack.rotate().args(["--yes", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report = json_of(&out);
    let left: Vec<String> =
        report["plan"]["env_keys_left_alone"].as_array().unwrap().iter().map(|k| k["key"].to_string()).collect();
    assert!(left.iter().any(|k| k.contains("APP_DATABASE_URL")) && left.iter().any(|k| k.contains("REPORTING_URL")));

    let text = stack.text();
    let new = stack.password();
    assert_eq!(value_in(&text, "APP_DATABASE_URL").unwrap(), app_url, "app_user's own URL is untouched");
    assert_eq!(value_in(&text, "REPORTING_URL").unwrap(), reporting_url, "another server's URL is untouched");
    assert_eq!(value_in(&text, "STACK_URL").unwrap(), format!("postgresql://postgres:{new}@db:5432/postgres"));
    assert!(value_in(&text, "POOLED_KV").unwrap().contains(&format!("password={new}")));
    assert!(value_in(&text, "LOCAL_URL").unwrap().contains(&new));
    assert_eq!(backend_url(&cluster, &drain_id), drain_url, "the log drain keeps its own password");
    assert!(backend_url(&cluster, "1").contains(&new), "the stack's own analytics backend follows");
}

// ----------------------------------------------------------------------- a transaction-mode pooler

/// A pgbouncer in transaction mode in front of `cluster`, with one server connection per pool
/// (or as `pooling` says), letting `user` in with `password`. Stopped when dropped.
pub(crate) struct Bouncer {
    child: std::process::Child,
    pub(crate) port: u16,
    _dir: tempfile::TempDir,
}

impl Bouncer {
    pub(crate) fn start(cluster: &Cluster, user: &str, password: &str) -> Option<Bouncer> {
        Bouncer::start_pooling(cluster, user, password, "default_pool_size = 1")
    }

    /// With `pooling` (pgbouncer.ini lines) instead of one server connection per pool.
    pub(crate) fn start_pooling(cluster: &Cluster, user: &str, password: &str, pooling: &str) -> Option<Bouncer> {
        let binary =
            ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].into_iter().find(|p| std::path::Path::new(p).exists());
        let Some(binary) = binary else {
            crate::common::skipped("pgbouncer is not installed (scripts/ensure-postgres.sh installs it)");
            return None;
        };
        let dir = crate::common::tempdir();
        crate::common::stack::set_mode(dir.path(), 0o777);
        let port = free_port();
        let userlist = dir.path().join("userlist.txt");
        std::fs::write(&userlist, format!("\"{user}\" \"{password}\"\n")).unwrap();
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host={host} port={pg}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
                 unix_socket_dir =\nauth_type = scram-sha-256\nauth_file = {userlist}\npool_mode = transaction\n\
                 {pooling}\nmax_client_conn = 50\nserver_reset_query =\n\
                 ignore_startup_parameters = extra_float_digits,options\nlogfile = {log}\n",
                host = cluster.host(),
                pg = cluster.port(),
                userlist = userlist.display(),
                log = dir.path().join("pgbouncer.log").display(),
            ),
        )
        .unwrap();
        for file in [&ini, &userlist] {
            crate::common::stack::set_mode(file, 0o644);
        }
        let mut command = std::process::Command::new(binary);
        if nix_is_root() {
            command.args(["-u", "postgres"]);
        }
        let child =
            command.arg(&ini).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !crate::common::pg::port_open(port) {
            assert!(std::time::Instant::now() < deadline, "pgbouncer did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Bouncer { child, port, _dir: dir })
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The settings a silenced session changes, as the next client of the pooled connection sees them.
pub(crate) async fn pooled_settings(port: u16, user: &str, password: &str) -> Vec<(String, String)> {
    pooled_settings_in(port, user, password, "_supabase").await
}

/// [`pooled_settings`] of the pool of `dbname`.
pub(crate) async fn pooled_settings_in(port: u16, user: &str, password: &str, dbname: &str) -> Vec<(String, String)> {
    let mut config = tokio_postgres::Config::new();
    config.host("127.0.0.1").port(port).user(user).password(password).dbname(dbname);
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.expect("through pgbouncer");
    tokio::spawn(connection);
    let mut seen = Vec::new();
    for name in [
        "log_statement",
        "track_activities",
        "pgaudit.log",
        "log_min_error_statement",
        "lock_timeout",
        "statement_timeout",
    ] {
        let row = client.query_one(&format!("SELECT current_setting('{name}')"), &[]).await.unwrap();
        seen.push((name.to_owned(), row.get::<_, String>(0)));
    }
    seen
}

#[test]
fn a_transaction_mode_pooler_hands_the_next_client_a_session_with_its_normal_settings() {
    let options = ClusterOptions::new().pgaudit().setting("log_statement", "ddl").setting("pgaudit.log", "role");
    let Some(cluster) = cluster_with(options, "a pgbouncer in front of a cluster of its own") else { return };
    let (admin, admin_password) = ("pool_admin", "pool-admin-password-0123");
    cluster.psql(&format!("CREATE ROLE {admin} SUPERUSER LOGIN PASSWORD '{admin_password}'"));
    let Some(bouncer) = Bouncer::start(&cluster, admin, admin_password) else { return };
    let before = block_on(pooled_settings(bouncer.port, admin, admin_password));
    assert!(before.contains(&("log_statement".into(), "ddl".into())), "{before:?}");

    let stack = Stack::new(&cluster);
    let url = format!("postgresql://{admin}:{admin_password}@127.0.0.1:{}/postgres", bouncer.port);
    let out = stack.rotate().args(["--yes", "--db-url", &url]).output().unwrap();
    // The stack's roles are not in this pgbouncer's userlist: their verification through it
    // fails (exit 4), the rotation itself committed.
    assert!(matches!(out.status.code(), Some(0 | 4)), "{}", stderr_of(&out));
    assert!(block_on(cluster.can_login("supabase_admin", &stack.password())), "{}", stderr_of(&out));

    let after = block_on(pooled_settings(bouncer.port, admin, admin_password));
    assert_eq!(after, before, "the pooled server connection came back changed");
}

/// What only looks (`check --db`, a dry run) bounds each read in a transaction of its own with
/// `SET LOCAL`: behind a transaction-mode pooler a session-level `SET` would stay on the server
/// connection for the pool's next client.
#[test]
fn through_a_transaction_mode_pooler_check_db_and_a_dry_run_leave_no_setting_on_the_pooled_connections() {
    let options = ClusterOptions::new().pgaudit();
    let Some(cluster) = cluster_with(options, "a pgbouncer in front of a cluster of its own") else { return };
    let (admin, admin_password) = ("pool_admin", "pool-admin-password-0123");
    cluster.psql(&format!("CREATE ROLE {admin} SUPERUSER LOGIN PASSWORD '{admin_password}'"));
    let Some(bouncer) = Bouncer::start(&cluster, admin, admin_password) else { return };
    let databases = [cluster.main_db(), cluster.work_db()];
    let pooled = || {
        let settings = |db| block_on(pooled_settings_in(bouncer.port, admin, admin_password, db));
        databases.map(settings)
    };
    let before = pooled();
    let stack = Stack::new(&cluster);
    let url = format!("postgresql://{admin}:{admin_password}@127.0.0.1:{}/{}", bouncer.port, cluster.main_db());

    let check = crate::common::bin()
        .args(["check", "--db", "--format", "json", "--db-url", &url, "--sslmode", "disable", "--env-file"])
        .arg(&stack.env)
        .output()
        .unwrap();
    // The stack's roles are not in this pgbouncer's userlist, so their logins fail (exit 1); the
    // analytics table was read all the same.
    assert!(matches!(check.status.code(), Some(0 | 1)), "{}", stderr_of(&check));
    let report = stdout_of(&check);
    assert!(!report.contains("db-unreachable") && !report.contains("analytics-not-checked"), "{report}");
    assert_eq!(pooled(), before, "check --db left a setting on a pooled server connection");

    let dry_run = stack.rotate().args(["--dry-run", "--db-url", &url]).output().unwrap();
    assert_eq!(dry_run.status.code(), Some(0), "{}", stderr_of(&dry_run));
    assert_eq!(pooled(), before, "a dry run left a setting on a pooled server connection");
}

// ------------------------------------------------------------------ a per-role password_encryption

#[test]
fn a_per_role_password_encryption_does_not_turn_scram_roles_into_md5() {
    let Some(cluster) = local_cluster() else { return };
    cluster.psql("ALTER ROLE supabase_admin SET password_encryption = 'md5'");
    let stack = Stack::new(&cluster);
    let out = stack.rotate().arg("--yes").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    for role in ROTATED_ROLES {
        let stored = cluster.stored_verifier(role).unwrap_or_default();
        assert!(stored.starts_with("SCRAM-SHA-256$"), "{role} keeps (or gets the server's) SCRAM: {stored:.8}");
    }
    for role in LOGIN_ROLES {
        assert!(block_on(cluster.can_login(role, &stack.password())), "{role} logs in under scram-sha-256");
    }
}

#[test]
fn each_role_keeps_the_kind_of_verifier_it_has() {
    let Some(cluster) = cluster_with(ClusterOptions::new().md5(), "an md5 cluster") else { return };
    // The md5 cluster's pg_hba says md5, which accepts SCRAM verifiers too.
    cluster.psql("SET password_encryption = 'scram-sha-256'; ALTER ROLE authenticator PASSWORD 'scram-one-0123456'");
    let stack = Stack::new(&cluster);
    let out = stack.rotate().arg("--yes").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(cluster.stored_verifier("authenticator").unwrap().starts_with("SCRAM-SHA-256$"), "SCRAM stays SCRAM");
    assert!(cluster.stored_verifier("supabase_admin").unwrap().starts_with("md5"), "md5 stays md5");
    assert!(cluster.stored_verifier("anon").unwrap().starts_with("md5"), "none gets the server's default");
    assert!(holds_password(&cluster, "authenticator", &stack.password()));
}

// --------------------------------------------- a password changed by hand after an interrupted run

const DBA: &str = "dba_admin";
const DBA_PASSWORD: &str = "dba-admin-password-0123";

fn set_all_passwords(cluster: &Cluster, password: &str) {
    let sql: String = ROTATED_ROLES.iter().map(|r| format!("ALTER ROLE {r} PASSWORD '{password}';\n")).collect();
    cluster.psql(&sql);
}

#[test]
fn an_interrupted_rotation_is_settled_through_another_superuser_given_by_db_url() {
    let Some(cluster) = local_cluster() else { return };
    cluster.psql(&format!("CREATE ROLE {DBA} SUPERUSER LOGIN PASSWORD '{DBA_PASSWORD}'"));
    let stack = Stack::new(&cluster);
    let crashed = stack.rotate().arg("--yes").env("PMOVES_SECRETS_CRASH_AT", "after-commit").output().unwrap();
    assert!(!crashed.status.success() && stack.pending().exists());
    let committed = value_in(&std::fs::read_to_string(stack.pending()).unwrap(), "POSTGRES_PASSWORD").unwrap();

    let url = cluster.db_url(DBA, DBA_PASSWORD, "postgres");
    let out = stack.rotate().args(["--yes", "--db-url", &url]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stack.password(), committed, "the committed password was published");
    assert!(!stack.pending().exists());
}

#[test]
fn when_neither_files_password_is_live_the_run_says_so_and_its_way_out_works() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    let crashed = stack.rotate().arg("--yes").env("PMOVES_SECRETS_CRASH_AT", "after-commit").output().unwrap();
    assert!(!crashed.status.success() && stack.pending().exists());
    // A DBA sets a password of their own on every role meanwhile.
    let by_hand = "set-by-hand-password-0123";
    set_all_passwords(&cluster, by_hand);

    let out = stack.rotate().arg("--yes").output().unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("neither") && stderr.contains("--db-url"), "says exactly that, and the way out: {stderr}");
    assert!(!stderr.contains("run rotate-passwords again and it settles"), "no advice that loops: {stderr}");
    assert!(stack.pending().exists(), "both files kept");

    // The way out it gives: the live password, through --db-url. A dry run says what it would
    // do and leaves both files.
    let url = cluster.db_url("supabase_admin", by_hand, "postgres");
    let (env_before, pending_before) = (stack.text(), std::fs::read_to_string(stack.pending()).unwrap());
    let dry = stack.rotate().args(["--dry-run", "--db-url", &url]).output().unwrap();
    let said = format!("{}{}", stdout_of(&dry), stderr_of(&dry));
    assert!(dry.status.success() && said.contains("neither") && said.contains("would discard"), "{said}");
    assert_eq!((stack.text(), std::fs::read_to_string(stack.pending()).unwrap()), (env_before, pending_before));
    let out = stack.rotate().args(["--yes", "--db-url", &url]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!stack.pending().exists());
    let new = stack.password();
    for role in LOGIN_ROLES {
        assert!(block_on(cluster.can_login(role, &new)), "{role} holds the .env's password");
    }
}

// ---------------------------------------------------------------- an ordinary login holding a lock

/// A session of `user` in `_supabase` that runs `sql` and stays open until dropped.
pub(crate) struct Session {
    _runtime: tokio::runtime::Runtime,
    _client: tokio_postgres::Client,
}

pub(crate) fn open_session(cluster: &Cluster, user: &str, password: &str, sql: &str) -> Session {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = runtime.block_on(async {
        let client = cluster.connect(user, password, "_supabase").await.expect("connect");
        client.batch_execute(sql).await.expect("the session's statements");
        client
    });
    Session { _runtime: runtime, _client: client }
}

#[test]
fn an_ordinary_login_cannot_block_rotations() {
    let Some(cluster) = local_cluster() else { return };
    let old_key = 0x706d_6f76_6573_2d72_i64;
    let sql = format!("SELECT pg_advisory_lock({old_key}); BEGIN; SELECT pg_advisory_xact_lock({old_key});");
    let _holder = open_session(&cluster, APP_USER, crate::common::pg::APP_USER_PASSWORD, &sql);
    let stack = Stack::new(&cluster);
    let out = stack.rotate().args(["--yes", "--lock-timeout", "500ms"]).output().unwrap();
    assert!(out.status.success(), "an ordinary login blocked the rotation: {}", stderr_of(&out));
    // Nor can it take the rotation's lock at all.
    let refused = block_on(async {
        let client = cluster.connect(APP_USER, crate::common::pg::APP_USER_PASSWORD, "_supabase").await.unwrap();
        client.batch_execute(&format!("BEGIN; {ROTATION_LOCK_SQL}")).await
    });
    assert!(refused.is_err(), "an ordinary login took the rotation lock");
}

#[test]
fn a_held_rotation_lock_names_its_holder() {
    let Some(cluster) = local_cluster() else { return };
    let holder = block_on(cluster.hold_lock(ROTATION_LOCK_SQL));
    let pid = cluster.psql(
        "SELECT l.pid FROM pg_locks l WHERE l.relation = 'pg_catalog.pg_authid'::regclass \
         AND l.mode = 'ShareUpdateExclusiveLock' AND l.granted",
    );
    let stack = Stack::new(&cluster);
    let out = stack.rotate().args(["--yes", "--lock-timeout", "300ms"]).output().unwrap();
    drop(holder);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("pid {pid}")), "names the pid {pid}: {stderr}");
    assert!(stderr.contains("pmoves_test_harness") && stderr.contains("pmoves-test-harness"), "{stderr}");
    let error = stderr.lines().find(|l| l.contains("error:")).unwrap_or_default();
    assert!(!error.contains("supavisor"), "does not blame supavisor: {error}");
}

// ------------------------------------------------------------------------ roles that cannot log in

#[test]
fn roles_that_cannot_log_in_are_named_before_asking_and_do_not_fail_verification() {
    let Some(cluster) = local_cluster() else { return };
    cluster.psql(
        "ALTER ROLE supabase_storage_admin VALID UNTIL '2001-01-01'; \
         ALTER ROLE supabase_functions_admin CONNECTION LIMIT 0;",
    );
    let stack = Stack::new(&cluster);
    let dry = stack.rotate().arg("--dry-run").output().unwrap();
    assert!(dry.status.success(), "{}", stderr_of(&dry));
    let plan = format!("{}{}", stdout_of(&dry), stderr_of(&dry));
    for (role, why) in [("supabase_storage_admin", "VALID UNTIL"), ("supabase_functions_admin", "CONNECTION LIMIT 0")] {
        assert!(plan.lines().any(|l| l.contains(role) && l.contains(why)), "the plan says {role}: {why}:\n{plan}");
    }

    let out = stack.rotate().args(["--yes", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report = json_of(&out);
    let verified: Vec<&str> =
        report["verification"].as_array().unwrap().iter().map(|v| v["role"].as_str().unwrap()).collect();
    assert!(!verified.contains(&"supabase_storage_admin") && !verified.contains(&"supabase_functions_admin"));
    let new = stack.password();
    let check = cluster.psql(
        "SELECT rolname FROM pg_authid WHERE rolname IN ('supabase_storage_admin', 'supabase_functions_admin') \
         ORDER BY 1",
    );
    assert_eq!(check.lines().count(), 2);
    // Rotated too: give them back their logins for a moment and try the new password.
    cluster.psql(
        "ALTER ROLE supabase_storage_admin VALID UNTIL 'infinity'; \
         ALTER ROLE supabase_functions_admin CONNECTION LIMIT -1;",
    );
    assert!(block_on(cluster.can_login("supabase_storage_admin", &new)));
    assert!(block_on(cluster.can_login("supabase_functions_admin", &new)));
}

#[test]
fn finishing_an_interrupted_rotation_does_not_verify_a_role_that_cannot_log_in() {
    let Some(cluster) = local_cluster() else { return };
    cluster.psql("ALTER ROLE supabase_storage_admin VALID UNTIL '2001-01-01'");
    let stack = Stack::new(&cluster);
    let crashed = stack.rotate().arg("--yes").env("PMOVES_SECRETS_CRASH_AT", "after-commit").output().unwrap();
    assert!(!crashed.status.success() && stack.pending().exists());
    let out = stack.rotate().args(["--yes", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "an expired role is no reason for exit 4: {}", stderr_of(&out));
    let report = json_of(&out);
    let verified: Vec<&str> =
        report["verification"].as_array().unwrap().iter().map(|v| v["role"].as_str().unwrap()).collect();
    assert!(!verified.contains(&"supabase_storage_admin") && verified.contains(&"authenticator"), "{verified:?}");
}
