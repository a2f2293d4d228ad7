//! Where cluster and template directories live, and how they are cleaned up.
//!
//! Every directory carries `owner.pid`, so the next test process can tell a directory of a
//! killed run (stop its server, remove it) from one of a run still going.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use super::binaries::chown_to_pg_user;
use super::server::{pg_ctl_stop, process_alive};

/// Every directory the harness makes starts with this; `sweep_orphans` looks for it.
const DIR_PREFIX: &str = "pmoves-pg-";

/// Where cluster directories go: `PMOVES_TEST_PG_TMPDIR`, else `/dev/shm` when it is a RAM disk
/// with at least 1 GiB free (copying a data directory there takes ~30 ms instead of ~300 ms on
/// ext4), else the system temporary directory.
fn temp_root() -> PathBuf {
    static R: OnceLock<PathBuf> = OnceLock::new();
    R.get_or_init(|| {
        if let Some(d) = std::env::var_os("PMOVES_TEST_PG_TMPDIR") {
            return PathBuf::from(d);
        }
        let shm = Path::new("/dev/shm");
        let free_kib = Command::new("df")
            .args(["-Pk", "/dev/shm"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.lines().nth(1)?.split_whitespace().nth(3)?.parse::<u64>().ok()
            });
        if shm.is_dir() && free_kib.is_some_and(|k| k >= 1024 * 1024) {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    })
    .clone()
}

/// A new `pmoves-pg-<kind><random>` directory owned by the PostgreSQL OS user, marked with our pid.
pub(super) fn make_dir(kind: &str) -> Result<PathBuf, String> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{DIR_PREFIX}{kind}"))
        .tempdir_in(temp_root())
        .map_err(|e| format!("cannot create a directory in {}: {e}", temp_root().display()))?
        .keep();
    std::fs::write(dir.join("owner.pid"), std::process::id().to_string())
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    chown_to_pg_user(&dir)?;
    Ok(dir)
}

pub(super) fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub(super) fn append_file(path: &Path, text: &str) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    f.write_all(text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Template directories are removed when the test process ends, however it ends.
///
/// A `sh` child reads their paths from a pipe whose only writer is this process (std's pipes are
/// close-on-exec, so no other child holds it), and removes them when the pipe reaches its end:
/// the kernel closes it when this process exits, normally or killed. The child ignores the
/// terminal's signals so a Ctrl-C of the run reaches it only through that end. Should the child
/// not start, the directory's `owner.pid` still lets the next test process sweep it.
pub(super) fn remove_at_exit(dir: &Path) {
    static REMOVER: OnceLock<Option<Mutex<ChildStdin>>> = OnceLock::new();
    let remover = REMOVER.get_or_init(|| {
        Command::new("sh")
            .args([
                "-c",
                r#"trap '' INT TERM HUP; while IFS= read -r dir; do set -- "$@" "$dir"; done; rm -rf -- "$@""#,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
            .and_then(|mut child| child.stdin.take())
            .map(Mutex::new)
    });
    if let Some(pipe) = remover {
        let mut pipe = pipe.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(pipe, "{}", dir.display());
    }
}

/// Stops and removes what killed test processes left behind (once per process).
pub(super) fn sweep_orphans() {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| sweep(&temp_root()));
}

/// Stops and removes the harness's directories in `root` whose owner process is gone (a
/// directory kept for a failed test stays a day).
pub fn sweep(root: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = e.path();
        let age = |p: &Path| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default()
        };
        let alive = match std::fs::read_to_string(dir.join("owner.pid")) {
            Ok(pid) => pid.trim().parse().is_ok_and(process_alive),
            Err(_) => age(&dir) < Duration::from_secs(3600),
        };
        if alive {
            continue;
        }
        let data = dir.join("data");
        if data.join("postmaster.pid").exists() {
            let _ = pg_ctl_stop(&data, "immediate");
        }
        let kept = dir.join("KEPT");
        if kept.exists() && age(&kept) < Duration::from_secs(24 * 3600) {
            continue;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
