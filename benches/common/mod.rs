//! What the database benchmarks share: the median, and the psql session they are measured
//! against.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The median of `samples` (the upper one of an even count).
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Runs `script` in one session of the server's own psql (not Debian's `/usr/bin/psql`, a Perl
/// wrapper whose start-up would flatter the tool) at `url`; returns the wall time of the whole
/// process, as the tool's runs are timed.
pub fn timed_psql_session(psql: &Path, url: &str, script: &str) -> Duration {
    let start = Instant::now();
    let out = Command::new(psql)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", url])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().expect("psql's stdin is piped").write_all(script.as_bytes())?;
            child.wait_with_output()
        })
        .expect("psql runs");
    let elapsed = start.elapsed();
    assert!(out.status.success(), "psql failed: {}", String::from_utf8_lossy(&out.stderr));
    elapsed
}
