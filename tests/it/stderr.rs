//! How the tool writes to stderr: an error is one line behind a fixed prefix; warnings are
//! coloured on a terminal unless NO_COLOR is set, and never when stderr is not a terminal.

use crate::common::{bin, bin_path, tempdir};

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
