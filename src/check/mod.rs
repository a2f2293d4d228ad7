//! `check`: audit a stack's `.env` (and, with `--db`, the live database) before it reaches
//! production (SPEC §4).
//!
//! Every problem becomes a [`Finding`]: a severity, a stable code CI can match on, the `.env` key
//! involved and a message saying what breaks and what to do. Messages name keys, roles, files
//! and hosts but never a value, because the report is made to be pasted into tickets and CI
//! logs. The file rules are plain functions over the parsed values (unit-tested without a file);
//! only `--db` builds a runtime and talks to a server.
//!
//! [`run`] and `audit_values` read as the outline; each rule family has its own module, all
//! reading the file through `values`: `shapes` (each value on its own), `demo` (published
//! values), `jwt` and `asymmetric` (the API keys and the key set), `copies` (values that must
//! repeat another), `file` (the file itself), `database` and `analytics` (`--db`), and `report`
//! (what is printed). What a stack's keys and roles are comes from [`crate::stack`].

mod analytics;
mod asymmetric;
mod compose;
mod copies;
mod database;
mod demo;
mod file;
mod jwt;
mod jwt_secret_copy;
mod key_states;
mod report;
mod shapes;
#[cfg(test)]
mod test_support;
mod values;
mod weak;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::db::ConnectOptions;
use crate::envfile::EnvFile;
use crate::error::{Error, ExitCode, Result};
use crate::secrets;
use crate::ui::{ReportFormat, Ui};

use report::Report;
use values::{Ctx, Values};

/// What `check` is asked to do, resolved from the command line.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The `.env` to audit.
    pub env_file: PathBuf,
    /// Also log in to the database as each LOGIN role with `POSTGRES_PASSWORD`.
    pub db: bool,
    /// How to reach the database (with `db`).
    pub connect: ConnectOptions,
    /// Report format.
    pub format: ReportFormat,
    /// Compose files to read as well (`--compose`, repeatable).
    pub compose: Vec<PathBuf>,
}

