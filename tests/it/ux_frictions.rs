//! The frictions a new user hit, each pinned: bash completion of a subcommand's options, the man
//! page, exit codes in every `--help`, Kubernetes flags without `--format k8s`, and
//! `--template` with `--output`.

use std::process::Command;

use crate::common::{bin, mode_of, tempdir};

#[test]
fn bash_completes_a_subcommands_options() {
    let out = bin().args(["completions", "bash"]).output().expect("runs");
    assert!(out.status.success());
    let dir = tempdir();
    let script = dir.path().join("pmoves-secrets.bash");
    std::fs::write(&script, &out.stdout).expect("write");
    let text = String::from_utf8_lossy(&out.stdout);
    let function = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("complete -F "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the script registers a function");
    assert!(text.lines().any(|l| l.trim_start().starts_with("complete -F") && l.ends_with(" pmoves-secrets")));
    // `pmoves-secrets check --<TAB>`, as bash calls the function: command, word, previous word.
    let probe = format!(
        "source '{}'; COMP_WORDS=(pmoves-secrets check --); COMP_CWORD=2; {function} pmoves-secrets -- check; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let Ok(out) = Command::new("bash").args(["-c", &probe]).output() else {
        crate::common::skipped("no bash on this machine");
        return;
    };
    let offered = String::from_utf8_lossy(&out.stdout);
    assert!(offered.lines().any(|l| l == "--env-file"), "offered: {offered} {}", String::from_utf8_lossy(&out.stderr));
    assert!(offered.lines().any(|l| l == "--compose"), "offered: {offered}");
    assert!(!offered.lines().any(|l| l == "--asymmetric"), "only check's options: {offered}");
}

#[test]
fn man_is_listed_and_every_subcommand_help_shows_the_exit_codes() {
    let help = bin().arg("--help").output().expect("runs");
    assert!(String::from_utf8_lossy(&help.stdout).lines().any(|l| l.trim_start().starts_with("man ")));
    for sub in ["generate-keys", "rotate-passwords", "check", "rotate-keys"] {
        let out = bin().args([sub, "--help"]).output().expect("runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Exit codes:") && text.contains("2  usage error"), "{sub} --help: {text}");
    }
    let page = bin().arg("man").output().expect("runs");
    let page = String::from_utf8_lossy(&page.stdout);
    for sub in ["generate\\-keys", "rotate\\-passwords", "check", "completions", "man", "help"] {
        assert!(!page.contains(&format!("secrets\\-{sub}(1)")), "a reference to a page nothing makes: {sub}");
    }
    assert!(page.contains("pmoves-secrets check") && page.contains("Exit codes"));
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
