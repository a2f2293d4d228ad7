//! `generate-keys --template` and `--env-file` through the built binary: what is filled, what is
//! kept byte for byte, what is refused, and that the file survives every refusal untouched.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use predicates::prelude::*;
use serde_json::Value;

use crate::common::{
    assert_secret_shapes, bin, bin_path, env_key_of, env_value, hs256_signed_by, minted_keys, mode_of, pty_exit_code,
    skipped, spawn_in_pty, tempdir, ASYMMETRIC_KEYS, HS256_TOKENS,
};

/// Secrets the fixture template lacks, in catalogue order: they must be appended.
const LACKING_FROM_FIXTURE: &[&str] = &["REALTIME_DB_ENC_KEY"];

// ------------------------------------------------------------------------------------ helpers

/// Upstream's earlier `.env.example` (`../shared/upstream/env.example.older`, test data: its
/// secrets are public), with two touches of our own so the round trip also covers a quoted value
/// and a trailing comment: `DASHBOARD_PASSWORD` double-quoted, a comment after `VAULT_ENC_KEY`.
/// `None`, after saying the test skipped, outside that layout.
fn fixture() -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream/env.example.older");
    let Ok(text) = fs::read_to_string(&path) else {
        skipped(&format!("{} not found (upstream's files live beside the repository)", path.display()));
        return None;
    };
    let touched: String = text
        .split_inclusive('\n')
        .map(|line| match key_of(line) {
            Some("DASHBOARD_PASSWORD") => {
                let value = must(line, "DASHBOARD_PASSWORD");
                format!("DASHBOARD_PASSWORD=\"{value}\"\n")
            }
            Some("VAULT_ENC_KEY") => format!("{} # exactly 32 characters\n", line.trim_end()),
            _ => line.to_owned(),
        })
        .collect();
    assert_ne!(touched, text, "the touches apply to upstream's file");
    Some(touched)
}

fn is_secret_key(key: &str) -> bool {
    minted_keys().any(|k| k == key)
}

/// The key of a `KEY=value` line, if it is one.
fn key_of(line: &str) -> Option<&str> {
    env_key_of(line)
}

/// The value of `key` (last occurrence, as compose reads it).
fn value(text: &str, key: &str) -> Option<String> {
    env_value(text, key)
}

fn must(text: &str, key: &str) -> String {
    value(text, key).unwrap_or_else(|| panic!("{key} is missing"))
}

/// Asserts the exact length and alphabet of every symmetric secret.
fn assert_valid_secrets(text: &str) {
    assert_secret_shapes(|key| value(text, key));
}

/// Whether `token` is an HS256 JWT whose signature the UTF-8 bytes of `secret` verify.
fn signed_by(token: &str, secret: &str) -> bool {
    hs256_signed_by(token, secret)
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("json")
}

/// Asserts both HS256 tokens are signed by `secret` and carry their role.
fn assert_tokens_signed_by(text: &str, secret: &str) {
    for (key, role) in HS256_TOKENS {
        let token = must(text, key);
        assert!(signed_by(&token, secret), "{key} verifies with the JWT_SECRET");
        assert_eq!(claims(&token)["role"], *role, "{key} role");
    }
}

