//! Where a stack's `.env` keeps the database connection: the password every Supabase role
//! shares and the server's address, handed to the connector as plain values.

use crate::db::StackSettings;
use crate::envfile::EnvFile;

use super::POSTGRES_PASSWORD;

/// The connection settings of the `.env` (an empty value is unset).
pub fn connection_settings(env: &EnvFile) -> StackSettings<'_> {
    StackSettings {
        password: env.value(POSTGRES_PASSWORD),
        host: env.value("POSTGRES_HOST"),
        port: env.value("POSTGRES_PORT"),
        dbname: env.value("POSTGRES_DB"),
    }
}
