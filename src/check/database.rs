//! `--db`, the logins: connect as `rotate-passwords` would, then log in as each Supabase role
//! with `POSTGRES_PASSWORD`, so a `.env` that disagrees with the database is caught before a
//! restart locks the services out.
//!
//! Every failure, even an unreachable server, becomes a finding rather than an error, so the
//! report on the file still prints.

use super::analytics::check_analytics;
use super::values::Values;
use super::{CheckOptions, Code, Finding};
use crate::db::{self, Target};
use crate::envfile::EnvFile;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::stack::connection::connection_settings;
use crate::stack::{roles, POSTGRES_PASSWORD};
use crate::ui::Ui;

/// The roles of the twelve that have LOGIN on the supabase/postgres image. Tried when the admin
/// login fails and `pg_roles` cannot be read.
fn stock_login_roles() -> Vec<String> {
    roles::login_by_default().map(str::to_owned).collect()
}

/// Whether the role list came from the server or is the stock guess; it changes what a failed
/// login can mean.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RoleSource {
    Listed,
    Stock,
}

/// `--db`: resolves the target as `rotate-passwords` does, then checks logins and analytics.
pub(super) fn audit_database(
    args: &CheckOptions,
    env: &EnvFile,
    values: &Values,
    ui: &Ui,
    verified: &mut Vec<String>,
) -> Result<Vec<Finding>> {
    let Some(password) = values.get(POSTGRES_PASSWORD).map(|p| Secret::new(p.to_owned())) else {
        return Ok(vec![Finding::new(
            Code::DbNotChecked,
            Some(POSTGRES_PASSWORD),
            "is missing or empty, so --db had no password to log in with and checked nothing".to_owned(),
        )]);
    };
    let resolved = db::resolve(&args.connect, &connection_settings(env))?;
    resolved.warnings.iter().for_each(|warning| ui.warn(warning));
    let target = resolved.target;
    ui.detail(&format!("checking the database at {}", target.display()));
    let runtime = crate::db::runtime()?;
    let mut findings = runtime.block_on(audit_live(target.clone(), password, ui, verified));
    if let Some(session) = runtime.block_on(copies_session(&target, &findings, ui)) {
        let jwt_secret = values.get("JWT_SECRET");
        findings.extend(runtime.block_on(super::db_jwt_secret_copy::audit(&target, &session, jwt_secret, ui)));
        findings.extend(runtime.block_on(super::service_copies::audit(&target, &session, values, ui, verified)));
    }
    Ok(findings)
}

/// The one session the audits of the copies in the database share. None for a server that the
/// login rules (`earlier`) found unreachable (it is not tried a second time) or that refuses now.
async fn copies_session(target: &Target, earlier: &[Finding], ui: &Ui) -> Option<tokio_postgres::Client> {
    if earlier.iter().any(|f| matches!(f.code, Code::DbUnreachable | Code::DbConnectFailed)) {
        return None;
    }
    match target.connect().await {
        Ok(client) => Some(client),
        Err(err) => {
            ui.detail(&format!(
                "the copies in the database (app.settings.jwt_secret included) were not checked: {err}"
            ));
            None
        }
    }
}

/// The server part of `--db`. Every failure becomes a finding, so the file report still prints.
async fn audit_live(target: Target, password: Secret, ui: &Ui, verified: &mut Vec<String>) -> Vec<Finding> {
    let mut out = Vec::new();
    match target.connect().await {
        Ok(admin) => {
            let (roles, source) = match login_roles(&admin).await {
                Ok(roles) => (roles, RoleSource::Listed),
                Err(reason) => {
                    ui.warn(&format!("cannot list the LOGIN roles ({reason}); trying the stock Supabase list"));
                    (stock_login_roles(), RoleSource::Stock)
                }
            };
            if roles.is_empty() {
                out.push(no_supabase_roles(&target));
            }
            out.extend(check_logins(&target, &roles, &password, source, verified).await);
            out.extend(check_analytics(&target, &admin, &password, ui).await);
        }
        Err(err) if is_auth_failure(&err) => {
            ui.warn(&format!("{err}; the LOGIN roles cannot be listed, so the stock Supabase roles are tried"));
            let uses_env_password = target.password().is_some_and(|p| p == password);
            if !(uses_env_password && roles::login_by_default().any(|role| role == target.user())) {
                out.push(Finding::new(Code::DbLoginFailed, None, format!("{err}")));
            }
            out.extend(check_logins(&target, &stock_login_roles(), &password, RoleSource::Stock, verified).await);
        }
        Err(err) => {
            let code = if is_server_refusal(&err) { Code::DbConnectFailed } else { Code::DbUnreachable };
            out.push(Finding::new(code, None, format!("{err}; the database was not checked")));
        }
    }
    out
}

