//! `rotate-passwords` against real, throwaway PostgreSQL clusters (see `common/pg/mod.rs`).
//!
//! Every test starts its own cluster, because roles are cluster-wide. State is checked in the
//! database (stored verifiers, logins, rows), not only in the tool's output. With
//! `PMOVES_TEST_DATABASE_URL` set, the tests that need only a Supabase server run on that one,
//! one at a time, and the others print `SKIPPED: <test>: needs a local cluster (<why>)`.

use std::path::{Path, PathBuf};

use predicates::prelude::*;
use serde_json::Value;

use crate::common::pg::{
    needs_local_cluster, Cluster, ClusterOptions, Layout, APP_USER, APP_USER_PASSWORD, LOGIN_ROLES, NOLOGIN_ROLES,
    READ_ONLY_USER, ROTATED_ROLES,
};
use crate::common::stack::Stack;
use crate::common::{bin, block_on, env_value, mode_of, skip_on_external_database, tempdir};

/// A stack directory with a realistic `.env` pointing at `cluster` (mode 0640).
fn realistic_stack(cluster: &Cluster) -> Stack {
    let pw = cluster.password();
    let text = format!(
        "# Supabase stack\r\n\
         ############\n\
         # Database\n\
         ############\n\
         POSTGRES_HOST={host}\n\
         POSTGRES_PORT={port}\n\
         POSTGRES_DB={db}\n\
         export POSTGRES_PASSWORD={pw}   # rotated by pmoves-secrets\n\
         \n\
         SUPABASE_DB_URL='postgresql://postgres:{pw}@{host}:{port}/{db}?sslmode=disable'\n\
         DATABASE_URL=postgres://supabase_admin:{pw}@db:5432/postgres\n\
         OTHER_URL=postgres://app_user:{app}@db:5432/postgres\n\
         NATS_URL=nats://nats:pmoves@nats:4222\n\
         JWT_SECRET=\"keep-this-value-exactly-as-it-is-0123456789\"\n\
         NO_FINAL_NEWLINE=yes",
        host = cluster.host(),
        port = cluster.port(),
        db = cluster.main_db(),
        app = APP_USER_PASSWORD,
    );
    let stack = Stack::with_text(&text);
    set_mode(&stack.env, 0o640);
    stack
}

