//! `rotate-keys revoke`: the previous key leaves both sets, so the tokens it signed stop
//! verifying everywhere. Refused less than `JWT_EXPIRY` + 15 minutes after `promote` (its user
//! sessions are still valid) unless `--force`.

use std::path::Path;

use super::{load, refused, value, Plan};
use crate::envfile::EnvFile;
use crate::error::Result;
use crate::keyring::{self, KeyState, RingKey, KEYS_KEY};
use crate::secrets::Secret;

pub(super) fn plan(file: &EnvFile, path: &Path, now: u64, force: bool) -> Result<Plan> {
    let mut ring = load::ring(file, path)?;
    let previous = ring.in_state(KeyState::Previous);
    if previous.is_empty() {
        return Err(refused(
            path,
            KEYS_KEY,
            "has no previous key to revoke (a key becomes previous when `rotate-keys promote` replaces it)".into(),
        ));
    }
    let expiry = keyring::jwt_expiry_secs(value(file, "JWT_EXPIRY"));
    let ready = |key: &RingKey| key.since.is_some_and(|since| now >= keyring::revocable_at(since, expiry));
    let (going, staying): (Vec<RingKey>, Vec<RingKey>) = previous.into_iter().partition(|k| force || ready(k));
    if going.is_empty() {
        let reasons: Vec<String> = staying.iter().map(|k| wait_reason(k, now, expiry)).collect();
        return Err(refused(
            path,
            KEYS_KEY,
            format!(
                "{}; revoking earlier logs out the users whose sessions it signed. Wait, or pass --force to accept that",
                reasons.join("; ")
            ),
        ));
    }
    let mut warnings = Vec::new();
    if force {
        for key in going.iter().filter(|k| !ready(k)) {
            warnings.push(format!("--force: {}; its users are logged out now", wait_reason(key, now, expiry)));
        }
    }
    warnings.push(
        "tokens signed by the revoked key stop verifying, ANON_KEY_ASYMMETRIC / SERVICE_ROLE_KEY_ASYMMETRIC from \
         before the last promotion included: every client must already use the new ones"
            .into(),
    );
    let kids: Vec<String> = going.iter().map(|k| k.kid.clone()).collect();
    ring.revoke(&kids);
    ring.tidy_record();
    let mut lines: Vec<String> =
        kids.iter().map(|kid| format!("key {kid}: previous -> removed from JWT_KEYS and JWT_JWKS")).collect();
    lines.extend(staying.iter().map(|k| format!("key {}: stays previous ({})", k.kid, wait_reason(k, now, expiry))));
    lines.extend(ring.in_state(KeyState::Current).iter().map(|k| format!("key {}: stays current (signing)", k.kid)));
    lines.extend(ring.in_state(KeyState::Standby).iter().map(|k| format!("key {}: stays standby", k.kid)));
    lines.push("the HS256 oct key of JWT_SECRET stays in both sets".into());
    Ok(Plan {
        lines,
        warnings,
        values: ring.render().into_iter().map(|(k, v)| (k, Secret::new(v))).collect(),
        question: format!("Revoke {} in {}?", kids.join(", "), path.display()),
        afterwards: Vec::new(),
    })
}

/// Why `key` may not be revoked yet, with when it may.
fn wait_reason(key: &RingKey, now: u64, expiry: u64) -> String {
    match key.since {
        Some(since) => {
            let at = keyring::revocable_at(since, expiry);
            format!(
                "key {} signed sessions until {}, which stay valid until {} (JWT_EXPIRY {} s + 15 minutes){}",
                key.kid,
                keyring::utc_time(since),
                keyring::utc_time(at),
                expiry,
                if at > now { format!(", in {}", keyring::human_duration(at - now)) } else { String::new() }
            )
        }
        None => format!(
            "key {} has no recorded promotion time (JWT_KEYS_STATE), so its sessions may still be valid",
            key.kid
        ),
    }
}
