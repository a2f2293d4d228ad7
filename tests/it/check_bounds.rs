//! `check` against hostile inputs, through the binary: paths that are not regular
//! files, deeply nested and self-repeating `${…}` references, compose's own reading of braces
//! (compared with the real Compose v2), and text from the files that must not reach the terminal
//! with control characters in it.
//!
//! Each run is bounded by a guard, not timed: a child still running after [`HANG_GUARD`] is
//! killed and the test fails saying it hung, and runs that could take the machine's memory on the
//! old code run under `ulimit -v`, so a regression fails the test instead of the machine.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{bin_path, tempdir};
use crate::generate_compose::compose_bin;

/// Longer than any of these runs takes on a loaded machine; only a hang reaches it.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Address space allowed to runs whose old behaviour was to allocate without bound.
const MEMORY_GUARD_KB: u64 = 1024 * 1024;

/// What one guarded run gave.
struct Run {
    /// `None` when a signal ended it (an abort on a stack overflow or a failed allocation).
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary with `args` under `ulimit -v` [`MEMORY_GUARD_KB`], killing it at [`HANG_GUARD`].
fn run_guarded(args: &[&str]) -> Run {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {MEMORY_GUARD_KB}; exec \"$0\" \"$@\""))
        .arg(bin_path())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh runs");
    // Drained while the child runs, so a large report cannot block it on a full pipe.
    let mut stdout = child.stdout.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`pmoves-secrets {}` hung: still running after {HANG_GUARD:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child.stderr.take().expect("piped").read_to_string(&mut stderr).expect("stderr");
    Run { code: status.code(), stdout: out_reader.join().expect("reader"), stderr }
}

