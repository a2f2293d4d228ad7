//! Where the stack keeps its internal state in PostgreSQL (the schemas themselves are named in
//! the SQL that reads them: `analytics`, `rotate::sql`).
//!
//! Current stacks put the schemas of Logflare (`_analytics`) and Supavisor (`_supavisor`) in a
//! database of their own, [`INTERNALS_DATABASE`]; older ones kept them in the main database.
//! Every lookup of them (`analytics`, `service_copies`, `rotate-passwords`' discovery) takes its
//! order from [`internals_candidates`]: [`INTERNALS_DATABASE`] first, then the database it was
//! pointed at.

/// The database of the internal schemas on current stacks.
pub const INTERNALS_DATABASE: &str = "_supabase";

/// The databases to look in for the internal schemas, in order: [`INTERNALS_DATABASE`], then
/// `main` (older stacks) unless it is the same one.
pub fn internals_candidates(main: &str) -> impl Iterator<Item = &str> {
    std::iter::once(INTERNALS_DATABASE).chain((main != INTERNALS_DATABASE).then_some(main))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_internals_database_comes_first_and_only_once() {
        assert_eq!(internals_candidates("postgres").collect::<Vec<_>>(), ["_supabase", "postgres"]);
        assert_eq!(internals_candidates("_supabase").collect::<Vec<_>>(), ["_supabase"]);
    }
}
