//! The `.env` as the rules see it: the effective value of each key, the [`AuditedFile`] every rule gets
//! (with the remedies its messages end in), and compose-style `${VAR}` expansion.
//!
//! Kept apart from the rules so that each of them reads values the one way docker compose does
//! (the last occurrence wins, empty counts as unset), and names the same fix for the same key.

use std::collections::HashMap;
use std::path::Path;

use super::{Code, Finding};
use crate::envfile::interpolate::{interpolate, InterpolateError};
use crate::envfile::EnvFile;
use crate::secret::Secret;
use crate::stack::{self, POSTGRES_PASSWORD};

/// The least the `.env`'s expansions may take in all, whatever the file's size.
const EXPANSION_BUDGET_FLOOR: usize = 1 << 20;
/// How many times the file's size its expansions may take in all, beyond the floor.
const EXPANSION_BUDGET_FACTOR: usize = 4;

/// The `.env` as the audit sees it: for each key the value docker compose would use (the last
/// occurrence), in the order keys first appear. Keys and values are borrowed from the parsed file
/// (whose buffers are zeroed when dropped), so the audit holds no second copy of them; only
/// expansions are owned, as [`Secret`]s.
///
/// Compose expands `${VAR}` in the `.env` as it reads it, line by line, with the values of the
/// lines above (a value that refers to a later key, or to itself, gets the earlier value or
/// nothing). So does this: each value is expanded once, in file order, from the expansions
/// before it, which is linear in the file; the expansions together may take
/// [`EXPANSION_BUDGET_FACTOR`] times the file's size (at least [`EXPANSION_BUDGET_FLOOR`]), so
/// lines that repeat one another (`B=$A$A$A…`, `C=$B$B$B…`) cannot take the memory they would
/// take compose. Lookups are by key, so every rule's reading of a value costs the same however
/// many keys the file has.
pub(super) struct Values<'a> {
    entries: Vec<Value<'a>>,
    index: HashMap<&'a str, usize>,
    /// Keys whose value compose cannot read, or whose expansion went beyond the budget (after
    /// which no value is expanded), in file order.
    problems: Vec<(&'a str, InterpolateError)>,
}

/// One key's effective value, and what compose's interpolation makes of it when that differs.
struct Value<'a> {
    key: &'a str,
    value: &'a str,
    expanded: Option<Secret>,
}

impl Value<'_> {
    fn as_compose_reads(&self) -> &str {
        self.expanded.as_ref().map_or(self.value, Secret::expose)
    }
}

impl<'a> Values<'a> {
    /// The values of a parsed `.env`, expanded as compose reads them (single-quoted values
    /// literally).
    pub(super) fn from_env(env: &'a EnvFile) -> Self {
        let size: usize = env.pairs().map(|(key, value)| key.len() + value.len() + 2).sum();
        let mut values = Values::empty(size);
        let mut budget = EXPANSION_BUDGET_FLOOR.saturating_add(size.saturating_mul(EXPANSION_BUDGET_FACTOR));
        for (key, value, interpolated) in env.pairs_as_compose_reads() {
            let expanded = interpolated.template().and_then(|template| values.expand(key, template, &mut budget));
            values.insert(key, value, expanded);
        }
        values
    }

    /// From `(key, value)` pairs in file order, each read as compose reads a bare value; a later
    /// duplicate replaces the earlier value: for the rules' unit tests.
    #[cfg(test)]
    pub(super) fn from_pairs(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut values = Values::empty(0);
        let mut budget = EXPANSION_BUDGET_FLOOR;
        for (key, value) in pairs {
            let expanded = values.expand(key, value, &mut budget);
            values.insert(key, value, expanded);
        }
        values
    }

    fn empty(size_hint: usize) -> Self {
        let capacity = size_hint / 16;
        Values { entries: Vec::with_capacity(capacity), index: HashMap::with_capacity(capacity), problems: Vec::new() }
    }

    /// `template` (the value of `key`) expanded with the values so far, when that differs from
    /// it; records why not when compose could not read it or the budget is spent.
    fn expand(&mut self, key: &'a str, template: &str, budget: &mut usize) -> Option<Secret> {
        if !template.contains('$') || *budget == 0 {
            return None;
        }
        let lookup = |name: &str| self.slot(name).map(Value::as_compose_reads);
        match interpolate(template, &lookup, *budget) {
            Ok((text, _)) => {
                *budget -= text.len();
                (text.as_str() != template).then(|| Secret::new(text.to_string()))
            }
            Err(error) => {
                if matches!(error, InterpolateError::TooLong { .. }) {
                    *budget = 0;
                }
                self.problems.push((key, error));
                None
            }
        }
    }

