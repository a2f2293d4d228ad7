//! `--db`, the copy of the JWT secret in the database: upstream's first-start init ran
//! `ALTER DATABASE postgres SET "app.settings.jwt_secret" TO '<JWT_SECRET>'`, which stores the
//! secret in `pg_db_role_setting`, where every session of that database can read it with
//! `current_setting('app.settings.jwt_secret')`, whatever its role. Changing `JWT_SECRET` in the
//! `.env` never updates it.
//!
//! Reported as `db-jwt-secret-copy`: an error when it differs from `JWT_SECRET` (SQL that signs or
//! verifies with it disagrees with the services), a warning when it matches (any role can read the
//! secret). Each setting found is named with the statement that removes it. The value itself is
//! compared here and never printed. The settings are read by `service_copies`'
//! `jwt_secret_settings`, the one reader rotate-secrets uses too.

use zeroize::Zeroizing;

use super::{Code, Finding, Severity};
use crate::db::{self, Target};
use crate::service_copies::{jwt_secret_settings, JwtSecretSetting, JWT_SECRET_SETTING as SETTING};
use crate::ui::Ui;

/// Every copy of the JWT secret the server would hand a session, read on `client` (a session on
/// `target`).
pub(super) async fn audit(
    target: &Target,
    client: &tokio_postgres::Client,
    jwt_secret: Option<&str>,
    ui: &Ui,
) -> Vec<Finding> {
    match jwt_secret_settings(client, db::DEFAULT_LOCK_TIMEOUT.get()).await {
        Ok(found) => {
            let mut out: Vec<Finding> = found.iter().map(|copy| finding(copy, jwt_secret)).collect();
            if out.is_empty() {
                // Not per database or role: then only the server configuration can set it.
                match session_value(client).await {
                    Ok(Some(value)) => out.push(config_finding(&value, jwt_secret, target.dbname())),
                    Ok(None) => {}
                    Err(reason) => ui.warn(&format!("{SETTING} not checked in the server configuration: {reason}")),
                }
            }
            out
        }
        Err(reason) => {
            ui.warn(&format!("{SETTING} not checked: cannot read pg_db_role_setting ({reason})"));
            Vec::new()
        }
    }
}

/// What this session sees, for a setting made in `postgresql.conf` or by `ALTER SYSTEM`.
async fn session_value(client: &tokio_postgres::Client) -> Result<Option<Zeroizing<String>>, String> {
    let row = client.query_one("SELECT current_setting($1, true)", &[&SETTING]).await.map_err(|e| db::describe(&e))?;
    let value: Option<String> = row.try_get(0).map_err(|e| db::describe(&e))?;
    Ok(value.filter(|v| !v.is_empty()).map(Zeroizing::new))
}

fn finding(copy: &JwtSecretSetting, jwt_secret: Option<&str>) -> Finding {
    build(copy.value.expose(), jwt_secret, &copy.place(), &format!("`{};` as a superuser", copy.reset_sql()))
}

fn config_finding(value: &str, jwt_secret: Option<&str>, dbname: &str) -> Finding {
    build(
        value,
        jwt_secret,
        &format!("in the server configuration (seen from database {dbname})"),
        &format!(
            "`ALTER SYSTEM RESET \"{SETTING}\";` (or delete it from postgresql.conf), then `SELECT pg_reload_conf();`"
        ),
    )
}

fn build(value: &str, jwt_secret: Option<&str>, where_: &str, remove: &str) -> Finding {
    let matches = jwt_secret.is_some_and(|secret| secret == value);
    let base = format!(
        "has a copy in the database: {SETTING} is set {where_}, left there by upstream's first-start init; every role \
         of that database can read it with current_setting()"
    );
    if matches {
        // The copy is the stack's own secret: exposed to every role, but not breaking anything.
        Finding {
            severity: Severity::Warning,
            ..Finding::new(
                Code::DbJwtSecretCopy,
                Some("JWT_SECRET"),
                format!(
                    "{base}. Unless your own SQL reads it, remove it with {remove} (new sessions no longer see it)"
                ),
            )
        }
    } else {
        Finding::new(
            Code::DbJwtSecretCopy,
            Some("JWT_SECRET"),
            format!(
                "{base}, and it differs from JWT_SECRET, so SQL that signs or verifies tokens with it disagrees with \
                 the services. Remove it with {remove}, or set it to JWT_SECRET if your own SQL needs it"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(database: Option<&str>, role: Option<&str>, value: &str) -> JwtSecretSetting {
        JwtSecretSetting {
            database: database.map(str::to_owned),
            role: role.map(str::to_owned),
            value: crate::secret::Secret::new(value.to_owned()),
        }
    }

    #[test]
    fn a_stale_copy_is_an_error_and_a_matching_one_a_warning_never_showing_either() {
        let stale = finding(&copy(Some("postgres"), None, "stale-secret-value"), Some("current-secret-value"));
        assert_eq!((stale.severity, stale.code.as_str()), (Severity::Error, "db-jwt-secret-copy"));
        assert!(
            stale.message.contains(r#"ALTER DATABASE "postgres" RESET "app.settings.jwt_secret""#),
            "{}",
            stale.message
        );
        let same = finding(&copy(Some("postgres"), None, "current-secret-value"), Some("current-secret-value"));
        assert_eq!(same.severity, Severity::Warning);
        for f in [&stale, &same] {
            assert!(!f.message.contains("secret-value"), "{}", f.message);
        }
        let missing = finding(&copy(Some("postgres"), None, "x"), None);
        assert_eq!(missing.severity, Severity::Error);
    }

    #[test]
    fn the_hint_resets_the_setting_where_it_was_made() {
        let reset = |d, r| finding(&copy(d, r, "v"), Some("w")).message;
        assert!(reset(None, Some("anon")).contains(r#"ALTER ROLE "anon" RESET"#));
        assert!(reset(Some("we\"ird"), Some("r")).contains(r#"ALTER ROLE "r" IN DATABASE "we""ird" RESET"#));
        assert!(reset(None, None).contains("ALTER ROLE ALL RESET"));
        assert!(config_finding("v", Some("w"), "postgres").message.contains("ALTER SYSTEM RESET"));
    }
}
