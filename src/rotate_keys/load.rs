//! Reading the key ring from the `.env`, with the refusals every phase shares: no asymmetric set
//! (pointer to `generate-keys --asymmetric`), a set that is not JSON, a set Auth would refuse.

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
    match ring.signing_count() {
        1 => {}
        0 if ring.ec_keys().is_empty() => {
            return Err(refused(
                path,
                KEYS_KEY,
                format!(
                    "holds no EC key, so there is no asymmetric key to rotate; create one with \
                     `pmoves-secrets generate-keys --env-file {} --only JWT_KEYS`",
                    path.display()
                ),
            ))
        }
        n => {
            return Err(refused(
                path,
                KEYS_KEY,
                format!(
                    "has {n} keys with \"sign\" in key_ops, but Auth needs exactly one; run `pmoves-secrets check \
                     --env-file {}` and repair the set before rotating",
                    path.display()
                ),
            ))
        }
    }
    if let Some(key) = ring.ec_keys().into_iter().find(|k| !k.in_jwks) {
        return Err(refused(
            path,
            JWKS_KEY,
            format!(
                "lacks the public half of key {} of JWT_KEYS, so services cannot verify its tokens; run \
                 `pmoves-secrets check --env-file {}` and repair the set before rotating",
                key.kid,
                path.display()
            ),
        ));
    }
    Ok(ring)
}
