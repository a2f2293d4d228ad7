//! `generate-keys --env-file` replaces what `check` calls weak or placeholder, through the
//! binary, and leaves a set POSTGRES_PASSWORD to `rotate-passwords`.

use std::os::unix::fs::PermissionsExt as _;

use crate::common::{bin, env_value, tempdir};

#[test]
fn weak_and_placeholder_secrets_are_filled_but_a_set_database_password_is_kept() {
    let generated = bin().arg("generate-keys").output().expect("runs");
    let text = String::from_utf8(generated.stdout).expect("utf-8");
    let replace = |text: &str, key: &str, value: &str| -> String {
        text.lines()
            .map(|l| if l.starts_with(&format!("{key}=")) { format!("{key}={value}\n") } else { format!("{l}\n") })
            .collect()
    };
    let text = replace(&text, "REALTIME_DB_ENC_KEY", "your16charkey123");
    let text = replace(&text, "SECRET_KEY_BASE", &"changeme".repeat(8));
    let text = replace(&text, "POSTGRES_PASSWORD", "postgrespostgrespostgrespostgres");
    let dir = tempdir();
    let path = dir.path().join(".env");
    std::fs::write(&path, &text).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    let out = bin().arg("generate-keys").arg("--env-file").arg(&path).arg("--yes").output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("SECRET_KEY_BASE") && stderr.contains("too easy to guess"), "{stderr}");
    assert!(stderr.contains("REALTIME_DB_ENC_KEY") && stderr.contains("placeholder"), "{stderr}");
    assert!(stderr.contains("POSTGRES_PASSWORD") && stderr.contains("rotate-passwords"), "{stderr}");
    assert!(!stderr.contains("your16charkey123") && !stderr.contains("changeme"), "no value is printed");

    let after = std::fs::read_to_string(&path).expect("read");
    let realtime = env_value(&after, "REALTIME_DB_ENC_KEY").expect("set");
    assert!(realtime.len() == 16 && realtime != "your16charkey123");
    assert_ne!(env_value(&after, "SECRET_KEY_BASE").expect("set"), "changeme".repeat(8));
    assert_eq!(env_value(&after, "POSTGRES_PASSWORD").as_deref(), Some("postgrespostgrespostgrespostgres"));

    // What is left is the one finding generate-keys leaves to rotate-passwords.
    let check = crate::common::check().arg("--env-file").arg(&path).output().expect("runs");
    let report = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{report}");
    assert!(report.starts_with("error[weak-secret] POSTGRES_PASSWORD"), "{report}");
    assert!(report.contains("1 error(s), 0 warning(s)"), "{report}");
}