/// The stable finding codes. CI pipelines match on their kebab-case names (`missing-secret`,
/// ...), so a code never changes name or meaning; each knows its severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// error: a required secret is absent or empty.
    MissingSecret,
    /// error: a value published in upstream's `.env.example` (or the Supabase CLI's demo set).
    DemoValue,
    /// error: a placeholder of upstream's `.env.example` that stands for a secret (`your16charkey123`, …).
    PlaceholderValue,
    /// error: a secret a strength estimator finds too easy to guess for its key.
    WeakSecret,
    /// error: a key a service reads with a fixed or minimum length.
    WrongLength,
    /// error: a JWT that is not three base64url JSON parts.
    JwtUnparsable,
    /// error: a JWT not signed by the key the services verify it with.
    JwtBadSignature,
    /// error: an API key whose `role` claim is not the one its variable stands for.
    JwtWrongRole,
    /// error: an API key past its `exp`.
    JwtExpired,
    /// warning: an API key that expires within 30 days.
    JwtExpiring,
    /// error: `POSTGRES_PASSWORD` has characters that break `postgres://` URLs.
    UrlBreakingPassword,
    /// error: a digits-only `DASHBOARD_PASSWORD`, which Kong's basic-auth rejects.
    DigitsOnlyDashboardPassword,
    /// error: `JWT_KEYS` or `JWT_JWKS` is not a JSON key set (or holds an unusable EC key).
    KeySetInvalid,
    /// error: the public key in `JWT_JWKS` is not the public half of the `JWT_KEYS` signing key.
    AsymmetricMismatch,
    /// error: `JWT_JWKS` carries a private key part (`d`).
    JwksPrivatePart,
    /// error: the `oct` key of `JWT_KEYS` / `JWT_JWKS` is not `JWT_SECRET`.
    OctKeyMismatch,
    /// warning: `JWT_KEYS` / `JWT_JWKS` has no `oct` key, so HS256 API keys stop verifying.
    OctKeyMissing,
    /// error: a `SUPABASE_`-prefixed copy of a standard variable holds another value.
    SupabaseAliasMismatch,
    /// error: a connection URL in the file whose password is not `POSTGRES_PASSWORD`.
    UrlPasswordMismatch,
    /// warning: the `.env` can be read or written by group or others.
    FilePermissions,
    /// warning: `<env>.pending` is left over from an interrupted rotation.
    PendingRotation,
    /// warning: a temporary copy of the `.env` left by a killed write (it holds the secrets).
    LeftoverTempFile,
    /// error (`--db`): nothing to log in with, so no login could be tested.
    DbNotChecked,
    /// error (`--db`): the server cannot be reached.
    DbUnreachable,
    /// error (`--db`): the server answered but refused the connection for another reason.
    DbConnectFailed,
    /// error (`--db`): a role does not accept `POSTGRES_PASSWORD`.
    DbLoginFailed,
    /// warning (`--db`): none of the Supabase roles can log in there.
    DbNoSupabaseRoles,
    /// error (`--db`): Logflare's postgres backend URL has another password.
    AnalyticsPasswordMismatch,
    /// warning (`--db`): the analytics backends could not be read.
    AnalyticsNotChecked,
    /// error: `JWT_KEYS` has no key, or more than one, with `sign` in `key_ops`.
    SigningKeyCount,
    /// error: a verify-only key of `JWT_KEYS` is not in `JWT_JWKS`.
    JwksMissingVerifyKey,
    /// error: an asymmetric API key whose `kid` is not the signing key's.
    ApiKeyNotSigningKey,
    /// warning: a previous key kept past `JWT_EXPIRY` + 15 minutes after its promotion.
    PreviousKeyOverdue,
    /// warning: a key on standby for more than a week.
    StandbyKeyStale,
    /// warning: `JWT_KEYS_STATE` is unreadable or disagrees with the key sets.
    KeyStateRecord,
    /// error (`--db`): `app.settings.jwt_secret` is set in the database and differs from
    /// `JWT_SECRET`; a warning when it matches (any role can read it). The one code whose
    /// severity depends on the finding (SPEC §4); [`Code::severity`] gives the error.
    DbJwtSecretCopy,
    /// error (`--compose`): a secret a compose file reads, or a `${VAR:?…}`, is not set.
    ComposeUnsetSecret,
    /// warning (`--compose`): a non-secret variable a compose file reads is not set (compose
    /// replaces it with an empty value).
    ComposeUnsetVariable,
    /// error (`--compose`): `${SECRET:-value}` hands a secret the value printed in the compose
    /// file, because the `.env` does not set it.
    ComposeSecretFallback,
    /// warning (`--compose`): such a fallback, dormant while the `.env` sets the secret.
    ComposeSecretFallbackDormant,
    /// error (`--compose`): a secret written into the compose file itself.
    ComposeLiteralSecret,
    /// error (`--compose`): a value compose cannot interpolate (`${` unclosed, a bad name).
    ComposeBadInterpolation,
    /// warning (`--compose`): a `.env` key that no compose file given reads.
    UnusedEnvKey,
}

