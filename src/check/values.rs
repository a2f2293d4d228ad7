//! The `.env` as the rules see it: the effective value of each key, the [`AuditedFile`] every rule gets
//! (with the remedies its messages end in), and compose-style `${VAR}` expansion.
//!
//! Kept apart from the rules so that each of them reads values the one way docker compose does
//! (the last occurrence wins, empty counts as unset), and names the same fix for the same key.

use std::path::Path;

use zeroize::Zeroizing;

use crate::envfile::interpolate::interpolate;
use crate::secret::Secret;
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

    /// The value of `key` when it is set, empty included (compose's `${VAR-default}` tells the two
    /// apart).
    pub(super) fn get_set(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.expose())
    }

    /// Every non-empty `(key, value)`, in file order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.expose())).filter(|(_, v)| !v.is_empty())
    }
}

/// What every file rule needs: the values, the file (for the commands in messages) and the time.
pub(super) struct AuditedFile<'a> {
    pub(super) values: &'a Values,
    pub(super) path: &'a Path,
    pub(super) now: i64,
}

/// Whether the file at `path` is a template (`.env.example`, `.env.sample`, `.env.template`,
/// `.env.dist`): its secrets are published with it, so the fix is a new `.env` made from it, never
/// an edit of the template itself.
pub(super) fn is_template(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    [".example", ".sample", ".template", ".dist"].iter().any(|suffix| name.ends_with(suffix))
}

/// What every finding of the template at `path` is fixed by.
pub(super) fn remedy_for_template(path: &Path) -> String {
    format!(
        "this file is a template: make the stack's .env from it with `pmoves-secrets generate-keys --template {} \
         --output .env` (fresh secrets, mode 0600) and check that file instead",
        path.display()
    )
}

impl AuditedFile<'_> {
    /// Whether the audited file is a template (`.env.example`, `.env.sample`, `.env.template`,
    /// `.env.dist`): its secrets are published with it, so the fix is a new `.env` made from it,
    /// never an edit of the template itself.
    pub(super) fn is_template(&self) -> bool {
        is_template(self.path)
    }

    /// What a template's every finding is fixed by.
    fn remedy_for_template(&self) -> String {
        remedy_for_template(self.path)
    }

    /// How to fill the missing secrets of this file.
    pub(super) fn fill(&self) -> String {
        if self.is_template() {
            return self.remedy_for_template();
        }
        format!("fill it with `pmoves-secrets generate-keys --env-file {}`", self.path.display())
    }

    /// The `generate-keys` command that replaces `key` in this file.
    pub(super) fn regenerate(&self, key: &str) -> String {
        format!("pmoves-secrets generate-keys --env-file {} --only {key}", self.path.display())
    }

    /// Every asymmetric problem has one fix: a new `JWT_KEYS`, from which the rest is derived.
    pub(super) fn remedy_key_set(&self) -> String {
        if self.is_template() {
            return self.remedy_for_template();
        }
        format!("re-mint the set with `{}`", self.regenerate("JWT_KEYS"))
    }

    /// How to replace `key` safely: the database password goes through `rotate-passwords`,
    /// because changing it only in the file locks every service out.
    pub(super) fn remedy(&self, key: &str) -> String {
        if self.is_template() && stack::key(key).is_some() {
            return self.remedy_for_template();
        }
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
                None => "set its real value, or leave it empty if nothing uses it".to_owned(),
            },
        }
    }
}

/// `value` with compose-style references (`$VAR`, `${VAR}`, `${VAR:-default}`, `$$`, …) replaced
/// by the file's values, by compose's rules ([`interpolate`]).
///
/// The parser keeps `${VAR}` as written (compose interpolates unquoted and double-quoted values,
/// and `SUPABASE_DB_URL=postgresql://postgres:${POSTGRES_PASSWORD}@db/postgres` is common), so
/// the copy and URL rules compare both the raw and the expanded text and complain only when
/// neither matches: a literal `$` in a single-quoted value can then never cause a false finding.
/// Variables from the shell environment are unknown here and expand to nothing; text compose
/// could not read (`${` unclosed) is left as written.
pub(super) fn expand(value: &str, values: &Values) -> Zeroizing<String> {
    expand_depth(value, values, 0)
}

/// Compose expands the `.env`'s own references as it reads the file, so a looked-up value is
/// expanded in turn, a few levels deep: a cycle stops there instead of looping.
fn expand_depth(value: &str, values: &Values, depth: usize) -> Zeroizing<String> {
    let lookup = |name: &str| {
        values.get_set(name).map(|v| {
            if depth < 4 {
                expand_depth(v, values, depth + 1)
            } else {
                Zeroizing::new(v.to_owned())
            }
        })
    };
    match interpolate(value, &lookup) {
        Ok((text, _)) => text,
        Err(_) => Zeroizing::new(value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_the_files_references_and_compose_defaults() {
        let values = Values::from_pairs([
            ("PW", "p4ss"),
            ("URL", "postgres://u:${PW}@db/x"),
            ("EMPTY", ""),
            ("LOOP", "${LOOP}x"),
        ]);
        assert_eq!(expand("${URL}?${EMPTY-d}${EMPTY:-e}", &values).as_str(), "postgres://u:p4ss@db/x?e");
        assert_eq!(expand("$$PW ${PW", &values).as_str(), "$$PW ${PW", "unreadable text is kept");
        assert!(expand("${LOOP}", &values).ends_with("xxxx"), "a cycle stops");
    }

    #[test]
    fn a_templates_remedy_never_edits_the_template() {
        let values = Values::from_pairs([("A", "1")]);
        for name in [".env.example", "env.example", "prod.env.template"] {
            let ctx = AuditedFile { values: &values, path: Path::new(name), now: 0 };
            for hint in [ctx.remedy("JWT_SECRET"), ctx.remedy("POSTGRES_PASSWORD"), ctx.fill(), ctx.remedy_key_set()] {
                assert!(hint.contains(&format!("--template {name} --output .env")), "{hint}");
                assert!(!hint.contains("--env-file"), "{hint}");
            }
        }
        let ctx = AuditedFile { values: &values, path: Path::new(".env"), now: 0 };
        assert!(ctx.fill().contains("--env-file .env"));
    }

    #[test]
    fn later_duplicates_win() {
        let values = Values::from_pairs([("A", "1"), ("B", ""), ("A", "2")]);
        assert_eq!(values.get("A"), Some("2"));
        assert_eq!(values.get("B"), None);
    }

    #[test]
    fn remedies_name_the_command_and_what_it_remints() {
        let values = Values::from_pairs(Vec::<(String, String)>::new());
        let ctx = AuditedFile { values: &values, path: Path::new("prod.env"), now: 0 };
        let jwt = ctx.remedy("JWT_SECRET");
        assert!(jwt.contains("--env-file prod.env --only JWT_SECRET"), "{jwt}");
        assert!(jwt.ends_with("(which re-mints ANON_KEY and SERVICE_ROLE_KEY too)"), "{jwt}");
        assert!(!ctx.remedy("VAULT_ENC_KEY").contains("re-mints"));
        assert!(ctx.remedy("POSTGRES_PASSWORD").contains("rotate-passwords"));
        assert_eq!(ctx.remedy("SITE_URL"), "set its real value, or leave it empty if nothing uses it");
    }
}
