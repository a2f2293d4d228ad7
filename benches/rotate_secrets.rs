//! Benchmark: a whole `rotate-secrets` run of the secrets whose copies live in `_supabase`
//! (`VAULT_ENC_KEY`: `_supavisor` reset with its owner; both Logflare tokens:
//! `_analytics.users.api_key` rewritten), next to one psql session running the same statements
//! in one transaction. Target: the whole run within 1.25× of the psql session.
//!
//! Run with `cargo bench --bench rotate_secrets` (needs the PostgreSQL server binaries, as the
//! tests). Prints medians; asserts nothing.

#![forbid(unsafe_code)]

#[path = "../tests/it/common/pg/mod.rs"]
mod pg;

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

const RUNS: usize = 25;
const KEYS: [&str; 3] = ["VAULT_ENC_KEY", "LOGFLARE_PUBLIC_ACCESS_TOKEN", "LOGFLARE_PRIVATE_ACCESS_TOKEN"];

fn value(env: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(env).expect(".env");
    let prefix = format!("{key}=");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).expect("key in .env").trim_matches('\'').to_owned()
}

/// A complete generated `.env` pointing at `cluster`.
fn stack_env(tool: &str, cluster: &pg::Cluster, env: &Path) {
    let out = Command::new(tool).arg("generate-keys").output().expect("generate-keys runs");
    assert!(out.status.success());
    let ours: Vec<(String, String)> = cluster.env_vars();
    let mut text: String = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .filter(|l| !ours.iter().any(|(k, _)| l.starts_with(&format!("{k}="))))
        .map(|l| format!("{l}\n"))
        .collect();
    text.extend(ours.iter().map(|(k, v)| format!("{k}={v}\n")));
    std::fs::write(env, text).expect("write .env");
}

fn main() {
    let tool = env!("CARGO_BIN_EXE_pmoves-secrets");
    let cluster = pg::Cluster::start(pg::ClusterOptions::new());
    cluster.psql("ALTER SYSTEM SET fsync = on");
    cluster.psql("SELECT pg_reload_conf()");
    let dir = tempfile::tempdir().expect("temp dir");
    let env = dir.path().join(".env");
    stack_env(tool, &cluster, &env);
    let public = value(&env, "LOGFLARE_PUBLIC_ACCESS_TOKEN");
    cluster.psql_in(
        cluster.work_db(),
        &format!(
            "INSERT INTO _analytics.users (id, email, provider, token, api_key, provider_uid) \
             VALUES (1, 'default@logflare.app', 'default', gen_random_uuid()::text, '{public}', 'default')"
        ),
    );

    let rotate = || {
        let start = Instant::now();
        let out = Command::new(tool)
            .arg("rotate-secrets")
            .args(KEYS)
            .args(["--yes", "--format", "json", "--sslmode", "disable", "--env-file"])
            .arg(&env)
            .output()
            .expect("runs");
        assert!(out.status.success(), "rotate-secrets failed: {}", String::from_utf8_lossy(&out.stderr));
        start.elapsed().as_secs_f64() * 1000.0
    };
    // The baseline: the same statements in one psql session and one transaction, setting the
    // value the row already has (so the database stays consistent with the .env).
    let psql = |token: &str| {
        let script = format!(
            "BEGIN;\nDROP SCHEMA IF EXISTS _supavisor CASCADE;\nCREATE SCHEMA _supavisor AUTHORIZATION supabase_admin;\n\
             UPDATE _analytics.users SET api_key = '{token}' WHERE api_key = '{token}';\nCOMMIT;\n"
        );
        let url = cluster.db_url("supabase_admin", cluster.password(), cluster.work_db());
        common::timed_psql_session(&pg::psql_path(), &url, &script).as_secs_f64() * 1000.0
    };
    rotate();
    psql(&value(&env, "LOGFLARE_PUBLIC_ACCESS_TOKEN"));

    // Interleaved rounds, so a change in the machine's speed weighs on both alike.
    let (mut tool_ms, mut psql_ms, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let t = rotate();
        let p = psql(&value(&env, "LOGFLARE_PUBLIC_ACCESS_TOKEN"));
        tool_ms.push(t);
        psql_ms.push(p);
        ratios.push(t / p);
    }
    let (t, p) = (common::median(tool_ms), common::median(psql_ms));
    println!("rotate-secrets {} on loopback (fsync = on), {RUNS} runs (medians):", KEYS.join(" "));
    println!("  whole process (wall):                 {t:.2} ms");
    println!("  psql, the same statements in one transaction: {p:.2} ms");
    println!(
        "  ratio whole run / psql session:       {:.2} (median of per-round ratios: {:.2})",
        t / p,
        common::median(ratios)
    );
}
