//! The live rotation's confirmation: a typed answer and Enter,
//! never one keypress; declining is exit 3 in plain words and keeps a pending file.

use crate::common::block_on;
use crate::common::stack::{local_cluster, verifiers, Stack};
use crate::common::{pty_exit_code, spawn_in_pty};

/// Starts the rotation in a pseudo-terminal and waits for the question.
fn prompt(stack: &Stack) -> rexpect::session::PtySession {
    let mut session = spawn_in_pty(&["rotate-passwords", "--sslmode", "disable"], &stack.env);
    session.exp_string("Rotate the password of these roles now?").expect("the question is asked");
    session
}

#[test]
fn a_single_y_and_enter_declines_in_plain_words() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    let (env_before, db_before) = (stack.text(), verifiers(&cluster));
    let mut session = prompt(&stack);
    session.send_line("y").expect("answer");
    let said = session.exp_eof().expect("exits");
    assert_eq!(pty_exit_code(&mut session), 3);
    assert!(said.contains("nothing was changed"), "{said}");
    assert!(!said.contains("error"), "declining is not an error: {said}");
    assert_eq!(stack.text(), env_before);
    assert_eq!(verifiers(&cluster), db_before);
}

#[test]
fn a_typed_yes_and_enter_rotates() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    let old = stack.password();
    let mut session = prompt(&stack);
    session.send_line("yes").expect("answer");
    session.exp_string("Restart the services").expect("the report follows");
    assert_eq!(pty_exit_code(&mut session), 0);
    assert_ne!(stack.password(), old);
    assert!(block_on(cluster.can_login("supabase_admin", &stack.password())));
}

#[test]
fn declining_keeps_a_pending_file_from_an_interrupted_run() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    stack.write_pending("0123456789abcdef0123456789abcdef");
    let pending_before = std::fs::read_to_string(stack.pending()).unwrap();
    let mut session = prompt(&stack);
    session.send_line("no").expect("answer");
    session.exp_eof().expect("exits");
    assert_eq!(pty_exit_code(&mut session), 3);
    assert_eq!(
        std::fs::read_to_string(stack.pending()).ok().as_deref(),
        Some(pending_before.as_str()),
        "a pending file is discarded only after the confirmation"
    );
}

/// Every pre-flight runs before the question: an operator who types "yes" is never refused
/// afterwards. An immutable `.env` (which the publication could not replace) is refused first.
#[test]
fn an_env_that_could_not_be_published_is_refused_before_the_question() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    let (env_before, db_before) = (stack.text(), verifiers(&cluster));
    let chattr = |flag: &str| std::process::Command::new("chattr").arg(flag).arg(&stack.env).status();
    if !chattr("+i").is_ok_and(|status| status.success()) {
        crate::common::skipped("chattr +i is not possible here");
        return;
    }
    let mut session = spawn_in_pty(&["rotate-passwords", "--sslmode", "disable"], &stack.env);
    let said = session.exp_eof().expect("exits");
    let code = pty_exit_code(&mut session);
    chattr("-i").expect("chattr -i");
    assert!(!said.contains("Rotate the password of these roles now?"), "asked before refusing: {said}");
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("immutable"), "{said}");
    assert_eq!(stack.text(), env_before);
    assert_eq!(verifiers(&cluster), db_before);
}
