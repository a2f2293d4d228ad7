//! The `.env` as the rules see it: the effective value of each key, the [`Ctx`] every rule gets
//! (with the remedies its messages end in), and compose-style `${VAR}` expansion.
//!
//! Kept apart from the rules so that each of them reads values the one way docker compose does
//! (the last occurrence wins, empty counts as unset), and names the same fix for the same key.

use std::path::Path;

use zeroize::Zeroizing;

use crate::secrets::Secret;
use crate::stack::{self, POSTGRES_PASSWORD};

/// The `.env` as the audit sees it: for each key the value docker compose would use (the last
/// occurrence), in the order keys first appear. Values stay wrapped in [`Secret`].
pub(super) struct Values {
    entries: Vec<(String, Secret)>,
}

impl Values {
    /// From `(key, value)` pairs in file order; a later duplicate replaces the earlier value.
    pub(super) fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut entries: Vec<(String, Secret)> = Vec::new();
        for (key, value) in pairs {
            let key = key.into();
            let value = Secret::new(value.into());
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => entries.push((key, value)),
            }
        }
        Values { entries }
    }

    /// The value of `key` when it is set and not empty.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.expose()).filter(|v| !v.is_empty())
    }

    /// Every non-empty `(key, value)`, in file order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.expose())).filter(|(_, v)| !v.is_empty())
    }
}

/// What every file rule needs: the values, the file (for the commands in messages) and the time.
pub(super) struct Ctx<'a> {
    pub(super) values: &'a Values,
    pub(super) path: &'a Path,
    pub(super) now: i64,
}

impl Ctx<'_> {
    /// The `generate-keys` command that replaces `key` in this file.
    pub(super) fn regenerate(&self, key: &str) -> String {
        format!("pmoves-secrets generate-keys --env-file {} --only {key}", self.path.display())
    }

    /// Every asymmetric problem has one fix: a new `JWT_KEYS`, from which the rest is derived.
    pub(super) fn remedy_key_set(&self) -> String {
        format!("re-mint the set with `{}`", self.regenerate("JWT_KEYS"))
    }

    /// How to replace `key` safely: the database password goes through `rotate-passwords`,
    /// because changing it only in the file locks every service out.
    pub(super) fn remedy(&self, key: &str) -> String {
        match key {
            POSTGRES_PASSWORD => format!(
                "rotate it with `pmoves-secrets rotate-passwords --env-file {}` (before the database's first start, \
                 `pmoves-secrets generate-keys --env-file {}` may replace it instead)",
                self.path.display(),
                self.path.display()
            ),
            _ => match stack::key(key) {
                Some(spec) => {
                    // Only the dependents every stack has: the asymmetric ones follow only
                    // where that set is in use.
                    let remints: Vec<&str> = spec
                        .dependents
                        .iter()
                        .copied()
                        .filter(|d| stack::key(d).is_some_and(|d| !d.asymmetric))
                        .collect();
                    match remints.as_slice() {
                        [] => format!("replace it with `{}`", self.regenerate(key)),
                        names => format!(
                            "replace it with `{}` (which re-mints {} too)",
                            self.regenerate(key),
                            names.join(" and ")
                        ),
                    }
                }
                None => "replace it with the stack's real value".to_owned(),
            },
        }
    }
}

/// `value` with compose-style references (`$VAR`, `${VAR}`, `${VAR:-default}`, `$$`) replaced
/// by the file's values.
///
/// The parser keeps `${VAR}` as written (compose interpolates unquoted and double-quoted values,
/// and `SUPABASE_DB_URL=postgresql://postgres:${POSTGRES_PASSWORD}@db/postgres` is common), so
/// the copy and URL rules compare both the raw and the expanded text and complain only when
/// neither matches: a literal `$` in a single-quoted value can then never cause a false finding.
/// Variables from the shell environment are unknown here and expand to nothing.
pub(super) fn expand(value: &str, values: &Values) -> Zeroizing<String> {
    expand_depth(value, values, 0)
}

/// Nested references are followed a few levels deep; a cycle stops there instead of looping.
fn expand_depth(value: &str, values: &Values, depth: usize) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(value.len()));
    let mut rest = value;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (replacement, consumed) = reference(after, values, depth);
        out.push_str(&replacement);
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

/// The text a `$` reference stands for and how many bytes after the `$` it spans.
fn reference(after: &str, values: &Values, depth: usize) -> (Zeroizing<String>, usize) {
    let lookup = |name: &str| -> Zeroizing<String> {
        match values.get(name) {
            Some(v) if depth < 4 => expand_depth(v, values, depth + 1),
            Some(v) => Zeroizing::new(v.to_owned()),
            None => Zeroizing::new(String::new()),
        }
    };
    if let Some(braced) = after.strip_prefix('{') {
        let Some(close) = braced.find('}') else { return (Zeroizing::new("$".to_owned()), 0) };
        let inner = &braced[..close];
        let name_len = inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(inner.len());
        let (name, modifier) = inner.split_at(name_len);
        let current = lookup(name);
        let text = match modifier {
            m if m.starts_with(":-") && current.is_empty() => expand_depth(&m[2..], values, depth + 1),
            m if m.starts_with('-') && values.get(name).is_none() => expand_depth(&m[1..], values, depth + 1),
            m if m.starts_with(":+") => {
                Zeroizing::new(if current.is_empty() { String::new() } else { m[2..].to_owned() })
            }
            _ => current,
        };
        return (text, close + 2);
    }
    if after.starts_with('$') {
        return (Zeroizing::new("$".to_owned()), 1);
    }
    let name_len = after
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit())))
        .map_or(after.len(), |(i, _)| i);
    if name_len == 0 {
        return (Zeroizing::new("$".to_owned()), 0);
    }
    (lookup(&after[..name_len]), name_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_duplicates_win() {
        let values = Values::from_pairs([("A", "1"), ("B", ""), ("A", "2")]);
        assert_eq!(values.get("A"), Some("2"));
        assert_eq!(values.get("B"), None);
    }

    #[test]
    fn remedies_name_the_command_and_what_it_remints() {
        let values = Values::from_pairs(Vec::<(String, String)>::new());
        let ctx = Ctx { values: &values, path: Path::new("prod.env"), now: 0 };
        let jwt = ctx.remedy("JWT_SECRET");
        assert!(jwt.contains("--env-file prod.env --only JWT_SECRET"), "{jwt}");
        assert!(jwt.ends_with("(which re-mints ANON_KEY and SERVICE_ROLE_KEY too)"), "{jwt}");
        assert!(!ctx.remedy("VAULT_ENC_KEY").contains("re-mints"));
        assert!(ctx.remedy("POSTGRES_PASSWORD").contains("rotate-passwords"));
        assert_eq!(ctx.remedy("SITE_URL"), "replace it with the stack's real value");
    }
}
