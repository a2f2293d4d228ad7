//! Every copy of the password follows the rotation: aliases, postgres URLs
//! (userinfo or `?password=`), JDBC URLs, key/value connection strings, and
//! `supabase_read_only_user` when an operator gave it the stack's password.

use serde_json::Value;

use crate::common::block_on;
use crate::common::pg::READ_ONLY_USER;
use crate::common::stack::{local_cluster, stderr_of, value_in, Stack};

#[test]
fn every_copy_of_the_password_in_the_env_follows_the_rotation() {
    let Some(cluster) = local_cluster() else { return };
    let old = cluster.password().to_owned();
    let extra = format!(
        "SUPABASE_DB_PASSWORD={old}\n\
         JDBC_URL='jdbc:postgresql://db:5432/postgres?user=postgres&password={old}&ssl=false'\n\
         PG_CONNECTION='host=db port=5432 user=postgres password={old} dbname=postgres'\n\
         QUERY_URL='postgresql://db:5432/postgres?user=postgres&password={old}'\n\
         OTHER_URL=postgres://app_user:app-user-password@db:5432/postgres\n"
    );
    let stack = Stack::with_password(&cluster, &old, &extra);
    let out = stack.rotate().arg("--yes").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stack.text();
    let new = stack.password();
    assert!(!text.contains(&old), "a copy of the old password was left behind:\n{text}");
    assert_eq!(value_in(&text, "SUPABASE_DB_PASSWORD").unwrap(), new);
    assert_eq!(
        value_in(&text, "JDBC_URL").unwrap(),
        format!("jdbc:postgresql://db:5432/postgres?user=postgres&password={new}&ssl=false")
    );
    assert_eq!(
        value_in(&text, "PG_CONNECTION").unwrap(),
        format!("host=db port=5432 user=postgres password={new} dbname=postgres")
    );
    assert_eq!(
        value_in(&text, "QUERY_URL").unwrap(),
        format!("postgresql://db:5432/postgres?user=postgres&password={new}")
    );
    assert_eq!(value_in(&text, "OTHER_URL").unwrap(), "postgres://app_user:app-user-password@db:5432/postgres");
}

#[test]
fn the_read_only_user_holding_the_stack_password_is_rotated_too() {
    let Some(cluster) = local_cluster() else { return };
    let old = cluster.password().to_owned();
    cluster.psql(&format!("ALTER ROLE {READ_ONLY_USER} PASSWORD '{old}';"));
    let stack = Stack::new(&cluster);
    let out = stack.rotate().args(["--yes", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let new = stack.password();
    assert!(block_on(cluster.can_login(READ_ONLY_USER, &new)), "Studio's read-only login follows the rotation");
    assert!(!block_on(cluster.can_login(READ_ONLY_USER, &old)));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcome = report["roles"].as_array().unwrap().iter().find(|r| r["role"] == READ_ONLY_USER).unwrap();
    assert_eq!(outcome["outcome"], "rotated");
}

#[test]
fn the_read_only_user_with_its_own_password_is_left_alone() {
    let Some(cluster) = local_cluster() else { return };
    cluster.psql(&format!("ALTER ROLE {READ_ONLY_USER} PASSWORD 'its-own-password-0123';"));
    let before = cluster.stored_verifier(READ_ONLY_USER);
    let stack = Stack::new(&cluster);
    let out = stack.rotate().arg("--yes").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(cluster.stored_verifier(READ_ONLY_USER), before);
}
