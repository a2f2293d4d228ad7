//! `check`: audit a stack's `.env` (and, with `--db`, the live database) before it reaches
//! production (SPEC §4).
//!
//! Every problem becomes a [`Finding`]: a severity, a stable code CI can match on, the `.env` key
//! involved and a message saying what breaks and what to do. Messages name keys, roles, files
//! and hosts but never a value, because the report is made to be pasted into tickets and CI
//! logs. The file rules are plain functions over the parsed values (unit-tested without a file);
//! only `--db` builds a runtime and talks to a server.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Serialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::cli::{CheckArgs, ReportFormat};
use crate::db::{self, Target};
use crate::dburl;
use crate::envfile::EnvFile;
use crate::error::{Error, ExitCode, Result};
use crate::secrets::{self, Secret};
use crate::ui::Ui;

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

// ------------------------------------------------------------------------------------ the values

/// The `.env` as the audit sees it: for each key the value docker compose would use (the last
/// occurrence), in the order keys first appear. Values stay wrapped in [`Secret`].
pub struct Values {
    entries: Vec<(String, Secret)>,
}

impl Values {
    /// From `(key, value)` pairs in file order; a later duplicate replaces the earlier value.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut entries: Vec<(String, Secret)> = Vec::new();
        for (key, value) in pairs {
            let key = key.into();
            let value = Secret::new(value.into());
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => entries.push((key, value)),
            }
        }
        Values { entries }
    }

    /// The value of `key` when it is set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.expose()).filter(|v| !v.is_empty())
    }

    /// Every non-empty `(key, value)`, in file order.
    fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.expose())).filter(|(_, v)| !v.is_empty())
    }
}

/// What every file rule needs: the values, the file (for the commands in messages) and the time.
struct Ctx<'a> {
    values: &'a Values,
    path: &'a Path,
    now: i64,
}

impl Ctx<'_> {
    /// The `generate-keys` command that replaces `key` in this file.
    fn regenerate(&self, key: &str) -> String {
        format!("pmoves-secrets generate-keys --env-file {} --only {key}", self.path.display())
    }

    /// Every asymmetric problem has one fix: a new `JWT_KEYS`, from which the rest is derived.
    fn remedy_key_set(&self) -> String {
        format!("re-mint the set with `{}`", self.regenerate("JWT_KEYS"))
    }

    /// How to replace `key` safely: the database password goes through `rotate-passwords`,
    /// because changing it only in the file locks every service out.
    fn remedy(&self, key: &str) -> String {
        match key {
            "POSTGRES_PASSWORD" => format!(
                "rotate it with `pmoves-secrets rotate-passwords --env-file {}` (before the database's first start, \
                 `pmoves-secrets generate-keys --env-file {}` may replace it instead)",
                self.path.display(),
                self.path.display()
            ),
            "JWT_SECRET" => {
                format!("replace it with `{}` (which re-mints ANON_KEY and SERVICE_ROLE_KEY too)", self.regenerate(key))
            }
            _ if secrets::spec_for(key).is_some() => format!("replace it with `{}`", self.regenerate(key)),
            _ => "replace it with the stack's real value".to_owned(),
        }
    }
}

/// Runs every rule that needs only the values.
pub fn audit_values(values: &Values, path: &Path, now: i64) -> Vec<Finding> {
    let ctx = Ctx { values, path, now };
    let mut out = Vec::new();
    missing_secrets(&ctx, &mut out);
    demo_values(&ctx, &mut out);
    lengths(&ctx, &mut out);
    postgres_password_in_urls(&ctx, &mut out);
    dashboard_password(&ctx, &mut out);
    hs256_api_keys(&ctx, &mut out);
    asymmetric_keys(&ctx, &mut out);
    supabase_aliases(&ctx, &mut out);
    url_passwords(&ctx, &mut out);
    out
}

// ---------------------------------------------------------------------------- missing and demo

/// Every secret of the (non-asymmetric) catalogue must be set: each is read by a service that
/// fails, or falls back to something insecure, without it.
fn missing_secrets(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for spec in secrets::catalog(false) {
        if ctx.values.get(spec.key).is_none() {
            out.push(Finding::error(
                code::MISSING_SECRET,
                Some(spec.key),
                format!(
                    "is missing or empty ({}); fill it with `pmoves-secrets generate-keys --env-file {}`",
                    spec.comment,
                    ctx.path.display()
                ),
            ));
        }
    }
}

/// Values published in upstream `supabase/docker/.env.example` (across its versions), in the
/// compose file it ships, and in the Supabase CLI's local stack. Anyone can read them, so a
/// stack running on one is open. Each is paired with where it was published (named in the
/// message instead of the value).
const DEMO_VALUES: &[(&str, &str)] = &[
    ("your-super-secret-and-long-postgres-password", "upstream's demo POSTGRES_PASSWORD"),
    ("your-super-secret-jwt-token-with-at-least-32-characters-long", "upstream's demo JWT_SECRET"),
    ("super-secret-jwt-token-with-at-least-32-characters-long", "the Supabase CLI's local JWT secret"),
    ("this_password_is_insecure_and_should_be_updated", "upstream's demo DASHBOARD_PASSWORD"),
    ("UpNVntn3cDxHJpq99YMc1T1AQgQpc8kfYTuRgBiYa15BLrx8etQoXz3gZv1/u2oq", "upstream's demo SECRET_KEY_BASE"),
    ("your-encryption-key-32-chars-min", "upstream's demo VAULT_ENC_KEY / PG_META_CRYPTO_KEY"),
    ("your-32-character-encryption-key", "upstream's demo VAULT_ENC_KEY"),
    ("your-super-secret-and-long-logflare-key", "upstream's demo LOGFLARE_API_KEY"),
    ("your-super-secret-and-long-logflare-key-public", "upstream's demo LOGFLARE_PUBLIC_ACCESS_TOKEN"),
    ("your-super-secret-and-long-logflare-key-private", "upstream's demo LOGFLARE_PRIVATE_ACCESS_TOKEN"),
    ("625729a08b95bf1b7ff351a663f3a23c", "upstream's demo S3_PROTOCOL_ACCESS_KEY_ID"),
    (
        "850181e4652dd023b7a98c58ae0d2d34bd487ee0cc3254aed6eda37307425907",
        "upstream's demo S3_PROTOCOL_ACCESS_KEY_SECRET",
    ),
    ("secret1234", "upstream's demo MINIO_ROOT_PASSWORD"),
    ("supabaserealtime", "the REALTIME_DB_ENC_KEY upstream's docker-compose.yml hard-codes"),
];

/// Upstream's placeholders share this prefix; none of them is a real secret.
const DEMO_PREFIX: &str = "your-super-secret";

