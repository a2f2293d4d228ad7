//! `--db`, the copies the services keep in the database (SPEC §4, §8): does `VAULT_ENC_KEY`
//! decrypt Supavisor's stored credentials, and to the current password? Do Realtime's tenant rows
//! decrypt under `REALTIME_DB_ENC_KEY`, to the current `JWT_SECRET` and password? Does Logflare's
//! user keep a public token other than `LOGFLARE_PUBLIC_ACCESS_TOKEN`, or an access-token row an
//! old token?
//!
//! Which copies exist, where, and whether their service rewrites them at its next start is
//! [`crate::stack::copies`]; finding and reading them is [`crate::service_copies`]; decrypting is
//! [`crate::crypto`]. A stale copy is an error unless its service rewrites it at its next start
//! (then a warning that says so); a table that is absent is no finding; one that cannot be read,
//! or a value in a format no `.env` key decrypts, is `db-copy-not-checked` (a warning).
//! `app.settings.jwt_secret` has its own module (`jwt_secret_copy`).

use super::values::Values;
use super::{Code, Finding, Severity};
use crate::crypto::{self, CipherError};
use crate::db::{self, Target};
use crate::service_copies::{self as stored, Found};
use crate::stack::copies::{
    copy, AtStart, Copy, CopyId, REALTIME_DB_ENC_KEY, REALTIME_DB_ENC_KEY_FALLBACK, REALTIME_SEEDED_TENANT,
    VAULT_ENC_KEY,
};
use crate::stack::POSTGRES_PASSWORD;
use crate::ui::Ui;

/// The finding code of each copy this module audits.
fn code_of(id: CopyId) -> Code {
    match id {
        CopyId::SupavisorPoolerPassword => Code::DbSupavisorCredentials,
        CopyId::RealtimeTenantJwtSecret => Code::DbRealtimeJwtSecret,
        CopyId::RealtimeDbPassword | CopyId::RealtimeDbConnection => Code::DbRealtimeDbSettings,
        CopyId::LogflareUserApiKey => Code::DbLogflareApiKey,
        CopyId::LogflareAccessToken => Code::DbLogflareAccessToken,
        CopyId::JwtSecretSetting => Code::DbJwtSecretCopy,
    }
}

/// Every copy of [`crate::stack::copies`] but the JWT secret setting, read through `main` (a
/// session on `target`'s database) and the sessions `service_copies` opens for the others.
pub(super) async fn audit(
    target: &Target,
    main: &tokio_postgres::Client,
    values: &Values<'_>,
    ui: &Ui,
    verified: &mut Vec<String>,
) -> Vec<Finding> {
    let audit = Audit { target, main, values, ui, out: Vec::new(), compared: Vec::new() };
    let (findings, compared) = audit.run().await;
    if !compared.is_empty() {
        verified.push(format!("the copies in the database compared with the .env: {}", compared.join("; ")));
    }
    findings
}

struct Audit<'a> {
    target: &'a Target,
    main: &'a tokio_postgres::Client,
    values: &'a Values<'a>,
    ui: &'a Ui,
    out: Vec<Finding>,
    /// The copies found and read, as `schema.table.column (N rows)`, for the report's summary.
    compared: Vec<String>,
}

