//! The rule that flags published demo values anywhere in the file (the values themselves are
//! facts of the stack: [`crate::stack::demo`]).
//!
//! A stack running on a published value is open to anyone who has read upstream's
//! `.env.example`. Messages say where a value was published, never the value.

use super::values::AuditedFile;
use super::{Code, Finding};
use crate::stack::demo::{demo_origin, published_url_credential};

/// Every key of the file is checked, not only the catalogue: a demo token copied into
/// `SUPABASE_ANON_KEY` or a frontend variable is just as public.
pub(super) fn demo_values(ctx: &AuditedFile<'_>, out: &mut Vec<Finding>) {
    for (key, value) in ctx.values.iter() {
        if let Some(origin) = demo_origin(value) {
            out.push(Finding::new(
                Code::DemoValue,
                Some(key),
                format!("holds a publicly known demo value ({origin}); {}", ctx.remedy(key)),
            ));
        }
    }
}

/// A URL that keeps a project's published default credentials. The generated `.env` keeps
/// PMOVES.AI's NATS default on purpose, so that its NATS server accepts it: a warning, not an
/// error, since it breaks nothing and the server is normally reachable only inside the stack's
/// network — but anyone who can reach it knows the credentials.
pub(super) fn published_credentials(ctx: &AuditedFile<'_>, out: &mut Vec<Finding>) {
    for (key, value) in ctx.values.iter() {
        if let Some(whose) = published_url_credential(value) {
            out.push(Finding::new(
                Code::PublishedDefaultCredential,
                Some(key),
                format!(
                    "carries {whose}; anyone who can reach that server can use them. If it is reachable \
                     beyond the stack's network, set your own password in its config and here (or accept \
                     this with --allow published-default-credential)"
                ),
            ));
        }
    }
}