/// What a test needs of the server it rotates on.
#[derive(Clone, Copy)]
enum Needs {
    /// Nothing beyond its cluster options: when they suit the server of
    /// `PMOVES_TEST_DATABASE_URL` (no md5, no other layout, ...), the test runs on that shared
    /// server (one test at a time; the harness restores the verifiers and analytics rows it
    /// changed), else it reports itself skipped.
    OptionsOnly,
    /// A throwaway local cluster, for the reason given: in external mode the test reports
    /// itself skipped (never a silent pass).
    LocalCluster(&'static str),
}

/// A cluster (local, or the shared external server when the test allows it) and a stack
/// pointing at it; `None` after reporting the test skipped when it cannot run here.
fn stack(options: ClusterOptions, needs: Needs) -> Option<(Cluster, Stack)> {
    let reason = match (needs_local_cluster(&options), needs) {
        (Some(options), _) => Some(options),
        (None, Needs::LocalCluster(why)) => Some(why.to_owned()),
        (None, Needs::OptionsOnly) => None,
    };
    if let Some(why) = reason {
        if skip_on_external_database(&why) {
            return None;
        }
    }
    let cluster = Cluster::start(options);
    let stack = realistic_stack(&cluster);
    Some((cluster, stack))
}

fn password_in(text: &str) -> String {
    env_value(text, "POSTGRES_PASSWORD").expect("POSTGRES_PASSWORD is set")
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Snapshot of what a rotation must not change or must change.
struct DbState {
    verifiers: Vec<(String, Option<String>)>,
    app_verifier: Option<String>,
    read_only_verifier: Option<String>,
}

fn db_state(cluster: &Cluster) -> DbState {
    DbState {
        verifiers: ROTATED_ROLES.iter().map(|r| (r.to_string(), cluster.stored_verifier(r))).collect(),
        app_verifier: cluster.stored_verifier(APP_USER),
        read_only_verifier: cluster.stored_verifier(READ_ONLY_USER),
    }
}

/// Asserts that the database and `.env` are exactly as before: the rotation changed nothing.
fn assert_nothing_changed(cluster: &Cluster, stack: &Stack, before: &DbState, env_before: &str) {
    let now = db_state(cluster);
    assert_eq!(now.verifiers, before.verifiers, "role verifiers changed");
    assert_eq!(stack.text(), env_before, ".env changed");
    assert!(!stack.pending().exists(), "a pending file was left behind");
    assert!(block_on(cluster.can_login("supabase_admin", cluster.password())), "old password no longer works");
}

/// Makes a NOLOGIN role able to log in for a moment, to prove its verifier holds `password`.
fn nologin_role_accepts(cluster: &Cluster, role: &str, password: &str) -> bool {
    cluster.psql(&format!("ALTER ROLE {role} LOGIN"));
    let ok = block_on(cluster.can_login(role, password));
    cluster.psql(&format!("ALTER ROLE {role} NOLOGIN"));
    ok
}

fn analytics_configs(cluster: &Cluster) -> Vec<(String, String)> {
    block_on(cluster.query_strings("SELECT id::text, config::text FROM _analytics.source_backends ORDER BY id"))
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect()
}

#[test]
fn a_rotation_changes_every_role_and_nothing_else() {
    let Some((cluster, stack)) =
        stack(ClusterOptions::new(), Needs::LocalCluster("the fixture's app_user and analytics rows"))
    else {
        return;
    };
    let old = cluster.password().to_owned();
    let env_before = stack.text();
    let before = db_state(&cluster);
    let analytics_before = analytics_configs(&cluster);
    let supavisor_owner_before =
        cluster.psql("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = '_supavisor'");

    let out = stack.rotate().args(["--yes", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "rotation failed: {}", String::from_utf8_lossy(&out.stderr));
    let report = json_of(&out);
    let new = stack.password();
    assert_ne!(new, old);
    assert_eq!(new.len(), 32);

    // Every rotated role holds the new password; every LOGIN role logs in with it.
    for role in LOGIN_ROLES {
        assert!(block_on(cluster.can_login(role, &new)), "{role} cannot log in with the new password");
        assert!(!block_on(cluster.can_login(role, &old)), "{role} still accepts the old password");
    }
    for role in NOLOGIN_ROLES {
        assert!(nologin_role_accepts(&cluster, role, &new), "{role} does not hold the new password");
    }
    // Untouched roles are untouched.
    let after = db_state(&cluster);
    assert_eq!(after.app_verifier, before.app_verifier, "app_user was touched");
    assert_eq!(after.read_only_verifier, before.read_only_verifier, "supabase_read_only_user was touched");
    assert!(block_on(cluster.can_login(APP_USER, APP_USER_PASSWORD)));
    for ((role, v_before), (_, v_after)) in before.verifiers.iter().zip(&after.verifiers) {
        assert_ne!(v_before, v_after, "{role} verifier unchanged");
        assert!(v_after.as_deref().unwrap().starts_with("SCRAM-SHA-256$"), "{role} verifier is SCRAM");
    }

    // Analytics: only the password component of postgres rows changed.
    let analytics_after = analytics_configs(&cluster);
    assert_eq!(analytics_after.len(), analytics_before.len());
    let url_of = |config: &str| serde_json::from_str::<Value>(config).unwrap()["url"].as_str().map(str::to_owned);
    assert_eq!(url_of(&analytics_after[0].1).unwrap(), format!("postgresql://supabase_admin:{new}@db:5432/postgres"));
    assert_eq!(
        url_of(&analytics_after[1].1).unwrap(),
        format!("postgres://supabase_admin:{new}@supabase-db:5432/_supabase?sslmode=disable")
    );
    let schema_of = |config: &str| serde_json::from_str::<Value>(config).unwrap()["schema"].clone();
    assert_eq!(schema_of(&analytics_after[0].1), schema_of(&analytics_before[0].1), "other config keys kept");
    assert_eq!(analytics_after[2], analytics_before[2], "the non-postgres backend is untouched");

    // _supavisor is back, empty, with its owner.
    let owner_after = cluster.psql("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = '_supavisor'");
    assert_eq!(owner_after, supavisor_owner_before);
    assert_eq!(cluster.psql("SELECT count(*) FROM pg_tables WHERE schemaname = '_supavisor'"), "0");

    // .env: only the password and the URLs that embedded it changed; mode kept.
    let expected = env_before
        .replace(&format!("POSTGRES_PASSWORD={old}"), &format!("POSTGRES_PASSWORD={new}"))
        .replace(&format!("postgres:{old}@"), &format!("postgres:{new}@"))
        .replace(&format!("supabase_admin:{old}@"), &format!("supabase_admin:{new}@"));
    assert_eq!(stack.text(), expected);
    assert_eq!(mode_of(&stack.env), 0o640);
    assert!(!stack.pending().exists());

    // The report.
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["analytics_rows_updated"], 2);
    assert_eq!(report["supavisor_reset"], true);
    assert_eq!(report["verification"].as_array().unwrap().len(), LOGIN_ROLES.len());
    assert!(report["verification"].as_array().unwrap().iter().all(|v| v["ok"] == true));
    let roles = report["roles"].as_array().unwrap();
    assert_eq!(roles.iter().filter(|r| r["outcome"] == "rotated").count(), 12);
    assert!(roles.iter().any(|r| r["role"] == READ_ONLY_USER && r["outcome"] == "left-alone"));
    for key in ["plan_ms", "transaction_ms", "verify_ms", "total_ms"] {
        assert!(report["timings"][key].as_f64().is_some_and(|v| v >= 0.0), "{key}");
    }
    let env_keys: Vec<&str> =
        report["plan"]["env_keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(env_keys, ["POSTGRES_PASSWORD", "SUPABASE_DB_URL", "DATABASE_URL"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&new), "the new password leaked to stderr");
}

#[test]
fn the_plaintext_never_reaches_the_server_log() {
    let Some((cluster, stack)) = stack(ClusterOptions::new().log_all(), Needs::OptionsOnly) else { return };
    stack.rotate().arg("--yes").assert().success();
    let new = stack.password();
    let log = cluster.server_log();
    assert!(log.contains("statement:"), "log_statement=all is in force (the log has statements)");
    assert!(!log.contains(&new), "the new password is in the server log");
    assert!(!log.contains("ALTER ROLE"), "the ALTER ROLE statements (with verifiers) were logged");
}

#[test]
fn an_md5_server_gets_md5_verifiers() {
    let Some((cluster, stack)) = stack(ClusterOptions::new().md5(), Needs::OptionsOnly) else { return };
    stack.rotate().arg("--yes").assert().success();
    let new = stack.password();
    for role in ROTATED_ROLES {
        let verifier = cluster.stored_verifier(role).unwrap_or_default();
        assert!(verifier.starts_with("md5") && verifier.len() == 35, "{role} has an md5 verifier");
    }
    for role in LOGIN_ROLES {
        assert!(block_on(cluster.can_login(role, &new)), "{role}");
    }
}

#[test]
fn an_absent_role_is_skipped_and_reported() {
    let Some((cluster, stack)) = stack(ClusterOptions::new().without_role("pgbouncer"), Needs::OptionsOnly) else {
        return;
    };
    let out = stack.rotate().args(["--yes", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json_of(&out);
    let roles = report["roles"].as_array().unwrap();
    assert!(roles.iter().any(|r| r["role"] == "pgbouncer" && r["outcome"] == "skipped-absent"));
    assert_eq!(roles.iter().filter(|r| r["outcome"] == "rotated").count(), 11);
    assert!(block_on(cluster.can_login("authenticator", &stack.password())));
}

#[test]
fn a_stack_without_analytics_or_supavisor_rotates_the_roles() {
    let Some((cluster, stack)) = stack(ClusterOptions::new().layout(Layout::Bare), Needs::OptionsOnly) else { return };
    let out = stack.rotate().args(["--yes", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json_of(&out);
    assert_eq!(report["supavisor_reset"], false);
    assert_eq!(report["plan"]["analytics_rows"], Value::Null);
    assert!(block_on(cluster.can_login("supabase_admin", &stack.password())));
}

#[test]
fn an_older_stack_keeps_analytics_in_the_main_database() {
    let Some((cluster, stack)) = stack(ClusterOptions::new().legacy().main_db("pmoves"), Needs::OptionsOnly) else {
        return;
    };
    let out = stack.rotate().args(["--yes", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json_of(&out);
    assert_eq!(report["plan"]["database"], "pmoves");
    assert_eq!(report["analytics_rows_updated"], 2);
    let new = stack.password();
    let urls = analytics_configs(&cluster);
    assert!(urls[0].1.contains(&new), "analytics URL updated in the main database");
}

#[test]
fn a_held_lock_rolls_everything_back_within_the_lock_timeout() {
    let Some((cluster, stack)) =
        stack(ClusterOptions::new(), Needs::LocalCluster("the fixture's _supavisor.tenants table"))
    else {
        return;
    };
    let env_before = stack.text();
    let before = db_state(&cluster);
    let holder = block_on(cluster.hold_lock(""));
    let started = std::time::Instant::now();
    stack
        .rotate()
        .args(["--yes", "--lock-timeout", "300ms"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("lock").and(predicate::str::contains("nothing was changed")));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    drop(holder);
    assert_nothing_changed(&cluster, &stack, &before, &env_before);
}

#[test]
fn a_concurrent_rotation_holding_the_rotation_lock_blocks_this_one() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let env_before = stack.text();
    let before = db_state(&cluster);
    let holder = block_on(cluster.hold_lock(crate::rotate_db::ROTATION_LOCK_SQL));
    stack.rotate().args(["--yes", "--lock-timeout", "300ms"]).assert().code(1).stderr(predicate::str::contains("lock"));
    drop(holder);
    assert_nothing_changed(&cluster, &stack, &before, &env_before);
}

#[test]
fn two_rotations_of_one_env_at_once_are_serialised() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let spawn = || {
        let mut cmd = std::process::Command::new(crate::common::bin_path());
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args(["rotate-passwords", "--yes", "--sslmode", "disable", "--env-file"])
            .arg(&stack.env)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let final_password = stack.password();
    for role in LOGIN_ROLES {
        assert!(block_on(cluster.can_login(role, &final_password)), "{role} has the .env's password");
    }
}

#[test]
fn a_crash_after_staging_leaves_the_old_password_live_and_the_next_run_converges() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let old = stack.password();
    let out = stack.rotate().arg("--yes").env("PMOVES_SECRETS_CRASH_AT", "after-stage").output().unwrap();
    assert!(!out.status.success());
    assert!(stack.pending().exists(), "the pending file survives the crash");
    assert_eq!(stack.password(), old);
    assert!(block_on(cluster.can_login("supabase_admin", &old)), "the database still has the old password");

    // Said once, on stderr (not again in the report).
    stack.rotate().arg("--yes").assert().success().stderr(predicate::str::contains("never committed"));
    assert!(!stack.pending().exists());
    let new = stack.password();
    assert_ne!(new, old);
    for role in LOGIN_ROLES {
        assert!(block_on(cluster.can_login(role, &new)), "{role}");
    }
}

#[test]
fn a_crash_after_commit_is_finished_by_the_next_run_without_a_second_rotation() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let old = stack.password();
    let out = stack.rotate().arg("--yes").env("PMOVES_SECRETS_CRASH_AT", "after-commit").output().unwrap();
    assert!(!out.status.success());
    let pending = password_in(&std::fs::read_to_string(stack.pending()).unwrap());
    assert_eq!(stack.password(), old, ".env is not yet published");
    assert!(block_on(cluster.can_login("supabase_admin", &pending)), "the pending file holds the live password");
    assert!(!block_on(cluster.can_login("supabase_admin", &old)));
    let verifiers_after_crash = db_state(&cluster).verifiers;

    let out = stack.rotate().args(["--format", "json"]).output().unwrap();
    assert!(out.status.success(), "recovery needs no confirmation: {}", String::from_utf8_lossy(&out.stderr));
    let report = json_of(&out);
    assert_eq!(report["recovery"], "finished-interrupted-rotation");
    assert!(report["timings"]["transaction_ms"].is_null(), "this run ran no transaction: {report:#}");
    assert_eq!(stack.password(), pending, ".env now holds the committed password");
    assert!(!stack.pending().exists());
    assert_eq!(db_state(&cluster).verifiers, verifiers_after_crash, "no second rotation");
    assert!(report["verification"].as_array().unwrap().iter().all(|v| v["ok"] == true));
}

#[test]
fn a_crash_after_publish_leaves_a_consistent_env() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let out = stack.rotate().arg("--yes").env("PMOVES_SECRETS_CRASH_AT", "after-publish").output().unwrap();
    assert!(!out.status.success());
    assert!(!stack.pending().exists());
    assert!(block_on(cluster.can_login("supabase_admin", &stack.password())));
    stack.rotate().arg("--yes").assert().success();
    assert!(block_on(cluster.can_login("supabase_admin", &stack.password())));
}

#[test]
fn a_wrong_password_fails_cleanly_naming_the_host() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let wrong = "0123456789abcdef0123456789abcdef";
    std::fs::write(&stack.env, stack.text().replace(cluster.password(), wrong)).unwrap();
    let env_before = stack.text();
    let out = stack.rotate().arg("--yes").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:{}", cluster.host(), cluster.port())), "{stderr}");
    assert!(stderr.contains("password"), "{stderr}");
    assert!(!stderr.contains(wrong) && !stderr.contains(cluster.password()), "a secret was echoed: {stderr}");
    assert_eq!(stack.text(), env_before);
    assert!(!stack.pending().exists());
}

#[test]
fn an_unreachable_host_fails_cleanly_naming_it() {
    let dir = tempdir();
    let env = dir.path().join(".env");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    std::fs::write(&env, format!("POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT={port}\nPOSTGRES_PASSWORD=s3cretvalue9876\n"))
        .unwrap();
    let out = bin().args(["rotate-passwords", "--yes", "--env-file"]).arg(&env).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("s3cretvalue9876"), "{stderr}");
    assert!(!dir.path().join(".env.pending").exists());
}

#[test]
fn a_malformed_url_fails_without_echoing_its_password() {
    let dir = tempdir();
    let env = dir.path().join(".env");
    std::fs::write(&env, "POSTGRES_PASSWORD=abc\n").unwrap();
    let out = bin()
        .args(["rotate-passwords", "--yes", "--env-file"])
        .arg(&env)
        .env("PMOVES_SECRETS_DB_URL", "postgresql://supabase_admin:hunter2secret@db.example:notaport/postgres")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PMOVES_SECRETS_DB_URL"), "{stderr}");
    assert!(stderr.contains("db.example"), "the host is named: {stderr}");
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
}

#[test]
fn without_a_terminal_and_without_yes_nothing_changes() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let env_before = stack.text();
    let before = db_state(&cluster);
    stack.rotate().assert().code(3).stderr(predicate::str::contains("--yes"));
    assert_nothing_changed(&cluster, &stack, &before, &env_before);
}

#[test]
fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::LocalCluster("the fixture's analytics rows"))
    else {
        return;
    };
    let env_before = stack.text();
    let before = db_state(&cluster);
    let out = stack.rotate().args(["--dry-run", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json_of(&out);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["plan"]["roles_to_change"].as_array().unwrap().len(), 12);
    assert_eq!(report["plan"]["analytics_rows"], 2);
    assert!(report["timings"]["transaction_ms"].is_null(), "a dry run runs no transaction: {report:#}");
    assert!(report["roles"].as_array().unwrap().iter().all(|r| r["outcome"] != "rotated"));
    assert_nothing_changed(&cluster, &stack, &before, &env_before);

    stack.rotate().arg("--dry-run").assert().success().stdout(
        predicate::str::contains("roles to change (12)")
            .and(predicate::str::contains("supabase_read_only_user"))
            .and(predicate::str::contains("Dry run: nothing was changed")),
    );
}

/// Drives the confirmation prompt through a pseudo-terminal.
fn rotate_in_pty(stack: &Stack, answer: &str) -> rexpect::session::PtySession {
    let mut session = crate::common::spawn_in_pty(&["rotate-passwords", "--sslmode", "disable"], &stack.env);
    session.exp_string("roles to change (12)").expect("the plan is shown");
    session.exp_string("Rotate the password of these roles now?").expect("the question is asked");
    session.send(answer).expect("answer");
    session.flush().expect("flush");
    session
}

#[test]
fn answering_no_at_the_prompt_changes_nothing() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let env_before = stack.text();
    let before = db_state(&cluster);
    let mut session = rotate_in_pty(&stack, "no\r");
    session.exp_string("declined").expect("says it was declined");
    assert_eq!(crate::common::pty_exit_code(&mut session), 3);
    assert_nothing_changed(&cluster, &stack, &before, &env_before);
}

#[test]
fn answering_yes_at_the_prompt_rotates() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let old = stack.password();
    let mut session = rotate_in_pty(&stack, "yes\r");
    session.exp_string("Restart the services").expect("the report follows");
    assert_eq!(crate::common::pty_exit_code(&mut session), 0);
    assert_ne!(stack.password(), old);
    assert!(block_on(cluster.can_login("supabase_admin", &stack.password())));
}

