//! Benchmark: rewriting a 1,000-line `.env` (target: ≤ 1 ms of work beyond the fsyncs, memory
//! linear in file size). Run with `cargo bench --bench envfile`; prints medians, asserts nothing.

#![forbid(unsafe_code)]

use pmoves_secrets::envfile;

use std::time::{Duration, Instant};

/// A realistic 1,000-line file: sections, comments, blank lines, quoting, URLs, `export`.
fn thousand_lines() -> String {
    let mut text = String::with_capacity(64 * 1024);
    let mut i = 0;
    while text.lines().count() < 1000 {
        text.push_str(&format!("############\n# Section {i}\n############\n\n"));
        text.push_str(&format!("SERVICE_{i}_HOST=service-{i}.internal\n"));
        text.push_str(&format!("export SERVICE_{i}_TOKEN='{}'\n", "a1b2c3d4".repeat(8)));
        text.push_str(&format!("SERVICE_{i}_URL=postgresql://user_{i}:p%40ss{i}@db:5432/app?sslmode=disable\n"));
        text.push_str(&format!(
            "SERVICE_{i}_NOTE=\"quoted value with \\\"escapes\\\" and spaces\" # trailing comment\n"
        ));
        text.push_str(&format!("SERVICE_{i}_PORT={}\n\n", 8000 + i));
        i += 1;
    }
    text.push_str("POSTGRES_PASSWORD=0123456789abcdef0123456789abcdef\nJWT_SECRET=old\n");
    text
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let text = thousand_lines();
    let lines = text.lines().count();
    let keys = ["POSTGRES_PASSWORD", "JWT_SECRET", "SERVICE_10_URL", "SERVICE_70_TOKEN", "NEW_KEY"];

    // In memory: parse, set five keys (one appended), render. This is all the work besides I/O.
    let mut in_memory = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let start = Instant::now();
        let mut file = envfile::EnvFile::parse(&text, None).expect("parses");
        for key in keys {
            file.set(key, "fedcba9876543210fedcba9876543210").expect("valid key");
        }
        let out = file.render();
        std::hint::black_box(&out);
        in_memory.push(start.elapsed());
    }

    // On disk, through the locked, atomic path (temp file, fsync, rename, directory fsync).
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(".env");
    std::fs::write(&path, &text).expect("write");
    let mut on_disk = Vec::with_capacity(200);
    for _ in 0..200 {
        let start = Instant::now();
        let env =
            envfile::LockedEnv::acquire_existing(&path, std::time::Duration::ZERO, |_| {}, || false).expect("lock");
        let mut file = env.read().expect("read").expect("exists");
        for key in keys {
            file.set(key, "fedcba9876543210fedcba9876543210").expect("valid key");
        }
        env.write(&file).expect("write");
        on_disk.push(start.elapsed());
    }

    println!("envfile rewrite of a {lines}-line, {} KiB .env (5 keys set, 1 appended):", text.len() / 1024);
    println!("  parse + set + render (all work but I/O): median {:?}", median(in_memory));
    println!("  locked atomic rewrite incl. fsyncs:      median {:?}", median(on_disk));
}
