//! The asymmetric key set (`JWT_KEYS`, `JWT_JWKS` and the two ES256 API keys): complete, well
//! formed, a ring that obeys [`KeyRing::problems`] (the rules `rotate-keys` refuses a ring by:
//! one signer, an EC P-256 signer, no duplicate kid, both halves of every key pair, no private
//! part in `JWT_JWKS`), and an `oct` key that keeps the HS256 API keys verifying.

use super::jwt::{check_api_key, Verifier};
use super::values::AuditedFile;
use super::{Code, Finding};
use crate::jwt::{parse_jwk_array, parse_jwk_set, Jwk};
use crate::keyring::{Broken, KeyRing, Problem, JWKS_KEY, KEYS_KEY, STATE_KEY};
use crate::stack::keys;

/// Only when the file uses the asymmetric keys at all: then they must be complete and agree.
pub(super) fn asymmetric_keys(ctx: &AuditedFile<'_>, out: &mut Vec<Finding>) {
    let v = ctx.values;
    if !keys::asymmetric_core().any(|k| v.get(k).is_some()) {
        return;
    }
    for key in keys::asymmetric_core().filter(|k| v.get(k).is_none()) {
        out.push(Finding::new(
            Code::MissingSecret,
            Some(key),
            format!(
                "is missing or empty while other asymmetric keys are set, so the set is incomplete; re-mint it with `{}`",
                ctx.regenerate("JWT_KEYS")
            ),
        ));
    }
    let jwt_keys = v.get(KEYS_KEY).and_then(|text| readable(ctx, KEYS_KEY, parse_jwk_array(text), out));
    let jwks = v.get(JWKS_KEY).and_then(|text| readable(ctx, JWKS_KEY, parse_jwk_set(text).map(|(k, _)| k), out));
    if jwt_keys.is_some() && jwks.is_some() {
        if let Ok(ring) = KeyRing::parse(v.get(KEYS_KEY), v.get(JWKS_KEY), v.get(STATE_KEY)) {
            for problem in ring.problems() {
                out.push(finding_of(ctx, &problem));
            }
        }
    }
    for (key, set) in [(KEYS_KEY, &jwt_keys), (JWKS_KEY, &jwks)] {
        if let Some(set) = set {
            oct_key(ctx, key, set, out);
        }
    }
    for (key, role) in keys::api_keys(true) {
        if let Some(token) = v.get(key) {
            check_api_key(ctx, key, token, role, &Verifier::Es256(jwks.as_deref()), out);
        }
    }
}

/// The keys of a set that parsed, or a finding that it did not.
fn readable(ctx: &AuditedFile<'_>, key: &str, parsed: Option<Vec<Jwk>>, out: &mut Vec<Finding>) -> Option<Vec<Jwk>> {
    if parsed.is_none() {
        let shape = if key == KEYS_KEY { "a JSON array of JWKs, as Auth reads it" } else { "{\"keys\": [...]}" };
        out.push(Finding::new(
            Code::KeySetInvalid,
            Some(key),
            format!("is not a JSON key set ({shape}); {}", ctx.remedy_key_set()),
        ));
    }
    parsed
}

/// The finding of one broken ring rule, with the fix that keeps every key it can.
fn finding_of(ctx: &AuditedFile<'_>, problem: &Problem) -> Finding {
    let code = match problem.kind {
        Broken::InvalidKey => Code::KeySetInvalid,
        Broken::DuplicateKid => Code::DuplicateKid,
        Broken::SignerCount => Code::SigningKeyCount,
        Broken::SignerNotEs256 => Code::SigningKeyNotEs256,
        Broken::Mismatch => Code::AsymmetricMismatch,
        Broken::JwksPrivatePart => Code::JwksPrivatePart,
        Broken::JwksMissingKey => Code::JwksMissingVerifyKey,
        Broken::JwksUnknownKey => Code::JwksUnknownKey,
    };
    let fix = if problem.key == JWKS_KEY && !ctx.is_template() {
        format!(
            "rebuild it from every key of JWT_KEYS with `{}` (keeps every key and its state)",
            ctx.regenerate(JWKS_KEY)
        )
    } else if ctx.is_template() {
        ctx.remedy_key_set()
    } else {
        format!(
            "repair JWT_KEYS by hand (`pmoves-secrets rotate-keys status --env-file {}` shows each key's state), or \
             {} (this logs everyone out)",
            ctx.path.display(),
            ctx.remedy_key_set()
        )
    };
    Finding::new(code, Some(problem.key), format!("{}; {fix}", problem.message))
}

/// Services that verify with the key set still accept the HS256 API keys only through its `oct`
/// key, which must therefore be exactly `JWT_SECRET`.
fn oct_key(ctx: &AuditedFile<'_>, key: &str, set: &[Jwk], out: &mut Vec<Finding>) {
    let Some(secret) = ctx.values.get("JWT_SECRET") else { return };
    let octs: Vec<&Jwk> = set.iter().filter(|jwk| jwk.is_oct()).collect();
    if octs.is_empty() {
        out.push(Finding::new(
            Code::OctKeyMissing,
            Some(key),
            format!(
                "has no oct (HS256) key, so services verifying with it reject ANON_KEY and SERVICE_ROLE_KEY; {}",
                ctx.remedy_key_set()
            ),
        ));
        return;
    }
    let matches = |jwk: &&Jwk| jwk.oct_bytes().is_some_and(|k| k.as_slice() == secret.as_bytes());
    if !octs.iter().any(matches) {
        out.push(Finding::new(
            Code::OctKeyMismatch,
            Some(key),
            format!(
                "has an oct (HS256) key that is not JWT_SECRET, so services verifying with it reject ANON_KEY and \
                 SERVICE_ROLE_KEY; {}",
                ctx.remedy_key_set()
            ),
        ));
    }
}
