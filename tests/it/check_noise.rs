//! `check --compose` without noise (issue 19, item 5): the keys the tool itself writes for
//! optional services and PMOVES.AI are known, only unknown keys get `unused-env-key`, and
//! `--allow CODE` accepts a finding (clippy-style; an unknown code is a usage error).

use crate::common::{bin, tempdir};
use crate::generate_compose::upstream_compose;

fn codes(stdout: &[u8]) -> Vec<String> {
    let report: serde_json::Value = serde_json::from_slice(stdout).expect("JSON report");
    report["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn the_tools_own_env_gets_no_unused_key_warning_but_an_unknown_key_does() {
    let Some(compose) = upstream_compose("check_noise") else { return };
    let dir = tempdir();
    let env = dir.path().join(".env");
    for asymmetric in [false, true] {
        let mut cmd = bin();
        cmd.arg("generate-keys").arg("--force");
        if asymmetric {
            cmd.arg("--asymmetric");
        }
        assert!(cmd.arg("--output").arg(&env).output().unwrap().status.success());
        let out = bin()
            .args(["check", "--format", "json", "--env-file"])
            .arg(&env)
            .arg("--compose")
            .arg(&compose)
            .output()
            .unwrap();
        let found = codes(&out.stdout);
        assert!(!found.iter().any(|c| c == "unused-env-key"), "asymmetric {asymmetric}: {found:?}");
    }
    let text = std::fs::read_to_string(&env).unwrap() + "MY_OWN_FLAG=1\n";
    std::fs::write(&env, text).unwrap();
    let out = bin().args(["check", "--env-file"]).arg(&env).arg("--compose").arg(&compose).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(said.matches("warning[unused-env-key]").count(), 1, "{said}");
    assert!(said.contains("warning[unused-env-key] MY_OWN_FLAG"), "{said}");
}

#[test]
fn allow_accepts_a_code_and_an_unknown_code_is_a_usage_error() {
    let dir = tempdir();
    let env = dir.path().join(".env");
    assert!(bin().args(["generate-keys", "--output"]).arg(&env).output().unwrap().status.success());
    let text = std::fs::read_to_string(&env).unwrap();
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("DASHBOARD_PASSWORD=") {
                "DASHBOARD_PASSWORD=this_password_is_insecure_and_should_be_updated".to_owned()
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(&env, text).unwrap();
    let out = bin().args(["check", "--env-file"]).arg(&env).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = bin()
        .args(["check", "--allow", "demo-value", "--allow", "weak-secret", "--env-file"])
        .arg(&env)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("demo-value"));
    let out = bin().args(["check", "--allow", "no-such-code", "--env-file"]).arg(&env).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("no-such-code") && said.contains("unused-env-key"), "lists the codes: {said}");
}
