//! Benchmark: a whole `rotate-passwords` run against a throwaway cluster, next to one psql
//! session running the same twelve plaintext `ALTER ROLE`s in autocommit (upstream's approach,
//! without its docker exec). Targets: BEGIN→COMMIT ≤ 10 ms on loopback; the whole rotation
//! (staging, fsyncs, the login test of every LOGIN role) no slower than the psql session.
//!
//! Run with `cargo bench --bench rotate` (needs the PostgreSQL server binaries, as the tests).
//! Prints medians; asserts nothing.

#![forbid(unsafe_code)]

#[path = "../tests/it/common/pg/mod.rs"]
mod pg;

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 25;

fn env_password(env: &Path) -> String {
    let text = std::fs::read_to_string(env).expect(".env");
    text.lines().find_map(|l| l.strip_prefix("POSTGRES_PASSWORD=")).expect("POSTGRES_PASSWORD").to_owned()
}

fn measure(cluster: &pg::Cluster, env: &Path) {
    let tool = env!("CARGO_BIN_EXE_pmoves-secrets");
    let rotate = || {
        let start = Instant::now();
        let out = Command::new(tool)
            .args(["rotate-passwords", "--yes", "--format", "json", "--sslmode", "disable", "--env-file"])
            .arg(env)
            .output()
            .expect("runs");
        let wall = start.elapsed();
        assert!(out.status.success(), "rotation failed: {}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
        (wall, report)
    };
    rotate(); // warm-up: caches, the first connection

    // The baseline: one psql session, twelve plaintext ALTERs in autocommit, setting the
    // password the roles already have (so the cluster stays consistent with the .env).
    let psql = |password: &str| {
        let script: String =
            pg::ROTATED_ROLES.iter().map(|r| format!("ALTER ROLE {r} PASSWORD '{password}';\n")).collect();
        let url = cluster.db_url("supabase_admin", password, cluster.work_db());
        common::timed_psql_session(&pg::psql_path(), &url, &script)
    };
    psql(&env_password(env));

    // The floor inside the transaction: the same twelve ALTER ROLEs with client-made SCRAM
    // verifiers and nothing else, timed from BEGIN to COMMIT on an open session (it stays
    // authenticated while the rotations change the password).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let client =
        rt.block_on(cluster.connect("supabase_admin", &env_password(env), cluster.work_db())).expect("connect");
    let floor_once = |password: &str| {
        let sql: String = pg::ROTATED_ROLES
            .iter()
            .map(|r| {
                format!(
                    "ALTER ROLE {r} PASSWORD '{}';",
                    postgres_protocol::password::scram_sha_256(password.as_bytes())
                )
            })
            .collect();
        let start = Instant::now();
        rt.block_on(client.batch_execute(&format!("BEGIN;{sql}COMMIT;"))).expect("alters");
        start.elapsed().as_secs_f64() * 1000.0
    };

    // Interleaved rounds (rotation, psql, floor), so a change in the machine's speed during the
    // run (a 2-core VM shared with others) weighs on all three alike; the ratios are taken per
    // round and their median reported beside the medians.
    let (mut wall, mut tx, mut verify, mut plan, mut total) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut baseline, mut floor, mut wall_ratio, mut tx_ratio) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (w, report) = rotate();
        let w = w.as_secs_f64() * 1000.0;
        let t = report["timings"]["transaction_ms"].as_f64().unwrap_or(f64::NAN);
        wall.push(w);
        tx.push(t);
        verify.push(report["timings"]["verify_ms"].as_f64().unwrap_or(f64::NAN));
        plan.push(report["timings"]["plan_ms"].as_f64().unwrap_or(f64::NAN));
        total.push(report["timings"]["total_ms"].as_f64().unwrap_or(f64::NAN));
        let password = env_password(env);
        let b = psql(&password).as_secs_f64() * 1000.0;
        let f = floor_once(&password);
        baseline.push(b);
        floor.push(f);
        wall_ratio.push(w / b);
        tx_ratio.push(t / f);
    }

    let (w, b, t, f) = (common::median(wall), common::median(baseline), common::median(tx), common::median(floor));
    println!("rotate-passwords on loopback, {RUNS} runs (medians):");
    println!("  start to plan ready (plan_ms):        {:.2} ms", common::median(plan));
    println!("  BEGIN→COMMIT (transaction_ms):        {t:.2} ms");
    println!("  login test of every LOGIN role:       {:.2} ms", common::median(verify));
    println!("  whole run as the tool times it:       {:.2} ms", common::median(total));
    println!("  whole process (wall):                 {w:.2} ms");
    println!("  psql, 12 plaintext ALTERs autocommit: {b:.2} ms");
    println!(
        "  ratio whole rotation / psql session:  {:.2} (median of per-round ratios: {:.2})",
        w / b,
        common::median(wall_ratio)
    );
    println!("  floor: 12 ALTER ROLE with verifiers, BEGIN→COMMIT alone: {f:.2} ms");
    println!(
        "  ratio BEGIN→COMMIT / floor:           {:.2} (median of per-round ratios: {:.2})",
        t / f,
        common::median(tx_ratio)
    );
}

fn main() {
    let cluster = pg::Cluster::start(pg::ClusterOptions::new());
    let dir = tempfile::tempdir().expect("temp dir");
    let env = dir.path().join(".env");
    let body: String = cluster.env_vars().iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&env, body).expect("write .env");

    // The harness runs clusters with fsync=off; production runs with it on, where each of
    // psql's twelve autocommits waits for its own WAL flush. Measure both.
    for fsync in ["off", "on"] {
        cluster.psql(&format!("ALTER SYSTEM SET fsync = {fsync}"));
        cluster.psql("SELECT pg_reload_conf()");
        std::thread::sleep(Duration::from_millis(200));
        println!("== fsync = {fsync} ==");
        measure(&cluster, &env);
    }

    let tool = env!("CARGO_BIN_EXE_pmoves-secrets");
    let rotate = || {
        let out = Command::new(tool)
            .args(["rotate-passwords", "--yes", "--format", "json", "--sslmode", "disable", "--env-file"])
            .arg(&env)
            .output()
            .expect("runs");
        assert!(out.status.success(), "rotation failed: {}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
        ((), report)
    };
    // md5 clusters: the server's empty-password check on an md5 verifier is one MD5, not PBKDF2.
    let md5_tx = {
        let md5 = pg::Cluster::start(pg::ClusterOptions::new().md5());
        let body: String = md5.env_vars().iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(&env, body).expect("write .env");
        let samples: Vec<f64> =
            (0..RUNS).map(|_| rotate().1["timings"]["transaction_ms"].as_f64().unwrap_or(f64::NAN)).collect();
        common::median(samples)
    };

    println!("== md5 cluster (fsync = off) ==");
    println!("  BEGIN→COMMIT (transaction_ms):        {md5_tx:.2} ms");
    drop(cluster);
    std::thread::sleep(Duration::from_millis(10));
}
