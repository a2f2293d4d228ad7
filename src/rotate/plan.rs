//! Steps 2–3 of a rotation: the new password, its verifiers and the plan shown to the operator.
//!
//! All hashing happens here, before `BEGIN`, so the transaction holds its locks only for the
//! statements themselves.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;
use zeroize::Zeroizing;

use super::discover::{Discovery, ReadOnlyRole};
use super::verifier::{self, Encryption};
use crate::analytics::UrlColumns;
use crate::dburl;
use crate::envfile::{EnvFile, EnvFileError};
use crate::secret::Secret;
use crate::stack::roles::PASSWORDLESS_ROLE;
use crate::stack::services::HOLDING_DB_PASSWORD;
use crate::stack::POSTGRES_PASSWORD;

/// Other names under which a stack's `.env` keeps a copy of `POSTGRES_PASSWORD` itself (not
/// inside a connection string): such a copy follows the rotation when it holds the old password.
pub const PASSWORD_ALIASES: [&str; 4] = ["SUPABASE_DB_PASSWORD", "DB_PASSWORD", "DATABASE_PASSWORD", "PGPASSWORD"];

/// Why the rotation leaves a role alone (serialised as stable kebab-case strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// The role does not exist in this cluster.
    Absent,
    /// `supabase_read_only_user` without a password, as Supabase ships it.
    NoPasswordByDesign,
    /// `supabase_read_only_user` with a password other than the stack's: someone chose it.
    OwnPassword,
}

impl SkipReason {
    /// The reason in words, for the plan and the report.
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::Absent => "does not exist, skipped",
            SkipReason::NoPasswordByDesign => "left alone: it has no password by design",
            SkipReason::OwnPassword => "left alone: it has a password of its own, not the stack's",
        }
    }
}

/// A role the rotation does not touch, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// The role.
    pub role: &'static str,
    /// Why.
    pub reason: SkipReason,
}

/// What the rotation will do, as shown before the confirmation and in the report.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// `user@host:port/db` of the admin connection.
    pub target: String,
    /// The database the transaction runs in.
    pub database: String,
    /// `scram-sha-256` or `md5`.
    pub password_encryption: Encryption,
    /// Roles that get the new password.
    pub roles_to_change: Vec<&'static str>,
    /// Of those, the ones with LOGIN, verified afterwards.
    pub login_roles: Vec<&'static str>,
    /// Roles left alone.
    pub skipped: Vec<Skipped>,
    /// `type = 'postgres'` rows of `_analytics.source_backends` whose URL gets the new password
    /// (`None` when the table does not exist).
    pub analytics_rows: Option<i64>,
    /// Owner `_supavisor` is re-created with (`None`: the schema does not exist, nothing to reset).
    pub supavisor_owner: Option<String>,
    /// The `.env` that will be rewritten.
    pub env_file: PathBuf,
    /// Its keys that change.
    pub env_keys: Vec<String>,
    /// The services to recreate afterwards.
    pub services_to_restart: Vec<&'static str>,
}

