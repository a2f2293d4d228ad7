//! Every copy of a secret that a stock stack keeps outside `.env` (SPEC §8): where it is, how it
//! is stored, whether its service rewrites it at its next start, and how a rotation follows it.
//! `check --db` audits this table and `rotate-secrets` follows it; nothing else lists a copy.
//!
//! The facts, from the services' own source:
//!
//! - **Supavisor** (supabase/supavisor, commit 03e5cc5): `priv/repo/migrations/
//!   20230418151441_create_users.exs` makes `_supavisor.users.db_pass_encrypted` (bytea),
//!   `lib/supavisor/tenants/user.ex` maps it to `db_password` through `Supavisor.Encrypted.Binary`
//!   (a Cloak vault, `lib/supavisor/cloak/`), keyed by `VAULT_ENC_KEY` (`config/runtime.exs`); the
//!   format is in [`crate::crypto::supavisor`]. No other column is encrypted (the last one,
//!   `upstream_tls_ca_encrypted`, was removed by `20230705154938_add_upstream_ssl_opts.exs`).
//!   The stored password is `POSTGRES_PASSWORD`: supabase/supabase `docker/volumes/pooler/
//!   pooler.exs` creates the tenant with user `pgbouncer` and that password, **only when the
//!   tenant does not exist yet** — so a stale row is never rewritten at start, and Supavisor
//!   cannot decrypt it after `VAULT_ENC_KEY` changes (it restarts in a loop). Dropping and
//!   re-creating the `_supavisor` schema makes it re-seed (`/app/bin/migrate` then `pooler.exs`,
//!   upstream's compose `command`). The schema lives in the internals database (`_supabase`,
//!   supabase/supabase `docker/volumes/db/pooler.sql`).
//! - **Realtime** (supabase/realtime, commit 833cf36): `_realtime.tenants.jwt_secret` (text since
//!   `20230810220907_alter_tenants_table_columns_to_text.exs`) holds `API_JWT_SECRET` (=
//!   `JWT_SECRET` in upstream's compose) encrypted by `Realtime.Api.Tenant.encrypt_jwt_secret`;
//!   `_realtime.extensions.settings` (a map, `20220329161857_add_extensions_table.exs`) holds, for
//!   `postgres_cdc_rls`, `db_host`, `db_port`, `db_name`, `db_user` and `db_password` encrypted
//!   (`lib/extensions/postgres_cdc_rls/db_settings.ex`, the `true` flag;
//!   `lib/realtime/api/extensions.ex`), `db_password` being `DB_PASSWORD` = `POSTGRES_PASSWORD`.
//!   All under `DB_ENC_KEY` = `REALTIME_DB_ENC_KEY` ([`crate::crypto::realtime`]). With
//!   `SEED_SELF_HOST=true` (upstream's compose sets it; `run.sh`), `priv/repo/seeds.exs` deletes
//!   and re-inserts the tenant `SELF_HOST_TENANT_NAME` (default `realtime-dev`) at every start,
//!   so that tenant's copies are rewritten from the environment; any other tenant keeps its rows.
//!   Realtime connects to `POSTGRES_DB` with `search_path` `_realtime` (upstream's compose
//!   `DB_NAME`, `DB_AFTER_CONNECT_QUERY`), so the schema is in the main database.
//! - **Logflare** (Logflare/logflare, commit e9444de): in single-tenant mode the start-up tasks
//!   (`lib/logflare/application.ex`) call `SingleTenant.create_default_user`, which inserts the
//!   user with `api_key` = `LOGFLARE_PUBLIC_ACCESS_TOKEN` only when it does not exist (so the
//!   column is never updated), and `create_access_tokens`, which revokes the access tokens whose
//!   `description` is `LOGFLARE_PUBLIC_ACCESS_TOKEN` / `LOGFLARE_PRIVATE_ACCESS_TOKEN` and creates
//!   the current ones when they are missing (`lib/logflare/single_tenant.ex`). The legacy
//!   `users.api_key` still authenticates (`lib/logflare_web/controllers/plugs/
//!   verify_api_access.ex`), so an old public token keeps working there. Tables
//!   `_analytics.users` (`20181212161742_add_users_table.exs`, `…_add_api_key_to_users.exs`)
//!   and `_analytics.oauth_access_tokens` (`20190211215002_create_oauth_tables.exs`, plain
//!   `token`), in the internals database (`DB_SCHEMA=_analytics`, `docker/volumes/db/logs.sql`).
//! - **The database** (supabase/supabase `docker/volumes/db/jwt.sql` before 2025; supabase/postgres
//!   init): `ALTER DATABASE postgres SET "app.settings.jwt_secret"` at first start only, readable
//!   by every role of that database and never updated.

