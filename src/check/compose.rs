//! `check --compose FILE`: the compose files the `.env` is written for, read as compose reads
//! them (SPEC §4).
//!
//! Each file is parsed as YAML (yaml-rust2's event parser, which gives every scalar's line) and
//! every scalar value goes through compose's interpolation ([`interpolate`]) with the `.env`'s
//! values. That shows
//! - variables a service reads that the `.env` does not set (`compose-unset-variable`: an error
//!   for a secret or a `${VAR:?…}`, else a warning, as compose itself only warns);
//! - `${SECRET:-literal}` fallbacks that hand a secret a value printed in the compose file
//!   (`compose-secret-fallback`: an error when the `.env` leaves the fallback in effect, a
//!   warning while it is set);
//! - secrets written into the compose file itself (`compose-literal-secret`);
//! - `.env` keys that no compose file reads (`unused-env-key`, a warning: an override file or a
//!   service outside these files may read them).
//!
//! Only the `.env` is consulted for values, not the shell: the audit is of the files. Messages
//! name variables, files and lines, never a value.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::values::{is_template, remedy_for_template, Values};
use super::{Code, Finding};
use crate::compose_file::key_set_wiring;
use crate::compose_file::{scalars, Scalar};
use crate::envfile::interpolate::{referenced_names, uses_of, Op, Use};
use crate::error::Result;
use crate::keyring::{self, KEYS_KEY, STATE_KEY};
use crate::{dburl, stack, strength};

/// The longest expansion of one compose value that is not reported: compose builds it in
/// memory, so a value whose references repeat a large one many times is a problem to name. The
/// audit only counts the length, it builds nothing.
const EXPANSION_LIMIT: usize = 1 << 24;

/// Whether `name` holds a secret: a key `generate-keys` mints, one with a strength minimum, or a
/// name that says so.
fn is_secret_name(name: &str) -> bool {
    stack::key(name).is_some()
        || strength::minimum_for(name).is_some()
        || ["PASSWORD", "SECRET", "_PASS", "_KEY", "_KEYS", "TOKEN", "_JWKS"].iter().any(|part| {
            if part.starts_with('_') {
                name.ends_with(part)
            } else {
                name.contains(part)
            }
        })
}

/// A default that holds no key at all (`[]`, `{"keys":[]}`): verification then fails closed,
/// which is no published secret.
fn is_empty_key_set(word: &str) -> bool {
    match serde_json::from_str::<serde_json::Value>(word) {
        Ok(serde_json::Value::Array(items)) => items.is_empty(),
        Ok(serde_json::Value::Object(map)) => {
            map.len() == 1 && map.get("keys").and_then(serde_json::Value::as_array).is_some_and(Vec::is_empty)
        }
        _ => false,
    }
}

/// Audits every compose file against the `.env`'s values.
pub(super) fn audit(files: &[impl AsRef<Path>], values: &Values, env_path: &Path) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    let mut read: BTreeSet<String> = BTreeSet::new();
    for file in files {
        out.extend(audit_file(file.as_ref(), values, env_path, &mut read)?);
    }
    let unwired = key_sets_unwired(files, values)?;
    out.extend(unused_keys(values, &read, &unwired));
    out.extend(unwired);
    Ok(out)
}