impl Audit<'_> {
    async fn run(mut self) -> (Vec<Finding>, Vec<String>) {
        self.supavisor().await;
        self.realtime_tenants().await;
        self.realtime_settings().await;
        self.logflare_api_key().await;
        self.logflare_tokens().await;
        (self.out, self.compared)
    }

    /// The rows of a table, or `None` after reporting why there are none to compare.
    fn rows<T>(&mut self, copy: &Copy, found: Found<T>) -> Option<(String, Vec<T>)> {
        match found {
            Found::Absent => {
                self.ui.detail(&format!("no {}.{} table: not checked", copy.schema, copy.table));
                None
            }
            Found::Unreadable { dbname, reason } => {
                self.out.push(not_checked(copy, &format!(" in database {dbname}: it could not be read ({reason})")));
                None
            }
            Found::Rows { dbname, rows } => {
                self.compared.push(format!(
                    "{}.{}.{} in {dbname} ({} row(s))",
                    copy.schema,
                    copy.table,
                    copy.column,
                    rows.len()
                ));
                Some((dbname, rows))
            }
        }
    }

    /// The key that encrypts `copy`, when it is usable; otherwise the file rules already report it.
    fn key(&self, name: &str, fallback: Option<&'static str>, len: usize) -> Option<&str> {
        let key = self.values.get(name).or(fallback)?;
        if key.len() != len {
            self.ui.detail(&format!("{name} is not {len} bytes long: the copies it encrypts were not checked"));
            return None;
        }
        Some(key)
    }

    async fn supavisor(&mut self) {
        let copy = copy(CopyId::SupavisorPoolerPassword);
        let found = stored::supavisor_users(self.target, self.main, copy, db::DEFAULT_LOCK_TIMEOUT.get()).await;
        let Some((dbname, rows)) = self.rows(copy, found) else { return };
        let Some(key) = self.key(VAULT_ENC_KEY, None, 32).map(str::to_owned) else { return };
        for row in rows {
            let what = format!(
                "the password Supavisor stores for user {} of tenant {} ({} in database {dbname})",
                printable(&row.db_user),
                printable(&row.tenant),
                copy.place()
            );
            match crypto::supavisor::decrypt(key.as_bytes(), &row.stored) {
                Err(CipherError::WrongKey) => self.out.push(Finding::new(
                    code_of(copy.id),
                    Some(VAULT_ENC_KEY),
                    format!(
                        "does not decrypt {what}: {}. Supavisor re-creates its tenant only when it is absent, so reset \
                         it: `pmoves-secrets rotate-secrets VAULT_ENC_KEY` (or `rotate-passwords`) drops and re-creates \
                         _supavisor, which Supavisor re-seeds from the .env when it is recreated",
                        copy.when_stale
                    ),
                )),
                Err(err) => self.out.push(not_checked(copy, &format!(" ({what}): {err}"))),
                Ok(plain) => {
                    if let Some(password) = self.values.get(POSTGRES_PASSWORD) {
                        if !crypto::same_secret(&plain, password) {
                            self.out.push(Finding::new(
                                code_of(copy.id),
                                Some(POSTGRES_PASSWORD),
                                format!(
                                    "is not {what}, so the pooler cannot log in; `pmoves-secrets rotate-passwords` \
                                     resets _supavisor with the database password, and Supavisor re-seeds it when it \
                                     is recreated"
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }

    fn realtime_key(&self) -> Option<String> {
        self.key(REALTIME_DB_ENC_KEY, Some(REALTIME_DB_ENC_KEY_FALLBACK), 16).map(str::to_owned)
    }

    async fn realtime_tenants(&mut self) {
        let copy = copy(CopyId::RealtimeTenantJwtSecret);
        let found = stored::realtime_tenants(self.target, self.main, copy, db::DEFAULT_LOCK_TIMEOUT.get()).await;
        let Some((dbname, rows)) = self.rows(copy, found) else { return };
        let Some(key) = self.realtime_key() else { return };
        for tenant in rows {
            let Some(stored) = tenant.jwt_secret else { continue };
            let what = format!("the JWT secret of Realtime tenant {} ({dbname})", printable(&tenant.external_id));
            match self.realtime_value(copy, &what, stored.expose(), &key, self.values.get("JWT_SECRET")) {
                Some(Stale::Undecryptable) => self.out.push(realtime_finding(
                    copy,
                    &tenant.external_id,
                    REALTIME_DB_ENC_KEY,
                    &format!("does not decrypt {what}"),
                )),
                Some(Stale::Differs) => {
                    self.out.push(realtime_finding(copy, &tenant.external_id, "JWT_SECRET", &format!("is not {what}")))
                }
                None => {}
            }
        }
    }

    /// The encrypted connection settings, one finding per tenant and problem, naming the fields.
    async fn realtime_settings(&mut self) {
        for id in [CopyId::RealtimeDbPassword, CopyId::RealtimeDbConnection] {
            let copy = copy(id);
            let found = stored::realtime_settings(self.target, self.main, copy, db::DEFAULT_LOCK_TIMEOUT.get()).await;
            let Some((dbname, rows)) = self.rows(copy, found) else { return };
            let Some(key) = self.realtime_key() else { return };
            let expected = match id {
                CopyId::RealtimeDbPassword => self.values.get(POSTGRES_PASSWORD),
                _ => None,
            };
            // (tenant, stale how) -> fields, in the order read.
            let mut stale: Vec<(String, Stale, Vec<String>)> = Vec::new();
            for setting in rows {
                let what = format!("{} of Realtime tenant {}", printable(&setting.field), printable(&setting.tenant));
                let Some(how) = self.realtime_value(copy, &what, setting.stored.expose(), &key, expected) else {
                    continue;
                };
                match stale.iter_mut().find(|(t, h, _)| *t == setting.tenant && *h == how) {
                    Some((_, _, fields)) => fields.push(printable(&setting.field)),
                    None => stale.push((setting.tenant.clone(), how, vec![printable(&setting.field)])),
                }
            }
            for (tenant, how, fields) in stale {
                let what = format!(
                    "the {} Realtime stores for tenant {} ({}.{}.{} in database {dbname})",
                    fields.join(", "),
                    printable(&tenant),
                    copy.schema,
                    copy.table,
                    copy.column
                );
                let (key, problem) = match how {
                    Stale::Undecryptable => (REALTIME_DB_ENC_KEY, format!("does not decrypt {what}")),
                    Stale::Differs => (POSTGRES_PASSWORD, format!("is not {what}")),
                };
                self.out.push(realtime_finding(copy, &tenant, key, &problem));
            }
        }
    }

    /// How one Realtime value is stale, if it is; `expected` is the `.env` value it must equal,
    /// if any. A value no `.env` key can decrypt is reported here as not checked.
    fn realtime_value(
        &mut self,
        copy: &Copy,
        what: &str,
        stored: &str,
        key: &str,
        expected: Option<&str>,
    ) -> Option<Stale> {
        if crypto::realtime::is_gcm(stored) {
            self.out.push(not_checked(
                copy,
                &format!(" ({what}): it is AES-256-GCM under Realtime's DB_ENC_KEY_GCM, which the .env does not hold"),
            ));
            return None;
        }
        match crypto::realtime::decrypt(key.as_bytes(), stored) {
            Err(CipherError::WrongKey) => Some(Stale::Undecryptable),
            Err(err) => {
                self.out.push(not_checked(copy, &format!(" ({what}): {err}")));
                None
            }
            Ok(plain) => match expected {
                Some(value) if !crypto::same_secret(&plain, value) => Some(Stale::Differs),
                _ => None,
            },
        }
    }

    async fn logflare_api_key(&mut self) {
        let copy = copy(CopyId::LogflareUserApiKey);
        let found = stored::logflare_users(self.target, self.main, copy, db::DEFAULT_LOCK_TIMEOUT.get()).await;
        let Some((dbname, rows)) = self.rows(copy, found) else { return };
        let Some(token) = self.values.get("LOGFLARE_PUBLIC_ACCESS_TOKEN") else { return };
        for user in rows.iter().filter(|user| !crypto::same_secret(user.api_key.expose().as_bytes(), token)) {
            self.out.push(Finding::new(
                code_of(copy.id),
                Some("LOGFLARE_PUBLIC_ACCESS_TOKEN"),
                format!(
                    "is not the api_key of Logflare's user {} ({} in database {dbname}): {}, and Logflare never updates \
                     that column. `pmoves-secrets rotate-secrets LOGFLARE_PUBLIC_ACCESS_TOKEN` rewrites it (or set it \
                     to the token yourself)",
                    user.id,
                    copy.place(),
                    copy.when_stale
                ),
            ));
        }
    }

    async fn logflare_tokens(&mut self) {
        let copy = copy(CopyId::LogflareAccessToken);
        let found = stored::logflare_tokens(self.target, self.main, copy, db::DEFAULT_LOCK_TIMEOUT.get()).await;
        let Some((dbname, rows)) = self.rows(copy, found) else { return };
        for key in copy.holds {
            let Some(value) = self.values.get(key) else { continue };
            let live: Vec<_> = rows.iter().filter(|row| row.description == *key).collect();
            let stale = live.iter().filter(|row| !crypto::same_secret(row.token.expose().as_bytes(), value)).count();
            if stale > 0 {
                let mut finding = Finding::new(
                    code_of(copy.id),
                    Some(key),
                    format!(
                        "is not the token of {stale} live access-token row(s) Logflare made from it ({} in database \
                         {dbname}): {}. Logflare revokes them and creates the current one at its next start, so \
                         recreate the analytics service",
                        copy.place(),
                        copy.when_stale
                    ),
                );
                finding.severity = severity_at_start(copy, true);
                self.out.push(finding);
            }
        }
    }
}

/// How a copy disagrees with the `.env`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stale {
    /// The `.env`'s key does not decrypt it.
    Undecryptable,
    /// It decrypts, to another value than the `.env`'s.
    Differs,
}

/// The severity of a stale copy: an error unless its service rewrites it at its next start.
fn severity_at_start(copy: &Copy, seeded: bool) -> Severity {
    match copy.at_start {
        AtStart::Rewritten => Severity::Warning,
        AtStart::RewrittenForSeededTenant if seeded => Severity::Warning,
        _ => Severity::Error,
    }
}

fn realtime_finding(copy: &Copy, tenant: &str, key: &str, problem: &str) -> Finding {
    let seeded = tenant == REALTIME_SEEDED_TENANT;
    let remedy = if seeded {
        format!(
            "Realtime deletes and re-creates tenant {REALTIME_SEEDED_TENANT} from its environment at its next start \
             when SEED_SELF_HOST is true (upstream's compose file sets it), so recreate the realtime service"
        )
    } else {
        "Realtime keeps this tenant's rows as they are: re-create the tenant through Realtime's tenant API, or rotate \
         the key with `pmoves-secrets rotate-secrets`, which re-encrypts these rows while the old key still decrypts them"
            .to_owned()
    };
    let mut finding = Finding::new(code_of(copy.id), Some(key), format!("{problem}: {}. {remedy}", copy.when_stale));
    finding.severity = severity_at_start(copy, seeded);
    finding
}

fn not_checked(copy: &Copy, why: &str) -> Finding {
    let key = copy.storage.key().or_else(|| copy.holds.first().copied());
    Finding::new(Code::DbCopyNotChecked, key, format!("was not compared with its copy {}{why}", copy.place()))
}

/// A name read from the database, without control characters, for the terminal.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}
