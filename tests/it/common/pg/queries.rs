//! Queries as the harness superuser, and login checks as any role.
//!
//! `tokio_postgres` for what a test awaits (`connect`, `can_login`, `query_strings`); the
//! synchronous helpers (`psql`, `psql_rows`, `stored_verifier`) send their script the same way
//! on a connection of their own (a thread with its own runtime, so they work inside a test's
//! runtime too), and start psql itself only for a script with psql meta-commands (`\\connect`):
//! a psql process per helper query cost a tenth of the suite's CPU time. Both log in as
//! `HARNESS_USER`, whom rotation leaves alone.
//!
//! A script sent in one piece runs as one implicit transaction (psql would commit statement by
//! statement); statements that refuse a transaction block (`CREATE DATABASE`, `VACUUM`) go one
//! per call.

use std::time::Duration;

use super::cluster::Cluster;
use super::command::run_psql;
use super::sql::{drop_roles_script, sql_literal};
use super::HARNESS_USER;

impl Cluster {
    /// Connects with `tokio_postgres` (no TLS); the connection task is spawned on the current
    /// runtime.
    pub async fn connect(
        &self,
        user: &str,
        password: &str,
        db: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = self.pg_config(user, password, db).connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// A connection as the harness superuser (unaffected by rotation); panics with the reason.
    pub async fn admin_client(&self, db: &str) -> tokio_postgres::Client {
        match self.connect(HARNESS_USER, &self.harness_password, db).await {
            Ok(c) => c,
            Err(e) => panic!(
                "pg harness: cannot connect as {HARNESS_USER} to {db} on {}:{}: {}",
                self.host,
                self.port,
                self.redact(&e.to_string())
            ),
        }
    }

    /// Whether `user` can log in with `password` (to the main database over TCP).
    /// `false` only for authentication failures (wrong/no password, NOLOGIN, no such role);
    /// any other error (server down, ...) panics so that a dead server never passes as
    /// "the old password is refused".
    pub async fn can_login(&self, user: &str, password: &str) -> bool {
        match self.connect(user, password, &self.main_db).await {
            Ok(_client) => true,
            Err(e) => {
                let auth = e.code().is_some_and(|c| {
                    *c == tokio_postgres::error::SqlState::INVALID_PASSWORD
                        || *c == tokio_postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                });
                if auth {
                    false
                } else {
                    panic!(
                        "pg harness: login attempt as {user} on {}:{} failed for a reason other than authentication: {}",
                        self.host,
                        self.port,
                        self.redact(&e.to_string())
                    )
                }
            }
        }
    }

    /// Runs `sql` (simple query protocol, may hold several statements) as the harness superuser
    /// in `work_db()`; every row of every result as strings (`None` for NULL).
    pub async fn query_strings(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let db = self.work_db.clone();
        self.query_strings_in(&db, sql).await
    }

    /// Like `query_strings`, in database `db`.
    pub async fn query_strings_in(&self, db: &str, sql: &str) -> Vec<Vec<Option<String>>> {
        let client = self.admin_client(db).await;
        let messages = match client.simple_query(sql).await {
            Ok(m) => m,
            Err(e) => panic!(
                "pg harness: query in {db} failed: {}\n--- query ---\n{}",
                self.redact(&error_text(&e)),
                self.redact(sql)
            ),
        };
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()
    }

    /// `rolpassword` of `role` in `pg_authid` (`None`: no password, or no such role).
    pub fn stored_verifier(&self, role: &str) -> Option<String> {
        let rows = self.psql_rows(
            &self.main_db.clone(),
            &format!("SELECT rolpassword FROM pg_authid WHERE rolname = {}", sql_literal(role)),
        );
        rows.into_iter().next().and_then(|mut r| r.pop()).flatten()
    }

    pub fn role_exists(&self, role: &str) -> bool {
        !self
            .psql_rows(&self.main_db.clone(), &format!("SELECT 1 FROM pg_roles WHERE rolname = {}", sql_literal(role)))
            .is_empty()
    }

    /// Runs `sql` with psql (`-X -q -A -t -v ON_ERROR_STOP=1`, script on stdin, so several
    /// statements and psql meta-commands are fine) as the harness superuser in `work_db()`;
    /// returns stdout without the final newline. Panics with psql's stderr on failure.
    pub fn psql(&self, sql: &str) -> String {
        let db = self.work_db.clone();
        self.psql_in(&db, sql)
    }

    pub fn psql_in(&self, db: &str, sql: &str) -> String {
        match self.try_psql_in(db, sql) {
            Ok(s) => s,
            Err(e) => panic!("pg harness: {e}"),
        }
    }

    pub fn try_psql_in(&self, db: &str, sql: &str) -> Result<String, String> {
        if !has_meta_command(sql) {
            // psql -A -t: a row's fields joined by '|', NULL as nothing, a row per line.
            let rows = self.simple_query_now(db, sql)?;
            let lines: Vec<String> = rows
                .iter()
                .map(|row| row.iter().map(|field| field.as_deref().unwrap_or("")).collect::<Vec<_>>().join("|"))
                .collect();
            return Ok(lines.join("\n"));
        }
        let out = run_psql(
            &self.psql_target(db),
            HARNESS_USER,
            &self.harness_password,
            &[],
            None,
            sql,
            &self.secrets(),
            "psql",
        )?;
        Ok(out.trim_end_matches('\n').to_string())
    }

    /// Rows of `sql` (one statement), `None` for NULL.
    pub fn psql_rows(&self, db: &str, sql: &str) -> Vec<Vec<Option<String>>> {
        match self.simple_query_now(db, sql) {
            Ok(rows) => rows,
            Err(e) => panic!("pg harness: {e}"),
        }
    }

    /// Every row of `sql` (simple query protocol) as the harness superuser in `db`, from a
    /// synchronous caller.
    fn simple_query_now(&self, db: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        let config = self.pg_config(HARNESS_USER, &self.harness_password, db);
        simple_query_blocking(&config, sql).map_err(|e| self.redact(&format!("query in {db}: {e}\n--- sql ---\n{sql}")))
    }

    /// Drops `role` cluster-wide (its objects reassigned to supabase_admin in every database).
    pub fn drop_role(&self, role: &str) {
        let sql = drop_roles_script(&[role.to_string()], &self.databases());
        self.psql_in(&self.main_db.clone(), &sql);
    }

    fn databases(&self) -> Vec<String> {
        self.psql_rows(&self.main_db.clone(), "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
            .into_iter()
            .filter_map(|mut r| r.pop().flatten())
            .collect()
    }

    pub(super) fn pg_config(&self, user: &str, password: &str, db: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(user)
            .password(password)
            .dbname(db)
            .application_name("pmoves-test-harness")
            .connect_timeout(Duration::from_secs(10));
        config
    }
}

/// Whether `script` holds a psql meta-command (a line starting with a backslash), which only
/// psql itself can run.
fn has_meta_command(script: &str) -> bool {
    script.lines().any(|line| line.trim_start().starts_with('\\'))
}

/// Every row of `sql` on a new connection made with `config`, from a synchronous caller: a
/// thread of its own with its own runtime, so a caller inside a runtime is fine too. Errors are
/// not redacted: the caller redacts.
pub(super) fn simple_query_blocking(
    config: &tokio_postgres::Config,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot build a runtime: {e}"))?;
                runtime.block_on(async {
                    let (client, connection) = config
                        .connect(tokio_postgres::NoTls)
                        .await
                        .map_err(|e| format!("connect: {}", error_text(&e)))?;
                    let connection = tokio::spawn(connection);
                    let messages = client.simple_query(sql).await.map_err(|e| error_text(&e));
                    drop(client);
                    let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
                    Ok(messages?
                        .into_iter()
                        .filter_map(|m| match m {
                            tokio_postgres::SimpleQueryMessage::Row(row) => {
                                Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect())
                            }
                            _ => None,
                        })
                        .collect())
                })
            })
            .join()
            .unwrap_or_else(|_| Err("the query thread panicked".to_string()))
    })
}

/// A server error as `SEVERITY: message (SQLSTATE)`, else the client error.
pub(super) fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => e.to_string(),
    }
}
