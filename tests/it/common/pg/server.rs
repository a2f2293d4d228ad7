//! Starting and stopping a postmaster on a data directory, and the ports it listens on.
//!
//! Faster than `pg_ctl -w`: readiness and shutdown are polled every 5 ms, which is most of
//! what makes a cluster start in ~0.1 s.

use std::collections::HashSet;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::binaries::{pg_bin_dir, server_command};
use super::command::run;
use super::dirs::append_file;
use super::LOCAL_HOST;

/// Starts the server on a free port, retrying with another port when the start fails.
pub(super) fn start_on_free_port(data: &Path, log: &Path, socket_dir: &Path) -> Result<u16, String> {
    let mut last_err = String::new();
    for _ in 0..5 {
        let port = free_port()?;
        append_file(
            &data.join("postgresql.conf"),
            &format!("port = {port}\nunix_socket_directories = '{}'\n", socket_dir.display()),
        )?;
        match pg_ctl_start(data, log) {
            Ok(()) => return Ok(port),
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

/// `pg_ctl start -W`, then waits for `postmaster.pid` to say `ready` (polling every 5 ms,
/// where `pg_ctl -w` polls every 100 ms). Fails fast when the postmaster exits or logs FATAL.
pub(super) fn pg_ctl_start(data: &Path, log: &Path) -> Result<(), String> {
    let bin = pg_bin_dir()?;
    let log_before = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    let log_tail = || {
        let text = std::fs::read(log).unwrap_or_default();
        let new = &text[(log_before as usize).min(text.len())..];
        tail(&String::from_utf8_lossy(new), 20)
    };
    let mut cmd = server_command(&bin.join("pg_ctl"));
    cmd.arg("-D").arg(data).arg("-l").arg(log).args(["-W", "-s", "start"]);
    if let Some(parent) = data.parent() {
        cmd.current_dir(parent);
    }
    run(&mut cmd, "pg_ctl start", None, &[])?;
    let pidfile = data.join("postmaster.pid");
    let started = Instant::now();
    let mut seen_pid: Option<u32> = None;
    loop {
        if let Ok(text) = std::fs::read_to_string(&pidfile) {
            let lines: Vec<&str> = text.lines().collect();
            if let Some(pid) = lines.first().and_then(|l| l.trim().parse().ok()) {
                seen_pid = Some(pid);
            }
            if lines.get(7).map(|l| l.trim()) == Some("ready") {
                return Ok(());
            }
        }
        let died = seen_pid.is_some_and(|pid| !process_alive(pid));
        let fatal = log_tail().contains("FATAL:");
        let waited = started.elapsed();
        if died || fatal || waited > Duration::from_secs(60) || (seen_pid.is_none() && waited > Duration::from_secs(10))
        {
            if let Some(pid) = seen_pid.filter(|p| process_alive(*p)) {
                let _ = Command::new("kill").args(["-QUIT", &pid.to_string()]).status();
            }
            return Err(format!(
                "the server in {} did not start ({}); --- server log (tail) ---\n{}",
                data.display(),
                if died || fatal { "it exited" } else { "timed out" },
                log_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Stops the server. `immediate`: SIGQUIT to the postmaster and wait (5 ms polls) until it is
/// gone; otherwise, or if that fails, `pg_ctl -m MODE -w stop`.
pub(super) fn pg_ctl_stop(data: &Path, mode: &str) -> Result<(), String> {
    let pidfile = data.join("postmaster.pid");
    if mode == "immediate" {
        let pid: Option<u32> =
            std::fs::read_to_string(&pidfile).ok().and_then(|t| t.lines().next()?.trim().parse().ok());
        let Some(pid) = pid else {
            return Ok(()); // not running
        };
        let signalled = Command::new("kill")
            .args(["-QUIT", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if signalled {
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(20) {
                if !pidfile.exists() && !process_alive(pid) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    let bin = pg_bin_dir()?;
    let mut cmd = server_command(&bin.join("pg_ctl"));
    cmd.arg("-D").arg(data).args(["-m", mode, "-w", "-t", "60", "-s", "stop"]);
    if let Some(parent) = data.parent() {
        cmd.current_dir(parent);
    }
    run(&mut cmd, "pg_ctl stop", None, &[]).map(|_| ())
}

/// Whether `pid` is a live (not zombie) process.
pub(super) fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // "pid (comm) S ...": the state follows the last ')'.
            let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

fn free_port() -> Result<u16, String> {
    static USED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let used = USED.get_or_init(|| Mutex::new(HashSet::new()));
    for _ in 0..50 {
        let listener = TcpListener::bind((LOCAL_HOST, 0)).map_err(|e| format!("cannot bind {LOCAL_HOST}:0: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        drop(listener);
        if used.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return Ok(port);
        }
    }
    Err("no free TCP port found".to_string())
}

/// True when something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&(std::net::Ipv4Addr::LOCALHOST, port).into(), Duration::from_millis(500)).is_ok()
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
