//! Questions more than one command asks a live stack's database (`check --db` and
//! `rotate-passwords` both need to know which of the stack's roles can log in). The facts the
//! questions are about stay in [`crate::stack`]; the connection is [`crate::db`]'s.

use tokio_postgres::Client;

use crate::stack::roles::rotated_role_names;

/// The rotated roles that exist on the server behind `client` and have LOGIN, by name.
pub async fn login_role_names(client: &Client) -> Result<Vec<String>, tokio_postgres::Error> {
    let names: Vec<&str> = rotated_role_names().collect();
    let rows = client
        .query("SELECT rolname::text FROM pg_roles WHERE rolcanlogin AND rolname = ANY($1) ORDER BY rolname", &[&names])
        .await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}