impl Code {
    /// Every code, in the order they are documented.
    pub const ALL: &'static [Code] = &[
        Code::MissingSecret,
        Code::DemoValue,
        Code::PlaceholderValue,
        Code::WeakSecret,
        Code::WrongLength,
        Code::JwtUnparsable,
        Code::JwtBadSignature,
        Code::JwtWrongRole,
        Code::JwtExpired,
        Code::JwtExpiring,
        Code::UrlBreakingPassword,
        Code::DigitsOnlyDashboardPassword,
        Code::KeySetInvalid,
        Code::AsymmetricMismatch,
        Code::JwksPrivatePart,
        Code::OctKeyMismatch,
        Code::OctKeyMissing,
        Code::SupabaseAliasMismatch,
        Code::UrlPasswordMismatch,
        Code::FilePermissions,
        Code::PendingRotation,
        Code::LeftoverTempFile,
        Code::DbNotChecked,
        Code::DbUnreachable,
        Code::DbConnectFailed,
        Code::DbLoginFailed,
        Code::DbNoSupabaseRoles,
        Code::AnalyticsPasswordMismatch,
        Code::AnalyticsNotChecked,
        Code::SigningKeyCount,
        Code::JwksMissingVerifyKey,
        Code::ApiKeyNotSigningKey,
        Code::PreviousKeyOverdue,
        Code::StandbyKeyStale,
        Code::KeyStateRecord,
        Code::DbJwtSecretCopy,
        Code::ComposeUnsetSecret,
        Code::ComposeUnsetVariable,
        Code::ComposeSecretFallback,
        Code::ComposeSecretFallbackDormant,
        Code::ComposeLiteralSecret,
        Code::ComposeBadInterpolation,
        Code::UnusedEnvKey,
    ];

    /// The severity fixed for this code.
    pub fn severity(self) -> Severity {
        match self {
            Code::MissingSecret
            | Code::DemoValue
            | Code::PlaceholderValue
            | Code::WeakSecret
            | Code::WrongLength
            | Code::JwtUnparsable
            | Code::JwtBadSignature
            | Code::JwtWrongRole
            | Code::JwtExpired
            | Code::UrlBreakingPassword
            | Code::DigitsOnlyDashboardPassword
            | Code::KeySetInvalid
            | Code::AsymmetricMismatch
            | Code::JwksPrivatePart
            | Code::OctKeyMismatch
            | Code::SupabaseAliasMismatch
            | Code::UrlPasswordMismatch
            | Code::DbNotChecked
            | Code::DbUnreachable
            | Code::DbConnectFailed
            | Code::DbLoginFailed
            | Code::AnalyticsPasswordMismatch
            | Code::SigningKeyCount
            | Code::JwksMissingVerifyKey
            | Code::ApiKeyNotSigningKey
            | Code::DbJwtSecretCopy
            | Code::ComposeUnsetSecret
            | Code::ComposeSecretFallback
            | Code::ComposeLiteralSecret
            | Code::ComposeBadInterpolation => Severity::Error,
            Code::JwtExpiring
            | Code::OctKeyMissing
            | Code::FilePermissions
            | Code::PendingRotation
            | Code::LeftoverTempFile
            | Code::DbNoSupabaseRoles
            | Code::AnalyticsNotChecked
            | Code::PreviousKeyOverdue
            | Code::StandbyKeyStale
            | Code::KeyStateRecord
            | Code::ComposeUnsetVariable
            | Code::ComposeSecretFallbackDormant
            | Code::UnusedEnvKey => Severity::Warning,
        }
    }

    /// The stable name CI matches on.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::MissingSecret => "missing-secret",
            Code::DemoValue => "demo-value",
            Code::PlaceholderValue => "placeholder-value",
            Code::WeakSecret => "weak-secret",
            Code::WrongLength => "wrong-length",
            Code::JwtUnparsable => "jwt-unparsable",
            Code::JwtBadSignature => "jwt-bad-signature",
            Code::JwtWrongRole => "jwt-wrong-role",
            Code::JwtExpired => "jwt-expired",
            Code::JwtExpiring => "jwt-expiring",
            Code::UrlBreakingPassword => "url-breaking-password",
            Code::DigitsOnlyDashboardPassword => "digits-only-dashboard-password",
            Code::KeySetInvalid => "key-set-invalid",
            Code::AsymmetricMismatch => "asymmetric-mismatch",
            Code::JwksPrivatePart => "jwks-private-part",
            Code::OctKeyMismatch => "oct-key-mismatch",
            Code::OctKeyMissing => "oct-key-missing",
            Code::SupabaseAliasMismatch => "supabase-alias-mismatch",
            Code::UrlPasswordMismatch => "url-password-mismatch",
            Code::FilePermissions => "file-permissions",
            Code::PendingRotation => "pending-rotation",
            Code::LeftoverTempFile => "leftover-temp-file",
            Code::DbNotChecked => "db-not-checked",
            Code::DbUnreachable => "db-unreachable",
            Code::DbConnectFailed => "db-connect-failed",
            Code::DbLoginFailed => "db-login-failed",
            Code::DbNoSupabaseRoles => "db-no-supabase-roles",
            Code::AnalyticsPasswordMismatch => "analytics-password-mismatch",
            Code::AnalyticsNotChecked => "analytics-not-checked",
            Code::SigningKeyCount => "signing-key-count",
            Code::JwksMissingVerifyKey => "jwks-missing-verify-key",
            Code::ApiKeyNotSigningKey => "api-key-not-signing-key",
            Code::PreviousKeyOverdue => "previous-key-overdue",
            Code::StandbyKeyStale => "standby-key-stale",
            Code::KeyStateRecord => "key-state-record",
            Code::DbJwtSecretCopy => "db-jwt-secret-copy",
            Code::ComposeUnsetSecret => "compose-unset-secret",
            Code::ComposeUnsetVariable => "compose-unset-variable",
            Code::ComposeSecretFallback => "compose-secret-fallback",
            Code::ComposeSecretFallbackDormant => "compose-secret-fallback-dormant",
            Code::ComposeLiteralSecret => "compose-literal-secret",
            Code::ComposeBadInterpolation => "compose-bad-interpolation",
            Code::UnusedEnvKey => "unused-env-key",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    fn new(code: Code, key: Option<&str>, message: String) -> Self {
        Finding { severity: code.severity(), code, key: key.map(str::to_owned), file: None, line: None, message }
    }
}

