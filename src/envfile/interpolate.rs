//! Compose's variable interpolation, the one implementation the project has: `check` expands the
//! `.env`'s own `${VAR}` references with it and reads compose files' references through it.
//!
//! The grammar is compose's (compose-go `template`):
//! - `$$` is a literal `$`;
//! - `$NAME` and `${NAME}` are the variable's value (empty when unset), `NAME` being
//!   `[A-Za-z_][A-Za-z0-9_]*`;
//! - `${NAME:-word}` is `word` when NAME is unset or empty, `${NAME-word}` only when unset;
//! - `${NAME:?message}` fails when NAME is unset or empty, `${NAME?message}` only when unset;
//! - `${NAME:+word}` is `word` when NAME is set and not empty, `${NAME+word}` when set;
//! - `word` is itself interpolated, so defaults nest (`${A:-${B:-8000}}`), and braces inside it
//!   balance (`${JWKS:-{"keys":[]}}` defaults to `{"keys":[]}`).
//!
//! Evaluation also reports every reference it resolved ([`Use`]), which is what the compose audit
//! needs: which variables a file reads, which were unset, and which fell back to a default.

use std::fmt;

use zeroize::Zeroizing;

/// What a `${NAME…}` reference does when NAME is unset or empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `$NAME` or `${NAME}`: the value, empty when unset.
    Plain,
    /// `${NAME:-word}`: `word` when unset or empty.
    DefaultIfEmpty,
    /// `${NAME-word}`: `word` when unset.
    DefaultIfUnset,
    /// `${NAME:?message}`: an error when unset or empty.
    RequireNonEmpty,
    /// `${NAME?message}`: an error when unset.
    RequireSet,
    /// `${NAME:+word}`: `word` when set and not empty, else empty.
    AltIfNonEmpty,
    /// `${NAME+word}`: `word` when set, else empty.
    AltIfSet,
}

impl Op {
    /// The operator as written after the name.
    fn parse(text: &str) -> Option<(Op, usize)> {
        let ops = [
            (":-", Op::DefaultIfEmpty),
            (":?", Op::RequireNonEmpty),
            (":+", Op::AltIfNonEmpty),
            ("-", Op::DefaultIfUnset),
            ("?", Op::RequireSet),
            ("+", Op::AltIfSet),
        ];
        ops.iter().find(|(sym, _)| text.starts_with(sym)).map(|&(sym, op)| (op, sym.len()))
    }

    /// Whether the word after the operator is a default value.
    pub fn has_default(self) -> bool {
        matches!(self, Op::DefaultIfEmpty | Op::DefaultIfUnset)
    }
}

/// A template compose cannot read. Carries no value, only where the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolateError {
    /// `${` without its closing `}`.
    Unterminated { offset: usize },
    /// `${…}` whose name is empty or not `[A-Za-z_][A-Za-z0-9_]*`, or followed by an unknown
    /// operator.
    BadReference { offset: usize },
}

impl fmt::Display for InterpolateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterpolateError::Unterminated { offset } => write!(f, "`${{` at byte {offset} has no closing `}}`"),
            InterpolateError::BadReference { offset } => {
                write!(f, "the reference at byte {offset} is not ${{NAME}}, ${{NAME:-default}} or another compose form")
            }
        }
    }
}

/// One reference that evaluation resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use<'t> {
    /// The variable's name.
    pub name: &'t str,
    /// What the reference does when the variable is unset or empty.
    pub op: Op,
    /// The word after the operator, as written (defaults are not secrets of the `.env`: they are
    /// text of the template).
    pub word: Option<&'t str>,
    /// Whether the variable was set (possibly empty).
    pub set: bool,
    /// Whether it was set and not empty.
    pub non_empty: bool,
}

impl Use<'_> {
    /// Whether the reference produced its default word instead of the variable.
    pub fn fell_back(&self) -> bool {
        match self.op {
            Op::DefaultIfEmpty => !self.non_empty,
            Op::DefaultIfUnset => !self.set,
            _ => false,
        }
    }

    /// Whether compose warns "variable is not set" (a plain reference) or fails (`?`, `:?`).
    pub fn unset(&self) -> bool {
        match self.op {
            Op::Plain | Op::RequireSet => !self.set,
            Op::RequireNonEmpty => !self.non_empty,
            _ => false,
        }
    }
}

