//! The states of the signing keys (SPEC §7): exactly one key Auth signs with, every key of
//! `JWT_KEYS` verifiable through `JWT_JWKS`, the asymmetric API keys signed by the signing key,
//! and the two waits an operator can forget (a previous key past its revoke time, a standby key
//! older than a week). The model is [`crate::keyring`], the one `rotate-keys` writes through.
//!
//! Runs only when both sets are readable JSON; [`super::asymmetric`] reports them otherwise, and
//! also reports a private part in `JWT_JWKS` and a `JWT_KEYS` private key without its public half.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use super::values::AuditedFile;
use super::{Code, Finding};
use crate::clock;
use crate::keyring::{self, KeyRing, KeyState, JWKS_KEY, KEYS_KEY, STATE_KEY};

/// The key-state rules; one call from the audit.
pub(super) fn key_states(ctx: &AuditedFile<'_>, out: &mut Vec<Finding>) {
    let v = ctx.values;
    let Ok(ring) = KeyRing::parse(v.get(KEYS_KEY), v.get(JWKS_KEY), v.get(STATE_KEY)) else { return };
    let keys = ring.ec_keys();
    if keys.is_empty() {
        return;
    }
    let status = format!("see `pmoves-secrets rotate-keys status --env-file {}`", ctx.path.display());
    let signing = ring.signing_count();
    if signing != 1 {
        out.push(Finding::new(
            Code::SigningKeyCount,
            Some(KEYS_KEY),
            format!(
                "has {signing} keys with \"sign\" in key_ops, but Auth signs with exactly one (it refuses to start \
                 with none or several); give exactly one key [\"sign\",\"verify\"] and the others [\"verify\"]; {status}"
            ),
        ));
    }
    // A key with its private part is compared with JWT_JWKS by the asymmetric rules already.
    let private = ring.private_kids();
    for key in keys.iter().filter(|k| !k.in_jwks && !private.contains(k.kid.as_str())) {
        out.push(Finding::new(
            Code::JwksMissingVerifyKey,
            Some(JWKS_KEY),
            format!(
                "lacks the public key {} that JWT_KEYS keeps for verification, so PostgREST, Realtime and Storage \
                 reject the sessions it signed while Auth accepts them; copy it into JWT_JWKS or revoke it with \
                 `pmoves-secrets rotate-keys revoke`",
                key.kid
            ),
        ));
    }
    // A token whose kid is no key of the ring gets `jwt-bad-signature` from the API-key rules;
    // here, one signed by a key of the ring that is not (or no longer) the signing key.
    if let [current] = ring.in_state(KeyState::Current).as_slice() {
        for (key, _) in keyring::api_keys() {
            let Some(kid) = v.get(key).and_then(header_kid) else { continue };
            let Some(signer) = keys.iter().find(|k| k.kid == kid && k.kid != current.kid) else { continue };
            out.push(Finding::new(
                Code::ApiKeyNotSigningKey,
                Some(key),
                format!(
                    "is signed by the {} key {} rather than by the signing key {}, so it stops working when that key \
                     is revoked; re-mint it with `{}`",
                    signer.state.as_str(),
                    signer.kid,
                    current.kid,
                    ctx.regenerate(key)
                ),
            ));
        }
    }
    let now = u64::try_from(ctx.now).unwrap_or(0);
    let expiry = keyring::jwt_expiry_secs(v.get("JWT_EXPIRY"));
    for key in &keys {
        match (key.state, key.since) {
            (KeyState::Previous, Some(since)) if now > keyring::revocable_at(since, expiry) => {
                out.push(Finding::new(
                    Code::PreviousKeyOverdue,
                    Some(KEYS_KEY),
                    format!(
                        "still keeps previous key {} for verification, though every session it signed expired by {}; \
                         once no client uses the API keys it signed, revoke it with `pmoves-secrets rotate-keys \
                         revoke --env-file {}`",
                        key.kid,
                        clock::utc_time(keyring::revocable_at(since, expiry)),
                        ctx.path.display()
                    ),
                ));
            }
            (KeyState::Standby, Some(since)) if now > since.saturating_add(keyring::STANDBY_STALE_SECS) => {
                out.push(Finding::new(
                    Code::StandbyKeyStale,
                    Some(KEYS_KEY),
                    format!(
                        "has had key {} on standby since {}, over a week: finish the rotation with `pmoves-secrets \
                         rotate-keys promote --env-file {}`, or remove the key",
                        key.kid,
                        clock::utc_time(since),
                        ctx.path.display()
                    ),
                ));
            }
            _ => {}
        }
    }
    let disagreements = ring.record_disagreements();
    if ring.record_unreadable || !disagreements.is_empty() {
        let what = if ring.record_unreadable {
            "is not a readable record of key states".to_owned()
        } else {
            format!("records states for keys that JWT_KEYS does not hold in that state ({})", disagreements.join(", "))
        };
        out.push(Finding::new(
            Code::KeyStateRecord,
            Some(STATE_KEY),
            format!(
                "{what}, so rotate-keys treats those keys' times as unknown and asks for --force; the key sets \
                 themselves decide what the services do; {status}"
            ),
        ));
    }
}

