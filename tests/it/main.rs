//! The integration tests: one test binary, one module per area (linked once).

#![forbid(unsafe_code)]

mod common;

// The throwaway-cluster harness and the Supabase-like fixture it loads.
mod pg_harness;

// generate-keys through the binary: lengths, alphabets, JWTs, formats, the CLI contract.
mod generate;

// generate-keys --template and --env-file: filled templates, in-place updates, refusals.
mod generate_files;

// rotate-passwords against throwaway PostgreSQL clusters.
mod rotate;

// rotate-passwords leaks nothing: server logs (sampling, pgaudit, deadlocks), pg_stat_activity.
mod rotate_leaks;

// rotate-keys through the binary: a whole rotation, refusals, crashes, the pty, check --db.
mod rotate_keys;

// check through the binary: every finding code, both formats, upstream demo values, --db.
mod check;

// The process itself: not dumpable, no core file.
mod process_safety;

// generate-keys --env-file replaces weak and placeholder secrets (not a set database password).
mod generate_weak;

// The default .env read by the real Compose v2 and dotenv over upstream's compose file.
mod generate_compose;

// check --compose: upstream's compose file and the findings with file and line.
mod check_compose;

// check against hostile inputs: FIFOs, nested and self-repeating references, control characters.
mod check_bounds;

// What the command line offers before anything runs: completions, the man page, exit codes in --help.
mod cli_surface;

// How the tool writes to stderr: one-line errors, colour only on a terminal.
mod stderr;

// Settling a pending file: where to wait, --dry-run, SASLprep.
mod rotate_recovery;

// The typed confirmation of a live rotation.
mod rotate_prompt;

// Bounded phases, refusals before BEGIN, errors without secrets.
mod rotate_bounds;

// Every copy of the password follows the rotation.
mod rotate_copies;

// Every prompt, interrupt and end of input, through a pty.
mod prompts;

// Hints that help: where a command looked, what a file is, no internal names.
mod hints;

// --quiet prints only errors.
mod quiet;

// What rotate-passwords says around its confirmation.
mod rotate_messages;

// The .env lock of every writer: bounded waits that name the holder, lock files of root runs.
mod env_lock;

// The file side of a rotation: --restart's environment and paths, publishing onto the current
// .env, a single-file bind mount.
mod rotate_files;

// The database side of a rotation: DDL audit, whose connection strings follow, a pooler,
// per-role verifier kinds, settling with any credentials, the rotation lock, roles that cannot log in.
mod rotate_db;

// check --db compares every copy the services keep in the database.
mod check_copies;

// generate-keys --env-file never leaves a copy in the database stale.
mod generate_copies;

// check --compose without noise, and --allow.
mod check_noise;

// rotate-secrets: every copy followed, crashes that converge, --restart.
mod rotate_secrets;

// The README says what the binary does: its command list, the key-rotation runbook's restarts.
mod readme;
