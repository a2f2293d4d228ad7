//! Shared helpers of the integration tests.
//!
//! `bin()` runs the built binary with a cleared environment, so no variable of the machine
//! (PGPASSWORD, PMOVES_SECRETS_DB_URL, NO_COLOR, ...) leaks into a test by accident.

#![allow(dead_code)]

pub mod copies;
pub mod pg;
pub mod stack;

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

/// `check`'s arguments that accept the one finding every generated `.env` has: the NATS URL keeps
/// PMOVES.AI's published default credentials (`published-default-credential`, a warning; tested
/// in check_noise.rs). Tests about other findings pass them, so a clean file reads as clean.
pub const ALLOW_NATS_DEFAULT: [&str; 2] = ["--allow", "published-default-credential"];

/// `check` with [`ALLOW_NATS_DEFAULT`], for a test about something other than that finding.
pub fn check() -> Command {
    let mut cmd = bin();
    cmd.arg("check").args(ALLOW_NATS_DEFAULT);
    cmd
}

/// Path of the built binary, for pty-driven tests.
pub fn bin_path() -> PathBuf {
    assert_cmd::cargo::cargo_bin("pmoves-secrets")
}

/// Starts the built binary with `args` and `--env-file env_file` in a pseudo-terminal, as an
/// operator at a prompt runs it: the environment cleared but for `PATH`, no colour, a dumb terminal.
pub fn spawn_in_pty(args: &[&str], env_file: &Path) -> rexpect::session::PtySession {
    let mut cmd = std::process::Command::new(bin_path());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .args(args)
        .arg("--env-file")
        .arg(env_file);
    rexpect::session::spawn_command(cmd, Some(30_000)).expect("pty")
}

/// The exit code of a pty session's process, once it ends; panics if a signal ended it.
pub fn pty_exit_code(session: &mut rexpect::session::PtySession) -> i32 {
    match session.process.wait().expect("the process ends") {
        rexpect::process::wait::WaitStatus::Exited(_, code) => code,
        other => panic!("did not exit normally: {other:?}"),
    }
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

/// Runs a future on a fresh runtime (the cluster harness spawns its connection tasks there).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

/// A fresh temporary directory for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("pmoves-secrets-test-").tempdir().expect("temp dir")
}

/// The key of a `KEY=value` line (an `export ` prefix allowed), or `None` for a comment,
/// a blank line or anything else.
pub fn env_key_of(line: &str) -> Option<&str> {
    let line = line.trim_start();
    if line.starts_with('#') {
        return None;
    }
    let line = line.strip_prefix("export ").unwrap_or(line);
    line.split_once('=').map(|(key, _)| key.trim())
}

/// The value of a `KEY=value` line as compose reads the one-line values the tool and these
/// tests write: quotes removed, a bare value cut at ` #` and trimmed, a CR dropped.
fn env_value_of_line(line: &str) -> String {
    let raw = line.trim_end_matches('\r').split_once('=').map_or("", |(_, value)| value).trim_start();
    for quote in ['\'', '"'] {
        if let Some(rest) = raw.strip_prefix(quote) {
            return rest[..rest.find(quote).expect("closing quote on the same line")].to_owned();
        }
    }
    raw.split(" #").next().unwrap_or("").trim_end().to_owned()
}

/// Every `(key, value)` of `.env` text in file order, duplicates included: the tests' one
/// `.env` reader (one-line values; the tool's own reader is what is under test).
pub fn parse_env(text: &str) -> Vec<(String, String)> {
    text.lines().filter_map(|line| Some((env_key_of(line)?.to_owned(), env_value_of_line(line)))).collect()
}

/// `env_text` with every `KEY=` line set to `value` (single-quoted), or the line appended.
pub fn set_line(env_text: &str, key: &str, value: &str) -> String {
    assert!(!value.contains('\''), "test values must not contain a single quote");
    let line = format!("{key}='{value}'");
    let prefix = format!("{key}=");
    let mut found = false;
    let mut out: Vec<String> = env_text
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                found = true;
                line.clone()
            } else {
                l.to_owned()
            }
        })
        .collect();
    if !found {
        out.push(line);
    }
    out.join("\n") + "\n"
}

/// The value of `key` in `.env` text; with duplicates the last one, as compose reads it.
pub fn env_value(text: &str, key: &str) -> Option<String> {
    parse_env(text).into_iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The HS256 signature (base64url, no padding) of `signing_input`, keyed by the UTF-8 bytes of
/// `secret` (not its base64 decoding), as Supabase's services verify it: the tests' one signer.
pub fn hs256_signature(secret: &str, signing_input: &str) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(signing_input.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// An HS256 JWT over the JSON `claims`, signed with `secret`.
pub fn hs256_token(secret: &str, claims: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!("{}.{}", b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#), b64.encode(claims));
    let signature = hs256_signature(secret, &input);
    format!("{input}.{signature}")
}

/// Whether `token` is a JWT whose HS256 signature `secret` verifies.
pub fn hs256_signed_by(token: &str, secret: &str) -> bool {
    token.rsplit_once('.').is_some_and(|(input, signature)| hs256_signature(secret, input) == signature)
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

/// The API keys signed with `JWT_SECRET`, with their role.
pub const HS256_TOKENS: &[(&str, &str)] = &[("ANON_KEY", "anon"), ("SERVICE_ROLE_KEY", "service_role")];

/// The keys `--asymmetric` adds, in the order they are written.
pub const ASYMMETRIC_KEYS: &[&str] = &[
    "JWT_KEYS",
    "JWT_JWKS",
    "ANON_KEY_ASYMMETRIC",
    "SERVICE_ROLE_KEY_ASYMMETRIC",
    "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_SECRET_KEY",
    // Not a secret: when the signing key became current (rotate-keys reads it).
    "JWT_KEYS_STATE",
];

/// Every key `generate-keys --asymmetric` mints (the other lines are non-secret defaults).
pub fn minted_keys() -> impl Iterator<Item = &'static str> {
    SECRET_SHAPES
        .iter()
        .map(|(k, ..)| *k)
        .chain(HS256_TOKENS.iter().map(|(k, _)| *k))
        .chain(ASYMMETRIC_KEYS.iter().copied())
}

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