use super::internals::internals_candidates;

/// Which database of the server holds a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// `POSTGRES_DB`, the stack's main database.
    Main,
    /// The internal schemas' database ([`super::internals::INTERNALS_DATABASE`], or the main
    /// database on older stacks).
    Internals,
    /// Server-wide (`pg_db_role_setting`).
    Cluster,
}

impl Database {
    /// The databases of the server that can hold a copy kept in this one, in the order to look:
    /// the internal schemas' ([`internals_candidates`]) or `main` itself.
    pub fn candidates(self, main: &str) -> Vec<&str> {
        match self {
            Database::Internals => internals_candidates(main).collect(),
            Database::Main | Database::Cluster => vec![main],
        }
    }
}

/// How a copy is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// The value as it is.
    Plain,
    /// Supavisor's Cloak vault (AES-256-GCM) under `VAULT_ENC_KEY`.
    SupavisorVault,
    /// `Realtime.Crypto` (AES-128-ECB, base64) under `REALTIME_DB_ENC_KEY`.
    RealtimeEcb,
    /// A configuration setting of the server (`ALTER DATABASE/ROLE … SET`).
    Setting,
}

impl Storage {
    /// The `.env` key that encrypts copies stored this way.
    pub fn key(self) -> Option<&'static str> {
        match self {
            Storage::SupavisorVault => Some(VAULT_ENC_KEY),
            Storage::RealtimeEcb => Some(REALTIME_DB_ENC_KEY),
            Storage::Plain | Storage::Setting => None,
        }
    }
}

/// Whether the service puts the current value back at its next start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtStart {
    /// Never: a stale copy stays stale.
    Kept,
    /// Always (Logflare's access-token rows).
    Rewritten,
    /// Only the self-host tenant Realtime re-seeds when `SEED_SELF_HOST` is on.
    RewrittenForSeededTenant,
}

/// What a rotation does to the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Decrypt under the old key, encrypt under the new one, in place.
    ReEncrypt,
    /// Write the new value (encrypted as it is stored).
    Rewrite,
    /// Drop the schema and re-create it empty with its owner; the service re-seeds it.
    ResetSchema,
    /// Remove the setting.
    Remove,
    /// Nothing in the database: the service rewrites it when it is recreated.
    LeftToService,
}

/// Names a copy, so each can carry its own finding code and plan line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyId {
    /// `_supavisor.users.db_pass_encrypted`.
    SupavisorPoolerPassword,
    /// `_realtime.tenants.jwt_secret`.
    RealtimeTenantJwtSecret,
    /// `_realtime.extensions.settings->db_password`.
    RealtimeDbPassword,
    /// `_realtime.extensions.settings` connection fields.
    RealtimeDbConnection,
    /// `_analytics.users.api_key`.
    LogflareUserApiKey,
    /// `_analytics.oauth_access_tokens.token` (public and private).
    LogflareAccessToken,
    /// `app.settings.jwt_secret`.
    JwtSecretSetting,
}

