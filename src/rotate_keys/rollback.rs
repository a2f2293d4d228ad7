//! `rotate-keys rollback`: the way back from `promote` before `revoke` (the hosted platform's
//! "previously used -> in use"). The previous key, which kept its private part, signs again;
//! the key promoted away from it returns to standby (verify only), so both stay known to every
//! verifier and no session of either is lost. The gateway's ES256 API keys are re-minted with
//! the restored key. Refused when there is no previous key with its private part (after
//! `revoke`, or a previous key written by an older version), or while another key is on standby.

use std::path::Path;

use super::promote::api_keys_signed_by;
use super::{load, refused, Plan};
use crate::envfile::EnvFile;
use crate::error::Result;
use crate::keyring::{Clock, KeyRing, KeyState, RingKey, KEYS_KEY};
use crate::secret::Secret;

pub(super) fn plan(file: &EnvFile, path: &Path, now: u64) -> Result<Plan> {
    let mut ring = load::ring(file, path)?;
    let back_to = the_previous_key(&ring, path)?;
    if let Some(standby) = ring.in_state(KeyState::Standby).first() {
        return Err(refused(
            path,
            KEYS_KEY,
            format!(
                "has key {:?} on standby: a rollback would leave two keys on standby; promote or remove it first",
                standby.kid
            ),
        ));
    }
    let api_keys = api_keys_signed_by(&ring, &back_to.kid, path, now)?;
    let standing_down = ring.rollback(&back_to.kid, now, Clock::File);
    ring.tidy_record();
    let mut lines =
        vec![format!("key {:?}: previous -> current (Auth signs with it again from the restart on)", back_to.kid)];
    lines.extend(standing_down.iter().map(|kid| {
        format!("key {kid:?}: current -> standby (verify only; its sessions stay valid; promote it again later)")
    }));
    lines.push(format!(
        "ANON_KEY_ASYMMETRIC, SERVICE_ROLE_KEY_ASYMMETRIC (the gateway's own keys): re-minted with kid {:?}",
        back_to.kid
    ));
    lines.push("JWT_JWKS and the HS256 oct key of JWT_SECRET do not change".into());
    let mut values: Vec<(&'static str, Secret)> = ring.render().into_iter().map(|(k, v)| (k, Secret::new(v))).collect();
    values.extend(api_keys);
    Ok(Plan {
        lines,
        warnings: Vec::new(),
        values,
        question: format!("Make key {:?} the signing key again in {}?", back_to.kid, path.display()),
        afterwards: vec![super::CLIENTS_KEEP_THEIR_KEYS.into()],
    })
}

/// The previous key to return to: of those that kept their private part, the one demoted last
/// (the nearest before the signer in `JWT_KEYS`, where `promote` leaves it).
fn the_previous_key(ring: &KeyRing, path: &Path) -> Result<RingKey> {
    let candidates: Vec<RingKey> = ring.in_state(KeyState::Previous).into_iter().filter(|k| k.private).collect();
    candidates.last().cloned().ok_or_else(|| {
        refused(
            path,
            KEYS_KEY,
            "has no previous key with its private part to return to: rollback undoes a `promote` before `revoke` \
             (revoke cannot be undone)"
                .into(),
        )
    })
}
