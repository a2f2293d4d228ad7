//! Who reads the variables `generate-keys` writes that upstream's main `docker-compose.yml` does
//! not: optional services (Logflare and Vector, MinIO, the Kong gateway) and the PMOVES.AI
//! services. `check --compose` flags a `.env` key no given compose file reads only when it is
//! not one of these (nor a catalogue secret, whose readers `keys` lists): a key the tool itself
//! wrote is not noise to remove.
//!
//! Facts from upstream's `docker/.env.example` (its "Analytics - Configuration for Logflare",
//! "Used by MinIO when added via docker-compose.s3.yml" and "Kong configuration variables"
//! sections) and SPEC §1 (the PMOVES.AI variables).

/// Who reads `key` outside upstream's main compose file, for a non-secret variable the default
/// `.env` carries; `None` for any other key.
pub fn optional_reader(key: &str) -> Option<&'static str> {
    Some(match key {
        "DOCKER_SOCKET_LOCATION" | "GOOGLE_PROJECT_ID" | "GOOGLE_PROJECT_NUMBER" => {
            "Logflare and Vector (upstream's logging override file)"
        }
        "MINIO_ROOT_USER" => "MinIO (upstream's docker-compose.s3.yml)",
        "KONG_HTTPS_PORT" => "the Kong gateway (upstream's alternative to Envoy)",
        "DOCKED_MODE" | "PARENT_SYSTEM" | "PARENT_VERSION" | "MINIO_ENDPOINT" | "NATS_URL" => "the PMOVES.AI services",
        _ => return None,
    })
}

/// Whether the stack model knows who reads `key`: a catalogue secret (its readers are in
/// [`crate::stack::keys`]) or a variable of [`optional_reader`].
pub fn is_known(key: &str) -> bool {
    crate::stack::key(key).is_some() || optional_reader(key).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_optional_reader_is_a_variable_the_default_env_writes() {
        let written: Vec<&str> = crate::stack::settings::defaults().map(|(key, _)| key).collect();
        for key in ["DOCKER_SOCKET_LOCATION", "MINIO_ROOT_USER", "KONG_HTTPS_PORT", "NATS_URL", "PARENT_SYSTEM"] {
            assert!(optional_reader(key).is_some() && written.contains(&key), "{key}");
        }
        assert!(is_known("LOGFLARE_PUBLIC_ACCESS_TOKEN") && !is_known("MY_OWN_FLAG"));
    }
}
