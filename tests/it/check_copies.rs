//! `check --db` compares every copy the services keep in the database with the `.env` (SPEC §4,
//! §8). The rows are written by another implementation (Python `cryptography`) into tables shaped
//! as the services' migrations make them.

use crate::common::copies::{findings, seed_logflare, seed_realtime, seed_supavisor, OtherCrypto, StackEnv};
use crate::common::pg::{Cluster, ClusterOptions};
use crate::common::skip_on_external_database;

const OTHER_VAULT_KEY: &str = "00112233445566778899aabbccddeeff";
const OTHER_REALTIME_KEY: &str = "0011223344556677";

/// A cluster with the fixture, a `.env` for it and the other implementation; `None` when the test
/// cannot run here (it said why).
fn setup(test: &str) -> Option<(Cluster, StackEnv, OtherCrypto)> {
    if skip_on_external_database("writes rows into the services' tables") {
        return None;
    }
    let crypto = OtherCrypto::find(test)?;
    let pg = Cluster::start(ClusterOptions::default());
    let env = StackEnv::new(&pg);
    Some((pg, env, crypto))
}

/// Every copy, as the services write them from the `.env`.
fn seed_all(pg: &Cluster, env: &StackEnv, crypto: &OtherCrypto) {
    seed_supavisor(pg, crypto, &env.get("VAULT_ENC_KEY"), pg.password());
    let realtime_key = env.get("REALTIME_DB_ENC_KEY");
    seed_realtime(pg, crypto, &realtime_key, "realtime-dev", &env.get("JWT_SECRET"), pg.password());
    seed_logflare(pg, &env.get("LOGFLARE_PUBLIC_ACCESS_TOKEN"), &env.get("LOGFLARE_PRIVATE_ACCESS_TOKEN"));
}

fn finding(severity: &str, code: &str, key: &str) -> (String, String, Option<String>) {
    (severity.to_owned(), code.to_owned(), Some(key.to_owned()))
}

#[test]
fn copies_written_from_the_env_are_no_finding() {
    let Some((pg, env, crypto)) = setup("copies_written_from_the_env_are_no_finding") else { return };
    seed_all(&pg, &env, &crypto);
    let (code, report) = env.check_db();
    assert_eq!((code, findings(&report)), (0, vec![]), "{report:#}");
}

#[test]
fn a_new_vault_key_leaves_supavisors_credentials_undecryptable() {
    let Some((pg, env, crypto)) = setup("a_new_vault_key_leaves_supavisors_credentials_undecryptable") else {
        return;
    };
    seed_supavisor(&pg, &crypto, OTHER_VAULT_KEY, pg.password());
    let (code, report) = env.check_db();
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(findings(&report), vec![finding("error", "db-supavisor-credentials", "VAULT_ENC_KEY")], "{report:#}");
    let text = report.to_string();
    assert!(text.contains("restarts in a loop") && text.contains("rotate-secrets VAULT_ENC_KEY"), "{report:#}");
    assert!(!text.contains(OTHER_VAULT_KEY) && !text.contains(&env.get("VAULT_ENC_KEY")));
}

#[test]
fn supavisors_credentials_with_an_old_password_are_an_error() {
    let Some((pg, env, crypto)) = setup("supavisors_credentials_with_an_old_password_are_an_error") else { return };
    seed_supavisor(&pg, &crypto, &env.get("VAULT_ENC_KEY"), "an-old-password-0123456789");
    let (code, report) = env.check_db();
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(findings(&report), vec![finding("error", "db-supavisor-credentials", "POSTGRES_PASSWORD")]);
    assert!(!report.to_string().contains("an-old-password"), "{report:#}");
}