/// Runs every rule that needs only the values.
fn audit_values(values: &Values, path: &Path, now: i64) -> Vec<Finding> {
    let ctx = Ctx { values, path, now };
    let mut out = Vec::new();
    shapes::missing_secrets(&ctx, &mut out);
    demo::demo_values(&ctx, &mut out);
    weak::weak_values(&ctx, &mut out);
    shapes::lengths(&ctx, &mut out);
    shapes::postgres_password_in_urls(&ctx, &mut out);
    shapes::dashboard_password(&ctx, &mut out);
    jwt::hs256_api_keys(&ctx, &mut out);
    asymmetric::asymmetric_keys(&ctx, &mut out);
    key_states::key_states(&ctx, &mut out);
    copies::supabase_aliases(&ctx, &mut out);
    copies::url_passwords(&ctx, &mut out);
    out
}

/// Runs the audit: prints the report on stdout, exits 0 without error-level findings and 1
/// with (as the silent `Error::Findings`, the report having said everything).
pub fn run(args: &CheckOptions, ui: &Ui) -> Result<ExitCode> {
    crate::envfile::require_existing(&args.env_file)?;
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
    if !args.compose.is_empty() {
        findings.extend(compose::audit(&args.compose, &values, &args.env_file)?);
    }
    // Errors first; within a severity, the order the rules ran in (file order for most).
    findings.sort_by_key(|f| f.severity);

    let report = Report::new(&args.env_file, &findings);
    // --quiet: the error-level findings and the verdict only, nothing at all when there is no
    // error; JSON stays whole (a machine asked for it).
    match (ui.is_quiet(), args.format) {
        (true, ReportFormat::Text) if report.errors == 0 => {}
        (true, ReportFormat::Text) => crate::ui::write_stdout(&report.errors_text())?,
        _ => crate::ui::write_stdout(&report.render(args.format)?)?,
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
        ("compose-unset-secret", "error"),
        ("compose-unset-variable", "warning"),
        ("compose-secret-fallback", "error"),
        ("compose-secret-fallback-dormant", "warning"),
        ("compose-literal-secret", "error"),
        ("compose-bad-interpolation", "error"),
        ("unused-env-key", "warning"),
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
