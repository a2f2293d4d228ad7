//! `--restart`: recreate the services whose input a rotation changed, the step upstream leaves
//! to the reader (`rotate-passwords`: those that hold the password; `rotate-secrets`: the union of
//! the readers of every rotated key). Runs only after the rotation; the database and `.env`
//! already agree, so a failure here is exit 4 with the exact command to run by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::db::DB_URL_VAR;
use crate::envfile::EnvFile;
use crate::error::{Error, Result};
use crate::stack::services::HOLDING_DB_PASSWORD;

/// Where the stack's compose project is.
#[derive(Debug, Clone)]
pub struct ComposeProject {
    /// `-f` files, in order (empty: compose's own discovery in the project directory).
    pub files: Vec<PathBuf>,
    /// The project directory (default: the `.env`'s directory).
    pub directory: PathBuf,
    /// The rotated `.env`, passed as `--env-file` so compose interpolates the new password.
    pub env_file: PathBuf,
    /// The services to recreate (those the project does not define are left out).
    pub services: Vec<&'static str>,
    /// `up --wait`: return once the services run (healthy where they have a healthcheck), so a
    /// time taken after [`restart`] counts from services that run the new input (`rotate-keys`).
    pub wait: bool,
}

impl ComposeProject {
    /// The project of the stack whose `.env` is `env_file`, with compose files `files` and the
    /// project directory `directory` (default: the `.env`'s directory). Every path is made
    /// absolute against the current directory, where the operator meant it: compose runs in the
    /// project directory and would resolve a relative one from there.
    pub fn new(env_file: &Path, files: &[PathBuf], directory: Option<&Path>) -> Self {
        let directory = directory.map_or_else(|| default_directory(env_file), Path::to_path_buf);
        ComposeProject {
            files: files.iter().map(|f| absolute(f)).collect(),
            directory: absolute(&directory),
            env_file: absolute(env_file),
            services: HOLDING_DB_PASSWORD.to_vec(),
            wait: false,
        }
    }

    /// The same project, recreating `services` instead of those that hold the password.
    pub fn recreating(mut self, services: Vec<&'static str>) -> Self {
        self.services = services;
        self
    }

    /// The same project, recreated with `up --wait` (see [`ComposeProject::wait`]).
    pub fn waiting(mut self) -> Self {
        self.wait = true;
        self
    }

    /// `docker compose` with this project's options.
    fn compose(&self) -> Command {
        let mut cmd = self.docker();
        cmd.arg("compose");
        for file in &self.files {
            cmd.arg("-f").arg(file);
        }
        cmd.arg("--project-directory").arg(&self.directory).arg("--env-file").arg(&self.env_file);
        cmd
    }

    /// `docker`, run from the project directory, in an environment without the `.env`'s keys
    /// and without the tool's own connection variables: compose lets a shell variable override
    /// `--env-file`, so an exported old password would be handed to the recreated services,
    /// and the child has no use for our credentials.
    fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        for key in EnvFile::read(&self.env_file).iter().flat_map(|env| env.pairs().map(|(key, _)| key)) {
            cmd.env_remove(key);
        }
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|key| key == DB_URL_VAR || key.starts_with("PG")) {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(&self.directory);
        cmd
    }

    /// The command line an operator would type, for messages.
    pub fn manual_command(&self, services: &[&str]) -> String {
        let files: String = self.files.iter().map(|f| format!(" -f {}", f.display())).collect();
        format!(
            "cd {} && docker compose{files} --env-file {} up -d --force-recreate {}",
            self.directory.display(),
            self.env_file.display(),
            services.join(" ")
        )
    }
}

/// `path` made absolute against the current directory (kept as it is if that cannot be read).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The project directory for `env_file` when none is given: the directory holding it.
fn default_directory(env_file: &Path) -> PathBuf {
    match env_file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn failed(project: &ComposeProject, what: String) -> Error {
    Error::PartiallyApplied {
        what,
        recovery: format!(
            "the rotation itself is complete (the .env holds the new values); recreate the services by hand, from a shell that has \
             not exported the .env's variables (compose prefers them to --env-file): {}",
            project.manual_command(&project.services)
        ),
    }
}

/// `--restart`, refused before anything changes: `docker compose` must be there and answer,
/// or the rotation would commit and only then find it cannot finish (exit 4).
pub fn preflight(project: &ComposeProject) -> Result<()> {
    let refused = |why: String| {
        Error::Precondition(format!(
            "--restart needs `docker compose`, but {why}; install it or leave out --restart \
             (then recreate the services by hand afterwards); nothing was changed"
        ))
    };
    match project.docker().args(["compose", "version"]).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(refused(format!("`docker compose version` failed: {}", first_line(&out.stderr)))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(refused("docker is not installed or not on PATH".to_owned()))
        }
        Err(e) => Err(refused(format!("docker could not be started ({e})"))),
    }?;
    // The project itself is read now too: a wrong --compose-file, a compose file that does not
    // parse, or a project without the stack's services would otherwise surface after COMMIT.
    services_to_recreate(project).map(|_| ()).map_err(|why| {
        Error::Precondition(format!("{why}; fix the project or leave out --restart; nothing was changed"))
    })
}

/// The project's services to recreate that the compose project defines, or why they cannot be
/// known.
fn services_to_recreate(project: &ComposeProject) -> std::result::Result<Vec<&'static str>, String> {
    let listed = project.compose().args(["config", "--services"]).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "--restart: docker is not installed or not on PATH".to_owned()
        } else {
            format!("--restart: docker could not be started ({e})")
        }
    })?;
    if !listed.status.success() {
        return Err(format!(
            "--restart: `docker compose config --services` failed in {}: {}",
            project.directory.display(),
            first_line(&listed.stderr)
        ));
    }
    let defined = String::from_utf8_lossy(&listed.stdout);
    let services: Vec<&'static str> =
        project.services.iter().copied().filter(|s| defined.lines().any(|l| l.trim() == *s)).collect();
    if services.is_empty() {
        return Err(format!(
            "--restart: the compose project in {} defines none of the services {}",
            project.directory.display(),
            project.services.join(", ")
        ));
    }
    Ok(services)
}

/// Recreates the project's services to recreate that it defines; returns them.
pub fn restart(project: &ComposeProject) -> Result<Vec<&'static str>> {
    let services = services_to_recreate(project).map_err(|why| failed(project, why))?;
    let mut up = project.compose();
    up.args(["up", "-d", "--force-recreate"]);
    if project.wait {
        up.arg("--wait");
    }
    let status = up
        .args(&services)
        .status()
        .map_err(|e| failed(project, format!("--restart: docker could not be started ({e})")))?;
    if !status.success() {
        return Err(failed(project, format!("--restart: `docker compose up` exited with {status}")));
    }
    Ok(services)
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).lines().next().unwrap_or("no output").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_directory_defaults_to_the_env_files_directory() {
        assert_eq!(default_directory(Path::new("/srv/stack/.env")), PathBuf::from("/srv/stack"));
        assert_eq!(default_directory(Path::new(".env")), PathBuf::from("."));
    }

    #[test]
    fn the_manual_command_names_files_env_and_services() {
        let project = ComposeProject {
            files: vec![PathBuf::from("docker-compose.yml")],
            directory: PathBuf::from("/srv/stack"),
            env_file: PathBuf::from("/srv/stack/.env"),
            services: vec!["auth", "rest"],
            wait: false,
        };
        assert_eq!(
            project.manual_command(&["auth", "rest"]),
            "cd /srv/stack && docker compose -f docker-compose.yml --env-file /srv/stack/.env up -d --force-recreate auth rest"
        );
    }
}
