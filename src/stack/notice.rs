//! What users of a running stack notice when a secret changes: the consequence a confirmation
//! names before a command replaces a value the services already run with (SPEC §8's last
//! column). Keys absent here change without anyone noticing once the services are recreated.

/// What users notice when `key` gets a new value on a running stack, if anything. Keys minted
/// from another (the HS256 API keys from `JWT_SECRET`, the asymmetric set from `JWT_KEYS`) are
/// covered by the key they derive from.
pub fn what_users_notice(key: &str) -> Option<&'static str> {
    Some(match key {
        "JWT_SECRET" => {
            "every signed-in user is logged out (their tokens stop verifying), every client holding the old \
             ANON_KEY or SERVICE_ROLE_KEY is refused, and signed Storage URLs stop working"
        }
        "JWT_KEYS" => {
            "users signed in with ES256 tokens are logged out and clients holding the old asymmetric API keys are \
             refused; `pmoves-secrets rotate-keys` changes the signing key without that"
        }
        "SUPABASE_PUBLISHABLE_KEY" | "SUPABASE_SECRET_KEY" => "clients holding the old opaque API key are refused",
        "VAULT_ENC_KEY" => {
            "Supavisor can no longer decrypt the pooler credentials it stored and restarts in a loop until its \
             _supavisor schema is reset"
        }
        "REALTIME_DB_ENC_KEY" => "Realtime can no longer decrypt the tenant settings it stored",
        "S3_PROTOCOL_ACCESS_KEY_ID" | "S3_PROTOCOL_ACCESS_KEY_SECRET" => "S3 clients using the old key are refused",
        "DASHBOARD_PASSWORD" => "dashboard users must sign in with the new password",
        "MINIO_ROOT_PASSWORD" => "anything logging in to MinIO as its root user needs the new password",
        crate::stack::POSTGRES_PASSWORD => {
            "a database that is already initialised keeps the old password, so every service loses its \
             connection (`pmoves-secrets rotate-passwords` changes both)"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_secrets_and_what_clients_hold_have_a_consequence() {
        for key in ["JWT_SECRET", "JWT_KEYS", "SUPABASE_SECRET_KEY", "VAULT_ENC_KEY", "POSTGRES_PASSWORD"] {
            assert!(what_users_notice(key).is_some(), "{key}");
        }
        assert!(what_users_notice("PG_META_CRYPTO_KEY").is_none());
        for key in crate::stack::KEYS.iter().map(|spec| spec.key) {
            assert!(what_users_notice(key).is_none_or(|text| !text.ends_with('.')), "{key}: a clause, no full stop");
        }
    }
}
