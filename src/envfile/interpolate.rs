//! Compose's variable interpolation, the one implementation the project has: `check` expands the
//! `.env`'s own `${VAR}` references with it and reads compose files' references through it.
//!
//! The grammar is compose's (compose-go `template`, as shipped in Compose v2):
//! - `$$` is a literal `$`; a `$` that starts no reference (`$1`, `$-`, a final `$`) is kept;
//! - `$NAME` and `${NAME}` are the variable's value (empty when unset), `NAME` being
//!   `[A-Za-z_][A-Za-z0-9_]*`;
//! - `${NAME:-word}` is `word` when NAME is unset or empty, `${NAME-word}` only when unset;
//! - `${NAME:?message}` fails when NAME is unset or empty, `${NAME?message}` only when unset;
//! - `${NAME:+word}` is `word` when NAME is set and not empty, `${NAME+word}` when set;
//! - `word` is itself interpolated, so defaults nest (`${A:-${B:-8000}}`).
//!
//! Which `}` closes a `${NAME<op>` is compose's rule, not a balanced-brace one: the reference
//! reaches at most the last `}` of its line (of its word, when nested); within that, the first `}`
//! at which compose's brace count returns to zero closes it, where every `{` counts (and the
//! character right after it is skipped) and every other `}` uncounts; when the count never
//! returns, that last `}` closes it. So `${JWKS:-{"keys":[]}}` defaults to `{"keys":[]}`, and
//! `${SITE_URL:-{}` to `{`.
//!
//! Compose (v2.40) interpolates every word, even one it does not use, so a malformed reference
//! anywhere in a value is an error here too; [`Use`]s are reported only for the branches that
//! are evaluated. Evaluation also reports every reference it resolved ([`Use`]), which is what the
//! compose audit needs: which variables a file reads, which were unset, and which fell back to a
//! default.
//!
//! Every input is bounded: the text is indexed once and walked without recursion (an explicit
//! stack of the words being read), so time and memory are linear in its length however deeply
//! defaults nest, and the expansion stops with [`InterpolateError::TooLong`] at the caller's
//! limit, so a value that refers to a large one many times cannot take the memory compose would.

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

/// A template compose cannot read, or one whose expansion is beyond the caller's limit. Carries
/// no value, only where the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolateError {
    /// `${NAME` and an operator without a `}` after it on the same line.
    Unterminated { offset: usize },
    /// `${…}` whose name is empty or not `[A-Za-z_][A-Za-z0-9_]*`, or followed by an unknown
    /// operator.
    BadReference { offset: usize },
    /// The expansion would be longer than `limit` bytes.
    TooLong { limit: usize },
}

impl fmt::Display for InterpolateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterpolateError::Unterminated { offset } => {
                write!(f, "`${{` at byte {offset} has no closing `}}` on its line")
            }
            InterpolateError::BadReference { offset } => {
                write!(f, "the reference at byte {offset} is not ${{NAME}}, ${{NAME:-default}} or another compose form")
            }
            InterpolateError::TooLong { limit } => write!(
                f,
                "its `${{…}}` references expand to more than {limit} bytes (a value repeated through references, \
                 as in a billion-laughs file)"
            ),
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

/// Where a variable's value comes from: the value, already expanded, borrowed from the caller.
pub type Lookup<'v> = dyn Fn(&str) -> Option<&'v str> + 'v;

/// `text` with every reference replaced, and the references resolved on the way, in order.
/// `${NAME:?message}` of an unset NAME is reported as a [`Use`] and expands to nothing, so the
/// caller decides whether that is an error. Fails when the result would exceed `max_len` bytes.
pub fn interpolate<'t>(
    text: &'t str,
    lookup: &Lookup<'_>,
    max_len: usize,
) -> Result<(Zeroizing<String>, Vec<Use<'t>>), InterpolateError> {
    let template = Template::index(text)?;
    let mut out = Output::Text(Zeroizing::new(String::new()), max_len);
    let uses = template.evaluate(lookup, &mut out)?;
    match out {
        Output::Text(text, _) => Ok((text, uses)),
        Output::Length(..) => unreachable!("the output is the text it was made as"),
    }
}

/// The references [`interpolate`] would resolve, without building the text: only its length is
/// counted (and bounded by `max_len`), so reading what a template uses costs no copy of the
/// values it refers to.
pub fn uses_of<'t>(text: &'t str, lookup: &Lookup<'_>, max_len: usize) -> Result<Vec<Use<'t>>, InterpolateError> {
    let template = Template::index(text)?;
    template.evaluate(lookup, &mut Output::Length(0, max_len))
}

