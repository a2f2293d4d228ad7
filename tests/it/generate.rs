//! `generate-keys` through the built binary.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use predicates::prelude::*;
use serde_json::Value;

use crate::common::{assert_secret_shapes, bin, env_value, hs256_signature, mode_of, parse_env, tempdir};

const FIVE_YEARS: u64 = 157_680_000;

fn generate(args: &[&str]) -> String {
    let out = bin().arg("generate-keys").args(args).output().expect("runs");
    assert!(out.status.success(), "generate-keys failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn b64url_json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

#[test]
fn every_secret_has_its_exact_length_and_alphabet() {
    let text = generate(&[]);
    assert_secret_shapes(|key| env_value(&text, key));
}

#[test]
fn default_output_carries_the_pmoves_variables() {
    let text = generate(&[]);
    for (key, value) in [
        ("JWT_EXPIRY", "3600"),
        ("POSTGRES_HOST", "supabase-db"),
        ("POSTGRES_DB", "pmoves"),
        ("POSTGRES_PORT", "5432"),
        ("DOCKED_MODE", "true"),
        ("PARENT_SYSTEM", "PMOVES.AI"),
        ("PARENT_VERSION", "1.0.0"),
        ("MINIO_ENDPOINT", "http://minio:9000"),
        ("NATS_URL", "nats://nats:pmoves@nats:4222"),
    ] {
        assert_eq!(env_value(&text, key).as_deref(), Some(value), "{key}");
    }
    assert!(text.starts_with('#'), "the .env starts with an explanatory comment");
    let keys: Vec<_> = parse_env(&text).into_iter().map(|(k, _)| k).collect();
    let unique: BTreeSet<_> = keys.iter().collect();
    assert_eq!(keys.len(), unique.len(), "no key twice");
}

#[test]
fn two_runs_share_no_secret_value() {
    let a = parse_env(&generate(&["--asymmetric"]));
    let b: BTreeSet<String> = parse_env(&generate(&["--asymmetric"])).into_iter().map(|(_, v)| v).collect();
    // Every minted key; the other lines are the stack's non-secret defaults, the same each run.
    let secrets: Vec<&str> = crate::common::minted_keys().collect();
    let mut seen = 0;
    for (key, value) in a {
        if secrets.contains(&key.as_str()) {
            seen += 1;
            assert!(!b.contains(&value), "{key} repeated across runs");
        }
    }
    assert_eq!(seen, secrets.len());
}

#[test]
fn hs256_tokens_verify_by_recomputed_hmac_with_exact_claims() {
    let before = now();
    let text = generate(&[]);
    let after = now();
    let secret = env_value(&text, "JWT_SECRET").unwrap();
    for (key, role) in [("ANON_KEY", "anon"), ("SERVICE_ROLE_KEY", "service_role")] {
        let token = env_value(&text, key).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{key} is a compact JWT");
        let header_json = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header_json, r#"{"alg":"HS256","typ":"JWT"}"#);
        // The HMAC key is the UTF-8 bytes of the JWT_SECRET string, not its base64 decoding.
        let expected = hs256_signature(&secret, &format!("{}.{}", parts[0], parts[1]));
        assert_eq!(parts[2], expected, "{key} signature");
        let claims = b64url_json(parts[1]);
        let payload_json = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert!(payload_json.starts_with(&format!(r#"{{"role":"{role}","iss":"supabase","iat":"#)), "{payload_json}");
        assert_eq!(claims["role"], role);
        assert_eq!(claims["iss"], "supabase");
        let iat = claims["iat"].as_u64().unwrap();
        assert!((before..=after).contains(&iat), "iat is now");
        assert_eq!(claims["exp"].as_u64().unwrap() - iat, FIVE_YEARS);
        assert_eq!(claims.as_object().unwrap().len(), 4, "no extra claims");
    }
}

#[test]
fn es256_tokens_verify_against_the_public_jwks_which_has_no_private_part() {
    use p256::ecdsa::signature::Verifier as _;
    let text = generate(&["--asymmetric"]);
    let jwks: Value = serde_json::from_str(&env_value(&text, "JWT_JWKS").unwrap()).unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    let ec = keys.iter().find(|k| k["kty"] == "EC").expect("EC key in JWKS");
    assert!(ec.get("d").is_none(), "JWT_JWKS must not carry the private scalar");
    assert_eq!(ec["crv"], "P-256");
    let oct = keys.iter().find(|k| k["kty"] == "oct").expect("oct key in JWKS");
    let secret = env_value(&text, "JWT_SECRET").unwrap();
    assert_eq!(URL_SAFE_NO_PAD.decode(oct["k"].as_str().unwrap()).unwrap(), secret.as_bytes());

    let x = URL_SAFE_NO_PAD.decode(ec["x"].as_str().unwrap()).unwrap();
    let y = URL_SAFE_NO_PAD.decode(ec["y"].as_str().unwrap()).unwrap();
    let point = p256::EncodedPoint::from_affine_coordinates(x.as_slice().into(), y.as_slice().into(), false);
    let verifying = p256::ecdsa::VerifyingKey::from_encoded_point(&point).unwrap();

    for (key, role) in [("ANON_KEY_ASYMMETRIC", "anon"), ("SERVICE_ROLE_KEY_ASYMMETRIC", "service_role")] {
        let token = env_value(&text, key).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let header = b64url_json(parts[0]);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], ec["kid"], "{key} names the JWKS key");
        let signature = p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        verifying
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("ES256 signature verifies");
        let claims = b64url_json(parts[1]);
        assert_eq!(claims["role"], role);
        assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), FIVE_YEARS);
    }

    let private: Value = serde_json::from_str(&env_value(&text, "JWT_KEYS").unwrap()).unwrap();
    let private_ec = private.as_array().unwrap().iter().find(|k| k["kty"] == "EC").unwrap();
    assert!(private_ec.get("d").is_some(), "JWT_KEYS carries the private key");
    assert_eq!(private_ec["x"], ec["x"]);
    assert!(env_value(&text, "SUPABASE_PUBLISHABLE_KEY").unwrap().starts_with("sb_publishable_"));
    assert!(env_value(&text, "SUPABASE_SECRET_KEY").unwrap().starts_with("sb_secret_"));
}

#[test]
fn json_lines_in_the_env_output_are_bare() {
    let text = generate(&["--asymmetric"]);
    let line = text.lines().find(|l| l.starts_with("JWT_KEYS=")).unwrap();
    assert!(line.starts_with("JWT_KEYS=[") && line.ends_with(']'), "JWT_KEYS is bare JSON, as upstream writes it");
}

fn k8s_string_data(text: &str) -> BTreeMap<String, String> {
    let data = text.split("stringData:\n").nth(1).expect("stringData section");
    data.lines()
        .map(|l| {
            let (k, v) = l.trim_start().split_once(": ").expect("key: value");
            (k.to_owned(), serde_json::from_str::<String>(v).expect("double-quoted scalar"))
        })
        .collect()
}

#[test]
fn json_and_k8s_outputs_parse_and_carry_every_key() {
    let env_keys: BTreeSet<String> = parse_env(&generate(&["--asymmetric"])).into_iter().map(|(k, _)| k).collect();
    let json: BTreeMap<String, String> =
        serde_json::from_str(&generate(&["--asymmetric", "--format", "json"])).unwrap();
    assert_eq!(json.keys().cloned().collect::<BTreeSet<_>>(), env_keys);
    let k8s = generate(&["--asymmetric", "--format", "k8s", "--name", "supa", "--namespace", "prod"]);
    assert!(k8s.starts_with("apiVersion: v1\nkind: Secret\n"));
    assert!(k8s.contains("  name: \"supa\"\n  namespace: \"prod\"\n"));
    assert!(k8s.contains("\ntype: Opaque\n"));
    let data = k8s_string_data(&k8s);
    assert_eq!(data.keys().cloned().collect::<BTreeSet<_>>(), env_keys);
    let jwks: Value = serde_json::from_str(&data["JWT_JWKS"]).expect("JSON survives YAML quoting");
    assert!(jwks["keys"].is_array());
}

#[test]
fn an_invalid_kubernetes_name_is_a_usage_error() {
    bin()
        .args(["generate-keys", "--format", "k8s", "--name", "Not_Valid"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("--name"));
}

#[test]
fn help_lists_the_exit_codes() {
    bin()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes:").and(predicate::str::contains("4  the database changed")));
    bin().args(["generate-keys", "--help"]).assert().success().stdout(predicate::str::contains("--asymmetric"));
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    bin().args(["generate-keys", "--bogus"]).assert().code(2).stdout("");
    bin().assert().code(2);
}

#[test]
fn version_comes_from_cargo() {
    bin().arg("--version").assert().success().stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_failed_write_to_stdout_fails_instead_of_truncating() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let out = std::process::Command::new(crate::common::bin_path())
        .arg("generate-keys")
        .env_clear()
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pmoves-secrets: error: cannot write the output to standard output"), "{stderr}");
}

#[test]
fn output_creates_a_private_file_and_refuses_to_replace_one() {
    let dir = tempdir();
    let path = dir.path().join("fresh.env");
    bin().args(["generate-keys", "--output"]).arg(&path).assert().success().stdout("");
    assert_eq!(mode_of(&path), 0o600);
    let first = std::fs::read_to_string(&path).unwrap();
    assert!(env_value(&first, "JWT_SECRET").is_some());

    bin().args(["generate-keys", "--output"]).arg(&path).assert().code(1).stderr(predicate::str::contains("fresh.env"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first, "refused, untouched");

    bin().args(["generate-keys", "--force", "--output"]).arg(&path).assert().success();
    assert_ne!(std::fs::read_to_string(&path).unwrap(), first, "replaced with --force");
    assert_eq!(mode_of(&path), 0o600);
}

#[test]
fn a_terminal_on_stdout_gets_a_reminder_that_the_output_is_secret() {
    let mut cmd = std::process::Command::new(crate::common::bin_path());
    cmd.arg("generate-keys").env("NO_COLOR", "1");
    let mut session = rexpect::session::spawn_command(cmd, Some(10_000)).expect("pty");
    // The reminder's own words, before the first secret: the generated text's header also says
    // "secret", so matching that word alone would pass without any reminder.
    let before = session.exp_string("JWT_SECRET=").expect("the secrets follow");
    assert!(
        before.contains("warning: the output below is secret: redirect it to a file"),
        "no reminder before the secrets: {before:?}"
    );
    session.exp_eof().expect("exits");

    // Not on a terminal: no reminder (it would only clutter a redirected run's stderr).
    let out = crate::common::bin().arg("generate-keys").output().expect("runs");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("output below is secret"));
}

#[test]
fn kubernetes_flags_need_format_k8s() {
    for args in [&["--namespace", "prod"][..], &["--name", "supa"][..], &["--format", "json", "--name", "x"][..]] {
        let out = bin().arg("generate-keys").args(args).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "nothing printed");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--format k8s"), "{args:?}");
    }
    let out = bin().args(["generate-keys", "--format", "k8s", "--namespace", "prod"]).output().expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("name: \"supabase-secrets\""));
}
