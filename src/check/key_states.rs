//! The states of the signing keys (SPEC §7): the asymmetric API keys signed by the signing key,
//! the two waits an operator can forget (a previous key past its revoke time, a standby key
//! older than a week) and a record of states that disagrees with the key sets. The model is
//! [`crate::keyring`], the one `rotate-keys` writes through.
//!
//! Runs only when both sets are readable JSON. The rules of the ring itself (one signer, every
//! key in `JWT_JWKS`, no duplicate kid, ...) are [`crate::keyring::KeyRing::problems`], which
//! [`super::asymmetric`] reports.

use super::values::AuditedFile;
use super::{Code, Finding};
use crate::clock;
use crate::jwt::Jwt;
use crate::keyring::{self, KeyRing, KeyState, RingKey, JWKS_KEY, KEYS_KEY, STATE_KEY};

/// The key-state rules; one call from the audit.
pub(super) fn key_states(ctx: &AuditedFile<'_>, out: &mut Vec<Finding>) {
    let v = ctx.values;
    let Ok(ring) = KeyRing::parse(v.get(KEYS_KEY), v.get(JWKS_KEY), v.get(STATE_KEY)) else { return };
    let keys = ring.ec_keys();
    if keys.is_empty() {
        return;
    }
    api_keys_signed_by_the_signer(ctx, &ring, &keys, out);
    forgotten_waits(ctx, &keys, out);
    record_agrees(ctx, &ring, out);
}

/// A token whose kid is no key of the ring gets `jwt-bad-signature` from the API-key rules;
/// here, one signed by a key of the ring that is not (or no longer) the signing key.
fn api_keys_signed_by_the_signer(ctx: &AuditedFile<'_>, ring: &KeyRing, keys: &[RingKey], out: &mut Vec<Finding>) {
    let current = ring.in_state(KeyState::Current);
    let [current] = current.as_slice() else { return };
    for (key, _) in keyring::api_keys() {
        let Some(jwt) = ctx.values.get(key).and_then(Jwt::parse) else { continue };
        let Some(kid) = jwt.header.get("kid").and_then(serde_json::Value::as_str) else { continue };
        let Some(signer) = keys.iter().find(|k| k.kid == kid && k.kid != current.kid) else { continue };
        out.push(Finding::new(
            Code::ApiKeyNotSigningKey,
            Some(key),
            format!(
                "is signed by the {} key {:?} rather than by the signing key {:?}, so it stops working when that key \
                 is revoked; re-mint it with `{}`",
                signer.state.as_str(),
                signer.kid,
                current.kid,
                ctx.regenerate(key)
            ),
        ));
    }
}

/// A previous key kept past its revoke time, a standby key older than a week.
fn forgotten_waits(ctx: &AuditedFile<'_>, keys: &[RingKey], out: &mut Vec<Finding>) {
    let now = u64::try_from(ctx.now).unwrap_or(0);
    let expiry = keyring::jwt_expiry_secs(ctx.values.get("JWT_EXPIRY"));
    let path = ctx.path.display();
    for key in keys {
        let message = match (key.state, key.since) {
            (KeyState::Previous, Some(since)) if now > keyring::revocable_at(since, expiry) => format!(
                "still keeps previous key {:?} for verification, though every session it signed expired by {}; \
                 revoke it with `pmoves-secrets rotate-keys revoke --env-file {path}`",
                key.kid,
                clock::utc_time(keyring::revocable_at(since, expiry)),
            ),
            (KeyState::Standby, Some(since)) if now > since.saturating_add(keyring::STANDBY_STALE_SECS) => format!(
                "has had key {:?} on standby since {}, over a week: finish the rotation with `pmoves-secrets \
                 rotate-keys promote --env-file {path}`, or remove the key",
                key.kid,
                clock::utc_time(since),
            ),
            _ => continue,
        };
        let code = if key.state == KeyState::Previous { Code::PreviousKeyOverdue } else { Code::StandbyKeyStale };
        out.push(Finding::new(code, Some(KEYS_KEY), message));
    }
}