#[test]
fn the_env_file_must_exist() {
    let dir = tempdir();
    bin()
        .args(["rotate-passwords", "--yes", "--env-file"])
        .arg(dir.path().join("missing.env"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("missing.env"));
}

/// A fake `docker` that records its arguments and defines some of the stack's services.
fn fake_docker(dir: &Path) -> (PathBuf, PathBuf) {
    let bin_dir = dir.join("fakebin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let log = dir.join("docker.log");
    let script = format!(
        "#!/bin/sh\n\
         printf '%s\\n' \"$*\" >> '{log}'\n\
         case \"$*\" in\n\
           *'config --services'*) printf 'db\\nkong\\nauth\\nrest\\nrealtime\\nstorage\\nmeta\\nstudio\\nanalytics\\n' ;;\n\
         esac\n\
         exit 0\n",
        log = log.display()
    );
    let path = bin_dir.join("docker");
    std::fs::write(&path, script).unwrap();
    set_mode(&path, 0o755);
    (bin_dir, log)
}

#[test]
fn restart_recreates_exactly_the_defined_services_that_hold_the_password() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let (bin_dir, log) = fake_docker(stack.dir.path());
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    stack.rotate().args(["--yes", "--restart"]).env("PATH", path).assert().success();
    let calls = std::fs::read_to_string(&log).unwrap();
    let up = calls.lines().find(|l| l.contains(" up ")).expect("docker compose up was run");
    assert!(up.starts_with("compose "), "{up}");
    assert!(up.contains(&format!("--env-file {}", stack.env.display())), "{up}");
    assert!(
        up.ends_with("up -d --force-recreate auth rest realtime storage meta studio analytics"),
        "only the defined services, in order (functions and supavisor are not defined here): {up}"
    );
    assert!(!up.contains("kong") && !up.contains(" db"), "{up}");
    assert!(block_on(cluster.can_login("supabase_admin", &stack.password())));
}

#[test]
fn restart_without_docker_says_how_to_finish_by_hand() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let empty = stack.dir.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    // Refused before BEGIN (SPEC §2, refuse-early): exit 1, nothing changed.
    stack.rotate().args(["--yes", "--restart"]).env("PATH", &empty).assert().code(1).stderr(
        predicate::str::contains("docker is not installed").and(predicate::str::contains("nothing was changed")),
    );
    assert!(block_on(cluster.can_login("supabase_admin", &stack.password())), "the old password still works");
}

