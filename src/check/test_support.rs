//! Helpers the rule modules' unit tests share: one audit run over literal pairs at a fixed time,
//! and the crate's HS256 test signer, so each test states only the values it is about.

use std::path::Path;

use super::{audit_values, Finding, Values};
pub(super) use crate::jwt::testing::hs256;

/// The audit's "now" in tests, so expiry findings do not depend on the clock.
pub(super) const NOW: i64 = 1_750_000_000;

pub(super) fn audit(pairs: &[(&str, &str)]) -> Vec<Finding> {
    audit_values(&Values::from_pairs(pairs.iter().copied()), Path::new(".env"), NOW)
}

pub(super) fn codes_for<'a>(findings: &'a [Finding], key: &str) -> Vec<&'a str> {
    findings.iter().filter(|f| f.key.as_deref() == Some(key)).map(|f| f.code.as_str()).collect()
}
