//! `rotate-keys stage`: a new P-256 key joins `JWT_KEYS` (private part, verify only) and
//! `JWT_JWKS` (public part), so every verifier knows it before it signs anything. Refused while
//! a key is already on standby.

use std::path::Path;

use super::{load, refused, Plan};
use crate::clock;
use crate::envfile::EnvFile;
use crate::error::Result;
use crate::keyring::{self, KeyState, KEYS_KEY};
use crate::secret::Secret;
use crate::secrets::EcKey;

pub(super) fn plan(file: &EnvFile, path: &Path, now: u64) -> Result<Plan> {
    let mut ring = load::ring(file, path)?;
    if let Some(standby) = ring.in_state(KeyState::Standby).first() {
        let since = standby.since.map_or_else(|| "at an unrecorded time".to_owned(), clock::utc_time);
        return Err(refused(
            path,
            KEYS_KEY,
            format!(
                "already has key {} on standby (staged {since}); promote it with `pmoves-secrets rotate-keys promote \
                 --env-file {}` before staging another",
                standby.kid,
                path.display()
            ),
        ));
    }
    let current = ring.in_state(KeyState::Current);
    let new = EcKey::generate();
    let private = new.private_jwk(&["verify"])?;
    let public = new.public_jwk()?;
    ring.tidy_record();
    ring.add_standby(private, public, now);
    let mut lines = vec![format!("key {}: new, standby (verify only) in JWT_KEYS and JWT_JWKS", new.kid())];
    lines.extend(current.iter().map(|k| format!("key {}: stays current (signing)", k.kid)));
    lines.extend(
        ring.in_state(KeyState::Previous).iter().map(|k| format!("key {}: stays previous (verify only)", k.kid)),
    );
    lines.push("the HS256 oct key of JWT_SECRET stays in both sets".into());
    Ok(Plan {
        lines,
        warnings: Vec::new(),
        values: ring.render().into_iter().map(|(k, v)| (k, Secret::new(v))).collect(),
        question: format!("Stage a new signing key in {}?", path.display()),
        afterwards: vec![format!(
            "promote it no earlier than {} (20 minutes, so verifiers that cache the key set have fetched it): \
             `pmoves-secrets rotate-keys promote --env-file {}`",
            clock::utc_time(keyring::promotable_at(now)),
            path.display()
        )],
    })
}