/// Starts `rotate-passwords --yes` in the background and returns once its session waits on a
/// lock someone else holds (its own transaction's table lock or the rotation lock).
fn rotation_blocked_on_a_lock(cluster: &Cluster, stack: &Stack) -> std::process::Child {
    let child = std::process::Command::new(crate::common::bin_path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["rotate-passwords", "--yes", "--lock-timeout", "60s", "--sslmode", "disable", "--env-file"])
        .arg(&stack.env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiting =
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pmoves-secrets' AND wait_event_type = 'Lock'";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while cluster.psql(waiting) != "1" {
        assert!(std::time::Instant::now() < deadline, "the rotation never reached the lock");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child
}

#[test]
fn an_interrupt_during_the_transaction_rolls_back_at_once() {
    let Some((cluster, stack)) =
        stack(ClusterOptions::new(), Needs::LocalCluster("the fixture's _supavisor.tenants table"))
    else {
        return;
    };
    let env_before = stack.text();
    let before = db_state(&cluster);
    let holder = block_on(cluster.hold_lock(""));
    let child = rotation_blocked_on_a_lock(&cluster, &stack);
    let started = std::time::Instant::now();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "rolled back without waiting for the lock");
    // 130: the one code of an interrupt, nothing changed.
    assert_eq!(out.status.code(), Some(130));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Interrupted; nothing was changed."),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(holder);
    assert_nothing_changed(&cluster, &stack, &before, &env_before);
}

