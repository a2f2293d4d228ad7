//! Rules on each value by itself: required secrets present, lengths the services insist on, a
//! `POSTGRES_PASSWORD` that survives being pasted into a URL, a `DASHBOARD_PASSWORD` Kong accepts.
//!
//! None of them needs another key's value, so each is one loop or one `if` over [`AuditedFile`].

use super::values::AuditedFile;
use super::{Code, Finding};
use crate::stack::{self, keys, LengthRule, POSTGRES_PASSWORD};

/// Every secret of the (non-asymmetric) catalogue must be set: each is read by a service that
/// fails, or falls back to something insecure, without it.
pub(super) fn missing_secrets(ctx: &AuditedFile<'_>, out: &mut Vec<Finding>) {
    for spec in keys::catalogue(false) {
        if ctx.values.get(spec.key).is_none() {
            out.push(Finding::new(
                Code::MissingSecret,
                Some(spec.key),
                format!("is missing or empty ({}); {}", spec.comment, ctx.fill()),
            ));
        }
    }
}

/// The length is of the value's bytes, as the services read it; it says nothing useful about
/// the value itself, so it may be printed.
pub(super) fn lengths(ctx: &AuditedFile<'_>, out: &mut Vec<Finding>) {
    for spec in stack::KEYS {
        let (Some(rule), Some(value)) = (spec.length, ctx.values.get(spec.key)) else { continue };
        let key = spec.key;
        let len = value.len();
        let (wanted, why) = match rule {
            LengthRule::Exactly(n, why) if len != n => (format!("exactly {n}"), why),
            LengthRule::AtLeast(n, why) if len < n => (format!("at least {n}"), why),
            _ => continue,
        };
        out.push(Finding::new(
            Code::WrongLength,
            Some(key),
            format!("is {len} characters long but must be {wanted} ({why}); {}", ctx.remedy(key)),
        ));
    }
}

/// Characters that end or split a URL's userinfo, or that services' shell and YAML quoting
/// mangle, when the password is pasted into `postgres://user:PASSWORD@host/db`.
fn breaks_urls(c: char) -> bool {
    matches!(c, '@' | '/' | '?' | '#' | ':' | '&' | '%' | '\'' | '"' | '`') || c.is_whitespace()
}

/// Which characters are present is not said: even that narrows the password down.
pub(super) fn postgres_password_in_urls(ctx: &AuditedFile<'_>, out: &mut Vec<Finding>) {
    let Some(password) = ctx.values.get(POSTGRES_PASSWORD) else { return };
    if password.chars().any(breaks_urls) {
        out.push(Finding::new(
            Code::UrlBreakingPassword,
            Some(POSTGRES_PASSWORD),
            format!(
                "contains characters that break connection URLs (one of @ / ? # : & %, whitespace or quotes), so services \
                 that build postgres:// URLs from it cannot connect; rotate it with `pmoves-secrets rotate-passwords \
                 --env-file {}`, which generates a hex password",
                ctx.path.display()
            ),
        ));
    }
}

/// Kong's basic-auth plugin rejects a digits-only password, which locks Studio.
pub(super) fn dashboard_password(ctx: &AuditedFile<'_>, out: &mut Vec<Finding>) {
    let Some(password) = ctx.values.get("DASHBOARD_PASSWORD") else { return };
    if password.bytes().all(|b| b.is_ascii_digit()) {
        out.push(Finding::new(
            Code::DigitsOnlyDashboardPassword,
            Some("DASHBOARD_PASSWORD"),
            format!(
                "is digits only, which Kong's basic-auth rejects (Studio cannot be opened); {}",
                ctx.remedy("DASHBOARD_PASSWORD")
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::check::test_support::{audit, codes_for};

    #[test]
    fn lengths_and_shapes() {
        let f = audit(&[
            // Values strong enough that only the shape rule speaks.
            ("VAULT_ENC_KEY", "k3J9qLm2xP7vR4zW8nB5tY6uH1cD0fG"),
            ("REALTIME_DB_ENC_KEY", "k3J9qLm2xP7vR4zW"),
            ("POSTGRES_PASSWORD", "k3J9qLm2xP7vR4zW@8nB5tY6uH1cD0fGa"),
            ("DASHBOARD_PASSWORD", "83920174659201837465"),
        ]);
        assert_eq!(codes_for(&f, "VAULT_ENC_KEY"), ["wrong-length"]);
        assert!(codes_for(&f, "REALTIME_DB_ENC_KEY").is_empty());
        assert_eq!(codes_for(&f, "POSTGRES_PASSWORD"), ["url-breaking-password"]);
        assert_eq!(codes_for(&f, "DASHBOARD_PASSWORD"), ["digits-only-dashboard-password"]);
    }
}
