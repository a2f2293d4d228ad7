//! The finding codes: one table, from which the enum, the list of every code, each code's
//! severity and its stable name are generated, so a code is written exactly once (the README's
//! list is tested against it).

use serde::{Serialize, Serializer};

use super::Severity;

/// Generates [`Code`] from `Variant = "kebab-name", Severity;` rows.
macro_rules! finding_codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal, $severity:ident; )*) => {
        /// The stable finding codes. CI pipelines match on their kebab-case names (`missing-secret`,
        /// ...), so a code never changes name or meaning; each knows its severity.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Code {
            /// Every code, in the order they are documented.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The severity fixed for this code.
            pub fn severity(self) -> Severity {
                match self {
                    $(Code::$variant => Severity::$severity,)*
                }
            }

            /// The stable name CI matches on.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }
        }
    };
}

finding_codes! {
    /// error: a required secret is absent or empty.
    MissingSecret = "missing-secret", Error;
    /// error: a value published in upstream's `.env.example` (or the Supabase CLI's demo set).
    DemoValue = "demo-value", Error;
    /// error: a placeholder of upstream's `.env.example` that stands for a secret (`your16charkey123`, …).
    PlaceholderValue = "placeholder-value", Error;
    /// error: a secret a strength estimator finds too easy to guess for its key.
    WeakSecret = "weak-secret", Error;
    /// error: a key a service reads with a fixed or minimum length.
    WrongLength = "wrong-length", Error;
    /// error: a JWT that is not three base64url JSON parts.
    JwtUnparsable = "jwt-unparsable", Error;
    /// error: a JWT not signed by the key the services verify it with.
    JwtBadSignature = "jwt-bad-signature", Error;
    /// error: an API key whose `role` claim is not the one its variable stands for.
    JwtWrongRole = "jwt-wrong-role", Error;
    /// error: an API key past its `exp`.
    JwtExpired = "jwt-expired", Error;
    /// warning: an API key that expires within 30 days.
    JwtExpiring = "jwt-expiring", Warning;
    /// error: `POSTGRES_PASSWORD` has characters that break `postgres://` URLs.
    UrlBreakingPassword = "url-breaking-password", Error;
    /// error: a digits-only `DASHBOARD_PASSWORD`, which Kong's basic-auth rejects.
    DigitsOnlyDashboardPassword = "digits-only-dashboard-password", Error;
    /// error: `JWT_KEYS` or `JWT_JWKS` is not a JSON key set (or holds an unusable EC key).
    KeySetInvalid = "key-set-invalid", Error;
    /// error: the public key in `JWT_JWKS` is not the public half of the `JWT_KEYS` signing key.
    AsymmetricMismatch = "asymmetric-mismatch", Error;
    /// error: `JWT_JWKS` carries a private key part (`d`).
    JwksPrivatePart = "jwks-private-part", Error;
    /// error: the `oct` key of `JWT_KEYS` / `JWT_JWKS` is not `JWT_SECRET`.
    OctKeyMismatch = "oct-key-mismatch", Error;
    /// warning: `JWT_KEYS` / `JWT_JWKS` has no `oct` key, so HS256 API keys stop verifying.
    OctKeyMissing = "oct-key-missing", Warning;
    /// error: a `SUPABASE_`-prefixed copy of a standard variable holds another value.
    SupabaseAliasMismatch = "supabase-alias-mismatch", Error;
    /// error: a connection URL in the file whose password is not `POSTGRES_PASSWORD`.
    UrlPasswordMismatch = "url-password-mismatch", Error;
    /// warning: the `.env` can be read or written by group or others.
    FilePermissions = "file-permissions", Warning;
    /// warning: `<env>.pending` is left over from an interrupted rotation.
    PendingRotation = "pending-rotation", Warning;
    /// warning: a temporary copy of the `.env` left by a killed write (it holds the secrets).
    LeftoverTempFile = "leftover-temp-file", Warning;
    /// error (`--db`): nothing to log in with, so no login could be tested.
    DbNotChecked = "db-not-checked", Error;
    /// error (`--db`): the server cannot be reached.
    DbUnreachable = "db-unreachable", Error;
    /// error (`--db`): the server answered but refused the connection for another reason.
    DbConnectFailed = "db-connect-failed", Error;
    /// error (`--db`): a role does not accept `POSTGRES_PASSWORD`.
    DbLoginFailed = "db-login-failed", Error;
    /// warning (`--db`): none of the Supabase roles can log in there.
    DbNoSupabaseRoles = "db-no-supabase-roles", Warning;
    /// error (`--db`): Logflare's postgres backend URL has another password.
    AnalyticsPasswordMismatch = "analytics-password-mismatch", Error;
    /// warning (`--db`): the analytics backends could not be read.
    AnalyticsNotChecked = "analytics-not-checked", Warning;
    /// error: `JWT_KEYS` has no key, or more than one, with `sign` in `key_ops`.
    SigningKeyCount = "signing-key-count", Error;
    /// error: a verify-only key of `JWT_KEYS` is not in `JWT_JWKS`.
    JwksMissingVerifyKey = "jwks-missing-verify-key", Error;
    /// error: an asymmetric API key whose `kid` is not the signing key's.
    ApiKeyNotSigningKey = "api-key-not-signing-key", Error;
    /// warning: a previous key kept past `JWT_EXPIRY` + 15 minutes after its promotion.
    PreviousKeyOverdue = "previous-key-overdue", Warning;
    /// warning: a key on standby for more than a week.
    StandbyKeyStale = "standby-key-stale", Warning;
    /// warning: `JWT_KEYS_STATE` is unreadable or disagrees with the key sets.
    KeyStateRecord = "key-state-record", Warning;
    /// error (`--db`): `app.settings.jwt_secret` is set in the database and differs from
    /// `JWT_SECRET`; a warning when it matches (any role can read it). The one code whose
    /// severity depends on the finding (SPEC §4); [`Code::severity`] gives the error.
    DbJwtSecretCopy = "db-jwt-secret-copy", Error;
    /// error (`--db`): Supavisor's stored pooler credentials do not decrypt under `VAULT_ENC_KEY`,
    /// or hold a password other than `POSTGRES_PASSWORD`.
    DbSupavisorCredentials = "db-supavisor-credentials", Error;
    /// error (`--db`): a Realtime tenant's JWT secret does not decrypt under
    /// `REALTIME_DB_ENC_KEY` or is not `JWT_SECRET`; a warning for the tenant Realtime re-seeds at
    /// its next start. [`Code::severity`] gives the error.
    DbRealtimeJwtSecret = "db-realtime-jwt-secret", Error;
    /// error (`--db`): a Realtime tenant's encrypted connection settings do not decrypt under
    /// `REALTIME_DB_ENC_KEY`, or its password is not `POSTGRES_PASSWORD`; a warning for the
    /// tenant Realtime re-seeds. [`Code::severity`] gives the error.
    DbRealtimeDbSettings = "db-realtime-db-settings", Error;
    /// error (`--db`): Logflare's user keeps an `api_key` other than `LOGFLARE_PUBLIC_ACCESS_TOKEN`.
    DbLogflareApiKey = "db-logflare-api-key", Error;
    /// warning (`--db`): a live Logflare access token made from an earlier `LOGFLARE_*_ACCESS_TOKEN`
    /// (Logflare replaces it at its next start).
    DbLogflareAccessToken = "db-logflare-access-token", Warning;
    /// warning (`--db`): a copy in the database could not be read or is in a format no `.env` key
    /// decrypts, so it was not compared.
    DbCopyNotChecked = "db-copy-not-checked", Warning;
    /// error (`--compose`): a secret a compose file reads, or a `${VAR:?…}`, is not set.
    ComposeUnsetSecret = "compose-unset-secret", Error;
    /// warning (`--compose`): a non-secret variable a compose file reads is not set (compose
    /// replaces it with an empty value).
    ComposeUnsetVariable = "compose-unset-variable", Warning;
    /// error (`--compose`): `${SECRET:-value}` hands a secret the value printed in the compose
    /// file, because the `.env` does not set it.
    ComposeSecretFallback = "compose-secret-fallback", Error;
    /// warning (`--compose`): such a fallback, dormant while the `.env` sets the secret.
    ComposeSecretFallbackDormant = "compose-secret-fallback-dormant", Warning;
    /// error (`--compose`): a secret written into the compose file itself.
    ComposeLiteralSecret = "compose-literal-secret", Error;
    /// error (`--compose`): a value compose cannot interpolate (`${` unclosed, a bad name).
    ComposeBadInterpolation = "compose-bad-interpolation", Error;
    /// warning (`--compose`): a `.env` key that no compose file given reads.
    UnusedEnvKey = "unused-env-key", Warning;
    /// error: a `.env` value compose cannot interpolate (`${` unclosed, a bad name), so compose
    /// refuses the whole file; or one whose references expand beyond any sensible size.
    EnvBadInterpolation = "env-bad-interpolation", Error;
    /// error: two keys of `JWT_KEYS` (or of `JWT_JWKS`) with the same `kid`.
    DuplicateKid = "duplicate-kid", Error;
    /// error: the signing key of `JWT_KEYS` is not an EC P-256 key with `alg` ES256.
    SigningKeyNotEs256 = "signing-key-not-es256", Error;
    /// error: `JWT_JWKS` holds a key `JWT_KEYS` does not (a revoked key left behind).
    JwksUnknownKey = "jwks-unknown-key", Error;
    /// error (`--compose`): an asymmetric key set in the `.env` that the compose files do not hand
    /// to a service that must read it (upstream ships those lines commented out).
    ComposeKeySetUnwired = "compose-key-set-unwired", Error;
    /// warning: a URL that keeps the default credentials a project published for its service
    /// (PMOVES.AI's NATS default, which the generated `.env` keeps so that server accepts it).
    PublishedDefaultCredential = "published-default-credential", Warning;
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The backticked finding names in `text` (flags such as `--db` and variables such as
    /// `JWT_SECRET` are not names: those start with a dash or hold capitals).
    fn names_in(text: &str) -> BTreeSet<&str> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .filter(|word| word.starts_with(|c: char| c.is_ascii_lowercase()))
            .filter(|word| word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .collect()
    }

    /// The README's list of codes ("Codes: errors …; warnings …") names every code of the
    /// table under its severity, and nothing else. `db-jwt-secret-copy` and the two Realtime
    /// codes are listed under both: their severity depends on the finding.
    #[test]
    fn the_readme_lists_exactly_the_codes_of_the_table() {
        let readme = include_str!("../../README.md");
        let start = readme.find("\nCodes: errors ").expect("the README has a \"Codes: errors\" paragraph");
        let paragraph = &readme[start..];
        let paragraph = &paragraph[..paragraph[1..].find("\n\n").map_or(paragraph.len(), |end| end + 1)];
        let (errors, warnings) = paragraph.split_once("; warnings").expect("the paragraph lists warnings");
        let of = |severity: Severity| -> BTreeSet<&str> {
            Code::ALL.iter().filter(|code| code.severity() == severity).map(|code| code.as_str()).collect()
        };
        assert_eq!(names_in(errors), of(Severity::Error), "the README's error codes");
        let mut expected_warnings = of(Severity::Warning);
        // The codes whose severity depends on the finding are listed under both.
        for code in [Code::DbJwtSecretCopy, Code::DbRealtimeJwtSecret, Code::DbRealtimeDbSettings] {
            expected_warnings.insert(code.as_str());
        }
        assert_eq!(names_in(warnings), expected_warnings, "the README's warning codes");
    }
}
