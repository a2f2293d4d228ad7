//! The README says what the binary does: its list of commands is the binary's, and the
//! services its key-rotation runbook says to recreate after each phase are the ones the phase
//! itself names. (rotate-passwords' restart list, a fixed table, is compared in
//! `stack::services`' unit tests.)

use std::collections::BTreeSet;

use crate::common::{bin, tempdir};

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// The spans between backticks in `text`.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The subcommands `--help` lists, but `help` (clap's own).
fn subcommands() -> Vec<String> {
    let out = bin().arg("--help").output().expect("runs");
    let help = String::from_utf8(out.stdout).expect("utf-8");
    let section = help.split_once("Commands:\n").expect("--help lists the commands").1;
    section
        .lines()
        .take_while(|line| !line.trim().is_empty())
        // A command's line starts two spaces in; the wrapped rest of its text is indented deeper.
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// The first column of the README's table of commands (`| command | what it does |`).
fn readme_command_table(readme: &str) -> BTreeSet<String> {
    let table = readme.split_once("| command | what it does |").expect("the README's command table").1;
    table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| code_spans(line).first().copied().expect("a command in backticks").to_owned())
        .collect()
}

#[test]
fn the_readmes_commands_are_the_binarys() {
    let readme = readme();
    let table = readme_command_table(&readme);
    let subcommands = subcommands();
    assert!(subcommands.len() >= 7, "parsed --help: {subcommands:?}");
    for name in &table {
        assert!(
            subcommands.contains(name),
            "the README's table names `{name}`, which the binary lacks: {subcommands:?}"
        );
    }
    // A subcommand that is not a row of the table (completions, man) is shown in an example.
    for name in &subcommands {
        assert!(
            table.contains(name) || readme.contains(&format!("pmoves-secrets {name} ")),
            "the binary's `{name}` is neither in the README's command table nor in an example"
        );
    }
}

/// `(phase, services)` of each row of the zero-downtime runbook's table: the phase from
/// `rotate-keys PHASE` in the second column, the services from the first span of the third.
fn runbook_rows(readme: &str) -> Vec<(String, BTreeSet<String>)> {
    let table = readme
        .split_once("| step | command | then recreate | wait before the next step |")
        .expect("the README's key-rotation runbook table")
        .1;
    table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let phase = code_spans(cells[2])
                .first()
                .and_then(|span| span.strip_prefix("rotate-keys "))
                .unwrap_or_else(|| panic!("no `rotate-keys PHASE` in {line}"));
            let services = code_spans(cells[3]).first().copied().unwrap_or_else(|| panic!("no services in {line}"));
            (phase.to_owned(), services.split_whitespace().map(str::to_owned).collect())
        })
        .collect()
}

/// The services the README says `rotate-keys opaque` needs recreated ("when `…` are recreated").
fn opaque_services(readme: &str) -> BTreeSet<String> {
    let paragraph = readme.split_once("`rotate-keys opaque` has no overlap").expect("the opaque paragraph").1;
    let before = paragraph.split_once("` are recreated").expect("\"when `…` are recreated\"").0;
    before.rsplit('`').next().unwrap_or_default().split_whitespace().map(str::to_owned).collect()
}

#[test]
fn the_key_rotation_runbook_recreates_what_each_phase_names() {
    let readme = readme();
    let mut rows = runbook_rows(&readme);
    assert_eq!(
        rows.iter().map(|(phase, _)| phase.as_str()).collect::<Vec<_>>(),
        ["stage", "promote", "rollback", "revoke"],
        "the runbook's phases"
    );
    rows.push(("opaque".to_owned(), opaque_services(&readme)));

    let dir = tempdir();
    let env = dir.path().join(".env");
    assert!(bin().args(["generate-keys", "--asymmetric", "--output"]).arg(&env).output().unwrap().status.success());
    // The runbook's order, then promote again (revoke needs a previous key) and opaque.
    let runs: &[&[&str]] = &[
        &["stage"],
        &["promote", "--force"],
        &["rollback"],
        &["promote", "--force"],
        &["revoke", "--force"],
        &["opaque"],
    ];
    let mut named: Vec<(String, BTreeSet<String>)> = Vec::new();
    for args in runs {
        let out = bin().arg("rotate-keys").args(*args).arg("--yes").arg("--env-file").arg(&env).output().unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "rotate-keys {args:?}: {said}");
        let services = said
            .lines()
            .find_map(|line| line.strip_prefix("then recreate: "))
            .unwrap_or_else(|| panic!("rotate-keys {args:?} names no services: {said}"));
        named.push((args[0].to_owned(), services.split_whitespace().map(str::to_owned).collect()));
    }
    for (phase, readme_services) in &rows {
        let (_, tool_services) = named.iter().find(|(p, _)| p == phase).expect("each phase ran");
        assert_eq!(readme_services, tool_services, "the README's services for rotate-keys {phase}");
    }
}

/// The README's Development section names every package the test scripts install from PyPI, and
/// says whether npm is needed as the scripts do.
#[test]
fn the_readme_names_what_the_test_scripts_install() {
    let readme = readme();
    let development = readme.split_once("\n## Development").expect("a Development section").1;
    let development = development.split_once("\n## ").map_or(development, |(section, _)| section);
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let mut packages = Vec::new();
    let mut uses_npm = false;
    for entry in std::fs::read_dir(&scripts).expect("scripts/") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).unwrap_or_default();
        uses_npm |= text.lines().any(|line| !line.trim_start().starts_with('#') && line.contains("npm "));
        for line in text.lines().filter(|line| !line.trim_start().starts_with('#')) {
            let Some((_, args)) = line.split_once("pip install") else { continue };
            for word in args.split_whitespace().filter(|word| !word.starts_with('-')) {
                let name = word.trim_matches(|c| c == '\'' || c == '"');
                packages.push(name.split('[').next().unwrap_or(name).to_owned());
            }
        }
    }
    assert!(packages.len() >= 4, "parsed the scripts' pip installs: {packages:?}");
    for package in &packages {
        assert!(development.contains(&format!("`{package}`")), "the README's Development section lacks `{package}`");
    }
    assert!(readme.contains("the first run needs PyPI"), "the first screen says the tests need PyPI");
    if uses_npm {
        assert!(!development.contains("no npm"), "the scripts use npm");
    } else {
        assert!(development.contains("no npm"), "the README says npm is not needed");
    }
}
