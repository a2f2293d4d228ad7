//! The `.env` lock of every writer and the root-owned lock file: every wait
//! is bounded (`--lock-wait`) and said, naming the process that holds the lock; a lock file made
//! by a run as root does not lock the `.env`'s owner out.

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::stack::{set_mode, stderr_of, wait_bounded};
use crate::common::{bin_path, skipped, tempdir};

/// The commands that write a `.env`, each with the arguments of a run that would write it.
const WRITERS: &[&[&str]] = &[
    &["generate-keys", "--yes", "--env-file"],
    &["rotate-keys", "stage", "--yes", "--env-file"],
    &["rotate-passwords", "--yes", "--sslmode", "disable", "--env-file"],
];

/// The binary with a clean environment, as in `common::bin`, as a plain process.
fn writer(args: &[&str], env: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(bin_path());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .args(args)
        .arg(env)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `flock(1)` holding `lock` for `seconds`; returns once it holds it. `None` (reported as
/// skipped) without util-linux's `flock`.
fn hold_lock(lock: &Path, seconds: u32) -> Option<Child> {
    let child = Command::new("flock")
        .arg(lock)
        .args(["sleep", &seconds.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        skipped("util-linux's flock is not installed");
        return None;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = File::open(lock).expect("the lock file exists");
        if matches!(probe.try_lock(), Err(fs::TryLockError::WouldBlock)) {
            return Some(child);
        }
        drop(probe);
        assert!(Instant::now() < deadline, "flock never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A stack directory with a `.env` (whose secrets are not filled) and its lock file.
fn stack() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempdir();
    let env = dir.path().join(".env");
    fs::write(&env, "POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT=9\nPOSTGRES_PASSWORD=old-password\n").unwrap();
    let lock = dir.path().join(".env.lock");
    fs::write(&lock, "").unwrap();
    set_mode(&lock, 0o600);
    (dir, env, lock)
}

#[test]
fn every_writer_gives_up_after_lock_wait_and_names_the_holder() {
    let (_dir, env, lock) = stack();
    let before = fs::read(&env).unwrap();
    let Some(holder) = hold_lock(&lock, 60) else { return };
    let holder_pid = holder.id();
    for args in WRITERS {
        let started = Instant::now();
        let child = writer(args, &env, &["--lock-wait", "300ms"]).spawn().unwrap();
        let out = wait_bounded(child, Duration::from_secs(10));
        let elapsed = started.elapsed();
        let Some(out) = out else {
            stop(holder);
            panic!("{args:?} waited for the lock for more than 10 s");
        };
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("waiting up to 300 ms"), "{args:?} says that it waits: {stderr}");
        assert!(stderr.contains(&format!("process {holder_pid} (flock)")), "{args:?} names the holder: {stderr}");
        assert!(stderr.contains("--lock-wait") && stderr.contains("nothing was changed"), "{args:?}: {stderr}");
        assert!(elapsed < Duration::from_secs(5), "{args:?} took {elapsed:?}");
        assert_eq!(fs::read(&env).unwrap(), before, "{args:?} left .env byte-identical");
    }
    stop(holder);
}

#[test]
fn a_writer_goes_on_once_the_holder_lets_go_within_the_wait() {
    let (_dir, env, lock) = stack();
    let Some(holder) = hold_lock(&lock, 1) else { return };
    let child = writer(WRITERS[0], &env, &[]).spawn().unwrap();
    let out = wait_bounded(child, Duration::from_secs(20)).expect("generate-keys finished");
    stop(holder);
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("waiting up to 30 s"), "the default wait is 30 s, and said: {stderr}");
    assert!(fs::read_to_string(&env).unwrap().contains("JWT_SECRET="), "the secrets were filled in");
}

#[test]
fn lock_wait_zero_gives_up_at_once() {
    let (_dir, env, lock) = stack();
    let Some(holder) = hold_lock(&lock, 60) else { return };
    let started = Instant::now();
    let out = writer(WRITERS[1], &env, &["--lock-wait", "0"]).output().unwrap();
    stop(holder);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// The `.env`'s owner in the root-owned-lock test.
const OWNER: u32 = 4321;

/// Runs `generate-keys --env-file` on `env` as `uid` (root when `None`).
fn generate_as(uid: Option<u32>, env: &Path) -> Output {
    let mut cmd = writer(WRITERS[0], env, &[]);
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    cmd.output().unwrap()
}

#[test]
fn a_run_as_root_leaves_a_lock_file_the_env_owner_can_use() {
    if !rustix_is_root() {
        skipped("needs root, to run the tool as root and as the .env's owner");
        return;
    }
    let (dir, env, lock) = stack();
    fs::remove_file(&lock).unwrap();
    std::os::unix::fs::chown(dir.path(), Some(OWNER), Some(OWNER)).unwrap();
    std::os::unix::fs::chown(&env, Some(OWNER), Some(OWNER)).unwrap();
    set_mode(&env, 0o600);
    if !bin_path().metadata().is_ok_and(|m| m.mode() & 0o001 != 0) {
        skipped("the binary is not executable by other users here");
        return;
    }

    let out = generate_as(None, &env);
    assert!(out.status.success(), "as root: {}", stderr_of(&out));
    let meta = fs::metadata(&lock).unwrap();
    assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o777), (OWNER, OWNER, 0o600), "the lock file is the owner's");
    fs::write(&env, "POSTGRES_PASSWORD=old-password\n").unwrap();
    let out = generate_as(Some(OWNER), &env);
    assert!(out.status.success(), "as the .env's owner after a root run: {}", stderr_of(&out));

    // A lock file an earlier version left as root's, 0600: the owner is told what to do, and
    // the next run as root repairs it.
    std::os::unix::fs::chown(&lock, Some(0), Some(0)).unwrap();
    let before = fs::read(&env).unwrap();
    let out = generate_as(Some(OWNER), &env);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("belongs to uid 0") && stderr.contains("chown --reference="), "{stderr}");
    assert_eq!(fs::read(&env).unwrap(), before);
    let out = generate_as(None, &env);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(fs::metadata(&lock).unwrap().uid(), OWNER);
}

fn rustix_is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs `generate-keys --env-file env` in a pty; while it waits for the answer, `edit` rewrites
/// the file as an editor would (no lock); then answers yes. The exit code.
fn generate_with_an_edit_during_the_question(env: &Path, edit: &str) -> i32 {
    let mut session = crate::common::spawn_in_pty(&["generate-keys"], env);
    session.exp_string("with these changes?").expect("the question is asked");
    fs::write(env, edit).unwrap();
    session.send_line("yes").expect("answer");
    session.exp_eof().expect("exits");
    crate::common::pty_exit_code(&mut session)
}

#[test]
fn a_hand_edit_saved_while_the_operator_answers_is_kept() {
    let (_dir, env, _lock) = stack();
    let edited =
        "POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT=9\nPOSTGRES_PASSWORD=old-password\nSITE_URL=https://edited.example\n";
    assert_eq!(generate_with_an_edit_during_the_question(&env, edited), 0);
    let text = fs::read_to_string(&env).unwrap();
    assert!(text.starts_with(edited), "the edit is kept: {text}");
    assert!(text.contains("\nJWT_SECRET="), "and the secrets are filled in");
}

#[test]
fn a_hand_edit_of_a_key_the_run_changes_is_refused_with_nothing_changed() {
    let (_dir, env, _lock) = stack();
    let edited =
        "POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT=9\nPOSTGRES_PASSWORD=old-password\nJWT_SECRET=chosen-by-hand\n";
    assert_eq!(generate_with_an_edit_during_the_question(&env, edited), 1);
    assert_eq!(fs::read_to_string(&env).unwrap(), edited, "byte-identical");
}
