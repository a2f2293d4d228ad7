//! The API keys: the checks every Supabase API key gets (shape, signature, `role`, expiry), for
//! the HS256 pair here and, through [`check_api_key`], the ES256 pair of `asymmetric`.
//!
//! Tokens are verified with the same key bytes and algorithm the services use, so a finding here
//! means a service rejects the key. Claim text reaches a message only when it cannot be a secret.

use jsonwebtoken::Algorithm;
use serde_json::Value;

use super::values::AuditedFile;
use super::{Code, Finding};
use crate::jwt::{decoding_key_of, ec_public_jwks, Jwt};
use crate::stack::keys;

/// How a token's signature is checked.
pub(super) enum Verifier<'a> {
    /// HS256 with `JWT_SECRET`; `None` when the file has none (already reported as missing).
    Hs256(Option<&'a str>),
    /// ES256 with the EC keys of `JWT_JWKS`; `None` when it is missing or unreadable.
    Es256(Option<&'a [Value]>),
}

/// Claim text from the file is shown only when it is a plain role-like name, so a pasted
/// secret in a claim can never reach the report.
pub(super) fn printable_claim(text: &str) -> String {
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
pub(super) fn hs256_api_keys(ctx: &AuditedFile<'_>, out: &mut Vec<Finding>) {
    let secret = ctx.values.get("JWT_SECRET");
    for (key, role) in keys::api_keys(false) {
        if let Some(token) = ctx.values.get(key) {
            check_api_key(ctx, key, token, role, &Verifier::Hs256(secret), out);
        }
    }
}

/// The checks every Supabase API key gets: shape, signature, role, expiry.
pub(super) fn check_api_key(
    ctx: &AuditedFile<'_>,
    key: &str,
    token: &str,
    role: &str,
    verifier: &Verifier<'_>,
    out: &mut Vec<Finding>,
) {
    let Some(jwt) = Jwt::parse(token) else {
        out.push(Finding::new(
            Code::JwtUnparsable,
            Some(key),
            format!("is not a JWT (three base64url parts with a JSON header and payload); {}", ctx.remedy(key)),
        ));
        return;
    };
    if let Some(problem) = signature_problem(&jwt, verifier) {
        out.push(Finding::new(Code::JwtBadSignature, Some(key), format!("{problem}; {}", ctx.remedy(key))));
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

fn check_role(ctx: &AuditedFile<'_>, key: &str, jwt: &Jwt<'_>, role: &str, out: &mut Vec<Finding>) {
    let actual = jwt.claims.get("role").and_then(Value::as_str);
    if actual == Some(role) {
        return;
    }
    let shown = actual.map_or_else(|| "no role claim".to_owned(), |r| format!("role {}", printable_claim(r)));
    out.push(Finding::new(
        Code::JwtWrongRole,
        Some(key),
        format!("carries {shown} but must carry role \"{role}\"; {}", ctx.remedy(key)),
    ));
}

/// Thirty days: enough warning to re-mint and roll out new keys before requests start failing.
const EXPIRY_WARNING_SECS: i64 = 30 * 24 * 3600;

/// Tokens without `exp` never expire for the services, so they pass.
fn check_expiry(ctx: &AuditedFile<'_>, key: &str, jwt: &Jwt<'_>, out: &mut Vec<Finding>) {
    let Some(exp) = jwt.claims.get("exp").and_then(Value::as_f64) else { return };
    // `as` saturates: an absurd exp becomes i64::MAX/MIN instead of wrapping.
    let exp = exp as i64;
    let date = crate::clock::utc_date(exp);
    if exp <= ctx.now {
        out.push(Finding::new(
            Code::JwtExpired,
            Some(key),
            format!("expired on {date}, so every request made with it is rejected; {}", ctx.remedy(key)),
        ));
    } else if exp - ctx.now < EXPIRY_WARNING_SECS {
        let days = (exp - ctx.now) / 86_400;
        out.push(Finding::new(
            Code::JwtExpiring,
            Some(key),
            format!("expires on {date} (in {days} day(s)); {} and roll it out before then", ctx.remedy(key)),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::check::test_support::{audit, codes_for, hs256, NOW};

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
}