/// The HMAC keys of the published demo tokens: any token they verify was signed by a key
/// everyone has, so anyone can mint a `service_role` token for that stack.
const DEMO_JWT_SECRETS: &[&str] = &[
    "your-super-secret-jwt-token-with-at-least-32-characters-long",
    "super-secret-jwt-token-with-at-least-32-characters-long",
];

/// Signatures of the published demo tokens (upstream's ANON_KEY and SERVICE_ROLE_KEY, then the
/// Supabase CLI's), which identify them whatever secret the file pairs them with.
const DEMO_TOKEN_SIGNATURES: &[&str] = &[
    "dc_X5iR_VP_qT0zsiyj_I_OZ2T9FtRU2BBNWN8Bu4GE",
    "DaYlNEoUrrEn2Ig7tqibS-PHK5vgusbcbo7X36XVt4Q",
    "CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0",
    "EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU",
];

/// Whether `value` was published as a demo secret; `generate-keys --env-file` replaces those.
pub fn is_demo_value(value: &str) -> bool {
    demo_origin(value).is_some()
}

/// Where `value` was published, when it is a known demo value.
fn demo_origin(value: &str) -> Option<&'static str> {
    if let Some((_, origin)) = DEMO_VALUES.iter().find(|(demo, _)| *demo == value) {
        return Some(origin);
    }
    if value.starts_with(DEMO_PREFIX) {
        return Some("one of upstream's `your-super-secret-…` placeholders");
    }
    is_demo_jwt(value).then_some("a demo token signed by a published JWT secret")
}

/// Whether `value` is a JWT from a demo set: a published signature, the demo issuer, or a
/// signature that a published secret verifies.
fn is_demo_jwt(value: &str) -> bool {
    let Some(jwt) = Jwt::parse(value) else { return false };
    DEMO_TOKEN_SIGNATURES.contains(&jwt.signature)
        || jwt.claims.get("iss").and_then(Value::as_str) == Some("supabase-demo")
        || DEMO_JWT_SECRETS.iter().any(|secret| jwt.verifies_hs256(secret))
}

/// Every key of the file is checked, not only the catalogue: a demo token copied into
/// `SUPABASE_ANON_KEY` or a frontend variable is just as public.
fn demo_values(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (key, value) in ctx.values.iter() {
        if let Some(origin) = demo_origin(value) {
            out.push(Finding::error(
                code::DEMO_VALUE,
                Some(key),
                format!("holds a publicly known demo value ({origin}); {}", ctx.remedy(key)),
            ));
        }
    }
}

// ------------------------------------------------------------------------------- value shapes

/// A length rule of one key.
enum Length {
    Exactly(usize),
    AtLeast(usize),
}

/// Lengths the consuming services insist on (SPEC §1), with what happens otherwise.
const LENGTHS: &[(&str, Length, &str)] = &[
    ("VAULT_ENC_KEY", Length::Exactly(32), "Supavisor crash-loops on any other length"),
    ("REALTIME_DB_ENC_KEY", Length::Exactly(16), "Realtime uses it as an AES-128 key"),
    ("JWT_SECRET", Length::AtLeast(32), "shorter HS256 secrets are rejected by the auth services"),
    ("SECRET_KEY_BASE", Length::AtLeast(64), "Phoenix (Realtime, Supavisor) refuses shorter ones"),
    ("PG_META_CRYPTO_KEY", Length::AtLeast(32), "postgres-meta refuses shorter ones"),
];

/// The length is of the value's bytes, as the services read it; it says nothing useful about
/// the value itself, so it may be printed.
fn lengths(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (key, rule, why) in LENGTHS {
        let Some(value) = ctx.values.get(key) else { continue };
        let len = value.len();
        let wanted = match rule {
            Length::Exactly(n) if len != *n => format!("exactly {n}"),
            Length::AtLeast(n) if len < *n => format!("at least {n}"),
            _ => continue,
        };
        out.push(Finding::error(
            code::WRONG_LENGTH,
            Some(key),
            format!("is {len} characters long but must be {wanted} ({why}); {}", ctx.remedy(key)),
        ));
    }
}

/// Characters that end or split a URL's userinfo, or that services' shell and YAML quoting
/// mangle, when the password is pasted into `postgres://user:PASSWORD@host/db`.
fn breaks_urls(c: char) -> bool {
    matches!(c, '@' | '/' | '?' | '#' | ':' | '&' | '%' | '\'' | '"' | '`') || c.is_whitespace()
}

/// Which characters are present is not said: even that narrows the password down.
fn postgres_password_in_urls(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let Some(password) = ctx.values.get("POSTGRES_PASSWORD") else { return };
    if password.chars().any(breaks_urls) {
        out.push(Finding::error(
            code::URL_BREAKING_PASSWORD,
            Some("POSTGRES_PASSWORD"),
            format!(
                "contains characters that break connection URLs (one of @ / ? # : & %, whitespace or quotes), so services \
                 that build postgres:// URLs from it cannot connect; rotate it with `pmoves-secrets rotate-passwords \
                 --env-file {}`, which generates a hex password",
                ctx.path.display()
            ),
        ));
    }
}

/// Kong's basic-auth plugin rejects a digits-only password, which locks Studio.
fn dashboard_password(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let Some(password) = ctx.values.get("DASHBOARD_PASSWORD") else { return };
    if password.bytes().all(|b| b.is_ascii_digit()) {
        out.push(Finding::error(
            code::DIGITS_ONLY_DASHBOARD_PASSWORD,
            Some("DASHBOARD_PASSWORD"),
            format!(
                "is digits only, which Kong's basic-auth rejects (Studio cannot be opened); {}",
                ctx.remedy("DASHBOARD_PASSWORD")
            ),
        ));
    }
}

// ------------------------------------------------------------------------------------- JWTs

/// A compact JWT split into its parts; `header` and `claims` are JSON objects.
struct Jwt<'a> {
    header: Value,
    claims: Value,
    /// `base64(header).base64(claims)`, the bytes the signature covers.
    signing_input: &'a str,
    signature: &'a str,
}

impl<'a> Jwt<'a> {
    /// `None` unless the text is three base64url parts whose first two are JSON objects.
    fn parse(token: &'a str) -> Option<Self> {
        let (signing_input, signature) = token.rsplit_once('.')?;
        let (header_b64, claims_b64) = signing_input.split_once('.')?;
        let json = |part: &str| -> Option<Value> {
            let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
            serde_json::from_slice::<Value>(&bytes).ok().filter(Value::is_object)
        };
        Some(Jwt { header: json(header_b64)?, claims: json(claims_b64)?, signing_input, signature })
    }

    /// The header's `alg`.
    fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// Whether an HS256 signature by the UTF-8 bytes of `secret` (as the services use it, never
    /// base64-decoded) matches.
    fn verifies_hs256(&self, secret: &str) -> bool {
        self.verifies(&DecodingKey::from_secret(secret.as_bytes()), Algorithm::HS256)
    }

