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
use crate::stack::server::{OwnServer, Whose};
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

/// A connection string the rotation leaves alone although it may carry the old password: it
/// belongs to someone else (named, never shown).
#[derive(Debug, Clone, Serialize)]
pub struct LeftAlone {
    /// The `.env` key, or `_analytics.source_backends id N`.
    pub key: String,
    /// Whose it is: `user app_user`, `server reports.example.com:5432`, `no user`.
    pub why: String,
}

impl LeftAlone {
    fn new(key: String, whose: &Whose) -> Self {
        let why = match whose {
            Whose::Stack => "the stack's own".to_owned(),
            Whose::OtherRole(user) => format!("for {}, not a rotated role", printable(user)),
            Whose::NoUser => "it names no user".to_owned(),
            Whose::OtherServer(server) => format!("for another server, {}", printable(server)),
        };
        LeftAlone { key, why }
    }
}

/// A role that is rotated but cannot log in now, and why.
#[derive(Debug, Clone, Serialize)]
pub struct CannotLogIn {
    /// The role.
    pub role: &'static str,
    /// `VALID UNTIL … is in the past`, `CONNECTION LIMIT 0`.
    pub why: String,
}

/// Text read from a file or the server, fit for the terminal (no control characters).
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// What the rotation will do, as shown before the confirmation and in the report.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// `user@host:port/db` of the admin connection.
    pub target: String,
    /// The database the transaction runs in.
    pub database: String,
    /// The server's configured `password_encryption`, which a role without a verifier gets.
    pub password_encryption: Encryption,
    /// Roles that get the new password.
    pub roles_to_change: Vec<&'static str>,
    /// Of those, the ones whose verifier stays (or becomes) md5; the others get SCRAM.
    pub md5_roles: Vec<&'static str>,
    /// Of those, the ones that can log in now, verified afterwards.
    pub login_roles: Vec<&'static str>,
    /// LOGIN roles rotated but not verified: they cannot log in now anyway.
    pub cannot_log_in: Vec<CannotLogIn>,
    /// Roles left alone.
    pub skipped: Vec<Skipped>,
    /// `type = 'postgres'` rows of `_analytics.source_backends` whose URL gets the new password
    /// (`None` when the table does not exist).
    pub analytics_rows: Option<i64>,
    /// Its postgres rows left alone (another server's, another role's, no user).
    pub analytics_left_alone: Vec<LeftAlone>,
    /// Owner `_supavisor` is re-created with (`None`: the schema does not exist, nothing to reset).
    pub supavisor_owner: Option<String>,
    /// The `.env` that will be rewritten.
    pub env_file: PathBuf,
    /// Its keys that change.
    pub env_keys: Vec<String>,
    /// Its connection strings holding the old password that stay as they are (someone else's).
    pub env_keys_left_alone: Vec<LeftAlone>,
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
    /// The fingerprint discovery saw, re-checked under the rotation lock.
    pub fingerprint: String,
    /// The stack's own server, by all its names: whose connection strings follow.
    pub own_server: OwnServer,
}

impl Prepared {
    /// Whether `connection_string` is the stack's own copy (a rotated role, the stack's server),
    /// so it follows the rotation.
    pub fn follows(&self, connection_string: &str) -> bool {
        self.own_server.whose(connection_string, &self.plan.roles_to_change) == Some(Whose::Stack)
    }
}

/// What `prepare` is given besides discovery.
pub struct Inputs<'a> {
    /// `user@host:port/db` of the admin connection.
    pub target: String,
    /// The `.env`'s path and contents.
    pub env_file: PathBuf,
    /// Its contents.
    pub env: &'a EnvFile,
    /// The password the `.env` holds now.
    pub old_password: Option<&'a Secret>,
    /// The stack's own server.
    pub own_server: OwnServer,
}

/// Builds the plan, the verifiers and the rewritten `.env` for `new_password`.
///
/// Every connection string of the `.env` whose password is the old one gets the new one when
/// it is the stack's own (a rotated role on the stack's server); the others are named as left
/// alone. So are the analytics backends.
pub fn prepare(discovery: &Discovery, inputs: Inputs<'_>, new_password: Secret) -> Result<Prepared, EnvFileError> {
    let old_password = inputs.old_password;
    let RolePlan { roles, can_log_in, skipped } = role_plan(discovery, old_password);
    let verifiers = role_verifiers(&roles, &new_password);
    let roles_to_change: Vec<&'static str> = roles.iter().map(|(role, _)| *role).collect();
    let md5_roles = roles.iter().filter(|(_, kind)| *kind == Encryption::Md5).map(|(role, _)| *role).collect();
    let login_roles = can_log_in.iter().filter(|(_, why)| why.is_none()).map(|(role, _)| *role).collect();
    let cannot_log_in = can_log_in
        .into_iter()
        .filter_map(|(role, why)| why.map(|why| CannotLogIn { role, why: printable(&why) }))
        .collect();

    let (new_env, env_keys, env_keys_left_alone) =
        rewrite_env(inputs.env, old_password, &new_password, &inputs.own_server, &roles_to_change)?;
    let (analytics_rows, analytics_left_alone) = analytics_plan(discovery, &inputs.own_server, &roles_to_change);
    let plan = Plan {
        target: inputs.target,
        database: discovery.work_db.clone(),
        password_encryption: discovery.encryption,
        roles_to_change,
        md5_roles,
        login_roles,
        cannot_log_in,
        skipped,
        analytics_rows,
        analytics_left_alone,
        supavisor_owner: discovery.supavisor_owner.clone(),
        env_file: inputs.env_file,
        env_keys,
        env_keys_left_alone,
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
        own_server: inputs.own_server,
    })
}

