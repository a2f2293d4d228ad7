//! The non-secret variables of a Supabase stack: what upstream's `docker-compose.yml` interpolates
//! besides the secrets, with upstream's default values, and the PMOVES.AI variables on top.
//!
//! `generate-keys` writes them into its default `.env` so that the file is complete for the
//! stack it runs: Compose v2 finds no unset variable in upstream's compose file. The values are
//! facts taken from upstream's `.env.example` of the same release; the comments are ours.

/// The upstream release the built-in variable set matches. Upstream's files name no release
/// number, so it is named by the image tags of its `docker-compose.yml`.
pub const UPSTREAM_RELEASE: &str = "supabase/docker with Studio 2026.09.07-sha-7996410, Auth (GoTrue) v2.196.0, \
     PostgREST v14.17, Realtime v2.134.10, Storage v1.74.0, Supavisor 2.9.12, Postgres 17.6.1.136 and the Envoy gateway";

/// One variable with the value the default `.env` gives it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The `.env` key.
    pub key: &'static str,
    /// Its default value (never a secret).
    pub value: &'static str,
    /// A line of explanation printed above it, if it needs one.
    pub comment: Option<&'static str>,
}

/// A titled group of settings in the default `.env`.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    /// The banner above the group.
    pub title: &'static str,
    /// The variables, in print order.
    pub settings: &'static [Setting],
}

const fn set(key: &'static str, value: &'static str) -> Setting {
    Setting { key, value, comment: None }
}

const fn note(key: &'static str, value: &'static str, comment: &'static str) -> Setting {
    Setting { key, value, comment: Some(comment) }
}

/// Upstream's non-secret variables, grouped as its `.env.example` groups them. Database host
/// and name are the PMOVES.AI values (SPEC §1), which differ from upstream's `db`/`postgres`.
pub const SECTIONS: &[Section] = &[
    Section {
        title: "Dashboard login (the password is among the secrets above)",
        settings: &[set("DASHBOARD_USERNAME", "supabase")],
    },
    Section {
        title: "Public URLs: replace localhost with the domain the stack is reached at",
        settings: &[
            note("SUPABASE_PUBLIC_URL", "http://localhost:8000", "where browsers reach Studio and the APIs"),
            note(
                "API_EXTERNAL_URL",
                "http://localhost:8000",
                "Auth's own public URL: OAuth callbacks and e-mail links start with it",
            ),
            note("SITE_URL", "http://localhost:3000", "your application's URL, where Auth redirects after sign-in"),
            note("ADDITIONAL_REDIRECT_URLS", "", "further allowed redirect URLs, comma-separated"),
        ],
    },
    Section {
        title: "Database",
        settings: &[
            note(
                "POSTGRES_HOST",
                "supabase-db",
                "the database service as the other containers reach it (PMOVES.AI name)",
            ),
            note("POSTGRES_DB", "pmoves", "the PMOVES.AI database name"),
            note("POSTGRES_PORT", "5432", "the port inside the network; Supavisor publishes it for session pooling"),
        ],
    },
    Section {
        title: "Supavisor (connection pooler)",
        settings: &[
            note("POOLER_PROXY_PORT_TRANSACTION", "6543", "published port for transaction-mode pooling"),
            note("POOLER_DEFAULT_POOL_SIZE", "20", "server connections per pool"),
            note("POOLER_MAX_CLIENT_CONN", "100", "client connections accepted per pool"),
            note("POOLER_TENANT_ID", "your-tenant-id", "tenant name clients add to the user name (postgres.<tenant>)"),
            note("POOLER_DB_POOL_SIZE", "5", "connections Supavisor keeps for its own metadata"),
        ],
    },
    Section {
        title: "Studio",
        settings: &[
            set("STUDIO_DEFAULT_ORGANIZATION", "Default Organization"),
            set("STUDIO_DEFAULT_PROJECT", "Default Project"),
            note("OPENAI_API_KEY", "", "an OpenAI key turns on Studio's AI assistant; empty leaves it off"),
        ],
    },
    Section {
        title: "Auth",
        settings: &[
            note("JWT_EXPIRY", "3600", "lifetime of user access tokens, in seconds"),
            set("DISABLE_SIGNUP", "false"),
            note("MAILER_URLPATHS_CONFIRMATION", "/auth/v1/verify", "paths of the links in Auth's e-mails"),
            set("MAILER_URLPATHS_INVITE", "/auth/v1/verify"),
            set("MAILER_URLPATHS_RECOVERY", "/auth/v1/verify"),
            set("MAILER_URLPATHS_EMAIL_CHANGE", "/auth/v1/verify"),
            set("ENABLE_EMAIL_SIGNUP", "true"),
            set("ENABLE_EMAIL_AUTOCONFIRM", "false"),
            note("SMTP_ADMIN_EMAIL", "admin@example.com", "outgoing mail: point these at your SMTP server"),
            set("SMTP_HOST", "supabase-mail"),
            set("SMTP_PORT", "2500"),
            set("SMTP_USER", "fake_mail_user"),
            note("SMTP_PASS", "", "your SMTP server's password (upstream's is a placeholder, so none is set here)"),
            set("SMTP_SENDER_NAME", "fake_sender"),
            set("ENABLE_ANONYMOUS_USERS", "false"),
            set("ENABLE_PHONE_SIGNUP", "true"),
            set("ENABLE_PHONE_AUTOCONFIRM", "true"),
        ],
    },
    Section {
        title: "Storage",
        settings: &[
            note("GLOBAL_S3_BUCKET", "stub", "bucket of an S3 backend, or directory name with the file backend"),
            note("REGION", "stub", "region reported by the S3 protocol endpoint"),
            note("STORAGE_TENANT_ID", "stub", "the project reference S3 clients send"),
            note("MINIO_ROOT_USER", "supa-storage", "MinIO's user, when the S3 override file adds MinIO"),
        ],
    },
    Section {
        title: "Edge functions",
        settings: &[note("FUNCTIONS_VERIFY_JWT", "false", "whether every function requires a valid JWT")],
    },
    Section {
        title: "PostgREST",
        settings: &[
            note("PGRST_DB_SCHEMAS", "public,storage,graphql_public", "schemas the REST API exposes"),
            note("PGRST_DB_MAX_ROWS", "1000", "most rows one request returns"),
            note("PGRST_DB_EXTRA_SEARCH_PATH", "public", "schemas added to each request's search_path"),
        ],
    },
    Section {
        title: "Logs and analytics (read by the logging override file)",
        settings: &[
            note(
                "DOCKER_SOCKET_LOCATION",
                "/var/run/docker.sock",
                "the Docker socket Vector reads logs from (Podman: /run/podman/podman.sock)",
            ),
            set("GOOGLE_PROJECT_ID", "GOOGLE_PROJECT_ID"),
            set("GOOGLE_PROJECT_NUMBER", "GOOGLE_PROJECT_NUMBER"),
        ],
    },
    Section {
        title: "API gateway",
        settings: &[
            note("KONG_HTTP_PORT", "8000", "published HTTP port of the gateway"),
            set("KONG_HTTPS_PORT", "8443"),
        ],
    },
    Section {
        title: "imgproxy",
        settings: &[note("IMGPROXY_AUTO_WEBP", "true", "serve WebP to browsers that accept it")],
    },
];

