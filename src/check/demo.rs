//! The rule that flags published demo values anywhere in the file (the values themselves are
//! facts of the stack: [`crate::stack::demo`]).
//!
//! A stack running on a published value is open to anyone who has read upstream's
//! `.env.example`. Messages say where a value was published, never the value.

use super::values::AuditedFile;
use super::{Code, Finding};
use crate::stack::demo::demo_origin;

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
