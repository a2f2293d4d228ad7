//! `check` through the built binary: every finding code, the exit codes, both report formats,
//! the upstream `.env.example` key by key, and `--db` against a throwaway cluster.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Output;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use crate::common::pg::{Cluster, ClusterOptions, APP_USER, APP_USER_PASSWORD, LOGIN_ROLES};
use crate::common::{bin, check, env_value, hs256_token, set_line, skip_on_external_database, tempdir};

/// Upstream's newest `supabase/docker/.env.example`, read from `../shared/upstream/` (test data:
/// its secrets are public). `None`, after saying the test skipped, outside that layout.
fn upstream(test: &str) -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream/env.example");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(_) => {
            crate::common::skipped(&format!(
                "{test}: {} not found (upstream's files live beside the repository)",
                path.display()
            ));
            None
        }
    }
}

/// The demo keys of the upstream file and the code each must get.
const UPSTREAM_EXPECTED: &[(&str, &str)] = &[
    ("POSTGRES_PASSWORD", "demo-value"),
    ("JWT_SECRET", "demo-value"),
    ("ANON_KEY", "demo-value"),
    ("SERVICE_ROLE_KEY", "demo-value"),
    ("DASHBOARD_PASSWORD", "demo-value"),
    ("SECRET_KEY_BASE", "demo-value"),
    ("VAULT_ENC_KEY", "demo-value"),
    ("PG_META_CRYPTO_KEY", "demo-value"),
    ("LOGFLARE_PUBLIC_ACCESS_TOKEN", "demo-value"),
    ("LOGFLARE_PRIVATE_ACCESS_TOKEN", "demo-value"),
    ("S3_PROTOCOL_ACCESS_KEY_ID", "demo-value"),
    ("S3_PROTOCOL_ACCESS_KEY_SECRET", "demo-value"),
    ("MINIO_ROOT_PASSWORD", "demo-value"),
    // Placeholders for secrets.
    ("REALTIME_DB_ENC_KEY", "placeholder-value"),
    ("SMTP_PASS", "placeholder-value"),
    ("OPENAI_API_KEY", "placeholder-value"),
];

// ------------------------------------------------------------------------------------ helpers

/// A private test directory holding one `.env`.
struct Env {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Env {
    /// Writes `text` as `.env` with mode 0600 (so the file-mode warning stays out of the way).
    fn new(text: &str) -> Env {
        let dir = tempdir();
        let path = dir.path().join(".env");
        std::fs::write(&path, text).expect("write .env");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        Env { dir, path }
    }

    fn check(&self, extra: &[&str]) -> Output {
        check().arg("--env-file").arg(&self.path).args(extra).output().expect("runs")
    }

    /// `check --db --format json` with the admin connection taken from `PMOVES_SECRETS_DB_URL`.
    fn db_check_through(&self, url: &str) -> Output {
        check()
            .arg("--env-file")
            .arg(&self.path)
            .args(["--db", "--sslmode", "disable", "--format", "json"])
            .env("PMOVES_SECRETS_DB_URL", url)
            .output()
            .expect("runs")
    }

