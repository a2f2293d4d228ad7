//! Settling a pending file left by an interrupted rotation: wait
//! for a rotation still in flight where it runs, never write during `--dry-run`, compare
//! passwords as the server does (SASLprep).

use std::time::{Duration, Instant};

use crate::common::block_on;
use crate::common::pg::ROTATED_ROLES;
use crate::common::stack::{local_cluster, stderr_of, verifiers, wait_bounded, Stack, ROTATION_LOCK_SQL};

const PENDING_PASSWORD: &str = "0123456789abcdef0123456789abcdef";

/// Gives every rotated role `password` (plaintext: the server computes the verifiers).
fn set_all_passwords_sql(password: &str) -> String {
    ROTATED_ROLES.iter().map(|r| format!("ALTER ROLE {r} PASSWORD '{password}';\n")).collect()
}

#[test]
fn recovery_waits_for_a_rotation_still_committing_in_the_work_database() {
    let Some(cluster) = local_cluster() else {
        return;
    };
    let stack = Stack::new(&cluster);
    stack.write_pending(PENDING_PASSWORD);
    // An earlier rotation whose client died during COMMIT: its session still holds the
    // rotation lock and commits the pending password once the test lets it go (an advisory
    // lock the test holds), which it does only after seeing the new run wait for that lock.
    let gate = block_on(cluster.hold_lock("SELECT pg_advisory_xact_lock(1616)"));
    let in_flight = format!(
        "BEGIN; {ROTATION_LOCK_SQL}; {} SELECT pg_advisory_xact_lock(1616); COMMIT;",
        set_all_passwords_sql(PENDING_PASSWORD)
    );
    let rotation_lock = |granted: bool| {
        format!(
            "SELECT count(*) FROM pg_locks WHERE relation = 'pg_catalog.pg_authid'::regclass \
             AND mode = 'ShareUpdateExclusiveLock' AND granted = {granted}"
        )
    };
    let wait_for = |sql: &str, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while cluster.psql(sql) != "1" {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    std::thread::scope(|scope| {
        let committer = scope.spawn(|| cluster.psql(&in_flight));
        wait_for(&rotation_lock(true), "the in-flight transaction never took the rotation lock");
        let run = stack.rotate_process(&["--yes"]).spawn().unwrap();
        wait_for(&rotation_lock(false), "the new run never waited for the rotation lock");
        drop(gate);
        let out = wait_bounded(run, Duration::from_secs(60)).expect("the new run ends once the rotation committed");
        committer.join().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
    });
    assert_eq!(stack.password(), PENDING_PASSWORD, ".env holds the password the database committed");
    assert!(!stack.pending().exists());
    assert!(block_on(cluster.can_login("supabase_admin", PENDING_PASSWORD)));
}

#[test]
fn a_dry_run_leaves_an_uncommitted_pending_file_alone_and_says_what_a_run_would_do() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    stack.write_pending(PENDING_PASSWORD);
    let (env_before, pending_before, db_before) =
        (stack.text(), std::fs::read_to_string(stack.pending()).unwrap(), verifiers(&cluster));
    let out = stack.rotate().arg("--dry-run").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr_of(&out));
    assert!(said.contains(".env.pending") && said.contains("would discard"), "{said}");
    assert_eq!(std::fs::read_to_string(stack.pending()).unwrap(), pending_before, "the pending file is kept");
    assert_eq!(stack.text(), env_before);
    assert_eq!(verifiers(&cluster), db_before);
}

#[test]
fn a_dry_run_does_not_publish_a_committed_pending_file() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    stack.write_pending(PENDING_PASSWORD);
    cluster.psql(&set_all_passwords_sql(PENDING_PASSWORD));
    let (env_before, pending_before) = (stack.text(), std::fs::read_to_string(stack.pending()).unwrap());
    let out = stack.rotate().arg("--dry-run").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr_of(&out));
    assert!(said.contains("would publish"), "{said}");
    assert_eq!(stack.text(), env_before, "--dry-run never writes .env");
    assert_eq!(std::fs::read_to_string(stack.pending()).unwrap(), pending_before, "nor removes the pending file");
}

#[test]
fn an_old_password_that_saslprep_maps_still_settles_an_interrupted_run() {
    let Some(cluster) = local_cluster() else {
        return;
    };
    // U+00A0 (no-break space) maps to a space and U+FB01 (the "fi" ligature) to "fi": the
    // server stores the verifier of the mapped password.
    let old = "old\u{a0}pa\u{fb01}ss-0123456789";
    cluster.psql(&format!("ALTER ROLE supabase_admin PASSWORD '{old}';"));
    assert!(block_on(cluster.can_login("supabase_admin", old)));
    let stack = Stack::with_password(&cluster, old, "");
    let crashed = stack.rotate().arg("--yes").env("PMOVES_SECRETS_CRASH_AT", "after-stage").output().unwrap();
    assert!(!crashed.status.success());
    assert!(stack.pending().exists(), "the crash left the pending file");

    let out = stack.rotate().arg("--yes").output().unwrap();
    assert!(out.status.success(), "the rerun settles it as never committed: {}", stderr_of(&out));
    assert!(!stack.pending().exists());
    let new = stack.password();
    assert_ne!(new, old);
    assert!(block_on(cluster.can_login("supabase_admin", &new)));
}

#[test]
fn a_symlink_at_the_pending_name_is_refused_and_left_alone() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    let foreign = stack.dir.path().join("foreign.env");
    std::fs::write(&foreign, format!("POSTGRES_PASSWORD={PENDING_PASSWORD}\n")).unwrap();
    std::os::unix::fs::symlink(&foreign, stack.pending()).unwrap();
    let (env_before, db_before) = (stack.text(), verifiers(&cluster));
    for args in [&["--dry-run"][..], &["--yes"][..]] {
        let out = stack.rotate().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains(".env.pending"), "{}", stderr_of(&out));
    }
    let meta = std::fs::symlink_metadata(stack.pending()).unwrap();
    assert!(meta.file_type().is_symlink(), "the symlink is left where it is");
    assert_eq!(stack.text(), env_before);
    assert_eq!(verifiers(&cluster), db_before);
}

#[test]
fn a_pending_file_that_cannot_be_read_is_kept_and_nothing_changes() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    // Not text: whatever it was, it may hold the live password, so no run may discard it.
    std::fs::write(stack.pending(), b"POSTGRES_PASSWORD=\xff\xfe\n").unwrap();
    let (env_before, db_before) = (stack.text(), verifiers(&cluster));
    let out = stack.rotate().arg("--yes").output().unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(".env.pending") && stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(std::fs::read(stack.pending()).unwrap(), b"POSTGRES_PASSWORD=\xff\xfe\n", "kept as it was");
    assert_eq!(stack.text(), env_before);
    assert_eq!(verifiers(&cluster), db_before);
}