/// Every variable name `text` refers to, in every branch (defaults that would not be evaluated
/// included): what a compose file could read.
pub fn referenced_names(text: &str) -> Result<Vec<&str>, InterpolateError> {
    let template = Template::index(text)?;
    let mut names = Vec::new();
    template.walk_all(|reference| names.push(reference.name))?;
    Ok(names)
}

/// Where the expansion goes: the text, or only its length; each with its limit.
enum Output {
    Text(Zeroizing<String>, usize),
    Length(usize, usize),
}

impl Output {
    fn push(&mut self, piece: &str) -> Result<(), InterpolateError> {
        let (len, limit) = match self {
            Output::Text(text, limit) => (text.len(), *limit),
            Output::Length(len, limit) => (*len, *limit),
        };
        if len.saturating_add(piece.len()) > limit {
            return Err(InterpolateError::TooLong { limit });
        }
        match self {
            Output::Text(text, _) => text.push_str(piece),
            Output::Length(len, _) => *len += piece.len(),
        }
        Ok(())
    }
}

/// A reference read at a `$`.
enum Token<'t> {
    /// `$$`, or a `$` that starts nothing: a literal `$`.
    Dollar { next: usize },
    /// `$NAME`, `${NAME}` or `${NAME<op>word}`.
    Reference(Reference<'t>),
}

/// One reference and where it ends.
struct Reference<'t> {
    name: &'t str,
    op: Op,
    /// The word's span in the whole text.
    word: Option<(usize, usize)>,
    /// The first byte after the reference.
    next: usize,
}

/// Marks "no such position" in the index arrays.
const NONE: u32 = u32::MAX;

/// The text and what compose's reading of it needs at each byte, computed in one pass each:
/// the `}` that compose's brace count pairs with each counted `{`, the last `}` before each
/// byte, and the next line break from each byte.
struct Template<'t> {
    text: &'t str,
    brace_match: Vec<u32>,
    last_close_before: Vec<u32>,
    next_newline: Vec<u32>,
}

