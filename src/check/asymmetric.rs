//! The asymmetric key set (`JWT_KEYS`, `JWT_JWKS` and the two ES256 API keys): complete, well
//! formed, no private part where everyone reads it, both halves of one key pair, and an `oct`
//! key that keeps the HS256 API keys verifying.
//!
//! Every problem here has the one fix, a new `JWT_KEYS` from which the rest is derived, so the
//! messages all end in [`AuditedFile::remedy_key_set`].

use std::collections::HashSet;

use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use serde_json::Value;
use zeroize::Zeroizing;

use super::jwt::{check_api_key, Verifier};
use super::values::AuditedFile;
use super::{Code, Finding};
use crate::jwt::{b64url_member, ec_public_jwks, kty};
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
    for (key, role) in keys::api_keys(true) {
        if let Some(token) = v.get(key) {
            check_api_key(ctx, key, token, role, &Verifier::Es256(jwks.as_deref()), out);
        }
    }
}

/// The JWKs of a key set: a JSON array (`JWT_KEYS`) or `{"keys": [...]}` (`JWT_JWKS`).
fn parse_key_set(ctx: &AuditedFile<'_>, key: &str, text: &str, out: &mut Vec<Finding>) -> Option<Vec<Value>> {
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
            out.push(Finding::new(
                Code::KeySetInvalid,
                Some(key),
                format!("is not a JSON key set (an array of JWKs, or {{\"keys\": [...]}}); {}", ctx.remedy_key_set()),
            ));
            None
        }
    }
}

/// `JWT_JWKS` is handed to every service (and may end up published): a private part there gives
/// away the signing key.
fn private_parts(ctx: &AuditedFile<'_>, jwks: &[Value], out: &mut Vec<Finding>) {
    if jwks.iter().any(|jwk| jwk.get("d").is_some()) {
        out.push(Finding::new(
            Code::JwksPrivatePart,
            Some("JWT_JWKS"),
            format!(
                "carries a private key part (\"d\"); it must hold only public keys (and the oct key); {}",
                ctx.remedy_key_set()
            ),
        ));
    }
}

/// Auth signs with the private key of `JWT_KEYS`; every other service verifies with the EC key
/// of the same `kid` in `JWT_JWKS`. If they are not the two halves of one key pair, no token
/// Auth issues is accepted anywhere.
///
/// `JWT_JWKS` is indexed once (by kid, and by public point), so a ring of many keys costs one
/// pass over each set, not a scan of `JWT_JWKS` per private key.
fn halves_agree(ctx: &AuditedFile<'_>, keys: &[Value], jwks: &[Value], out: &mut Vec<Finding>) {
    let published = PublishedKeys::index(jwks);
    for private in keys.iter().filter(|jwk| kty(jwk) == Some("EC") && jwk.get("d").is_some()) {
        let kid = private.get("kid").and_then(Value::as_str);
        // From `d` alone: the JWK parser of `p256` rejects the members Supabase adds (`kid`,
        // `key_ops`, `ext`, ...), and the public half is what is being checked anyway.
        let d = b64url_member(private, "d").map(Zeroizing::new);
        let is_p256 = private.get("crv").and_then(Value::as_str) == Some("P-256");
        let Some(secret) = d.filter(|_| is_p256).and_then(|d| p256::SecretKey::from_slice(&d).ok()) else {
            out.push(Finding::new(
                Code::KeySetInvalid,
                Some("JWT_KEYS"),
                format!("holds an EC key that is not a valid P-256 private key; {}", ctx.remedy_key_set()),
            ));
            continue;
        };
        let point = secret.public_key().to_encoded_point(false);
        let problem = if !published.has_kid(kid) {
            Some("has no EC key with the kid of the JWT_KEYS signing key, so tokens signed by Auth cannot be verified")
        } else if !published.has(kid, point.as_bytes()) {
            Some("holds an EC key whose public half is not that of the JWT_KEYS private key with the same kid")
        } else {
            None
        };
        if let Some(problem) = problem {
            out.push(Finding::new(
                Code::AsymmetricMismatch,
                Some("JWT_JWKS"),
                format!("{problem}; {}", ctx.remedy_key_set()),
            ));
        }
    }
}

/// The EC keys of `JWT_JWKS` as sets: which kids it has, and which public points (uncompressed
/// SEC1 bytes, `04 || x || y`) under which kid. A key without a `kid` may be verified with any EC
/// key, as [`crate::jwt::ec_public_jwks`] selects them.
struct PublishedKeys<'v> {
    any_ec: bool,
    kids: HashSet<&'v str>,
    points: HashSet<(Option<&'v str>, Vec<u8>)>,
}

impl<'v> PublishedKeys<'v> {
    fn index(jwks: &'v [Value]) -> Self {
        let mut index = PublishedKeys { any_ec: false, kids: HashSet::new(), points: HashSet::new() };
        for jwk in ec_public_jwks(jwks, None) {
            index.any_ec = true;
            let kid = jwk.get("kid").and_then(Value::as_str);
            index.kids.extend(kid);
            if let (Some(x), Some(y)) = (b64url_member(jwk, "x"), b64url_member(jwk, "y")) {
                let sec1: Vec<u8> = [&[0x04][..], &x, &y].concat();
                index.points.insert((None, sec1.clone()));
                if kid.is_some() {
                    index.points.insert((kid, sec1));
                }
            }
        }
        index
    }

    /// Whether a token with `kid` has any EC key to be verified with.
    fn has_kid(&self, kid: Option<&str>) -> bool {
        match kid {
            Some(kid) => self.kids.contains(kid),
            None => self.any_ec,
        }
    }

    /// Whether the point `sec1` is published under `kid` (anywhere, for no kid).
    fn has(&self, kid: Option<&str>, sec1: &[u8]) -> bool {
        self.points.contains(&(kid, sec1.to_vec()))
    }
}

/// Services that verify with the key set still accept the HS256 API keys only through its `oct`
/// key, which must therefore be exactly `JWT_SECRET`.
fn oct_key(ctx: &AuditedFile<'_>, key: &str, set: &[Value], out: &mut Vec<Finding>) {
    let Some(secret) = ctx.values.get("JWT_SECRET") else { return };
    let octs: Vec<&Value> = set.iter().filter(|jwk| kty(jwk) == Some("oct")).collect();
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
    let matches =
        |jwk: &&Value| b64url_member(jwk, "k").map(Zeroizing::new).is_some_and(|k| k.as_slice() == secret.as_bytes());
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
