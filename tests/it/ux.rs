//! Operator experience: completions, the man page, --quiet, colour and NO_COLOR.

use predicates::prelude::*;

use crate::common::{bin, bin_path, tempdir};

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
fn the_man_page_is_generated_from_the_cli() {
    bin()
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::starts_with(".ie").or(predicate::str::contains(".TH pmoves-secrets")))
        .stdout(predicate::str::contains("rotate\\-passwords").and(predicate::str::contains("Exit codes")));
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
fn errors_are_one_line_behind_a_fixed_prefix() {
    let dir = tempdir();
    let out = bin().args(["check", "--env-file"]).arg(dir.path().join("absent.env")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("pmoves-secrets: error: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("absent.env"), "names the file: {stderr}");
}

fn stderr_on_a_terminal(no_color: bool) -> String {
    let mut cmd = std::process::Command::new(bin_path());
    cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("TERM", "xterm");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    cmd.arg("generate-keys");
    let mut session = rexpect::session::spawn_command(cmd, Some(10_000)).expect("pty");
    let (before, _) = session.exp_regex("JWT_SECRET=").expect("output");
    session.exp_eof().expect("exits");
    before
}

#[test]
fn warnings_are_coloured_on_a_terminal_unless_no_color_is_set() {
    let coloured = stderr_on_a_terminal(false);
    assert!(coloured.contains("\u{1b}[33mwarning: \u{1b}[0m"), "colour on a terminal: {coloured:?}");
    let plain = stderr_on_a_terminal(true);
    assert!(plain.contains("warning: ") && !plain.contains('\u{1b}'), "NO_COLOR: {plain:?}");
}

#[test]
fn no_colour_when_stderr_is_not_a_terminal() {
    let dir = tempdir();
    let out = bin()
        .env_remove("NO_COLOR")
        .args(["generate-keys", "--output"])
        .arg(dir.path().join("x.env"))
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\u{1b}'));
}