#[test]
fn a_role_that_is_not_a_superuser_is_told_so() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let env_before = stack.text();
    let url = format!("postgresql://postgres@{}:{}/postgres", cluster.host(), cluster.port());
    stack
        .rotate()
        .arg("--yes")
        .env("PMOVES_SECRETS_DB_URL", url)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a superuser").and(predicate::str::contains("supabase_admin")));
    assert_eq!(stack.text(), env_before);
    assert!(!stack.pending().exists());
}

#[test]
fn sslmode_require_against_a_server_without_tls_fails_cleanly() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::LocalCluster("a server without TLS")) else {
        return;
    };
    let mut cmd = bin();
    cmd.args(["rotate-passwords", "--yes", "--sslmode", "require", "--env-file"]).arg(&stack.env);
    cmd.assert().code(1).stderr(
        predicate::str::contains(format!("{}:{}", cluster.host(), cluster.port())).and(
            predicate::str::contains("TLS").or(predicate::str::contains("SSL")).or(predicate::str::contains("tls")),
        ),
    );
}

#[test]
fn verbose_shows_each_step_without_a_secret() {
    let Some((_cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let old = stack.password();
    let out = stack.rotate().args(["--yes", "-v"]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for step in
        ["connecting as supabase_admin@", "discovered in", "staged", "committed; BEGIN to COMMIT took", "published"]
    {
        assert!(stderr.contains(step), "missing '{step}': {stderr}");
    }
    assert!(!stderr.contains(&old) && !stderr.contains(&stack.password()), "a password leaked: {stderr}");
}

#[test]
fn a_password_in_db_url_is_warned_about_but_not_echoed() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let url = cluster.db_url("supabase_admin", cluster.password(), cluster.main_db());
    let out = stack.rotate().args(["--dry-run", "--db-url", &url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning: --db-url carries a password") && stderr.contains("`ps`"), "{stderr}");
    assert!(!stderr.contains(cluster.password()), "{stderr}");
    // The same URL through the variable is not in argv: no warning.
    let out = stack.rotate().arg("--dry-run").env("PMOVES_SECRETS_DB_URL", &url).output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("--db-url carries a password"));
}

#[test]
fn pg_variables_fill_what_the_env_file_leaves_unset() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    // Only the password in the .env; host and port from libpq's variables.
    std::fs::write(&stack.env, format!("POSTGRES_PASSWORD={}\n", cluster.password())).unwrap();
    stack
        .rotate()
        .arg("--dry-run")
        .env("PGHOST", cluster.host())
        .env("PGPORT", cluster.port().to_string())
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("supabase_admin@{}:{}/postgres", cluster.host(), cluster.port())));
    // The .env wins over PG* variables.
    std::fs::write(
        &stack.env,
        format!(
            "POSTGRES_HOST={}\nPOSTGRES_PORT={}\nPOSTGRES_PASSWORD={}\n",
            cluster.host(),
            cluster.port(),
            cluster.password()
        ),
    )
    .unwrap();
    stack.rotate().arg("--dry-run").env("PGHOST", "192.0.2.1").env("PGPORT", "1").assert().success();
}

