//! Every prompt, interrupt and end of input through a pseudo-terminal:
//! one plain sentence, the terminal left as it was found, one documented exit code, and the file
//! byte-identical unless the answer was consent.

use std::path::{Path, PathBuf};

use rexpect::session::PtySession;

use crate::common::{bin, pty_exit_code, spawn_in_pty, tempdir};

/// Exit code of an interrupt (Ctrl-C or SIGTERM) at a prompt or during a wait.
const INTERRUPTED: i32 = 130;
/// Exit code of declining, end of input included.
const DECLINED: i32 = 3;

/// A stack directory with a generated `.env`, plus `extra` lines appended.
struct EnvDir {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl EnvDir {
    fn new(asymmetric: bool, edit: impl Fn(String) -> String) -> EnvDir {
        let dir = tempdir();
        let path = dir.path().join(".env");
        let mut cmd = bin();
        cmd.arg("generate-keys");
        if asymmetric {
            cmd.arg("--asymmetric");
        }
        let out = cmd.arg("--output").arg(&path).output().expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, edit(text)).unwrap();
        EnvDir { _dir: dir, path }
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }
}

/// Replaces the value of `key` in `.env` text.
fn with_value(text: &str, key: &str, value: &str) -> String {
    text.lines()
        .map(|line| if line.starts_with(&format!("{key}=")) { format!("{key}={value}") } else { line.to_owned() })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// `generate-keys --env-file` on a file whose `JWT_SECRET` is upstream's demo value: a change
/// that logs every user out.
fn demo_jwt_secret() -> EnvDir {
    EnvDir::new(false, |text| {
        with_value(&text, "JWT_SECRET", "your-super-secret-jwt-token-with-at-least-32-characters-long")
    })
}

/// `generate-keys --env-file` on a file that only lacks `MINIO_ROOT_PASSWORD`: filling a key
/// nothing holds yet breaks nobody.
fn missing_minio_password() -> EnvDir {
    EnvDir::new(false, |text| {
        text.lines().filter(|l| !l.starts_with("MINIO_ROOT_PASSWORD=")).collect::<Vec<_>>().join("\n") + "\n"
    })
}

fn start(args: &[&str], env: &Path, question: &str) -> PtySession {
    let mut session = spawn_in_pty(args, env);
    session.exp_string(question).unwrap_or_else(|e| panic!("the question {question:?} is asked: {e}"));
    session
}

/// Everything the session printed until it ended, and its exit code.
fn finish(mut session: PtySession) -> (String, i32) {
    let said = session.exp_eof().expect("the process ends");
    let code = pty_exit_code(&mut session);
    (said, code)
}

/// The terminal is left as found: a cursor hidden by the prompt is shown again.
fn assert_terminal_restored(said: &str) {
    let hidden = said.rfind("\u{1b}[?25l");
    assert!(hidden.is_none() || said.rfind("\u{1b}[?25h") > hidden, "cursor left hidden: {said:?}");
}

// ------------------------------------------------------------------- generate-keys --env-file

#[test]
fn ctrl_c_at_generate_keys_prompt_is_one_sentence_exit_130_and_changes_nothing() {
    let env = missing_minio_password();
    let before = env.bytes();
    let mut session = spawn_on_xterm(&["generate-keys"], &env.path);
    session.exp_string("Update").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    session.send_control('c').unwrap();
    let (said, code) = finish(session);
    assert_eq!(code, INTERRUPTED, "{said}");
    assert!(said.contains("\nInterrupted; nothing was changed."), "a sentence on a line of its own: {said:?}");
    assert_terminal_restored(&said);
    assert_eq!(env.bytes(), before);
}

#[test]
fn ctrl_d_at_generate_keys_prompt_declines() {
    let env = missing_minio_password();
    let before = env.bytes();
    let mut session = start(&["generate-keys"], &env.path, "[y/N");
    session.send_control('d').unwrap();
    let (said, code) = finish(session);
    assert_eq!(code, DECLINED, "{said}");
    assert!(said.contains("No answer at the confirmation (end of input); nothing was changed."), "{said:?}");
    assert_eq!(env.bytes(), before);
}

/// As [`spawn_in_pty`], on a terminal that can do everything (a prompt library reads single
/// keys only on such a terminal).
fn spawn_on_xterm(args: &[&str], env_file: &Path) -> PtySession {
    let mut cmd = std::process::Command::new(crate::common::bin_path());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("TERM", "xterm-256color")
        .args(args)
        .arg("--env-file")
        .arg(env_file);
    rexpect::session::spawn_command(cmd, Some(30_000)).expect("pty")
}

#[test]
fn filling_a_missing_key_takes_y_and_enter_not_one_keypress() {
    let env = missing_minio_password();
    let before = env.bytes();
    let mut session = spawn_on_xterm(&["generate-keys"], &env.path);
    session.exp_string("Update").unwrap();
    session.send("y").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(env.bytes(), before, "one keypress changed the file");
    session.send_line("").unwrap();
    let (said, code) = finish(session);
    assert_eq!(code, 0, "{said}");
    assert_ne!(env.bytes(), before);
}

#[test]
fn a_new_jwt_secret_names_the_consequence_and_takes_a_typed_yes() {
    let env = demo_jwt_secret();
    let before = env.bytes();
    let mut session = spawn_in_pty(&["generate-keys"], &env.path);
    let before_question = session.exp_string("type yes and press Enter").expect("a typed question");
    assert!(before_question.contains("a new JWT_SECRET: every signed-in user is logged out"), "{before_question}");
    session.send_line("y").unwrap();
    let (said, code) = finish(session);
    assert_eq!(code, DECLINED, "y alone is no consent here: {said}");
    assert_eq!(env.bytes(), before);

    let mut session = start(&["generate-keys"], &env.path, "type yes and press Enter");
    session.send_line("yes").unwrap();
    let (said, code) = finish(session);
    assert_eq!(code, 0, "{said}");
    assert_ne!(env.bytes(), before);
}

// ----------------------------------------------------------------------- the typed prompt

/// The commands with a typed prompt that need no database: a signing-key phase, and
/// rotate-secrets of a key with no copy in the database (rotate-passwords': rotate_prompt.rs).
const TYPED_PROMPTS: &[&[&str]] = &[&["rotate-keys", "stage"], &["rotate-secrets", "SECRET_KEY_BASE"]];

#[test]
fn ctrl_c_at_the_typed_prompt_is_one_sentence_exit_130_and_changes_nothing() {
    for args in TYPED_PROMPTS {
        let env = EnvDir::new(true, |text| text);
        let before = env.bytes();
        let mut session = start(args, &env.path, "type yes");
        session.send("ye").unwrap();
        session.send_control('c').unwrap();
        let (said, code) = finish(session);
        assert_eq!(code, INTERRUPTED, "{args:?}: {said}");
        assert!(said.contains("\nInterrupted; nothing was changed."), "{args:?}: {said:?}");
        assert_eq!(said.matches("nothing was changed").count(), 1, "said once: {said}");
        assert_terminal_restored(&said);
        assert_eq!(env.bytes(), before, "{args:?}");
    }
}

#[test]
fn ctrl_d_at_the_typed_prompt_declines_at_once() {
    for args in TYPED_PROMPTS {
        let env = EnvDir::new(true, |text| text);
        let before = env.bytes();
        let mut session = start(args, &env.path, "type yes");
        session.send_control('d').unwrap();
        let (said, code) = finish(session);
        assert_eq!(code, DECLINED, "{args:?}: {said}");
        assert!(
            said.contains("\nNo answer at the confirmation (end of input); nothing was changed."),
            "{args:?}: {said:?}"
        );
        assert_eq!(env.bytes(), before, "{args:?}");
    }
}

#[test]
fn sigterm_at_the_typed_prompt_is_an_interrupt_too() {
    for args in TYPED_PROMPTS {
        let env = EnvDir::new(true, |text| text);
        let before = env.bytes();
        let session = start(args, &env.path, "type yes");
        nix::sys::signal::kill(session.process.child_pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let (said, code) = finish(session);
        assert_eq!(code, INTERRUPTED, "{args:?}: {said}");
        assert!(said.contains("Interrupted; nothing was changed."), "{args:?}: {said:?}");
        assert_eq!(env.bytes(), before, "{args:?}");
    }
}

// ------------------------------------------------------------------------------ lock waits

#[test]
fn ctrl_c_while_waiting_for_the_env_lock_is_one_sentence_and_exit_130() {
    for args in [
        &["generate-keys", "--yes", "--only", "SECRET_KEY_BASE"][..],
        &["rotate-keys", "stage", "--yes"],
        &["rotate-passwords", "--yes", "--sslmode", "disable"],
        &["rotate-secrets", "SECRET_KEY_BASE", "--yes"],
    ] {
        let env = EnvDir::new(true, |text| text);
        let before = env.bytes();
        // Held by this process: an open file description of the lock file with its flock.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(env.path.with_file_name(".env.lock"))
            .unwrap();
        lock.lock().unwrap();
        let mut session = start(args, &env.path, "to release the lock on");
        session.send_control('c').unwrap();
        let (said, code) = finish(session);
        assert_eq!(code, INTERRUPTED, "{args:?}: {said}");
        assert!(said.contains("\nInterrupted; nothing was changed."), "{args:?}: {said:?}");
        assert_eq!(said.matches("nothing was changed").count(), 1, "{said}");
        assert_eq!(env.bytes(), before);
        drop(lock);
    }
}