/// The roles to change with the verifier kind each gets, the LOGIN ones among them (with why
/// one cannot log in now), and the roles left alone.
struct RolePlan {
    roles: Vec<(&'static str, Encryption)>,
    can_log_in: Vec<(&'static str, Option<String>)>,
    skipped: Vec<Skipped>,
}

fn role_plan(discovery: &Discovery, old_password: Option<&Secret>) -> RolePlan {
    let existing = discovery.roles.iter().filter(|r| r.exists);
    let mut plan = RolePlan {
        roles: existing.clone().map(|r| (r.name, r.verifier_kind.unwrap_or(discovery.encryption))).collect(),
        can_log_in: existing.filter(|r| r.can_login).map(|r| (r.name, r.cannot_log_in.clone())).collect(),
        skipped: discovery
            .roles
            .iter()
            .filter(|r| !r.exists)
            .map(|r| Skipped { role: r.name, reason: SkipReason::Absent })
            .collect(),
    };
    // Studio's read-only connection needs the stack's password, so an operator may have given
    // it to supabase_read_only_user; then it follows the rotation. Otherwise it is left alone.
    match &discovery.read_only {
        Some(ReadOnlyRole { verifier: None, .. }) => {
            plan.skipped.push(Skipped { role: PASSWORDLESS_ROLE, reason: SkipReason::NoPasswordByDesign })
        }
        Some(ReadOnlyRole { verifier: Some(stored), can_login, cannot_log_in })
            if old_password.is_some_and(|old| verifier::matches(stored.expose(), old.expose(), PASSWORDLESS_ROLE)) =>
        {
            let kind = if stored.expose().starts_with("md5") { Encryption::Md5 } else { Encryption::ScramSha256 };
            plan.roles.push((PASSWORDLESS_ROLE, kind));
            if *can_login {
                plan.can_log_in.push((PASSWORDLESS_ROLE, cannot_log_in.clone()));
            }
        }
        Some(ReadOnlyRole { verifier: Some(_), .. }) => {
            plan.skipped.push(Skipped { role: PASSWORDLESS_ROLE, reason: SkipReason::OwnPassword })
        }
        None => {}
    }
    plan
}

/// How many analytics backends follow, and the ones left alone (by the same rule as the
/// transaction applies).
fn analytics_plan(discovery: &Discovery, own: &OwnServer, rotated: &[&str]) -> (Option<i64>, Vec<LeftAlone>) {
    let Some(analytics) = &discovery.analytics else { return (None, Vec::new()) };
    let mut follow = 0;
    let mut left = Vec::new();
    for backend in &analytics.backends {
        let whose = backend.url().and_then(|url| own.whose(url.expose(), rotated)).unwrap_or(Whose::NoUser);
        if whose == Whose::Stack {
            follow += 1;
        } else {
            left.push(LeftAlone::new(format!("_analytics.source_backends id {}", printable(&backend.id)), &whose));
        }
    }
    (Some(follow), left)
}

/// Each role's verifier of `password`, of the kind it has (or the server's default).
///
/// All SCRAM roles share one SCRAM verifier (one salt): they share the password by design, so
/// anyone able to read `pg_authid` learns nothing from twelve salts that one would hide, and
/// cracking any one verifier costs the same. It saves eleven PBKDF2 runs (about 11 ms of CPU)
/// on the rotation's critical path. MD5 verifiers are salted by the role name, so each differs.
pub fn role_verifiers(roles: &[(&'static str, Encryption)], password: &Secret) -> Vec<(&'static str, Secret)> {
    let mut shared_scram: Option<Secret> = None;
    roles
        .iter()
        .map(|&(role, kind)| {
            let verifier = match kind {
                Encryption::ScramSha256 => {
                    shared_scram.get_or_insert_with(|| Secret::new(verifier::make(password.expose(), "", kind))).clone()
                }
                Encryption::Md5 => Secret::new(verifier::make(password.expose(), role, kind)),
            };
            (role, verifier)
        })
        .collect()
}

/// The `.env` with every copy of the password updated, the names of the keys that changed,
/// and the connection strings left alone: `POSTGRES_PASSWORD`, its aliases that hold the old
/// password, and every connection string (postgres or JDBC URL, key/value string) whose
/// password is the old one and that is the stack's own (a rotated role on its server).
pub fn rewrite_env(
    env: &EnvFile,
    old_password: Option<&Secret>,
    new_password: &Secret,
    own: &OwnServer,
    rotated: &[&str],
) -> Result<(EnvFile, Vec<String>, Vec<LeftAlone>), EnvFileError> {
    let mut changes: Vec<(String, Secret)> = vec![(POSTGRES_PASSWORD.to_owned(), new_password.clone())];
    let mut left_alone = Vec::new();
    let mut seen = BTreeSet::from([POSTGRES_PASSWORD.to_owned()]);
    if let Some(old) = old_password {
        for (key, value) in env.pairs() {
            if seen.contains(key) {
                continue;
            }
            let updated = if PASSWORD_ALIASES.contains(&key) {
                (value == old.expose()).then(|| new_password.expose().to_owned())
            } else if dburl::password(value).is_some_and(|p| Zeroizing::new(p).as_str() == old.expose()) {
                match own.whose(value, rotated) {
                    Some(Whose::Stack) => dburl::with_password(value, new_password.expose()),
                    Some(whose) => {
                        seen.insert(key.to_owned());
                        left_alone.push(LeftAlone::new(key.to_owned(), &whose));
                        None
                    }
                    None => None,
                }
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
    Ok((new_env, changes.into_iter().map(|(k, _)| k).collect(), left_alone))
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
        if !self.md5_roles.is_empty() {
            out.push_str(&format!(
                "  verifiers: each role keeps its kind; md5 for {}, SCRAM-SHA-256 for the others\n",
                self.md5_roles.join(", ")
            ));
        }
        for role in &self.cannot_log_in {
            out.push_str(&format!(
                "  {}: cannot log in now ({}); rotated all the same, not verified afterwards\n",
                role.role, role.why
            ));
        }
        for skipped in &self.skipped {
            out.push_str(&format!("  {}: {}\n", skipped.role, skipped.reason.describe()));
        }
        match self.analytics_rows {
            Some(n) => out.push_str(&format!(
                "  analytics: {n} postgres source backend URL(s) in _analytics.source_backends get the new password\n"
            )),
            None => out.push_str("  analytics: no _analytics.source_backends table, nothing to update\n"),
        }
        for left in &self.analytics_left_alone {
            out.push_str(&format!("  analytics: {} left alone ({})\n", left.key, left.why));
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
        for left in &self.env_keys_left_alone {
            out.push_str(&format!(
                "  .env: {} left alone ({}), although it holds the old password\n",
                printable(&left.key),
                left.why
            ));
        }
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
        let own = OwnServer::new(|_| None, "127.0.0.1", 5432);
        let (new_env, keys, left) =
            rewrite_env(&env, Some(&Secret::new("old0".into())), &Secret::new("new1".into()), &own, &["u"]).unwrap();
        assert_eq!(keys, ["POSTGRES_PASSWORD", "SUPABASE_DB_PASSWORD", "JDBC", "KV", "URL"]);
        assert!(left.is_empty());
        assert_eq!(new_env.get("JDBC"), Some("jdbc:postgresql://db/p?user=u&password=new1"));
        assert_eq!(new_env.get("KV"), Some("host=db user=u password=new1"));
        assert_eq!(new_env.get("DB_PASSWORD"), Some("someone-elses"));
        assert_eq!(new_env.get("OTHER"), Some("postgresql://app:app-pw@db/p"));
        assert_eq!(new_env.get("NOT_A_CONNECTION"), Some("old0"), "an unknown key is not assumed to be a copy");
    }

    #[test]
    fn someone_elses_connection_strings_are_left_alone_and_named() {
        let env = EnvFile::parse(
            "POSTGRES_PASSWORD=old0\n\
             APP=postgresql://app_user:old0@db/p\n\
             REPORTS=postgresql://postgres:old0@reports.example.com/r\n\
             BARE=postgresql://db/p?password=old0\n",
            None,
        )
        .unwrap();
        let own = OwnServer::new(|_| None, "127.0.0.1", 5432);
        let (new_env, keys, left) =
            rewrite_env(&env, Some(&Secret::new("old0".into())), &Secret::new("new1".into()), &own, &["postgres"])
                .unwrap();
        assert_eq!(keys, ["POSTGRES_PASSWORD"]);
        let named: Vec<&str> = left.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(named, ["APP", "REPORTS", "BARE"]);
        assert_eq!(new_env.get("APP"), Some("postgresql://app_user:old0@db/p"));
    }

    #[test]
    fn each_role_keeps_its_kind_and_scram_roles_share_one_verifier() {
        let roles = [("a", Encryption::ScramSha256), ("b", Encryption::Md5), ("c", Encryption::ScramSha256)];
        let made = role_verifiers(&roles, &Secret::new("pw".into()));
        assert!(made[0].1.expose().starts_with("SCRAM-SHA-256$"));
        assert_eq!(made[0].1.expose(), made[2].1.expose());
        assert_eq!(made[1].1.expose(), verifier::make("pw", "b", Encryption::Md5));
    }
}
