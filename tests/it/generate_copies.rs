//! `generate-keys --env-file` stops setting the trap of SPEC §8: a key with copies outside `.env`
//! is named in the plan with `rotate-secrets`, and never re-minted when the stack's database holds
//! a copy of it.

use crate::common::bin;
use crate::common::copies::{findings, seed_supavisor, OtherCrypto, StackEnv};
use crate::common::pg::{Cluster, ClusterOptions};
use crate::common::skip_on_external_database;

fn generate(env: &StackEnv, extra: &[&str]) -> std::process::Output {
    bin().args(["generate-keys", "--yes", "--env-file"]).arg(&env.path).args(extra).output().expect("runs")
}

#[test]
fn only_a_key_whose_copy_the_database_holds_is_refused_and_nothing_changes() {
    if skip_on_external_database("writes Supavisor's row") {
        return;
    }
    let Some(crypto) = OtherCrypto::find("only_a_key_whose_copy_the_database_holds_is_refused") else { return };
    let pg = Cluster::start(ClusterOptions::default());
    let env = StackEnv::new(&pg);
    seed_supavisor(&pg, &crypto, &env.get("VAULT_ENC_KEY"), pg.password());
    let before = std::fs::read(&env.path).unwrap();
    let out = generate(&env, &["--only", "VAULT_ENC_KEY"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("_supavisor.users.db_pass_encrypted") && stderr.contains("rotate-secrets VAULT_ENC_KEY"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&env.path).unwrap(), before, "the .env must stay byte-identical");
    let (code, report) = env.check_db();
    assert_eq!((code, findings(&report)), (0, vec![]), "Supavisor's copy must not be left stale: {report:#}");
}

#[test]
fn a_demo_key_whose_copy_the_database_holds_is_held_back_and_the_rest_filled() {
    if skip_on_external_database("writes settings and rows") {
        return;
    }
    let pg = Cluster::start(ClusterOptions::default());
    let env = StackEnv::new(&pg);
    let demo = "your-super-secret-jwt-token-with-at-least-32-characters-long";
    env.set("JWT_SECRET", demo);
    env.set("SECRET_KEY_BASE", "");
    pg.psql_in(pg.main_db(), &format!("ALTER DATABASE {} SET \"app.settings.jwt_secret\" TO '{demo}'", pg.main_db()));
    let anon = env.get("ANON_KEY");
    let out = generate(&env, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("JWT_SECRET is a publicly known demo value but is left as it is"), "{stderr}");
    assert!(stderr.contains("rotate-secrets JWT_SECRET"), "{stderr}");
    assert_eq!(env.get("JWT_SECRET"), demo);
    assert_eq!(env.get("ANON_KEY"), anon, "no token is re-minted for a JWT_SECRET that does not change");
    assert_eq!(env.get("SECRET_KEY_BASE").len(), 64, "the rest of the plan goes ahead");
}

#[test]
fn a_key_with_copies_but_none_in_the_database_is_changed_and_the_plan_names_rotate_secrets() {
    if skip_on_external_database("needs the fixture's empty tables") {
        return;
    }
    let pg = Cluster::start(ClusterOptions::default());
    let env = StackEnv::new(&pg);
    let before = env.get("VAULT_ENC_KEY");
    let out = generate(&env, &["--only", "VAULT_ENC_KEY"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("VAULT_ENC_KEY has copies outside .env"), "{stderr}");
    assert!(stderr.contains("use `pmoves-secrets rotate-secrets VAULT_ENC_KEY`"), "{stderr}");
    assert_ne!(env.get("VAULT_ENC_KEY"), before);
}

#[test]
fn with_no_database_answering_the_plan_still_names_rotate_secrets_and_does_not_wait() {
    let dir = crate::common::tempdir();
    let path = dir.path().join(".env");
    let out = bin().arg("generate-keys").output().expect("runs");
    let text = String::from_utf8(out.stdout).unwrap().replace("POSTGRES_HOST=supabase-db", "POSTGRES_HOST=127.0.0.1");
    let text = text.replace("POSTGRES_PORT=5432", "POSTGRES_PORT=1");
    std::fs::write(&path, text).unwrap();
    let started = std::time::Instant::now();
    let out = bin()
        .args(["generate-keys", "--yes", "--only", "REALTIME_DB_ENC_KEY", "--env-file"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("REALTIME_DB_ENC_KEY has copies outside .env (_realtime.tenants.jwt_secret"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
}

/// The database password has copies too (Supavisor's), but `rotate-secrets` refuses it: a demo
/// `POSTGRES_PASSWORD` the running database holds copies of is left as it is, and the warning
/// points at `rotate-passwords`, which changes it in the database and every copy.
#[test]
fn a_demo_database_password_with_copies_held_points_at_rotate_passwords() {
    if skip_on_external_database("sets supabase_admin's password and writes Supavisor's row") {
        return;
    }
    let Some(crypto) = OtherCrypto::find("a_demo_database_password_with_copies_held_points_at_rotate_passwords") else {
        return;
    };
    let pg = Cluster::start(ClusterOptions::default());
    let env = StackEnv::new(&pg);
    let demo = "your-super-secret-and-long-postgres-password";
    seed_supavisor(&pg, &crypto, &env.get("VAULT_ENC_KEY"), demo);
    pg.psql(&format!("ALTER ROLE supabase_admin PASSWORD '{demo}'"));
    env.set("POSTGRES_PASSWORD", demo);
    let out = generate(&env, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("POSTGRES_PASSWORD is a publicly known demo value but is left as it is"), "{stderr}");
    assert!(stderr.contains("`pmoves-secrets rotate-passwords"), "{stderr}");
    assert!(!stderr.contains("rotate-secrets POSTGRES_PASSWORD"), "a command that refuses it: {stderr}");
    assert!(!stderr.contains("none is a demo"), "the demo value was just named: {stderr}");
    assert_eq!(env.get("POSTGRES_PASSWORD"), demo);
}