/// The server's SQLSTATE, when it answered the connection attempt.
fn sqlstate_of(err: &Error) -> Option<&str> {
    let Error::Connect { sqlstate, .. } = err else { return None };
    sqlstate.as_deref()
}

/// A refused login; under SCRAM a wrong password and an absent role cannot be told apart.
fn is_auth_failure(err: &Error) -> bool {
    sqlstate_of(err).is_some_and(db::is_auth_failure_code)
}

/// Any other SQLSTATE means the server answered (unknown database, too many connections...).
fn is_server_refusal(err: &Error) -> bool {
    sqlstate_of(err).is_some()
}

fn no_supabase_roles(target: &Target) -> Finding {
    Finding::new(
        Code::DbNoSupabaseRoles,
        None,
        format!(
            "none of the Supabase roles can log in on {}; is POSTGRES_HOST / POSTGRES_PORT (or --db-url) the stack's database?",
            target.host_port()
        ),
    )
}

/// The Supabase roles with `rolcanlogin`, by name.
async fn login_roles(admin: &tokio_postgres::Client) -> std::result::Result<Vec<String>, String> {
    crate::discovery::login_role_names(admin).await.map_err(|e| db::describe(&e))
}

/// Logs in as every role with `POSTGRES_PASSWORD`, all at once (each login is a network round
/// trip plus a SCRAM exchange; a dozen in sequence is noticeably slow over a tunnel). The roles
/// that logged in go to `verified`; the refusals are grouped by the server's reason, so a wrong
/// password is one finding naming every role rather than a dozen near-identical lines.
async fn check_logins(
    target: &Target,
    roles: &[String],
    password: &Secret,
    source: RoleSource,
    verified: &mut Vec<String>,
) -> Vec<Finding> {
    let mut refused: Vec<(String, Vec<String>)> = Vec::new();
    let mut accepted = Vec::new();
    for login in db::logins(target, roles, password).await {
        if login.ok {
            accepted.push(login.role);
            continue;
        }
        let reason = reason_without_role(login.error.as_deref().unwrap_or("refused"), &login.role);
        match refused.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, roles)) => roles.push(login.role),
            None => refused.push((reason, vec![login.role])),
        }
    }
    if !accepted.is_empty() {
        verified.push(format!("POSTGRES_PASSWORD logs in as {} on {}", accepted.join(", "), target.host_port()));
    }
    refused.iter().map(|(reason, roles)| login_failed(target, roles, reason, source)).collect()
}

/// The server's reason with the role's own name taken out, so that the same refusal for
/// several roles reads the same.
fn reason_without_role(reason: &str, role: &str) -> String {
    reason.replace(&format!(" for user \"{role}\""), "").replace(&format!("\"{role}\""), "the role")
}

fn login_failed(target: &Target, roles: &[String], reason: &str, source: RoleSource) -> Finding {
    let (noun, names) = match roles {
        [one] => ("role", one.clone()),
        _ => ("roles", roles.join(", ")),
    };
    let message = match source {
        RoleSource::Listed => format!(
            "is not accepted for LOGIN {noun} {names} on {} ({reason}); the .env and the database disagree, and \
             services logging in as {names} will fail. Put the database's password in the .env, or set a new one \
             everywhere with `pmoves-secrets rotate-passwords`",
            target.host_port()
        ),
        RoleSource::Stock => format!(
            "is not accepted for {noun} {names} on {} ({reason}); either the password is wrong or the role does not \
             exist there (under SCRAM both look the same): the LOGIN roles could not be listed, so the stock Supabase \
             roles were tried",
            target.host_port()
        ),
    };
    Finding::new(Code::DbLoginFailed, Some(POSTGRES_PASSWORD), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_are_classified_by_sqlstate() {
        let err = |reason: &str, sqlstate: Option<&str>| Error::Connect {
            target: "h:1".into(),
            user: "u".into(),
            reason: reason.into(),
            sqlstate: sqlstate.map(str::to_owned),
        };
        assert!(is_auth_failure(&err(
            "password authentication failed for user \"u\" (28P01); the password was rejected",
            Some("28P01")
        )));
        assert!(!is_auth_failure(&err(
            "error connecting to server: Connection refused (os error 111); is the server running",
            None
        )));
        assert!(is_server_refusal(&err("database \"x\" does not exist (3D000); check", Some("3D000"))));
        assert!(!is_server_refusal(&err("timed out (after 10s); check", None)));
    }

    #[test]
    fn the_same_refusal_for_two_roles_reads_the_same() {
        let anon = reason_without_role("password authentication failed for user \"anon\" (28P01)", "anon");
        let auth =
            reason_without_role("password authentication failed for user \"authenticator\" (28P01)", "authenticator");
        assert_eq!(anon, auth);
        assert_eq!(anon, "password authentication failed (28P01)");
    }
}
