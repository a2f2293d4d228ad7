//! Running psql and the server tools, with every secret redacted from what a failure reports.
//!
//! Failures are returned as text that names the step, the command line and its stderr: a test
//! that panics with it tells what went wrong without leaking a password.

use std::io::Write;
use std::process::{Command, Stdio};

use super::binaries::psql_path;
use super::secrets::redact;
use super::LOCAL_HOST;

/// `PGOPTIONS` for sessions whose statements carry secrets: nothing of them reaches the log,
/// whatever a test configured the server to log or track (sampled transactions, pgaudit,
/// auto_explain, pg_stat_statements; an extension's setting that is not loaded just becomes a
/// placeholder). Set at connection start, so it is in force before the first transaction begins.
pub(super) const QUIET_LOG: &str = "-c log_statement=none -c log_min_error_statement=panic \
     -c log_min_duration_statement=-1 -c log_min_duration_sample=-1 -c log_transaction_sample_rate=0 \
     -c log_parameter_max_length=0 -c log_parameter_max_length_on_error=0 -c track_activities=off \
     -c pgaudit.log=none -c pgaudit.log_parameter=off -c auto_explain.log_min_duration=-1 \
     -c pg_stat_statements.track=none -c pg_stat_statements.track_utility=off";

/// Where psql connects.
pub(super) struct PsqlTarget {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) db: String,
}

/// Runs `script` with psql (`-X -q -A -t -v ON_ERROR_STOP=1`, script on stdin) as `user`;
/// stdout on success. `pgoptions` goes to `PGOPTIONS` (`QUIET_LOG` for secret statements).
#[allow(clippy::too_many_arguments)]
pub(super) fn run_psql(
    target: &PsqlTarget,
    user: &str,
    password: &str,
    extra_args: &[&str],
    pgoptions: Option<&str>,
    script: &str,
    secrets: &[String],
    what: &str,
) -> Result<String, String> {
    let psql = psql_path();
    let mut cmd = Command::new(&psql);
    clear_pg_env(&mut cmd);
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(&target.host)
        .arg("-p")
        .arg(target.port.to_string())
        .arg("-U")
        .arg(user)
        .arg("-d")
        .arg(&target.db)
        .args(extra_args)
        .args(["-f", "-"])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGAPPNAME", "pmoves-test-harness");
    if target.host == LOCAL_HOST {
        cmd.env("PGSSLMODE", "disable");
    }
    if let Some(o) = pgoptions {
        cmd.env("PGOPTIONS", o);
    }
    let out = run(&mut cmd, what, Some(script.as_bytes()), secrets)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Runs `cmd`, feeding `stdin`; stdout on success, else a message with the command line and
/// stderr, every secret redacted.
pub(super) fn run(cmd: &mut Command, what: &str, stdin: Option<&[u8]>, secrets: &[String]) -> Result<Vec<u8>, String> {
    let line = redact(&command_line(cmd), secrets);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("{what}: cannot run `{line}`: {e}"))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        // Write from a thread so a large script cannot deadlock against a full stdout pipe.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let out = child.wait_with_output().map_err(|e| format!("{what}: waiting for `{line}`: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{what} failed ({}): `{line}`\n--- stderr ---\n{}{}",
            out.status,
            redact(&String::from_utf8_lossy(&out.stderr), secrets),
            if out.stdout.is_empty() {
                String::new()
            } else {
                format!("--- stdout ---\n{}", redact(&String::from_utf8_lossy(&out.stdout), secrets))
            }
        ))
    }
}

fn command_line(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// `PG*` variables of the test process (PGPASSWORD, PGHOST, ...) must not reach psql or the
/// server tools: each command gets exactly the connection settings the harness gives it.
pub(super) fn clear_pg_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PG") {
            cmd.env_remove(k);
        }
    }
}
