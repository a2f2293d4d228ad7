//! Shared helpers of the integration tests.
//!
//! `bin()` runs the built binary with a cleared environment, so no variable of the machine
//! (PGPASSWORD, PMOVES_SECRETS_DB_URL, NO_COLOR, ...) leaks into a test by accident.

#![allow(dead_code)]

pub mod pg;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The binary under test, with a clean environment and no terminal on stdin.
pub fn bin() -> Command {
    let mut cmd = Command::cargo_bin("pmoves-secrets").expect("the pmoves-secrets binary is built");
    cmd.env_clear();
    cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd.env("HOME", std::env::temp_dir());
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Path of the built binary, for pty-driven tests.
pub fn bin_path() -> PathBuf {
    assert_cmd::cargo::cargo_bin("pmoves-secrets")
}

/// A fresh temporary directory for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("pmoves-secrets-test-").tempdir().expect("temp dir")
}

/// Parses the KEY=value lines of a generated .env (unquoting single-quoted values).
pub fn parse_env(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("has =");
            let v = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

/// Value of `key` in a generated .env text.
pub fn env_value(text: &str, key: &str) -> Option<String> {
    parse_env(text).into_iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Mode bits of a file.
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}
