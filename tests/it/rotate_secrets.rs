//! `rotate-secrets` through the binary against a real cluster: every copy followed and checked by
//! another implementation (Python `cryptography`), crashes that converge, refusals that change
//! nothing, `--restart` of exactly the union of services (SPEC §8).

use std::os::unix::fs::PermissionsExt;

use crate::common::copies::{findings, seed_logflare, seed_realtime, seed_supavisor, OtherCrypto, StackEnv};
use crate::common::pg::{Cluster, ClusterOptions};
use crate::common::{bin, hs256_signed_by, skip_on_external_database};

fn setup(test: &str) -> Option<(Cluster, StackEnv, OtherCrypto)> {
    setup_with(test, ClusterOptions::default())
}

fn setup_with(test: &str, options: ClusterOptions) -> Option<(Cluster, StackEnv, OtherCrypto)> {
    if skip_on_external_database("writes rows into the services' tables") {
        return None;
    }
    let crypto = OtherCrypto::find(test)?;
    let pg = Cluster::start(options);
    let env = StackEnv::new(&pg);
    seed_supavisor(&pg, &crypto, &env.get("VAULT_ENC_KEY"), pg.password());
    seed_realtime(&pg, &crypto, &env.get("REALTIME_DB_ENC_KEY"), "tenant-b", &env.get("JWT_SECRET"), pg.password());
    seed_logflare(&pg, &env.get("LOGFLARE_PUBLIC_ACCESS_TOKEN"), &env.get("LOGFLARE_PRIVATE_ACCESS_TOKEN"));
    Some((pg, env, crypto))
}

fn rotate(env: &StackEnv, args: &[&str]) -> std::process::Output {
    bin()
        .arg("rotate-secrets")
        .args(args)
        .arg("--env-file")
        .arg(&env.path)
        .args(["--sslmode", "disable"])
        .output()
        .expect("runs")
}

