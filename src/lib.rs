//! pmoves-secrets: mint, rotate and audit the secrets of a self-hosted Supabase stack.
//!
//! The library holds every behaviour; the binary (`src/main.rs`) only parses the command line,
//! dispatches and maps the outcome to an exit code. The layers, top to bottom:
//!
//! - [`cli`]: clap definitions, converted into the plain option structs below it;
//! - the commands [`generate`], [`rotate`], [`rotate_keys`] and [`check`], which never import
//!   each other;
//! - [`stack`]: what a Supabase stack is (roles, `.env` keys, services), read by every command;
//! - [`secrets`]: the only place secret values are made;
//! - [`envfile`]: every `.env` file concern; [`db`] and [`dburl`]: connections and the one
//!   connection-string grammar; [`analytics`]: Logflare's table of backends;
//!   [`jwt`]: reading tokens and keys; [`keyring`]: the states of the signing keys, which
//!   `rotate-keys` changes and `check` audits; [`strength`]: how guessable a secret's value is;
//!   [`manual`]: the completion scripts and the man page;
//! - [`error`]: the one error type, whose variants know their exit code; [`ui`]: the operator
//!   channel; [`interrupt`]: Ctrl-C and SIGTERM during prompts and waits; [`process`]: protections
//!   of the process itself (no core dump).

pub mod analytics;
pub mod check;
pub mod cli;
pub mod clock;
pub mod db;
pub mod dburl;
pub mod envfile;
pub mod error;
pub mod generate;
pub mod interrupt;
pub mod jwt;
pub mod keyring;
pub mod manual;
pub mod process;
pub mod rotate;
pub mod rotate_keys;
pub mod secrets;
pub mod stack;
pub mod strength;
pub mod ui;
