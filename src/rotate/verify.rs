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
pub async fn logins(target: &Target, roles: &[&str], password: &Secret) -> Vec<LoginResult> {
    let attempts = roles.iter().map(|role| {
        let login = target.as_login(role, password);
        let role = (*role).to_owned();
        async move {
            match login.try_login().await {
                Ok(()) => LoginResult { role, ok: true, error: None },
                Err(reason) => LoginResult { role, ok: false, error: Some(reason) },
            }
        }
    });
    let mut set = tokio::task::JoinSet::new();
    for (index, attempt) in attempts.enumerate() {
        set.spawn(async move { (index, attempt.await) });
    }
    let mut results: Vec<(usize, LoginResult)> = Vec::with_capacity(roles.len());
    while let Some(joined) = set.join_next().await {
        if let Ok(result) = joined {
            results.push(result);
        }
    }
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, r)| r).collect()
}
