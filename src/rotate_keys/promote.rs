//! `rotate-keys promote`: the standby key becomes the one key Auth signs with; the key that signed
//! until now stays in both sets, verify only and with its private part (so `rollback` can return
//! to it), and the sessions it issued keep working until `revoke`. `ANON_KEY_ASYMMETRIC` and
//! `SERVICE_ROLE_KEY_ASYMMETRIC`, the gateway's own keys, are re-minted with the new `kid`.
//! Refused without a standby key, and less than 20 minutes after `stage` unless `--force`.

use std::path::Path;

use super::{load, refused, value, Plan};
use crate::clock;
use crate::envfile::EnvFile;
use crate::error::Result;
use crate::keyring::{self, Clock, KeyRing, KeyState, RingKey, KEYS_KEY};
use crate::secret::Secret;
use crate::secrets::EcKey;

pub(super) fn plan(file: &EnvFile, path: &Path, now: u64, force: bool) -> Result<Plan> {
    let mut ring = load::ring(file, path)?;
    let standby = the_standby_key(&ring, path)?;
    let warnings = wait_since_stage(&standby, path, now, force)?;
    let api_keys = api_keys_signed_by(&ring, &standby.kid, path, now)?;
    let demoted = ring.promote(&standby.kid, now, Clock::File);
    ring.tidy_record();
    let mut lines = vec![format!("key {:?}: standby -> current (Auth signs with it from the restart on)", standby.kid)];
    lines.extend(demoted.iter().map(|kid| {
        format!(
            "key {kid:?}: current -> previous (verify only; keeps its private part so `rotate-keys rollback` can \
             return to it; its sessions stay valid until revoke)"
        )
    }));
    lines.push(format!(
        "ANON_KEY_ASYMMETRIC, SERVICE_ROLE_KEY_ASYMMETRIC (the gateway's own keys): re-minted with kid {:?}",
        standby.kid
    ));
    lines.push("the HS256 oct key of JWT_SECRET stays in both sets; JWT_JWKS does not change".into());
    let expiry = keyring::jwt_expiry_secs(value(file, "JWT_EXPIRY"));
    let mut values: Vec<(&'static str, Secret)> = ring.render().into_iter().map(|(k, v)| (k, Secret::new(v))).collect();
    values.extend(api_keys);
    Ok(Plan {
        lines,
        warnings,
        values,
        question: format!("Promote key {:?} to signing key in {}?", standby.kid, path.display()),
        afterwards: vec![
            super::CLIENTS_KEEP_THEIR_KEYS.into(),
            format!(
                "if a verifier rejects the new key's tokens, return to the previous key with `pmoves-secrets \
                 rotate-keys rollback --env-file {}`",
                path.display()
            ),
            format!(
                "revoke the previous key no earlier than {} (JWT_EXPIRY + 15 minutes, when the last session it \
                 signed has expired): `pmoves-secrets rotate-keys revoke --env-file {}`",
                clock::utc_time(keyring::revocable_at(now, expiry)),
                path.display()
            ),
        ],
    })
}

/// The one key on standby, or the refusal.
fn the_standby_key(ring: &KeyRing, path: &Path) -> Result<RingKey> {
    match ring.in_state(KeyState::Standby).as_slice() {
        [] => Err(refused(
            path,
            KEYS_KEY,
            format!(
                "has no key on standby to promote; stage one with `pmoves-secrets rotate-keys stage --env-file {}` \
                 and promote it 20 minutes later",
                path.display()
            ),
        )),
        [one] => Ok(one.clone()),
        many => {
            let kids: Vec<String> = many.iter().map(|k| format!("{:?}", k.kid)).collect();
            Err(refused(
                path,
                KEYS_KEY,
                format!(
                    "has {} keys on standby ({}), so which one to promote is ambiguous; remove all but one",
                    many.len(),
                    kids.join(", ")
                ),
            ))
        }
    }
}

/// The 20-minute wait after `stage`: the warnings when it is skipped, or the refusal.
fn wait_since_stage(standby: &RingKey, path: &Path, now: u64, force: bool) -> Result<Vec<String>> {
    let kid = &standby.kid;
    match standby.since {
        Some(since) if now >= keyring::promotable_at(since) => Ok(Vec::new()),
        Some(since) if force => Ok(vec![format!(
            "--force: promoting {} after staging; a verifier that cached the key set before key {kid:?} was staged \
             rejects new sessions until it fetches it again",
            keyring::human_duration(now.saturating_sub(since)),
        )]),
        Some(since) => {
            let at = keyring::promotable_at(since);
            Err(refused(
                path,
                KEYS_KEY,
                format!(
                    "key {kid:?} was staged only {} ago ({}{}); verifiers that cache the key set may not know it yet. \
                     Promote it from {} (in {}), or pass --force if every verifier has been restarted since",
                    keyring::human_duration(now.saturating_sub(since)),
                    clock::utc_time(since),
                    super::clock_note(standby.from),
                    clock::utc_time(at),
                    keyring::human_duration(at - now)
                ),
            ))
        }
        None if force => Ok(vec![format!("--force: promoting key {kid:?}, whose staging time is not recorded")]),
        None => Err(refused(
            path,
            KEYS_KEY,
            format!(
                "has no record of when key {kid:?} was staged (JWT_KEYS_STATE), so the 20-minute wait cannot be \
                 checked; pass --force once every verifier has been restarted with the current JWT_JWKS"
            ),
        )),
    }
}

/// The gateway's ES256 API keys, signed by the key `kid`.
pub(super) fn api_keys_signed_by(
    ring: &KeyRing,
    kid: &str,
    path: &Path,
    now: u64,
) -> Result<Vec<(&'static str, Secret)>> {
    let private =
        ring.private_jwk(kid).ok_or_else(|| refused(path, KEYS_KEY, format!("has no private part for key {kid:?}")))?;
    let signer = EcKey::from_private_jwk(private)
        .map_err(|problem| refused(path, KEYS_KEY, format!("key {kid:?} {problem}")))?;
    keyring::api_keys().map(|(key, role)| Ok((key, signer.mint_es256(key, role, now)?))).collect()
}
