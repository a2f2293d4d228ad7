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
/// own options, exit codes, version.
pub fn man_page() -> Result<String> {
    let cli = Cli::command();
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
        let _ = writeln!(page, ".SS \"{BIN} {}\"", sub.get_name());
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            let _ = writeln!(page, "{}", escape(&about.to_string()));
        }
        for arg in sub.get_arguments().filter(|arg| !arg.is_hide_set() && !arg.is_global_set()) {
            let mut names = Vec::new();
            if let Some(short) = arg.get_short() {
                names.push(format!("\\fB\\-{short}\\fR"));
            }
            if let Some(long) = arg.get_long() {
                names.push(format!("\\fB\\-\\-{}\\fR", escape(long)));
            }
            let value = arg
                .get_value_names()
                .filter(|_| arg.get_num_args().is_none_or(|n| n.takes_values()))
                .map(|names| names.iter().map(|n| format!(" \\fI{}\\fR", escape(n))).collect::<String>())
                .unwrap_or_default();
            let shown =
                if names.is_empty() { format!("\\fI{}\\fR", escape(arg.get_id().as_str())) } else { names.join(", ") };
            let _ = writeln!(page, ".TP\n{shown}{value}");
            if let Some(help) = arg.get_long_help().or(arg.get_help()) {
                let _ = writeln!(page, "{}", escape(&help.to_string()));
            }
        }
        if let Some(after) = sub.get_after_help() {
            let _ = writeln!(page, ".PP\n.nf\n{}\n.fi", escape(&after.to_string()));
        }
    }
    let mut tail = Vec::new();
    render(man.render_version_section(&mut tail))?;
    page.push_str(&String::from_utf8_lossy(&tail));
    Ok(page)
}

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
    fn bash_registers_the_real_name_with_a_consistent_function() {
        let script = completion_script(Shell::Bash);
        assert!(script.contains("complete -F _pmoves_secrets") && script.contains(" pmoves-secrets\n"), "{script}");
        assert!(!script.contains("pmoves__subcmd__secrets"), "no mangled state names");
    }
}
