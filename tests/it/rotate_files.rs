//! The file side of a rotation (issue 15): what `--restart` hands `docker compose`, publishing
//! onto the `.env` as it is now, and a `.env` that is a single-file bind mount.

use std::path::{Path, PathBuf};

use crate::rotate_fixture::{block_on, local_cluster, set_mode, stderr_of, Stack};

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
