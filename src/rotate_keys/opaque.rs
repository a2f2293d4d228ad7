//! `rotate-keys opaque`: a new `SUPABASE_PUBLISHABLE_KEY` / `SUPABASE_SECRET_KEY` pair, in
//! upstream's format (prefix, 22 random base64url characters, `_`, 8-character checksum). There
//! is no overlap for these keys: the services accept exactly the pair they are given, so every
//! client must get the new pair when the services are recreated.

use super::Plan;
use crate::envfile::EnvFile;
use crate::secrets;

/// The opaque pair and the prefix of each.
const OPAQUE_KEYS: [(&str, &str); 2] =
    [("SUPABASE_PUBLISHABLE_KEY", "sb_publishable_"), ("SUPABASE_SECRET_KEY", "sb_secret_")];

pub(super) fn plan(file: &EnvFile) -> Plan {
    let lines = OPAQUE_KEYS
        .iter()
        .map(|(key, _)| {
            let what = if file.value(key).is_some() { "re-minted" } else { "minted (was not set)" };
            format!("{key}: {what}")
        })
        .collect();
    Plan {
        lines,
        warnings: vec![
            "the old pair stops working as soon as the services are recreated: have the new one ready for every \
             client first"
                .into(),
        ],
        values: OPAQUE_KEYS.iter().map(|(key, prefix)| (*key, secrets::opaque_key(prefix))).collect(),
        question: "Replace the opaque API key pair?".into(),
        afterwards: vec![
            "give SUPABASE_PUBLISHABLE_KEY to the browser and mobile apps that use the publishable key, and \
             SUPABASE_SECRET_KEY to the servers and jobs that use the secret key (edge functions get theirs from \
             the stack)"
                .into(),
        ],
    }
}