    fn insert(&mut self, key: &'a str, value: &'a str, expanded: Option<Secret>) {
        match self.position(key) {
            Some(i) => {
                self.entries[i].value = value;
                self.entries[i].expanded = expanded;
            }
            None => {
                self.index.insert(key, self.entries.len());
                self.entries.push(Value { key, value, expanded });
            }
        }
    }

    /// Where `key`'s value is stored: one probe of the index, however many keys there are.
    fn position(&self, key: &str) -> Option<usize> {
        #[cfg(test)]
        tests::LOOKUPS.with(|count| count.set(count.get() + 1));
        self.index.get(key).copied()
    }

    fn slot(&self, key: &str) -> Option<&Value<'a>> {
        self.position(key).map(|i| &self.entries[i])
    }

    /// The value of `key` when it is set and not empty.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.get_set(key).filter(|v| !v.is_empty())
    }

    /// The value of `key` when it is set, empty included (compose's `${VAR-default}` tells the two
    /// apart).
    pub(super) fn get_set(&self, key: &str) -> Option<&str> {
        self.slot(key).map(|v| v.value)
    }

    /// The value of `key` as compose hands it to a service: with the `.env`'s own `${VAR}`
    /// references expanded. The parser keeps `${VAR}` as written
    /// (`SUPABASE_DB_URL=postgresql://postgres:${POSTGRES_PASSWORD}@db/postgres` is common), so
    /// the copy and URL rules compare both this and [`Values::get`], and complain only when
    /// neither matches. Variables from the shell environment are unknown here and expand to
    /// nothing; a value compose could not read is left as written.
    pub(super) fn as_compose_reads(&self, key: &str) -> Option<&str> {
        self.slot(key).map(Value::as_compose_reads)
    }

    /// Every non-empty `(key, value)`, in file order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|v| (v.key, v.value)).filter(|(_, v)| !v.is_empty())
    }

    /// The keys whose values compose cannot read, or that expand beyond the budget, with why.
    pub(super) fn interpolation_problems(&self) -> &[(&'a str, InterpolateError)] {
        &self.problems
    }
}

/// Compose refuses a `.env` with a value it cannot interpolate; a value that expands beyond the
/// budget is one compose would need as much memory for.
pub(super) fn interpolation_problems(ctx: &AuditedFile<'_>, out: &mut Vec<Finding>) {
    for (key, problem) in ctx.values.interpolation_problems() {
        let remedy = match problem {
            InterpolateError::TooLong { .. } => {
                "compose would build all of that in memory; write the value out instead of referring to other keys                  (check compares the values from here on as written)"
            }
            _ => {
                "compose refuses the whole file (\"Invalid template\"); write a literal `$` as `$$`, or single-quote                  the value"
            }
        };
        out.push(Finding::new(
            Code::EnvBadInterpolation,
            Some(key),
            format!("cannot be interpolated: {problem}; {remedy}"),
        ));
    }
}