/// `generate-keys ARGS` with stdin not a terminal.
fn generate(args: &[&str], path: &Path) -> Output {
    bin().arg("generate-keys").args(args).arg(path).output().expect("runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_code(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "exit code; stderr: {}", stderr(output));
}

/// Prints the fixture (or `text`) through `--template` and returns stdout.
fn fill_template(text: &str, extra: &[&str]) -> String {
    let dir = tempdir();
    let path = dir.path().join(".env.example");
    fs::write(&path, text).expect("write template");
    let mut args = vec!["--template"];
    args.splice(0..0, extra.iter().copied());
    let output = generate(&args, &path);
    assert_code(&output, 0);
    assert_eq!(fs::read_to_string(&path).expect("read"), text, "the template itself is not modified");
    String::from_utf8(output.stdout).expect("utf-8")
}

/// A stack's `.env`: the fixture template filled in, so comments, sections and non-secret
/// lines surround real secrets.
/// `None`, after saying the test skipped, without upstream's files.
fn complete_env(dir: &Path, extra: &[&str]) -> Option<PathBuf> {
    let template = fixture()?;
    let path = dir.join(".env");
    fs::write(&path, fill_template(&template, extra)).expect("write .env");
    Some(path)
}

/// Replaces the whole `KEY=...` line of `key` with `line` (or removes it when `line` is empty).
fn with_line(text: &str, key: &str, line: &str) -> String {
    text.split_inclusive('\n')
        .filter_map(|l| match key_of(l) {
            Some(k) if k == key && line.is_empty() => None,
            Some(k) if k == key => Some(format!("{line}\n")),
            _ => Some(l.to_owned()),
        })
        .collect()
}

/// Lines of `text` (with their endings) except those of `keys`.
fn lines_except(text: &str, keys: &[&str]) -> Vec<String> {
    text.split_inclusive('\n').filter(|l| key_of(l).is_none_or(|k| !keys.contains(&k))).map(String::from).collect()
}

/// Asserts that no value of `text` (the file before or after) appears in `message`.
fn assert_no_value_in(message: &str, texts: &[&str]) {
    for text in texts {
        for line in text.lines() {
            if let Some(key) = key_of(line).filter(|k| is_secret_key(k)) {
                let value = must(line, key);
                assert!(value.len() < 8 || !message.contains(&value), "a value of {key} leaked into: {message}");
            }
        }
    }
}

// ----------------------------------------------------------------------------------- template

/// Checks a filled template against its source line by line: secret lines keep everything but
/// their value, every other line is byte-identical, and the lacking secrets follow in one block.
fn assert_template_round_trip(template: &str, eol: &str) {
    let out = fill_template(template, &[]);
    let source: Vec<&str> = template.split_inclusive('\n').collect();
    let filled: Vec<&str> = out.split_inclusive('\n').collect();
    assert_eq!(filled.len(), source.len() + LACKING_FROM_FIXTURE.len(), "only the lacking secrets are added");
    for (i, (before, after)) in source.iter().zip(&filled).enumerate() {
        let before_line = if i + 1 == source.len() && !before.ends_with('\n') {
            // The missing final newline gets one, so the appended block starts on its own line.
            format!("{before}{eol}")
        } else {
            (*before).to_owned()
        };
        match key_of(before).filter(|key| is_secret_key(key)) {
            Some(key) => {
                assert_ne!(value(before, key), value(after, key), "{key} on line {} is filled", i + 1);
                assert!(after.starts_with(&format!("{key}=")), "{key}: the text before the value is kept");
                assert!(after.ends_with(eol), "{key}: the line ending is kept");
            }
            None => assert_eq!(*after, before_line, "line {} is byte-identical", i + 1),
        }
    }
    let appended: Vec<&str> = filled[source.len()..].iter().filter_map(|line| key_of(line)).collect();
    assert_eq!(appended, LACKING_FROM_FIXTURE, "the lacking secrets, in catalogue order, at the end");
    assert!(filled[source.len()..].iter().all(|line| line.ends_with(eol)), "appended lines use the file's endings");

    assert_valid_secrets(&out);
    assert_tokens_signed_by(&out, &must(&out, "JWT_SECRET"));
    let line_of = |key: &str| out.lines().find(|l| key_of(l) == Some(key)).expect("line").to_owned();
    assert!(line_of("DASHBOARD_PASSWORD").starts_with("DASHBOARD_PASSWORD=\""), "double quotes are kept");
    assert!(line_of("VAULT_ENC_KEY").trim_end().ends_with(" # exactly 32 characters"), "a trailing comment is kept");
}

#[test]
fn a_template_keeps_every_other_line_and_fills_every_secret() {
    let Some(template) = fixture() else { return };
    assert_template_round_trip(&template, "\n");
}

#[test]
fn a_crlf_template_keeps_its_line_endings() {
    let Some(template) = fixture() else { return };
    let crlf = template.replace('\n', "\r\n");
    assert_template_round_trip(&crlf, "\r\n");
}

#[test]
fn a_template_without_a_final_newline_round_trips() {
    let Some(template) = fixture() else { return };
    let text = template;
    assert_template_round_trip(text.strip_suffix('\n').expect("fixture ends with a newline"), "\n");
}

#[test]
fn a_template_gets_only_secrets_not_the_pmoves_defaults() {
    let Some(template) = fixture() else { return };
    let out = fill_template(&template, &[]);
    assert_eq!(value(&out, "POSTGRES_HOST").as_deref(), Some("db"), "the template's own value stays");
    assert_eq!(value(&out, "POSTGRES_DB").as_deref(), Some("postgres"));
    assert_eq!(value(&out, "SMTP_PASS").as_deref(), Some("fake_mail_password"), "not a catalogue secret");
    assert!(value(&out, "PARENT_SYSTEM").is_none() && value(&out, "NATS_URL").is_none());
    assert!(value(&out, "JWT_KEYS").is_none(), "no asymmetric keys unless asked");
}

#[test]
fn a_template_with_asymmetric_gets_the_asymmetric_set_appended() {
    let Some(template) = fixture() else { return };
    let out = fill_template(&template, &["--asymmetric"]);
    let secret = must(&out, "JWT_SECRET");
    let tail: Vec<&str> = out.lines().rev().take(ASYMMETRIC_KEYS.len()).filter_map(key_of).collect();
    assert_eq!(tail.into_iter().rev().collect::<Vec<_>>(), ASYMMETRIC_KEYS, "appended at the end, in order");
    let keys: Value = serde_json::from_str(&must(&out, "JWT_KEYS")).expect("JWT_KEYS is JSON");
    let oct = keys.as_array().expect("array").iter().find(|k| k["kty"] == "oct").expect("oct key");
    assert_eq!(URL_SAFE_NO_PAD.decode(oct["k"].as_str().expect("k")).expect("b64"), secret.as_bytes());
}

#[test]
fn a_template_that_names_an_asymmetric_key_gets_the_whole_set() {
    let Some(template) = fixture() else { return };
    let out = fill_template(&format!("{}JWT_KEYS=\n", template), &[]);
    for key in ASYMMETRIC_KEYS {
        assert!(!must(&out, key).is_empty(), "{key} filled");
    }
}

#[test]
fn a_template_takes_only_the_env_format() {
    let Some(template) = fixture() else { return };
    let dir = tempdir();
    let path = dir.path().join("t.env");
    fs::write(&path, &template).expect("write");
    let output = generate(&["--format", "json", "--template"], &path);
    assert_code(&output, 2);
    assert!(output.stdout.is_empty());
}

// ----------------------------------------------------------------------------------- env-file

#[test]
fn env_file_fills_missing_empty_and_demo_keys_and_keeps_the_rest_byte_identical() {
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    let good = fs::read_to_string(&path).expect("read");
    let broken = with_line(&good, "SECRET_KEY_BASE", "");
    let broken = with_line(&broken, "VAULT_ENC_KEY", "VAULT_ENC_KEY=");
    let broken =
        with_line(&broken, "DASHBOARD_PASSWORD", "DASHBOARD_PASSWORD=this_password_is_insecure_and_should_be_updated");
    let broken =
        with_line(&broken, "POSTGRES_PASSWORD", "POSTGRES_PASSWORD=your-super-secret-and-long-postgres-password");
    fs::write(&path, &broken).expect("write");

    let output = generate(&["--yes", "--env-file"], &path);
    assert_code(&output, 0);
    assert!(output.stdout.is_empty(), "--env-file prints no secret");
    let after = fs::read_to_string(&path).expect("read");
    let changed = ["SECRET_KEY_BASE", "VAULT_ENC_KEY", "DASHBOARD_PASSWORD", "POSTGRES_PASSWORD"];
    assert_eq!(lines_except(&after, &changed), lines_except(&broken, &changed), "every other line is kept");
    assert_valid_secrets(&after);
    assert_eq!(after.lines().last().and_then(key_of), Some("SECRET_KEY_BASE"), "the missing key is appended");
    let message = stderr(&output);
    for expected in ["SECRET_KEY_BASE", "missing", "VAULT_ENC_KEY", "empty", "DASHBOARD_PASSWORD", "demo"] {
        assert!(message.contains(expected), "{expected} in: {message}");
    }
    assert!(message.contains("rotate-passwords"), "a filled POSTGRES_PASSWORD points at rotate-passwords");
    assert!(!message.contains("JWT_SECRET"), "good keys are not listed: {message}");
    assert_no_value_in(&message, &[&broken, &after]);
}

#[test]
fn only_jwt_secret_remints_both_tokens_with_the_new_secret() {
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    let before = fs::read_to_string(&path).expect("read");
    let output = generate(&["--yes", "--only", "JWT_SECRET", "--env-file"], &path);
    assert_code(&output, 0);
    let after = fs::read_to_string(&path).expect("read");
    let secret = must(&after, "JWT_SECRET");
    assert_ne!(secret, must(&before, "JWT_SECRET"));
    assert_eq!(secret.len(), 40);
    assert_tokens_signed_by(&after, &secret);
    let keys = ["JWT_SECRET", "ANON_KEY", "SERVICE_ROLE_KEY"];
    assert_eq!(lines_except(&after, &keys), lines_except(&before, &keys));
    assert!(stderr(&output).contains("re-minted with the new JWT_SECRET"), "{}", stderr(&output));
    assert_no_value_in(&stderr(&output), &[&before, &after]);
}

#[test]
fn only_anon_key_remints_it_with_the_files_jwt_secret() {
    let Some(template) = fixture() else { return };
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    // A token signed by another stack's secret, so that re-signing visibly changes it (HS256 is
    // deterministic: the same secret and claims in the same second give the same token).
    let foreign = must(&fill_template(&template, &[]), "ANON_KEY");
    let before = with_line(&fs::read_to_string(&path).expect("read"), "ANON_KEY", &format!("ANON_KEY={foreign}"));
    fs::write(&path, &before).expect("write");
    assert!(!signed_by(&foreign, &must(&before, "JWT_SECRET")));
    let output = generate(&["--yes", "--only", "ANON_KEY", "--env-file"], &path);
    assert_code(&output, 0);
    let after = fs::read_to_string(&path).expect("read");
    assert!(signed_by(&must(&after, "ANON_KEY"), &must(&before, "JWT_SECRET")), "signed by the file's secret");
    assert_eq!(claims(&must(&after, "ANON_KEY"))["role"], "anon");
    assert_eq!(lines_except(&after, &["ANON_KEY"]), lines_except(&before, &["ANON_KEY"]));
    assert!(stderr(&output).contains("stays valid"), "says the old token is not revoked: {}", stderr(&output));
}

#[test]
fn a_set_postgres_password_is_never_changed_and_the_message_points_at_rotate_passwords() {
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    let before = fs::read(&path).expect("read");
    for only in ["POSTGRES_PASSWORD", "JWT_SECRET,POSTGRES_PASSWORD"] {
        let output = generate(&["--yes", "--only", only, "--env-file"], &path);
        assert_code(&output, 1);
        let message = stderr(&output);
        assert!(message.contains("POSTGRES_PASSWORD") && message.contains("rotate-passwords"), "{message}");
        assert_eq!(fs::read(&path).expect("read"), before, "nothing changed with --only {only}");
    }
}

#[test]
fn a_complete_file_needs_nothing_and_is_not_rewritten() {
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    let before = fs::read(&path).expect("read");
    let inode = fs::metadata(&path).expect("metadata").ino();
    // No --yes and no terminal: nothing to confirm, so this must not be refused either.
    let output = generate(&["--env-file"], &path);
    assert_code(&output, 0);
    assert!(stderr(&output).contains("nothing to change"), "{}", stderr(&output));
    assert_eq!(fs::read(&path).expect("read"), before);
    assert_eq!(fs::metadata(&path).expect("metadata").ino(), inode, "not even replaced by an identical copy");
    assert!(value(&String::from_utf8_lossy(&before), "JWT_KEYS").is_none(), "no asymmetric keys added unasked");
}

#[test]
fn asymmetric_fills_the_set_around_the_files_jwt_secret() {
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    let before = fs::read_to_string(&path).expect("read");
    let output = generate(&["--yes", "--asymmetric", "--env-file"], &path);
    assert_code(&output, 0);
    let after = fs::read_to_string(&path).expect("read");
    assert_eq!(
        lines_except(&after, ASYMMETRIC_KEYS),
        before.split_inclusive('\n').map(String::from).collect::<Vec<_>>()
    );
    let keys: Value = serde_json::from_str(&must(&after, "JWT_KEYS")).expect("json");
    let oct = keys.as_array().expect("array").iter().find(|k| k["kty"] == "oct").expect("oct");
    let k = URL_SAFE_NO_PAD.decode(oct["k"].as_str().expect("k")).expect("b64");
    assert_eq!(k, must(&before, "JWT_SECRET").as_bytes(), "the oct key is the file's JWT_SECRET");
}

#[test]
fn a_new_jwt_secret_changes_only_the_oct_key_of_the_asymmetric_set() {
    // SPEC §7: the EC keys (and so the ES256 tokens they signed) survive a new JWT_SECRET.
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &["--asymmetric"]) else { return };
    let before = fs::read_to_string(&path).expect("read");
    let output = generate(&["--yes", "--only", "JWT_SECRET", "--env-file"], &path);
    assert_code(&output, 0);
    let after = fs::read_to_string(&path).expect("read");
    let secret = must(&after, "JWT_SECRET");
    for key in ["JWT_KEYS", "JWT_JWKS"] {
        assert_ne!(must(&after, key), must(&before, key), "{key}'s oct key follows");
        let ec = |text: &str| -> Vec<Value> {
            let set: Value = serde_json::from_str(&must(text, key)).expect("json");
            let list = set.as_array().or_else(|| set["keys"].as_array()).expect("keys").clone();
            list.into_iter().filter(|k| k["kty"] == "EC").collect()
        };
        assert_eq!(ec(&after), ec(&before), "{key}'s EC keys stay");
    }
    for key in ["ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC", "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY"]
    {
        assert_eq!(must(&after, key), must(&before, key), "{key} does not depend on JWT_SECRET");
    }
    let jwks: Value = serde_json::from_str(&must(&after, "JWT_JWKS")).expect("json");
    let oct = jwks["keys"].as_array().expect("keys").iter().find(|k| k["kty"] == "oct").expect("oct");
    assert_eq!(URL_SAFE_NO_PAD.decode(oct["k"].as_str().expect("k")).expect("b64"), secret.as_bytes());
}

