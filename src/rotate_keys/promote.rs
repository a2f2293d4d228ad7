//! `rotate-keys promote`: the standby key becomes the one key Auth signs with; the key that signed
//! until now stays in both sets, verify only, so the sessions it issued keep working until
//! `revoke`. `ANON_KEY_ASYMMETRIC` and `SERVICE_ROLE_KEY_ASYMMETRIC` are re-minted with the new
//! `kid`. Refused without a standby key, and less than 20 minutes after `stage` unless `--force`.

use std::path::Path;

use super::{load, refused, value, Plan};
use crate::clock;
use crate::envfile::EnvFile;
use crate::error::Result;
use crate::keyring::{self, KeyState, KEYS_KEY};
use crate::secret::Secret;
use crate::secrets::EcKey;

pub(super) fn plan(file: &EnvFile, path: &Path, now: u64, force: bool) -> Result<Plan> {
    let mut ring = load::ring(file, path)?;
    let standby = match ring.in_state(KeyState::Standby).as_slice() {
        [] => {
            return Err(refused(
                path,
                KEYS_KEY,
                format!(
                    "has no key on standby to promote; stage one with `pmoves-secrets rotate-keys stage --env-file {}` \
                     and promote it 20 minutes later",
                    path.display()
                ),
            ))
        }
        [one] => one.clone(),
        many => {
            let kids: Vec<&str> = many.iter().map(|k| k.kid.as_str()).collect();
            return Err(refused(
                path,
                KEYS_KEY,
                format!(
                    "has {} keys on standby ({}), so which one to promote is ambiguous; remove all but one",
                    many.len(),
                    kids.join(", ")
                ),
            ));
        }
    };
    let mut warnings = Vec::new();
    match standby.since {
        Some(since) if now >= keyring::promotable_at(since) => {}
        Some(since) if force => warnings.push(format!(
            "--force: promoting {} after staging; a verifier that cached the key set before key {} was staged rejects \
             new sessions until it fetches it again",
            keyring::human_duration(now.saturating_sub(since)),
            standby.kid
        )),
        Some(since) => {
            let at = keyring::promotable_at(since);
            return Err(refused(
                path,
                KEYS_KEY,
                format!(
                    "key {} was staged only {} ago ({}); verifiers that cache the key set may not know it yet. Promote \
                     it from {} (in {}), or pass --force if every verifier has been restarted since",
                    standby.kid,
                    keyring::human_duration(now.saturating_sub(since)),
                    clock::utc_time(since),
                    clock::utc_time(at),
                    keyring::human_duration(at - now)
                ),
            ));
        }
        None if force => {
            warnings.push(format!("--force: promoting key {}, whose staging time is not recorded", standby.kid))
        }
        None => {
            return Err(refused(
                path,
                KEYS_KEY,
                format!(
                    "has no record of when key {} was staged (JWT_KEYS_STATE), so the 20-minute wait cannot be \
                     checked; pass --force once every verifier has been restarted with the current JWT_JWKS",
                    standby.kid
                ),
            ))
        }
    }
    let private = ring
        .private_jwk(&standby.kid)
        .ok_or_else(|| refused(path, KEYS_KEY, format!("has no private part for standby key {}", standby.kid)))?;
    let signer = EcKey::from_private_jwk(private)
        .map_err(|problem| refused(path, KEYS_KEY, format!("standby key {} {problem}", standby.kid)))?;
    let mut values = Vec::new();
    for (key, role) in keyring::api_keys() {
        values.push((key, signer.mint_es256(key, role, now)?));
    }
    let demoted = ring.promote(&standby.kid, now);
    ring.tidy_record();
    let mut lines = vec![format!("key {}: standby -> current (Auth signs with it from the restart on)", standby.kid)];
    lines.extend(demoted.iter().map(|kid| {
        format!("key {kid}: current -> previous (verify only, private part removed; its sessions stay valid)")
    }));
    lines.push(format!("ANON_KEY_ASYMMETRIC, SERVICE_ROLE_KEY_ASYMMETRIC: re-minted with kid {}", standby.kid));
    lines.push("the HS256 oct key of JWT_SECRET stays in both sets".into());
    if keyring::api_keys().any(|(key, _)| value(file, key).is_some()) {
        warnings.push(
            "clients holding the old ANON_KEY_ASYMMETRIC or SERVICE_ROLE_KEY_ASYMMETRIC keep working until `revoke`; \
             give them the new ones before then"
                .into(),
        );
    }
    let expiry = keyring::jwt_expiry_secs(value(file, "JWT_EXPIRY"));
    let mut new_values: Vec<(&'static str, Secret)> =
        ring.render().into_iter().map(|(k, v)| (k, Secret::new(v))).collect();
    new_values.append(&mut values);
    Ok(Plan {
        lines,
        warnings,
        values: new_values,
        question: format!("Promote key {} to signing key in {}?", standby.kid, path.display()),
        afterwards: vec![
            "give every client that holds ANON_KEY_ASYMMETRIC or SERVICE_ROLE_KEY_ASYMMETRIC the new value".into(),
            format!(
                "revoke the previous key no earlier than {} (JWT_EXPIRY + 15 minutes, when the last session it \
                 signed has expired): `pmoves-secrets rotate-keys revoke --env-file {}`",
                clock::utc_time(keyring::revocable_at(now, expiry)),
                path.display()
            ),
        ],
    })
}
