//! Settling an interrupted run by asking the database (SPEC §8): the transaction ids a run takes
//! (`txid_current()`, asked in the transaction's first round trip) are written into its pending
//! file before any `COMMIT`, as a marker line, and `txid_status()` later says whether each
//! committed.
//!
//! The marker is a comment line at the top of the staged `.env` (after `envfile`'s own record
//! line), so the file stays a valid `.env`; publishing applies only the staged keys to the
//! current `.env`, so the marker never reaches it.

use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::db::describe;

/// The marker's prefix: which command staged the file, and its transactions.
const MARKER: &str = "# pmoves-secrets rotate-secrets pending: transactions";

/// One transaction of a run: the database it ran in and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xact {
    /// The database.
    pub dbname: String,
    /// `txid_current()` in it.
    pub xid: i64,
}

/// The marker line for `xacts`, with its newline.
pub fn marker(xacts: &[Xact]) -> String {
    let list: Vec<String> = xacts.iter().map(|x| format!("{}={}", x.dbname, x.xid)).collect();
    format!("{MARKER} {} (removed once published)\n", list.join(" "))
}

/// The transactions a pending file's marker records (among its leading comment lines); `None`
/// when it has no marker (it was staged by another command).
pub fn parse_marker(text: &str) -> Option<Vec<Xact>> {
    let line = text.lines().take_while(|l| l.starts_with('#')).find(|l| l.starts_with(MARKER))?;
    let rest = line.strip_prefix(MARKER)?;
    let list = rest.split(" (").next().unwrap_or_default();
    list.split_whitespace()
        .map(|item| {
            let (dbname, xid) = item.rsplit_once('=')?;
            Some(Xact { dbname: dbname.to_owned(), xid: xid.parse().ok()? })
        })
        .collect()
}

/// `text` without its marker line, if it has one.
pub fn strip_marker(text: &str) -> Option<&str> {
    text.starts_with(MARKER).then(|| text.split_once('\n').map_or("", |(_, rest)| rest))
}

/// What the database says about one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It committed.
    Committed,
    /// It rolled back, or never reached `COMMIT` (a crashed client's transaction is aborted).
    Aborted,
    /// It is still running (a backend that has not noticed its client died yet).
    InProgress,
    /// The server no longer knows: the id is older than the commit log it keeps.
    Forgotten,
}

/// The status of transaction `xid`. Transaction ids are cluster-wide, so any database of the
/// server answers for all of them.
pub async fn status(client: &Client, xid: i64) -> Result<Status, String> {
    let rows = client.query_typed("SELECT txid_status($1)", &[(&xid, Type::INT8)]).await.map_err(|e| describe(&e))?;
    let row = rows.first().ok_or_else(|| "txid_status() returned no row".to_owned())?;
    let text: Option<String> = row.try_get(0).map_err(|e| describe(&e))?;
    match text.as_deref() {
        Some("committed") => Ok(Status::Committed),
        Some("aborted") => Ok(Status::Aborted),
        Some("in progress") => Ok(Status::InProgress),
        // NULL: too old to be known (the server has truncated its commit log).
        None => Ok(Status::Forgotten),
        Some(other) => Err(format!("txid_status({xid}) answered '{other}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_round_trips_and_is_stripped() {
        let xacts = vec![Xact { dbname: "_supabase".into(), xid: 742 }, Xact { dbname: "pmoves".into(), xid: 743 }];
        let text = format!("{}A=1\n", marker(&xacts));
        assert_eq!(parse_marker(&text), Some(xacts.clone()));
        assert_eq!(parse_marker(&format!("# pmoves-secrets-pending v1 apply A=f\n{text}")), Some(xacts));
        assert_eq!(strip_marker(&text), Some("A=1\n"));
        assert_eq!(parse_marker("A=1\n"), None);
        assert_eq!(strip_marker("A=1\n"), None);
    }
}