fn write_env(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join(".env");
    std::fs::write(&path, text).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

fn generated() -> String {
    let out = crate::common::bin().arg("generate-keys").output().expect("runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `check --format json` (with `extra` arguments), guarded; the run and the findings' codes with
/// their keys.
fn check_json(env: &Path, extra: &[&str]) -> (Run, Vec<(String, String)>) {
    let env = env.to_str().expect("utf-8 path");
    let mut args = vec!["check", "--env-file", env, "--format", "json"];
    args.extend_from_slice(extra);
    let run = run_guarded(&args);
    assert!(run.code.is_some(), "check was killed by a signal; stderr: {}", run.stderr);
    let codes = match serde_json::from_str::<Value>(&run.stdout) {
        Ok(report) => report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| (f["code"].as_str().unwrap().to_owned(), f["key"].as_str().unwrap_or_default().to_owned()))
            .collect(),
        Err(_) => Vec::new(),
    };
    (run, codes)
}

#[test]
fn a_compose_path_that_is_not_a_regular_file_is_refused_at_once() {
    let dir = tempdir();
    let env = write_env(dir.path(), &generated());
    let fifo = dir.path().join("compose.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    for target in [fifo.as_path(), Path::new("/dev/zero"), dir.path()] {
        let (run, _) = check_json(&env, &["--compose", target.to_str().unwrap()]);
        assert_eq!(run.code, Some(1), "{}: {}", target.display(), run.stderr);
        assert!(run.stderr.contains("not a regular file"), "{}: {}", target.display(), run.stderr);
        assert!(run.stderr.contains(&target.display().to_string()), "{}", run.stderr);
    }
}

/// 50,000 nested defaults (300 KB): a stack overflow (SIGABRT) in the recursive reader, in a
/// compose file and in a `.env` value alike.
#[test]
fn deeply_nested_defaults_are_read_without_a_crash() {
    let depth = 50_000;
    let nested = format!("{}${{INNERMOST_PORT}}{}", "${PORT_NOT_SET:-".repeat(depth), "}".repeat(depth));
    let dir = tempdir();
    let env = write_env(dir.path(), &format!("{}SITE_PORT={nested}\n", generated()));
    let compose = dir.path().join("compose.yml");
    std::fs::write(&compose, format!("services:\n  kong:\n    image: kong\n    ports:\n      - \"{nested}:8000\"\n"))
        .expect("write");
    let (run, codes) = check_json(&env, &["--compose", compose.to_str().unwrap()]);
    assert!(run.code == Some(0) || run.code == Some(1), "{}", run.stderr);
    assert!(!codes.iter().any(|(code, _)| code.ends_with("bad-interpolation")), "{codes:?}");
    // Read to the innermost default, which is unset too.
    assert!(codes.iter().any(|(code, key)| code == "compose-unset-variable" && key == "INNERMOST_PORT"), "{codes:?}");
}

/// A 245-byte line that refers to itself made the old expansion allocate gigabytes; lines that
/// repeat one another (a billion laughs in `.env` form) are reported, not built.
#[test]
fn self_referencing_and_self_repeating_values_cost_little() {
    let dir = tempdir();
    let looped = format!("U=postgresql://postgres:{}@db/postgres\n", "${U}".repeat(50));
    assert!(looped.len() <= 245);
    let env = write_env(dir.path(), &format!("{}{looped}", generated()));
    let (run, codes) = check_json(&env, &[]);
    // Compose reads `${U}` on U's own line as unset: the URL has an empty password.
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let on_u: Vec<&str> = codes.iter().filter(|(_, key)| key == "U").map(|(code, _)| code.as_str()).collect();
    assert_eq!(on_u, ["url-password-mismatch"], "{codes:?}");

    let mut laughs = String::from("LAUGH_0=haha-haha\n");
    for i in 1..12 {
        laughs.push_str(&format!("LAUGH_{i}={}\n", format!("${{LAUGH_{}}}", i - 1).repeat(10)));
    }
    let env = write_env(dir.path(), &format!("{}{laughs}", generated()));
    let (run, codes) = check_json(&env, &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let bad: Vec<&str> =
        codes.iter().filter(|(code, _)| code == "env-bad-interpolation").map(|(_, key)| key.as_str()).collect();
    assert_eq!(bad, ["LAUGH_6"], "{codes:?}");
}

/// Templates whose reading depends on which `}` closes a reference: compose accepts or refuses
/// each exactly when `check` does (`compose-bad-interpolation`), as the real Compose v2 shows.
// Slow (about 3 s quiet, over 5 s on a loaded machine): real Compose (a Python program) and
// check run once per template, eleven times each.
#[test]
fn compose_and_check_agree_on_which_values_can_be_interpolated() {
    let test = "compose_and_check_agree_on_which_values_can_be_interpolated";
    let Some(compose_dir) = compose_bin(test) else { return };
    let templates = [
        "${SITE_URL:-{}",
        r#"${JWT_JWKS_UNSET:-{"keys":[]}}"#,
        "${UNSET_A:-a}b}",
        "${UNSET_A:-${UNSET_B:-x}y}z",
        "${UNSET_A:-{x}",
        "a $ b $1 $-",
        "${UNSET_A:-x",
        "${SITE_URL:-${UNSET_B}",
        "${UNSET_A*b}",
        "${}",
        "${UNSET_A:x}",
    ];
    let dir = tempdir();
    let env = write_env(dir.path(), &format!("{}SITE_URL=http://localhost:3000\n", generated()));
    for template in templates {
        let compose = dir.path().join("compose.yml");
        let yaml = format!(
            "services:\n  studio:\n    image: studio\n    environment:\n      X: {}\n",
            serde_json::to_string(template).unwrap()
        );
        std::fs::write(&compose, yaml).expect("write");
        let compose_reads = Command::new(compose_dir.join("docker-compose"))
            .arg("--env-file")
            .arg(&env)
            .arg("-f")
            .arg(&compose)
            .args(["config", "--format", "json"])
            .env("DOCKER_CONFIG", dir.path())
            .output()
            .expect("docker-compose runs");
        let compose_refuses = String::from_utf8_lossy(&compose_reads.stderr).contains("invalid interpolation format");
        let (run, codes) = check_json(&env, &["--compose", compose.to_str().unwrap()]);
        let check_refuses = codes.iter().any(|(code, _)| code == "compose-bad-interpolation");
        assert_eq!(check_refuses, compose_refuses, "{template:?}: compose refuses: {compose_refuses}; {}", run.stdout);
    }
}

/// Text read from the files (a service name in the compose file, a `kid` in the key set) reaches
/// the report with its control characters escaped, never as terminal commands.
#[test]
fn file_text_reaches_the_terminal_without_control_characters() {
    let dir = tempdir();
    let env = write_env(dir.path(), &generated());
    let compose = dir.path().join("compose.yml");
    std::fs::write(
        &compose,
        "services:\n  \"svc\\e]0;pwned\\a\\e[2J\":\n    environment:\n      \"DB_PASSWORD\\e[8m\": literal-pass-123\n",
    )
    .expect("write");
    let run = run_guarded(&["check", "--env-file", env.to_str().unwrap(), "--compose", compose.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stdout.contains("compose-literal-secret"), "{}", run.stdout);
    let controls: Vec<char> = run.stdout.chars().filter(|c| c.is_control() && *c != '\n').collect();
    assert!(controls.is_empty(), "control characters {controls:?} in: {:?}", run.stdout);
    assert!(run.stdout.contains("svc\\u{1b}]0;pwned"), "{}", run.stdout);
}

/// A `kid` with terminal escapes in it, as `rotate-keys status` and `check` print it.
#[test]
fn a_kid_with_escapes_is_printed_escaped() {
    let dir = tempdir();
    let out = crate::common::bin().args(["generate-keys", "--asymmetric"]).output().expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let kid = crate::common::env_value(&text, "JWT_KEYS")
        .and_then(|keys| serde_json::from_str::<Value>(&keys).ok())
        .and_then(|keys| keys.as_array()?.iter().find_map(|k| k["kid"].as_str().map(str::to_owned)))
        .expect("a kid");
    // The same kid everywhere (JSON-escaped in the file), so the ring stays consistent.
    let hostile = format!("{kid}\\u001b]0;pwned\\u0007\\u001b[2J");
    let env = write_env(dir.path(), &text.replace(&kid, &hostile));
    let env = env.to_str().unwrap();
    for args in [&["rotate-keys", "status", "--env-file", env][..], &["check", "--env-file", env][..]] {
        let run = run_guarded(args);
        assert!(run.code.is_some(), "{args:?}: {}", run.stderr);
        let controls: Vec<char> =
            (run.stdout.clone() + &run.stderr).chars().filter(|c| c.is_control() && *c != '\n').collect();
        assert!(controls.is_empty(), "{args:?}: control characters {controls:?} in: {:?}", run.stdout);
    }
    let run = run_guarded(&["rotate-keys", "status", "--env-file", env]);
    assert!(run.stdout.contains(&format!("{kid}\\u{{1b}}]0;pwned")), "{}", run.stdout);
}
