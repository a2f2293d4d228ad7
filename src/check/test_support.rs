//! Helpers the rule modules' unit tests share: one audit run over literal pairs at a fixed time,
//! and a signer for HS256 tokens, so each test states only the values it is about.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::Algorithm;

use super::{audit_values, Finding, Values};

/// The audit's "now" in tests, so expiry findings do not depend on the clock.
pub(super) const NOW: i64 = 1_750_000_000;

pub(super) fn audit(pairs: &[(&str, &str)]) -> Vec<Finding> {
    audit_values(&Values::from_pairs(pairs.iter().copied()), Path::new(".env"), NOW)
}

pub(super) fn codes_for<'a>(findings: &'a [Finding], key: &str) -> Vec<&'a str> {
    findings.iter().filter(|f| f.key.as_deref() == Some(key)).map(|f| f.code.as_str()).collect()
}

pub(super) fn hs256(secret: &str, claims: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{input}.{sig}")
}
