//! Bounded, honest, refuse-early: no phase waits for ever,
//! what could fail after `COMMIT` is checked before `BEGIN`, and no error echoes a password.

use std::net::TcpListener;
use std::time::Duration;

use crate::common::block_on;
use crate::common::stack::{local_cluster, stderr_of, verifiers, wait_bounded, Stack};
use crate::common::{bin, tempdir};

/// Shortens the binary's time limits (test builds only), so no test waits on a production one.
const LIMITS_VAR: &str = "PMOVES_SECRETS_TEST_LIMITS";

/// A peer that accepts TCP connections and never says a word; returns its port.
fn silent_peer() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// A `.env` pointing at `127.0.0.1:port`.
fn env_at(port: u16) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempdir();
    let env = dir.path().join(".env");
    std::fs::write(&env, format!("POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT={port}\nPOSTGRES_PASSWORD=silentpeer0123\n"))
        .unwrap();
    (dir, env)
}

fn process(args: &[&str], env: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(crate::common::bin_path());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .args(args)
        .arg("--env-file")
        .arg(env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

#[test]
fn a_peer_that_accepts_and_never_answers_does_not_hang_rotation() {
    let (_dir, env) = env_at(silent_peer());
    let child = process(&["rotate-passwords", "--yes"], &env).env(LIMITS_VAR, "connect=300ms").spawn().unwrap();
    let out = wait_bounded(child, Duration::from_secs(30)).expect("rotate-passwords hung on a silent peer");
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("127.0.0.1"), "{}", stderr_of(&out));
}

#[test]
fn a_peer_that_accepts_and_never_answers_does_not_hang_check() {
    let (_dir, env) = env_at(silent_peer());
    let child = process(&["check", "--db"], &env).env(LIMITS_VAR, "connect=300ms").spawn().unwrap();
    let out = wait_bounded(child, Duration::from_secs(30)).expect("check --db hung on a silent peer");
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
}

#[test]
fn a_locked_analytics_table_bounds_discovery_by_the_lock_timeout() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    let (env_before, db_before) = (stack.text(), verifiers(&cluster));
    let holder = block_on(cluster.hold_lock("ALTER TABLE _analytics.source_backends ADD COLUMN held integer"));
    let child = stack.rotate_process(&["--yes", "--lock-timeout", "1s"]).spawn().unwrap();
    let out = wait_bounded(child, Duration::from_secs(20)).expect("discovery waited for the lock for ever");
    drop(holder);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("lock"), "{}", stderr_of(&out));
    assert_eq!(stack.text(), env_before);
    assert!(!stack.pending().exists());
    assert_eq!(verifiers(&cluster), db_before);
}

#[test]
fn a_locked_analytics_table_does_not_hang_check() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    let holder = block_on(cluster.hold_lock("ALTER TABLE _analytics.source_backends ADD COLUMN held integer"));
    let mut cmd = std::process::Command::new(crate::common::bin_path());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(LIMITS_VAR, "lock=500ms")
        .args(["check", "--db", "--sslmode", "disable", "--env-file"])
        .arg(&stack.env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = wait_bounded(cmd.spawn().unwrap(), Duration::from_secs(30)).expect("check --db waited for ever");
    drop(holder);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr_of(&out));
    assert!(said.contains("analytics-not-checked"), "{said}");
}

#[test]
fn restart_without_docker_compose_is_refused_before_anything_changes() {
    let Some(cluster) = local_cluster() else {
        return;
    };
    let stack = Stack::new(&cluster);
    let (env_before, db_before) = (stack.text(), verifiers(&cluster));
    let empty = stack.dir.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let out = stack.rotate().args(["--yes", "--restart"]).env("PATH", &empty).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("docker"), "{}", stderr_of(&out));
    assert_eq!(stack.text(), env_before);
    assert!(!stack.pending().exists());
    assert_eq!(verifiers(&cluster), db_before, "refused before BEGIN");
}