/// One copy outside `.env`.
#[derive(Debug, Clone, Copy)]
pub struct Copy {
    /// Which one.
    pub id: CopyId,
    /// The `.env` keys whose value it holds (none: only encrypted under a key, like Realtime's
    /// connection settings).
    pub holds: &'static [&'static str],
    /// Where: database, schema, table, column (for a setting: its name in `column`).
    pub database: Database,
    /// Schema (empty for a setting).
    pub schema: &'static str,
    /// Table (empty for a setting).
    pub table: &'static str,
    /// Column, or the setting's name.
    pub column: &'static str,
    /// Inside a JSON column: the fields that are copies.
    pub fields: &'static [&'static str],
    /// How the value is stored.
    pub storage: Storage,
    /// Whether the service rewrites it at its next start.
    pub at_start: AtStart,
    /// The service that wrote it and reads it.
    pub service: &'static str,
    /// What breaks while it is stale.
    pub when_stale: &'static str,
}

impl Copy {
    /// `schema.table.column` (or the setting's name), for messages.
    pub fn place(&self) -> String {
        match self.database {
            Database::Cluster => self.column.to_owned(),
            _ if self.fields.is_empty() => format!("{}.{}.{}", self.schema, self.table, self.column),
            _ => format!("{}.{}.{} ({})", self.schema, self.table, self.column, self.fields.join(", ")),
        }
    }

    /// The `.env` keys this copy must follow: the values it holds and the key it is encrypted
    /// under.
    pub fn follows(&self, key: &str) -> bool {
        self.holds.contains(&key) || self.storage.key() == Some(key)
    }

    /// What a rotation of `key` does to this copy.
    pub fn follow(&self, key: &str) -> Follow {
        match (self.id, self.storage.key() == Some(key)) {
            // Supavisor re-seeds a reset schema from its environment (§2, §8).
            (CopyId::SupavisorPoolerPassword, _) => Follow::ResetSchema,
            (CopyId::JwtSecretSetting, _) => Follow::Remove,
            (CopyId::LogflareAccessToken, _) => Follow::LeftToService,
            (_, true) => Follow::ReEncrypt,
            (_, false) => Follow::Rewrite,
        }
    }
}

/// `VAULT_ENC_KEY`, Supavisor's vault key.
pub const VAULT_ENC_KEY: &str = "VAULT_ENC_KEY";
/// `REALTIME_DB_ENC_KEY`, Realtime's `DB_ENC_KEY`.
pub const REALTIME_DB_ENC_KEY: &str = "REALTIME_DB_ENC_KEY";
/// What upstream's compose file gives Realtime when the `.env` has no `REALTIME_DB_ENC_KEY`
/// (`DB_ENC_KEY: ${REALTIME_DB_ENC_KEY:-supabaserealtime}`).
pub const REALTIME_DB_ENC_KEY_FALLBACK: &str = "supabaserealtime";
/// The tenant Realtime re-seeds with `SEED_SELF_HOST` (`SELF_HOST_TENANT_NAME`'s default,
/// upstream's compose sets none).
pub const REALTIME_SEEDED_TENANT: &str = "realtime-dev";
/// The extension type whose settings hold the encrypted connection.
pub const REALTIME_CDC_EXTENSION: &str = "postgres_cdc_rls";
/// The `description` Logflare gives the access-token row of each `.env` token.
pub const LOGFLARE_TOKENS: &[&str] = &["LOGFLARE_PUBLIC_ACCESS_TOKEN", "LOGFLARE_PRIVATE_ACCESS_TOKEN"];

