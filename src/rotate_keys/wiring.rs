//! `--compose`: a phase refuses to rotate a key set no signer reads. Upstream's stock compose file
//! ships `GOTRUE_JWT_KEYS` commented out: Auth then signs with `JWT_SECRET` alone, and a rotation
//! would change keys nobody signs with while claiming a new signing key. A verifier that does not
//! get `JWT_JWKS` is a warning (it keeps rejecting the set's tokens, before and after).

use std::path::{Path, PathBuf};

use super::refused;
use crate::compose_file::{key_set_wiring, Unwired};
use crate::error::Result;
use crate::keyring::{self, KEYS_KEY};
use crate::ui::{printable, Ui};

pub(super) fn refuse_a_set_no_signer_reads(compose: &[PathBuf], path: &Path, ui: &Ui) -> Result<()> {
    let gaps = key_set_wiring(compose, &keyring::set_readers())?;
    for gap in gaps.iter().filter(|g| g.key != KEYS_KEY) {
        ui.warn(&format!("service {} does not get {}: {}", gap.service, gap.key, where_to_enable(gap)));
    }
    match gaps.iter().find(|g| g.key == KEYS_KEY) {
        Some(gap) => Err(refused(
            path,
            KEYS_KEY,
            format!(
                "is handed to no signer: the compose files do not give it to {}, which signs with JWT_SECRET alone, \
                 so a rotation would change keys nobody signs with; {}, recreate {} and run the phase again",
                gap.service,
                where_to_enable(gap),
                gap.service
            ),
        )),
        None => Ok(()),
    }
}

/// `file:line: enable the line ...`.
fn where_to_enable(gap: &Unwired) -> String {
    let at = format!("{}:{}", printable(&gap.file.display().to_string()), gap.line);
    match &gap.enable {
        Some(line) => format!("enable `{}` at {at} (remove the `#`)", printable(line)),
        None => format!("hand it `${{{}}}` in its environment ({at})", gap.key),
    }
}