#[test]
fn restart_with_a_project_without_the_stacks_services_is_refused_before_anything_changes() {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    let (env_before, db_before) = (stack.text(), verifiers(&cluster));
    // A docker whose compose answers, for a project that defines none of the stack's services.
    let bin_dir = stack.dir.path().join("fake-bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let docker = bin_dir.join("docker");
    std::fs::write(
        &docker,
        "#!/bin/sh\ncase \"$*\" in\n  *'compose version'*) echo 'Docker Compose version v2' ;;\n  \
         *'config --services'*) printf 'web\\nworker\\n' ;;\n  *) exit 1 ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = stack.rotate().args(["--yes", "--restart"]).env("PATH", path).output().unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "refused before BEGIN, not exit 4 after COMMIT: {stderr}");
    assert!(stderr.contains("defines none of the services") && stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(stack.text(), env_before);
    assert!(!stack.pending().exists());
    assert_eq!(verifiers(&cluster), db_before, "refused before BEGIN");
}

/// Connection strings that do not parse, each with the password it must never echo.
const MALFORMED: [(&str, &str); 4] = [
    ("postgresql://u:hunter2/xyz@h:notaport/p", "hunter2"),
    ("host=db.example port=notaport password=kvsecret99", "kvsecret99"),
    ("host=db.example password='kv secret98' port=notaport", "secret98"),
    ("postgresql://u@db.example/p?password=qsecret97&port=x", "qsecret97"),
];

#[test]
fn malformed_connection_strings_never_echo_their_password() {
    let dir = tempdir();
    let env = dir.path().join(".env");
    std::fs::write(&env, "POSTGRES_PASSWORD=envpassword0123\n").unwrap();
    for (url, secret) in MALFORMED {
        for command in [&["rotate-passwords", "--dry-run"][..], &["check", "--db"][..]] {
            let out =
                bin().args(command).arg("--env-file").arg(&env).env("PMOVES_SECRETS_DB_URL", url).output().unwrap();
            let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr_of(&out));
            assert!(!out.status.success(), "{command:?} accepted {url}");
            assert!(!said.contains(secret), "{command:?} echoed the password of a malformed string: {said}");
            let flag = bin().args(command).arg("--env-file").arg(&env).args(["--db-url", url]).output().unwrap();
            let said = format!("{}{}", String::from_utf8_lossy(&flag.stdout), stderr_of(&flag));
            assert!(!said.contains(secret), "{command:?} --db-url echoed the password: {said}");
        }
    }
}

#[test]
fn crash_points_exist_in_the_test_build() {
    // The suite runs the dev build, where PMOVES_SECRETS_CRASH_AT is read: a bad value is a
    // usage error before anything else. A release build never reads it (rotate/crash.rs).
    let dir = tempdir();
    let out = bin()
        .args(["rotate-passwords", "--dry-run", "--env-file"])
        .arg(dir.path().join(".env"))
        .env("PMOVES_SECRETS_CRASH_AT", "bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("PMOVES_SECRETS_CRASH_AT"), "{}", stderr_of(&out));
}
/// `chattr +i` on `.env`; `None` (with a note) where the filesystem or the user cannot.
fn make_immutable(path: &std::path::Path, on: bool) -> Option<()> {
    let flag = if on { "+i" } else { "-i" };
    let ok = std::process::Command::new("chattr").arg(flag).arg(path).output().is_ok_and(|o| o.status.success());
    ok.then_some(())
}

#[test]
fn an_env_that_cannot_be_replaced_is_refused_before_begin() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    let (env_before, db_before) = (stack.text(), verifiers(&cluster));
    if make_immutable(&stack.env, true).is_none() {
        crate::common::skipped("chattr +i is not possible here");
        return;
    }
    let out = stack.rotate().arg("--yes").output().unwrap();
    make_immutable(&stack.env, false);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "refused before BEGIN, not exit 4 after COMMIT: {stderr}");
    assert!(!(stderr.contains("nothing was changed") && stderr.contains("has already changed")), "{stderr}");
    assert_eq!(verifiers(&cluster), db_before, "the database is untouched");
    assert_eq!(stack.text(), env_before);
    assert!(!stack.pending().exists());
}

#[test]
fn a_real_run_removes_leftover_temporary_files_and_a_dry_run_keeps_them() {
    let Some(cluster) = local_cluster() else {
        return;
    };
    let stack = Stack::new(&cluster);
    let leftover = stack.dir.path().join("..env.Ab3xY9.tmp");
    std::fs::write(&leftover, "POSTGRES_PASSWORD=a-copy-of-every-secret\n").unwrap();
    let out = stack.rotate().arg("--dry-run").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(leftover.exists(), "--dry-run writes (and removes) nothing");
    let out = stack.rotate().arg("--yes").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!leftover.exists(), "the next real run removes it");
    assert!(stderr_of(&out).contains("..env.Ab3xY9.tmp"), "and says so: {}", stderr_of(&out));
}

#[test]
fn a_missing_env_file_is_refused_without_creating_anything_beside_it() {
    let dir = tempdir();
    let path = dir.path().join("typo.env");
    for extra in [&[][..], &["--dry-run"][..]] {
        let out =
            bin().args(["rotate-passwords", "--yes", "--env-file"]).arg(&path).args(extra).output().expect("runs");
        let message = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{message}");
        assert!(message.contains("typo.env") && message.contains("does not exist"), "{message}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "no lock or pending file was created beside a missing .env: {left:?}");
}

#[test]
fn a_commit_the_server_refuses_is_settled_by_asking_the_database() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    // A deferred constraint trigger on the analytics table fires at COMMIT, so the server
    // answers COMMIT with an error after every statement of the transaction succeeded.
    cluster.psql_in(
        cluster.work_db(),
        "CREATE FUNCTION pg_temp_refuse() RETURNS trigger LANGUAGE plpgsql AS \
         $$BEGIN RAISE EXCEPTION 'refused at commit'; END$$; \
         CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER UPDATE ON _analytics.source_backends \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp_refuse();",
    );
    let (env_before, db_before) = (stack.text(), verifiers(&cluster));
    let out = stack.rotate().args(["--yes", "-v"]).output().unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("COMMIT failed") && stderr.contains("kept the old password"),
        "settled by asking: {stderr}"
    );
    assert_eq!(verifiers(&cluster), db_before, "rolled back");
    assert_eq!(stack.text(), env_before);
    assert!(!stack.pending().exists(), "a pending file the database refused is discarded");
}

#[test]
fn a_report_that_cannot_be_written_after_commit_is_exit_4_not_nothing_changed() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    let old = stack.password();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let out = stack.rotate_process(&["--yes"]).stdout(full).output().expect("runs");
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(4), "the database changed: {stderr}");
    assert!(stderr.contains("report could not be written") && !stderr.contains("nothing"), "{stderr}");
    assert_ne!(stack.password(), old, ".env was published before the report");
    assert!(block_on(cluster.can_login("supabase_admin", &stack.password())));
}