/// The findings of one compose file, each with its file and line; adds the names its values
/// read to `read`.
fn audit_file(file: &Path, values: &Values, env_path: &Path, read: &mut BTreeSet<String>) -> Result<Vec<Finding>> {
    let lookup = |name: &str| values.as_compose_reads(name);
    let mut out = Vec::new();
    let shown = crate::ui::printable(&file.display().to_string()).into_owned();
    let at = |mut finding: Finding, line: usize| {
        finding.file = Some(shown.clone());
        finding.line = Some(line);
        finding
    };
    let mut reported: BTreeSet<(&'static str, String)> = BTreeSet::new();
    for scalar in scalars(file)? {
        let uses = match uses_of(&scalar.text, &lookup, EXPANSION_LIMIT) {
            Ok(done) => done,
            Err(error) => {
                out.push(at(
                    Finding::new(
                        Code::ComposeBadInterpolation,
                        None,
                        format!("compose cannot read a value here: {error}; write a literal `$` as `$$`"),
                    ),
                    scalar.line,
                ));
                continue;
            }
        };
        read.extend(referenced_names(&scalar.text).unwrap_or_default().into_iter().map(str::to_owned));
        for used in &uses {
            for finding in judge_use(used, env_path) {
                if reported.insert((finding.code.as_str(), used.name.to_owned())) {
                    out.push(at(finding, scalar.line));
                }
            }
        }
        if let Some(finding) = literal_secret(&scalar) {
            out.push(at(finding, scalar.line));
        }
    }
    Ok(out)
}

/// The `.env`'s keys no compose file reads and nothing else explains.
fn unused_keys(values: &Values, read: &BTreeSet<String>, unwired: &[Finding]) -> Vec<Finding> {
    let reported_unwired: BTreeSet<&str> = unwired.iter().filter_map(|f| f.key.as_deref()).collect();
    let mut out = Vec::new();
    for (key, _) in values.iter() {
        // A key the stack model knows (a secret, or a variable the tool writes for an optional
        // service or PMOVES.AI) has its readers elsewhere: not worth a warning. JWT_KEYS_STATE is
        // read by no service, by design (keyring), and an unwired key set has its own finding.
        let by_design = key == STATE_KEY || reported_unwired.contains(key) || stack::readers::is_known(key);
        if !read.contains(key) && !key.starts_with("COMPOSE_") && !by_design {
            out.push(Finding::new(
                Code::UnusedEnvKey,
                Some(key),
                "is read by no service of the compose files given, nor by any service pmoves-secrets knows of; if \
                 nothing reads it, remove it, else add the override file that reads it with another --compose \
                 (or accept it with --allow unused-env-key)"
                    .to_owned(),
            ));
        }
    }
    out
}

/// An asymmetric set in the `.env` that the compose files do not hand to a service that must
/// read it: the signer (Auth, `JWT_KEYS`) or a verifier (`JWT_JWKS`). Upstream ships those lines
/// commented out, so the finding names the line to enable.
fn key_sets_unwired(files: &[impl AsRef<Path>], values: &Values) -> Result<Vec<Finding>> {
    if values.get(KEYS_KEY).is_none_or(|v| v.trim().is_empty()) {
        return Ok(Vec::new());
    }
    let files: Vec<PathBuf> = files.iter().map(|f| f.as_ref().to_path_buf()).collect();
    let mut out = Vec::new();
    for gap in key_set_wiring(&files, &keyring::set_readers())? {
        let role = if gap.key == KEYS_KEY {
            "Auth signs with nothing else, so rotate-keys would rotate a set no signer reads"
        } else {
            "it keeps verifying with the legacy secret only and rejects the tokens Auth signs with the set"
        };
        let enable = match &gap.enable {
            Some(line) => format!("enable the line `{}` (remove the `#`)", crate::ui::printable(line)),
            None => format!("hand it `${{{}}}` in its environment", gap.key),
        };
        let mut finding = Finding::new(
            Code::ComposeKeySetUnwired,
            Some(gap.key),
            format!("is not handed to service {} by the compose files: {role}; {enable}", gap.service),
        );
        finding.file = Some(crate::ui::printable(&gap.file.display().to_string()).into_owned());
        finding.line = Some(gap.line);
        out.push(finding);
    }
    Ok(out)
}

/// How to give a catalogue secret the `.env` lacks a value: `generate-keys --env-file`, or for a
/// template, a new `.env` made from it (the template itself is published, never edited).
fn fill_secret(env_path: &Path) -> String {
    if is_template(env_path) {
        return remedy_for_template(env_path);
    }
    format!("fill it with `pmoves-secrets generate-keys --env-file {}`", env_path.display())
}

/// The findings one resolved reference earns.
fn judge_use(used: &Use<'_>, env_path: &Path) -> Vec<Finding> {
    let name = used.name;
    let secret = is_secret_name(name);
    let mut out = Vec::new();
    if used.unset() {
        let fill = if stack::key(name).is_some() {
            fill_secret(env_path)
        } else {
            format!("set it in {}", env_path.display())
        };
        let message =
            format!("is read by the compose file but not set in the .env, so the service gets an empty value; {fill}");
        let code = if secret || used.op != Op::Plain { Code::ComposeUnsetSecret } else { Code::ComposeUnsetVariable };
        out.push(Finding::new(code, Some(name), message));
    }
    let published_default = used.op.has_default()
        && secret
        && used.word.is_some_and(|word| !word.is_empty() && !word.contains('$') && !is_empty_key_set(word));
    if published_default {
        if used.fell_back() {
            out.push(Finding::new(
                Code::ComposeSecretFallback,
                Some(name),
                format!(
                    "is not set in the .env, so the compose file's fallback value is used: it is printed in the compose \
                     file, so anyone with the file has the secret; {}",
                    fill_secret(env_path)
                ),
            ));
        } else {
            out.push(Finding::new(
                Code::ComposeSecretFallbackDormant,
                Some(name),
                "has a fallback value printed in the compose file: harmless while the .env sets it, but removing the line \
                 would silently use that published value; drop the fallback (use ${VAR:?message} to fail instead)"
                    .to_owned(),
            ));
        }
    }
    out
}

/// A secret written into the compose file: an `environment` entry with a secret's name and a
/// literal value, or a connection URL with a literal password.
fn literal_secret(scalar: &Scalar) -> Option<Finding> {
    let in_environment = scalar.path.len() >= 3 && scalar.path[0] == "services" && scalar.path[2] == "environment";
    // Mapping form `NAME: value`, or list form `- NAME=value`.
    let entry = match scalar.path.get(3) {
        Some(name) if in_environment => Some((name.as_str(), scalar.text.as_str())),
        None if in_environment => scalar.text.split_once('='),
        _ => None,
    };
    let value = entry.map_or(scalar.text.as_str(), |(_, value)| value);
    if value.contains('$') || value.is_empty() {
        return None;
    }
    if let Some((name, _)) = entry.filter(|(name, _)| is_secret_name(name)) {
        return Some(Finding::new(
            Code::ComposeLiteralSecret,
            Some(name),
            format!(
                "is written into the compose file (service {}) instead of coming from the .env, so everyone with the \
                 file has it; replace it with ${{{name}}} and put the value in the .env",
                scalar.path[1]
            ),
        ));
    }
    let password = dburl::is_postgres_url(value).then(|| dburl::password(value)).flatten().map(Zeroizing::new);
    if password.is_some_and(|p| !p.is_empty()) {
        return Some(Finding::new(
            Code::ComposeLiteralSecret,
            None,
            "a connection URL carries its password literally; write ${POSTGRES_PASSWORD} in its place".to_owned(),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit_text(compose: &str, env: &[(&str, &str)]) -> Vec<Finding> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compose.yml");
        std::fs::write(&path, compose).unwrap();
        audit(&[&path], &Values::from_pairs(env.iter().copied()), Path::new(".env")).unwrap()
    }

    fn summary(findings: &[Finding]) -> Vec<(&str, Option<&str>, Option<usize>, &str)> {
        findings
            .iter()
            .map(|f| {
                (
                    f.code.as_str(),
                    f.key.as_deref(),
                    f.line,
                    if f.severity == super::super::Severity::Error { "E" } else { "W" },
                )
            })
            .collect()
    }

    const COMPOSE: &str = "\
services:
  realtime:
    environment:
      DB_ENC_KEY: ${REALTIME_DB_ENC_KEY:-supabaserealtime}
      API_JWT_SECRET: ${JWT_SECRET}
      SITE: ${SITE_URL}
      PGRST_JWT_SECRET: ${JWT_JWKS:-{\"keys\":[]}}
      RUN: \"$$(cat x)\"
    ports:
      - ${PORT:-8000}:8000
  db:
    environment:
      - POSTGRES_PASSWORD=hunter2hunter2
      - DATABASE_URL=postgres://app:plain@db:5432/app
      - OK_URL=postgres://app:${POSTGRES_PASSWORD}@db:5432/app
";

    #[test]
    fn findings_carry_the_compose_line() {
        let f = audit_text(COMPOSE, &[("JWT_SECRET", "x"), ("UNUSED", "1"), ("COMPOSE_FILE", "a.yml")]);
        assert_eq!(
            summary(&f),
            [
                ("compose-secret-fallback", Some("REALTIME_DB_ENC_KEY"), Some(4), "E"),
                ("compose-unset-variable", Some("SITE_URL"), Some(6), "W"),
                ("compose-literal-secret", Some("POSTGRES_PASSWORD"), Some(13), "E"),
                ("compose-literal-secret", None, Some(14), "E"),
                ("compose-unset-secret", Some("POSTGRES_PASSWORD"), Some(15), "E"),
                ("unused-env-key", Some("UNUSED"), None, "W"),
            ]
        );
        assert!(f.iter().all(|f| !f.message.contains("supabaserealtime") && !f.message.contains("hunter2")));
    }

    #[test]
    fn a_set_secret_turns_its_fallback_into_a_warning() {
        let f = audit_text(COMPOSE, &[("REALTIME_DB_ENC_KEY", "0123"), ("JWT_SECRET", "x"), ("SITE_URL", "u")]);
        assert_eq!(summary(&f)[0], ("compose-secret-fallback-dormant", Some("REALTIME_DB_ENC_KEY"), Some(4), "W"));
    }

    #[test]
    fn a_templates_hints_make_a_new_env_instead_of_editing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compose.yml");
        std::fs::write(&path, COMPOSE).unwrap();
        let values = Values::from_pairs([("SITE_URL", "u")]);
        for (env, fix) in [
            (".env.example", "generate-keys --template .env.example --output .env"),
            (".env", "generate-keys --env-file .env"),
        ] {
            let findings = audit(&[&path], &values, Path::new(env)).unwrap();
            let secrets: Vec<&Finding> = findings
                .iter()
                .filter(|f| matches!(f.key.as_deref(), Some("JWT_SECRET" | "REALTIME_DB_ENC_KEY")))
                .collect();
            assert_eq!(secrets.len(), 2, "{findings:?}");
            for finding in secrets {
                assert!(finding.message.contains(fix), "{env}: {}", finding.message);
                if env.ends_with(".example") {
                    assert!(!finding.message.contains("--env-file"), "{}", finding.message);
                }
            }
        }
    }

    #[test]
    fn unreadable_yaml_and_interpolation_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yml");
        std::fs::write(&path, "services: [unclosed\n").unwrap();
        let error = audit(&[&path], &Values::from_pairs([("A", "b")]), Path::new(".env")).map(|_| ()).unwrap_err();
        assert!(error.to_string().contains("not valid YAML"), "{error}");
        let f = audit_text("services:\n  a:\n    image: ${TAG\n", &[]);
        assert_eq!(summary(&f), [("compose-bad-interpolation", None, Some(3), "E")]);
    }

    #[test]
    fn secret_names() {
        for name in ["JWT_SECRET", "SMTP_PASS", "DB_PASSWORD", "S3_KEY", "JWT_JWKS", "API_TOKEN"] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["SITE_URL", "KEYCLOAK_URL", "POSTGRES_PORT"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }
}
