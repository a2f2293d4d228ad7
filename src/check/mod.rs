//! `check`: audit a stack's `.env` (and, with `--db`, the live database) before it reaches
//! production (SPEC §4).
//!
//! Every problem becomes a [`Finding`]: a severity, a stable code CI can match on, the `.env` key
//! involved and a message saying what breaks and what to do. Messages name keys, roles, files
//! and hosts but never a value, because the report is made to be pasted into tickets and CI
//! logs. The file rules are plain functions over the parsed values (unit-tested without a file);
//! only `--db` builds a runtime and talks to a server.
//!
//! [`run`] and [`audit_values`] read as the outline; each rule family has its own module, all
//! reading the file through [`values`]: [`shapes`] (each value on its own), [`demo`] (published
//! values), [`jwt`] and [`asymmetric`] (the API keys and the key set), [`copies`] (values that
//! must repeat another), [`file`](mod@file) (the file itself), [`database`] and [`analytics`]
//! (`--db`), and [`report`] (what is printed).

mod analytics;
mod asymmetric;
mod copies;
mod database;
mod demo;
mod file;
mod jwt;
mod report;
mod shapes;
#[cfg(test)]
mod test_support;
mod values;

use std::path::Path;

use serde::Serialize;

use crate::cli::CheckArgs;
use crate::envfile::EnvFile;
use crate::error::{Error, ExitCode, Result};
/// The twelve Supabase roles (SPEC §2). `--db` logs in as those of them that have LOGIN.
use crate::rotate::ROTATED_ROLES as SUPABASE_ROLES;
use crate::secrets;
use crate::ui::Ui;

pub use demo::is_demo_value;
use report::Report;
use values::{Ctx, Values};

/// The stable finding codes. CI pipelines match on these strings, so they never change meaning;
/// the severity of each is fixed and listed beside it.
pub mod code {
    /// error: a required secret is absent or empty.
    pub const MISSING_SECRET: &str = "missing-secret";
    /// error: a value published in upstream's `.env.example` (or the Supabase CLI's demo set).
    pub const DEMO_VALUE: &str = "demo-value";
    /// error: a key a service reads with a fixed or minimum length.
    pub const WRONG_LENGTH: &str = "wrong-length";
    /// error: a JWT that is not three base64url JSON parts.
    pub const JWT_UNPARSABLE: &str = "jwt-unparsable";
    /// error: a JWT not signed by the key the services verify it with.
    pub const JWT_BAD_SIGNATURE: &str = "jwt-bad-signature";
    /// error: an API key whose `role` claim is not the one its variable stands for.
    pub const JWT_WRONG_ROLE: &str = "jwt-wrong-role";
    /// error: an API key past its `exp`.
    pub const JWT_EXPIRED: &str = "jwt-expired";
    /// warning: an API key that expires within 30 days.
    pub const JWT_EXPIRING: &str = "jwt-expiring";
    /// error: `POSTGRES_PASSWORD` has characters that break `postgres://` URLs.
    pub const URL_BREAKING_PASSWORD: &str = "url-breaking-password";
    /// error: a digits-only `DASHBOARD_PASSWORD`, which Kong's basic-auth rejects.
    pub const DIGITS_ONLY_DASHBOARD_PASSWORD: &str = "digits-only-dashboard-password";
    /// error: `JWT_KEYS` or `JWT_JWKS` is not a JSON key set (or holds an unusable EC key).
    pub const KEY_SET_INVALID: &str = "key-set-invalid";
    /// error: the public key in `JWT_JWKS` is not the public half of the `JWT_KEYS` signing key.
    pub const ASYMMETRIC_MISMATCH: &str = "asymmetric-mismatch";
    /// error: `JWT_JWKS` carries a private key part (`d`).
    pub const JWKS_PRIVATE_PART: &str = "jwks-private-part";
    /// error: the `oct` key of `JWT_KEYS` / `JWT_JWKS` is not `JWT_SECRET`.
    pub const OCT_KEY_MISMATCH: &str = "oct-key-mismatch";
    /// warning: `JWT_KEYS` / `JWT_JWKS` has no `oct` key, so HS256 API keys stop verifying.
    pub const OCT_KEY_MISSING: &str = "oct-key-missing";
    /// error: a `SUPABASE_`-prefixed copy of a standard variable holds another value.
    pub const SUPABASE_ALIAS_MISMATCH: &str = "supabase-alias-mismatch";
    /// error: a connection URL in the file whose password is not `POSTGRES_PASSWORD`.
    pub const URL_PASSWORD_MISMATCH: &str = "url-password-mismatch";
    /// warning: the `.env` can be read or written by group or others.
    pub const FILE_PERMISSIONS: &str = "file-permissions";
    /// warning: `<env>.pending` is left over from an interrupted rotation.
    pub const PENDING_ROTATION: &str = "pending-rotation";
    /// warning: a temporary copy of the `.env` left by a killed write.
    pub const LEFTOVER_TEMP_FILE: &str = "leftover-temp-file";
    /// error (`--db`): nothing to log in with, so no login could be tested.
    pub const DB_NOT_CHECKED: &str = "db-not-checked";
    /// error (`--db`): the server cannot be reached.
    pub const DB_UNREACHABLE: &str = "db-unreachable";
    /// error (`--db`): the server answered but refused the connection for another reason.
    pub const DB_CONNECT_FAILED: &str = "db-connect-failed";
    /// error (`--db`): a role does not accept `POSTGRES_PASSWORD`.
    pub const DB_LOGIN_FAILED: &str = "db-login-failed";
    /// warning (`--db`): none of the Supabase roles can log in there.
    pub const DB_NO_SUPABASE_ROLES: &str = "db-no-supabase-roles";
    /// error (`--db`): Logflare's postgres backend URL has another password.
    pub const ANALYTICS_PASSWORD_MISMATCH: &str = "analytics-password-mismatch";
    /// warning (`--db`): the analytics backends could not be read.
    pub const ANALYTICS_NOT_CHECKED: &str = "analytics-not-checked";
}

