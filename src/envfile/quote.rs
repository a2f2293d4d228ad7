//! How a value is written into a `.env`: the quote style that holds it (the line's own style when
//! the value fits in it) and its escapes, so that compose, and `parse`, read back exactly the value
//! that was set.
//!
//! New values never contain a bare `$` (they are single-quoted, or escaped as `\$` in double
//! quotes), so compose's interpolation cannot change them.
//!
//! Compact JSON (`JWT_KEYS`, `JWT_JWKS`) is written bare, as upstream writes it: compose and the
//! common dotenv readers take an unquoted value up to the end of the line, quotes included, and a
//! literal reader (`kubectl create secret --from-env-file`, `grep | cut -d= -f2-`) would keep any
//! quotes we added as part of the value.

use zeroize::Zeroizing;

/// How a value is written on its line.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Quote {
    Bare,
    Single,
    Double,
}

/// Whether `value` can be written in `quote` style and read back unchanged (by us and compose).
fn fits(quote: Quote, value: &str) -> bool {
    match quote {
        // No spaces, `#`, quotes, `$` (compose would interpolate) or backslashes; or compact JSON.
        Quote::Bare => {
            (!value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_./+=:@%,-".contains(&b)))
                || is_bare_json(value)
        }
        // compose-go reads `\'` as a quote, so a final backslash would swallow the closing quote.
        Quote::Single => !value.contains(['\'', '\n', '\r']) && !value.ends_with('\\'),
        Quote::Double => true,
    }
}

/// Whether `value` is a JSON object or array that every reader takes literally when unquoted: it
/// starts with `{` or `[` (never a quote, which would open a quoted value), and has no whitespace
/// (an unquoted value ends at ` #` and is trimmed), `#`, `$` (interpolation), `\\` or `'`.
fn is_bare_json(value: &str) -> bool {
    value.starts_with(['{', '['])
        && !value.bytes().any(|b| b.is_ascii_whitespace() || b"#$\\'`".contains(&b) || b.is_ascii_control())
        && serde_json::from_str::<serde::de::IgnoredAny>(value).is_ok()
}

/// The line's own style if the value fits in it, else single quotes, else double quotes. A new
/// line starts bare, so compact JSON lands bare; a line the operator quoted keeps its quotes
/// (what follows them, a tab and a comment for instance, may need them).
pub(super) fn choose_quote(current: Quote, value: &str) -> Quote {
    if fits(current, value) {
        current
    } else if fits(Quote::Single, value) {
        Quote::Single
    } else {
        Quote::Double
    }
}

/// Appends `value` in `quote` style. Adds at most `2 * value.len() + 2` bytes.
pub(super) fn encode_into(out: &mut String, value: &str, quote: Quote) {
    match quote {
        Quote::Bare => out.push_str(value),
        Quote::Single => {
            out.push('\'');
            out.push_str(value);
            out.push('\'');
        }
        Quote::Double => {
            out.push('"');
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '$' => out.push_str("\\$"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
    }
}

/// `value` as `set` writes it on a new line: bare when made only of `[A-Za-z0-9_./+=:@%,-]` (and
/// not empty) or compact JSON, else single-quoted, else (with `'`, a line break or a final `\`) double-quoted with
/// escapes. The built-in template writes its defaults with it; the tests pin the rules down.
pub fn quote_value(value: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(2 * value.len() + 2));
    encode_into(&mut out, value, choose_quote(Quote::Bare, value));
    out
}

#[cfg(test)]
mod tests {
    // The path the module exports it under, `envfile::quote_value`.
    use super::super::quote_value;
    use super::super::test_util::{parse, set};

    #[test]
    fn set_falls_back_when_the_style_cannot_hold_the_value() {
        let json = r#"[{"kty":"EC","crv":"P-256","d":"x y"}]"#;
        assert_eq!(set("A=old # c\n", "A", json), format!("A='{json}' # c\n"));
        assert_eq!(set("A=old\n", "A", "it's"), "A=\"it's\"\n");
        assert_eq!(set("A='old'\n", "A", "it's $x"), "A=\"it's \\$x\"\n");
        assert_eq!(set("A='old'\n", "A", "a\nb"), "A=\"a\\nb\"\n");
        assert_eq!(set("A='old'\n", "A", "ends\\"), "A=\"ends\\\\\"\n");
        assert_eq!(set("A=\"old\"\n", "A", "plain"), "A=\"plain\"\n");
        assert_eq!(set("A=old # c\n", "A", ""), "A='' # c\n");
        // Compact JSON replaces a bare value bare, and keeps a quoted line's quotes.
        assert_eq!(set("A=\n", "A", r#"{"keys":[]}"#), "A={\"keys\":[]}\n");
        assert_eq!(set("A=''\t# c\n", "A", r#"{"keys":[]}"#), "A='{\"keys\":[]}'\t# c\n");
        // A multi-line value becomes one line.
        assert_eq!(set("A='x\ny' # c\nB=1\n", "A", "z"), "A='z' # c\nB=1\n");
    }

    #[test]
    fn new_values_are_bare_single_or_double_quoted() {
        let cases = [
            ("abc-DEF_1.2/3+4=5:6@7%8,9", "abc-DEF_1.2/3+4=5:6@7%8,9"),
            ("", "''"),
            ("with space", "'with space'"),
            ("p@ss#word", "'p@ss#word'"),
            ("$HOME", "'$HOME'"),
            ("back\\slash", "'back\\slash'"),
            (r#"{"a":"b"}"#, r#"{"a":"b"}"#),
            (r#"[{"k":"EC","n":[1,2]}]"#, r#"[{"k":"EC","n":[1,2]}]"#),
            // Not JSON, or JSON a bare line would not carry literally: quoted as before.
            (r#"{"a":"b""#, r#"'{"a":"b"'"#),
            (r#"{"a": "b"}"#, r#"'{"a": "b"}'"#),
            (r#"{"a":"$b"}"#, r#"'{"a":"$b"}'"#),
            (r#"{"a#":"b"}"#, r#"'{"a#":"b"}'"#),
            ("it's", "\"it's\""),
            ("it's \"$x\" \\", "\"it's \\\"\\$x\\\" \\\\\""),
            ("two\nlines\r", "\"two\\nlines\\r\""),
            ("ends\\", "\"ends\\\\\""),
        ];
        for (value, written) in cases {
            let out = set("", "K", value);
            assert_eq!(out, format!("K={written}\n"), "{value:?}");
            assert_eq!(quote_value(value).as_str(), written);
            assert_eq!(parse(&out).get("K"), Some(value));
        }
    }
}