#[test]
fn a_symlinked_env_stays_a_symlink_with_its_targets_mode_and_owner() {
    use std::os::unix::fs::MetadataExt as _;
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let real_dir = stack.dir.path().join("secrets");
    std::fs::create_dir(&real_dir).unwrap();
    let real = real_dir.join("stack.env");
    std::fs::rename(&stack.env, &real).unwrap();
    std::os::unix::fs::symlink(&real, &stack.env).unwrap();
    let running_as_root = std::fs::metadata(&real).unwrap().uid() == 0;
    if running_as_root {
        std::os::unix::fs::chown(&real, Some(1234), Some(5678)).unwrap();
    }
    stack.rotate().arg("--yes").assert().success();
    assert!(std::fs::symlink_metadata(&stack.env).unwrap().file_type().is_symlink(), "still a symlink");
    let meta = std::fs::metadata(&real).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    if running_as_root {
        assert_eq!((meta.uid(), meta.gid()), (1234, 5678), "owner kept");
    }
    assert!(block_on(cluster.can_login("supabase_admin", &password_in(&std::fs::read_to_string(&real).unwrap()))));
    assert!(!real_dir.join("stack.env.pending").exists() && !stack.pending().exists());
}

/// What the proxy does to the first session that sends `COMMIT`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CommitFault {
    /// Forward it, then cut the connection before the answer arrives: committed, but the
    /// client cannot know.
    CutAfterForwarding,
    /// Cut the connection instead of forwarding it: the server rolls back.
    CutInstead,
    /// Swallow the batch of `ALTER ROLE`s and keep both connections open without a word: a
    /// server that stops answering (a frozen process) before `COMMIT` is sent.
    GoSilentAtAlterRole,
}

