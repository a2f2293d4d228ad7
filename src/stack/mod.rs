//! What a Supabase stack *is*: the facts every command shares, in one place.
//!
//! `generate-keys`, `rotate-passwords` and `check` each read this module instead of keeping
//! their own copies, so the three cannot drift apart:
//!
//! - [`roles`]: the database roles that share `POSTGRES_PASSWORD`, which of them log in by
//!   default, and the passwordless read-only role;
//! - [`keys`]: the secret keys of `.env` as a typed catalogue (recipe, length rule, aliases,
//!   dependents, the services that read each);
//! - [`demo`]: the values upstream published, which no real stack may run on;
//! - [`notice`]: what users of a running stack notice when a secret changes (in `.env` alone, or
//!   rotated with every copy);
//! - [`readers`]: who reads the variables the tool writes for optional services and PMOVES.AI;
//! - [`services`]: the compose services and what each holds;
//! - [`internals`]: the database that holds the stack's internal schemas, and the analytics
//!   table whose URLs carry the database password;
//! - [`settings`]: the non-secret variables of a stack's `.env` with upstream's defaults, and
//!   the third-party secrets the operator brings;
//! - [`connection`]: the `.env` keys that say where the database is and with what password;
//! - [`server`]: the stack's own database server under all its names, and which connection
//!   strings are the stack's copies of its password;
//! - [`copies`]: every copy of a secret the services keep outside `.env` (tables, columns, how
//!   each is stored and whether its service rewrites it at start), with their sources.
//!
//! Facts only: nothing here makes a secret (that is `secrets`) or talks to a server (that is
//! `discovery`, `analytics` and the commands).

pub mod connection;
pub mod copies;
pub mod demo;
pub mod internals;
pub mod keys;
pub mod notice;
pub mod readers;
pub mod roles;
pub mod server;
pub mod services;
pub mod settings;

pub use keys::{key, with_dependents, KeySpec, LengthRule, Recipe, KEYS, POSTGRES_PASSWORD};