    fn verifies(&self, key: &DecodingKey, algorithm: Algorithm) -> bool {
        jsonwebtoken::crypto::verify(self.signature, self.signing_input.as_bytes(), key, algorithm).unwrap_or(false)
    }
}

/// How a token's signature is checked.
enum Verifier<'a> {
    /// HS256 with `JWT_SECRET`; `None` when the file has none (already reported as missing).
    Hs256(Option<&'a str>),
    /// ES256 with the EC keys of `JWT_JWKS`; `None` when it is missing or unreadable.
    Es256(Option<&'a [Value]>),
}

/// Claim text from the file is shown only when it is a plain role-like name, so a pasted
/// secret in a claim can never reach the report.
fn printable_claim(text: &str) -> String {
    let plain = !text.is_empty()
        && text.len() <= 63
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain {
        format!("\"{text}\"")
    } else {
        "an unexpected value".to_owned()
    }
}

/// Algorithms are named only when they are standard names, for the same reason.
fn printable_alg(alg: Option<&str>) -> &str {
    const KNOWN: &[&str] =
        &["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA", "none"];
    alg.and_then(|a| KNOWN.iter().find(|k| **k == a).copied()).unwrap_or("an unknown algorithm")
}

/// The HS256 API keys services verify with `JWT_SECRET`.
fn hs256_api_keys(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let secret = ctx.values.get("JWT_SECRET");
    for (key, role) in [("ANON_KEY", "anon"), ("SERVICE_ROLE_KEY", "service_role")] {
        if let Some(token) = ctx.values.get(key) {
            check_api_key(ctx, key, token, role, &Verifier::Hs256(secret), out);
        }
    }
}

/// The checks every Supabase API key gets: shape, signature, role, expiry.
fn check_api_key(ctx: &Ctx<'_>, key: &str, token: &str, role: &str, verifier: &Verifier<'_>, out: &mut Vec<Finding>) {
    let Some(jwt) = Jwt::parse(token) else {
        out.push(Finding::error(
            code::JWT_UNPARSABLE,
            Some(key),
            format!("is not a JWT (three base64url parts with a JSON header and payload); {}", ctx.remedy(key)),
        ));
        return;
    };
    if let Some(problem) = signature_problem(&jwt, verifier) {
        out.push(Finding::error(code::JWT_BAD_SIGNATURE, Some(key), format!("{problem}; {}", ctx.remedy(key))));
    }
    check_role(ctx, key, &jwt, role, out);
    check_expiry(ctx, key, &jwt, out);
}

/// Why the signature does not hold, or `None` when it does (or cannot be checked).
fn signature_problem(jwt: &Jwt<'_>, verifier: &Verifier<'_>) -> Option<String> {
    match verifier {
        Verifier::Hs256(secret) => {
            if jwt.alg() != Some("HS256") {
                return Some(format!(
                    "is signed with {}, but services verify it as HS256 with JWT_SECRET",
                    printable_alg(jwt.alg())
                ));
            }
            let secret = (*secret)?;
            (!jwt.verifies_hs256(secret)).then(|| {
                "is not signed by JWT_SECRET, so every service rejects it (it was minted with another secret)"
                    .to_owned()
            })
        }
        Verifier::Es256(keys) => {
            if jwt.alg() != Some("ES256") {
                return Some(format!("is signed with {}, but the asymmetric keys are ES256", printable_alg(jwt.alg())));
            }
            let keys = (*keys)?;
            let kid = jwt.header.get("kid").and_then(Value::as_str);
            let verified =
                ec_public_jwks(keys, kid).filter_map(decoding_key_of).any(|key| jwt.verifies(&key, Algorithm::ES256));
            (!verified).then(|| "does not verify against any EC key of JWT_JWKS with its kid".to_owned())
        }
    }
}

fn check_role(ctx: &Ctx<'_>, key: &str, jwt: &Jwt<'_>, role: &str, out: &mut Vec<Finding>) {
    let actual = jwt.claims.get("role").and_then(Value::as_str);
    if actual == Some(role) {
        return;
    }
    let shown = actual.map_or_else(|| "no role claim".to_owned(), |r| format!("role {}", printable_claim(r)));
    out.push(Finding::error(
        code::JWT_WRONG_ROLE,
        Some(key),
        format!("carries {shown} but must carry role \"{role}\"; {}", ctx.remedy(key)),
    ));
}

/// Thirty days: enough warning to re-mint and roll out new keys before requests start failing.
const EXPIRY_WARNING_SECS: i64 = 30 * 24 * 3600;

/// Tokens without `exp` never expire for the services, so they pass.
fn check_expiry(ctx: &Ctx<'_>, key: &str, jwt: &Jwt<'_>, out: &mut Vec<Finding>) {
    let Some(exp) = jwt.claims.get("exp").and_then(Value::as_f64) else { return };
    // `as` saturates: an absurd exp becomes i64::MAX/MIN instead of wrapping.
    let exp = exp as i64;
    let date = utc_date(exp);
    if exp <= ctx.now {
        out.push(Finding::error(
            code::JWT_EXPIRED,
            Some(key),
            format!("expired on {date}, so every request made with it is rejected; {}", ctx.remedy(key)),
        ));
    } else if exp - ctx.now < EXPIRY_WARNING_SECS {
        let days = (exp - ctx.now) / 86_400;
        out.push(Finding::warning(
            code::JWT_EXPIRING,
            Some(key),
            format!("expires on {date} (in {days} day(s)); {} and roll it out before then", ctx.remedy(key)),
        ));
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time, for expiry messages (Howard Hinnant's civil-from-days).
fn utc_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400).clamp(-1_000_000_000, 1_000_000_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

// ----------------------------------------------------------------------------- asymmetric set

/// The four variables that make up the asymmetric set; the opaque keys stand alone.
const ASYMMETRIC_CORE: [&str; 4] = ["JWT_KEYS", "JWT_JWKS", "ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC"];

/// Only when the file uses the asymmetric keys at all: then they must be complete and agree.
fn asymmetric_keys(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let v = ctx.values;
    if !ASYMMETRIC_CORE.iter().any(|k| v.get(k).is_some()) {
        return;
    }
    for key in ASYMMETRIC_CORE.iter().filter(|k| v.get(k).is_none()) {
        out.push(Finding::error(
            code::MISSING_SECRET,
            Some(key),
            format!(
                "is missing or empty while other asymmetric keys are set, so the set is incomplete; re-mint it with `{}`",
                ctx.regenerate("JWT_KEYS")
            ),
        ));
    }
    let jwt_keys = v.get("JWT_KEYS").and_then(|text| parse_key_set(ctx, "JWT_KEYS", text, out));
    let jwks = v.get("JWT_JWKS").and_then(|text| parse_key_set(ctx, "JWT_JWKS", text, out));
    if let Some(jwks) = &jwks {
        private_parts(ctx, jwks, out);
    }
    if let (Some(keys), Some(jwks)) = (&jwt_keys, &jwks) {
        halves_agree(ctx, keys, jwks, out);
    }
    for (key, set) in [("JWT_KEYS", &jwt_keys), ("JWT_JWKS", &jwks)] {
        if let Some(set) = set {
            oct_key(ctx, key, set, out);
        }
    }
    for (key, role) in [("ANON_KEY_ASYMMETRIC", "anon"), ("SERVICE_ROLE_KEY_ASYMMETRIC", "service_role")] {
        if let Some(token) = v.get(key) {
            check_api_key(ctx, key, token, role, &Verifier::Es256(jwks.as_deref()), out);
        }
    }
}

/// The JWKs of a key set: a JSON array (`JWT_KEYS`) or `{"keys": [...]}` (`JWT_JWKS`).
fn parse_key_set(ctx: &Ctx<'_>, key: &str, text: &str, out: &mut Vec<Finding>) -> Option<Vec<Value>> {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let list = parsed.and_then(|value| match value {
        Value::Array(list) => Some(list),
        Value::Object(mut map) => match map.remove("keys") {
            Some(Value::Array(list)) => Some(list),
            _ => None,
        },
        _ => None,
    });
    match list {
        Some(list) if list.iter().all(Value::is_object) => Some(list),
        _ => {
            out.push(Finding::error(
                code::KEY_SET_INVALID,
                Some(key),
                format!("is not a JSON key set (an array of JWKs, or {{\"keys\": [...]}}); {}", ctx.remedy_key_set()),
            ));
            None
        }
    }
}

fn kty(jwk: &Value) -> Option<&str> {
    jwk.get("kty").and_then(Value::as_str)
}

/// `JWT_JWKS` is handed to every service (and may end up published): a private part there gives
/// away the signing key.
fn private_parts(ctx: &Ctx<'_>, jwks: &[Value], out: &mut Vec<Finding>) {
    if jwks.iter().any(|jwk| jwk.get("d").is_some()) {
        out.push(Finding::error(
            code::JWKS_PRIVATE_PART,
            Some("JWT_JWKS"),
            format!(
                "carries a private key part (\"d\"); it must hold only public keys (and the oct key); {}",
                ctx.remedy_key_set()
            ),
        ));
    }
}

/// The EC public keys of `jwks` that a token with `kid` may be verified with.
fn ec_public_jwks<'v>(jwks: &'v [Value], kid: Option<&'v str>) -> impl Iterator<Item = &'v Value> {
    jwks.iter()
        .filter(|jwk| kty(jwk) == Some("EC"))
        .filter(move |jwk| kid.is_none() || jwk.get("kid").and_then(Value::as_str) == kid)
}

/// A JWK member that is base64url (padding tolerated).
fn b64url_member(jwk: &Value, name: &str) -> Option<Vec<u8>> {
    let text = jwk.get(name)?.as_str()?;
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// The P-256 public key of an EC JWK (its `x` and `y`).
fn ec_public_key(jwk: &Value) -> Option<p256::PublicKey> {
    let mut sec1 = vec![0x04];
    sec1.extend(b64url_member(jwk, "x")?);
    sec1.extend(b64url_member(jwk, "y")?);
    p256::PublicKey::from_sec1_bytes(&sec1).ok()
}

fn decoding_key_of(jwk: &Value) -> Option<DecodingKey> {
    let x = jwk.get("x")?.as_str()?;
    let y = jwk.get("y")?.as_str()?;
    DecodingKey::from_ec_components(x.trim_end_matches('='), y.trim_end_matches('=')).ok()
}

/// Auth signs with the private key of `JWT_KEYS`; every other service verifies with the EC key
/// of the same `kid` in `JWT_JWKS`. If they are not the two halves of one key pair, no token
/// Auth issues is accepted anywhere.
fn halves_agree(ctx: &Ctx<'_>, keys: &[Value], jwks: &[Value], out: &mut Vec<Finding>) {
    for private in keys.iter().filter(|jwk| kty(jwk) == Some("EC") && jwk.get("d").is_some()) {
        let kid = private.get("kid").and_then(Value::as_str);
        // From `d` alone: the JWK parser of `p256` rejects the members Supabase adds (`kid`,
        // `key_ops`, `ext`, ...), and the public half is what is being checked anyway.
        let d = b64url_member(private, "d").map(Zeroizing::new);
        let is_p256 = private.get("crv").and_then(Value::as_str) == Some("P-256");
        let Some(secret) = d.filter(|_| is_p256).and_then(|d| p256::SecretKey::from_slice(&d).ok()) else {
            out.push(Finding::error(
                code::KEY_SET_INVALID,
                Some("JWT_KEYS"),
                format!("holds an EC key that is not a valid P-256 private key; {}", ctx.remedy_key_set()),
            ));
            continue;
        };
        let public = secret.public_key();
        let mut candidates = ec_public_jwks(jwks, kid).peekable();
        let problem = if candidates.peek().is_none() {
            Some("has no EC key with the kid of the JWT_KEYS signing key, so tokens signed by Auth cannot be verified")
        } else if !candidates.any(|jwk| ec_public_key(jwk) == Some(public)) {
            Some("holds an EC key whose public half is not that of the JWT_KEYS private key with the same kid")
        } else {
            None
        };
        if let Some(problem) = problem {
            out.push(Finding::error(
                code::ASYMMETRIC_MISMATCH,
                Some("JWT_JWKS"),
                format!("{problem}; {}", ctx.remedy_key_set()),
            ));
        }
    }
}

/// Services that verify with the key set still accept the HS256 API keys only through its `oct`
/// key, which must therefore be exactly `JWT_SECRET`.
fn oct_key(ctx: &Ctx<'_>, key: &str, set: &[Value], out: &mut Vec<Finding>) {
    let Some(secret) = ctx.values.get("JWT_SECRET") else { return };
    let octs: Vec<&Value> = set.iter().filter(|jwk| kty(jwk) == Some("oct")).collect();
    if octs.is_empty() {
        out.push(Finding::warning(
            code::OCT_KEY_MISSING,
            Some(key),
            format!(
                "has no oct (HS256) key, so services verifying with it reject ANON_KEY and SERVICE_ROLE_KEY; {}",
                ctx.remedy_key_set()
            ),
        ));
        return;
    }
    let matches =
        |jwk: &&Value| b64url_member(jwk, "k").map(Zeroizing::new).is_some_and(|k| k.as_slice() == secret.as_bytes());
    if !octs.iter().any(matches) {
        out.push(Finding::error(
            code::OCT_KEY_MISMATCH,
            Some(key),
            format!(
                "has an oct (HS256) key that is not JWT_SECRET, so services verifying with it reject ANON_KEY and \
                 SERVICE_ROLE_KEY; {}",
                ctx.remedy_key_set()
            ),
        ));
    }
}

// ------------------------------------------------------------------------ copies and URLs

/// `SUPABASE_`-prefixed names that by convention copy a standard variable under another name.
const ALIASES: &[(&str, &str)] =
    &[("SUPABASE_SERVICE_KEY", "SERVICE_ROLE_KEY"), ("SUPABASE_DB_PASSWORD", "POSTGRES_PASSWORD")];

/// The standard variable a `SUPABASE_` name copies: the conventional names above, or the
/// prefix on a catalogue name (`SUPABASE_ANON_KEY`, `SUPABASE_JWT_SECRET`, ...).
fn standard_for(alias: &str) -> Option<&'static str> {
    if let Some((_, standard)) = ALIASES.iter().find(|(a, _)| *a == alias) {
        return Some(standard);
    }
    let rest = alias.strip_prefix("SUPABASE_")?;
    secrets::spec_for(rest).map(|spec| spec.key)
}

/// A stale copy is worse than none: the service reading it fails while the file looks right.
fn supabase_aliases(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (alias, value) in ctx.values.iter() {
        let Some(standard) = standard_for(alias) else { continue };
        let Some(expected) = ctx.values.get(standard) else { continue };
        if value != expected && expand(value, ctx.values).as_str() != expected {
            out.push(Finding::error(
                code::SUPABASE_ALIAS_MISMATCH,
                Some(alias),
                format!(
                    "differs from {standard}, so the services reading {alias} use a stale value; set it to the same value \
                     as {standard} (or to ${{{standard}}})"
                ),
            ));
        }
    }
}

/// Whether the URL logs in as one of the Supabase roles (supavisor's `postgres.<tenant>` form
/// included). URLs of the operator's own roles legitimately carry other passwords.
fn is_supabase_role_url(url: &str) -> bool {
    dburl::user(url).is_some_and(|user| {
        let role = user.split('.').next().unwrap_or_default();
        SUPABASE_ROLES.contains(&role)
    })
}

/// Every Supabase service URL must carry the one shared password; a URL left with an old one fails at
/// the next restart, long after the change that caused it.
fn url_passwords(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let Some(expected) = ctx.values.get("POSTGRES_PASSWORD") else { return };
    for (key, value) in ctx.values.iter() {
        if !dburl::is_postgres_url(value) {
            continue;
        }
        if !is_supabase_role_url(value) {
            continue;
        }
        let Some(password) = dburl::password(value).map(Zeroizing::new) else { continue };
        let expanded = dburl::password(&expand(value, ctx.values)).map(Zeroizing::new);
        if password.as_str() != expected && expanded.as_deref().map(String::as_str) != Some(expected) {
            let user = dburl::user(value).map(|u| printable_claim(&u)).unwrap_or_else(|| "its user".to_owned());
            out.push(Finding::error(
                code::URL_PASSWORD_MISMATCH,
                Some(key),
                format!(
                    "is a connection URL (user {user}) whose password is not POSTGRES_PASSWORD, so the service using it \
                     cannot log in; put POSTGRES_PASSWORD in it (percent-encoded), or let `pmoves-secrets rotate-passwords` \
                     keep such URLs in step"
                ),
            ));
        }
    }
}

/// `value` with compose-style references (`$VAR`, `${VAR}`, `${VAR:-default}`, `$$`) replaced
/// by the file's values.
///
/// The parser keeps `${VAR}` as written (compose interpolates unquoted and double-quoted values,
/// and `SUPABASE_DB_URL=postgresql://postgres:${POSTGRES_PASSWORD}@db/postgres` is common), so
/// the copy and URL rules compare both the raw and the expanded text and complain only when
/// neither matches: a literal `$` in a single-quoted value can then never cause a false finding.
/// Variables from the shell environment are unknown here and expand to nothing.
fn expand(value: &str, values: &Values) -> Zeroizing<String> {
    expand_depth(value, values, 0)
}

/// Nested references are followed a few levels deep; a cycle stops there instead of looping.
fn expand_depth(value: &str, values: &Values, depth: usize) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(value.len()));
    let mut rest = value;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (replacement, consumed) = reference(after, values, depth);
        out.push_str(&replacement);
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

/// The text a `$` reference stands for and how many bytes after the `$` it spans.
fn reference(after: &str, values: &Values, depth: usize) -> (Zeroizing<String>, usize) {
    let lookup = |name: &str| -> Zeroizing<String> {
        match values.get(name) {
            Some(v) if depth < 4 => expand_depth(v, values, depth + 1),
            Some(v) => Zeroizing::new(v.to_owned()),
            None => Zeroizing::new(String::new()),
        }
    };
    if let Some(braced) = after.strip_prefix('{') {
        let Some(close) = braced.find('}') else { return (Zeroizing::new("$".to_owned()), 0) };
        let inner = &braced[..close];
        let name_len = inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(inner.len());
        let (name, modifier) = inner.split_at(name_len);
        let current = lookup(name);
        let text = match modifier {
            m if m.starts_with(":-") && current.is_empty() => expand_depth(&m[2..], values, depth + 1),
            m if m.starts_with('-') && values.get(name).is_none() => expand_depth(&m[1..], values, depth + 1),
            m if m.starts_with(":+") => {
                Zeroizing::new(if current.is_empty() { String::new() } else { m[2..].to_owned() })
            }
            _ => current,
        };
        return (text, close + 2);
    }
    if after.starts_with('$') {
        return (Zeroizing::new("$".to_owned()), 1);
    }
    let name_len = after
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit())))
        .map_or(after.len(), |(i, _)| i);
    if name_len == 0 {
        return (Zeroizing::new("$".to_owned()), 0);
    }
    (lookup(&after[..name_len]), name_len)
}

