//! The integration tests: one test binary, one module per area (linked once).

mod common;

// generate-keys through the binary: lengths, alphabets, JWTs, formats, the CLI contract.
mod generate;

// rotate-passwords against throwaway PostgreSQL clusters.
mod rotate;

// check through the binary: every finding code, both formats, upstream demo values, --db.
mod check;