/// The `kid` of a compact JWT's header.
fn header_kid(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let header: Value = serde_json::from_slice(&bytes).ok()?;
    header.get("kid").and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::test_support::{audit, codes_for, NOW};
    use crate::secrets::EcKey;
    use serde_json::json;

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
        ring.add_standby(new.private_jwk(&["verify"]).unwrap(), new.public_jwk().unwrap(), now - 60);
        let f = run(&pairs(&ring, &old, SECRET));
        assert!(f.is_empty(), "{f:?}");
        ring.promote(new.kid(), now - 30);
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
        ring.add_standby(new.private_jwk(&["sign", "verify"]).unwrap(), new.public_jwk().unwrap(), 1);
        let f = run(&pairs(&ring, &old, SECRET));
        assert_eq!(codes_for(&f, "JWT_KEYS"), ["signing-key-count"]);
        assert_eq!(f[0].severity, super::super::Severity::Error);
    }

    #[test]
    fn no_signing_key_is_an_error() {
        let (mut ring, old) = fresh(SECRET);
        let stand_in = EcKey::generate();
        ring.add_standby(stand_in.private_jwk(&["verify"]).unwrap(), stand_in.public_jwk().unwrap(), 1);
        // Promote a kid that does not exist: the current key is demoted, nobody signs.
        ring.promote("no-such-kid", 1);
        let f = run(&pairs(&ring, &old, SECRET));
        assert!(state_codes(&f).contains(&"signing-key-count"), "{f:?}");
    }

    #[test]
    fn a_previous_key_missing_from_jwks_is_an_error() {
        let (mut ring, old) = fresh(SECRET);
        let new = EcKey::generate();
        ring.add_standby(new.private_jwk(&["verify"]).unwrap(), new.public_jwk().unwrap(), 1);
        ring.promote(new.kid(), 2);
        let mut p = pairs(&ring, &new, SECRET);
        // JWT_JWKS with only the new key and the oct key.
        let jwks: Value = serde_json::from_str(&p[1].1).unwrap();
        let kept: Vec<&Value> = jwks["keys"].as_array().unwrap().iter().filter(|k| k["kid"] != old.kid()).collect();
        p[1].1 = json!({ "keys": kept }).to_string();
        let f = run(&p);
        assert_eq!(codes_for(&f, "JWT_JWKS"), ["jwks-missing-verify-key"], "{f:?}");
        assert!(f[0].message.contains(old.kid()));
    }

    #[test]
    fn api_keys_signed_by_another_key_than_the_signer_are_errors() {
        let (mut ring, old) = fresh(SECRET);
        let new = EcKey::generate();
        ring.add_standby(new.private_jwk(&["verify"]).unwrap(), new.public_jwk().unwrap(), 1);
        ring.promote(new.kid(), 2);
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
            ring.add_standby(new.private_jwk(&["verify"]).unwrap(), new.public_jwk().unwrap(), 1);
            ring.promote(new.kid(), promoted);
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
        ring.add_standby(new.private_jwk(&["verify"]).unwrap(), new.public_jwk().unwrap(), now - 7 * 86_400);
        assert!(run(&pairs(&ring, &old, SECRET)).is_empty());
        let (mut ring, old) = fresh(SECRET);
        ring.add_standby(new.private_jwk(&["verify"]).unwrap(), new.public_jwk().unwrap(), now - 7 * 86_400 - 1);
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
