//! The file side of a rotation: what `--restart` hands `docker compose`, publishing
//! onto the `.env` as it is now, and a `.env` that is a single-file bind mount.

use std::path::{Path, PathBuf};

use crate::common::block_on;
use crate::common::stack::{local_cluster, set_mode, stderr_of, Stack};

/// One call of the fake `docker`: its arguments, working directory and environment.
struct DockerCall {
    args: String,
    cwd: PathBuf,
    env: Vec<(String, String)>,
}

/// A fake `docker` in `dir/fakebin` that records every call (arguments, directory,
/// environment) in `dir/docker.log` and defines `auth` and `rest`; returns a `PATH` with it first.
fn fake_docker(dir: &Path) -> (String, PathBuf) {
    let bin_dir = dir.join("fakebin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let log = dir.join("docker.log");
    let script = format!(
        "#!/bin/sh\n\
         {{ printf 'CALL %s\\n' \"$*\"; printf 'CWD %s\\n' \"$PWD\"; env | sed 's/^/ENV /'; }} >> '{log}'\n\
         case \"$*\" in\n\
           *'config --services'*) printf 'db\\nauth\\nrest\\n' ;;\n\
         esac\n\
         exit 0\n",
        log = log.display()
    );
    let docker = bin_dir.join("docker");
    std::fs::write(&docker, script).unwrap();
    set_mode(&docker, 0o755);
    (format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default()), log)
}

fn docker_calls(log: &Path) -> Vec<DockerCall> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut calls: Vec<DockerCall> = Vec::new();
    for line in text.lines() {
        if let Some(args) = line.strip_prefix("CALL ") {
            calls.push(DockerCall { args: args.to_owned(), cwd: PathBuf::new(), env: Vec::new() });
        } else if let (Some(call), Some(cwd)) = (calls.last_mut(), line.strip_prefix("CWD ")) {
            call.cwd = PathBuf::from(cwd);
        } else if let (Some(call), Some(var)) = (calls.last_mut(), line.strip_prefix("ENV ")) {
            if let Some((key, value)) = var.split_once('=') {
                call.env.push((key.to_owned(), value.to_owned()));
            }
        }
    }
    calls
}

/// The argument after `flag` in a recorded command line (paths here have no spaces).
fn arg_after<'a>(args: &'a str, flag: &str) -> Option<&'a str> {
    let mut words = args.split(' ');
    words.by_ref().find(|w| *w == flag)?;
    words.next()
}

#[test]
fn restart_hands_compose_neither_the_envs_keys_nor_our_connection_variables() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::with_password(&cluster, cluster.password(), "SITE_URL=http://localhost:3000\n");
    let (path, log) = fake_docker(stack.dir.path());
    let old = cluster.password().to_owned();
    // An operator who exported the old .env (`set -a; . ./.env`), and the libpq variables.
    let out = stack
        .rotate()
        .args(["--yes", "--restart"])
        .env("PATH", path)
        .env("POSTGRES_PASSWORD", &old)
        .env("SITE_URL", "http://stale.example")
        .env("PGPASSWORD", &old)
        .env("PGAPPNAME", "psql")
        .env("DOCKER_HOST", "unix:///run/user/docker.sock")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let calls = docker_calls(&log);
    let up = calls.iter().find(|c| c.args.contains(" up ")).expect("docker compose up was run");
    for call in &calls {
        for (key, value) in &call.env {
            assert!(
                !["POSTGRES_PASSWORD", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "SITE_URL"]
                    .contains(&key.as_str())
                    && !key.starts_with("PG")
                    && key != "PMOVES_SECRETS_DB_URL",
                "`docker {}` got {key} from the tool's environment",
                call.args
            );
            assert!(!value.contains(&old), "`docker {}` got the old password in {key}", call.args);
        }
    }
    assert!(
        up.env.iter().any(|(k, v)| k == "DOCKER_HOST" && v == "unix:///run/user/docker.sock"),
        "docker's own are kept"
    );
    assert!(up.env.iter().any(|(k, _)| k == "PATH"));
    assert!(block_on(cluster.can_login("supabase_admin", &stack.password())));
}