/// `rotate-secrets --yes` of every key whose copies the fixture seeds; the run must succeed.
fn rotate_every_key_with_copies(env: &StackEnv) {
    let keys =
        ["VAULT_ENC_KEY", "REALTIME_DB_ENC_KEY", "LOGFLARE_PUBLIC_ACCESS_TOKEN", "LOGFLARE_PRIVATE_ACCESS_TOKEN"];
    let out = rotate(env, &[&keys[..], &["--yes"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// `rotate-secrets KEYS --yes` made to crash at `point` (a debug build's crash point); the run
/// must not succeed.
fn rotate_crashing_at(env: &StackEnv, point: &str, keys: &[&str]) {
    let out = bin()
        .arg("rotate-secrets")
        .args(keys)
        .args(["--yes", "--sslmode", "disable", "--env-file"])
        .arg(&env.path)
        .env("PMOVES_SECRETS_CRASH_AT", point)
        .output()
        .expect("runs");
    assert_ne!(out.status.code(), Some(0), "the crash point at {point} aborts");
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A generated `.env` in a directory of its own, pointing at no database.
fn generated_env() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = crate::common::tempdir();
    let path = dir.path().join(".env");
    let out = bin().arg("generate-keys").output().unwrap();
    std::fs::write(&path, &out.stdout).unwrap();
    (dir, path)
}

fn errors(env: &StackEnv) -> Vec<(String, String, Option<String>)> {
    let (_, report) = env.check_db();
    findings(&report).into_iter().filter(|(severity, _, _)| severity == "error").collect()
}

fn realtime_values(pg: &Cluster) -> (String, String) {
    let jwt = pg.psql_in(pg.main_db(), "SELECT jwt_secret FROM _realtime.tenants WHERE external_id = 'tenant-b'");
    let pw = pg.psql_in(
        pg.main_db(),
        "SELECT settings->>'db_password' FROM _realtime.extensions WHERE tenant_external_id = 'tenant-b'",
    );
    (jwt, pw)
}

#[test]
fn the_keys_with_database_copies_are_followed_and_the_copies_decrypt_elsewhere_to_the_new_values() {
    let Some((pg, env, crypto)) = setup("the_keys_with_database_copies_are_followed") else { return };
    let (old_vault, old_realtime, old_public) =
        (env.get("VAULT_ENC_KEY"), env.get("REALTIME_DB_ENC_KEY"), env.get("LOGFLARE_PUBLIC_ACCESS_TOKEN"));
    // The trap, before: a new key in .env alone leaves the copies stale, and check says so.
    env.set("REALTIME_DB_ENC_KEY", "0011223344556677");
    assert!(errors(&env).iter().any(|(_, code, _)| code == "db-realtime-jwt-secret"));
    env.set("REALTIME_DB_ENC_KEY", &old_realtime);

    rotate_every_key_with_copies(&env);
    let new_realtime = env.get("REALTIME_DB_ENC_KEY");
    assert_ne!(env.get("VAULT_ENC_KEY"), old_vault);
    assert_ne!(new_realtime, old_realtime);
    assert_ne!(env.get("LOGFLARE_PUBLIC_ACCESS_TOKEN"), old_public);
    // Supavisor's schema was reset with its owner (it re-seeds it under the new key).
    assert_eq!(pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = '_supavisor'"), "0");
    assert_eq!(
        pg.psql("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = '_supavisor'"),
        "supabase_admin"
    );
    // Realtime's rows decrypt, by Python, under the new key to the same values.
    let (jwt, pw) = realtime_values(&pg);
    assert_eq!(crypto.realtime_decrypt(&new_realtime, &jwt).as_deref(), Some(env.get("JWT_SECRET").as_str()));
    assert_eq!(crypto.realtime_decrypt(&new_realtime, &pw).as_deref(), Some(pg.password()));
    assert_eq!(crypto.realtime_decrypt(&old_realtime, &jwt), None);
    assert_eq!(pg.psql("SELECT api_key FROM _analytics.users"), env.get("LOGFLARE_PUBLIC_ACCESS_TOKEN"));
    assert_eq!(errors(&env), vec![], "no stale copy is left");
    assert!(!env.path.with_file_name(".env.pending").exists());
    assert!(!std::fs::read_to_string(&env.path).unwrap().contains("rotate-secrets pending"));
}

#[test]
fn a_run_logs_in_once_per_database() {
    let options = ClusterOptions::default().setting("log_connections", "on");
    let Some((pg, env, _)) = setup_with("a_run_logs_in_once_per_database", options) else { return };
    let before = pg.server_log().len();
    rotate_every_key_with_copies(&env);
    let log = pg.server_log();
    let mut logins: Vec<&str> = log[before..]
        .lines()
        .filter_map(|line| line.split("connection authorized: user=supabase_admin database=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    logins.sort_unstable();
    // Each login is a backend start and a SCRAM exchange: the looks at the copies and the
    // transaction share one session per database.
    assert_eq!(logins, [pg.work_db(), pg.main_db()], "{logins:?}");
}

#[test]
fn a_new_jwt_secret_reaches_realtime_removes_the_database_copy_and_re_mints_the_api_keys() {
    let Some((pg, env, crypto)) = setup("a_new_jwt_secret_reaches_realtime") else { return };
    let old = env.get("JWT_SECRET");
    pg.psql_in(pg.main_db(), &format!("ALTER DATABASE {} SET \"app.settings.jwt_secret\" TO '{old}'", pg.main_db()));
    let out = rotate(&env, &["JWT_SECRET", "--yes", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(!report.to_string().contains(&old) && !report.to_string().contains(&env.get("JWT_SECRET")));
    let new = env.get("JWT_SECRET");
    assert_ne!(new, old);
    assert!(hs256_signed_by(&env.get("ANON_KEY"), &new) && hs256_signed_by(&env.get("SERVICE_ROLE_KEY"), &new));
    let (jwt, _) = realtime_values(&pg);
    assert_eq!(crypto.realtime_decrypt(&env.get("REALTIME_DB_ENC_KEY"), &jwt).as_deref(), Some(new.as_str()));
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_db_role_setting WHERE array_to_string(setconfig, ',') LIKE '%jwt_secret%'"),
        "0"
    );
    let services: Vec<&str> =
        report["plan"]["services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    for service in ["auth", "rest", "realtime", "storage", "api-gw"] {
        assert!(services.contains(&service), "{service} in {services:?}");
    }
    assert_eq!(errors(&env), vec![]);
}

#[test]
fn keys_without_database_copies_need_no_database() {
    let dir = crate::common::tempdir();
    let path = dir.path().join(".env");
    let out = bin().arg("generate-keys").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap().replace("POSTGRES_HOST=supabase-db", "POSTGRES_HOST=127.0.0.1");
    std::fs::write(&path, text.replace("POSTGRES_PORT=5432", "POSTGRES_PORT=1")).unwrap();
    let before = std::fs::read_to_string(&path).unwrap();
    let out = bin()
        .args(["rotate-secrets", "SECRET_KEY_BASE", "DASHBOARD_PASSWORD", "--yes", "--env-file"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after = std::fs::read_to_string(&path).unwrap();
    let value = |text: &str, key: &str| crate::common::env_value(text, key).unwrap();
    assert_ne!(value(&after, "SECRET_KEY_BASE"), value(&before, "SECRET_KEY_BASE"));
    assert_ne!(value(&after, "DASHBOARD_PASSWORD"), value(&before, "DASHBOARD_PASSWORD"));
    assert_eq!(value(&after, "JWT_SECRET"), value(&before, "JWT_SECRET"));
}

/// Every pre-flight runs before the question, as in rotate-passwords: an operator who types
/// "yes" is never refused afterwards. An immutable `.env` is refused first.
#[test]
fn an_env_that_could_not_be_published_is_refused_before_the_question() {
    let (_dir, path) = generated_env();
    let before = std::fs::read(&path).unwrap();
    let chattr = |flag: &str| std::process::Command::new("chattr").arg(flag).arg(&path).status();
    if !chattr("+i").is_ok_and(|status| status.success()) {
        crate::common::skipped("chattr +i is not possible here");
        return;
    }
    let mut session = crate::common::spawn_in_pty(&["rotate-secrets", "SECRET_KEY_BASE"], &path);
    let said = session.exp_eof();
    chattr("-i").expect("chattr -i");
    let said = said.expect("exits without asking");
    let code = crate::common::pty_exit_code(&mut session);
    assert!(!said.contains("Rotate these secrets now?"), "asked before refusing: {said}");
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("immutable"), "{said}");
    assert!(std::fs::read(&path).unwrap() == before, "the .env is unchanged");
}

#[test]
fn a_refusal_and_a_key_of_another_command_leave_the_env_byte_identical() {
    let (_dir, path) = generated_env();
    let before = std::fs::read(&path).unwrap();
    let out = bin().args(["rotate-secrets", "SECRET_KEY_BASE", "--env-file"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "no terminal, no --yes: {}", stderr(&out));
    let out = bin().args(["rotate-secrets", "POSTGRES_PASSWORD", "--yes", "--env-file"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("rotate-passwords"), "{}", stderr(&out));
    let out = bin().args(["rotate-secrets", "JWT_KEYS", "--yes", "--env-file"]).arg(&path).output().unwrap();
    assert!(stderr(&out).contains("rotate-keys"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_failed_transaction_changes_nothing() {
    let Some((pg, env, crypto)) = setup("a_failed_transaction_changes_nothing") else { return };
    let before = std::fs::read(&env.path).unwrap();
    let (jwt_before, _) = realtime_values(&pg);
    // Logflare's user row is held by another session: the UPDATE times out after the realtime
    // and supavisor statements ran in their transactions.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let holder = runtime.block_on(pg.hold_lock_in(pg.work_db(), "SELECT * FROM _analytics.users FOR UPDATE"));
    let out = rotate(
        &env,
        &["VAULT_ENC_KEY", "REALTIME_DB_ENC_KEY", "LOGFLARE_PUBLIC_ACCESS_TOKEN", "--yes", "--lock-timeout", "300ms"],
    );
    drop(holder);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(std::fs::read(&env.path).unwrap(), before);
    assert!(!env.path.with_file_name(".env.pending").exists());
    assert_eq!(realtime_values(&pg).0, jwt_before);
    assert_eq!(pg.psql("SELECT count(*) FROM _supavisor.users"), "1");
    assert!(crypto.realtime_decrypt(&env.get("REALTIME_DB_ENC_KEY"), &jwt_before).is_some());
    assert_eq!(errors(&env), vec![]);
}

fn crash_then_rerun(point: &str) -> Option<(Cluster, StackEnv, OtherCrypto, String)> {
    let (pg, env, crypto) = setup(&format!("crash {point}"))?;
    let old = env.get("REALTIME_DB_ENC_KEY");
    rotate_crashing_at(&env, point, &["REALTIME_DB_ENC_KEY"]);
    // The next run settles the interrupted one and converges.
    let out = rotate(&env, &["REALTIME_DB_ENC_KEY", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!env.path.with_file_name(".env.pending").exists());
    assert_eq!(errors(&env), vec![], "{point}: .env and copies agree");
    Some((pg, env, crypto, old))
}

// Slow (about 3 s quiet, over 5 s on a loaded machine): three crash points, each a cluster of its
// own, a crashed run and a rerun.
#[test]
fn a_crash_after_staging_after_commit_or_after_publishing_converges() {
    for point in ["after-stage", "after-commit", "after-publish"] {
        let Some((pg, env, crypto, old)) = crash_then_rerun(point) else { return };
        let new = env.get("REALTIME_DB_ENC_KEY");
        assert_ne!(new, old, "{point}");
        let (jwt, _) = realtime_values(&pg);
        assert_eq!(crypto.realtime_decrypt(&new, &jwt).as_deref(), Some(env.get("JWT_SECRET").as_str()), "{point}");
    }
}

// About 4 s on a quiet machine (over 5 s loaded): a cluster of its own, the crashed run, a dry
// run, a finishing run refused by a held lock, the finishing run and check --db.
#[test]
fn a_crash_between_the_two_commits_is_finished_by_the_next_run() {
    let Some((pg, env, crypto)) = setup("a_crash_between_the_two_commits") else { return };
    let (old_vault, old_realtime, old_public) =
        (env.get("VAULT_ENC_KEY"), env.get("REALTIME_DB_ENC_KEY"), env.get("LOGFLARE_PUBLIC_ACCESS_TOKEN"));
    rotate_crashing_at(
        &env,
        "between-commits",
        &["VAULT_ENC_KEY", "REALTIME_DB_ENC_KEY", "LOGFLARE_PUBLIC_ACCESS_TOKEN"],
    );
    // The main database (Realtime's rows) committed first: its rows are under the new key, which
    // only the pending file holds; _supabase's transaction (Supavisor, Logflare) rolled back.
    let pending = env.path.with_file_name(".env.pending");
    let staged = |key: &str| crate::common::env_value(&std::fs::read_to_string(&pending).unwrap(), key).unwrap();
    let (new_vault, new_realtime, new_public) =
        (staged("VAULT_ENC_KEY"), staged("REALTIME_DB_ENC_KEY"), staged("LOGFLARE_PUBLIC_ACCESS_TOKEN"));
    assert_eq!(env.get("REALTIME_DB_ENC_KEY"), old_realtime);
    let (jwt, _) = realtime_values(&pg);
    assert_eq!(crypto.realtime_decrypt(&new_realtime, &jwt).as_deref(), Some(env.get("JWT_SECRET").as_str()));
    assert_eq!(pg.psql("SELECT count(*) FROM _supavisor.users"), "1");
    assert_eq!(pg.psql("SELECT api_key FROM _analytics.users"), old_public);

    // A dry run says what a run would do, and changes nothing.
    let files = || (std::fs::read(&env.path).unwrap(), std::fs::read(&pending).unwrap());
    let before = files();
    let out = rotate(&env, &["VAULT_ENC_KEY", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains(&format!("committed in database {} but not in {}", pg.main_db(), pg.work_db())), "{said}");
    assert!(said.contains("_supavisor reset") && said.contains("_analytics.users.api_key"), "{said}");
    assert!(!said.contains("tenant-b"), "the committed database's copies are done: {said}");
    assert!(files() == before, "a dry run writes nothing");

    // Finishing fails (Logflare's row is held): the pending file, the only record of the values
    // the main database now holds, is kept, and the advice is to run again.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let holder = runtime.block_on(pg.hold_lock_in(pg.work_db(), "SELECT * FROM _analytics.users FOR UPDATE"));
    let out = rotate(&env, &["VAULT_ENC_KEY", "--yes", "--lock-timeout", "300ms"]);
    drop(holder);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("run rotate-secrets again: it finishes the rotation"), "{}", stderr(&out));
    assert!(files().0 == before.0, "the .env is as it was");
    assert_eq!(staged("REALTIME_DB_ENC_KEY"), new_realtime, "the pending file keeps the new values");

    // The next run finishes it (whatever it was asked), recreates the interrupted run's
    // services, reports as any run, and does nothing else.
    let (path_var, log) = fake_docker(env.dir.path());
    let out = bin()
        .args(["rotate-secrets", "VAULT_ENC_KEY", "--yes", "--restart", "--format", "json", "--sslmode", "disable"])
        .arg("--env-file")
        .arg(&env.path)
        .env("PATH", &path_var)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["plan"]["database_changes"].as_array().map(Vec::len), Some(2), "{report}");
    let databases: Vec<&str> =
        report["transactions"].as_array().unwrap().iter().map(|x| x["database"].as_str().unwrap()).collect();
    assert_eq!(databases, [pg.main_db(), pg.work_db()], "{report}");
    let up = ups(&log);
    assert!(up.len() == 1 && up[0].ends_with("realtime studio supavisor"), "{up:?}");
    assert!(!pending.exists());
    assert_eq!(
        (env.get("VAULT_ENC_KEY"), env.get("REALTIME_DB_ENC_KEY"), env.get("LOGFLARE_PUBLIC_ACCESS_TOKEN")),
        (new_vault.clone(), new_realtime.clone(), new_public.clone())
    );
    assert_ne!((new_vault, &new_public), (old_vault, &old_public));
    let (jwt, pw) = realtime_values(&pg);
    assert_eq!(crypto.realtime_decrypt(&new_realtime, &jwt).as_deref(), Some(env.get("JWT_SECRET").as_str()));
    assert_eq!(crypto.realtime_decrypt(&new_realtime, &pw).as_deref(), Some(pg.password()));
    assert_eq!(pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = '_supavisor'"), "0");
    assert_eq!(pg.psql("SELECT api_key FROM _analytics.users"), new_public);
    assert_eq!(errors(&env), vec![], "no stale copy is left");
}

#[test]
fn through_a_transaction_mode_pooler_the_copies_follow_and_the_pooled_session_comes_back_unchanged() {
    let options = ClusterOptions::new().pgaudit().setting("log_statement", "ddl").setting("pgaudit.log", "role");
    let Some((pg, env, crypto)) = setup_with("through_a_transaction_mode_pooler", options) else { return };
    let (admin, admin_password) = ("pool_admin", "pool-admin-password-0123");
    pg.psql(&format!("CREATE ROLE {admin} SUPERUSER LOGIN PASSWORD '{admin_password}'"));
    let Some(bouncer) = crate::rotate_db::Bouncer::start(&pg, admin, admin_password) else { return };
    let pooled = || crate::common::block_on(crate::rotate_db::pooled_settings(bouncer.port, admin, admin_password));
    let before = pooled();
    assert!(before.contains(&("log_statement".into(), "ddl".into())), "{before:?}");

    let url = format!("postgresql://{admin}:{admin_password}@127.0.0.1:{}/{}", bouncer.port, pg.main_db());
    let keys = ["VAULT_ENC_KEY", "REALTIME_DB_ENC_KEY", "LOGFLARE_PUBLIC_ACCESS_TOKEN"];
    // A dry run only reads, and leaves nothing set on the pooled server connections either.
    let out = rotate(&env, &[&keys[..], &["--dry-run", "--db-url", &url]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(pooled(), before, "a dry run left a setting on the pooled server connection");
    let out = rotate(&env, &[&keys[..], &["--yes", "--db-url", &url]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (jwt, _) = realtime_values(&pg);
    let new_realtime = env.get("REALTIME_DB_ENC_KEY");
    assert_eq!(crypto.realtime_decrypt(&new_realtime, &jwt).as_deref(), Some(env.get("JWT_SECRET").as_str()));
    assert_eq!(pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = '_supavisor'"), "0");
    assert_eq!(pg.psql("SELECT api_key FROM _analytics.users"), env.get("LOGFLARE_PUBLIC_ACCESS_TOKEN"));
    assert_eq!(pooled(), before, "the pooled server connection came back changed");
}

#[test]
fn a_pooler_that_hands_the_transaction_another_server_session_is_refused_before_any_copy_changes() {
    let options = ClusterOptions::new().setting("log_statement", "all");
    let Some((pg, env, _crypto)) = setup_with("a_pooler_that_hands_the_transaction_another", options) else { return };
    let (admin, admin_password) = ("pool_admin", "pool-admin-password-0123");
    pg.psql(&format!("CREATE ROLE {admin} SUPERUSER LOGIN PASSWORD '{admin_password}'"));
    // Two server connections per pool, handed out in turn: the silencing round trip gets one,
    // the transaction the other.
    let pooling = "default_pool_size = 2\nserver_round_robin = 1";
    let Some(bouncer) = crate::rotate_db::Bouncer::start_pooling(&pg, admin, admin_password, pooling) else { return };
    let url = |db: &str| format!("postgresql://{admin}:{admin_password}@127.0.0.1:{}/{db}", bouncer.port);
    crate::common::block_on(async {
        let mut open = Vec::new();
        for db in [pg.main_db(), pg.work_db(), pg.main_db(), pg.work_db()] {
            let (client, connection) = tokio_postgres::connect(&url(db), tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.batch_execute("BEGIN; SELECT 1").await.unwrap();
            open.push(client);
        }
        for client in &open {
            client.batch_execute("COMMIT").await.unwrap();
        }
    });
    let before = std::fs::read(&env.path).unwrap();
    let out =
        rotate(&env, &["REALTIME_DB_ENC_KEY", "LOGFLARE_PUBLIC_ACCESS_TOKEN", "--yes", "--db-url", &url(pg.main_db())]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("a pooler in transaction mode is in between"), "{}", stderr(&out));
    assert!(std::fs::read(&env.path).unwrap() == before, "the .env is unchanged");
    assert!(!env.path.with_file_name(".env.pending").exists());
    let log = pg.server_log();
    assert!(!log.contains("SET api_key") && !log.contains("SET jwt_secret"), "a copy's statement reached the log");
}

/// Finishing an interrupted run runs its pre-flights before its question too: an immutable `.env`
/// is refused (exit 4: the run stays half done, the pending file kept) without asking.
#[test]
fn finishing_an_interrupted_run_refuses_an_env_that_could_not_be_published_before_the_question() {
    let Some((_pg, env, _crypto)) = setup("finishing_refuses_before_the_question") else { return };
    rotate_crashing_at(&env, "between-commits", &["VAULT_ENC_KEY", "REALTIME_DB_ENC_KEY"]);
    let pending = env.path.with_file_name(".env.pending");
    let files = || (std::fs::read(&env.path).unwrap(), std::fs::read(&pending).unwrap());
    let before = files();
    let chattr = |flag: &str| std::process::Command::new("chattr").arg(flag).arg(&env.path).status();
    if !chattr("+i").is_ok_and(|status| status.success()) {
        crate::common::skipped("chattr +i is not possible here");
        return;
    }
    let mut session =
        crate::common::spawn_in_pty(&["rotate-secrets", "VAULT_ENC_KEY", "--sslmode", "disable"], &env.path);
    let said = session.exp_eof();
    chattr("-i").expect("chattr -i");
    let said = said.expect("exits without asking");
    let code = crate::common::pty_exit_code(&mut session);
    assert!(!said.contains("Finish the interrupted rotation now?"), "asked before refusing: {said}");
    assert_eq!(code, 4, "{said}");
    assert!(said.contains("immutable"), "{said}");
    assert!(files() == before, "the .env and the pending file are as they were");
}

/// A fake `docker` in `dir` that logs its calls and environment to `docker.log` and lists
/// compose services: `(PATH with it first, the log)`.
fn fake_docker(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let bin_dir = dir.join("fakebin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let log = dir.join("docker.log");
    let script = format!(
        "#!/bin/sh\n{{ printf 'CALL %s\\n' \"$*\"; env | sed 's/^/ENV /'; }} >> '{}'\n\
         case \"$*\" in *'config --services'*) printf 'db\\nauth\\nrest\\nrealtime\\nsupavisor\\nstorage\\nminio\\nstudio\\n' ;; esac\nexit 0\n",
        log.display()
    );
    let docker = bin_dir.join("docker");
    std::fs::write(&docker, script).unwrap();
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
    (format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default()), log)
}

/// The `docker compose up` calls in the fake docker's log.
fn ups(log: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().filter(|l| l.starts_with("CALL ") && l.contains(" up -d")).map(str::to_owned).collect()
}

#[test]
fn restart_recreates_exactly_the_union_of_services_without_the_envs_keys() {
    let (dir, path) = generated_env();
    let (path_var, log) = fake_docker(dir.path());
    let out = bin()
        .args(["rotate-secrets", "SECRET_KEY_BASE", "MINIO_ROOT_PASSWORD", "--yes", "--restart", "--env-file"])
        .arg(&path)
        .env("PATH", &path_var)
        .env("SECRET_KEY_BASE", "exported-old-value")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    let up = ups(&log);
    assert_eq!(up.len(), 1, "{text}");
    assert!(up[0].ends_with("--force-recreate minio realtime supavisor"), "{}", up[0]);
    assert!(!text.contains("ENV SECRET_KEY_BASE="), "the .env's keys are not in compose's environment");
}

#[test]
fn rotate_passwords_leaves_a_committed_rotate_secrets_pending_file_to_rotate_secrets() {
    let Some((_pg, env, _crypto)) = setup("rotate_passwords_leaves_a_rotate_secrets_pending_file") else { return };
    rotate_crashing_at(&env, "after-commit", &["REALTIME_DB_ENC_KEY"]);
    let pending = env.path.with_file_name(".env.pending");
    assert!(pending.exists());
    let out = bin()
        .args(["rotate-passwords", "--yes", "--sslmode", "disable", "--env-file"])
        .arg(&env.path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("rotate-secrets"), "{}", stderr(&out));
    assert!(pending.exists(), "the committed rotate-secrets run is not discarded");
    let out = rotate(&env, &["REALTIME_DB_ENC_KEY", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!pending.exists());
    assert_eq!(errors(&env), vec![]);
}

/// The EC keys of `JWT_KEYS` (standby included), as the file holds them.
fn ec_keys(env: &StackEnv, set: &str) -> Vec<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(&env.get(set)).expect("a JSON key set");
    let keys = if set == "JWT_JWKS" { value["keys"].clone() } else { value };
    keys.as_array().expect("an array").iter().filter(|k| k["kty"] == "EC").cloned().collect()
}

fn oct_key(env: &StackEnv, set: &str) -> serde_json::Value {
    let value: serde_json::Value = serde_json::from_str(&env.get(set)).expect("a JSON key set");
    let keys = if set == "JWT_JWKS" { value["keys"].clone() } else { value };
    keys.as_array().expect("an array").iter().find(|k| k["kty"] == "oct").cloned().expect("an oct key")
}

#[test]
fn a_new_jwt_secret_during_a_signing_key_rotation_keeps_every_ec_key() {
    let Some((_pg, env, _crypto)) = setup("a_new_jwt_secret_during_a_signing_key_rotation") else { return };
    let path = env.path.to_str().expect("utf-8 path");
    let fill = bin().args(["generate-keys", "--asymmetric", "--yes", "--env-file", path]).output().expect("runs");
    assert!(fill.status.success(), "{}", stderr(&fill));
    let stage = bin().args(["rotate-keys", "--env-file", path, "stage", "--yes"]).output().expect("runs");
    assert!(stage.status.success(), "{}", stderr(&stage));
    let (ring, public, old_oct) = (ec_keys(&env, "JWT_KEYS"), ec_keys(&env, "JWT_JWKS"), oct_key(&env, "JWT_KEYS"));
    assert_eq!(ring.len(), 2, "a signer and a standby key");
    let (anon_asymmetric, state) = (env.get("ANON_KEY_ASYMMETRIC"), env.get("JWT_KEYS_STATE"));

    let out = rotate(&env, &["JWT_SECRET", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ec_keys(&env, "JWT_KEYS"), ring, "every EC key, private parts included, is kept");
    assert_eq!(ec_keys(&env, "JWT_JWKS"), public, "every public key stays published");
    assert_eq!((env.get("ANON_KEY_ASYMMETRIC"), env.get("JWT_KEYS_STATE")), (anon_asymmetric, state));
    let new_oct = oct_key(&env, "JWT_KEYS");
    assert_ne!(new_oct["k"], old_oct["k"], "the oct key follows JWT_SECRET");
    assert_eq!(oct_key(&env, "JWT_JWKS")["k"], new_oct["k"]);
    assert_eq!(errors(&env), vec![]);
}

#[test]
fn an_ordinary_login_cannot_block_rotate_secrets() {
    let Some((pg, env, _crypto)) = setup("an_ordinary_login_cannot_block_rotate_secrets") else { return };
    // The advisory key rotate-secrets once took: a published constant any login could hold.
    let old_key = 0x706d_7365_6372_6574_i64;
    let sql = format!("SELECT pg_advisory_lock({old_key}); BEGIN; SELECT pg_advisory_xact_lock({old_key});");
    let holder =
        crate::rotate_db::open_session(&pg, crate::common::pg::APP_USER, crate::common::pg::APP_USER_PASSWORD, &sql);
    let old = env.get("VAULT_ENC_KEY");
    let out = rotate(&env, &["VAULT_ENC_KEY", "--yes", "--lock-timeout", "500ms"]);
    drop(holder);
    assert_eq!(out.status.code(), Some(0), "an ordinary login blocked rotate-secrets: {}", stderr(&out));
    assert_ne!(env.get("VAULT_ENC_KEY"), old);
}
