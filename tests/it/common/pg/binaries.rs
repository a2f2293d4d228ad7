//! The PostgreSQL binaries, and the OS user that runs them.
//!
//! `initdb` and the server refuse to run as root, so as root every server command goes through
//! `runuser` (or `su`) to the `postgres` OS user, which also owns the directories.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::command::clear_pg_env;

/// A command for a server binary, run as the PostgreSQL OS user when we are root.
pub(super) fn server_command(program: &Path) -> Command {
    let mut cmd = match pg_os_user() {
        None => Command::new(program),
        Some(user) => {
            let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
                .into_iter()
                .map(Path::new)
                .find(|p| p.exists());
            match runuser {
                Some(r) => {
                    let mut c = Command::new(r);
                    c.args(["-u", &user.name, "--"]).arg(program);
                    c
                }
                None => {
                    // su -s /bin/sh USER -c 'exec "$0" "$@"' PROGRAM ARGS...
                    let mut c = Command::new("su");
                    c.args(["-s", "/bin/sh", &user.name, "-c", "exec \"$0\" \"$@\""]).arg(program);
                    c
                }
            }
        }
    };
    clear_pg_env(&mut cmd);
    cmd.env("LC_ALL", "C");
    cmd
}

#[derive(Clone)]
struct OsUser {
    name: String,
    uid: u32,
    gid: u32,
}

/// The OS user that owns and runs the servers when the tests run as root; `None` otherwise.
fn pg_os_user() -> Option<OsUser> {
    static U: OnceLock<Option<OsUser>> = OnceLock::new();
    U.get_or_init(|| {
        if effective_uid() != Some(0) {
            return None;
        }
        let name = std::env::var("PMOVES_TEST_PG_OS_USER").unwrap_or_else(|_| "postgres".to_string());
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let found = passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| (f[2].parse().ok(), f[3].parse().ok()))
        });
        match found {
            Some((Some(uid), Some(gid))) => Some(OsUser { name, uid, gid }),
            _ => panic!(
                "pg harness: running as root, but the OS user {name:?} (needed to run initdb and the server) does not exist: run scripts/ensure-postgres.sh or set PMOVES_TEST_PG_OS_USER"
            ),
        }
    })
    .clone()
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

pub(super) fn chown_to_pg_user(path: &Path) -> Result<(), String> {
    if let Some(u) = pg_os_user() {
        std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid))
            .map_err(|e| format!("cannot chown {} to {}: {e}", path.display(), u.name))?;
    }
    Ok(())
}

/// The PostgreSQL server binary directory (search order: the `pg` module docs).
pub fn pg_bin_dir() -> Result<PathBuf, String> {
    static B: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    B.get_or_init(|| {
        let has_initdb = |d: &Path| d.join("initdb").is_file();
        if let Some(d) = std::env::var_os("PMOVES_TEST_PG_BIN") {
            let d = PathBuf::from(d);
            return if has_initdb(&d) {
                Ok(d)
            } else {
                Err(format!("PMOVES_TEST_PG_BIN={} has no initdb", d.display()))
            };
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                has_initdb(&bin).then_some((v, bin))
            })
            .collect();
        versions.sort();
        if let Some((_, d)) = versions.pop() {
            return Ok(d);
        }
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
            let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if out.status.success() && has_initdb(&d) {
                return Ok(d);
            }
        }
        if let Some(d) = find_on_path("initdb").and_then(|p| p.parent().map(Path::to_path_buf)) {
            return Ok(d);
        }
        Err("no PostgreSQL server binaries (initdb) found: run scripts/ensure-postgres.sh, or set PMOVES_TEST_PG_BIN"
            .to_string())
    })
    .clone()
}

/// The server's own `psql`, not Debian's `/usr/bin/psql`: that one is a Perl wrapper
/// (pg_wrapper) whose start-up cost a quarter of the suite's CPU time.
pub fn psql_path() -> PathBuf {
    match pg_bin_dir() {
        Ok(d) if d.join("psql").is_file() => d.join("psql"),
        _ => find_on_path("psql").unwrap_or_else(|| PathBuf::from("psql")),
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Whether the server binaries found by `pg_bin_dir` can load `library` (its `.so` is in the
/// server's package library directory). pgaudit is a separate package
/// (`postgresql-<major>-pgaudit`, installed by `scripts/ensure-postgres.sh`).
pub fn server_library_available(library: &str) -> bool {
    let Ok(bin) = pg_bin_dir() else { return false };
    let from_pg_config = Command::new(bin.join("pg_config"))
        .arg("--pkglibdir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let libdir = from_pg_config.or_else(|| bin.parent().map(|p| p.join("lib")));
    libdir.is_some_and(|dir| dir.join(format!("{library}.so")).is_file())
}
