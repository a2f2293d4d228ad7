//! A transaction held open in another session, for tests of lock timeouts and waits.
//!
//! The session runs on its own thread and runtime, so whatever the test's runtime does (block,
//! shut down) cannot end the transaction early; dropping the holder ends it.

use std::time::Duration;

use super::cluster::Cluster;
use super::queries::error_text;
use super::secrets::redact;
use super::HARNESS_USER;

impl Cluster {
    /// Opens a separate session as the harness superuser in `work_db()`, runs `BEGIN` and `sql`
    /// (empty: `LOCK TABLE _supavisor.tenants IN ACCESS SHARE MODE`) and keeps that transaction
    /// open until the returned holder is dropped (then `ROLLBACK`, the session closed, before
    /// `drop` returns). The session lives on its own thread, so it is unaffected by what the
    /// test's runtime does meanwhile.
    pub async fn hold_lock(&self, sql: &str) -> LockHolder {
        let db = self.work_db.clone();
        self.hold_lock_in(&db, sql).await
    }

    pub async fn hold_lock_in(&self, db: &str, sql: &str) -> LockHolder {
        let sql = if sql.trim().is_empty() {
            "LOCK TABLE _supavisor.tenants IN ACCESS SHARE MODE".to_string()
        } else {
            sql.to_string()
        };
        let config = self.pg_config(HARNESS_USER, &self.harness_password, db);
        let secrets = self.secrets();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<i32, String>>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("pg-lock-holder".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot build a runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let (client, connection) = match config.connect(tokio_postgres::NoTls).await {
                        Ok(x) => x,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("connect: {}", error_text(&e))));
                            return;
                        }
                    };
                    let conn_task = tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    let setup = async {
                        client.batch_execute("BEGIN").await?;
                        client.batch_execute(&sql).await?;
                        let row = client.query_one("SELECT pg_backend_pid()", &[]).await?;
                        Ok::<i32, tokio_postgres::Error>(row.get(0))
                    };
                    match setup.await {
                        Ok(pid) => {
                            let _ = ready_tx.send(Ok(pid));
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!(
                                "{}\n--- sql ---\n{}",
                                error_text(&e),
                                redact(&sql, &secrets)
                            )));
                            return;
                        }
                    }
                    // Wait (blocking this private runtime only) until the holder is dropped.
                    let _ = release_rx.recv();
                    let _ = client.batch_execute("ROLLBACK").await;
                    drop(client);
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn_task).await;
                });
            })
            .expect("pg harness: cannot spawn the lock holder thread");
        match ready_rx.await {
            Ok(Ok(pid)) => LockHolder { release: Some(release_tx), thread: Some(thread), pid },
            Ok(Err(e)) => {
                let _ = thread.join();
                panic!("pg harness: hold_lock in {db} failed: {e}")
            }
            Err(_) => {
                let _ = thread.join();
                panic!("pg harness: hold_lock in {db}: the holder thread died")
            }
        }
    }
}

/// A transaction kept open in another session; see `Cluster::hold_lock`.
pub struct LockHolder {
    release: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pid: i32,
}

impl LockHolder {
    /// `pg_backend_pid()` of the holding session (to look it up in pg_locks / pg_stat_activity).
    pub fn backend_pid(&self) -> i32 {
        self.pid
    }
    /// Rolls back and closes the session (same as dropping the holder).
    pub fn release(self) {}
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
