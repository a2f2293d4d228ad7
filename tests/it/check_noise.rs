//! `check --compose` without noise: the keys the tool itself writes for
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

/// A demo-free `.env` (in its own directory) with errors (missing secrets, `POSTGRES_PASSWORD`
/// on line 1) and one warning (group-readable).
fn errors_and_a_warning() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempdir();
    let env = dir.path().join(".env");
    std::fs::write(&env, "POSTGRES_PASSWORD=\n").unwrap();
    std::fs::set_permissions(&env, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    (dir, env)
}

/// `check`'s text report: `severity[code]` in its severity's colour with `--color always`, even
/// into a pipe; nothing coloured with `--color never`, nor with auto into a pipe.
#[test]
fn findings_are_coloured_by_severity_only_when_asked_or_on_a_terminal() {
    let (_dir, env) = errors_and_a_warning();
    let run = |extra: &[&str], no_color: bool| {
        let mut cmd = bin();
        cmd.args(["check", "--env-file"]).arg(&env).args(extra);
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let out = cmd.output().expect("runs");
        (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code())
    };
    let (coloured, code) = run(&["--color", "always"], false);
    assert_eq!(code, Some(1), "{coloured}");
    assert!(coloured.contains("\x1b[1;31merror[missing-secret]\x1b[0m"), "{coloured:?}");
    assert!(coloured.contains("\x1b[1;33mwarning[file-permissions]\x1b[0m"), "{coloured:?}");
    assert!(coloured.contains("\x1b[1;31mfailed:\x1b[0m"), "{coloured:?}");
    // The global flag is accepted before the command too.
    let out = bin().args(["--color", "always", "check", "--env-file"]).arg(&env).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("\x1b[1;31merror["), "before the command");
    for (extra, no_color) in [(&["--color", "never"][..], false), (&[][..], false), (&["--color", "auto"][..], true)] {
        let (plain, code) = run(extra, no_color);
        assert_eq!(code, Some(1));
        assert!(!plain.contains('\x1b'), "{extra:?}: {plain:?}");
        assert!(plain.contains("error[missing-secret]"), "{plain}");
    }
    let out = bin().args(["check", "--color", "sometimes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown --color value is a usage error");
}

/// The `NATS_URL` every generated `.env` carries keeps PMOVES.AI's published default
/// credentials on purpose; `check` says so, as a warning (exit 0), and nothing else: a minted
/// password or `--allow published-default-credential` makes the report clean.
#[test]
fn the_published_nats_default_is_a_warning_gone_for_a_minted_password_or_when_allowed() {
    let dir = tempdir();
    let env = dir.path().join(".env");
    assert!(bin().args(["generate-keys", "--output"]).arg(&env).output().unwrap().status.success());
    let check = |extra: &[&str]| {
        let out = bin().args(["check", "--format", "json", "--env-file"]).arg(&env).args(extra).output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
        (out.status.code(), report["findings"].as_array().unwrap().clone())
    };
    let (code, findings) = check(&[]);
    assert_eq!(code, Some(0), "a warning does not fail the check: {findings:?}");
    assert_eq!(findings.len(), 1, "{findings:?}");
    let finding = &findings[0];
    assert_eq!(finding["code"], "published-default-credential");
    assert_eq!(finding["severity"], "warning");
    assert_eq!(finding["key"], "NATS_URL");
    let message = finding["message"].as_str().unwrap();
    assert!(message.contains("published default") && message.contains("NATS"), "{message}");
    assert!(!message.contains("pmoves@"), "the URL is not repeated: {message}");
    let out = bin().args(["check", "--env-file"]).arg(&env).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("warning[published-default-credential] NATS_URL"), "{said}");

    let (code, findings) = check(&["--allow", "published-default-credential"]);
    assert_eq!((code, findings.len()), (Some(0), 0), "{findings:?}");

    // The same default anywhere in the file (another host, a copy under another name) is flagged.
    let text = std::fs::read_to_string(&env).unwrap();
    std::fs::write(&env, format!("{text}MY_NATS=nats://nats:pmoves@10.0.0.5:4222\n")).unwrap();
    let (_, findings) = check(&[]);
    let keys: Vec<&str> = findings.iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["NATS_URL", "MY_NATS"], "{findings:?}");

    // An operator's own password (and a URL with no credentials) is not.
    let minted = crate::common::set_line(&text, "NATS_URL", "nats://nats:Zq8tWm3vKx1Lp9Rb@nats:4222");
    let minted = format!("{minted}OTHER_NATS=nats://nats:4222\n");
    std::fs::write(&env, minted).unwrap();
    let (code, findings) = check(&[]);
    assert_eq!((code, findings.len()), (Some(0), 0), "{findings:?}");
}

/// `--color auto` on a real terminal: every finding line of `check` is coloured (its
/// `severity[code]` label in the severity's colour, the key and its line in bold), and so is the
/// verdict; `--color never` and `NO_COLOR` leave the terminal text plain.
#[test]
fn on_a_terminal_check_colours_its_findings_unless_told_not_to() {
    let (_dir, env) = errors_and_a_warning();
    let on_a_terminal = |extra: &[&str], no_color: bool| -> String {
        let mut cmd = std::process::Command::new(crate::common::bin_path());
        cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("TERM", "xterm");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        cmd.arg("check").args(extra).arg("--env-file").arg(&env);
        let mut session = rexpect::session::spawn_command(cmd, Some(30_000)).expect("pty");
        let said = session.exp_eof().expect("check ends");
        assert_eq!(crate::common::pty_exit_code(&mut session), 1, "{said:?}");
        said
    };
    let coloured = on_a_terminal(&["--color", "auto"], false);
    assert!(coloured.contains("\x1b[1;31merror[missing-secret]\x1b[0m"), "{coloured:?}");
    assert!(coloured.contains("\x1b[1;33mwarning[file-permissions]\x1b[0m"), "{coloured:?}");
    assert!(coloured.contains("\x1b[1mPOSTGRES_PASSWORD (line 1):\x1b[0m"), "the key in bold: {coloured:?}");
    assert!(coloured.contains("\x1b[1;31mfailed:\x1b[0m"), "{coloured:?}");
    let findings: Vec<&str> = coloured.lines().filter(|l| l.contains("error[") || l.contains("warning[")).collect();
    assert!(findings.len() >= 2, "{coloured:?}");
    assert!(findings.iter().all(|l| l.starts_with('\x1b')), "every finding line: {findings:?}");
    for (extra, no_color) in [(&["--color", "never"][..], false), (&[][..], true)] {
        let plain = on_a_terminal(extra, no_color);
        assert!(!plain.contains('\x1b'), "{extra:?}, NO_COLOR {no_color}: {plain:?}");
        assert!(plain.contains("error[missing-secret] POSTGRES_PASSWORD (line 1):"), "{plain:?}");
    }
}
