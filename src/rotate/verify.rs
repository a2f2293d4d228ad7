//! Step 7 of a rotation: prove the new password works by logging in as every LOGIN role.

use serde::Serialize;

use crate::db::Target;
use crate::secrets::Secret;

/// The outcome of one login.
#[derive(Debug, Clone, Serialize)]
pub struct LoginResult {
    /// The role.
    pub role: String,
    /// Whether the server accepted the new password.
    pub ok: bool,
    /// Why not, when it did not (the server's words, never a password).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Logs in as each role with `password`, all at once, and reports each result in `roles` order.
/// Used by the rotation's verification and by `check --db`. An attempt whose task did not
/// finish is reported as a failed login, never dropped.
pub async fn logins<R: AsRef<str>>(target: &Target, roles: &[R], password: &Secret) -> Vec<LoginResult> {
    let mut set = tokio::task::JoinSet::new();
    let mut index_of = std::collections::HashMap::with_capacity(roles.len());
    for (index, role) in roles.iter().enumerate() {
        let login = target.as_login(role.as_ref(), password);
        let handle = set.spawn(async move { login.try_login().await });
        index_of.insert(handle.id(), index);
    }
    let mut outcomes: Vec<Result<(), String>> = vec![Err("the login attempt did not finish".to_owned()); roles.len()];
    while let Some(joined) = set.join_next_with_id().await {
        if let Ok((id, outcome)) = joined {
            if let Some(&index) = index_of.get(&id) {
                outcomes[index] = outcome;
            }
        }
    }
    roles
        .iter()
        .zip(outcomes)
        .map(|(role, outcome)| LoginResult {
            role: role.as_ref().to_owned(),
            ok: outcome.is_ok(),
            error: outcome.err(),
        })
        .collect()
}