/// What every file rule needs: the values, the file (for the commands in messages) and the time.
pub(super) struct AuditedFile<'a> {
    pub(super) values: &'a Values<'a>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// How many stored values were visited to find one by key, on this thread.
        pub(super) static LOOKUPS: Cell<usize> = const { Cell::new(0) };
    }

    fn compose_reads(values: &Values, key: &str) -> String {
        values.as_compose_reads(key).unwrap().to_owned()
    }

    #[test]
    fn expansion_follows_the_files_references_and_compose_defaults() {
        let values = Values::from_pairs([
            ("PW", "p4ss"),
            ("URL", "postgres://u:${PW}@db/x"),
            ("EMPTY", ""),
            ("BOTH", "${URL}?${EMPTY-d}${EMPTY:-e}"),
            ("BAD", "$$PW ${PW"),
        ]);
        assert_eq!(compose_reads(&values, "BOTH"), "postgres://u:p4ss@db/x?e");
        assert_eq!(compose_reads(&values, "BAD"), "$$PW ${PW", "unreadable text is kept");
        assert_eq!(values.get("BOTH"), Some("${URL}?${EMPTY-d}${EMPTY:-e}"), "the value as written stays");
        let problems: Vec<&str> = values.interpolation_problems().iter().map(|(k, _)| *k).collect();
        assert_eq!(problems, ["BAD"]);
    }

    /// What Compose v2.40.3 gave each variable of this `.env`: a reference reads the lines above
    /// it, so one to a later key or to itself is empty.
    #[test]
    fn references_read_the_lines_above_as_compose_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "A=${B}x\nB=b\nC=${C}${C}c\nD=${B}${B}\nE=${A}e\nS='${B}'\nQ=\"\\$B $B\"\nB=later\n")
            .unwrap();
        let env = EnvFile::read(&path).unwrap();
        let values = Values::from_env(&env);
        let read: Vec<String> = ["A", "B", "C", "D", "E", "S", "Q"].iter().map(|k| compose_reads(&values, k)).collect();
        assert_eq!(read, ["x", "later", "c", "bb", "xe", "${B}", "$B b"]);
        assert!(values.interpolation_problems().is_empty());
    }

    /// A 245-byte self-referencing line made the old expansion (a few levels deep, each
    /// re-expanding every reference) allocate gigabytes.
    #[test]
    fn a_self_reference_expands_once() {
        let line = "${LOOP}".repeat(35);
        let values = Values::from_pairs([("LOOP", line.as_str())]);
        assert_eq!(compose_reads(&values, "LOOP"), "");
        let values = Values::from_pairs([("LOOP", "seed"), ("LOOP", line.as_str())]);
        assert_eq!(compose_reads(&values, "LOOP"), "seed".repeat(35));
    }

    /// Each line repeating the one above ten times: 10^10 bytes for compose. The expansions stop
    /// at the budget, say where, and hold no more than it.
    #[test]
    fn lines_that_repeat_each_other_stop_at_the_budget() {
        let mut pairs = vec![("L0".to_owned(), "0123456789".to_owned())];
        for i in 1..10 {
            pairs.push((format!("L{i}"), format!("${{L{}}}", i - 1).repeat(10)));
        }
        pairs.push(("AFTER".to_owned(), "${L0}".to_owned()));
        let values = Values::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let problems: Vec<(&str, bool)> = values
            .interpolation_problems()
            .iter()
            .map(|(k, e)| (*k, matches!(e, InterpolateError::TooLong { .. })))
            .collect();
        assert_eq!(problems, [("L5", true)]);
        let held: usize = pairs.iter().map(|(k, _)| values.as_compose_reads(k).unwrap().len()).sum();
        assert!(held <= EXPANSION_BUDGET_FLOOR + 1000, "{held} bytes held");
        assert_eq!(compose_reads(&values, "L4"), "0123456789".repeat(10_000));
        assert_eq!(compose_reads(&values, "AFTER"), "${L0}", "nothing is expanded past the budget");
    }

    /// Reading the file and every rule find values by key: the audit of a file with many keys
    /// visits a bounded number of stored values per key (a scan of the keys per lookup, as
    /// before, visited n² of them).
    #[test]
    fn the_audit_looks_values_up_by_key() {
        let n = 5_000;
        let pairs: Vec<(String, String)> =
            (0..n).map(|i| (format!("SERVICE_{i}_URL"), format!("postgresql://u{i}:p%40ss@db:5432/app"))).collect();
        LOOKUPS.with(|c| c.set(0));
        let values = Values::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let findings = crate::check::audit_values(&values, Path::new(".env"), 0);
        assert!(!findings.is_empty());
        let lookups = LOOKUPS.with(Cell::get);
        assert!(lookups <= 10 * n, "{lookups} lookups for {n} keys");
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
        let values = Values::from_pairs([]);
        let ctx = AuditedFile { values: &values, path: Path::new("prod.env"), now: 0 };
        let jwt = ctx.remedy("JWT_SECRET");
        assert!(jwt.contains("--env-file prod.env --only JWT_SECRET"), "{jwt}");
        assert!(jwt.ends_with("(which re-mints ANON_KEY and SERVICE_ROLE_KEY too)"), "{jwt}");
        assert!(!ctx.remedy("VAULT_ENC_KEY").contains("re-mints"));
        assert!(ctx.remedy("POSTGRES_PASSWORD").contains("rotate-passwords"));
        assert_eq!(ctx.remedy("SITE_URL"), "set its real value, or leave it empty if nothing uses it");
    }
}