// ---------------------------------------------------------------------------- the file itself

/// The file's mode: the `.env` holds every secret of the stack, so only its owner may read it.
fn file_permissions(path: &Path) -> Result<Option<Finding>> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .map_err(|e| Error::Io { action: "read the mode of", path: path.to_owned(), reason: e.to_string() })?
        .permissions()
        .mode();
    let access = match (mode & 0o044 != 0, mode & 0o022 != 0) {
        (true, true) => "readable and writable",
        (true, false) => "readable",
        (false, true) => "writable",
        (false, false) => return Ok(None),
    };
    Ok(Some(Finding::warning(
        code::FILE_PERMISSIONS,
        None,
        format!(
            "{} is {access} by group or others (mode {:04o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o7777,
            path.display()
        ),
    )))
}

/// `<env>.pending`, where `rotate-passwords` stages the new `.env` (SPEC §2).
fn pending_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".pending");
    path.with_file_name(name)
}

/// A pending file means a rotation stopped half-way: the database may already hold the
/// password that only that file knows.
///
/// `rotate-passwords` stages beside the symlink-resolved `.env`, so both places are looked at.
fn pending_rotation(path: &Path) -> Option<Finding> {
    let beside_link = pending_path(path);
    let beside_target = std::fs::canonicalize(path).ok().map(|target| pending_path(&target));
    let pending = std::iter::once(beside_link)
        .chain(beside_target)
        .find(|candidate| std::fs::symlink_metadata(candidate).is_ok())?;
    Some(Finding::warning(
        code::PENDING_ROTATION,
        None,
        format!(
            "{} is left from an interrupted rotation; the database may accept only the password in it. Run \
             `pmoves-secrets rotate-passwords --env-file {}` to resolve it (it finds out which password the database \
             accepts and finishes or discards the rotation)",
            pending.display(),
            path.display()
        ),
    ))
}

