//! What users of a running stack notice when a secret changes (SPEC §8's last column), in two
//! columns of one table: when the key changes in `.env` alone (the consequence a confirmation
//! names before a command replaces a value the services already run with, every copy outside
//! `.env` left as it was), and after `rotate-secrets` has followed every copy and the services
//! were recreated.

/// One row: the keys it is about and what users notice in each case.
struct Notice {
    keys: &'static [&'static str],
    /// The key changed in `.env` alone; `None`: nobody notices once the services are recreated.
    in_env_alone: Option<&'static str>,
    /// After a rotation that follows every copy; `None`: not rotated by `rotate-secrets`.
    after_rotation: Option<&'static str>,
}

/// What users notice after a rotation of a key this table does not name.
const ONLY_THE_RESTART: &str = "nothing beyond the services' restart";

/// Keys minted from another (the HS256 API keys from `JWT_SECRET`, the asymmetric set from
/// `JWT_KEYS`) are covered by the key they derive from.
const NOTICES: &[Notice] = &[
    Notice {
        keys: &["JWT_SECRET"],
        in_env_alone: Some(
            "every signed-in user is logged out (their tokens stop verifying), every client holding the old \
             ANON_KEY or SERVICE_ROLE_KEY is refused, and signed Storage URLs stop working",
        ),
        after_rotation: Some(
            "HS256 sessions end; clients need the new ANON_KEY / SERVICE_ROLE_KEY; signed Storage URLs stop working",
        ),
    },
    Notice {
        keys: &["JWT_KEYS"],
        in_env_alone: Some(
            "users signed in with ES256 tokens are logged out and clients holding the old asymmetric API keys are \
             refused; `pmoves-secrets rotate-keys` changes the signing key without that",
        ),
        after_rotation: None,
    },
    Notice {
        keys: &["SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY"],
        in_env_alone: Some("clients holding the old opaque API key are refused"),
        after_rotation: None,
    },
    Notice {
        keys: &["VAULT_ENC_KEY"],
        in_env_alone: Some(
            "Supavisor can no longer decrypt the pooler credentials it stored and restarts in a loop until its \
             _supavisor schema is reset",
        ),
        after_rotation: Some("the pooler restarts"),
    },
    Notice {
        keys: &["REALTIME_DB_ENC_KEY"],
        in_env_alone: Some("Realtime can no longer decrypt the tenant settings it stored"),
        after_rotation: Some("websockets reconnect"),
    },
    Notice {
        keys: &["LOGFLARE_PUBLIC_ACCESS_TOKEN", "LOGFLARE_PRIVATE_ACCESS_TOKEN"],
        in_env_alone: None,
        after_rotation: Some("nothing (log shipping resumes after the restart)"),
    },
    Notice {
        keys: &["S3_PROTOCOL_ACCESS_KEY_ID", "S3_PROTOCOL_ACCESS_KEY_SECRET"],
        in_env_alone: Some("S3 clients using the old key are refused"),
        after_rotation: Some("S3 clients need the new value"),
    },
    Notice {
        keys: &["DASHBOARD_PASSWORD"],
        in_env_alone: Some("dashboard users must sign in with the new password"),
        after_rotation: Some("dashboard users need the new password"),
    },
    Notice {
        keys: &["MINIO_ROOT_PASSWORD"],
        in_env_alone: Some("anything logging in to MinIO as its root user needs the new password"),
        after_rotation: Some("MinIO's root user needs the new password"),
    },
    Notice {
        keys: &[crate::stack::POSTGRES_PASSWORD],
        in_env_alone: Some(
            "a database that is already initialised keeps the old password, so every service loses its \
             connection (`pmoves-secrets rotate-passwords` changes both)",
        ),
        after_rotation: None,
    },
];

fn row(key: &str) -> Option<&'static Notice> {
    NOTICES.iter().find(|notice| notice.keys.contains(&key))
}

/// What users notice when `key` gets a new value in `.env` alone on a running stack, if
/// anything.
pub fn what_users_notice(key: &str) -> Option<&'static str> {
    row(key)?.in_env_alone
}

/// What users notice once `rotate-secrets` has rotated `key` with every copy and the services
/// were recreated.
pub fn after_rotation(key: &str) -> &'static str {
    row(key).and_then(|notice| notice.after_rotation).unwrap_or(ONLY_THE_RESTART)
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

    #[test]
    fn every_key_rotate_secrets_rotates_has_an_answer_and_each_key_one_row() {
        for key in crate::stack::copies::rotated_here() {
            assert!(!after_rotation(key).ends_with('.'), "{key}");
        }
        assert_eq!(after_rotation("VAULT_ENC_KEY"), "the pooler restarts");
        assert_eq!(after_rotation("SECRET_KEY_BASE"), ONLY_THE_RESTART);
        let keys: Vec<&str> = NOTICES.iter().flat_map(|notice| notice.keys.iter().copied()).collect();
        let unique: std::collections::BTreeSet<&str> = keys.iter().copied().collect();
        assert_eq!(keys.len(), unique.len(), "{keys:?}");
    }
}
