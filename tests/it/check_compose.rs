//! `check --compose` through the binary: against upstream's real compose file (skipped, saying
//! so, without `../shared/upstream/`), and against small compose files that show each finding
//! with its file and line.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{bin, tempdir};
use crate::generate_compose::upstream_compose;

fn generated() -> String {
    let out = bin().arg("generate-keys").output().expect("runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf-8")
}

fn write_env(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join(".env");
    std::fs::write(&path, text).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// One finding as `(severity, code, key, compose file name, line)`.
type Row = (String, String, String, String, u64);

/// `check --format json` with the compose files; the exit code and the findings.
fn check(env: &Path, composes: &[&Path]) -> (i32, Vec<Row>) {
    let mut cmd = bin();
    cmd.arg("check").arg("--env-file").arg(env).args(["--format", "json"]);
    for compose in composes {
        cmd.arg("--compose").arg(compose);
    }
    let out = cmd.output().expect("runs");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("json report; stderr: {}", String::from_utf8_lossy(&out.stderr)));
    let findings = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let file = f["file"].as_str().map(|p| Path::new(p).file_name().unwrap().to_string_lossy().into_owned());
            (
                f["severity"].as_str().unwrap().to_owned(),
                f["code"].as_str().unwrap().to_owned(),
                f["key"].as_str().unwrap_or_default().to_owned(),
                file.unwrap_or_default(),
                f["line"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    (out.status.code().expect("exit code"), findings)
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> u64 {
    text.lines().position(|l| l.contains(needle)).expect("needle present") as u64 + 1
}

#[test]
fn the_default_env_passes_upstreams_compose_file_with_warnings_only() {
    let Some(compose) = upstream_compose("the_default_env_passes_upstreams_compose_file_with_warnings_only") else {
        return;
    };
    let dir = tempdir();
    let env = write_env(dir.path(), &generated());
    let (code, findings) = check(&env, &[&compose]);
    assert_eq!(code, 0, "{findings:#?}");
    assert!(findings.iter().all(|f| f.0 == "warning"), "{findings:#?}");
    let compose_text = std::fs::read_to_string(&compose).expect("read");
    let fallback_line = line_of(&compose_text, "${REALTIME_DB_ENC_KEY:-");
    assert!(
        findings.contains(&(
            "warning".into(),
            "compose-secret-fallback-dormant".into(),
            "REALTIME_DB_ENC_KEY".into(),
            "docker-compose.yml".into(),
            fallback_line
        )),
        "{findings:#?}"
    );
    // Read by upstream's override files or PMOVES services, not by the base file: the stack
    // model knows them, so none is flagged.
    let unused: Vec<&str> = findings.iter().filter(|f| f.1 == "unused-env-key").map(|f| f.2.as_str()).collect();
    assert!(unused.is_empty(), "{unused:?}");
}

#[test]
fn without_the_secret_upstreams_fallback_is_an_error_at_its_line() {
    let Some(compose) = upstream_compose("without_the_secret_upstreams_fallback_is_an_error_at_its_line") else {
        return;
    };
    let dir = tempdir();
    let text: String = generated()
        .lines()
        .filter(|l| !l.starts_with("REALTIME_DB_ENC_KEY=") && !l.starts_with("SITE_URL="))
        .map(|l| format!("{l}\n"))
        .collect();
    let env = write_env(dir.path(), &text);
    let (code, findings) = check(&env, &[&compose]);
    assert_eq!(code, 1);
    let compose_text = std::fs::read_to_string(&compose).expect("read");
    let codes_for = |key: &str| -> Vec<(String, String, u64)> {
        findings.iter().filter(|f| f.2 == key).map(|f| (f.0.clone(), f.1.clone(), f.4)).collect()
    };
    assert!(codes_for("REALTIME_DB_ENC_KEY").contains(&(
        "error".into(),
        "compose-secret-fallback".into(),
        line_of(&compose_text, "${REALTIME_DB_ENC_KEY:-")
    )));
    assert_eq!(
        codes_for("SITE_URL"),
        [("warning".into(), "compose-unset-variable".into(), line_of(&compose_text, "${SITE_URL}"))]
    );
}

#[test]
fn literal_secrets_unset_secrets_and_several_files() {
    let dir = tempdir();
    let env = write_env(dir.path(), &generated());
    let base = dir.path().join("base.yml");
    std::fs::write(
        &base,
        "services:\n  app:\n    image: app\n    environment:\n      JWT_SECRET: ${JWT_SECRET}\n      API_TOKEN: abc123-literal\n",
    )
    .expect("write");
    let extra = dir.path().join("override.yml");
    std::fs::write(
        &extra,
        "services:\n  worker:\n    image: w\n    environment:\n      - DB=postgres://app:plain@db/app\n      - KEY=${MISSING_SERVICE_KEY}\n",
    )
    .expect("write");
    let (code, findings) = check(&env, &[&base, &extra]);
    assert_eq!(code, 1);
    let errors: Vec<(&str, &str, &str, u64)> =
        findings.iter().filter(|f| f.0 == "error").map(|f| (f.1.as_str(), f.2.as_str(), f.3.as_str(), f.4)).collect();
    assert_eq!(
        errors,
        [
            ("compose-literal-secret", "API_TOKEN", "base.yml", 6),
            ("compose-literal-secret", "", "override.yml", 5),
            ("compose-unset-secret", "MISSING_SERVICE_KEY", "override.yml", 6),
        ]
    );
    // The text report names file and line; no value is printed.
    let out = bin().arg("check").arg("--env-file").arg(&env).arg("--compose").arg(&base).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("API_TOKEN (") && stdout.contains("base.yml:6):"), "{stdout}");
    assert!(!stdout.contains("abc123-literal"), "{stdout}");
}

#[test]
fn an_unreadable_compose_file_is_one_error_naming_it() {
    let dir = tempdir();
    let env = write_env(dir.path(), &generated());
    let missing = dir.path().join("absent.yml");
    let out = bin().arg("check").arg("--env-file").arg(&env).arg("--compose").arg(&missing).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.yml"));
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "services: [\n").expect("write");
    let out = bin().arg("check").arg("--env-file").arg(&env).arg("--compose").arg(&bad).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yml") && stderr.contains("not valid YAML"), "{stderr}");
}
