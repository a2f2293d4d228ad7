//! `--quiet` prints only errors, as `--help` says: no plan, no report in
//! text, no warning; JSON reports, asked for by a machine, stay; errors always show.

use predicates::prelude::*;

use crate::common::stack::{local_cluster, Stack};
use crate::common::{bin, tempdir};

fn generated_env(dir: &std::path::Path, asymmetric: bool) -> std::path::PathBuf {
    let path = dir.join(".env");
    let mut cmd = bin();
    cmd.arg("generate-keys");
    if asymmetric {
        cmd.arg("--asymmetric");
    }
    assert!(cmd.arg("--output").arg(&path).output().unwrap().status.success());
    path
}

#[test]
fn quiet_rotate_passwords_yes_prints_nothing_when_it_succeeds() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    let out = stack.rotate().args(["-q", "--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "no report");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no plan, no progress");
    assert_ne!(stack.password(), cluster.password(), "it did rotate");
}

#[test]
fn quiet_check_prints_the_errors_only_and_nothing_when_clean() {
    let dir = tempdir();
    let env = generated_env(dir.path(), false);
    // A clean file (its mode is the only thing a warning could be about).
    let out = bin().args(["-q", "check", "--env-file"]).arg(&env).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    // One error (a demo value) and one warning (the file mode).
    let text = std::fs::read_to_string(&env).unwrap().replace("DASHBOARD_PASSWORD=", "DASHBOARD_PASSWORD=x");
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("DASHBOARD_PASSWORD=") {
                "DASHBOARD_PASSWORD=this_password_is_insecure_and_should_be_updated"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&env, text + "\n").unwrap();
    std::fs::set_permissions(&env, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let loud = bin().args(["check", "--env-file"]).arg(&env).output().unwrap();
    assert!(String::from_utf8_lossy(&loud.stdout).contains("warning[file-permissions]"));
    let out = bin().args(["-q", "check", "--env-file"]).arg(&env).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("error[demo-value] DASHBOARD_PASSWORD"), "{said}");
    assert!(!said.contains("warning"), "{said}");
    // JSON is for machines: complete, quiet or not.
    let json = bin().args(["-q", "check", "--format", "json", "--env-file"]).arg(&env).output().unwrap();
    assert!(String::from_utf8_lossy(&json.stdout).contains("file-permissions"));
}

#[test]
fn quiet_rotate_keys_status_prints_nothing_but_json_stays() {
    let dir = tempdir();
    let env = generated_env(dir.path(), true);
    let out = bin().args(["-q", "rotate-keys", "status", "--env-file"]).arg(&env).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let json =
        bin().args(["-q", "rotate-keys", "status", "--format", "json", "--env-file"]).arg(&env).output().unwrap();
    assert!(String::from_utf8_lossy(&json.stdout).contains("\"keys\""));
}

#[test]
fn quiet_silences_progress_but_not_errors() {
    let dir = tempdir();
    let path = dir.path().join("new.env");
    bin().args(["generate-keys", "--output"]).arg(&path).assert().success().stderr(predicate::str::contains("wrote"));
    let other = dir.path().join("other.env");
    bin().args(["-q", "generate-keys", "--output"]).arg(&other).assert().success().stderr("");
    bin()
        .args(["--quiet", "generate-keys", "--output"])
        .arg(&other)
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with("pmoves-secrets: error: "));
}

#[test]
fn quiet_and_verbose_exclude_each_other() {
    bin().args(["-q", "-v", "generate-keys"]).assert().code(2);
}

#[test]
fn quiet_rotate_secrets_yes_prints_nothing_but_json_stays() {
    let dir = tempdir();
    let env = generated_env(dir.path(), false);
    let loud = bin().args(["rotate-secrets", "SECRET_KEY_BASE", "--yes", "--env-file"]).arg(&env).output().unwrap();
    assert_eq!(loud.status.code(), Some(0));
    assert!(!loud.stderr.is_empty() || !loud.stdout.is_empty(), "without -q it reports");
    let out =
        bin().args(["-q", "rotate-secrets", "SECRET_KEY_BASE", "--yes", "--env-file"]).arg(&env).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let json = bin()
        .args(["-q", "rotate-secrets", "SECRET_KEY_BASE", "--yes", "--format", "json", "--env-file"])
        .arg(&env)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&json.stdout).contains("\"env_keys\""));
}