#[test]
fn duplicated_keys_are_all_updated_and_named_in_a_warning() {
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    let text = fs::read_to_string(&path).expect("read");
    let text = with_line(&text, "VAULT_ENC_KEY", "VAULT_ENC_KEY=your-32-character-encryption-key");
    fs::write(&path, format!("VAULT_ENC_KEY=your-32-character-encryption-key\n{text}")).expect("write");
    let output = generate(&["--yes", "--env-file"], &path);
    assert_code(&output, 0);
    let after = fs::read_to_string(&path).expect("read");
    let values: Vec<String> =
        after.lines().filter(|l| key_of(l) == Some("VAULT_ENC_KEY")).map(|l| must(l, "VAULT_ENC_KEY")).collect();
    assert_eq!(values.len(), 2);
    assert!(values[0] == values[1] && values[0].len() == 32, "both occurrences get the same new value");
    assert!(stderr(&output).contains("warning: VAULT_ENC_KEY is defined more than once"), "{}", stderr(&output));
}

#[test]
fn the_mode_and_owner_of_the_env_file_are_kept() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    fs::write(&path, with_line(&fs::read_to_string(&path).expect("read"), "VAULT_ENC_KEY", "VAULT_ENC_KEY="))
        .expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
    let root = nix_is_root();
    if root {
        std::os::unix::fs::chown(&path, Some(1234), Some(5678)).expect("chown");
    }
    assert_code(&generate(&["--yes", "--env-file"], &path), 0);
    assert_eq!(must(&fs::read_to_string(&path).expect("read"), "VAULT_ENC_KEY").len(), 32, "written");
    assert_eq!(mode_of(&path), 0o640);
    if root {
        let meta = fs::metadata(&path).expect("metadata");
        assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    }
}

