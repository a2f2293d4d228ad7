//! `rotate-passwords` must leave no password and no verifier where other people read: the
//! server log (however it is configured: sampled transactions, pgaudit, auto_explain, lock and
//! deadlock reports), `pg_stat_activity` and `pg_stat_statements` (SPEC §2 step 5). A verifier counts as a secret: an md5 one logs in as its role.
//!
//! Each test configures a real cluster the way a stack might, rotates, then reads the stored
//! verifiers back from `pg_authid` and searches for them, for both passwords and for any
//! verifier-shaped text. Each also proves that the logging it configures is in force, so a
//! test cannot pass because nothing was logged at all.

use std::time::{Duration, Instant};

use crate::common::pg::{server_library_available, Cluster, ClusterOptions, SeenActivity, ROTATED_ROLES};
use crate::common::stack::Stack;
use crate::common::{bin, bin_path, env_value, skip_on_external_database, skipped};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// A stack whose `.env` points at the cluster (and embeds the password in a URL).
fn leaks_stack(cluster: &Cluster) -> Stack {
    let text = format!(
        "POSTGRES_HOST={host}\nPOSTGRES_PORT={port}\nPOSTGRES_DB={db}\nPOSTGRES_PASSWORD={pw}\n\
         SUPABASE_DB_URL=postgresql://postgres:{pw}@{host}:{port}/{db}\n",
        host = cluster.host(),
        port = cluster.port(),
        db = cluster.main_db(),
        pw = cluster.password(),
    );
    Stack::with_text(&text)
}

