//! What a run of `rotate-secrets` will change: the keys, their new values (and those re-minted
//! with them), every copy in the database and what happens to it, the services to recreate and
//! what users notice. Made before anything changes; printed, asked about, then applied.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::crypto::{self, CipherError};
use crate::db::{self, Target};
use crate::envfile::EnvFile;
use crate::error::{Error, Result};
use crate::keyring;
use crate::secret::Secret;
use crate::secrets::{self, Existing};
use crate::service_copies::{self as stored, Found};
use crate::stack::copies::{
    self, copy, CopyId, REALTIME_DB_ENC_KEY, REALTIME_DB_ENC_KEY_FALLBACK, REALTIME_SEEDED_TENANT, VAULT_ENC_KEY,
};
use crate::stack::keys::{self, Recipe};
use crate::stack::notice;

/// One change to a copy in the database; `sql` and `params` run inside the run's transaction in
/// `dbname`. `what` names it for the plan (never a value).
pub struct Step {
    /// The database it runs in.
    pub dbname: String,
    /// For the plan and the report.
    pub what: String,
    /// The statement.
    pub sql: String,
    /// Its text parameters (new stored values, ids), bound, never in the statement text.
    pub params: Vec<Secret>,
}

/// Everything a run will do.
pub struct Plan {
    /// The keys asked for.
    pub keys: Vec<&'static str>,
    /// New values for the `.env`: the keys and what is re-minted with them.
    pub minted: Vec<(&'static str, Secret)>,
    /// The database changes, in order.
    pub steps: Vec<Step>,
    /// Copies left to their service, which rewrites them at its next start.
    pub left_to_services: Vec<String>,
    /// The services to recreate.
    pub services: Vec<&'static str>,
}

impl Plan {
    /// The plan for people (names, places and counts; never a value).
    pub fn to_text(&self, env_path: &str) -> String {
        let mut lines = vec![format!("rotate-secrets: {}", self.keys.join(", "))];
        let changed: Vec<&str> = self.minted.iter().map(|(k, _)| *k).collect();
        lines.push(format!("  {env_path} gets new values for: {}", changed.join(", ")));
        if self.steps.is_empty() {
            lines.push("  database: no copy to change (none of these keys has one there)".to_owned());
        }
        for step in &self.steps {
            lines.push(format!("  database {}: {}", step.dbname, step.what));
        }
        for left in &self.left_to_services {
            lines.push(format!("  left to its service: {left}"));
        }
        lines.push(format!("  services to recreate: {}", self.services.join(" ")));
        for key in &self.keys {
            lines.push(format!("  {key}: what users notice: {}", notice::after_rotation(key)));
        }
        lines.join("\n")
    }

    /// The plan as JSON (names only).
    pub fn to_json(&self) -> Value {
        json!({
            "keys": self.keys,
            "env_keys": self.minted.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            "database_changes": self.steps.iter().map(|s| json!({"database": s.dbname, "change": s.what})).collect::<Vec<_>>(),
            "left_to_services": self.left_to_services,
            "services": self.services,
            "users_notice": self.keys.iter().map(|k| json!({"key": k, "notice": notice::after_rotation(k)})).collect::<Vec<_>>(),
        })
    }
}

/// The keys a run rotates: those named (or every one `rotate-secrets` owns, with `all`). A key
/// another command rotates, or that is no secret of the stack, is a usage error naming what to
/// use instead.
pub fn chosen_keys(named: &[String], all: bool) -> Result<Vec<&'static str>> {
    if all {
        return Ok(copies::rotated_here().collect());
    }
    let mut out: Vec<&'static str> = Vec::new();
    for name in named {
        if let Some(command) = copies::rotated_by(name) {
            return Err(Error::Usage(format!("{name} is not rotated by rotate-secrets: {command}")));
        }
        let Some(key) = copies::rotated_here().find(|k| k == name) else {
            return Err(Error::Usage(format!(
                "{} is not a secret rotate-secrets knows; it rotates {}",
                printable(name),
                copies::rotated_here().collect::<Vec<_>>().join(", ")
            )));
        };
        if !out.contains(&key) {
            out.push(key);
        }
    }
    if out.is_empty() {
        return Err(Error::Usage("name the secrets to rotate, or --all".to_owned()));
    }
    Ok(out)
}

fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// New values for `keys` and what is derived from them. A stack with the signing-key sets gets
/// only their `oct` key changed with `JWT_SECRET` (SPEC §7): the key ring's own function
/// rebuilds both sets, keeping every EC key, standby and previous ones included.
pub fn mint(env: &EnvFile, keys: &[&'static str]) -> Result<Vec<(&'static str, Secret)>> {
    let base: BTreeSet<&'static str> = keys.iter().copied().collect();
    let wanted = keys::with_dependents(&base, false);
    let recipes: Vec<(&'static str, Recipe)> =
        keys::KEYS.iter().filter(|spec| wanted.contains(spec.key)).map(|spec| (spec.key, spec.recipe)).collect();
    let existing = Existing {
        jwt_secret: env.get("JWT_SECRET").filter(|v| !v.is_empty()).map(|v| Secret::new(v.to_owned())),
        jwt_keys: None,
    };
    let mut minted = secrets::mint(recipes, &existing, secrets::unix_now())?;
    let new_secret = minted.iter().find(|(key, _)| *key == "JWT_SECRET").map(|(_, v)| v.expose().to_owned());
    if let (Some(new_secret), Some(ring)) = (new_secret, env.get("JWT_KEYS").filter(|v| !v.is_empty())) {
        let sets = keyring::rebuilt_sets(ring, env.get("JWT_JWKS"), Some(&new_secret)).map_err(|e| {
            Error::Precondition(format!(
                "{}: {}, so its EC keys cannot be kept with a new JWT_SECRET; fix the ring (pmoves-secrets check) \
                 first; nothing was changed",
                e.key, e.problem
            ))
        })?;
        minted.extend(sets.into_iter().map(|(key, value)| (key, Secret::new(value))));
    }
    Ok(minted)
}

/// The services whose input changes: every reader of a minted key.
pub fn services(minted: &[(&'static str, Secret)]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for (key, _) in minted {
        for service in keys::key(key).map(|spec| spec.read_by).unwrap_or_default() {
            if !out.contains(service) {
                out.push(service);
            }
        }
    }
    out.sort_unstable();
    out
}

/// The value `key` has now and will have after the run.
struct Values<'a> {
    env: &'a EnvFile,
    minted: &'a [(&'static str, Secret)],
    scope: Scope<'a>,
}

impl Values<'_> {
    fn old(&self, key: &str) -> Option<String> {
        self.env.get(key).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    fn after(&self, key: &str) -> Option<String> {
        self.minted.iter().find(|(k, _)| *k == key).map(|(_, v)| v.expose().to_owned()).or_else(|| self.old(key))
    }

    fn rotated(&self, key: &str) -> bool {
        self.minted.iter().any(|(k, _)| *k == key)
    }

    fn realtime_key(&self, new: bool) -> String {
        let value = if new { self.after(REALTIME_DB_ENC_KEY) } else { self.old(REALTIME_DB_ENC_KEY) };
        value.unwrap_or_else(|| REALTIME_DB_ENC_KEY_FALLBACK.to_owned())
    }
}

/// The databases whose copies a plan follows.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every database holding a copy: a new run.
    All,
    /// Only these: finishing a run that committed in the others, whose copies already hold the
    /// new values (and, under a new key, no longer decrypt under the `.env`'s).
    Only(&'a [String]),
}

impl Scope<'_> {
    fn covers(self, dbname: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(names) => names.iter().any(|n| n == dbname),
        }
    }

    /// What was found, as far as this scope goes: a table in a database outside it is none.
    fn keep<T>(self, found: Found<T>) -> Found<T> {
        match &found {
            Found::Rows { dbname, .. } | Found::Unreadable { dbname, .. } if !self.covers(dbname) => Found::Absent,
            _ => found,
        }
    }
}

