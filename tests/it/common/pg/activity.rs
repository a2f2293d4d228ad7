//! Watching `pg_stat_activity` as an unprivileged monitoring role, for tests that prove a
//! rotation never shows a secret to other sessions.
//!
//! The watcher logs in as `pmoves_test_monitor`: LOGIN, not a superuser, a member of
//! `pg_monitor` (which lets it read every session's query text, as a monitoring agent of a
//! stack would). It polls on its own thread and runtime, as fast as the server answers, until
//! it is stopped, and keeps every distinct query text it saw. The role is dropped again when
//! the watcher stops (so an external server keeps nothing of it).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::cluster::Cluster;
use super::command::{run_psql, QUIET_LOG};
use super::queries::error_text;
use super::secrets::random_hex;
use super::sql::{sql_ident, sql_literal};
use super::HARNESS_USER;

/// The monitoring role the watcher logs in as. Not a Supabase role: rotation leaves it alone.
pub const MONITOR_USER: &str = "pmoves_test_monitor";

/// A running `pg_stat_activity` poller; `stop` ends it and returns what it saw.
pub struct ActivityWatcher {
    stop: Arc<AtomicBool>,
    /// Polls answered so far, for tests that must know a poll happened after some moment.
    polls: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<Result<SeenActivity, String>>>,
    /// Drops the monitoring role, once polling has ended.
    drop_role: Option<Box<dyn FnOnce() + Send + Sync>>,
}

/// Everything a watcher saw.
#[derive(Debug, Default)]
pub struct SeenActivity {
    /// Every distinct `query` text of every other session, in any state.
    pub queries: BTreeSet<String>,
    /// How many times `pg_stat_activity` was read.
    pub polls: u64,
}

impl SeenActivity {
    /// Whether any query text seen contains `needle`.
    pub fn any_contains(&self, needle: &str) -> bool {
        self.queries.iter().any(|q| q.contains(needle))
    }
}

impl Cluster {
    /// (Re)creates `pmoves_test_monitor` with a fresh password (a `pg_monitor` member, not a
    /// superuser) and starts polling `pg_stat_activity` of every other session as that role.
    /// Returns once the first poll has answered, so whatever happens afterwards is watched.
    pub async fn watch_activity(&self) -> ActivityWatcher {
        let password = random_hex(16);
        let mut secrets = self.secrets();
        secrets.push(password.clone());
        let create = format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN \
             CREATE ROLE {ident} LOGIN NOSUPERUSER; END IF; END $$;\n\
             ALTER ROLE {ident} LOGIN NOSUPERUSER PASSWORD {password};\n\
             GRANT pg_monitor TO {ident};\n",
            name = sql_literal(MONITOR_USER),
            ident = sql_ident(MONITOR_USER),
            password = sql_literal(&password),
        );
        if let Err(e) = run_psql(
            &self.psql_target(&self.main_db),
            HARNESS_USER,
            &self.harness_password,
            &[],
            Some(QUIET_LOG),
            &create,
            &secrets,
            "creating the monitoring role",
        ) {
            panic!("pg harness: {e}");
        }
        let config = self.pg_config(MONITOR_USER, &password, &self.main_db);
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
        let stop_flag = Arc::clone(&stop);
        let polls = Arc::new(AtomicU64::new(0));
        let poll_count = Arc::clone(&polls);
        let thread = std::thread::Builder::new()
            .name("pg-activity-watcher".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot build a runtime: {e}"))?;
                rt.block_on(poll(config, stop_flag, poll_count, ready_tx))
            })
            .expect("pg harness: cannot spawn the activity watcher thread");
        let (target, harness_password) = (self.psql_target(&self.main_db), self.harness_password.clone());
        let drop_role: Box<dyn FnOnce() + Send + Sync> = Box::new(move || {
            let sql = format!("DROP ROLE IF EXISTS {}", sql_ident(MONITOR_USER));
            let what = "dropping the monitoring role";
            if let Err(e) = run_psql(&target, HARNESS_USER, &harness_password, &[], None, &sql, &secrets, what) {
                eprintln!("pg harness: {e}");
            }
        });
        match ready_rx.await {
            Ok(Ok(())) => ActivityWatcher { stop, polls, thread: Some(thread), drop_role: Some(drop_role) },
            Ok(Err(e)) => {
                let _ = thread.join();
                panic!("pg harness: watching pg_stat_activity failed: {}", self.redact(&e))
            }
            Err(_) => match thread.join() {
                Ok(Err(e)) => panic!("pg harness: watching pg_stat_activity failed: {}", self.redact(&e)),
                _ => panic!("pg harness: the activity watcher thread died"),
            },
        }
    }
}

/// Polls until `stop` is set; signals `ready` after the first answered poll.
async fn poll(
    config: tokio_postgres::Config,
    stop: Arc<AtomicBool>,
    poll_count: Arc<AtomicU64>,
    ready: tokio::sync::oneshot::Sender<Result<(), String>>,
) -> Result<SeenActivity, String> {
    let (client, connection) = match config.connect(tokio_postgres::NoTls).await {
        Ok(x) => x,
        Err(e) => {
            let why = format!("connect as {MONITOR_USER}: {}", error_text(&e));
            let _ = ready.send(Err(why.clone()));
            return Err(why);
        }
    };
    let conn_task = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut seen = SeenActivity::default();
    let mut ready = Some(ready);
    let result = async {
        let statement = client
            .prepare("SELECT coalesce(query, '') FROM pg_stat_activity WHERE pid <> pg_backend_pid()")
            .await
            .map_err(|e| error_text(&e))?;
        while !stop.load(Ordering::Relaxed) {
            let rows = client.query(&statement, &[]).await.map_err(|e| error_text(&e))?;
            seen.polls += 1;
            for row in rows {
                let query: String = row.get(0);
                if !query.is_empty() {
                    seen.queries.insert(query);
                }
            }
            poll_count.fetch_add(1, Ordering::Release);
            if let Some(ready) = ready.take() {
                let _ = ready.send(Ok(()));
            }
        }
        Ok::<(), String>(())
    }
    .await;
    if let (Err(e), Some(ready)) = (&result, ready.take()) {
        let _ = ready.send(Err(e.clone()));
    }
    drop(client);
    let _ = tokio::time::timeout(Duration::from_secs(5), conn_task).await;
    result.map(|()| seen)
}

impl ActivityWatcher {
    /// Waits until `n` more polls have answered (at most 30 s), so whatever was visible when
    /// this was called has been seen. On a loaded machine a fixed sleep may see no poll at all.
    pub async fn await_polls(&self, n: u64) {
        let target = self.polls.load(Ordering::Acquire) + n;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.polls.load(Ordering::Acquire) < target {
            assert!(std::time::Instant::now() < deadline, "pg harness: the activity watcher stopped polling");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops polling; everything seen since `watch_activity` returned. Panics if polling failed.
    pub fn stop(mut self) -> SeenActivity {
        self.stop.store(true, Ordering::Relaxed);
        let polled = self.thread.take().map(|t| t.join());
        if let Some(drop_role) = self.drop_role.take() {
            drop_role();
        }
        match polled {
            Some(Ok(Ok(seen))) => seen,
            Some(Ok(Err(e))) => panic!("pg harness: watching pg_stat_activity failed: {e}"),
            _ => panic!("pg harness: the activity watcher thread died"),
        }
    }
}

impl Drop for ActivityWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(drop_role) = self.drop_role.take() {
            drop_role();
        }
    }
}