/// The end of the rotation's transaction (discovery's reads end in a `COMMIT` of their own).
const ROTATION_COMMIT: &[u8] = b"RESET ALL; COMMIT";

/// A TCP proxy in front of the cluster that breaks the connection at the rotation's `COMMIT` once.
fn commit_breaking_proxy(upstream_port: u16, fault: CommitFault) -> u16 {
    use std::io::{Read as _, Write as _};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let armed = Arc::new(AtomicBool::new(true));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else { continue };
            let (mut from_client, mut to_server) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut from_server, mut to_client) = (server, client);
            let armed = armed.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = from_client.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let chunk = &buf[..n];
                    if fault == CommitFault::GoSilentAtAlterRole
                        && chunk.windows(10).any(|w| w == b"ALTER ROLE")
                        && armed.swap(false, Ordering::SeqCst)
                    {
                        // Hold both sockets open, forwarding nothing, until the test ends.
                        std::thread::sleep(std::time::Duration::from_secs(600));
                        break;
                    }
                    if fault != CommitFault::GoSilentAtAlterRole
                        && chunk.windows(ROTATION_COMMIT.len()).any(|w| w == ROTATION_COMMIT)
                        && armed.swap(false, Ordering::SeqCst)
                    {
                        // The client's side goes first, so no answer can reach it.
                        let _ = from_client.shutdown(Shutdown::Both);
                        if fault == CommitFault::CutAfterForwarding {
                            // COMMIT arrives late, as over a slow network: the tool must not
                            // judge the outcome while the old session may still commit.
                            std::thread::sleep(std::time::Duration::from_millis(500));
                            let _ = to_server.write_all(chunk);
                            std::thread::sleep(std::time::Duration::from_millis(300));
                        }
                        let _ = to_server.shutdown(Shutdown::Both);
                        break;
                    }
                    if to_server.write_all(chunk).is_err() {
                        break;
                    }
                }
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_server, &mut to_client);
                let _ = to_client.shutdown(Shutdown::Both);
            });
        }
    });
    port
}