/// The plan plus the secret material that carries it out.
pub struct Prepared {
    /// What will happen.
    pub plan: Plan,
    /// The new password.
    pub new_password: Secret,
    /// The password the `.env` held before (for settling a `COMMIT` whose answer was lost).
    pub old_password: Option<Secret>,
    /// `(role, verifier)` for every role to change.
    pub verifiers: Vec<(&'static str, Secret)>,
    /// The `.env` as it will be after the rotation.
    pub new_env: EnvFile,
    /// How `_analytics.source_backends` stores its URLs, if present.
    pub analytics_columns: Option<UrlColumns>,
    /// The fingerprint discovery saw, re-checked under the advisory lock.
    pub fingerprint: String,
}

/// Builds the plan, the verifiers and the rewritten `.env` for `new_password`.
///
/// `old_password` is the password the `.env` holds now; every postgres URL in the file whose
/// password is `old_password` gets the new one, so nothing in the file is left stale.
pub fn prepare(
    discovery: &Discovery,
    target: String,
    env_file: PathBuf,
    env: &EnvFile,
    old_password: Option<&Secret>,
    new_password: Secret,
) -> Result<Prepared, EnvFileError> {
    let mut roles_to_change: Vec<&'static str> = discovery.roles.iter().filter(|r| r.exists).map(|r| r.name).collect();
    let mut login_roles: Vec<&'static str> =
        discovery.roles.iter().filter(|r| r.exists && r.can_login).map(|r| r.name).collect();
    let mut skipped: Vec<Skipped> = discovery
        .roles
        .iter()
        .filter(|r| !r.exists)
        .map(|r| Skipped { role: r.name, reason: SkipReason::Absent })
        .collect();
    // Studio's read-only connection needs the stack's password, so an operator may have given
    // it to supabase_read_only_user; then it follows the rotation. Otherwise it is left alone.
    match &discovery.read_only {
        Some(ReadOnlyRole { verifier: None, .. }) => {
            skipped.push(Skipped { role: PASSWORDLESS_ROLE, reason: SkipReason::NoPasswordByDesign })
        }
        Some(ReadOnlyRole { verifier: Some(stored), can_login })
            if old_password.is_some_and(|old| verifier::matches(stored.expose(), old.expose(), PASSWORDLESS_ROLE)) =>
        {
            roles_to_change.push(PASSWORDLESS_ROLE);
            if *can_login {
                login_roles.push(PASSWORDLESS_ROLE);
            }
        }
        Some(ReadOnlyRole { verifier: Some(_), .. }) => {
            skipped.push(Skipped { role: PASSWORDLESS_ROLE, reason: SkipReason::OwnPassword })
        }
        None => {}
    }
    let verifiers = role_verifiers(&roles_to_change, &new_password, discovery.encryption);

    let (new_env, env_keys) = rewrite_env(env, old_password, &new_password)?;
    let plan = Plan {
        target,
        database: discovery.work_db.clone(),
        password_encryption: discovery.encryption,
        roles_to_change,
        login_roles,
        skipped,
        analytics_rows: discovery.analytics.as_ref().map(|a| a.postgres_rows),
        supavisor_owner: discovery.supavisor_owner.clone(),
        env_file,
        env_keys,
        services_to_restart: HOLDING_DB_PASSWORD.to_vec(),
    };
    Ok(Prepared {
        plan,
        new_password,
        old_password: old_password.cloned(),
        verifiers,
        new_env,
        analytics_columns: discovery.analytics.as_ref().map(|a| a.columns),
        fingerprint: discovery.fingerprint.clone(),
    })
}

/// Each role's verifier of `password`.
///
/// All roles share one SCRAM verifier (one salt): they share the password by design, so
/// anyone able to read `pg_authid` learns nothing from twelve salts that one would hide, and
/// cracking any one verifier costs the same. It saves eleven PBKDF2 runs (about 11 ms of CPU)
/// on the rotation's critical path. MD5 verifiers are salted by the role name, so each differs.
pub fn role_verifiers(
    roles: &[&'static str],
    password: &Secret,
    encryption: Encryption,
) -> Vec<(&'static str, Secret)> {
    match encryption {
        Encryption::ScramSha256 => {
            let shared = Secret::new(verifier::make(password.expose(), "", encryption));
            roles.iter().map(|&role| (role, shared.clone())).collect()
        }
        Encryption::Md5 => {
            roles.iter().map(|&role| (role, Secret::new(verifier::make(password.expose(), role, encryption)))).collect()
        }
    }
}

/// The `.env` with every copy of the password updated, and the names of the keys that changed:
/// `POSTGRES_PASSWORD`, its aliases that hold the old password, and every connection string
/// (postgres or JDBC URL, key/value string) whose password is the old one.
pub fn rewrite_env(
    env: &EnvFile,
    old_password: Option<&Secret>,
    new_password: &Secret,
) -> Result<(EnvFile, Vec<String>), EnvFileError> {
    let mut changes: Vec<(String, Secret)> = vec![(POSTGRES_PASSWORD.to_owned(), new_password.clone())];
    let mut seen = BTreeSet::from([POSTGRES_PASSWORD.to_owned()]);
    if let Some(old) = old_password {
        for (key, value) in env.pairs() {
            if seen.contains(key) {
                continue;
            }
            let updated = if PASSWORD_ALIASES.contains(&key) {
                (value == old.expose()).then(|| new_password.expose().to_owned())
            } else if dburl::password(value).is_some_and(|p| Zeroizing::new(p).as_str() == old.expose()) {
                dburl::with_password(value, new_password.expose())
            } else {
                None
            };
            if let Some(updated) = updated {
                seen.insert(key.to_owned());
                changes.push((key.to_owned(), Secret::new(updated)));
            }
        }
    }
    let mut new_env = env.clone();
    for (key, value) in &changes {
        new_env.set(key, value.expose())?;
    }
    Ok((new_env, changes.into_iter().map(|(k, _)| k).collect()))
}

impl Plan {
    /// The plan as text for the operator (names and counts, never values).
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "Rotation plan for {} (transaction in database {}, password_encryption {})\n",
            self.target,
            self.database,
            self.password_encryption.as_str()
        );
        out.push_str(&format!(
            "  roles to change ({}): {}\n",
            self.roles_to_change.len(),
            self.roles_to_change.join(", ")
        ));
        for skipped in &self.skipped {
            out.push_str(&format!("  {}: {}\n", skipped.role, skipped.reason.describe()));
        }
        match self.analytics_rows {
            Some(n) => out.push_str(&format!(
                "  analytics: {n} postgres source backend URL(s) in _analytics.source_backends get the new password\n"
            )),
            None => out.push_str("  analytics: no _analytics.source_backends table, nothing to update\n"),
        }
        match &self.supavisor_owner {
            Some(owner) => out.push_str(&format!(
                "  supavisor: schema _supavisor dropped and re-created empty (owner {owner}); supavisor re-seeds it on restart\n"
            )),
            None => out.push_str("  supavisor: no _supavisor schema, nothing to reset\n"),
        }
        out.push_str(&format!(
            "  .env: {} — {} rewritten (staged in a pending file before the database changes)\n",
            self.env_file.display(),
            self.env_keys.join(", ")
        ));
        out.push_str(&format!("  restart afterwards: {}\n", self.services_to_restart.join(" ")));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_copy_of_the_old_password_follows_and_nothing_else() {
        let env = EnvFile::parse(
            "POSTGRES_PASSWORD=old0\n\
             SUPABASE_DB_PASSWORD=old0\n\
             DB_PASSWORD=someone-elses\n\
             JDBC=jdbc:postgresql://db/p?user=u&password=old0\n\
             KV='host=db user=u password=old0'\n\
             URL=postgresql://u:old0@db/p\n\
             OTHER=postgresql://app:app-pw@db/p\n\
             NOT_A_CONNECTION=old0\n",
            None,
        )
        .unwrap();
        let (new_env, keys) =
            rewrite_env(&env, Some(&Secret::new("old0".into())), &Secret::new("new1".into())).unwrap();
        assert_eq!(keys, ["POSTGRES_PASSWORD", "SUPABASE_DB_PASSWORD", "JDBC", "KV", "URL"]);
        assert_eq!(new_env.get("JDBC"), Some("jdbc:postgresql://db/p?user=u&password=new1"));
        assert_eq!(new_env.get("KV"), Some("host=db user=u password=new1"));
        assert_eq!(new_env.get("DB_PASSWORD"), Some("someone-elses"));
        assert_eq!(new_env.get("OTHER"), Some("postgresql://app:app-pw@db/p"));
        assert_eq!(new_env.get("NOT_A_CONNECTION"), Some("old0"), "an unknown key is not assumed to be a copy");
    }
}