#[test]
fn restart_with_a_relative_env_file_from_another_directory_points_compose_at_it() {
    let Some(cluster) = local_cluster() else { return };
    let stack = Stack::new(&cluster);
    let (path, log) = fake_docker(stack.dir.path());
    let parent = stack.dir.path().parent().unwrap();
    let relative = Path::new(stack.dir.path().file_name().unwrap()).join(".env");
    let compose = Path::new(stack.dir.path().file_name().unwrap()).join("docker-compose.yml");
    std::fs::write(stack.dir.path().join("docker-compose.yml"), "services: {}\n").unwrap();
    let out = crate::common::bin()
        .current_dir(parent)
        .args(["rotate-passwords", "--sslmode", "disable", "--yes", "--restart", "--env-file"])
        .arg(&relative)
        .arg("--compose-file")
        .arg(&compose)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let calls = docker_calls(&log);
    let up = calls.iter().find(|c| c.args.contains(" up ")).expect("docker compose up was run");
    let real_env = std::fs::canonicalize(&stack.env).unwrap();
    for (flag, expected) in [
        ("--env-file", real_env.clone()),
        ("-f", std::fs::canonicalize(stack.dir.path().join("docker-compose.yml")).unwrap()),
    ] {
        let given = Path::new(arg_after(&up.args, flag).unwrap_or_else(|| panic!("no {flag} in {}", up.args)));
        let seen = std::fs::canonicalize(up.cwd.join(given));
        assert_eq!(seen.ok(), Some(expected), "{flag} {} from {} in `{}`", given.display(), up.cwd.display(), up.args);
    }
    let dir = arg_after(&up.args, "--project-directory").expect("--project-directory");
    assert_eq!(std::fs::canonicalize(up.cwd.join(dir)).unwrap(), real_env.parent().unwrap());
}

/// Replaces the line of `key` in the `.env` text with `KEY=value`.
fn with_line(text: &str, key: &str, value: &str) -> String {
    text.lines()
        .map(|l| if l.starts_with(&format!("{key}=")) { format!("{key}={value}") } else { l.to_owned() })
        .map(|l| l + "\n")
        .collect()
}

/// A rotation that died right after `COMMIT`: the database has the pending file's password.
fn crash_after_commit(stack: &Stack) -> String {
    let out = stack.rotate().arg("--yes").env("PMOVES_SECRETS_CRASH_AT", "after-commit").output().unwrap();
    assert!(!out.status.success(), "the crash point aborts the run");
    assert!(stack.pending().exists(), "the crash left the pending file");
    let pending = std::fs::read_to_string(stack.pending()).unwrap();
    crate::common::stack::value_in(&pending, "POSTGRES_PASSWORD").expect("the pending password")
}

#[test]
fn finishing_an_interrupted_rotation_keeps_a_hand_edit_made_since() {
    let Some(cluster) = local_cluster() else { return };
    let stack =
        Stack::with_password(&cluster, cluster.password(), "SMTP_PASS=before\nSITE_URL=http://localhost:3000\n");
    let new_password = crash_after_commit(&stack);
    // The operator edits .env before anyone finishes the rotation.
    let edited = with_line(&with_line(&stack.text(), "SMTP_PASS", "after-by-hand"), "SITE_URL", "https://example.org");
    std::fs::write(&stack.env, &edited).unwrap();

    let out = stack.rotate().arg("--yes").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let without_password = |text: &str| with_line(text, "POSTGRES_PASSWORD", "");
    assert_eq!(without_password(&stack.text()), without_password(&edited), "every other line is as edited");
    assert_eq!(stack.password(), new_password);
    assert!(!stack.pending().exists());
    assert!(block_on(cluster.can_login("supabase_admin", &new_password)));
}

#[test]
fn a_hand_edit_of_a_rotated_line_is_refused_keeping_both_files_until_it_is_resolved() {
    let Some(cluster) = local_cluster() else { return };
    let old = cluster.password().to_owned();
    let stack = Stack::with_password(&cluster, &old, &format!("SUPABASE_DB_PASSWORD={old}\nSMTP_PASS=a\n"));
    let new_password = crash_after_commit(&stack);
    let pending_before = std::fs::read(stack.pending()).unwrap();
    let edited = with_line(&stack.text(), "SUPABASE_DB_PASSWORD", "changed-by-hand");
    std::fs::write(&stack.env, &edited).unwrap();

    let out = stack.rotate().arg("--yes").output().unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(4), "the database changed, .env could not follow: {stderr}");
    assert!(stderr.contains("SUPABASE_DB_PASSWORD (line 5)") && stderr.contains(".env.pending"), "{stderr}");
    assert!(
        !stderr.contains(&new_password) && !stderr.contains("changed-by-hand") && !stderr.contains(&old),
        "{stderr}"
    );
    assert_eq!(stack.text(), edited, "the refusal leaves .env byte-identical");
    assert_eq!(std::fs::read(stack.pending()).unwrap(), pending_before, "and the pending file as it was");

    // The operator takes the line from the pending file, as the message says: the rerun finishes.
    std::fs::write(&stack.env, with_line(&edited, "SUPABASE_DB_PASSWORD", &new_password)).unwrap();
    let out = stack.rotate().arg("--yes").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stack.password(), new_password);
    assert!(!stack.pending().exists());
}