// ----------------------------------------------------------------------------------- --db

/// The twelve Supabase roles (SPEC §2). `--db` logs in as those of them that have LOGIN.
use crate::rotate::ROTATED_ROLES as SUPABASE_ROLES;

/// The roles of the twelve that have LOGIN on the supabase/postgres image. Tried when the admin
/// login fails and `pg_roles` cannot be read.
const STOCK_LOGIN_ROLES: [&str; 8] = [
    "authenticator",
    "pgbouncer",
    "postgres",
    "supabase_admin",
    "supabase_auth_admin",
    "supabase_functions_admin",
    "supabase_replication_admin",
    "supabase_storage_admin",
];

fn stock_login_roles() -> Vec<String> {
    STOCK_LOGIN_ROLES.iter().map(|r| (*r).to_owned()).collect()
}

/// Whether the role list came from the server or is the stock guess; it changes what a failed
/// login can mean.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RoleSource {
    Listed,
    Stock,
}

/// `--db`: resolves the target as `rotate-passwords` does, then checks logins and analytics.
fn audit_database(args: &CheckArgs, env: &EnvFile, values: &Values, ui: &Ui) -> Result<Vec<Finding>> {
    let Some(password) = values.get("POSTGRES_PASSWORD").map(|p| Secret::new(p.to_owned())) else {
        return Ok(vec![Finding::error(
            code::DB_NOT_CHECKED,
            Some("POSTGRES_PASSWORD"),
            "is missing or empty, so --db had no password to log in with and checked nothing".to_owned(),
        )]);
    };
    let target = db::resolve(&args.connect, Some(env), ui)?;
    ui.detail(&format!("checking the database at {}", target.display()));
    let runtime = crate::app::runtime()?;
    Ok(runtime.block_on(audit_live(target, password, ui)))
}