/// A secret of a third-party service that upstream's compose file reads but `generate-keys`
/// cannot make (the operator brings it), with upstream's placeholder for it.
#[derive(Debug, Clone, Copy)]
pub struct ThirdPartySecret {
    /// The `.env` key.
    pub key: &'static str,
    /// Placeholders upstream's current `.env.example` puts in it; anyone can read them.
    pub placeholders: &'static [&'static str],
    /// The strength a value needs (see `crate::strength`), when it is a password or token.
    pub min_guesses_log10: Option<f64>,
}

/// The third-party secrets of upstream's template. The default output leaves them empty.
pub const THIRD_PARTY_SECRETS: &[ThirdPartySecret] = &[
    ThirdPartySecret {
        key: "SMTP_PASS",
        placeholders: &["fake_mail_password"],
        min_guesses_log10: Some(crate::stack::keys::TYPED_OR_SHORT),
    },
    ThirdPartySecret { key: "OPENAI_API_KEY", placeholders: &["sk-proj-xxxxxxxx"], min_guesses_log10: None },
    // Commented out in upstream's template, with this placeholder shown for it.
    ThirdPartySecret {
        key: "SAML_PRIVATE_KEY",
        placeholders: &["<your-base64-encoded-private-key>"],
        min_guesses_log10: None,
    },
];

/// Non-secret variables every PMOVES.AI `.env` carries besides upstream's (SPEC §1).
pub const PMOVES_SECTION: Section = Section {
    title: "PMOVES.AI",
    settings: &[
        set("DOCKED_MODE", "true"),
        set("PARENT_SYSTEM", "PMOVES.AI"),
        set("PARENT_VERSION", "1.0.0"),
        set("MINIO_ENDPOINT", "http://minio:9000"),
        note(
            "NATS_URL",
            "nats://nats:pmoves@nats:4222",
            "PMOVES.AI's published default NATS credentials (nats / pmoves), kept so its NATS service accepts \
             them; if NATS is reachable beyond the stack's network, set your own in its config and here",
        ),
    ],
};

/// Every non-secret `(key, value)` of the default `.env`, in print order.
pub fn defaults<'a>() -> impl Iterator<Item = (&'a str, &'a str)> {
    SECTIONS.iter().chain(std::iter::once(&PMOVES_SECTION)).flat_map(|s| s.settings.iter().map(|s| (s.key, s.value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_listed_once_and_the_pmoves_values_are_the_specs() {
        let keys: Vec<&str> = defaults().map(|(k, _)| k).collect();
        let unique: std::collections::BTreeSet<&str> = keys.iter().copied().collect();
        assert_eq!(keys.len(), unique.len(), "{keys:?}");
        let get = |key: &str| defaults().find(|(k, _)| *k == key).map(|(_, v)| v);
        for (key, value) in [
            ("JWT_EXPIRY", "3600"),
            ("POSTGRES_HOST", "supabase-db"),
            ("POSTGRES_DB", "pmoves"),
            ("POSTGRES_PORT", "5432"),
            ("DOCKED_MODE", "true"),
            ("PARENT_SYSTEM", "PMOVES.AI"),
            ("PARENT_VERSION", "1.0.0"),
            ("MINIO_ENDPOINT", "http://minio:9000"),
            ("NATS_URL", "nats://nats:pmoves@nats:4222"),
        ] {
            assert_eq!(get(key), Some(value), "{key}");
        }
    }

    #[test]
    fn no_default_is_a_catalogue_secret() {
        for (key, _) in defaults() {
            assert!(crate::stack::key(key).is_none(), "{key} is minted, not a default");
        }
    }
}
