//! Values that must repeat another: `SUPABASE_`-prefixed copies of standard variables, and the
//! password inside each connection URL of a Supabase role, which must be `POSTGRES_PASSWORD`.
//!
//! A stale copy fails only at the next restart of the service reading it, long after the change
//! that caused it, so these are errors. Both the raw and the `${VAR}`-expanded text are compared.

use zeroize::Zeroizing;

use super::jwt::printable_claim;
use super::values::AuditedFile;
use super::{Code, Finding};
use crate::dburl;
use crate::stack::keys::standard_for;
use crate::stack::roles::is_rotated_role;
use crate::stack::POSTGRES_PASSWORD;

/// A stale copy is worse than none: the service reading it fails while the file looks right.
pub(super) fn supabase_aliases(ctx: &AuditedFile<'_>, out: &mut Vec<Finding>) {
    for (alias, value) in ctx.values.iter() {
        let Some(standard) = standard_for(alias) else { continue };
        let Some(expected) = ctx.values.get(standard) else { continue };
        if value != expected && ctx.values.as_compose_reads(alias) != Some(expected) {
            out.push(Finding::new(
                Code::SupabaseAliasMismatch,
                Some(alias),
                format!(
                    "differs from {standard}, so the services reading {alias} use a stale value; set it to the same value \
                     as {standard} (or to ${{{standard}}})"
                ),
            ));
        }
    }
}

/// Whether the URL logs in as one of the Supabase roles (supavisor's `postgres.<tenant>` form
/// included). URLs of the operator's own roles legitimately carry other passwords.
fn is_supabase_role_url(url: &str) -> bool {
    dburl::user(url).is_some_and(|user| {
        let role = user.split('.').next().unwrap_or_default();
        is_rotated_role(role)
    })
}

/// Every Supabase service URL must carry the one shared password; a URL left with an old one fails at
/// the next restart, long after the change that caused it.
pub(super) fn url_passwords(ctx: &AuditedFile<'_>, out: &mut Vec<Finding>) {
    let Some(expected) = ctx.values.get(POSTGRES_PASSWORD) else { return };
    for (key, value) in ctx.values.iter() {
        if !dburl::is_postgres_url(value) {
            continue;
        }
        if !is_supabase_role_url(value) {
            continue;
        }
        let Some(password) = dburl::password(value).map(Zeroizing::new) else { continue };
        let expanded = ctx.values.as_compose_reads(key).and_then(dburl::password).map(Zeroizing::new);
        if password.as_str() != expected && expanded.as_deref().map(String::as_str) != Some(expected) {
            let user = dburl::user(value).map(|u| printable_claim(&u)).unwrap_or_else(|| "its user".to_owned());
            out.push(Finding::new(
                Code::UrlPasswordMismatch,
                Some(key),
                format!(
                    "is a connection URL (user {user}) whose password is not POSTGRES_PASSWORD, so the service using it \
                     cannot log in; put POSTGRES_PASSWORD in it (percent-encoded), or let `pmoves-secrets rotate-passwords` \
                     keep such URLs in step"
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::check::test_support::{audit, codes_for};

    #[test]
    fn aliases_and_urls_compare_with_the_standard_values() {
        let f = audit(&[
            ("POSTGRES_PASSWORD", "right"),
            ("ANON_KEY", "a"),
            ("SUPABASE_ANON_KEY", "b"),
            ("SUPABASE_SERVICE_KEY", "c"),
            ("SUPABASE_URL", "http://kong:8000"),
            ("DATABASE_URL", "postgresql://postgres:wrong@db:5432/postgres"),
            ("GOOD_URL", "postgres://postgres:right@db/postgres"),
        ]);
        assert_eq!(codes_for(&f, "SUPABASE_ANON_KEY"), ["supabase-alias-mismatch"]);
        assert!(codes_for(&f, "SUPABASE_SERVICE_KEY").is_empty(), "no SERVICE_ROLE_KEY to compare with");
        assert!(codes_for(&f, "SUPABASE_URL").is_empty());
        assert_eq!(codes_for(&f, "DATABASE_URL"), ["url-password-mismatch"]);
        assert!(codes_for(&f, "GOOD_URL").is_empty());
    }
}
