//! The machinery every live rotation shares, below the commands that use it (`rotate-passwords`,
//! `rotate-secrets`): the options they take ([`RotationOptions`]), the silenced session ([`silence`]), `--restart` of the services a rotation
//! changed ([`restart`]), the crash points tests use ([`crash`]), and the settlement of an
//! interrupted run by asking the database whether its transactions committed ([`xact`]).
//! Staging, publishing and the `.env` lock are `envfile`'s; the typed confirmation is `ui`'s.

pub mod crash;
mod options;
pub mod restart;
pub mod silence;
pub mod xact;

pub use options::{own_help, OwnHelp, RotationOptions};

/// The rotation lock: a lock on `pg_authid` that only a superuser can take.
///
/// `LOCK TABLE` checks the privilege before it queues, and only superusers have any privilege
/// on `pg_authid`, so an ordinary login that can connect (to `_supabase` or anywhere) can
/// neither take it nor wait in line for it. `pg_authid` is a shared catalog, so the lock is
/// cluster-wide: every database sees the same one. `SHARE UPDATE EXCLUSIVE` conflicts with itself
/// (two rotations of any kind, or a rotation and a recovery, wait for each other) but not with what other
/// sessions do to `pg_authid`: logins and catalog reads (ACCESS SHARE) and other roles' `ALTER
/// ROLE` / `CREATE ROLE` (ROW EXCLUSIVE) go on while a rotation runs.
pub const ROTATION_LOCK: &str = "LOCK TABLE pg_catalog.pg_authid IN SHARE UPDATE EXCLUSIVE MODE";