/// Every copy outside `.env` (SPEC §8).
pub const COPIES: &[Copy] = &[
    Copy {
        id: CopyId::SupavisorPoolerPassword,
        holds: &[super::POSTGRES_PASSWORD],
        database: Database::Internals,
        schema: "_supavisor",
        table: "users",
        column: "db_pass_encrypted",
        fields: &[],
        storage: Storage::SupavisorVault,
        at_start: AtStart::Kept,
        service: "supavisor",
        when_stale: "Supavisor cannot read its pooler credentials and restarts in a loop",
    },
    Copy {
        id: CopyId::RealtimeTenantJwtSecret,
        holds: &["JWT_SECRET"],
        database: Database::Main,
        schema: "_realtime",
        table: "tenants",
        column: "jwt_secret",
        fields: &[],
        storage: Storage::RealtimeEcb,
        at_start: AtStart::RewrittenForSeededTenant,
        service: "realtime",
        when_stale: "Realtime refuses the tenant's websocket connections",
    },
    Copy {
        id: CopyId::RealtimeDbPassword,
        holds: &[super::POSTGRES_PASSWORD],
        database: Database::Main,
        schema: "_realtime",
        table: "extensions",
        column: "settings",
        fields: &["db_password"],
        storage: Storage::RealtimeEcb,
        at_start: AtStart::RewrittenForSeededTenant,
        service: "realtime",
        when_stale: "Realtime cannot connect to the tenant's database for its change feed",
    },
    Copy {
        id: CopyId::RealtimeDbConnection,
        holds: &[],
        database: Database::Main,
        schema: "_realtime",
        table: "extensions",
        column: "settings",
        fields: &["db_host", "db_port", "db_name", "db_user"],
        storage: Storage::RealtimeEcb,
        at_start: AtStart::RewrittenForSeededTenant,
        service: "realtime",
        when_stale: "Realtime cannot connect to the tenant's database for its change feed",
    },
    Copy {
        id: CopyId::LogflareUserApiKey,
        holds: &["LOGFLARE_PUBLIC_ACCESS_TOKEN"],
        database: Database::Internals,
        schema: "_analytics",
        table: "users",
        column: "api_key",
        fields: &[],
        storage: Storage::Plain,
        at_start: AtStart::Kept,
        service: "analytics",
        when_stale: "Logflare keeps accepting the old public token as the user's legacy API key",
    },
    Copy {
        id: CopyId::LogflareAccessToken,
        holds: LOGFLARE_TOKENS,
        database: Database::Internals,
        schema: "_analytics",
        table: "oauth_access_tokens",
        column: "token",
        fields: &[],
        storage: Storage::Plain,
        at_start: AtStart::Rewritten,
        service: "analytics",
        when_stale: "Logflare accepts the old token until it is restarted",
    },
    Copy {
        id: CopyId::JwtSecretSetting,
        holds: &["JWT_SECRET"],
        database: Database::Cluster,
        schema: "",
        table: "",
        column: "app.settings.jwt_secret",
        fields: &[],
        storage: Storage::Setting,
        at_start: AtStart::Kept,
        service: "db",
        when_stale: "SQL that signs or verifies tokens with it disagrees with the services",
    },
];

/// The command that rotates `key` when `rotate-secrets` does not (SPEC §8): the database
/// password, the signing keys and the tokens signed with `JWT_SECRET`.
pub fn rotated_by(key: &str) -> Option<&'static str> {
    match key {
        super::POSTGRES_PASSWORD | "SUPABASE_DB_PASSWORD" => {
            Some("`pmoves-secrets rotate-passwords` changes it in the database and the .env together")
        }
        "JWT_KEYS" | "JWT_JWKS" | "ANON_KEY_ASYMMETRIC" | "SERVICE_ROLE_KEY_ASYMMETRIC" => {
            Some("the signing keys rotate with overlap through `pmoves-secrets rotate-keys stage|promote|revoke`")
        }
        "SUPABASE_PUBLISHABLE_KEY" | "SUPABASE_SECRET_KEY" => {
            Some("`pmoves-secrets rotate-keys opaque` re-mints the pair")
        }
        "ANON_KEY" | "SERVICE_ROLE_KEY" => {
            Some("it is signed with JWT_SECRET; `pmoves-secrets rotate-secrets JWT_SECRET` re-mints both tokens")
        }
        _ => None,
    }
}

/// The secrets `rotate-secrets` rotates (`--all`), in catalogue order.
pub fn rotated_here() -> impl Iterator<Item = &'static str> {
    super::KEYS.iter().filter(|spec| !spec.asymmetric && rotated_by(spec.key).is_none()).map(|spec| spec.key)
}

/// The copies outside `.env` that follow `key`.
pub fn copies_of(key: &str) -> impl Iterator<Item = &'static Copy> + '_ {
    COPIES.iter().filter(move |copy| copy.follows(key))
}