/// Whether the tests run as root (only root can give a file away, to test that owners are kept).
fn nix_is_root() -> bool {
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

#[test]
fn a_symlinked_env_file_stays_a_symlink_and_its_target_is_updated() {
    let dir = tempdir();
    fs::create_dir(dir.path().join("real")).expect("mkdir");
    let Some(target) = complete_env(&dir.path().join("real"), &[]) else { return };
    fs::write(&target, with_line(&fs::read_to_string(&target).expect("read"), "SECRET_KEY_BASE", "")).expect("write");
    let link = dir.path().join("stack.env");
    std::os::unix::fs::symlink("real/.env", &link).expect("symlink");
    assert_code(&generate(&["--yes", "--env-file"], &link), 0);
    assert!(fs::symlink_metadata(&link).expect("lstat").file_type().is_symlink(), "still a symlink");
    assert_eq!(fs::read_link(&link).expect("readlink"), Path::new("real/.env"));
    assert_eq!(must(&fs::read_to_string(&target).expect("read"), "SECRET_KEY_BASE").len(), 64, "target updated");
}

#[test]
fn without_a_terminal_or_yes_nothing_is_written() {
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    let before = fs::read(&path).expect("read");
    let output = generate(&["--only", "JWT_SECRET", "--env-file"], &path);
    assert_code(&output, 3);
    assert!(stderr(&output).contains("--yes"), "{}", stderr(&output));
    assert_eq!(fs::read(&path).expect("read"), before);
}

/// Runs `--env-file PATH --only SECRET_KEY_BASE` in a pty and answers the question.
fn answer_in_pty(path: &Path, answer: &str) -> i32 {
    let mut session = spawn_in_pty(&["generate-keys", "--only", "SECRET_KEY_BASE"], path);
    session.exp_string("named in --only").expect("the plan is shown");
    session.exp_string("with these changes?").expect("the question is asked");
    // A whole line: the question never acts on a single keypress.
    session.send_line(answer).expect("answer");
    session.exp_eof().expect("exits");
    pty_exit_code(&mut session)
}

#[test]
fn answering_no_at_the_prompt_leaves_the_file_untouched() {
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    let before = fs::read(&path).expect("read");
    assert_eq!(answer_in_pty(&path, "n"), 3);
    assert_eq!(fs::read(&path).expect("read"), before);
}

#[test]
fn answering_yes_at_the_prompt_writes_the_file() {
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    let before = fs::read_to_string(&path).expect("read");
    assert_eq!(answer_in_pty(&path, "y"), 0);
    let after = fs::read_to_string(&path).expect("read");
    assert_ne!(must(&after, "SECRET_KEY_BASE"), must(&before, "SECRET_KEY_BASE"));
    assert_eq!(lines_except(&after, &["SECRET_KEY_BASE"]), lines_except(&before, &["SECRET_KEY_BASE"]));
}

#[test]
fn concurrent_runs_on_one_file_never_lose_an_update() {
    const KEYS: [&str; 4] = ["SECRET_KEY_BASE", "VAULT_ENC_KEY", "PG_META_CRYPTO_KEY", "MINIO_ROOT_PASSWORD"];
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    for round in 0..3 {
        let before = fs::read_to_string(&path).expect("read");
        let children: Vec<_> = KEYS
            .iter()
            .map(|key| {
                std::process::Command::new(bin_path())
                    .env_clear()
                    .args(["generate-keys", "--yes", "--only", key, "--env-file"])
                    .arg(&path)
                    .stdin(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().expect("wait");
            assert_code(&output, 0);
        }
        let after = fs::read_to_string(&path).expect("read");
        for key in KEYS {
            assert_ne!(must(&after, key), must(&before, key), "round {round}: the update of {key} landed");
        }
        assert_eq!(lines_except(&after, &KEYS), lines_except(&before, &KEYS), "round {round}: nothing else changed");
    }
}

// --------------------------------------------------------------------------------- bad input

/// Runs `args FILE` (for both file modes) and asserts exit 1, a message naming the file and
/// containing `expected`, nothing on stdout, and an untouched file.
fn assert_refused(path: &Path, expected: &str) {
    let before = fs::read(path).ok();
    for mode in [&["--template"][..], &["--yes", "--env-file"][..]] {
        let output = generate(mode, path);
        assert_code(&output, 1);
        let message = stderr(&output);
        assert!(message.contains(&path.display().to_string()), "{mode:?} names the file: {message}");
        assert!(message.contains(expected), "{mode:?}: {expected:?} in {message}");
        assert_eq!(message.lines().count(), 1, "one sentence: {message}");
        assert!(output.stdout.is_empty());
        assert_eq!(fs::read(path).ok(), before, "{mode:?} leaves the file untouched");
    }
}

#[test]
fn a_file_that_is_not_utf8_is_refused_untouched() {
    let dir = tempdir();
    let path = dir.path().join("latin1.env");
    fs::write(&path, b"# ok\nJWT_SECRET=caf\xe9\n").expect("write");
    assert_refused(&path, "not valid UTF-8");
}

#[test]
fn a_directory_is_refused() {
    let dir = tempdir();
    assert_refused(dir.path(), "is a directory");
}

#[test]
fn a_malformed_line_is_named_by_number_without_its_text() {
    let dir = tempdir();
    let path = dir.path().join("broken.env");
    fs::write(&path, "# header\nJWT_SECRET=\nthis line has sekrit-text but no equals sign\nANON_KEY=\n")
        .expect("write");
    assert_refused(&path, "line 3");
    let message = stderr(&generate(&["--yes", "--env-file"], &path));
    assert!(!message.contains("sekrit-text"), "the line's text is not shown: {message}");
}

#[test]
fn an_unknown_only_key_is_a_usage_error_that_lists_the_valid_keys() {
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    let before = fs::read(&path).expect("read");
    let output = generate(&["--yes", "--only", "JWT_SECRET,JWT_SECRETT", "--env-file"], &path);
    assert_code(&output, 2);
    let message = stderr(&output);
    assert!(message.contains("JWT_SECRETT"), "names the unknown key: {message}");
    assert!(message.contains("SERVICE_ROLE_KEY") && message.contains("DASHBOARD_PASSWORD"), "lists the valid keys");
    assert_eq!(fs::read(&path).expect("read"), before);
}

#[test]
fn a_missing_env_file_is_refused_with_a_hint_to_use_output() {
    let dir = tempdir();
    let path = dir.path().join("typo.env");
    let output = generate(&["--yes", "--env-file"], &path);
    assert_code(&output, 1);
    let message = stderr(&output);
    assert!(message.contains("typo.env") && message.contains("--output"), "{message}");
    assert!(!path.exists(), "not created");
    bin()
        .args(["generate-keys", "--template"])
        .arg(&path)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("typo.env"));
}

// ------------------------------------------------------------ the names beside .env (SPEC §2)

#[test]
fn env_file_refuses_while_a_rotation_is_pending() {
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    let before = fs::read(&path).expect("read");
    let pending = dir.path().join(".env.pending");
    fs::write(&pending, &before).expect("write pending");
    let output = generate(&["--yes", "--only", "JWT_SECRET", "--env-file"], &path);
    assert_code(&output, 1);
    let message = stderr(&output);
    assert!(message.contains(".env.pending") && message.contains("rotate-passwords --env-file"), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    assert_eq!(fs::read(&path).expect("read"), before, "the .env is untouched");
    assert_eq!(fs::read(&pending).expect("read"), before, "the pending file is untouched");
    let names: Vec<_> = fs::read_dir(dir.path()).expect("ls").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(names.len(), 3, "only .env, .env.lock and .env.pending: {names:?}");
}

/// The refusal comes before the plan and the question: an operator at a terminal is not asked to
/// approve a write that would be refused anyway.
#[test]
fn env_file_refuses_a_pending_rotation_before_asking() {
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    let before = fs::read(&path).expect("read");
    fs::write(dir.path().join(".env.pending"), &before).expect("write pending");
    let mut session = spawn_in_pty(&["generate-keys", "--only", "SECRET_KEY_BASE"], &path);
    let shown = session.exp_eof().expect("exits without waiting for an answer");
    assert!(shown.contains(".env.pending") && shown.contains("rotate-passwords --env-file"), "{shown}");
    assert!(
        !shown.contains("with these changes?") && !shown.contains("named in --only"),
        "no plan, no question: {shown}"
    );
    assert_eq!(pty_exit_code(&mut session), 1);
    assert_eq!(fs::read(&path).expect("read"), before, "the .env is untouched");
}

#[test]
fn env_file_removes_temporary_files_a_killed_run_left() {
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    let leftovers = ["..env.Ab3xY9.tmp", "..env.pending.q1W2e3.tmp"];
    for name in leftovers {
        fs::write(dir.path().join(name), "JWT_SECRET=old-copy\n").expect("write");
    }
    let output = generate(&["--yes", "--only", "JWT_SECRET", "--env-file"], &path);
    assert_code(&output, 0);
    for name in leftovers {
        assert!(!dir.path().join(name).exists(), "{name} is still there");
    }
}

#[test]
fn env_file_never_follows_a_symlink_at_the_lock_name() {
    let dir = tempdir();
    let Some(path) = complete_env(dir.path(), &[]) else { return };
    let before = fs::read(&path).expect("read");
    let elsewhere = dir.path().join("created-through-the-link");
    std::os::unix::fs::symlink(&elsewhere, dir.path().join(".env.lock")).expect("symlink");
    let output = generate(&["--yes", "--only", "JWT_SECRET", "--env-file"], &path);
    assert_code(&output, 1);
    let message = stderr(&output);
    assert!(message.contains(".env.lock") && message.contains("symbolic link"), "{message}");
    assert!(fs::symlink_metadata(&elsewhere).is_err(), "a file was created at the link's target");
    assert_eq!(fs::read(&path).expect("read"), before);
}

#[test]
fn a_template_can_be_written_to_a_private_file() {
    let dir = tempdir();
    let template = dir.path().join(".env.example");
    std::fs::write(&template, "# mine\nJWT_SECRET=\nSITE_URL=http://example.test\n").expect("write");
    let output = dir.path().join(".env");
    let run = || bin().arg("generate-keys").arg("--template").arg(&template).arg("--output").arg(&output).output();
    let out = run().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "the secrets go to the file only");
    assert_eq!(mode_of(&output), 0o600);
    let text = std::fs::read_to_string(&output).expect("read");
    assert!(text.starts_with("# mine\n") && text.contains("SITE_URL=http://example.test\n"));
    assert!(text.lines().any(|l| l.starts_with("JWT_SECRET=") && l.len() > 40));
    // An existing file is kept unless --force.
    let again = run().expect("runs");
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&output).expect("read"), text);
}