impl<'t> Template<'t> {
    fn index(text: &'t str) -> Result<Self, InterpolateError> {
        let mut template =
            Template { text, brace_match: Vec::new(), last_close_before: Vec::new(), next_newline: Vec::new() };
        if !text.contains("${") {
            return Ok(template);
        }
        let len = u32::try_from(text.len()).map_err(|_| InterpolateError::TooLong { limit: u32::MAX as usize })?;
        let bytes = text.as_bytes();
        // compose-go's getFirstBraceClosingIndex, for every `{` at once: counting from any `${`
        // gives the same pairs, because the character skipped after a `{` is never a `$`.
        let mut brace_match = vec![NONE; bytes.len()];
        let mut open = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'}' => {
                    if let Some(at) = open.pop() {
                        brace_match[at] = i as u32;
                    }
                }
                b'{' => {
                    open.push(i);
                    i += 1;
                }
                _ => {}
            }
            i += 1;
        }
        let mut last_close_before = Vec::with_capacity(bytes.len() + 1);
        let mut last = NONE;
        for (i, &b) in bytes.iter().enumerate() {
            last_close_before.push(last);
            if b == b'}' {
                last = i as u32;
            }
        }
        last_close_before.push(last);
        let mut next_newline = vec![len; bytes.len() + 1];
        let mut next = len;
        for (i, &b) in bytes.iter().enumerate().rev() {
            if b == b'\n' {
                next = i as u32;
            }
            next_newline[i] = next;
        }
        template.brace_match = brace_match;
        template.last_close_before = last_close_before;
        template.next_newline = next_newline;
        Ok(template)
    }

    /// The reference at the `$` at `dollar`, inside a word (or the whole text) ending at `end`.
    fn token(&self, dollar: usize, end: usize) -> Result<Token<'t>, InterpolateError> {
        let text = self.text;
        let after = &text[dollar + 1..end];
        if after.starts_with('$') {
            return Ok(Token::Dollar { next: dollar + 2 });
        }
        let Some(braced) = after.strip_prefix('{') else {
            return Ok(match name_len(after) {
                0 => Token::Dollar { next: dollar + 1 },
                n => Token::Reference(Reference { name: &after[..n], op: Op::Plain, word: None, next: dollar + 1 + n }),
            });
        };
        let name_start = dollar + 2;
        let name = &braced[..name_len(braced)];
        let rest = &braced[name.len()..];
        if name.is_empty() {
            return Err(InterpolateError::BadReference { offset: dollar });
        }
        if rest.is_empty() {
            return Err(InterpolateError::Unterminated { offset: dollar });
        }
        if rest.starts_with('}') {
            return Ok(Token::Reference(Reference {
                name,
                op: Op::Plain,
                word: None,
                next: name_start + name.len() + 1,
            }));
        }
        let (op, op_len) = Op::parse(rest).ok_or(InterpolateError::BadReference { offset: dollar })?;
        let word_start = name_start + name.len() + op_len;
        let close =
            self.closing_brace(dollar, word_start, end).ok_or(InterpolateError::Unterminated { offset: dollar })?;
        Ok(Token::Reference(Reference { name, op, word: Some((word_start, close)), next: close + 1 }))
    }

    /// The `}` that closes the `${` at `dollar` whose word starts at `word_start`, by compose's
    /// rule (module doc), within a word (or the whole text) ending at `end`.
    fn closing_brace(&self, dollar: usize, word_start: usize, end: usize) -> Option<usize> {
        let bound = end.min(self.next_newline[dollar] as usize);
        let paired = self.brace_match[dollar + 1];
        if paired != NONE && (paired as usize) < bound {
            return Some(paired as usize);
        }
        let last = self.last_close_before[bound];
        (last != NONE && last as usize >= word_start).then_some(last as usize)
    }

    /// Calls `visit` for every reference in every branch, failing at the first malformed one.
    fn walk_all(&self, mut visit: impl FnMut(&Reference<'t>)) -> Result<(), InterpolateError> {
        // The ends of the words being read, innermost last; each byte is read once.
        let mut frames = vec![(0usize, self.text.len())];
        while let Some((pos, end)) = frames.pop() {
            let Some(found) = self.text[pos..end].find('$') else { continue };
            let dollar = pos + found;
            match self.token(dollar, end)? {
                Token::Dollar { next } => frames.push((next, end)),
                Token::Reference(reference) => {
                    visit(&reference);
                    frames.push((reference.next, end));
                    if let Some(word) = reference.word {
                        frames.push(word);
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks every branch (compose reads them all), then expands the text into `out`,
    /// returning the references resolved in evaluation order.
    fn evaluate(&self, lookup: &Lookup<'_>, out: &mut Output) -> Result<Vec<Use<'t>>, InterpolateError> {
        self.walk_all(|_| {})?;
        let text = self.text;
        let mut uses = Vec::new();
        let mut frames = vec![(0usize, text.len())];
        while let Some((pos, end)) = frames.pop() {
            let Some(found) = text[pos..end].find('$') else {
                out.push(&text[pos..end])?;
                continue;
            };
            let dollar = pos + found;
            out.push(&text[pos..dollar])?;
            let reference = match self.token(dollar, end)? {
                Token::Dollar { next } => {
                    out.push("$")?;
                    frames.push((next, end));
                    continue;
                }
                Token::Reference(reference) => reference,
            };
            frames.push((reference.next, end));
            let value = lookup(reference.name);
            let set = value.is_some();
            let non_empty = value.is_some_and(|v| !v.is_empty());
            let op = reference.op;
            uses.push(Use { name: reference.name, op, word: reference.word.map(|(s, e)| &text[s..e]), set, non_empty });
            let use_word = match op {
                Op::Plain | Op::RequireNonEmpty | Op::RequireSet => false,
                Op::DefaultIfEmpty => !non_empty,
                Op::DefaultIfUnset => !set,
                Op::AltIfNonEmpty => non_empty,
                Op::AltIfSet => set,
            };
            match reference.word {
                // The word is expanded where the reference stood, before the text after it.
                Some(word) if use_word => frames.push(word),
                // An alternative whose condition fails is empty, not the value.
                _ if matches!(op, Op::AltIfNonEmpty | Op::AltIfSet) => {}
                _ => out.push(value.unwrap_or(""))?,
            }
        }
        Ok(uses)
    }
}

/// Length of the variable name at the start of `text`.
fn name_len(text: &str) -> usize {
    text.char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit())))
        .map_or(text.len(), |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_LIMIT: usize = usize::MAX;

    fn with<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    fn expand(text: &str, pairs: &[(&str, &str)]) -> String {
        interpolate(text, &with(pairs), NO_LIMIT).unwrap().0.to_string()
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

    /// What Compose v2.40.3 (`docker compose config`) printed for each template, none of the
    /// variables set: the `}` that closes a reference is compose's, not a balanced brace.
    #[test]
    fn braces_close_where_compose_closes_them() {
        let cases = [
            ("${SITE_URL:-{}", "{"),
            ("${U:-a}b}", "ab}"),
            ("${U:-${V:-x}y}z", "xyz"),
            ("${U:-{}}", "{}"),
            ("${U:-{x}", "{x"),
            ("${U:-${V}}}", "}"),
            ("${U:-a} and ${V:-b}", "a and b"),
            ("${U:-a}\n${V:-b}}", "a\nb}"),
        ];
        for (text, expected) in cases {
            assert_eq!(expand(text, &[]), expected, "{text:?}");
        }
    }

    #[test]
    fn malformed_references_are_errors_with_their_offset() {
        let lookup = with(&[("SET", "1")]);
        let error = |text: &str| interpolate(text, &lookup, NO_LIMIT).unwrap_err();
        assert_eq!(error("ab${X"), InterpolateError::Unterminated { offset: 2 });
        assert_eq!(error("${}"), InterpolateError::BadReference { offset: 0 });
        assert_eq!(error("x${A*b}"), InterpolateError::BadReference { offset: 1 });
        assert_eq!(error("${A:-${B"), InterpolateError::Unterminated { offset: 0 });
        // The closing brace must be on the reference's line.
        assert_eq!(error("${A:-x\n}"), InterpolateError::Unterminated { offset: 0 });
        // Compose reads every word, even one it does not use.
        assert_eq!(error("${SET:-${B}"), InterpolateError::Unterminated { offset: 7 });
        assert_eq!(error("${SET:-${}}"), InterpolateError::BadReference { offset: 7 });
        assert!(referenced_names("${A:-${}}").is_err());
        assert!(uses_of("${SET:-${}}", &lookup, NO_LIMIT).is_err());
    }

    #[test]
    fn uses_say_what_was_unset_and_what_fell_back() {
        let lookup = with(&[("SET", "v"), ("EMPTY", "")]);
        let (_, uses) =
            interpolate("${SET} ${GONE} ${EMPTY:-x} ${KEY:-pub} ${REQ:?why} ${SET:-y}", &lookup, NO_LIMIT).unwrap();
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
        let (_, uses) = interpolate("${SET:-${INNER}} ${GONE:-${OTHER}}", &lookup, NO_LIMIT).unwrap();
        let names: Vec<&str> = uses.iter().map(|u| u.name).collect();
        assert_eq!(names, ["SET", "GONE", "OTHER"]);
        assert_eq!(uses_of("${SET:-${INNER}} ${GONE:-${OTHER}}", &lookup, NO_LIMIT).unwrap(), uses);
    }

    #[test]
    fn referenced_names_walk_every_branch() {
        assert_eq!(referenced_names("${A:-${B:-${C}}} $D $$E ${F:+$G}").unwrap(), ["A", "B", "C", "D", "F", "G"]);
    }

    /// 50,000 nested defaults (300 KB) overflowed the stack of the recursive reader.
    #[test]
    fn deeply_nested_defaults_need_no_recursion() {
        let depth = 50_000;
        let text = format!("{}deep{}", "${A:-".repeat(depth), "}".repeat(depth));
        assert_eq!(expand(&text, &[]), "deep");
        assert_eq!(expand(&text, &[("A", "set")]), "set");
        assert_eq!(referenced_names(&text).unwrap().len(), depth);
        let (_, uses) = interpolate(&text, &with(&[]), NO_LIMIT).unwrap();
        assert_eq!(uses.len(), depth);
        // Unclosed at the innermost level: an error, found without recursing either.
        let broken = format!("{}${{B{}", "${A:-".repeat(depth), "}".repeat(depth - 1));
        assert!(matches!(interpolate(&broken, &with(&[]), NO_LIMIT), Err(InterpolateError::Unterminated { .. })));
    }

    #[test]
    fn an_expansion_stops_at_its_limit() {
        let big = "x".repeat(1000);
        let text = "$BIG".repeat(1000);
        let vars = [("BIG", big.as_str())];
        let lookup = with(&vars);
        assert_eq!(interpolate(&text, &lookup, 100_000).unwrap_err(), InterpolateError::TooLong { limit: 100_000 });
        assert_eq!(uses_of(&text, &lookup, 100_000).unwrap_err(), InterpolateError::TooLong { limit: 100_000 });
        assert_eq!(interpolate(&text, &lookup, 1_000_000).unwrap().0.len(), 1_000_000);
        assert_eq!(uses_of(&text, &lookup, 1_000_000).unwrap().len(), 1000);
        // Literal text counts too.
        assert!(interpolate("abcdef", &lookup, 5).is_err());
    }
}