fn stack_behind_proxy(cluster: &Cluster, stack: &Stack, fault: CommitFault) {
    let port = commit_breaking_proxy(cluster.port(), fault);
    let text = stack.text().replace(&format!("POSTGRES_PORT={}", cluster.port()), &format!("POSTGRES_PORT={port}"));
    std::fs::write(&stack.env, text).unwrap();
}

#[test]
fn a_connection_lost_after_commit_is_settled_at_once_as_committed() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    stack_behind_proxy(&cluster, &stack, CommitFault::CutAfterForwarding);
    let old = stack.password();
    let out = stack.rotate().args(["--yes", "--format", "json"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("the connection broke during COMMIT"), "{stderr}");
    let new = stack.password();
    assert_ne!(new, old, ".env got the committed password");
    assert!(!stack.pending().exists());
    for role in LOGIN_ROLES {
        assert!(block_on(cluster.can_login(role, &new)), "{role}");
    }
}

#[test]
fn a_connection_lost_before_commit_arrived_is_settled_at_once_as_rolled_back() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    stack_behind_proxy(&cluster, &stack, CommitFault::CutInstead);
    let env_before = stack.text();
    let before = db_state(&cluster);
    let out = stack.rotate().arg("--yes").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("COMMIT") && stderr.contains("nothing was changed"), "{stderr}");
    assert_nothing_changed(&cluster, &stack, &before, &env_before);
}

#[test]
fn a_server_that_stops_answering_before_commit_is_given_up_on_and_nothing_changes() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    stack_behind_proxy(&cluster, &stack, CommitFault::GoSilentAtAlterRole);
    let env_before = stack.text();
    let before = db_state(&cluster);
    let child = std::process::Command::new(crate::common::bin_path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PMOVES_SECRETS_TEST_LIMITS", "server-silence=1s,rollback=200ms")
        .args(["rotate-passwords", "--yes", "--lock-timeout", "100ms", "--sslmode", "disable", "--env-file"])
        .arg(&stack.env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The limit is 4 × --lock-timeout + the server-silence limit (20 s, shortened to 1 s here);
    // the bound below leaves room for a loaded machine.
    let out = crate::common::stack::wait_bounded(child, std::time::Duration::from_secs(90))
        .expect("the run ends although the server went silent");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stopped answering") && stderr.contains("nothing was changed"), "{stderr}");
    assert!(!stack.pending().exists(), "a COMMIT that never left cannot land: the pending file goes");
    assert_eq!(stack.text(), env_before);
    assert_nothing_changed(&cluster, &stack, &before, &env_before);
}

#[test]
fn a_role_that_cannot_log_in_afterwards_is_exit_4_naming_it() {
    let Some((cluster, stack)) =
        stack(ClusterOptions::new(), Needs::LocalCluster("a role attribute the harness does not restore"))
    else {
        return;
    };
    // pgbouncer may have one connection, and a session of its own holds it: nothing the plan
    // can see (a CONNECTION LIMIT 0 or an expired role is said before asking), but its
    // login after COMMIT is refused.
    cluster.psql("ALTER ROLE pgbouncer CONNECTION LIMIT 1");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _session = runtime.block_on(cluster.connect("pgbouncer", cluster.password(), cluster.main_db())).unwrap();
    let out = stack.rotate().args(["--yes", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pgbouncer") && stderr.contains("To recover"), "{stderr}");
    let report = json_of(&out);
    let failed: Vec<&Value> = report["verification"].as_array().unwrap().iter().filter(|v| v["ok"] == false).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["role"], "pgbouncer");
    // The rotation itself stands and .env agrees with the database.
    assert!(block_on(cluster.can_login("supabase_admin", &stack.password())));
}

#[test]
fn a_rotation_that_committed_meanwhile_stops_this_one_unchanged() {
    let Some((cluster, stack)) = stack(ClusterOptions::new(), Needs::OptionsOnly) else { return };
    let env_before = stack.text();
    // Another rotation holds the lock while this one plans...
    let holder = block_on(cluster.hold_lock(crate::rotate_db::ROTATION_LOCK_SQL));
    let child = rotation_blocked_on_a_lock(&cluster, &stack);
    // ...and commits a change of its own before releasing it.
    cluster.psql("ALTER ROLE anon PASSWORD 'changed-by-another-rotation'");
    let before = db_state(&cluster);
    drop(holder);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("another rotation") && stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(db_state(&cluster).verifiers, before.verifiers, "this run changed nothing");
    assert_eq!(stack.text(), env_before);
    assert!(!stack.pending().exists());
}