/// Whether `key` has a copy in the database that changing `.env` alone leaves stale.
pub fn has_database_copies(key: &str) -> bool {
    copies_of(key).next().is_some()
}

/// The copy named `id`.
pub fn copy(id: CopyId) -> &'static Copy {
    // Every CopyId has exactly one entry in COPIES (checked by a test).
    COPIES.iter().find(|c| c.id == id).unwrap_or(&COPIES[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_copy_id_has_one_entry() {
        for (i, a) in COPIES.iter().enumerate() {
            assert_eq!(copy(a.id).id, a.id);
            assert!(COPIES[i + 1..].iter().all(|b| b.id != a.id), "{:?} twice", a.id);
        }
    }

    #[test]
    fn the_keys_of_spec_8_have_their_copies_and_the_others_none() {
        let ids = |key| copies_of(key).map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(VAULT_ENC_KEY), [CopyId::SupavisorPoolerPassword]);
        assert_eq!(
            ids(REALTIME_DB_ENC_KEY),
            [CopyId::RealtimeTenantJwtSecret, CopyId::RealtimeDbPassword, CopyId::RealtimeDbConnection]
        );
        assert_eq!(ids("JWT_SECRET"), [CopyId::RealtimeTenantJwtSecret, CopyId::JwtSecretSetting]);
        assert_eq!(ids("LOGFLARE_PUBLIC_ACCESS_TOKEN"), [CopyId::LogflareUserApiKey, CopyId::LogflareAccessToken]);
        assert_eq!(ids("LOGFLARE_PRIVATE_ACCESS_TOKEN"), [CopyId::LogflareAccessToken]);
        for key in ["SECRET_KEY_BASE", "PG_META_CRYPTO_KEY", "S3_PROTOCOL_ACCESS_KEY_ID", "DASHBOARD_PASSWORD"] {
            assert!(!has_database_copies(key), "{key}");
        }
    }

    #[test]
    fn rotate_secrets_owns_every_secret_of_spec_8_and_points_at_the_other_commands() {
        assert_eq!(
            rotated_here().collect::<Vec<_>>(),
            [
                "JWT_SECRET",
                "SECRET_KEY_BASE",
                "VAULT_ENC_KEY",
                "PG_META_CRYPTO_KEY",
                "REALTIME_DB_ENC_KEY",
                "LOGFLARE_PUBLIC_ACCESS_TOKEN",
                "LOGFLARE_PRIVATE_ACCESS_TOKEN",
                "S3_PROTOCOL_ACCESS_KEY_ID",
                "S3_PROTOCOL_ACCESS_KEY_SECRET",
                "MINIO_ROOT_PASSWORD",
                "DASHBOARD_PASSWORD",
            ]
        );
        assert!(rotated_by("POSTGRES_PASSWORD").unwrap().contains("rotate-passwords"));
        assert!(rotated_by("JWT_KEYS").unwrap().contains("rotate-keys"));
    }

    #[test]
    fn rotations_follow_each_copy_as_spec_8_says() {
        assert_eq!(copy(CopyId::SupavisorPoolerPassword).follow(VAULT_ENC_KEY), Follow::ResetSchema);
        assert_eq!(copy(CopyId::RealtimeTenantJwtSecret).follow(REALTIME_DB_ENC_KEY), Follow::ReEncrypt);
        assert_eq!(copy(CopyId::RealtimeTenantJwtSecret).follow("JWT_SECRET"), Follow::Rewrite);
        assert_eq!(copy(CopyId::JwtSecretSetting).follow("JWT_SECRET"), Follow::Remove);
        assert_eq!(copy(CopyId::LogflareUserApiKey).follow("LOGFLARE_PUBLIC_ACCESS_TOKEN"), Follow::Rewrite);
        assert_eq!(
            copy(CopyId::RealtimeDbConnection).place(),
            "_realtime.extensions.settings (db_host, db_port, db_name, db_user)"
        );
    }
}