/// `JWT_KEYS_STATE` readable, and naming only keys in the state it records for them.
fn record_agrees(ctx: &AuditedFile<'_>, ring: &KeyRing, out: &mut Vec<Finding>) {
    let disagreements = ring.record_disagreements();
    if !ring.record_unreadable && disagreements.is_empty() {
        return;
    }
    let what = if ring.record_unreadable {
        "is not a readable record of key states".to_owned()
    } else {
        let kids: Vec<String> = disagreements.iter().map(|kid| format!("{kid:?}")).collect();
        format!("records states for keys that JWT_KEYS does not hold in that state ({})", kids.join(", "))
    };
    out.push(Finding::new(
        Code::KeyStateRecord,
        Some(STATE_KEY),
        format!(
            "{what}, so rotate-keys treats those keys' times as unknown and asks for --force; the key sets \
             themselves decide what the services do; see `pmoves-secrets rotate-keys status --env-file {}`",
            ctx.path.display()
        ),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::test_support::{audit, codes_for, NOW};
    use crate::secrets::EcKey;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use serde_json::{json, Value};

    /// A complete asymmetric `.env` whose ring is `ring`, with API keys signed by `signer`.
    fn pairs(ring: &KeyRing, signer: &EcKey, secret: &str) -> Vec<(String, String)> {
        let iat = u64::try_from(NOW).unwrap();
        let mut out: Vec<(String, String)> = ring.render().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        out.push(("JWT_SECRET".into(), secret.into()));
        for (key, role) in keyring::api_keys() {
            out.push((key.into(), signer.mint_es256(key, role, iat).unwrap().expose().to_owned()));
        }
        out
    }

    /// The findings of this module's rules (the rest of the audit reports the secrets these
    /// partial files lack).
    fn run(pairs: &[(String, String)]) -> Vec<Finding> {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        audit(&refs).into_iter().filter(|f| state_codes(std::slice::from_ref(f)).len() == 1).collect()
    }

    fn state_codes(findings: &[Finding]) -> Vec<&'static str> {
        let ours = [
            Code::SigningKeyCount,
            Code::JwksMissingVerifyKey,
            Code::AsymmetricMismatch,
            Code::ApiKeyNotSigningKey,
            Code::PreviousKeyOverdue,
            Code::StandbyKeyStale,
            Code::KeyStateRecord,
        ];
        findings.iter().map(|f| f.code).filter(|c| ours.contains(c)).map(Code::as_str).collect()
    }

    /// A ring with one current key, and that key.
    fn fresh(secret: &str) -> (KeyRing, EcKey) {
        let ec = EcKey::generate();
        let oct = json!({"kty":"oct","k":URL_SAFE_NO_PAD.encode(secret),"alg":"HS256"});
        let keys = json!([ec.private_jwk(&["sign", "verify"]).unwrap(), oct]).to_string();
        let jwks = json!({"keys":[ec.public_jwk().unwrap(), oct]}).to_string();
        (KeyRing::parse(Some(&keys), Some(&jwks), None).unwrap(), ec)
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn every_state_of_a_rotation_passes() {
        let now = u64::try_from(NOW).unwrap();
        let (mut ring, old) = fresh(SECRET);
        assert_eq!(state_codes(&run(&pairs(&ring, &old, SECRET))), Vec::<&str>::new());
        let new = EcKey::generate();
        ring.add_standby(
            crate::jwt::Jwk::from_value(&new.private_jwk(&["verify"]).unwrap()).unwrap(),
            now - 60,
            crate::keyring::Clock::File,
        );
        let f = run(&pairs(&ring, &old, SECRET));
        assert!(f.is_empty(), "{f:?}");
        ring.promote(new.kid(), now - 30, crate::keyring::Clock::File);
        let f = run(&pairs(&ring, &new, SECRET));
        assert!(f.is_empty(), "{f:?}");
        ring.revoke(&[old.kid().to_owned()]);
        let f = run(&pairs(&ring, &new, SECRET));
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn two_signing_keys_are_an_error() {
        let (mut ring, old) = fresh(SECRET);
        let new = EcKey::generate();
        ring.add_standby(
            crate::jwt::Jwk::from_value(&new.private_jwk(&["sign", "verify"]).unwrap()).unwrap(),
            1,
            crate::keyring::Clock::File,
        );
        let f = run(&pairs(&ring, &old, SECRET));
        assert_eq!(codes_for(&f, "JWT_KEYS"), ["signing-key-count"]);
        assert_eq!(f[0].severity, super::super::Severity::Error);
    }

    #[test]
    fn no_signing_key_is_an_error() {
        let (mut ring, old) = fresh(SECRET);
        let stand_in = EcKey::generate();
        ring.add_standby(
            crate::jwt::Jwk::from_value(&stand_in.private_jwk(&["verify"]).unwrap()).unwrap(),
            1,
            crate::keyring::Clock::File,
        );
        // Promote a kid that does not exist: the current key is demoted, nobody signs.
        ring.promote("no-such-kid", 1, crate::keyring::Clock::File);
        let f = run(&pairs(&ring, &old, SECRET));
        assert!(state_codes(&f).contains(&"signing-key-count"), "{f:?}");
    }

    #[test]
    fn a_previous_key_missing_from_jwks_is_an_error() {
        let (mut ring, old) = fresh(SECRET);
        let new = EcKey::generate();
        ring.add_standby(
            crate::jwt::Jwk::from_value(&new.private_jwk(&["verify"]).unwrap()).unwrap(),
            1,
            crate::keyring::Clock::File,
        );
        ring.promote(new.kid(), 2, crate::keyring::Clock::File);
        let mut p = pairs(&ring, &new, SECRET);
        // JWT_JWKS with only the new key and the oct key.
        let jwks: Value = serde_json::from_str(&p[1].1).unwrap();
        let kept: Vec<&Value> = jwks["keys"].as_array().unwrap().iter().filter(|k| k["kid"] != old.kid()).collect();
        p[1].1 = json!({ "keys": kept }).to_string();
        let f = run(&p);
        // The previous key keeps its private part: its public half is missing from JWT_JWKS.
        assert_eq!(codes_for(&f, "JWT_JWKS"), ["asymmetric-mismatch"], "{f:?}");
        assert!(f[0].message.contains(old.kid()));
    }

    #[test]
    fn api_keys_signed_by_another_key_than_the_signer_are_errors() {
        let (mut ring, old) = fresh(SECRET);
        let new = EcKey::generate();
        ring.add_standby(
            crate::jwt::Jwk::from_value(&new.private_jwk(&["verify"]).unwrap()).unwrap(),
            1,
            crate::keyring::Clock::File,
        );
        ring.promote(new.kid(), 2, crate::keyring::Clock::File);
        // Still the old tokens: they verify (the old key is previous), but revoke would break them.
        let f = run(&pairs(&ring, &old, SECRET));
        assert_eq!(codes_for(&f, "ANON_KEY_ASYMMETRIC"), ["api-key-not-signing-key"], "{f:?}");
        assert_eq!(codes_for(&f, "SERVICE_ROLE_KEY_ASYMMETRIC"), ["api-key-not-signing-key"]);
    }

    #[test]
    fn a_previous_key_past_its_revoke_time_is_a_warning() {
        let now = u64::try_from(NOW).unwrap();
        for (promoted, expected) in [(now - 3600 - 900, vec![]), (now - 3600 - 901, vec!["previous-key-overdue"])] {
            let (mut ring, _) = fresh(SECRET);
            let new = EcKey::generate();
            ring.add_standby(
                crate::jwt::Jwk::from_value(&new.private_jwk(&["verify"]).unwrap()).unwrap(),
                1,
                crate::keyring::Clock::File,
            );
            ring.promote(new.kid(), promoted, crate::keyring::Clock::File);
            let f = run(&pairs(&ring, &new, SECRET));
            assert_eq!(codes_for(&f, "JWT_KEYS"), expected, "{f:?}");
            assert!(f.iter().all(|f| f.severity == super::super::Severity::Warning));
        }
    }

    #[test]
    fn a_standby_key_older_than_a_week_is_a_warning() {
        let now = u64::try_from(NOW).unwrap();
        let (mut ring, old) = fresh(SECRET);
        let new = EcKey::generate();
        ring.add_standby(
            crate::jwt::Jwk::from_value(&new.private_jwk(&["verify"]).unwrap()).unwrap(),
            now - 7 * 86_400,
            crate::keyring::Clock::File,
        );
        assert!(run(&pairs(&ring, &old, SECRET)).is_empty());
        let (mut ring, old) = fresh(SECRET);
        ring.add_standby(
            crate::jwt::Jwk::from_value(&new.private_jwk(&["verify"]).unwrap()).unwrap(),
            now - 7 * 86_400 - 1,
            crate::keyring::Clock::File,
        );
        let f = run(&pairs(&ring, &old, SECRET));
        assert_eq!(codes_for(&f, "JWT_KEYS"), ["standby-key-stale"], "{f:?}");
        assert_eq!(f[0].severity, super::super::Severity::Warning);
    }

    #[test]
    fn a_record_that_disagrees_with_the_sets_is_a_warning() {
        let (ring, ec) = fresh(SECRET);
        let mut p = pairs(&ring, &ec, SECRET);
        p[2].1 = format!(r#"{{"{}":{{"state":"standby","since":1}}}}"#, ec.kid());
        assert_eq!(codes_for(&run(&p), "JWT_KEYS_STATE"), ["key-state-record"]);
        p[2].1 = "garbage".into();
        let f = run(&p);
        assert_eq!(codes_for(&f, "JWT_KEYS_STATE"), ["key-state-record"]);
        assert!(f[0].message.contains("not a readable record"));
    }
}
