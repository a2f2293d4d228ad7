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

/// Reports the running test as skipped, with why, where `cargo test` shows it: straight to the
/// process's stderr, which the test harness does not capture (`eprintln!` output of a passing
/// test would be hidden). The test's name is its thread's, as libtest names it.
pub fn skipped(why: &str) {
    use std::io::Write as _;
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "SKIPPED: {name}: {why}");
}

/// In `PMOVES_TEST_DATABASE_URL` mode, reports the running test skipped because it `needs` a
/// local cluster, and returns true (the test then returns); false otherwise.
pub fn skip_on_external_database(needs: &str) -> bool {
    if pg::external_mode() {
        skipped(&format!("needs a local cluster ({needs})"));
        return true;
    }
    false
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

/// The shape of a value of SPEC §1.
#[derive(Clone, Copy, Debug)]
pub enum Alphabet {
    /// Lowercase hex.
    Hex,
    /// Standard, padded base64.
    Base64,
}

/// Every symmetric secret of SPEC §1 with its exact length and alphabet.
pub const SECRET_SHAPES: &[(&str, usize, Alphabet)] = &[
    ("JWT_SECRET", 40, Alphabet::Base64),
    ("SECRET_KEY_BASE", 64, Alphabet::Base64),
    ("VAULT_ENC_KEY", 32, Alphabet::Hex),
    ("PG_META_CRYPTO_KEY", 32, Alphabet::Base64),
    ("REALTIME_DB_ENC_KEY", 16, Alphabet::Hex),
    ("LOGFLARE_PUBLIC_ACCESS_TOKEN", 32, Alphabet::Base64),
    ("LOGFLARE_PRIVATE_ACCESS_TOKEN", 32, Alphabet::Base64),
    ("S3_PROTOCOL_ACCESS_KEY_ID", 32, Alphabet::Hex),
    ("S3_PROTOCOL_ACCESS_KEY_SECRET", 64, Alphabet::Hex),
    ("MINIO_ROOT_PASSWORD", 32, Alphabet::Hex),
    ("POSTGRES_PASSWORD", 32, Alphabet::Hex),
    ("DASHBOARD_PASSWORD", 32, Alphabet::Hex),
];

/// Asserts that every symmetric secret, as `lookup` finds it, has its exact length and
/// alphabet, and that `DASHBOARD_PASSWORD` has a letter.
pub fn assert_secret_shapes(lookup: impl Fn(&str) -> Option<String>) {
    use base64::Engine as _;
    for (key, len, alphabet) in SECRET_SHAPES {
        let value = lookup(key).unwrap_or_else(|| panic!("{key} is missing"));
        assert_eq!(value.len(), *len, "{key} length");
        match alphabet {
            Alphabet::Hex => {
                assert!(value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{key} is not lowercase hex")
            }
            Alphabet::Base64 => assert!(
                base64::engine::general_purpose::STANDARD.decode(&value).is_ok(),
                "{key} is not standard base64"
            ),
        }
    }
    let dashboard = lookup("DASHBOARD_PASSWORD").unwrap_or_default();
    assert!(dashboard.bytes().any(|b| b.is_ascii_alphabetic()), "DASHBOARD_PASSWORD needs a letter");
}

/// Mode bits of a file.
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}
