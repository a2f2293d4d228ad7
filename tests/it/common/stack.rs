//! The stack directory of the tests that run a command on a cluster: a `.env` pointing at a
//! throwaway cluster (the one `Stack` fixture), and the few helpers those tests share.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::pg::{Cluster, ClusterOptions, ROTATED_ROLES};
use crate::common::{bin, bin_path, skip_on_external_database, tempdir};

/// The rotation lock, as the tool takes it.
pub use crate::rotate_db::ROTATION_LOCK_SQL;

/// A stack directory whose `.env` points at a cluster.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub env: PathBuf,
}

impl Stack {
    /// A `.env` with the cluster's address, `POSTGRES_PASSWORD=password` and `extra` lines.
    pub fn with_password(cluster: &Cluster, password: &str, extra: &str) -> Stack {
        let dir = tempdir();
        let env = dir.path().join(".env");
        let text = format!(
            "POSTGRES_HOST={host}\nPOSTGRES_PORT={port}\nPOSTGRES_DB={db}\nPOSTGRES_PASSWORD='{password}'\n{extra}",
            host = cluster.host(),
            port = cluster.port(),
            db = cluster.main_db(),
        );
        std::fs::write(&env, text).unwrap();
        Stack { dir, env }
    }

    /// A stack whose `.env` is `text` exactly.
    pub fn with_text(text: &str) -> Stack {
        let dir = tempdir();
        let env = dir.path().join(".env");
        std::fs::write(&env, text).unwrap();
        Stack { dir, env }
    }

    pub fn new(cluster: &Cluster) -> Stack {
        Stack::with_password(cluster, cluster.password(), "")
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.env).unwrap()
    }

    pub fn pending(&self) -> PathBuf {
        self.dir.path().join(".env.pending")
    }

    /// `POSTGRES_PASSWORD` of the `.env` (quotes removed).
    pub fn password(&self) -> String {
        value_in(&self.text(), "POSTGRES_PASSWORD").expect("POSTGRES_PASSWORD")
    }

    pub fn rotate(&self) -> assert_cmd::Command {
        let mut cmd = bin();
        cmd.current_dir(self.dir.path())
            .args(["rotate-passwords", "--sslmode", "disable", "--env-file"])
            .arg(&self.env);
        cmd
    }

    /// The same as [`Stack::rotate`], as a plain process (to bound how long it may take).
    pub fn rotate_process(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin_path());
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
            .args(["rotate-passwords", "--sslmode", "disable", "--env-file"])
            .arg(&self.env)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Writes a pending file: the `.env` with `POSTGRES_PASSWORD` set to `password`.
    pub fn write_pending(&self, password: &str) {
        let text = self
            .text()
            .lines()
            .map(|l| {
                if l.starts_with("POSTGRES_PASSWORD=") {
                    format!("POSTGRES_PASSWORD='{password}'")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(self.pending(), text + "\n").unwrap();
        set_mode(&self.pending(), 0o600);
    }
}

/// A cluster of its own; `None` (reported as skipped) against an external database.
pub fn local_cluster() -> Option<Cluster> {
    if skip_on_external_database("it changes roles and files of a cluster of its own") {
        return None;
    }
    Some(Cluster::start(ClusterOptions::new()))
}

/// The value of `key` in a `.env` text, surrounding single or double quotes removed.
pub fn value_in(text: &str, key: &str) -> Option<String> {
    text.lines().rev().find_map(|l| {
        let l = l.strip_prefix("export ").unwrap_or(l);
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| {
            let v = v.trim();
            let v = v.split(" #").next().unwrap_or(v).trim();
            v.strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(v)
                .to_owned()
        })
    })
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The stored verifiers of the twelve rotated roles.
pub fn verifiers(cluster: &Cluster) -> Vec<Option<String>> {
    ROTATED_ROLES.iter().map(|r| cluster.stored_verifier(r)).collect()
}

/// Waits for `child` at most `limit`; kills it and returns `None` when it is still running.
pub fn wait_bounded(mut child: Child, limit: Duration) -> Option<Output> {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
