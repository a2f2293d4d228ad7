//! The process protects the passwords it holds (SPEC §2): it is not dumpable
//! and writes no core file, even when the operator's shell allows core files.

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{bin_path, tempdir};

/// An unprivileged uid for the child when the tests run as root: the owner of `/proc/<pid>`
/// shows the dumpable flag only when the process's own uid is not root.
const NOBODY: u32 = 65534;

fn running_as_root() -> bool {
    fs::metadata("/proc/self").map(|meta| meta.uid() == 0).unwrap_or(false)
}

/// Starts `generate-keys --env-file` on a `.env` whose lock the test holds, so the child waits
/// in `flock`; `ulimit -c unlimited` first, as an operator's shell might. Returns the child and
/// the held lock (dropping it lets the child go on).
fn blocked_child(dir: &Path) -> (Child, File) {
    let env = dir.join(".env");
    fs::write(&env, "JWT_SECRET=x\n").expect("write");
    let lock_path = dir.join(".env.lock");
    let lock = File::create(&lock_path).expect("lock file");
    lock.lock().expect("hold the lock");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -c unlimited 2>/dev/null || ulimit -c hard; exec \"$0\" generate-keys --env-file .env --only JWT_SECRET")
        .arg(bin_path())
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if running_as_root() {
        for path in [dir, env.as_path(), lock_path.as_path()] {
            std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).expect("chown");
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        cmd.uid(NOBODY).gid(NOBODY);
    }
    (cmd.spawn().expect("spawn"), lock)
}

/// `/proc/<pid>/limits`' core line, once the child has exec'd our binary and passed
/// `forbid_core_dumps` (or after 10 s, whatever it says then).
fn core_limit_once_started(pid: u32) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
        let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
        let core = limits.lines().find(|line| line.starts_with("Max core file size")).unwrap_or_default().to_owned();
        let started = exe.is_some_and(|exe| exe.ends_with("pmoves-secrets"));
        // Waiting in flock means main has run its first line.
        let waiting = fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w.contains("lock"))
            || fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") S "));
        if (started && waiting) || Instant::now() > deadline {
            return core;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_process_is_not_dumpable_and_its_core_limit_is_zero() {
    let dir = tempdir();
    let (mut child, lock) = blocked_child(dir.path());
    let pid = child.id();
    let core = core_limit_once_started(pid);
    // Non-dumpable: the kernel gives /proc/<pid> to root instead of the process's own uid.
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uid_line = status.lines().find(|line| line.starts_with("Uid:")).unwrap_or_default().to_owned();
    let proc_owner = fs::metadata(format!("/proc/{pid}/status")).expect("stat").uid();
    drop(lock);
    let _ = child.wait();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(fields.get(4..6), Some(&["0", "0"][..]), "RLIMIT_CORE soft and hard: {core:?}");
    let own_uid: u32 = uid_line.split_whitespace().nth(1).and_then(|uid| uid.parse().ok()).expect("uid");
    assert_ne!(own_uid, 0, "the child runs unprivileged, so /proc ownership shows the flag");
    assert_eq!(proc_owner, 0, "/proc/{pid} belongs to the process's uid {own_uid}: it is dumpable");
}

#[test]
fn a_crash_writes_no_core_file_even_with_an_unlimited_core_limit() {
    let dir = tempdir();
    let (mut child, lock) = blocked_child(dir.path());
    core_limit_once_started(child.id());
    // SIGQUIT's default action is to dump core.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGQUIT)
        .expect("kill");
    let status = child.wait().expect("wait");
    drop(lock);
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), Some(nix::sys::signal::Signal::SIGQUIT as i32), "{status:?}");
    assert!(!status.core_dumped(), "the kernel dumped core");
    let cores: Vec<_> = fs::read_dir(dir.path())
        .expect("read dir")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("core"))
        .map(|entry| entry.file_name())
        .collect();
    assert!(cores.is_empty(), "core files: {cores:?}");
}
