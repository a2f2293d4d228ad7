//! The shell completion scripts and the man page, made from the clap definitions.
//!
//! Two workarounds live here. clap_complete's bash script, for a binary whose name has a hyphen,
//! names the subcommands' states one way where it sets them and another where it matches them,
//! so no subcommand option ever completes; the script is therefore generated for a hyphen-free
//! name and registered for the real one. clap_mangen's page refers to one page per subcommand
//! (`pmoves-secrets-check(1)`), which nothing installs; the page here describes every command
//! and its options itself.

use std::fmt::Write as _;

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::{Error, Result};

/// The binary's name, as the shell sees it.
const BIN: &str = "pmoves-secrets";

/// The name bash's script is generated for: clap_complete mangles hyphens inconsistently.
const BASH_SAFE_NAME: &str = "pmoves_secrets";

/// The completion script for `shell`.
pub fn completion_script(shell: Shell) -> String {
    let mut text = Vec::new();
    if shell == Shell::Bash {
        clap_complete::generate(shell, &mut Cli::command(), BASH_SAFE_NAME, &mut text);
        let script = String::from_utf8_lossy(&text);
        // Only the registration names the command; everything else is the function's own state.
        return script
            .lines()
            .map(|line| match line.trim_start().starts_with("complete ") {
                true => line.replace(&format!(" {BASH_SAFE_NAME}"), &format!(" {BIN}")),
                false => line.to_owned(),
            })
            .fold(String::with_capacity(script.len()), |mut out, line| {
                out.push_str(&line);
                out.push('\n');
                out
            });
    }
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut text);
    String::from_utf8_lossy(&text).into_owned()
}

/// The man page (roff): name, synopsis, description, global options, then each command with its
/// own options, the environment, the files, exit codes, version.
///
/// The command is built first (`Command::build`): clap fills in each argument's number of values,
/// value names and possible values only then, so reading them before would show every flag
/// taking a value (`--dry-run DRY_RUN`).
pub fn man_page() -> Result<String> {
    let mut cli = Cli::command();
    cli.build();
    let man = clap_mangen::Man::new(cli.clone());
    let mut roff = Vec::new();
    let render = |result: std::io::Result<()>| {
        result.map_err(|e| Error::Output { target: "standard output".into(), reason: e.to_string() })
    };
    render(man.render_title(&mut roff))?;
    render(man.render_name_section(&mut roff))?;
    render(man.render_synopsis_section(&mut roff))?;
    render(man.render_description_section(&mut roff))?;
    render(man.render_options_section(&mut roff))?;
    let mut page = String::from_utf8_lossy(&roff).into_owned();
    page.push_str(".SH COMMANDS\n");
    for sub in cli.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        command_section(&mut page, BIN, sub);
    }
    page.push_str(ENVIRONMENT);
    page.push_str(FILES);
    let mut tail = Vec::new();
    render(man.render_version_section(&mut tail))?;
    page.push_str(&String::from_utf8_lossy(&tail));
    Ok(page)
}

/// One command (and its own subcommands, if it has any) with its options and examples.
fn command_section(page: &mut String, parent: &str, cmd: &clap::Command) {
    let name = format!("{parent} {}", cmd.get_name());
    let _ = writeln!(page, ".SS \"{name}\"");
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        let _ = writeln!(page, "{}", escape(&about.to_string()));
    }
    for arg in cmd.get_arguments().filter(|arg| !arg.is_hide_set() && !arg.is_global_set()) {
        argument_entry(page, arg);
    }
    if let Some(after) = cmd.get_after_help() {
        let _ = writeln!(page, ".PP\n.nf\n{}\n.fi", escape(&after.to_string()));
    }
    for sub in cmd.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        command_section(page, &name, sub);
    }
}

