//! What `rotate-passwords` says around its confirmation: the names the
//! typed prompt accepts, Ctrl-C there, a dry run against a database that does not exist, and a
//! discarded pending file reported once.

use crate::common::stack::{local_cluster, verifiers, Stack};
use crate::common::{pty_exit_code, spawn_in_pty};

#[test]
fn the_prompt_names_and_accepts_the_stacks_own_database_name() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    let old = stack.password();
    let mut session = spawn_in_pty(&["rotate-passwords", "--sslmode", "disable"], &stack.env);
    let question = format!("type yes or {} or {} and press Enter", cluster.work_db(), cluster.main_db());
    session.exp_string(&question).unwrap_or_else(|e| panic!("{question}: {e}"));
    session.send_line(cluster.main_db()).unwrap();
    session.exp_eof().unwrap();
    assert_eq!(pty_exit_code(&mut session), 0);
    assert_ne!(stack.password(), old, "the POSTGRES_DB name is consent");
}

#[test]
fn ctrl_c_at_the_rotation_prompt_is_one_sentence_and_exit_130() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    let (env_before, db_before) = (stack.text(), verifiers(&cluster));
    let mut session = spawn_in_pty(&["rotate-passwords", "--sslmode", "disable"], &stack.env);
    session.exp_string("and press Enter").unwrap();
    session.send_control('c').unwrap();
    let said = session.exp_eof().unwrap();
    assert_eq!(pty_exit_code(&mut session), 130, "{said}");
    assert!(said.contains("\nInterrupted; nothing was changed."), "{said:?}");
    assert_eq!(stack.text(), env_before);
    assert_eq!(verifiers(&cluster), db_before);
    assert!(!stack.pending().exists());
}

#[test]
fn a_dry_run_against_a_database_that_does_not_exist_fails() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    let text = stack.text().replace(&format!("POSTGRES_DB={}", cluster.main_db()), "POSTGRES_DB=no_such_db");
    std::fs::write(&stack.env, text).unwrap();
    let out = stack.rotate().arg("--dry-run").output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("no_such_db") && said.contains("does not exist"), "{said}");
    assert!(said.contains("POSTGRES_DB"), "names where the name came from: {said}");
}

#[test]
fn a_discarded_pending_file_is_reported_once() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    // A pending password the database never accepted: an uncommitted rotation.
    stack.write_pending("0123456789abcdef0123456789abcdef");
    let out = stack.rotate().arg("--yes").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(said.to_lowercase().matches("discarded").count(), 1, "{said}");
}
