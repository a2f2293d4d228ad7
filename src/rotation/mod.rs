//! The machinery every live rotation shares, below the commands that use it (`rotate-passwords`,
//! `rotate-secrets`): the silenced session ([`silence`]), `--restart` of the services a rotation
//! changed ([`restart`]), the crash points tests use ([`crash`]), and the settlement of an
//! interrupted run by asking the database whether its transactions committed ([`xact`]).
//! Staging, publishing and the `.env` lock are `envfile`'s; the typed confirmation is `ui`'s.

pub mod crash;
pub mod restart;
pub mod silence;
pub mod xact;
