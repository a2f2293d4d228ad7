//! Step 5 of a rotation: the one transaction that changes the database.
//!
//! Round trips are few and nothing is hashed inside, so the window between `BEGIN` and `COMMIT`
//! is a few milliseconds on a quiet server. The session is silenced first (`silence`), before
//! `BEGIN`; the plaintext password then reaches the server only inside the analytics URL, as a
//! bind parameter.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_postgres::Client;
use zeroize::Zeroizing;

use super::discover::{fingerprint_sql, last_value, url_expr, UrlColumn};
use super::plan::Prepared;
use crate::db::{describe, Target};
use crate::dburl;
use crate::error::Error;

/// Key of the transaction-level advisory lock that keeps two rotations apart. Any fixed
/// value works as long as every copy of the tool uses the same one ("pmoves-r" in ASCII).
pub const ADVISORY_LOCK_KEY: i64 = 0x706d_6f76_6573_2d72;

/// What the transaction did.
#[derive(Debug, Clone, Copy)]
pub struct Applied {
    /// Analytics rows whose URL now carries the new password.
    pub analytics_rows_updated: u64,
    /// Analytics rows left alone because their URL names no user.
    pub analytics_rows_without_user: u64,
    /// Whether `_supavisor` was dropped and re-created.
    pub supavisor_reset: bool,
    /// From sending `BEGIN` to the server's answer to `COMMIT`.
    pub transaction_ms: f64,
}

/// How the transaction failed.
#[derive(Debug)]
pub enum Failure {
    /// Before `COMMIT` or refused by it: rolled back, nothing changed.
    RolledBack(Error),
    /// The connection broke during `COMMIT`: the outcome is unknown.
    Ambiguous(String),
}

/// Replaces every occurrence of the given secrets in a server message.
pub fn scrub(message: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(crate::db::redact_url_password(message), |text, secret| text.replace(secret, "<redacted>"))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Runs the transaction. `interrupted` resolving before `COMMIT` is sent rolls everything back.
pub async fn apply(
    client: &Client,
    session: &Target,
    prepared: &Prepared,
    lock_timeout: Duration,
    interrupted: impl Future<Output = ()>,
) -> Result<Applied, Failure> {
    super::silence::silence(client).await.map_err(Failure::RolledBack)?;
    let started = Instant::now();
    let secrets = [prepared.new_password.expose()];
    let fail = |step: &str, err: &tokio_postgres::Error| {
        let mut reason = scrub(&describe(err), &secrets);
        if err.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            reason.push_str(&format!(
                " — another session held a lock for longer than --lock-timeout ({} ms): a running \
                 supavisor holding _supavisor, or another rotation; retry, or raise --lock-timeout",
                lock_timeout.as_millis()
            ));
        }
        reason.push_str("; the transaction was rolled back");
        Error::Database { step: step.to_owned(), reason }
    };

    let work = async {
        // Its own round trip, before anything secret (the session is already silent).
        let setup = format!(
            "BEGIN; \
             SET LOCAL lock_timeout = '{}ms'; \
             SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY}); \
             {}",
            lock_timeout.as_millis().max(1),
            fingerprint_sql()
        );
        let messages = client.simple_query(&setup).await.map_err(|e| fail("setting up the transaction", &e))?;

        // Under the advisory lock: a rotation that committed since discovery shows here.
        if last_value(&messages).as_deref() != Some(prepared.fingerprint.as_str()) {
            return Err(Error::Database {
                step: "the concurrency check".into(),
                reason: "the roles' passwords changed after this run read them (did another rotation \
                         commit meanwhile?); re-run to rotate from the current state"
                    .into(),
            });
        }

        let mut statements = Zeroizing::new(String::with_capacity(160 * prepared.verifiers.len()));
        for (role, verifier) in &prepared.verifiers {
            statements.push_str(&format!(
                "ALTER ROLE {} PASSWORD {};\n",
                quote_ident(role),
                quote_literal(verifier.expose())
            ));
        }
        let supavisor_reset = match &prepared.plan.supavisor_owner {
            Some(owner) => {
                statements.push_str(&format!(
                    "DROP SCHEMA IF EXISTS _supavisor CASCADE;\nCREATE SCHEMA _supavisor AUTHORIZATION {};\n",
                    quote_ident(owner)
                ));
                true
            }
            None => false,
        };
        client
            .batch_execute(&statements)
            .await
            .map_err(|e| fail("changing the role passwords and resetting _supavisor", &e))?;

        let (updated, without_user) = match prepared.analytics_column {
            Some(column) => update_analytics(client, column, prepared.new_password.expose())
                .await
                .map_err(|e| fail("updating _analytics.source_backends", &e))?,
            None => (0, 0),
        };
        Ok((updated, without_user, supavisor_reset))
    };

    let outcome = tokio::select! {
        outcome = work => outcome,
        () = interrupted => {
            // The statement in flight may be waiting for a lock; cancel it so ROLLBACK runs now.
            session.cancel(&client.cancel_token()).await;
            Err(Error::Interrupted)
        }
    };
    let (analytics_rows_updated, analytics_rows_without_user, supavisor_reset) = match outcome {
        Ok(done) => done,
        Err(err) => {
            // Best effort: if the connection is gone the server rolls back on its own.
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(Failure::RolledBack(err));
        }
    };

    match client.batch_execute("COMMIT").await {
        Ok(()) => Ok(Applied {
            analytics_rows_updated,
            analytics_rows_without_user,
            supavisor_reset,
            transaction_ms: started.elapsed().as_secs_f64() * 1000.0,
        }),
        // The server answered: it refused the commit, so it rolled back.
        Err(err) if err.as_db_error().is_some() => Err(Failure::RolledBack(fail("COMMIT", &err))),
        Err(err) => Err(Failure::Ambiguous(scrub(&describe(&err), &secrets))),
    }
}

/// Gives every postgres source backend URL the new password, keeping its other parts.
async fn update_analytics(
    client: &Client,
    column: UrlColumn,
    new_password: &str,
) -> Result<(u64, u64), tokio_postgres::Error> {
    let expr = url_expr(column);
    let rows = client
        .query(
            &format!(
                "SELECT ctid::text, {expr} FROM _analytics.source_backends \
                 WHERE type = 'postgres' AND {expr} IS NOT NULL FOR UPDATE"
            ),
            &[],
        )
        .await?;
    let update = match column {
        UrlColumn::ConfigJsonb => {
            "UPDATE _analytics.source_backends SET config = jsonb_set(config, '{url}', to_jsonb($2::text)) WHERE ctid = $1::text::tid"
        }
        UrlColumn::ConfigJson => {
            "UPDATE _analytics.source_backends SET config = jsonb_set(config::jsonb, '{url}', to_jsonb($2::text))::json WHERE ctid = $1::text::tid"
        }
        UrlColumn::Url => "UPDATE _analytics.source_backends SET url = $2 WHERE ctid = $1::text::tid",
    };
    let statement = client.prepare(update).await?;
    let (mut updated, mut without_user) = (0, 0);
    for row in rows {
        let ctid: String = row.get(0);
        let url: String = row.get(1);
        match dburl::with_password(&url, new_password).map(Zeroizing::new) {
            Some(new_url) => updated += client.execute(&statement, &[&ctid, &new_url.as_str()]).await?,
            None => without_user += 1,
        }
    }
    Ok((updated, without_user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_every_secret_and_url_password() {
        let out = scrub("bad value abcd1234 in postgresql://u:zzzz9999@h/db", &["abcd1234"]);
        assert!(!out.contains("abcd1234") && !out.contains("zzzz9999"), "{out}");
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
