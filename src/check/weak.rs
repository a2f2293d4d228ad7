//! Values that are not fit to be secrets although no list of published demos names them:
//! upstream's placeholders, and values a strength estimator finds too easy to guess for their
//! key ([`crate::strength`], the same judgement `generate-keys --env-file` replaces by).
//!
//! Messages name the key and the minimum, never the value nor its estimate.

use super::values::AuditedFile;
use super::{Code, Finding};
use crate::stack::demo::is_demo_value;
use crate::strength::{self, Weakness};

/// Every key is judged: a placeholder is public wherever it was copied, and the estimator runs on
/// the keys the strength table names. A demo value is the demo rule's finding alone.
pub(super) fn weak_values(ctx: &AuditedFile<'_>, out: &mut Vec<Finding>) {
    for (key, value) in ctx.values.iter() {
        if is_demo_value(value) {
            continue;
        }
        match strength::judge(key, value) {
            Some(Weakness::Placeholder(stands_for)) => out.push(Finding::new(
                Code::PlaceholderValue,
                Some(key),
                format!(
                    "holds the placeholder upstream's .env.example gives {stands_for}, which anyone can read; {}",
                    ctx.remedy(key)
                ),
            )),
            Some(Weakness::Weak { minimum, .. }) => out.push(Finding::new(
                Code::WeakSecret,
                Some(key),
                format!(
                    "is too easy to guess for a secret (a word, filler, repeat or sequence, or too short): a strength \
                     estimate puts it below the 10^{minimum:.0} guesses this key needs; {}",
                    ctx.remedy(key)
                ),
            )),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::check::test_support::{audit, codes_for};

    #[test]
    fn placeholders_and_weak_values_are_errors_but_demos_only_once() {
        let f = audit(&[
            ("REALTIME_DB_ENC_KEY", "your16charkey123"),
            ("SMTP_PASS", "fake_mail_password"),
            ("JWT_SECRET", "changemechangemechangemechangeme"),
            ("VAULT_ENC_KEY", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            ("MINIO_ROOT_PASSWORD", "secret1234"),
            ("DASHBOARD_PASSWORD", "plaid-Otter-quietly-47-lantern"),
        ]);
        assert_eq!(codes_for(&f, "REALTIME_DB_ENC_KEY"), ["placeholder-value"]);
        assert_eq!(codes_for(&f, "SMTP_PASS"), ["placeholder-value"]);
        assert!(codes_for(&f, "JWT_SECRET").contains(&"weak-secret"));
        assert!(codes_for(&f, "VAULT_ENC_KEY").contains(&"weak-secret"));
        assert_eq!(codes_for(&f, "MINIO_ROOT_PASSWORD"), ["demo-value"]);
        assert!(codes_for(&f, "DASHBOARD_PASSWORD").is_empty());
        for finding in &f {
            assert!(!finding.message.contains("your16charkey123") && !finding.message.contains("changeme"));
        }
    }
}