/// The server part of `--db`. Every failure becomes a finding, so the file report still prints.
async fn audit_live(target: Target, password: Secret, ui: &Ui) -> Vec<Finding> {
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
            out.extend(check_logins(&target, &roles, &password, source).await);
            out.extend(check_analytics(&target, &admin, &password, ui).await);
        }
        Err(err) if is_auth_failure(&err) => {
            ui.warn(&format!("{err}; the LOGIN roles cannot be listed, so the stock Supabase roles are tried"));
            let uses_env_password = target.password().is_some_and(|p| p == password);
            if !(uses_env_password && STOCK_LOGIN_ROLES.contains(&target.user())) {
                out.push(Finding::error(code::DB_LOGIN_FAILED, None, format!("{err}")));
            }
            out.extend(check_logins(&target, &stock_login_roles(), &password, RoleSource::Stock).await);
        }
        Err(err) => {
            let code = if is_server_refusal(&err) { code::DB_CONNECT_FAILED } else { code::DB_UNREACHABLE };
            out.push(Finding::error(code, None, format!("{err}; the database was not checked")));
        }
    }
    out
}

/// The server's SQLSTATE, as `db::describe` appends it: `message (28P01)`.
fn sqlstate_of(err: &Error) -> Option<&str> {
    let Error::Connect { reason, .. } = err else { return None };
    let start = reason.find(" (")? + 2;
    let code = reason.get(start..start + 5)?;
    (reason.get(start + 5..start + 6) == Some(")") && code.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(code)
}

/// 28P01 is a rejected password; 28000 an unknown role or no `pg_hba.conf` entry. Under SCRAM
/// the server answers 28P01 for an absent role too, so neither can be told apart here.
fn is_auth_failure(err: &Error) -> bool {
    matches!(sqlstate_of(err), Some("28P01" | "28000"))
}

/// Any other SQLSTATE means the server answered (unknown database, too many connections...).
fn is_server_refusal(err: &Error) -> bool {
    sqlstate_of(err).is_some()
}

fn no_supabase_roles(target: &Target) -> Finding {
    Finding::warning(
        code::DB_NO_SUPABASE_ROLES,
        None,
        format!(
            "none of the Supabase roles can log in on {}; is POSTGRES_HOST / POSTGRES_PORT (or --db-url) the stack's database?",
            target.host_port()
        ),
    )
}

/// The Supabase roles with `rolcanlogin`, by name.
async fn login_roles(admin: &tokio_postgres::Client) -> std::result::Result<Vec<String>, String> {
    let rows = admin
        .query(
            "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolcanlogin AND rolname = ANY($1) ORDER BY rolname",
            &[&SUPABASE_ROLES.as_slice()],
        )
        .await
        .map_err(|e| db::describe(&e))?;
    rows.iter().map(|row| row.try_get::<_, String>(0).map_err(|e| db::describe(&e))).collect()
}

/// Logs in as every role with `POSTGRES_PASSWORD`, all at once (each login is a network round
/// trip plus a SCRAM exchange; a dozen in sequence is noticeably slow over a tunnel).
async fn check_logins(target: &Target, roles: &[String], password: &Secret, source: RoleSource) -> Vec<Finding> {
    let mut set = tokio::task::JoinSet::new();
    for role in roles {
        let login = target.as_login(role, password);
        let role = role.clone();
        set.spawn(async move {
            let outcome = login.try_login().await;
            (role, outcome)
        });
    }
    let mut results = Vec::with_capacity(roles.len());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(result) => results.push(result),
            Err(e) => {
                results.push(("(unknown role)".to_owned(), Err(format!("the login attempt did not finish: {e}"))))
            }
        }
    }
    results.sort_by(|a, b| a.0.cmp(&b.0));
    results
        .into_iter()
        .filter_map(|(role, outcome)| outcome.err().map(|reason| login_failed(target, &role, &reason, source)))
        .collect()
}

