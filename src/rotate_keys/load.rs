//! Reading the key ring from the `.env`, with the refusals every phase shares: no asymmetric set
//! (pointer to `generate-keys --asymmetric`), a set that is not JSON, and a ring that breaks any
//! of `check`'s key-set rules ([`KeyRing::problems`]: one implementation for both).

use std::path::Path;

use super::{refused, value};
use crate::envfile::EnvFile;
use crate::error::Result;
use crate::keyring::{KeyRing, JWKS_KEY, KEYS_KEY, STATE_KEY};

/// The ring of `file`, or the refusal that says how to get a usable one.
pub(super) fn ring(file: &EnvFile, path: &Path) -> Result<KeyRing> {
    let ring = KeyRing::parse(value(file, KEYS_KEY), value(file, JWKS_KEY), value(file, STATE_KEY)).map_err(|e| {
        let fix = if e.missing {
            format!(
                "create the asymmetric set first with `pmoves-secrets generate-keys --env-file {} --asymmetric`",
                path.display()
            )
        } else {
            format!(
                "re-mint the set with `pmoves-secrets generate-keys --env-file {} --only JWT_KEYS` (this logs \
                 everyone out) or repair it by hand",
                path.display()
            )
        };
        refused(path, e.key, format!("{}; {fix}", e.problem))
    })?;
    if ring.signing_count() == 0 && ring.ec_keys().is_empty() {
        return Err(refused(
            path,
            KEYS_KEY,
            format!(
                "holds no EC key, so there is no asymmetric key to rotate; create one with `pmoves-secrets \
                 generate-keys --env-file {} --only JWT_KEYS`",
                path.display()
            ),
        ));
    }
    let problems = ring.problems();
    if let Some(first) = problems.first() {
        let all: Vec<String> = problems.iter().map(|p| format!("{} {}", p.key, p.message)).collect();
        return Err(refused(
            path,
            first.key,
            format!(
                "is part of a key ring that `check` calls broken, and a rotation step would only carry the damage \
                 forward: {}; run `pmoves-secrets check --env-file {}` and repair the set before rotating",
                all.join("; "),
                path.display()
            ),
        ));
    }
    Ok(ring)
}