/// Looks at the copies in the database and decides each step. `main` is a session on `target`;
/// `env` holds the values the copies in `scope` are under now, `minted` the new ones. Returns
/// the steps and the copies left to their services.
pub async fn database_steps(
    target: &Target,
    main: &tokio_postgres::Client,
    env: &EnvFile,
    minted: &[(&'static str, Secret)],
    scope: Scope<'_>,
) -> Result<(Vec<Step>, Vec<String>)> {
    let values = Values { env, minted, scope };
    let mut steps = Vec::new();
    let mut left = Vec::new();
    if values.rotated(VAULT_ENC_KEY) {
        steps.extend(supavisor_step(target, main, &values).await?);
    }
    if values.rotated(REALTIME_DB_ENC_KEY) || values.rotated("JWT_SECRET") {
        realtime_steps(target, main, &values, &mut steps, &mut left).await?;
    }
    if values.rotated("LOGFLARE_PUBLIC_ACCESS_TOKEN") {
        steps.extend(logflare_api_key_steps(target, main, &values).await?);
    }
    if values.rotated("LOGFLARE_PUBLIC_ACCESS_TOKEN") || values.rotated("LOGFLARE_PRIVATE_ACCESS_TOKEN") {
        left.push(format!(
            "{} (Logflare revokes the old access tokens and creates the new ones at its start)",
            copy(CopyId::LogflareAccessToken).place()
        ));
    }
    if values.rotated("JWT_SECRET") && values.scope.covers(target.dbname()) {
        steps.extend(jwt_secret_setting_steps(target, main).await?);
    }
    Ok((steps, left))
}

/// A new `VAULT_ENC_KEY`: `_supavisor` reset where it is (Supavisor re-seeds it at its start).
async fn supavisor_step(target: &Target, main: &tokio_postgres::Client, values: &Values<'_>) -> Result<Option<Step>> {
    let lock = db::DEFAULT_LOCK_TIMEOUT.get();
    let supavisor = copy(CopyId::SupavisorPoolerPassword);
    match stored::locate(target, main, supavisor, lock).await {
        Ok(Some(location)) if values.scope.covers(&location.dbname) => {
            Ok(Some(reset_supavisor(location.client(), &location.dbname, lock).await?))
        }
        Ok(_) => Ok(None),
        Err((dbname, _)) if !values.scope.covers(&dbname) => Ok(None),
        Err((dbname, reason)) => Err(unreadable(supavisor.place(), &dbname, &reason)),
    }
}

/// A new public Logflare token: the default user's legacy API key, where it holds the old token.
async fn logflare_api_key_steps(
    target: &Target,
    main: &tokio_postgres::Client,
    values: &Values<'_>,
) -> Result<Vec<Step>> {
    let api_key = copy(CopyId::LogflareUserApiKey);
    let lock = db::DEFAULT_LOCK_TIMEOUT.get();
    let found = values.scope.keep(stored::logflare_users(target, main, api_key, lock).await);
    let Some((dbname, rows)) = rows_or_refusal(found, api_key)? else { return Ok(Vec::new()) };
    let old = values.old("LOGFLARE_PUBLIC_ACCESS_TOKEN").unwrap_or_default();
    let new = values.after("LOGFLARE_PUBLIC_ACCESS_TOKEN").unwrap_or_default();
    let holding_old = rows.iter().filter(|u| crypto::same_secret(u.api_key.expose().as_bytes(), &old));
    let steps = holding_old.map(|user| Step {
        dbname: dbname.clone(),
        what: format!("{} of user {}: the new public token", api_key.place(), user.id),
        sql: "UPDATE _analytics.users SET api_key = $1, updated_at = now() WHERE id = $2::text::bigint".to_owned(),
        params: vec![Secret::new(new.clone()), Secret::new(user.id.to_string())],
    });
    Ok(steps.collect())
}

/// A new `JWT_SECRET`: every database or role setting of `app.settings.jwt_secret` removed.
async fn jwt_secret_setting_steps(target: &Target, main: &tokio_postgres::Client) -> Result<Vec<Step>> {
    let settings = stored::jwt_secret_settings(main, db::DEFAULT_LOCK_TIMEOUT.get())
        .await
        .map_err(|reason| unreadable(copy(CopyId::JwtSecretSetting).place(), target.dbname(), &reason))?;
    let steps = settings.iter().map(|reset| Step {
        dbname: target.dbname().to_owned(),
        what: format!("{} {}: removed", stored::JWT_SECRET_SETTING, reset.place()),
        sql: reset.reset_sql(),
        params: Vec::new(),
    });
    Ok(steps.collect())
}

/// The rows found and their database; `None` when the table is absent; a refusal when it could
/// not be read (its copy could not be followed).
fn rows_or_refusal<T>(found: Found<T>, copy: &copies::Copy) -> Result<Option<(String, Vec<T>)>> {
    match found {
        Found::Absent => Ok(None),
        Found::Unreadable { dbname, reason } => Err(unreadable(copy.place(), &dbname, &reason)),
        Found::Rows { dbname, rows } => Ok(Some((dbname, rows))),
    }
}

fn unreadable(place: String, dbname: &str, reason: &str) -> Error {
    Error::Precondition(format!(
        "{place} in database {dbname} could not be read ({reason}), so its copy cannot be followed; nothing was changed"
    ))
}

async fn reset_supavisor(client: &tokio_postgres::Client, dbname: &str, lock: std::time::Duration) -> Result<Step> {
    let failed = |reason: String| Error::Database { step: "reading _supavisor's owner".into(), reason };
    let sql = "SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = '_supavisor'";
    let rows = db::bounded_read(client, lock, sql, &[]).await.map_err(|e| failed(db::describe(&e)))?;
    let row = rows.first().ok_or_else(|| failed("_supavisor is gone".into()))?;
    let owner: String = row.try_get(0).map_err(|e| failed(db::describe(&e)))?;
    Ok(Step {
        dbname: dbname.to_owned(),
        what: format!(
            "_supavisor reset (dropped and re-created, owner {}); Supavisor re-seeds it from the new VAULT_ENC_KEY at its start",
            printable(&owner)
        ),
        sql: format!(
            "DROP SCHEMA IF EXISTS _supavisor CASCADE; CREATE SCHEMA _supavisor AUTHORIZATION {}",
            stored::quote_ident(&owner)
        ),
        params: Vec::new(),
    })
}

/// Re-encrypts (and, for a new `JWT_SECRET`, rewrites) Realtime's tenant values. A value the old
/// key does not decrypt is refused, unless it belongs to the tenant Realtime re-seeds at start.
async fn realtime_steps(
    target: &Target,
    main: &tokio_postgres::Client,
    values: &Values<'_>,
    steps: &mut Vec<Step>,
    left: &mut Vec<String>,
) -> Result<()> {
    let keys = RealtimeKeys { old: values.realtime_key(false), new: values.realtime_key(true) };
    steps.extend(realtime_tenant_steps(target, main, values, &keys, left).await?);
    if keys.old != keys.new {
        for id in [CopyId::RealtimeDbPassword, CopyId::RealtimeDbConnection] {
            steps.extend(realtime_setting_steps(target, main, values, copy(id), &keys, left).await?);
        }
    }
    Ok(())
}

/// `REALTIME_DB_ENC_KEY` (or upstream's fallback) before and after the run.
struct RealtimeKeys {
    old: String,
    new: String,
}

/// Each tenant's `jwt_secret` under the new key: the new `JWT_SECRET` when that rotates, else
/// the same secret re-encrypted.
async fn realtime_tenant_steps(
    target: &Target,
    main: &tokio_postgres::Client,
    values: &Values<'_>,
    keys: &RealtimeKeys,
    left: &mut Vec<String>,
) -> Result<Vec<Step>> {
    let tenants = copy(CopyId::RealtimeTenantJwtSecret);
    let lock = db::DEFAULT_LOCK_TIMEOUT.get();
    let found = values.scope.keep(stored::realtime_tenants(target, main, tenants, lock).await);
    let Some((dbname, rows)) = rows_or_refusal(found, tenants)? else { return Ok(Vec::new()) };
    let mut steps = Vec::new();
    for tenant in rows {
        let Some(stored) = tenant.jwt_secret else { continue };
        let what = format!("{} of tenant {}", tenants.place(), printable(&tenant.external_id));
        let Some(plain) = reencryptable(stored.expose(), &keys.old, &tenant.external_id, &what, left)? else {
            continue;
        };
        let text = if values.rotated("JWT_SECRET") {
            values.after("JWT_SECRET").unwrap_or_default()
        } else {
            String::from_utf8_lossy(&plain).into_owned()
        };
        let new_stored = crypto::realtime::encrypt(keys.new.as_bytes(), text.as_bytes()).map_err(key_error)?;
        steps.push(Step {
            dbname: dbname.clone(),
            what: format!("{what}: re-encrypted"),
            sql: "UPDATE _realtime.tenants SET jwt_secret = $1, updated_at = now() WHERE external_id = $2".to_owned(),
            params: vec![Secret::new(new_stored), Secret::new(tenant.external_id.clone())],
        });
    }
    Ok(steps)
}

/// The encrypted fields of `settings` (a `postgres_cdc_rls` row's) re-encrypted under the new key.
async fn realtime_setting_steps(
    target: &Target,
    main: &tokio_postgres::Client,
    values: &Values<'_>,
    settings: &copies::Copy,
    keys: &RealtimeKeys,
    left: &mut Vec<String>,
) -> Result<Vec<Step>> {
    let lock = db::DEFAULT_LOCK_TIMEOUT.get();
    let found = values.scope.keep(stored::realtime_settings(target, main, settings, lock).await);
    let Some((dbname, rows)) = rows_or_refusal(found, settings)? else { return Ok(Vec::new()) };
    let mut steps = Vec::new();
    for setting in rows {
        let what = format!(
            "_realtime.extensions.settings {} of tenant {}",
            printable(&setting.field),
            printable(&setting.tenant)
        );
        let Some(plain) = reencryptable(setting.stored.expose(), &keys.old, &setting.tenant, &what, left)? else {
            continue;
        };
        let new_stored = crypto::realtime::encrypt(keys.new.as_bytes(), &plain).map_err(key_error)?;
        steps.push(Step {
            dbname: dbname.clone(),
            what: format!("{what}: re-encrypted"),
            sql:
                "UPDATE _realtime.extensions SET settings = jsonb_set(settings::jsonb, ARRAY[$2], to_jsonb($1::text)), \
                  updated_at = now() WHERE type = 'postgres_cdc_rls' AND tenant_external_id = $3"
                    .to_owned(),
            params: vec![
                Secret::new(new_stored),
                Secret::new(setting.field.clone()),
                Secret::new(setting.tenant.clone()),
            ],
        });
    }
    Ok(steps)
}

fn key_error(err: CipherError) -> Error {
    Error::Precondition(format!("{REALTIME_DB_ENC_KEY} cannot be used: {err}; nothing was changed"))
}

/// The plaintext of a Realtime value under the old key; `None` (noted in `left`) for a value of
/// the seeded tenant that does not decrypt (Realtime rewrites it at start) or a GCM value of it.
fn reencryptable(
    stored: &str,
    old_key: &str,
    tenant: &str,
    what: &str,
    left: &mut Vec<String>,
) -> Result<Option<crypto::Plaintext>> {
    let seeded = tenant == REALTIME_SEEDED_TENANT;
    match crypto::realtime::decrypt(old_key.as_bytes(), stored) {
        Ok(plain) => Ok(Some(plain)),
        Err(_) if seeded => {
            left.push(format!("{what} (Realtime re-creates this tenant at its start with SEED_SELF_HOST)"));
            Ok(None)
        }
        Err(err) => Err(Error::Precondition(format!(
            "{what} cannot be re-encrypted: {err} ({REALTIME_DB_ENC_KEY} of the .env, or upstream's fallback when it \
             is unset); `pmoves-secrets check --db` says more; nothing was changed"
        ))),
    }
}
