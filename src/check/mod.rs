//! `check`: audit a stack's `.env` (and, with `--db`, the live database) before it reaches
//! production (SPEC §4).
//!
//! Every problem becomes a [`Finding`]: a severity, a stable code CI can match on, the `.env` key
//! involved and a message saying what breaks and what to do. Messages name keys, roles, files
//! and hosts but never a value, because the report is made to be pasted into tickets and CI
//! logs. The file rules are plain functions over the parsed values (unit-tested without a file);
//! only `--db` builds a runtime and talks to a server.
//!
//! [`run`] and `audit_values` read as the outline. Each rule family has its own module, all
//! reading the file through `values` (the effective values and the `AuditedFile` every rule
//! gets): `per_value` (each value on its own: present, long enough, URL-safe), `demo` (published
//! values and placeholders), `weak` (the strength estimate), `jwt` (the HS256 API keys),
//! `asymmetric` and `key_states` (the key sets and where a signing-key rotation stands),
//! `env_copies` (values of the `.env` that must repeat another), `file` (the file itself),
//! `compose` (`--compose`: what the compose files read), `database`, `analytics` and
//! `db_jwt_secret_copy` (`--db`: logins, Logflare's copy of the password, the JWT secret kept in
//! the database), `service_copies` (`--db`: the copies Supavisor, Realtime and Logflare keep in
//! the database), and `report` (what is printed). `code` is the table of finding codes. What a
//! stack's keys and roles are comes from [`crate::stack`].

mod analytics;
mod asymmetric;
mod code;
mod compose;
mod database;
mod db_jwt_secret_copy;
mod demo;
mod env_copies;
mod file;
mod jwt;
mod key_states;
mod per_value;
mod report;
mod service_copies;
#[cfg(test)]
mod test_support;
mod values;
mod weak;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use serde::Serialize;

use crate::db::ConnectOptions;
use crate::envfile::EnvFile;
use crate::error::{Error, ExitCode, Result};
use crate::secrets;
use crate::ui::{ReportFormat, Ui};

pub use code::Code;
use report::Report;
use values::{AuditedFile, Values};

/// Options of `check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckOptions {
    /// The .env to audit.
    #[arg(long, value_name = "FILE", default_value = ".env")]
    pub env_file: PathBuf,

    /// Also log in to the database as each LOGIN role with POSTGRES_PASSWORD.
    #[arg(long)]
    pub db: bool,

    /// Also read this compose file (repeatable, like compose's -f): unset variables, secret
    /// fallbacks, secrets written in it, .env keys nothing reads.
    #[arg(long, value_name = "FILE")]
    pub compose: Vec<PathBuf>,

    #[command(flatten)]
    pub connect: ConnectOptions,

    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    /// Accept findings of this code: left out of the report and the exit status (repeatable,
    /// as clippy's --allow), e.g. --allow unused-env-key.
    #[arg(long, value_name = "CODE", value_parser = FindingCodeParser)]
    pub allow: Vec<Code>,
}

/// `--allow` values: the stable finding codes; an unknown one is a usage error listing them.
#[derive(Clone)]
struct FindingCodeParser;

impl TypedValueParser for FindingCodeParser {
    type Value = Code;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<Code, clap::Error> {
        let names = PossibleValuesParser::new(Code::ALL.iter().map(|code| code.as_str()));
        let name = names.parse_ref(cmd, arg, value)?;
        // The possible values are exactly the codes' names, so the lookup cannot miss; the
        // fallback keeps that an error rather than a panic should the two ever drift.
        Code::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == name)
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(Code::ALL.iter().map(|code| PossibleValue::new(code.as_str()))))
    }
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
    /// `error` or `warning`, as the code fixes it.
    pub severity: Severity,
    /// Stable code.
    pub code: Code,
    /// The `.env` key involved, when there is one.
    pub key: Option<String>,
    /// The compose file the finding is in (`--compose`); `None` for the `.env`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The 1-based line: in the compose file when `file` is set, else of the key in the `.env`
    /// (its effective, last occurrence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

impl Finding {
    /// A finding of `code`, with the severity the code carries.
    ///
    /// Control characters in the key and message (text from the files: a `kid`, a compose
    /// file's names, a path found on disk) are escaped.
    fn new(code: Code, key: Option<&str>, message: String) -> Self {
        let key = key.map(|key| crate::ui::printable(key).into_owned());
        let message = match crate::ui::printable(&message) {
            std::borrow::Cow::Borrowed(_) => message,
            std::borrow::Cow::Owned(escaped) => escaped,
        };
        Finding { severity: code.severity(), code, key, file: None, line: None, message }
    }
}

/// Runs every rule that needs only the values.
fn audit_values(values: &Values, path: &Path, now: i64) -> Vec<Finding> {
    let ctx = AuditedFile { values, path, now };
    let mut out = Vec::new();
    per_value::missing_secrets(&ctx, &mut out);
    demo::demo_values(&ctx, &mut out);
    demo::published_credentials(&ctx, &mut out);
    weak::weak_values(&ctx, &mut out);
    per_value::lengths(&ctx, &mut out);
    per_value::postgres_password_in_urls(&ctx, &mut out);
    per_value::dashboard_password(&ctx, &mut out);
    jwt::hs256_api_keys(&ctx, &mut out);
    asymmetric::asymmetric_keys(&ctx, &mut out);
    key_states::key_states(&ctx, &mut out);
    env_copies::supabase_aliases(&ctx, &mut out);
    env_copies::url_passwords(&ctx, &mut out);
    values::interpolation_problems(&ctx, &mut out);
    out
}