/// How bad a finding is (SPEC §4): `error` breaks a service or is publicly known, `warning` is
/// everything else. Only errors make `check` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Breaks a service or is publicly known.
    Error,
    /// Worth fixing, does not fail the check.
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem found. `message` never contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `error` or `warning`.
    pub severity: Severity,
    /// Stable code, one of [`code`].
    pub code: &'static str,
    /// The `.env` key involved, when there is one.
    pub key: Option<String>,
    /// The 1-based line of that key in the file (its effective, last occurrence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

impl Finding {
    fn error(code: &'static str, key: Option<&str>, message: String) -> Self {
        Finding { severity: Severity::Error, code, key: key.map(str::to_owned), line: None, message }
    }

    fn warning(code: &'static str, key: Option<&str>, message: String) -> Self {
        Finding { severity: Severity::Warning, code, key: key.map(str::to_owned), line: None, message }
    }
}

/// Runs every rule that needs only the values.
fn audit_values(values: &Values, path: &Path, now: i64) -> Vec<Finding> {
    let ctx = Ctx { values, path, now };
    let mut out = Vec::new();
    shapes::missing_secrets(&ctx, &mut out);
    demo::demo_values(&ctx, &mut out);
    shapes::lengths(&ctx, &mut out);
    shapes::postgres_password_in_urls(&ctx, &mut out);
    shapes::dashboard_password(&ctx, &mut out);
    jwt::hs256_api_keys(&ctx, &mut out);
    asymmetric::asymmetric_keys(&ctx, &mut out);
    copies::supabase_aliases(&ctx, &mut out);
    copies::url_passwords(&ctx, &mut out);
    out
}

/// Runs the audit: prints the report on stdout, exits 0 without error-level findings and 1
/// with (as the silent `Error::Findings`, the report having said everything).
pub fn run(args: &CheckArgs, ui: &Ui) -> Result<ExitCode> {
    let env = EnvFile::read(&args.env_file)?;
    let values = Values::from_pairs(env.pairs());
    let mut findings = audit_values(&values, &args.env_file, secrets::unix_now().try_into().unwrap_or(i64::MAX));
    findings.extend(file::file_permissions(&args.env_file)?);
    findings.extend(file::pending_rotation(&args.env_file));
    findings.extend(file::leftover_temp_files(&args.env_file));
    if args.db {
        findings.extend(database::audit_database(args, &env, &values, ui)?);
    }
    for finding in &mut findings {
        finding.line = finding.key.as_deref().and_then(|key| env.line_of(key));
    }
    // Errors first; within a severity, the order the rules ran in (file order for most).
    findings.sort_by_key(|f| f.severity);
    let report = Report::new(&args.env_file, &findings);
    crate::ui::write_stdout(&report.render(args.format)?)?;
    match report.errors {
        0 => Ok(ExitCode::Success),
        count => Err(Error::Findings { count }),
    }
}
