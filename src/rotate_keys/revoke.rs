//! `rotate-keys revoke`: the previous key leaves both sets, so the tokens it signed stop
//! verifying everywhere. Refused less than `JWT_EXPIRY` + 15 minutes after `promote` (its user
//! sessions are still valid) unless `--force`.

use std::path::Path;

use super::{load, refused, value, Plan};
use crate::clock;
use crate::envfile::EnvFile;
use crate::error::Result;
use crate::keyring::{self, KeyState, RingKey, KEYS_KEY};
use crate::secret::Secret;

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
                clock::utc_time(since),
                clock::utc_time(at),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::KeyRing;
    use crate::secrets::EcKey;
    use serde_json::json;

    /// An `.env` whose ring went through two promotions, at `first` and `second`.
    fn twice_promoted(first: u64, second: u64) -> (EnvFile, [String; 3]) {
        let (old, a, b) = (EcKey::generate(), EcKey::generate(), EcKey::generate());
        let oct = json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"});
        let keys = json!([old.private_jwk(&["sign", "verify"]).unwrap(), oct]).to_string();
        let jwks = json!({"keys": [old.public_jwk().unwrap(), oct]}).to_string();
        let mut ring = KeyRing::parse(Some(&keys), Some(&jwks), None).unwrap();
        ring.add_standby(a.private_jwk(&["verify"]).unwrap(), a.public_jwk().unwrap(), 0);
        ring.promote(a.kid(), first);
        ring.add_standby(b.private_jwk(&["verify"]).unwrap(), b.public_jwk().unwrap(), 0);
        ring.promote(b.kid(), second);
        let text: String = ring.render().iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
        let file = EnvFile::parse(&(text + "JWT_EXPIRY=3600\n"), None).unwrap();
        (file, [old.kid().to_owned(), a.kid().to_owned(), b.kid().to_owned()])
    }

    #[test]
    fn only_the_previous_keys_past_their_wait_are_revoked() {
        let now = 100_000;
        let (file, [old, a, _]) = twice_promoted(now - 3600 - 900, now - 60);
        let plan = plan(&file, Path::new(".env"), now, false).unwrap();
        let keys = plan.values.iter().find(|(k, _)| *k == "JWT_KEYS").unwrap().1.expose().to_owned();
        assert!(!keys.contains(&old), "the key past its wait goes");
        assert!(keys.contains(&a), "the key promoted away a minute ago stays");
        assert!(plan.lines.iter().any(|l| l.contains(&a) && l.contains("stays previous")), "{:?}", plan.lines);
        // With --force both go.
        let plan = super::plan(&file, Path::new(".env"), now, true).unwrap();
        let keys = plan.values.iter().find(|(k, _)| *k == "JWT_KEYS").unwrap().1.expose().to_owned();
        assert!(!keys.contains(&old) && !keys.contains(&a));
    }

    #[test]
    fn nothing_past_its_wait_is_a_refusal_saying_when() {
        let now = 100_000;
        let (file, [_, a, _]) = twice_promoted(now - 120, now - 60);
        let err = plan(&file, Path::new(".env"), now, false).unwrap_err().to_string();
        assert!(err.contains(&a) && err.contains("--force") && err.contains("nothing was changed"), "{err}");
    }
}