/// Where a variable's value comes from. Returns owned text so that a lookup may itself
/// interpolate (compose expands the `.env`'s own references when it reads the file).
pub type Lookup<'a> = dyn Fn(&str) -> Option<Zeroizing<String>> + 'a;

/// `text` with every reference replaced, and the references resolved on the way, in order.
/// `${NAME:?message}` of an unset NAME is reported as a [`Use`] and expands to nothing, so the
/// caller decides whether that is an error.
pub fn interpolate<'t>(
    text: &'t str,
    lookup: &Lookup<'_>,
) -> Result<(Zeroizing<String>, Vec<Use<'t>>), InterpolateError> {
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    let mut uses = Vec::new();
    expand_into(text, 0, lookup, &mut out, &mut uses)?;
    Ok((out, uses))
}

/// Every variable name `text` refers to, in every branch (defaults that would not be evaluated
/// included): what a compose file could read.
pub fn referenced_names(text: &str) -> Result<Vec<&str>, InterpolateError> {
    let mut names = Vec::new();
    collect_names(text, 0, &mut names)?;
    Ok(names)
}

/// A reference found at the start of the text after a `$`.
enum Token<'t> {
    /// `$$`.
    Dollar,
    /// `$NAME` or `${NAME…}`: the name, the operator and its word.
    Reference { name: &'t str, op: Op, word: Option<(&'t str, usize)> },
    /// A `$` that starts nothing (kept literally).
    Lone,
}

/// Reads the reference after the `$` at `text[dollar]`; returns it and the bytes it spans
/// (including the `$`). `base` is `text`'s offset in the whole template, for errors.
fn token(text: &str, dollar: usize, base: usize) -> Result<(Token<'_>, usize), InterpolateError> {
    let after = &text[dollar + 1..];
    if after.starts_with('$') {
        return Ok((Token::Dollar, 2));
    }
    if let Some(braced) = after.strip_prefix('{') {
        let close = closing_brace(braced).ok_or(InterpolateError::Unterminated { offset: base + dollar })?;
        let inner = &braced[..close];
        let name_len = name_len(inner);
        let (name, rest) = inner.split_at(name_len);
        let bad = InterpolateError::BadReference { offset: base + dollar };
        if name.is_empty() {
            return Err(bad);
        }
        let spanned = close + 3;
        if rest.is_empty() {
            return Ok((Token::Reference { name, op: Op::Plain, word: None }, spanned));
        }
        let (op, sym_len) = Op::parse(rest).ok_or(bad)?;
        // The word's offset within `text`: `$`, `{`, the name, the operator.
        let word_start = dollar + 2 + name_len + sym_len;
        return Ok((Token::Reference { name, op, word: Some((&rest[sym_len..], word_start)) }, spanned));
    }
    match name_len(after) {
        0 => Ok((Token::Lone, 1)),
        n => Ok((Token::Reference { name: &after[..n], op: Op::Plain, word: None }, n + 1)),
    }
}

/// Length of the variable name at the start of `text`.
fn name_len(text: &str) -> usize {
    text.char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit())))
        .map_or(text.len(), |(i, _)| i)
}

/// The index of the `}` that closes a `${`, `text` starting right after the `{`: braces in
/// between balance, as compose counts them.
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 1usize;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn expand_into<'t>(
    text: &'t str,
    base: usize,
    lookup: &Lookup<'_>,
    out: &mut String,
    uses: &mut Vec<Use<'t>>,
) -> Result<(), InterpolateError> {
    let mut rest_start = 0;
    while let Some(found) = text[rest_start..].find('$') {
        let dollar = rest_start + found;
        out.push_str(&text[rest_start..dollar]);
        let (token, spanned) = token(text, dollar, base)?;
        match token {
            Token::Dollar | Token::Lone => out.push('$'),
            Token::Reference { name, op, word } => {
                let value = lookup(name);
                let set = value.is_some();
                let non_empty = value.as_ref().is_some_and(|v| !v.is_empty());
                uses.push(Use { name, op, word: word.map(|(w, _)| w), set, non_empty });
                let use_word = match op {
                    Op::Plain | Op::RequireNonEmpty | Op::RequireSet => false,
                    Op::DefaultIfEmpty => !non_empty,
                    Op::DefaultIfUnset => !set,
                    Op::AltIfNonEmpty => non_empty,
                    Op::AltIfSet => set,
                };
                let alternative = matches!(op, Op::AltIfNonEmpty | Op::AltIfSet);
                match (use_word, word) {
                    (true, Some((word, start))) => expand_into(word, base + start, lookup, out, uses)?,
                    // An alternative whose condition fails is empty, not the value.
                    _ if alternative => {}
                    _ => out.push_str(value.as_deref().map_or("", String::as_str)),
                }
            }
        }
        rest_start = dollar + spanned;
    }
    out.push_str(&text[rest_start..]);
    Ok(())
}