/// A single-file bind mount of `source` at `target`, undone on drop.
struct BindMount(PathBuf);

impl BindMount {
    fn new(source: &Path, target: &Path) -> Option<BindMount> {
        let ok = std::process::Command::new("mount")
            .arg("--bind")
            .arg(source)
            .arg(target)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            crate::common::skipped("cannot `mount --bind` a file here (needs root or CAP_SYS_ADMIN)");
            return None;
        }
        Some(BindMount(target.to_path_buf()))
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A stack whose `.env` is a single-file bind mount of `outside/real.env`, as in a container.
fn bind_mounted_stack(cluster: &crate::common::pg::Cluster) -> Option<(Stack, tempfile::TempDir, BindMount)> {
    let stack = Stack::with_password(cluster, cluster.password(), "SITE_URL=http://localhost:3000\n");
    let outside = crate::common::tempdir();
    let real = outside.path().join("real.env");
    std::fs::write(&real, stack.text()).unwrap();
    set_mode(&real, 0o640);
    let mount = BindMount::new(&real, &stack.env)?;
    Some((stack, outside, mount))
}

#[test]
fn a_bind_mounted_env_is_written_in_place() {
    let Some(cluster) = local_cluster() else { return };
    let Some((stack, outside, _mount)) = bind_mounted_stack(&cluster) else { return };
    let out = stack.rotate().arg("--yes").output().unwrap();
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("mount point") && stderr.contains("in place"), "said before BEGIN: {stderr}");
    let new_password = stack.password();
    assert_ne!(new_password, cluster.password());
    let real = outside.path().join("real.env");
    assert_eq!(std::fs::read_to_string(&real).unwrap(), stack.text(), "the mounted file itself holds it");
    assert_eq!(crate::common::mode_of(&real), 0o640);
    assert!(!stack.pending().exists());
    assert!(block_on(cluster.can_login("supabase_admin", &new_password)));
}

#[test]
fn an_interrupted_rotation_of_a_bind_mounted_env_is_finished_in_place() {
    let Some(cluster) = local_cluster() else { return };
    let Some((stack, outside, _mount)) = bind_mounted_stack(&cluster) else { return };
    let new_password = crash_after_commit(&stack);
    let out = stack.rotate().arg("--yes").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stack.password(), new_password);
    assert_eq!(std::fs::read_to_string(outside.path().join("real.env")).unwrap(), stack.text());
    assert!(!stack.pending().exists());
}

#[test]
fn every_other_writer_writes_a_bind_mounted_env_in_place_too() {
    let outside = crate::common::tempdir();
    let stack_dir = crate::common::tempdir();
    let real = outside.path().join("real.env");
    std::fs::write(&real, "# mine\nSITE_URL=http://localhost:3000\n").unwrap();
    let env = stack_dir.path().join(".env");
    std::fs::write(&env, "").unwrap();
    let Some(_mount) = BindMount::new(&real, &env) else { return };
    let mut before = std::fs::read_to_string(&real).unwrap();
    for args in [
        &["generate-keys", "--asymmetric", "--yes", "--env-file"][..],
        &["rotate-keys", "stage", "--yes", "--env-file"],
    ] {
        let out = crate::common::bin().args(args).arg(&env).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
        let after = std::fs::read_to_string(&real).unwrap();
        assert_ne!(after, before, "{args:?} wrote the mounted file itself");
        before = after;
    }
    let text = before;
    assert!(text.starts_with("# mine\nSITE_URL=http://localhost:3000\n"), "{text}");
    assert!(text.contains("JWT_SECRET=") && text.contains("JWT_KEYS="), "the mounted file itself was written");
    assert!(!stack_dir.path().join(".env.pending").exists());
}