fn login_failed(target: &Target, role: &str, reason: &str, source: RoleSource) -> Finding {
    let message = match source {
        RoleSource::Listed => format!(
            "is not accepted for LOGIN role {role} on {} ({reason}); the .env and the database disagree, and services \
             logging in as {role} will fail. Put the database's password in the .env, or set a new one everywhere with \
             `pmoves-secrets rotate-passwords`",
            target.host_port()
        ),
        RoleSource::Stock => format!(
            "is not accepted for role {role} on {} ({reason}); either the password is wrong or the role does not exist \
             there (under SCRAM both look the same): the LOGIN roles could not be listed, so the stock Supabase roles \
             were tried",
            target.host_port()
        ),
    };
    Finding::error(code::DB_LOGIN_FAILED, Some("POSTGRES_PASSWORD"), message)
}

/// Logflare's postgres backend keeps its own copy of the password in a URL. It lives in
/// `_supabase` on current stacks and in the main database on older ones; the first database
/// that has the table is the one analytics uses.
async fn check_analytics(target: &Target, admin: &tokio_postgres::Client, password: &Secret, ui: &Ui) -> Vec<Finding> {
    if target.dbname() != "_supabase" {
        match target.in_database("_supabase").connect().await {
            Ok(client) => match analytics_in(&client, "_supabase", password).await {
                Ok(Some(findings)) => return findings,
                Ok(None) => {}
                Err(reason) => return vec![analytics_not_checked("_supabase", &reason)],
            },
            Err(err) => ui.detail(&format!("no _supabase database to check ({err})")),
        }
    }
    match analytics_in(admin, target.dbname(), password).await {
        Ok(Some(findings)) => findings,
        Ok(None) => {
            ui.detail("no _analytics.source_backends table: analytics not checked");
            Vec::new()
        }
        Err(reason) => vec![analytics_not_checked(target.dbname(), &reason)],
    }
}

fn analytics_not_checked(dbname: &str, reason: &str) -> Finding {
    Finding::warning(
        code::ANALYTICS_NOT_CHECKED,
        None,
        format!("_analytics.source_backends in database {dbname} could not be read ({reason}); its password was not compared"),
    )
}

/// The postgres backends of one database: `None` when the table is not there. Logflare keeps the
/// URL under `config` (jsonb) today; a `url` column is read where one exists.
async fn analytics_in(
    client: &tokio_postgres::Client,
    dbname: &str,
    password: &Secret,
) -> std::result::Result<Option<Vec<Finding>>, String> {
    let columns: Vec<String> = client
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = '_analytics' AND table_name = 'source_backends'",
            &[],
        )
        .await
        .map_err(|e| db::describe(&e))?
        .iter()
        .filter_map(|row| row.try_get::<_, String>(0).ok())
        .collect();
    if columns.is_empty() {
        return Ok(None);
    }
    let Some(sql) = backends_query(&columns) else {
        return Ok(Some(Vec::new()));
    };
    let rows = client.query(sql.as_str(), &[]).await.map_err(|e| db::describe(&e))?;
    let mut out = Vec::new();
    for row in rows {
        let id: Option<String> = row.try_get(0).map_err(|e| db::describe(&e))?;
        let url: Option<String> = row.try_get(1).map_err(|e| db::describe(&e))?;
        let url = url.map(Zeroizing::new);
        let Some(stored) = url.as_deref().and_then(|u| dburl::password(u)).map(Zeroizing::new) else { continue };
        if stored.as_str() != password.expose() {
            let row_name = id.map_or_else(|| "a row".to_owned(), |id| format!("row id {id}"));
            out.push(Finding::error(
                code::ANALYTICS_PASSWORD_MISMATCH,
                Some("POSTGRES_PASSWORD"),
                format!(
                    "differs from the password in the postgres URL of {row_name} of _analytics.source_backends (database \
                     {dbname}), so Logflare cannot write logs there; `pmoves-secrets rotate-passwords` rewrites that URL \
                     together with the role passwords"
                ),
            ));
        }
    }
    Ok(Some(out))
}

/// The query for `(id, url)` of the postgres backends, built from the columns that exist
/// (the names are fixed strings, never input). `None` when no column can hold a URL (an
/// encrypted config, for instance).
fn backends_query(columns: &[String]) -> Option<String> {
    let has = |name: &str| columns.iter().any(|c| c == name);
    let url = match (has("url"), has("config")) {
        (true, true) => "coalesce(url::text, config::jsonb ->> 'url')",
        (true, false) => "url::text",
        (false, true) => "config::jsonb ->> 'url'",
        (false, false) => return None,
    };
    let id = if has("id") { "id::text" } else { "NULL::text" };
    let filter = if has("type") { "WHERE type = 'postgres'" } else { "" };
    Some(format!("SELECT {id}, {url} FROM _analytics.source_backends {filter} ORDER BY 1"))
}

// ---------------------------------------------------------------------------------- report

/// What `check` prints on stdout.
#[derive(Serialize)]
struct Report<'a> {
    ok: bool,
    env_file: String,
    errors: usize,
    warnings: usize,
    findings: &'a [Finding],
}

impl<'a> Report<'a> {
    fn new(path: &Path, findings: &'a [Finding]) -> Self {
        let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
        Report {
            ok: errors == 0,
            env_file: path.display().to_string(),
            errors,
            warnings: findings.len() - errors,
            findings,
        }
    }

    fn render(&self, format: ReportFormat) -> Result<String> {
        match format {
            ReportFormat::Text => Ok(self.text()),
            ReportFormat::Json => serde_json::to_string_pretty(self)
                .map(|mut text| {
                    text.push('\n');
                    text
                })
                .map_err(|e| Error::Output { target: "standard output".into(), reason: e.to_string() }),
        }
    }

    /// One line per finding (`severity[code] KEY: message`), then a summary.
    fn text(&self) -> String {
        let mut text = String::new();
        for f in self.findings {
            let key = match (f.key.as_deref(), f.line) {
                (Some(k), Some(line)) => format!(" {k} (line {line}):"),
                (Some(k), None) => format!(" {k}:"),
                _ => String::new(),
            };
            text.push_str(&format!("{}[{}]{key} {}\n", f.severity.as_str(), f.code, f.message));
        }
        if self.findings.is_empty() {
            text.push_str(&format!("ok: no problems found in {}\n", self.env_file));
        } else {
            text.push_str(&format!(
                "{}: {} error(s), {} warning(s) in {}\n",
                if self.ok { "ok" } else { "failed" },
                self.errors,
                self.warnings,
                self.env_file
            ));
        }
        text
    }
}