fn collect_names<'t>(text: &'t str, base: usize, names: &mut Vec<&'t str>) -> Result<(), InterpolateError> {
    let mut rest_start = 0;
    while let Some(found) = text[rest_start..].find('$') {
        let dollar = rest_start + found;
        let (token, spanned) = token(text, dollar, base)?;
        if let Token::Reference { name, word, .. } = token {
            names.push(name);
            if let Some((word, start)) = word {
                collect_names(word, base + start, names)?;
            }
        }
        rest_start = dollar + spanned;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<Zeroizing<String>> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| Zeroizing::new((*v).to_owned()))
    }

    fn expand(text: &str, pairs: &[(&str, &str)]) -> String {
        interpolate(text, &with(pairs)).unwrap().0.to_string()
    }

    #[test]
    fn compose_forms() {
        let vars = [("SET", "v"), ("EMPTY", "")];
        let cases = [
            ("plain $SET and ${SET}", "plain v and v"),
            ("$SET_x ${SET}_x", " v_x"),
            ("$$SET $$ $$$SET", "$SET $ $v"),
            ("${UNSET}|${EMPTY}", "|"),
            ("${SET:-d}|${EMPTY:-d}|${UNSET:-d}", "v|d|d"),
            ("${SET-d}|${EMPTY-d}|${UNSET-d}", "v||d"),
            ("${SET:+a}|${EMPTY:+a}|${UNSET:+a}", "a||"),
            ("${SET+a}|${EMPTY+a}|${UNSET+a}", "a|a|"),
            ("${SET:?no}|${EMPTY?no}", "v|"),
            ("${UNSET:-${ALSO:-8000}}", "8000"),
            ("${UNSET:-${SET}}", "v"),
            (r#"${UNSET:-{"keys":[]}}"#, r#"{"keys":[]}"#),
            ("a $ b $1 $-", "a $ b $1 $-"),
            ("no references", "no references"),
        ];
        for (text, expected) in cases {
            assert_eq!(expand(text, &vars), expected, "{text}");
        }
    }

    #[test]
    fn malformed_references_are_errors_with_their_offset() {
        let lookup = with(&[]);
        assert_eq!(interpolate("ab${X", &lookup).unwrap_err(), InterpolateError::Unterminated { offset: 2 });
        assert_eq!(interpolate("${}", &lookup).unwrap_err(), InterpolateError::BadReference { offset: 0 });
        assert_eq!(interpolate("x${A*b}", &lookup).unwrap_err(), InterpolateError::BadReference { offset: 1 });
        assert_eq!(interpolate("${A:-${B", &lookup).unwrap_err(), InterpolateError::Unterminated { offset: 0 });
        assert!(referenced_names("${A:-${}}").is_err());
    }

    #[test]
    fn uses_say_what_was_unset_and_what_fell_back() {
        let lookup = with(&[("SET", "v"), ("EMPTY", "")]);
        let (_, uses) = interpolate("${SET} ${GONE} ${EMPTY:-x} ${KEY:-pub} ${REQ:?why} ${SET:-y}", &lookup).unwrap();
        let summary: Vec<(&str, bool, bool)> = uses.iter().map(|u| (u.name, u.unset(), u.fell_back())).collect();
        assert_eq!(
            summary,
            [
                ("SET", false, false),
                ("GONE", true, false),
                ("EMPTY", false, true),
                ("KEY", false, true),
                ("REQ", true, false),
                ("SET", false, false)
            ]
        );
        assert_eq!(uses[3].word, Some("pub"));
        // A default that is not evaluated is not a use; a nested one that is, is.
        let (_, uses) = interpolate("${SET:-${INNER}} ${GONE:-${OTHER}}", &lookup).unwrap();
        let names: Vec<&str> = uses.iter().map(|u| u.name).collect();
        assert_eq!(names, ["SET", "GONE", "OTHER"]);
    }

    #[test]
    fn referenced_names_walk_every_branch() {
        assert_eq!(referenced_names("${A:-${B:-${C}}} $D $$E ${F:+$G}").unwrap(), ["A", "B", "C", "D", "F", "G"]);
    }
}
