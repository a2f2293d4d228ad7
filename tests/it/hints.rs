//! Hints that help rather than hurt: a command run in the wrong
//! directory says where it looked and never suggests minting a new `.env`; a file that is not a
//! `.env` is named as such; file errors never show the tool's internal temporary names.

use std::path::Path;

use crate::common::{bin, tempdir};

/// stderr of `args` run in `dir`, with its exit code.
fn run_in(dir: &Path, args: &[&str]) -> (String, Option<i32>) {
    let out = bin().current_dir(dir).args(args).output().expect("runs");
    (String::from_utf8_lossy(&out.stderr).into_owned(), out.status.code())
}

#[test]
fn every_command_run_outside_the_stack_directory_says_where_it_looked() {
    let dir = tempdir();
    let shown = dir.path().display().to_string();
    for args in [
        &["rotate-passwords"][..],
        &["rotate-passwords", "--dry-run"],
        &["rotate-keys", "status"],
        &["rotate-keys", "stage"],
        &["check"],
        &["rotate-secrets", "SECRET_KEY_BASE"],
        &["rotate-secrets", "VAULT_ENC_KEY", "--dry-run"],
        &["generate-keys", "--env-file", ".env"],
    ] {
        let (said, code) = run_in(dir.path(), args);
        assert_eq!(code, Some(1), "{args:?}: {said}");
        assert!(said.contains(&format!("looked in {shown}, the current directory")), "{args:?}: {said}");
        assert!(said.contains("stack's directory") && said.contains("--env-file"), "{args:?}: {said}");
        if args[0] == "generate-keys" {
            // The one command that also serves a stack that has not started: only for that case.
            assert!(said.contains("only a stack that has not started yet gets a new one"), "{said}");
        } else {
            assert!(!said.contains("generate-keys"), "a fresh .env is never suggested: {args:?}: {said}");
        }
        assert!(!said.contains("entity not found"), "{args:?}: {said}");
        assert_eq!(said.lines().count(), 1, "one line: {said}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing created");
}

#[test]
fn a_missing_template_names_the_directory_it_was_looked_for_in() {
    let dir = tempdir();
    let (said, code) = run_in(dir.path(), &["generate-keys", "--template", "sub/.env.example"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains(&format!("looked in {}", dir.path().join("sub").display())), "{said}");
    assert!(!said.contains("entity not found"), "{said}");
}

#[test]
fn output_to_a_directory_or_into_a_missing_one_says_so_without_internal_names() {
    let dir = tempdir();
    let (said, code) = run_in(dir.path(), &["generate-keys", "--output", "."]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("is a directory") && !said.contains("--force"), "--force would not help: {said}");
    let (said, code) = run_in(dir.path(), &["generate-keys", "--output", "no/such/dir/.env"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("no/such/dir/.env") && said.contains("directory does not exist"), "{said}");
    assert!(!said.contains(".tmp") && !said.contains("at path"), "no temporary name: {said}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_bad_sslmode_in_the_url_is_named_with_the_valid_ones() {
    let dir = tempdir();
    assert!(bin().args(["generate-keys", "--output"]).arg(dir.path().join(".env")).output().unwrap().status.success());
    for (mode, expected) in [("bogus", "disable, prefer"), ("verify-full", "certificate verification")] {
        let url = format!("postgresql://supabase_admin@127.0.0.1:1/postgres?sslmode={mode}");
        let (said, code) = run_in(dir.path(), &["rotate-passwords", "--dry-run", "--db-url", &url]);
        assert_eq!(code, Some(2), "{said}");
        assert!(said.contains(&format!("sslmode of --db-url '{mode}'")) && said.contains(expected), "{said}");
        assert!(!said.contains("invalid connection string"), "{said}");
    }
}

#[test]
fn the_repository_ignores_a_dotenv_made_by_the_readmes_first_step() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Ok(out) =
        std::process::Command::new("git").current_dir(root).args(["rev-parse", "--is-inside-work-tree"]).output()
    else {
        crate::common::skipped("git is not installed");
        return;
    };
    if !out.status.success() {
        crate::common::skipped("not inside a git work tree");
        return;
    }
    for name in [".env", ".env.pending", ".env.lock", "prod.env", "stack/.env"] {
        let one =
            std::process::Command::new("git").current_dir(root).args(["check-ignore", "-q", name]).status().unwrap();
        assert!(one.success(), "{name} is not ignored");
    }
    let example = std::process::Command::new("git")
        .current_dir(root)
        .args(["check-ignore", "-q", ".env.example"])
        .status()
        .unwrap();
    assert!(!example.success(), "templates stay trackable");
}

#[test]
fn check_of_generate_keys_json_or_k8s_output_says_only_env_files_are_read() {
    let dir = tempdir();
    for format in ["json", "k8s"] {
        let made = bin().args(["generate-keys", "--format", format]).output().expect("runs");
        assert_eq!(made.status.code(), Some(0));
        let path = dir.path().join(format!("out.{format}"));
        std::fs::write(&path, &made.stdout).unwrap();
        let (said, code) = run_in(dir.path(), &["check", "--env-file", path.to_str().unwrap()]);
        assert_eq!(code, Some(1), "{format}: {said}");
        assert!(said.contains("only .env files (KEY=value lines) are read"), "{format}: {said}");
        assert!(!said.contains("malformed"), "{format}: {said}");
        assert_eq!(said.lines().count(), 1, "{format}: {said}");
    }
}

/// `generate-keys --env-file` replacing secrets the database keeps copies of points a running
/// stack at the command that rotates each: `rotate-secrets` for the keys it owns, never for the
/// database password (which it refuses: `rotate-passwords` changes that one).
#[test]
fn generate_keys_points_each_secret_with_database_copies_at_the_command_that_rotates_it() {
    let dir = tempdir();
    let env = dir.path().join(".env");
    assert!(bin().args(["generate-keys", "--output"]).arg(&env).output().unwrap().status.success());
    let text = std::fs::read_to_string(&env).unwrap();
    let text = crate::common::set_line(&text, "POSTGRES_PASSWORD", "your-super-secret-and-long-postgres-password");
    let text = crate::common::set_line(&text, "VAULT_ENC_KEY", "your-encryption-key-32-chars-min");
    std::fs::write(&env, text).unwrap();
    let (said, _) = run_in(dir.path(), &["generate-keys", "--env-file", ".env", "--yes"]);
    assert!(said.contains("`pmoves-secrets rotate-secrets VAULT_ENC_KEY`"), "{said}");
    assert!(said.contains("`pmoves-secrets rotate-passwords`"), "{said}");
    assert!(!said.contains("rotate-secrets POSTGRES_PASSWORD"), "a command that refuses it: {said}");
    let (refused, code) = run_in(dir.path(), &["rotate-secrets", "POSTGRES_PASSWORD", "--dry-run"]);
    assert_eq!(code, Some(2), "rotate-secrets refuses the database password: {refused}");
}