/// Runs the audit: prints the report on stdout, exits 0 without error-level findings and 1
/// with (as the silent `Error::Findings`, the report having said everything).
pub fn run(args: &CheckArgs, ui: &Ui) -> Result<ExitCode> {
    let env = EnvFile::read(&args.env_file)?;
    let values = Values::from_pairs(env.pairs());
    let mut findings = audit_values(&values, &args.env_file, secrets::unix_now().try_into().unwrap_or(i64::MAX));
    findings.extend(file_permissions(&args.env_file)?);
    findings.extend(pending_rotation(&args.env_file));
    if args.db {
        findings.extend(audit_database(args, &env, &values, ui)?);
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_750_000_000;

    fn audit(pairs: &[(&str, &str)]) -> Vec<Finding> {
        audit_values(&Values::from_pairs(pairs.iter().copied()), Path::new(".env"), NOW)
    }

    fn codes_for<'a>(findings: &'a [Finding], key: &str) -> Vec<&'a str> {
        findings.iter().filter(|f| f.key.as_deref() == Some(key)).map(|f| f.code).collect()
    }

    fn hs256(secret: &str, claims: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256).unwrap();
        format!("{input}.{sig}")
    }

    #[test]
    fn utc_dates_are_right() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1_799_535_600), "2027-01-09");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
    }

    #[test]
    fn later_duplicates_win() {
        let values = Values::from_pairs([("A", "1"), ("B", ""), ("A", "2")]);
        assert_eq!(values.get("A"), Some("2"));
        assert_eq!(values.get("B"), None);
    }

    #[test]
    fn upstream_demo_tokens_are_recognised() {
        let anon = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyAgCiAgICAicm9sZSI6ICJhbm9uIiwKICAgICJpc3MiOiAic3VwYWJhc2UtZGVtbyIsCiAgICAiaWF0IjogMTY0MTc2OTIwMCwKICAgICJleHAiOiAxNzk5NTM1NjAwCn0.dc_X5iR_VP_qT0zsiyj_I_OZ2T9FtRU2BBNWN8Bu4GE";
        assert!(is_demo_jwt(anon));
        let forged = hs256(DEMO_JWT_SECRETS[0], r#"{"role":"service_role","iss":"supabase","exp":9999999999}"#);
        assert!(is_demo_jwt(&forged));
        assert!(!is_demo_jwt(&hs256("a-real-secret-of-forty-characters-000000", r#"{"role":"anon"}"#)));
    }

    #[test]
    fn jwt_rules_report_signature_role_and_expiry() {
        let secret = "0123456789abcdef0123456789abcdef01234567";
        let expired = hs256(secret, &format!(r#"{{"role":"anon","exp":{}}}"#, NOW - 10));
        let soon = hs256(secret, &format!(r#"{{"role":"service_role","exp":{}}}"#, NOW + 86_400 * 3));
        let f = audit(&[("JWT_SECRET", secret), ("ANON_KEY", &expired), ("SERVICE_ROLE_KEY", &soon)]);
        assert_eq!(codes_for(&f, "ANON_KEY"), ["jwt-expired"]);
        assert_eq!(codes_for(&f, "SERVICE_ROLE_KEY"), ["jwt-expiring"]);
        let other = hs256("another-secret-of-at-least-32-characters!", r#"{"role":"anon"}"#);
        let f = audit(&[("JWT_SECRET", secret), ("ANON_KEY", &other), ("SERVICE_ROLE_KEY", "garbage")]);
        assert_eq!(codes_for(&f, "ANON_KEY"), ["jwt-bad-signature"]);
        assert_eq!(codes_for(&f, "SERVICE_ROLE_KEY"), ["jwt-unparsable"]);
        let swapped = hs256(secret, r#"{"role":"service_role"}"#);
        let f = audit(&[("JWT_SECRET", secret), ("ANON_KEY", &swapped)]);
        assert_eq!(codes_for(&f, "ANON_KEY"), ["jwt-wrong-role"]);
    }

    #[test]
    fn lengths_and_shapes() {
        let f = audit(&[
            ("VAULT_ENC_KEY", "0123456789abcdef0123456789abcde"),
            ("REALTIME_DB_ENC_KEY", "0123456789abcdef"),
            ("POSTGRES_PASSWORD", "p@ss"),
            ("DASHBOARD_PASSWORD", "12345678"),
        ]);
        assert_eq!(codes_for(&f, "VAULT_ENC_KEY"), ["wrong-length"]);
        assert!(codes_for(&f, "REALTIME_DB_ENC_KEY").is_empty());
        assert_eq!(codes_for(&f, "POSTGRES_PASSWORD"), ["url-breaking-password"]);
        assert_eq!(codes_for(&f, "DASHBOARD_PASSWORD"), ["digits-only-dashboard-password"]);
    }

    #[test]
    fn aliases_and_urls_compare_with_the_standard_values() {
        let f = audit(&[
            ("POSTGRES_PASSWORD", "right"),
            ("ANON_KEY", "a"),
            ("SUPABASE_ANON_KEY", "b"),
            ("SUPABASE_SERVICE_KEY", "c"),
            ("SUPABASE_URL", "http://kong:8000"),
            ("DATABASE_URL", "postgresql://postgres:wrong@db:5432/postgres"),
            ("GOOD_URL", "postgres://postgres:right@db/postgres"),
        ]);
        assert_eq!(codes_for(&f, "SUPABASE_ANON_KEY"), ["supabase-alias-mismatch"]);
        assert!(codes_for(&f, "SUPABASE_SERVICE_KEY").is_empty(), "no SERVICE_ROLE_KEY to compare with");
        assert!(codes_for(&f, "SUPABASE_URL").is_empty());
        assert_eq!(codes_for(&f, "DATABASE_URL"), ["url-password-mismatch"]);
        assert!(codes_for(&f, "GOOD_URL").is_empty());
    }

    #[test]
    fn sqlstates_are_read_from_connect_errors() {
        let err = |reason: &str| Error::Connect { target: "h:1".into(), user: "u".into(), reason: reason.into() };
        assert!(is_auth_failure(&err(
            "password authentication failed for user \"u\" (28P01); the password was rejected"
        )));
        assert!(!is_auth_failure(&err(
            "error connecting to server: Connection refused (os error 111); is the server running"
        )));
        assert!(is_server_refusal(&err("database \"x\" does not exist (3D000); check")));
        assert!(!is_server_refusal(&err("timed out (after 10s); check")));
    }

    #[test]
    fn backends_query_uses_the_columns_that_exist() {
        let cols = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let sql = backends_query(&cols(&["id", "type", "config"])).unwrap();
        assert!(sql.contains("config::jsonb ->> 'url'") && sql.contains("WHERE type = 'postgres'"), "{sql}");
        assert!(backends_query(&cols(&["url"])).unwrap().contains("url::text"));
        assert!(backends_query(&cols(&["id", "config_encrypted"])).is_none());
    }

    #[test]
    fn pending_path_appends_to_the_file_name() {
        assert_eq!(pending_path(Path::new("/s/.env")), Path::new("/s/.env.pending"));
        assert_eq!(pending_path(Path::new("prod.env")), Path::new("prod.env.pending"));
    }
}
