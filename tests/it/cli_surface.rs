//! What the command line offers an operator before anything runs: shell completions (of
//! subcommands and of each subcommand's options), the man page, and the exit codes in every
//! `--help`.

use std::process::Command;

use predicates::prelude::*;

use crate::common::{bin, tempdir};

#[test]
fn completions_are_produced_for_every_supported_shell() {
    for (shell, marker) in [
        ("bash", "complete"),
        ("zsh", "#compdef"),
        ("fish", "complete -c"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = bin().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell} completion lacks {marker}");
        assert!(text.contains("rotate-passwords") && text.contains("generate-keys"), "{shell} completes subcommands");
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    bin().args(["completions", "tcsh"]).assert().code(2);
}

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
fn the_man_page_is_generated_from_the_cli() {
    bin()
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::starts_with(".ie").or(predicate::str::contains(".TH pmoves-secrets")))
        .stdout(predicate::str::contains("rotate\\-passwords").and(predicate::str::contains("Exit codes")));
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