/// One option or positional: its names, its value only if it takes one, its help, the values
/// it accepts and its default.
fn argument_entry(page: &mut String, arg: &clap::Arg) {
    let mut names = Vec::new();
    if let Some(short) = arg.get_short() {
        names.push(format!("\\fB\\-{short}\\fR"));
    }
    if let Some(long) = arg.get_long() {
        names.push(format!("\\fB\\-\\-{}\\fR", escape(long)));
    }
    let value_names: Vec<String> = match arg.get_value_names() {
        Some(value_names) => value_names.iter().map(ToString::to_string).collect(),
        None => vec![arg.get_id().as_str().to_uppercase()],
    };
    let value: String = value_names.iter().map(|n| format!("\\fI{}\\fR", escape(n))).collect::<Vec<_>>().join(" ");
    let shown = match (names.is_empty(), arg.get_action().takes_values()) {
        (true, _) => value,
        (false, true) => format!("{} {value}", names.join(", ")),
        (false, false) => names.join(", "),
    };
    let _ = writeln!(page, ".TP\n{shown}");
    let help = arg.get_long_help().or(arg.get_help()).map(ToString::to_string).unwrap_or_default();
    if !help.is_empty() {
        let _ = writeln!(page, "{}", escape(&help));
    }
    let possible: Vec<String> =
        arg.get_possible_values().iter().filter(|v| !v.is_hide_set()).map(|v| v.get_name().to_owned()).collect();
    if !possible.is_empty() && arg.get_action().takes_values() {
        let _ = writeln!(page, ".br\nPossible values: {}.", escape(&possible.join(", ")));
    }
    let defaults: Vec<String> = arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
    if !defaults.is_empty() && arg.get_action().takes_values() && !help.contains("[default") {
        let _ = writeln!(page, ".br\n{}", escape(&format!("[default: {}]", defaults.join(", "))));
    }
}

/// The variables the tool reads, as `--help` and the README describe them.
const ENVIRONMENT: &str = "\
.SH ENVIRONMENT
.TP
\\fBPMOVES_SECRETS_DB_URL\\fR
postgresql:// URL of the database, as \\-\\-db\\-url (which wins over it); the place for a password, which \\-\\-db\\-url shows to ps.
.TP
\\fBPGHOST\\fR, \\fBPGPORT\\fR, \\fBPGUSER\\fR, \\fBPGPASSWORD\\fR, \\fBPGDATABASE\\fR, \\fBPGSSLMODE\\fR, \\fBPGCONNECT_TIMEOUT\\fR
libpq's variables, for whatever neither the URL nor the .env sets.
.TP
\\fBNO_COLOR\\fR
When set and not empty, no colour on a terminal.
";

/// The files the tool reads and writes beside a stack's `.env`.
const FILES: &str = "\
.SH FILES
.TP
\\fB.env\\fR
The stack's secrets (\\-\\-env\\-file, default ./.env): read by every command, rewritten atomically by generate\\-keys \\-\\-env\\-file, rotate\\-passwords and rotate\\-keys, its mode and owner kept.
.TP
\\fB.env.lock\\fR
An empty file whose lock keeps two writers of one .env apart; it may remain.
.TP
\\fB.env.pending\\fR
The new .env a rotation stages before it touches the database; the next run settles one left by an interrupted run. Never delete it by hand.
.TP
\\fB..env.*.tmp\\fR
A temporary copy written before a rename; one left by a killed run is removed by the next writer and reported by check.
";

/// Text made safe for roff: backslashes doubled, a leading `.` or `'` neutralised.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('-', "\\-")
        .lines()
        .map(|line| if line.starts_with(['.', '\'']) { format!("\\&{line}") } else { line.to_owned() })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_man_page_names_no_page_that_is_not_made() {
        let page = man_page().unwrap();
        assert!(!page.contains("pmoves-secrets-check(1)") && !page.contains("\\-check(1)"), "{page}");
        for command in ["generate\\-keys", "rotate\\-passwords", "check", "completions", "man"] {
            assert!(page.contains(&format!(".SS \"pmoves-secrets {}\"", command.replace("\\-", "-"))), "{command}");
        }
        assert!(page.contains("\\-\\-compose") && page.contains("Exit codes"), "{page}");
    }

    #[test]
    fn flags_take_no_value_and_values_defaults_environment_and_files_are_shown() {
        let page = man_page().unwrap();
        for wrong in ["DRY_RUN", "\\fIYES\\fR", "\\fIQUIET\\fR", "\\fIFORCE\\fR"] {
            assert!(!page.contains(wrong), "a flag shown taking a value ({wrong})");
        }
        assert!(page.contains("\\fB\\-\\-dry\\-run\\fR\n"), "a bare flag");
        assert!(page.contains("Possible values: env, json, k8s."), "possible values");
        assert!(page.contains("[default: 5s]") && page.contains("[default: .env]"), "defaults");
        assert!(page.contains(".SH ENVIRONMENT") && page.contains("PMOVES_SECRETS_DB_URL"), "ENVIRONMENT");
        assert!(page.contains(".SH FILES") && page.contains(".env.pending"), "FILES");
    }

    #[test]
    fn bash_registers_the_real_name_with_a_consistent_function() {
        let script = completion_script(Shell::Bash);
        assert!(script.contains("complete -F _pmoves_secrets") && script.contains(" pmoves-secrets\n"), "{script}");
        assert!(!script.contains("pmoves__subcmd__secrets"), "no mangled state names");
    }
}