    /// `check --format json`: the exit code and the parsed report.
    fn json(&self, extra: &[&str]) -> (i32, Value) {
        let out = self.check(&[&["--format", "json"], extra].concat());
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", text(&out.stdout), text(&out.stderr)));
        let code = out.status.code().expect("exit code");
        assert_eq!(report["ok"].as_bool(), Some(code == 0), "ok must match the exit code: {report:#}");
        (code, report)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn generated(asymmetric: bool) -> String {
    let args: &[&str] = if asymmetric { &["generate-keys", "--asymmetric"] } else { &["generate-keys"] };
    let out = bin().args(args).output().expect("runs");
    assert!(out.status.success(), "generate-keys failed: {}", text(&out.stderr));
    text(&out.stdout)
}

fn value(env_text: &str, key: &str) -> String {
    env_value(env_text, key).unwrap_or_else(|| panic!("{key} not in the generated file"))
}

/// `env_text` without any `KEY=` line.
fn without(env_text: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    env_text.lines().filter(|l| !l.starts_with(&prefix)).map(|l| format!("{l}\n")).collect()
}

/// `(severity, code, key)` of every finding.
fn findings(report: &Value) -> Vec<(String, String, Option<String>)> {
    report["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().expect("severity").to_owned(),
                f["code"].as_str().expect("code").to_owned(),
                f["key"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Asserts that `report` has a finding `code` with `severity` for `key` (None: no key).
fn assert_finding(report: &Value, severity: &str, code: &str, key: Option<&str>) {
    let all = findings(report);
    assert!(
        all.iter().any(|(s, c, k)| s == severity && c == code && k.as_deref() == key),
        "expected {severity} {code} for {key:?}, got {all:?}"
    );
}

/// The codes reported for `key`.
fn codes_of(report: &Value, key: &str) -> Vec<String> {
    findings(report).into_iter().filter(|(_, _, k)| k.as_deref() == Some(key)).map(|(_, c, _)| c).collect()
}

/// The message of the first finding with `code`.
fn message_of(report: &Value, code: &str) -> String {
    report["findings"]
        .as_array()
        .and_then(|all| all.iter().find(|f| f["code"] == code))
        .and_then(|f| f["message"].as_str())
        .unwrap_or_else(|| panic!("no {code} finding in {report:#}"))
        .to_owned()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

/// An HS256 JWT over `claims`, keyed by the UTF-8 bytes of `secret`.
fn hs256(secret: &str, claims: &str) -> String {
    hs256_token(secret, claims)
}

// ------------------------------------------------------------------------- generate / upstream

#[test]
fn generated_env_passes_with_exit_0_and_no_finding() {
    let env = Env::new(&generated(false));
    let out = env.check(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("no problems found"), "{}", text(&out.stdout));
    let (code, report) = env.json(&[]);
    assert_eq!(code, 0);
    assert_eq!(findings(&report), vec![], "{report:#}");
}

#[test]
fn generated_asymmetric_env_passes_with_exit_0_and_no_finding() {
    let env = Env::new(&generated(true));
    let (code, report) = env.json(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(findings(&report), vec![], "{report:#}");
}

#[test]
fn upstream_env_example_fails_key_by_key() {
    let Some(upstream) = upstream("upstream_env_example_fails_key_by_key") else { return };
    let env = Env::new(&upstream);
    let (code, report) = env.json(&[]);
    assert_eq!(code, 1);
    for (key, expected) in UPSTREAM_EXPECTED {
        let codes = codes_of(&report, key);
        assert!(codes.iter().any(|c| c == expected), "{key}: expected {expected}, got {codes:?}");
    }
    assert!(findings(&report).iter().all(|(s, _, _)| s == "error"), "{report:#}");
}

/// Every secret generate-keys makes is filled; what remains are the placeholders of third-party
/// credentials it cannot make (the SMTP server's password, an OpenAI key).
#[test]
fn upstream_env_example_filled_by_generate_keys_leaves_only_third_party_placeholders() {
    let Some(upstream) = upstream("upstream_env_example_filled_by_generate_keys_leaves_only_third_party_placeholders")
    else {
        return;
    };
    let dir = tempdir();
    let template = dir.path().join(".env.example");
    std::fs::write(&template, upstream).expect("write template");
    let out = bin().arg("generate-keys").arg("--template").arg(&template).output().expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let filled = text(&out.stdout)
        .replace("SMTP_PASS=fake_mail_password", "SMTP_PASS=")
        .replace("OPENAI_API_KEY=sk-proj-xxxxxxxx", "OPENAI_API_KEY=");
    let (code, report) = Env::new(&text(&out.stdout)).json(&[]);
    assert_eq!(code, 1, "{report:#}");
    let mut codes: Vec<(String, String)> =
        findings(&report).into_iter().map(|(_, code, key)| (key.unwrap_or_default(), code)).collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            ("OPENAI_API_KEY".to_owned(), "placeholder-value".to_owned()),
            ("SMTP_PASS".to_owned(), "placeholder-value".to_owned())
        ],
        "{report:#}"
    );
    let (code, report) = Env::new(&filled).json(&[]);
    assert_eq!((code, findings(&report)), (0, vec![]), "{report:#}");
}

#[test]
fn older_upstream_and_cli_demo_values_are_demo_values() {
    let base = generated(false);
    let cases = [
        ("VAULT_ENC_KEY", "your-encryption-key-32-chars-min"),
        ("REALTIME_DB_ENC_KEY", "supabaserealtime"),
        ("LOGFLARE_API_KEY", "your-super-secret-and-long-logflare-key"),
        ("SMTP_PASS", "your-super-secret-anything-at-all"),
        ("JWT_SECRET", "super-secret-jwt-token-with-at-least-32-characters-long"),
        // The Supabase CLI's published local anon key.
        (
            "SUPABASE_ANON_KEY",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0",
        ),
    ];
    for (key, demo) in cases {
        let env = Env::new(&set_line(&base, key, demo));
        let (code, report) = env.json(&[]);
        assert_eq!(code, 1, "{key}");
        assert!(codes_of(&report, key).contains(&"demo-value".to_owned()), "{key}: {report:#}");
    }
}

#[test]
fn a_token_signed_by_the_demo_secret_is_a_demo_value_even_with_fresh_claims() {
    let base = generated(false);
    let demo_secret = "your-super-secret-jwt-token-with-at-least-32-characters-long";
    let token =
        hs256(demo_secret, &format!(r#"{{"role":"service_role","iss":"supabase","exp":{}}}"#, now() + 1_000_000));
    let (_, report) = Env::new(&set_line(&base, "SERVICE_ROLE_KEY", &token)).json(&[]);
    assert!(codes_of(&report, "SERVICE_ROLE_KEY").contains(&"demo-value".to_owned()), "{report:#}");
}

// ------------------------------------------------------------------------------- every code

#[test]
fn missing_or_empty_secrets_are_errors() {
    let base = generated(false);
    let env = Env::new(&set_line(&without(&base, "VAULT_ENC_KEY"), "SECRET_KEY_BASE", ""));
    let (code, report) = env.json(&[]);
    assert_eq!(code, 1);
    assert_finding(&report, "error", "missing-secret", Some("VAULT_ENC_KEY"));
    assert_finding(&report, "error", "missing-secret", Some("SECRET_KEY_BASE"));
}

#[test]
fn wrong_lengths_are_errors() {
    let base = generated(false);
    let cases = [
        ("VAULT_ENC_KEY", "0123456789abcdef0123456789abcde"),
        ("VAULT_ENC_KEY", "0123456789abcdef0123456789abcdef0"),
        ("REALTIME_DB_ENC_KEY", "0123456789abcde"),
        ("JWT_SECRET", "short-but-not-a-demo-value-31ch"),
        ("SECRET_KEY_BASE", "a".repeat(63).leak()),
        ("PG_META_CRYPTO_KEY", "0123456789abcdef0123456789abcde"),
    ];
    for (key, bad) in cases {
        let (code, report) = Env::new(&set_line(&base, key, bad)).json(&[]);
        assert_eq!(code, 1, "{key}");
        assert_finding(&report, "error", "wrong-length", Some(key));
    }
}

#[test]
fn an_anon_key_signed_by_another_secret_has_a_bad_signature() {
    let base = generated(false);
    let other = generated(false);
    let (code, report) = Env::new(&set_line(&base, "ANON_KEY", &value(&other, "ANON_KEY"))).json(&[]);
    assert_eq!(code, 1);
    assert_eq!(codes_of(&report, "ANON_KEY"), ["jwt-bad-signature"]);
}

#[test]
fn swapped_api_keys_have_the_wrong_role() {
    let base = generated(false);
    let swapped = set_line(
        &set_line(&base, "ANON_KEY", &value(&base, "SERVICE_ROLE_KEY")),
        "SERVICE_ROLE_KEY",
        &value(&base, "ANON_KEY"),
    );
    let (code, report) = Env::new(&swapped).json(&[]);
    assert_eq!(code, 1);
    assert_eq!(codes_of(&report, "ANON_KEY"), ["jwt-wrong-role"]);
    assert_eq!(codes_of(&report, "SERVICE_ROLE_KEY"), ["jwt-wrong-role"]);
}

#[test]
fn an_expired_api_key_is_an_error() {
    let base = generated(false);
    let token =
        hs256(&value(&base, "JWT_SECRET"), &format!(r#"{{"role":"anon","iss":"supabase","exp":{}}}"#, now() - 60));
    let (code, report) = Env::new(&set_line(&base, "ANON_KEY", &token)).json(&[]);
    assert_eq!(code, 1);
    assert_eq!(codes_of(&report, "ANON_KEY"), ["jwt-expired"]);
}

#[test]
fn an_api_key_expiring_within_30_days_is_only_a_warning() {
    let base = generated(false);
    // One clock reading: a second boundary between two would leave the claims unchanged.
    let now = now();
    let claims = format!(r#"{{"role":"service_role","iss":"supabase","exp":{}}}"#, now + 10 * 86_400);
    let token = hs256(&value(&base, "JWT_SECRET"), &claims);
    let (code, report) = Env::new(&set_line(&base, "SERVICE_ROLE_KEY", &token)).json(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_finding(&report, "warning", "jwt-expiring", Some("SERVICE_ROLE_KEY"));
    let in_31_days = hs256(
        &value(&base, "JWT_SECRET"),
        &claims.replace(&format!("{}", now + 10 * 86_400), &format!("{}", now + 31 * 86_400)),
    );
    let (_, report) = Env::new(&set_line(&base, "SERVICE_ROLE_KEY", &in_31_days)).json(&[]);
    assert!(codes_of(&report, "SERVICE_ROLE_KEY").is_empty(), "{report:#}");
}

#[test]
fn a_value_that_is_not_a_jwt_is_unparsable() {
    let base = generated(false);
    for bad in ["not-a-token", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.sig"] {
        let (code, report) = Env::new(&set_line(&base, "ANON_KEY", bad)).json(&[]);
        assert_eq!(code, 1);
        assert_eq!(codes_of(&report, "ANON_KEY"), ["jwt-unparsable"], "{bad}");
    }
}

#[test]
fn url_breaking_characters_in_postgres_password_are_errors() {
    let base = generated(false);
    for c in ["@", "/", "?", "#", ":", "&", "%", " ", "\""] {
        let password = format!("k3J9qLm2{c}xP7vR4zW8nB5tY6uH1");
        let (code, report) = Env::new(&set_line(&base, "POSTGRES_PASSWORD", &password)).json(&[]);
        assert_eq!(code, 1, "{c:?}");
        assert_eq!(codes_of(&report, "POSTGRES_PASSWORD"), ["url-breaking-password"], "{c:?}");
    }
}

#[test]
fn a_digits_only_dashboard_password_is_an_error() {
    let base = generated(false);
    let (code, report) = Env::new(&set_line(&base, "DASHBOARD_PASSWORD", "12345678901234567890123456789012")).json(&[]);
    assert_eq!(code, 1);
    assert_eq!(codes_of(&report, "DASHBOARD_PASSWORD"), ["digits-only-dashboard-password"]);
}

#[test]
fn a_jwks_from_another_key_pair_is_an_asymmetric_mismatch() {
    let base = generated(true);
    let other = generated(true);
    let (code, report) = Env::new(&set_line(&base, "JWT_JWKS", &value(&other, "JWT_JWKS"))).json(&[]);
    assert_eq!(code, 1);
    assert_finding(&report, "error", "asymmetric-mismatch", Some("JWT_JWKS"));
    // The ES256 tokens were signed by the JWT_KEYS key, which JWT_JWKS no longer holds.
    assert_finding(&report, "error", "jwt-bad-signature", Some("ANON_KEY_ASYMMETRIC"));
}

#[test]
fn a_jwks_key_with_the_same_kid_but_another_public_key_is_a_mismatch() {
    let base = generated(true);
    let other = generated(true);
    let mut jwks: Value = serde_json::from_str(&value(&base, "JWT_JWKS")).expect("json");
    let foreign: Value = serde_json::from_str(&value(&other, "JWT_JWKS")).expect("json");
    let ec = |set: &Value| set["keys"].as_array().unwrap().iter().position(|k| k["kty"] == "EC").unwrap();
    let (mine, theirs) = (ec(&jwks), ec(&foreign));
    jwks["keys"][mine]["x"] = foreign["keys"][theirs]["x"].clone();
    jwks["keys"][mine]["y"] = foreign["keys"][theirs]["y"].clone();
    let (code, report) = Env::new(&set_line(&base, "JWT_JWKS", &jwks.to_string())).json(&[]);
    assert_eq!(code, 1);
    assert!(message_of(&report, "asymmetric-mismatch").contains("same kid"), "{report:#}");
}

#[test]
fn an_es256_key_from_another_set_does_not_verify() {
    let base = generated(true);
    let other = generated(true);
    let (code, report) =
        Env::new(&set_line(&base, "SERVICE_ROLE_KEY_ASYMMETRIC", &value(&other, "SERVICE_ROLE_KEY_ASYMMETRIC")))
            .json(&[]);
    assert_eq!(code, 1);
    assert_eq!(codes_of(&report, "SERVICE_ROLE_KEY_ASYMMETRIC"), ["jwt-bad-signature"]);
}

#[test]
fn a_private_part_in_jwt_jwks_is_an_error() {
    let base = generated(true);
    let keys: Value = serde_json::from_str(&value(&base, "JWT_KEYS")).expect("json");
    let leaked = serde_json::json!({ "keys": keys }).to_string();
    let (code, report) = Env::new(&set_line(&base, "JWT_JWKS", &leaked)).json(&[]);
    assert_eq!(code, 1);
    assert_eq!(codes_of(&report, "JWT_JWKS"), ["jwks-private-part"]);
}

#[test]
fn an_oct_key_that_is_not_jwt_secret_is_an_error_and_a_missing_one_a_warning() {
    let base = generated(true);
    let mut jwks: Value = serde_json::from_str(&value(&base, "JWT_JWKS")).expect("json");
    let oct = jwks["keys"].as_array().unwrap().iter().position(|k| k["kty"] == "oct").expect("oct key");
    jwks["keys"][oct]["k"] = Value::from(URL_SAFE_NO_PAD.encode("some-other-hs256-secret-of-40-characters"));
    let (code, report) = Env::new(&set_line(&base, "JWT_JWKS", &jwks.to_string())).json(&[]);
    assert_eq!(code, 1);
    assert_eq!(codes_of(&report, "JWT_JWKS"), ["oct-key-mismatch"]);

    jwks["keys"].as_array_mut().unwrap().remove(oct);
    let (code, report) = Env::new(&set_line(&base, "JWT_JWKS", &jwks.to_string())).json(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_finding(&report, "warning", "oct-key-missing", Some("JWT_JWKS"));
}

#[test]
fn a_key_set_that_is_not_json_is_invalid_and_an_incomplete_set_is_missing() {
    let base = generated(true);
    let (code, report) = Env::new(&set_line(&base, "JWT_KEYS", "not json")).json(&[]);
    assert_eq!(code, 1);
    assert_eq!(codes_of(&report, "JWT_KEYS"), ["key-set-invalid"]);
    let (code, report) = Env::new(&without(&base, "JWT_JWKS")).json(&[]);
    assert_eq!(code, 1);
    assert_eq!(codes_of(&report, "JWT_JWKS"), ["missing-secret"]);
}

#[test]
fn a_world_readable_env_is_a_warning() {
    let env = Env::new(&generated(false));
    std::fs::set_permissions(&env.path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, report) = env.json(&[]);
    assert_eq!(code, 0);
    assert_finding(&report, "warning", "file-permissions", None);
    assert!(message_of(&report, "file-permissions").contains("chmod 600"), "{report:#}");
}

#[test]
fn a_leftover_pending_file_is_a_warning_pointing_at_rotate_passwords() {
    let env = Env::new(&generated(false));
    std::fs::write(env.dir.path().join(".env.pending"), "POSTGRES_PASSWORD=x\n").expect("write");
    let (code, report) = env.json(&[]);
    assert_eq!(code, 0);
    assert_finding(&report, "warning", "pending-rotation", None);
    assert!(message_of(&report, "pending-rotation").contains("rotate-passwords"), "{report:#}");
}

#[test]
fn a_temporary_file_left_by_a_killed_write_is_a_warning() {
    let env = Env::new(&generated(false));
    let (_, report) = env.json(&[]);
    assert!(findings(&report).iter().all(|(_, code, _)| code != "leftover-temp-file"), "{report:#}");
    std::fs::write(env.dir.path().join("..env.pending.Xy12Ab.tmp"), "POSTGRES_PASSWORD=x\n").expect("write");
    let (code, report) = env.json(&[]);
    assert_eq!(code, 0);
    assert_finding(&report, "warning", "leftover-temp-file", None);
    let message = message_of(&report, "leftover-temp-file");
    assert!(message.contains("..env.pending.Xy12Ab.tmp") && message.contains("rm "), "{report:#}");
}

#[test]
fn supabase_prefixed_copies_must_equal_the_standard_values() {
    let base = generated(false);
    let stale = set_line(
        &set_line(&base, "SUPABASE_ANON_KEY", &value(&base, "SERVICE_ROLE_KEY")),
        "SUPABASE_JWT_SECRET",
        &value(&generated(false), "JWT_SECRET"),
    );
    let stale = set_line(&stale, "SUPABASE_SERVICE_KEY", "x");
    let (code, report) = Env::new(&stale).json(&[]);
    assert_eq!(code, 1);
    for key in ["SUPABASE_ANON_KEY", "SUPABASE_JWT_SECRET", "SUPABASE_SERVICE_KEY"] {
        assert_eq!(codes_of(&report, key), ["supabase-alias-mismatch"], "{key}");
    }

    let good = set_line(&base, "SUPABASE_SERVICE_ROLE_KEY", &value(&base, "SERVICE_ROLE_KEY"));
    let good = format!("{good}SUPABASE_ANON_KEY=${{ANON_KEY}}\nSUPABASE_URL=http://kong:8000\n");
    let (code, report) = Env::new(&good).json(&[]);
    assert_eq!((code, findings(&report)), (0, vec![]), "{report:#}");
}

#[test]
fn urls_of_the_operators_own_roles_may_carry_their_own_passwords() {
    let base = generated(false);
    let app = set_line(&base, "APP_DATABASE_URL", "postgresql://app_user:its-own-password@db:5432/app");
    let pooler = set_line(&app, "POOLER_URL", "postgresql://postgres.tenant-1:stale-password@supavisor:6543/postgres");
    let (code, report) = Env::new(&pooler).json(&[]);
    assert_eq!(code, 1);
    assert!(codes_of(&report, "APP_DATABASE_URL").is_empty(), "{report:#}");
    assert_eq!(
        codes_of(&report, "POOLER_URL"),
        ["url-password-mismatch"],
        "supavisor's tenant form is a Supabase role"
    );
}

#[test]
fn a_connection_url_with_another_password_is_an_error() {
    let base = generated(false);
    let stale = set_line(&base, "DATABASE_URL", "postgresql://postgres:an-old-password@db:5432/postgres");
    let (code, report) = Env::new(&stale).json(&[]);
    assert_eq!(code, 1);
    assert_eq!(codes_of(&report, "DATABASE_URL"), ["url-password-mismatch"]);

    let pw = value(&base, "POSTGRES_PASSWORD");
    let good = set_line(&base, "DATABASE_URL", &format!("postgresql://postgres:{pw}@db:5432/postgres?sslmode=disable"));
    // Unquoted, so compose interpolates it; the parser keeps `${...}` and check expands it.
    let good = format!("{good}SUPABASE_DB_URL=postgres://supabase_admin:${{POSTGRES_PASSWORD}}@db:5432/postgres\n");
    let (code, report) = Env::new(&good).json(&[]);
    assert_eq!((code, findings(&report)), (0, vec![]), "{report:#}");
}

#[test]
fn a_url_password_is_compared_percent_decoded() {
    // A password the URL must encode; the rule about URL-breaking characters fires, the URL rule not.
    let base = set_line(&generated(false), "POSTGRES_PASSWORD", "k3J9q@Lm2x/P7vR4zW8nB5tY6uH");
    let good = set_line(&base, "DATABASE_URL", "postgresql://postgres:k3J9q%40Lm2x%2FP7vR4zW8nB5tY6uH@db/postgres");
    let (_, report) = Env::new(&good).json(&[]);
    assert!(codes_of(&report, "DATABASE_URL").is_empty(), "{report:#}");
    assert_eq!(codes_of(&report, "POSTGRES_PASSWORD"), ["url-breaking-password"]);
}

// ------------------------------------------------------------------------------- the report

#[test]
fn text_report_has_one_line_per_finding_and_a_summary() {
    let base = generated(false);
    let env = Env::new(&set_line(
        &set_line(&base, "DASHBOARD_PASSWORD", "83920174659201837465"),
        "VAULT_ENC_KEY",
        "k3J9qLm2xP7vR4zW8nB5tY6uH1cD0fG",
    ));
    std::fs::set_permissions(&env.path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let out = env.check(&[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    let file = std::fs::read_to_string(&env.path).expect("read");
    let vault_line = file.lines().position(|l| l.starts_with("VAULT_ENC_KEY=")).expect("VAULT_ENC_KEY") + 1;
    assert!(
        lines[0].starts_with("error[")
            && lines.iter().any(|l| l.starts_with(&format!("error[wrong-length] VAULT_ENC_KEY (line {vault_line}): "))),
        "findings name the key and its line: {stdout}"
    );
    assert!(lines[2].starts_with("warning[file-permissions] "), "{stdout}");
    assert!(lines[3].contains("2 error(s), 1 warning(s)"), "{stdout}");
    assert!(text(&out.stderr).is_empty(), "the report is on stdout only: {}", text(&out.stderr));
}

#[test]
fn json_ok_follows_the_exit_code() {
    let (code, report) = Env::new(&generated(false)).json(&[]);
    assert_eq!((code, report["ok"].as_bool()), (0, Some(true)));
    let Some(upstream) = upstream("json_ok_follows_the_exit_code") else { return };
    let (code, report) = Env::new(&upstream).json(&[]);
    assert_eq!((code, report["ok"].as_bool()), (1, Some(false)));
    assert_eq!(report["errors"].as_u64(), Some(findings(&report).len() as u64));
}

#[test]
fn a_missing_env_file_is_one_error_naming_it() {
    let dir = tempdir();
    let path = dir.path().join("absent.env");
    let out = bin().arg("check").arg("--env-file").arg(&path).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("absent.env"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn messages_never_contain_a_secret_value() {
    let other = generated(true);
    let secrets = [
        ("JWT_SECRET", "DISTINCT-jwt-secret-AAAA"),
        ("POSTGRES_PASSWORD", "DISTINCT@pg/pass:BBBB"),
        ("DASHBOARD_PASSWORD", "98765432109876543"),
        ("VAULT_ENC_KEY", "DISTINCT-vault-CCCC"),
        ("SECRET_KEY_BASE", "DISTINCT-secret-key-base-DDDD"),
        ("SUPABASE_JWT_SECRET", "DISTINCT-alias-EEEE"),
        ("DATABASE_URL", "postgresql://postgres:DISTINCT-url-pw-FFFF@127.0.0.1:1/postgres"),
        ("ANON_KEY", "DISTINCT-not-a-jwt-GGGG"),
        ("SERVICE_ROLE_KEY", &value(&other, "SERVICE_ROLE_KEY")),
        ("JWT_KEYS", &value(&other, "JWT_KEYS")),
        ("JWT_JWKS", &format!(r#"{{"keys":{}}}"#, value(&other, "JWT_KEYS"))),
        ("ANON_KEY_ASYMMETRIC", "DISTINCT.asym.HHHH"),
    ];
    let mut file = generated(false);
    for (key, secret) in &secrets {
        file = set_line(&file, key, secret);
    }
    let file = set_line(&file, "POSTGRES_HOST", "127.0.0.1");
    let file = set_line(&file, "POSTGRES_PORT", "1");
    let env = Env::new(&file);
    for args in [
        &[][..],
        &["--format", "json"][..],
        &["--db", "--sslmode", "disable"][..],
        &["--db", "--format", "json", "-v"][..],
    ] {
        let out = env.check(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let all = text(&out.stdout) + &text(&out.stderr);
        for (key, secret) in &secrets {
            assert!(!all.contains(secret), "{key}'s value leaked with {args:?}:\n{all}");
        }
        for piece in ["DISTINCT", "98765432109876543", "pg%2Fpass", "AAAA", "FFFF"] {
            assert!(!all.contains(piece), "{piece} leaked with {args:?}:\n{all}");
        }
    }
}

// ------------------------------------------------------------------------------------- --db

/// A valid generated `.env` pointing at `pg`, with `password` as POSTGRES_PASSWORD.
fn env_for(pg: &Cluster, password: &str) -> Env {
    let mut file = generated(false);
    for (key, v) in [
        ("POSTGRES_HOST", pg.host().to_owned()),
        ("POSTGRES_PORT", pg.port().to_string()),
        ("POSTGRES_DB", pg.main_db().to_owned()),
        ("POSTGRES_PASSWORD", password.to_owned()),
    ] {
        file = set_line(&file, key, &v);
    }
    Env::new(&file)
}

const DB_ARGS: &[&str] = &["--db", "--sslmode", "disable"];

#[test]
fn db_check_passes_against_a_matching_cluster() {
    let pg = Cluster::start(ClusterOptions::default());
    let (code, report) = env_for(&pg, pg.password()).json(DB_ARGS);
    assert_eq!((code, findings(&report)), (0, vec![]), "{report:#}");
}

#[test]
fn db_check_that_passes_says_which_roles_logged_in_and_which_copies_were_compared() {
    let pg = Cluster::start(ClusterOptions::default());
    let out = env_for(&pg, pg.password()).check(&["--db", "--sslmode", "disable"]);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", text(&out.stderr));
    let logins = said
        .lines()
        .find(|l| l.starts_with("verified: POSTGRES_PASSWORD logs in as "))
        .unwrap_or_else(|| panic!("{said}"));
    for role in LOGIN_ROLES {
        assert!(logins.contains(role), "{role}: {said}");
    }
    let copies = said
        .lines()
        .find(|l| l.starts_with("verified: the copies in the database"))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(copies.contains("_supavisor") || copies.contains("tenants"), "{said}");
    assert!(said.lines().last().is_some_and(|l| l.starts_with("ok: no problems found in ")), "{said}");
}

#[test]
fn db_check_with_a_wrong_password_reports_every_login_role() {
    let pg = Cluster::start(ClusterOptions::default());
    let (code, report) = env_for(&pg, "0123456789abcdef0123456789abcdef").json(DB_ARGS);
    assert_eq!(code, 1);
    let failed: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "db-login-failed")
        .map(|f| f["message"].as_str().unwrap().to_owned())
        .collect();
    // One line for one wrong password, naming every role.
    assert_eq!(failed.len(), 1, "{failed:#?}");
    for role in LOGIN_ROLES {
        assert!(failed[0].contains(&format!(" {role}")), "{role} not reported: {failed:#?}");
    }
    assert!(failed[0].contains("roles "), "{failed:#?}");
    // The admin login failed too: the stock list was used, and the message says what that means.
    assert!(failed.iter().all(|m| m.contains("does not exist")), "{failed:#?}");
}

#[test]
fn db_check_names_the_one_role_whose_password_differs() {
    let pg = Cluster::start(ClusterOptions::default());
    pg.psql("SET log_statement = 'none'; ALTER ROLE authenticator PASSWORD 'a-different-password-for-the-test';");
    let (code, report) = env_for(&pg, pg.password()).json(DB_ARGS);
    assert_eq!(code, 1);
    let all = findings(&report);
    assert_eq!(all, vec![("error".into(), "db-login-failed".into(), Some("POSTGRES_PASSWORD".into()))], "{report:#}");
    let message = message_of(&report, "db-login-failed");
    assert!(message.contains("LOGIN role authenticator "), "{message}");
}

#[test]
fn db_check_reports_an_analytics_url_with_another_password() {
    let pg = Cluster::start(ClusterOptions::default());
    pg.psql(
        "UPDATE _analytics.source_backends SET config = jsonb_set(config, '{url}', \
         to_jsonb('postgresql://supabase_admin:stale-password@db:5432/postgres'::text)) WHERE id = 1;",
    );
    let (code, report) = env_for(&pg, pg.password()).json(DB_ARGS);
    assert_eq!(code, 1);
    assert_eq!(
        findings(&report),
        vec![("error".into(), "analytics-password-mismatch".into(), Some("POSTGRES_PASSWORD".into()))]
    );
    let message = message_of(&report, "analytics-password-mismatch");
    assert!(message.contains("row id 1") && message.contains(pg.work_db()), "{message}");
    assert!(!message.contains("stale-password"), "{message}");
}

#[test]
fn db_check_finds_analytics_in_the_main_database_of_older_stacks() {
    if skip_on_external_database("the older layout") {
        return;
    }
    let pg = Cluster::start(ClusterOptions::default().legacy());
    pg.psql(
        "UPDATE _analytics.source_backends SET config = jsonb_set(config, '{url}', \
         to_jsonb('postgres://supabase_admin:stale@db:5432/postgres'::text)) WHERE id = 2;",
    );
    let (code, report) = env_for(&pg, pg.password()).json(DB_ARGS);
    assert_eq!(code, 1);
    assert!(message_of(&report, "analytics-password-mismatch").contains("row id 2"), "{report:#}");
}

#[test]
fn db_check_of_an_unreachable_host_is_one_error_naming_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let mut file = generated(false);
    file = set_line(&file, "POSTGRES_HOST", "127.0.0.1");
    file = set_line(&file, "POSTGRES_PORT", &port.to_string());
    let (code, report) = Env::new(&file).json(DB_ARGS);
    assert_eq!(code, 1);
    assert_eq!(findings(&report), vec![("error".into(), "db-unreachable".into(), None)], "{report:#}");
    assert!(message_of(&report, "db-unreachable").contains(&format!("127.0.0.1:{port}")), "{report:#}");
}

#[test]
fn db_check_without_a_password_says_nothing_was_checked() {
    let base = without(&generated(false), "POSTGRES_PASSWORD");
    let (code, report) = Env::new(&base).json(DB_ARGS);
    assert_eq!(code, 1);
    assert_finding(&report, "error", "db-not-checked", Some("POSTGRES_PASSWORD"));
}

#[test]
fn db_check_of_a_missing_database_is_a_connect_failure_naming_the_host() {
    let pg = Cluster::start(ClusterOptions::default());
    let env = env_for(&pg, pg.password());
    std::fs::write(&env.path, set_line(&std::fs::read_to_string(&env.path).unwrap(), "POSTGRES_DB", "no_such_db"))
        .unwrap();
    let (code, report) = env.json(DB_ARGS);
    assert_eq!(code, 1);
    assert_eq!(findings(&report), vec![("error".into(), "db-connect-failed".into(), None)], "{report:#}");
    assert!(message_of(&report, "db-connect-failed").contains(&format!("127.0.0.1:{}", pg.port())), "{report:#}");
}

#[test]
fn db_check_of_a_server_without_supabase_login_roles_is_a_warning() {
    if skip_on_external_database("changes role attributes the harness cannot restore") {
        return;
    }
    let pg = Cluster::start(ClusterOptions::default());
    let nologin: String = LOGIN_ROLES.iter().map(|r| format!("ALTER ROLE {r} NOLOGIN;\n")).collect();
    pg.psql(&nologin);
    let env = env_for(&pg, pg.password());
    let url = pg.db_url(APP_USER, APP_USER_PASSWORD, pg.main_db());
    let out = env.db_check_through(&url);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    // app_user may not read _analytics: the table exists (the catalogs say so), so the audit
    // says it was not compared rather than pretending there is none.
    assert_eq!(
        findings(&report),
        vec![
            ("warning".into(), "db-no-supabase-roles".into(), None),
            ("warning".into(), "analytics-not-checked".into(), None),
            // Nor the tables where Supavisor, Realtime and Logflare keep their copies.
            ("warning".into(), "db-copy-not-checked".into(), Some("VAULT_ENC_KEY".into())),
            ("warning".into(), "db-copy-not-checked".into(), Some("REALTIME_DB_ENC_KEY".into())),
            ("warning".into(), "db-copy-not-checked".into(), Some("REALTIME_DB_ENC_KEY".into())),
            ("warning".into(), "db-copy-not-checked".into(), Some("LOGFLARE_PUBLIC_ACCESS_TOKEN".into())),
            ("warning".into(), "db-copy-not-checked".into(), Some("LOGFLARE_PUBLIC_ACCESS_TOKEN".into())),
        ],
        "{report:#}"
    );
}

#[test]
fn db_check_blames_the_url_not_postgres_password_when_only_the_admin_url_is_wrong() {
    let pg = Cluster::start(ClusterOptions::default());
    let env = env_for(&pg, pg.password());
    let url = pg.db_url("supabase_admin", "not-the-password", pg.main_db());
    let out = env.db_check_through(&url);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(out.status.code(), Some(1));
    // Only the admin login failed; every role accepts POSTGRES_PASSWORD.
    assert_eq!(findings(&report), vec![("error".into(), "db-login-failed".into(), None)], "{report:#}");
    assert!(!text(&out.stdout).contains("not-the-password") && !text(&out.stderr).contains("not-the-password"));
}

#[test]
fn db_check_reads_a_url_column_where_the_table_has_one() {
    if skip_on_external_database("changes the table, which the harness cannot restore") {
        return;
    }
    let pg = Cluster::start(ClusterOptions::default());
    pg.psql(
        "ALTER TABLE _analytics.source_backends ADD COLUMN url text; \
         UPDATE _analytics.source_backends SET config = NULL, \
         url = 'postgresql://supabase_admin:stale@db:5432/postgres' WHERE id = 1;",
    );
    let (code, report) = env_for(&pg, pg.password()).json(DB_ARGS);
    assert_eq!(code, 1);
    assert_eq!(
        findings(&report),
        vec![("error".into(), "analytics-password-mismatch".into(), Some("POSTGRES_PASSWORD".into()))]
    );
}

#[test]
fn db_check_of_unreadable_analytics_is_a_warning() {
    if skip_on_external_database("changes the table, which the harness cannot restore") {
        return;
    }
    let pg = Cluster::start(ClusterOptions::default());
    pg.psql(
        "ALTER TABLE _analytics.source_backends ALTER COLUMN config TYPE text USING config::text; \
         UPDATE _analytics.source_backends SET config = 'not json' WHERE id = 1;",
    );
    let (code, report) = env_for(&pg, pg.password()).json(DB_ARGS);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(findings(&report), vec![("warning".into(), "analytics-not-checked".into(), None)], "{report:#}");
}