fn rotate_ok(stack: &Stack) {
    let out = bin()
        .args(["rotate-passwords", "--yes", "--sslmode", "disable", "--env-file"])
        .arg(&stack.env)
        .output()
        .unwrap();
    assert!(out.status.success(), "rotation failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A rotation that aborts at `point` (`PMOVES_SECRETS_CRASH_AT`); returns the password of
/// the pending file it leaves.
fn rotate_and_crash(stack: &Stack, point: &str) -> String {
    let out = bin()
        .args(["rotate-passwords", "--yes", "--sslmode", "disable", "--env-file"])
        .arg(&stack.env)
        .env("PMOVES_SECRETS_CRASH_AT", point)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the rotation crashed at {point}");
    let pending = stack.env.with_file_name(".env.pending");
    env_value(&std::fs::read_to_string(pending).unwrap(), "POSTGRES_PASSWORD").unwrap()
}

/// Starts a rotation in the background (a long `--lock-timeout`, so it can wait on a lock).
fn spawn_rotation(stack: &Stack) -> std::process::Child {
    std::process::Command::new(bin_path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .args(["rotate-passwords", "--yes", "--lock-timeout", "60s", "--sslmode", "disable", "--env-file"])
        .arg(&stack.env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A cluster configured by `options` and a stack on it; `None` (saying so) against an
/// external database, whose configuration these tests cannot choose.
fn local_stack(options: ClusterOptions) -> Option<(Cluster, Stack)> {
    if skip_on_external_database("its own server configuration") {
        return None;
    }
    if let Some(missing) = options.preload_libraries.iter().find(|l| !server_library_available(l)) {
        skipped(&format!("the server cannot load {missing} (run scripts/ensure-postgres.sh)"));
        return None;
    }
    let cluster = Cluster::start(options);
    let stack = leaks_stack(&cluster);
    Some((cluster, stack))
}

/// Every secret a rotation handles: both passwords and every role's stored verifier.
struct Secrets {
    old_password: String,
    new_password: String,
    verifiers: Vec<String>,
    /// Other passwords of the test (a discarded pending file's).
    others: Vec<String>,
}

impl Secrets {
    fn after_rotation(cluster: &Cluster, stack: &Stack) -> Secrets {
        let new_password = stack.password();
        assert_ne!(new_password, cluster.password(), "the rotation changed the password");
        let verifiers: Vec<String> = ROTATED_ROLES.iter().filter_map(|r| cluster.stored_verifier(r)).collect();
        assert_eq!(verifiers.len(), ROTATED_ROLES.len(), "every rotated role has a verifier");
        Secrets { old_password: cluster.password().to_owned(), new_password, verifiers, others: Vec::new() }
    }

    /// What `text` (named `what`) shows of a secret, one description per finding; empty if none.
    fn found_in(&self, text: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut look = |needle: &str, name: &str| {
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                found.push(format!("{name} in: {}", line.replace(needle, "<SECRET>")));
            }
        };
        look(&self.old_password, "the old password");
        look(&self.new_password, "the new password");
        for other in &self.others {
            look(other, "another password of the test");
        }
        for (verifier, role) in self.verifiers.iter().zip(ROTATED_ROLES) {
            look(verifier, &format!("the verifier of {role}"));
        }
        look("SCRAM-SHA-256$", "a SCRAM verifier");
        look(" PASSWORD '", "an ALTER ROLE … PASSWORD statement");
        if let Some(line) = text.lines().find(|l| has_md5_hash(l)) {
            found.push(format!("an md5 verifier in: {line}"));
        }
        found
    }
}

/// Whether `text` holds `md5` followed by 32 hex digits (an md5 verifier).
fn has_md5_hash(text: &str) -> bool {
    text.match_indices("md5").any(|(at, _)| {
        let rest = &text.as_bytes()[at + 3..];
        rest.len() >= 32 && rest[..32].iter().all(u8::is_ascii_hexdigit)
    })
}

fn assert_log_clean(cluster: &Cluster, secrets: &Secrets) {
    let found = secrets.found_in(&cluster.server_log());
    assert!(found.is_empty(), "the server log holds secrets:\n{}", found.join("\n"));
}

fn assert_activity_clean(seen: &SeenActivity, secrets: &Secrets) {
    let all: Vec<&str> = seen.queries.iter().map(String::as_str).collect();
    let found = secrets.found_in(&all.join("\n"));
    assert!(found.is_empty(), "pg_stat_activity showed secrets:\n{}", found.join("\n"));
}

/// Waits until the background rotation's session waits on a lock.
fn wait_until_rotation_waits_on_a_lock(cluster: &Cluster, rotation: &mut std::process::Child) {
    let waiting =
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pmoves-secrets' AND wait_event_type = 'Lock'";
    let deadline = Instant::now() + Duration::from_secs(20);
    while cluster.psql(waiting) != "1" {
        if let Some(status) = rotation.try_wait().unwrap() {
            panic!("the rotation ended ({status}) before it waited on the lock");
        }
        assert!(Instant::now() < deadline, "the rotation never waited on the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_rotation_succeeded(rotation: std::process::Child) {
    let out = rotation.wait_with_output().unwrap();
    assert!(out.status.success(), "rotation failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A DDL and a write by the harness, so a test can see pgaudit logging them.
fn audit_probe(cluster: &Cluster) {
    cluster.psql("CREATE TABLE audit_probe (x int); INSERT INTO audit_probe VALUES (1); DROP TABLE audit_probe");
}

#[test]
fn sampled_transactions_log_no_password_and_no_verifier() {
    let options = ClusterOptions::new().setting("log_transaction_sample_rate", "1.0");
    let Some((cluster, stack)) = local_stack(options) else { return };
    rotate_ok(&stack);
    let secrets = Secrets::after_rotation(&cluster, &stack);
    let log = cluster.server_log();
    assert!(log.contains("rolcanlogin"), "sampling is in force: the rotation's discovery is in the log");
    assert_log_clean(&cluster, &secrets);
}

#[test]
fn sampled_transactions_on_an_md5_server_log_no_md5_verifier() {
    let options = ClusterOptions::new().md5().setting("log_transaction_sample_rate", "1.0");
    let Some((cluster, stack)) = local_stack(options) else { return };
    rotate_ok(&stack);
    let secrets = Secrets::after_rotation(&cluster, &stack);
    assert!(secrets.verifiers.iter().all(|v| v.starts_with("md5")), "the server stores md5 verifiers");
    assert!(cluster.server_log().contains("rolcanlogin"), "sampling is in force");
    assert_log_clean(&cluster, &secrets);
}

#[test]
fn pgaudit_ddl_logging_shows_no_verifier() {
    let options = ClusterOptions::new().pgaudit().setting("pgaudit.log", "ddl");
    let Some((cluster, stack)) = local_stack(options) else { return };
    audit_probe(&cluster);
    rotate_ok(&stack);
    let secrets = Secrets::after_rotation(&cluster, &stack);
    let log = cluster.server_log();
    assert!(log.contains("AUDIT: SESSION") && log.contains("CREATE TABLE audit_probe"), "pgaudit logs DDL");
    assert_log_clean(&cluster, &secrets);
}

#[test]
fn pgaudit_write_logging_with_parameters_shows_no_password() {
    let options = ClusterOptions::new()
        .pgaudit()
        .setting("pgaudit.log", "write, role, ddl, misc")
        .setting("pgaudit.log_parameter", "on");
    let Some((cluster, stack)) = local_stack(options) else { return };
    audit_probe(&cluster);
    rotate_ok(&stack);
    let secrets = Secrets::after_rotation(&cluster, &stack);
    let log = cluster.server_log();
    assert!(log.contains("AUDIT: SESSION") && log.contains("INSERT INTO audit_probe"), "pgaudit logs writes");
    assert_log_clean(&cluster, &secrets);
}

#[test]
fn every_statement_log_and_statistics_together_show_no_secret() {
    let options = ClusterOptions::new()
        .pgaudit()
        .preload("auto_explain")
        .preload("pg_stat_statements")
        .setting("log_statement", "all")
        .setting("log_min_duration_statement", "0")
        .setting("log_transaction_sample_rate", "1.0")
        .setting("auto_explain.log_min_duration", "0")
        .setting("auto_explain.log_analyze", "on")
        .setting("pg_stat_statements.track_utility", "on")
        .setting("pgaudit.log", "all")
        .setting("pgaudit.log_parameter", "on")
        .setting("log_min_error_statement", "debug5")
        .setting("debug_print_parse", "on");
    let Some((cluster, stack)) = local_stack(options) else { return };
    cluster.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    rotate_ok(&stack);
    let secrets = Secrets::after_rotation(&cluster, &stack);
    let log = cluster.server_log();
    assert!(log.contains("statement: ") && log.contains("AUDIT: SESSION"), "statements are logged");
    assert!(log.contains("Query Text:"), "auto_explain logs plans");
    assert_log_clean(&cluster, &secrets);
    let statements = cluster.psql("SELECT string_agg(query, E'\\n') FROM pg_stat_statements");
    assert!(statements.contains("rolcanlogin"), "pg_stat_statements tracks the rotation's queries");
    let found = secrets.found_in(&statements);
    assert!(found.is_empty(), "pg_stat_statements holds secrets:\n{}", found.join("\n"));
}

/// Rotates while a `pg_monitor` member polls `pg_stat_activity`, and checks what it saw.
fn pg_stat_activity_shows_no_secret(options: ClusterOptions) {
    let Some((cluster, stack)) = local_stack(options) else { return };
    let rt = runtime();
    let watcher = rt.block_on(cluster.watch_activity());
    // The rotation's one batch of ALTER ROLEs then waits at DROP SCHEMA _supavisor for as long
    // as this lock is held: whatever its session shows, the watcher sees.
    let holder = rt.block_on(cluster.hold_lock(""));
    let mut rotation = spawn_rotation(&stack);
    wait_until_rotation_waits_on_a_lock(&cluster, &mut rotation);
    std::thread::sleep(Duration::from_millis(200));
    drop(holder);
    assert_rotation_succeeded(rotation);
    let seen = watcher.stop();
    assert!(seen.polls > 10, "the watcher polled throughout ({} polls)", seen.polls);
    assert!(seen.any_contains("pg_backend_pid()"), "the watcher reads other sessions' query text");
    let secrets = Secrets::after_rotation(&cluster, &stack);
    assert_activity_clean(&seen, &secrets);
}

#[test]
fn a_pg_monitor_member_polling_pg_stat_activity_never_sees_a_verifier() {
    pg_stat_activity_shows_no_secret(ClusterOptions::new());
}

#[test]
fn a_pg_monitor_member_never_sees_an_md5_verifier_that_would_log_in() {
    pg_stat_activity_shows_no_secret(ClusterOptions::new().md5());
}

#[test]
fn lock_wait_and_deadlock_reports_do_not_quote_the_rotation() {
    let options = ClusterOptions::new()
        .setting("log_lock_waits", "on")
        .setting("deadlock_timeout", "1s")
        .setting("log_min_error_statement", "debug5");
    let Some((cluster, stack)) = local_stack(options) else { return };
    let rt = runtime();
    // Another session holds a lock the rotation's DROP SCHEMA _supavisor needs ...
    let other = rt.block_on(cluster.admin_client(cluster.work_db()));
    rt.block_on(other.batch_execute(
        "BEGIN; SET LOCAL deadlock_timeout = '20ms'; LOCK TABLE _supavisor.tenants IN ACCESS SHARE MODE",
    ))
    .unwrap();
    let mut rotation = spawn_rotation(&stack);
    wait_until_rotation_waits_on_a_lock(&cluster, &mut rotation);
    // Past the rotation's deadlock_timeout: its own lock-wait report is logged.
    std::thread::sleep(Duration::from_millis(1200));
    // ... then waits for a role row the rotation has changed: a deadlock, which that session
    // (the shorter deadlock_timeout) detects and reports, with every process's query.
    let err = rt.block_on(other.batch_execute("ALTER ROLE anon CONNECTION LIMIT 5")).unwrap_err();
    assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED), "{err}");
    rt.block_on(other.batch_execute("ROLLBACK")).unwrap();
    assert_rotation_succeeded(rotation);
    let secrets = Secrets::after_rotation(&cluster, &stack);
    let log = cluster.server_log();
    assert!(log.contains("deadlock detected") && log.contains("still waiting for"), "the reports are logged");
    assert_log_clean(&cluster, &secrets);
}

#[test]
fn pgaudit_object_auditing_of_the_analytics_table_shows_no_password() {
    let options = ClusterOptions::new()
        .pgaudit()
        .setting("pgaudit.role", "pmoves_auditor")
        .setting("pgaudit.log_parameter", "on");
    let Some((cluster, stack)) = local_stack(options) else { return };
    cluster.psql("CREATE ROLE pmoves_auditor NOLOGIN; GRANT UPDATE ON _analytics.source_backends TO pmoves_auditor");
    cluster.psql("UPDATE _analytics.source_backends SET type = type WHERE false");
    assert!(cluster.server_log().contains("AUDIT: OBJECT"), "pgaudit audits updates of the analytics table");
    rotate_ok(&stack);
    let secrets = Secrets::after_rotation(&cluster, &stack);
    assert_log_clean(&cluster, &secrets);
}

#[test]
fn a_failed_analytics_update_logs_no_bind_parameter() {
    let options = ClusterOptions::new().setting("log_parameter_max_length_on_error", "-1");
    let Some((cluster, stack)) = local_stack(options) else { return };
    cluster.psql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$; \
         CREATE TRIGGER refuse BEFORE UPDATE ON _analytics.source_backends FOR EACH ROW EXECUTE FUNCTION refuse()",
    );
    let out = bin()
        .args(["rotate-passwords", "--yes", "--sslmode", "disable", "--env-file"])
        .arg(&stack.env)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the refused update rolls the rotation back");
    let log = cluster.server_log();
    assert!(log.contains("refused"), "the error is logged");
    // Nothing committed: the only secret the server saw is the new password, and the log
    // must not hold it (nor any verifier-shaped text).
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains(cluster.password()), "stderr holds no password");
    let found: Vec<String> = ["SCRAM-SHA-256$", " PASSWORD '", "postgresql://supabase_admin:"]
        .iter()
        .filter(|needle| log.contains(*needle))
        .map(|needle| format!("{needle:?} is in the log"))
        .collect();
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Logs everything the server can log about statements, as a session of its own would see.
fn log_everything() -> ClusterOptions {
    ClusterOptions::new()
        .pgaudit()
        .setting("log_statement", "all")
        .setting("log_min_duration_statement", "0")
        .setting("log_transaction_sample_rate", "1.0")
        .setting("log_connections", "on")
        .setting("pgaudit.log", "all")
        .setting("pgaudit.log_parameter", "on")
        .setting("log_min_error_statement", "debug5")
}

#[test]
fn recovery_after_a_crash_after_commit_logs_no_secret() {
    let Some((cluster, stack)) = local_stack(log_everything()) else { return };
    let committed = rotate_and_crash(&stack, "after-commit");
    rotate_ok(&stack);
    assert_eq!(stack.password(), committed, "recovery published the committed password");
    let secrets = Secrets::after_rotation(&cluster, &stack);
    let log = cluster.server_log();
    assert!(log.contains("pg_authid") && log.contains("rolpassword"), "recovery's queries are logged");
    assert_log_clean(&cluster, &secrets);
}

#[test]
fn recovery_after_a_crash_before_commit_logs_no_secret() {
    let Some((cluster, stack)) = local_stack(log_everything()) else { return };
    let discarded = rotate_and_crash(&stack, "after-stage");
    rotate_ok(&stack);
    let mut secrets = Secrets::after_rotation(&cluster, &stack);
    assert_ne!(secrets.new_password, discarded, "the pending file was discarded and a new rotation ran");
    secrets.others.push(discarded);
    let log = cluster.server_log();
    assert!(log.contains("pg_authid") && log.contains("rolpassword"), "recovery's queries are logged");
    assert_log_clean(&cluster, &secrets);
}

#[test]
fn the_md5_hash_finder_finds_md5_verifiers_only() {
    assert!(has_md5_hash("x md50123456789abcdef0123456789abcdef y"));
    assert!(!has_md5_hash("md5 of something: 0123"));
    assert!(!has_md5_hash("md50123456789abcdef0123456789abcde"));
}