#[test]
fn realtime_rows_under_another_key_are_a_warning_for_the_seeded_tenant_and_an_error_for_others() {
    let Some((pg, env, crypto)) = setup("realtime_rows_under_another_key") else { return };
    let jwt = env.get("JWT_SECRET");
    seed_realtime(&pg, &crypto, OTHER_REALTIME_KEY, "realtime-dev", &jwt, pg.password());
    seed_realtime(&pg, &crypto, OTHER_REALTIME_KEY, "tenant-b", &jwt, pg.password());
    let (code, report) = env.check_db();
    assert_eq!(code, 1, "{report:#}");
    let mut got = findings(&report);
    got.sort();
    let mut want = vec![
        finding("error", "db-realtime-jwt-secret", "REALTIME_DB_ENC_KEY"),
        finding("error", "db-realtime-db-settings", "REALTIME_DB_ENC_KEY"),
        finding("error", "db-realtime-db-settings", "REALTIME_DB_ENC_KEY"),
        finding("warning", "db-realtime-jwt-secret", "REALTIME_DB_ENC_KEY"),
        finding("warning", "db-realtime-db-settings", "REALTIME_DB_ENC_KEY"),
        finding("warning", "db-realtime-db-settings", "REALTIME_DB_ENC_KEY"),
    ];
    want.sort();
    assert_eq!(got, want, "{report:#}");
    let warnings: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "warning")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(warnings.iter().all(|m| m.contains("realtime-dev") && m.contains("SEED_SELF_HOST")), "{warnings:#?}");
}

#[test]
fn realtime_copies_of_an_old_jwt_secret_and_password_name_those_keys() {
    let Some((pg, env, crypto)) = setup("realtime_copies_of_an_old_jwt_secret_and_password") else { return };
    let key = env.get("REALTIME_DB_ENC_KEY");
    seed_realtime(&pg, &crypto, &key, "tenant-b", "an-old-jwt-secret-with-32-characters!!", "an-old-password");
    let (code, report) = env.check_db();
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        findings(&report),
        vec![
            finding("error", "db-realtime-jwt-secret", "JWT_SECRET"),
            finding("error", "db-realtime-db-settings", "POSTGRES_PASSWORD"),
        ],
        "{report:#}"
    );
    let message = report["findings"][1]["message"].as_str().unwrap();
    assert!(message.contains("db_password") && !message.contains("db_host"), "{message}");
}

#[test]
fn logflare_keeping_an_old_public_token_is_an_error_and_old_access_tokens_a_warning() {
    let Some((pg, env, _crypto)) = setup("logflare_keeping_an_old_public_token") else { return };
    seed_logflare(&pg, "an-old-public-token", "an-old-private-token");
    let (code, report) = env.check_db();
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        findings(&report),
        vec![
            finding("error", "db-logflare-api-key", "LOGFLARE_PUBLIC_ACCESS_TOKEN"),
            finding("warning", "db-logflare-access-token", "LOGFLARE_PUBLIC_ACCESS_TOKEN"),
            finding("warning", "db-logflare-access-token", "LOGFLARE_PRIVATE_ACCESS_TOKEN"),
        ],
        "{report:#}"
    );
    assert!(!report.to_string().contains("an-old-p"), "{report:#}");
}

#[test]
fn a_table_that_cannot_be_read_or_a_value_no_key_decrypts_is_a_warning() {
    let Some((pg, env, crypto)) = setup("a_table_that_cannot_be_read") else { return };
    seed_realtime(&pg, &crypto, &env.get("REALTIME_DB_ENC_KEY"), "realtime-dev", &env.get("JWT_SECRET"), pg.password());
    // Newer Realtime's GCM value, under a key the .env does not hold.
    pg.psql_in(pg.main_db(), "UPDATE _realtime.tenants SET jwt_secret = 'g1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'");
    // A Supavisor table without the column the credentials are in.
    pg.psql("ALTER TABLE _supavisor.users DROP COLUMN db_pass_encrypted");
    let (code, report) = env.check_db();
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        findings(&report),
        vec![
            finding("warning", "db-copy-not-checked", "VAULT_ENC_KEY"),
            finding("warning", "db-copy-not-checked", "REALTIME_DB_ENC_KEY"),
        ],
        "{report:#}"
    );
}

#[test]
fn the_stack_without_the_services_tables_has_no_finding() {
    if skip_on_external_database("drops the services' tables") {
        return;
    }
    let pg = Cluster::start(ClusterOptions::default());
    let env = StackEnv::new(&pg);
    pg.psql("DROP SCHEMA _supavisor CASCADE; DROP TABLE _analytics.users, _analytics.oauth_access_tokens");
    pg.psql_in(pg.main_db(), "DROP SCHEMA _realtime CASCADE");
    let (code, report) = env.check_db();
    assert_eq!((code, findings(&report)), (0, vec![]), "{report:#}");
}