/// Runs the audit: prints the report on stdout, exits 0 without error-level findings and 1
/// with (as the silent `Error::Findings`, the report having said everything).
pub fn run(args: &CheckOptions, ui: &Ui) -> Result<ExitCode> {
    crate::envfile::require_existing(&args.env_file)?;
    let env = EnvFile::read(&args.env_file)?;
    let values = Values::from_env(&env);
    let mut findings = audit_values(&values, &args.env_file, secrets::unix_now().try_into().unwrap_or(i64::MAX));
    findings.extend(file::file_permissions(&args.env_file)?);
    findings.extend(file::pending_rotation(&args.env_file));
    findings.extend(file::leftover_temp_files(&args.env_file));
    let mut verified = Vec::new();
    if args.db {
        findings.extend(database::audit_database(args, &env, &values, ui, &mut verified)?);
    }
    let lines = env.key_lines();
    for finding in &mut findings {
        finding.line = finding.key.as_deref().and_then(|key| lines.get(key).copied());
    }
    if !args.compose.is_empty() {
        findings.extend(compose::audit(&args.compose, &values, &args.env_file)?);
    }
    findings.retain(|finding| !args.allow.contains(&finding.code));
    // Errors first; within a severity, the order the rules ran in (file order for most).
    findings.sort_by_key(|f| f.severity);

    let report = Report::new(&args.env_file, &findings, verified);
    // --quiet: the error-level findings and the verdict only, nothing at all when there is no
    // error; JSON stays whole (a machine asked for it).
    match (ui.is_quiet(), args.format) {
        (true, ReportFormat::Text) if report.errors == 0 => {}
        (true, ReportFormat::Text) => crate::ui::write_stdout(&report.errors_text(ui.colors_stdout()))?,
        _ => crate::ui::write_stdout(&report.render(args.format, ui.colors_stdout())?)?,
    }
    match report.errors {
        0 => Ok(ExitCode::Success),
        count => Err(Error::Findings { count }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names CI pipelines match on; changing one breaks users' scripts.
    const STABLE_CODES: &[(&str, &str)] = &[
        ("missing-secret", "error"),
        ("demo-value", "error"),
        ("placeholder-value", "error"),
        ("weak-secret", "error"),
        ("wrong-length", "error"),
        ("jwt-unparsable", "error"),
        ("jwt-bad-signature", "error"),
        ("jwt-wrong-role", "error"),
        ("jwt-expired", "error"),
        ("jwt-expiring", "warning"),
        ("url-breaking-password", "error"),
        ("digits-only-dashboard-password", "error"),
        ("key-set-invalid", "error"),
        ("asymmetric-mismatch", "error"),
        ("jwks-private-part", "error"),
        ("oct-key-mismatch", "error"),
        ("oct-key-missing", "warning"),
        ("supabase-alias-mismatch", "error"),
        ("url-password-mismatch", "error"),
        ("file-permissions", "warning"),
        ("pending-rotation", "warning"),
        ("leftover-temp-file", "warning"),
        ("db-not-checked", "error"),
        ("db-unreachable", "error"),
        ("db-connect-failed", "error"),
        ("db-login-failed", "error"),
        ("db-no-supabase-roles", "warning"),
        ("analytics-password-mismatch", "error"),
        ("analytics-not-checked", "warning"),
        ("signing-key-count", "error"),
        ("jwks-missing-verify-key", "error"),
        ("api-key-not-signing-key", "error"),
        ("previous-key-overdue", "warning"),
        ("standby-key-stale", "warning"),
        ("key-state-record", "warning"),
        ("db-jwt-secret-copy", "error"),
        ("db-supavisor-credentials", "error"),
        ("db-realtime-jwt-secret", "error"),
        ("db-realtime-db-settings", "error"),
        ("db-logflare-api-key", "error"),
        ("db-logflare-access-token", "warning"),
        ("db-copy-not-checked", "warning"),
        ("compose-unset-secret", "error"),
        ("compose-unset-variable", "warning"),
        ("compose-secret-fallback", "error"),
        ("compose-secret-fallback-dormant", "warning"),
        ("compose-literal-secret", "error"),
        ("compose-bad-interpolation", "error"),
        ("unused-env-key", "warning"),
        ("env-bad-interpolation", "error"),
        ("duplicate-kid", "error"),
        ("signing-key-not-es256", "error"),
        ("jwks-unknown-key", "error"),
        ("compose-key-set-unwired", "error"),
        ("published-default-credential", "warning"),
    ];

    #[test]
    fn codes_keep_their_names_and_severities_in_json_and_text() {
        assert_eq!(Code::ALL.len(), STABLE_CODES.len());
        for (code, (name, severity)) in Code::ALL.iter().zip(STABLE_CODES) {
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(name));
            assert_eq!(code.as_str(), *name);
            assert_eq!(serde_json::to_value(code.severity()).unwrap(), serde_json::json!(severity), "{name}");
        }
    }

    #[test]
    fn a_finding_serialises_as_before() {
        let mut finding = Finding::new(Code::JwtExpiring, Some("ANON_KEY"), "expires soon".into());
        finding.line = Some(3);
        assert_eq!(
            serde_json::to_value(&finding).unwrap(),
            serde_json::json!({"severity": "warning", "code": "jwt-expiring", "key": "ANON_KEY", "line": 3,
                               "message": "expires soon"})
        );
    }
}
