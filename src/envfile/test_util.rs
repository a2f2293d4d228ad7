//! Helpers shared by the unit tests of the `envfile` modules.

use std::fs::{self, File, Permissions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::EnvFile;

pub(super) fn parse(text: &str) -> EnvFile {
    EnvFile::parse(text, None).expect("test input parses")
}

pub(super) fn rendered(file: &EnvFile) -> String {
    file.render().to_string()
}

pub(super) fn set(text: &str, key: &str, value: &str) -> String {
    let mut file = parse(text);
    file.set(key, value).expect("valid key");
    rendered(&file)
}

/// Whether this process can bypass file permissions (root, CAP_DAC_OVERRIDE).
pub(super) fn bypasses_permissions(dir: &Path) -> bool {
    let probe = dir.join("probe-dir");
    fs::create_dir(&probe).expect("create probe dir");
    fs::set_permissions(&probe, Permissions::from_mode(0o555)).expect("chmod");
    let bypass = File::create(probe.join("x")).is_ok();
    fs::set_permissions(&probe, Permissions::from_mode(0o755)).expect("chmod");
    bypass
}

pub(super) fn is_root() -> bool {
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

pub(super) fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub(super) fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").mode() & 0o7777
}

/// Reports the running test as skipped, with why, on the process's stderr (libtest captures
/// `eprintln!` of a passing test, so it would never be seen). The name is the test thread's.
pub(super) fn skipped(why: &str) {
    use std::io::Write as _;
    let thread = std::thread::current();
    let _ = writeln!(std::io::stderr(), "SKIPPED: {}: {why}", thread.name().unwrap_or("a test"));
}

/// The `.env` under `env`'s lock as it is now (empty when there is none): the base a test stages
/// a rotation from.
pub(super) fn current(env: &super::LockedEnv) -> EnvFile {
    env.read().expect("read").unwrap_or_default()
}
