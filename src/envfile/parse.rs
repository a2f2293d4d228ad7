//! Reading `.env` text by docker compose's rules (listed in the `envfile` module doc): splitting it
//! into entries that keep their exact text, finding each key and value, and decoding quoted values.
//!
//! Parsing records offsets into each entry's text rather than copies, so rendering gives back the
//! exact bytes and `set` can replace a value without touching what surrounds it.
//!
//! Where compose's rules and dotenvy's differ (dotenvy 0.15 is a dev-dependency: a test checks
//! that both read the forms they agree on identically): dotenvy ends an unquoted value at whitespace (`KEY=a b` is an error there, `a b` for
//! compose) and treats a tab before `#` as a comment; it honours quotes in the middle of a value
//! (`a'b c'` is `ab c`) and backslash escapes in unquoted values; it rejects unknown escapes such as
//! `\t` in double quotes; its single quotes are fully literal; its keys cannot contain `-`; and its
//! parse errors quote the offending line, which may hold a secret.

use zeroize::Zeroizing;

use super::entry::{Entry, Pair};
use super::quote::Quote;

/// Malformed-line reasons. They describe the problem without quoting the line, which may hold a
/// secret.
const NOT_AN_ENTRY: &str = "it is not `KEY=value`, a `#` comment or a blank line";
const MISSING_KEY: &str = "there is no key before the `=`";
pub(super) const BAD_KEY: &str =
    "a key must start with a letter or `_` and contain only letters, digits, `_`, `.` and `-`";
const UNTERMINATED: &str = "the quoted value that starts there is never closed";
const TEXT_AFTER_QUOTE: &str = "only a `# comment` may follow a quoted value";

/// Whether `key` is a key this module can write and read back: `[A-Za-z_][A-Za-z0-9_.-]*`.
pub fn is_valid_key(key: &str) -> bool {
    key.starts_with(is_key_start) && key.bytes().all(is_key_byte)
}

fn is_key_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// compose-go's `isSpace`: the whitespace skipped around keys and before a value. Unlike
/// `char::is_whitespace` it excludes line breaks.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{0b}' | '\u{0c}' | '\r' | '\u{85}' | '\u{a0}')
}

fn find_newline(bytes: &[u8], from: usize) -> usize {
    bytes[from..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |k| from + k)
}

fn count_newlines(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

/// Splits `body` into entries. On error returns the 1-based line and a reason.
pub(super) fn parse_entries(body: &str) -> Result<Vec<Entry>, LineError> {
    let bytes = body.as_bytes();
    let mut entries = Vec::new();
    let mut pos = 0;
    let mut line = 1;
    while pos < body.len() {
        let line_end = find_newline(bytes, pos);
        let content = body[pos..line_end].trim_start_matches(char::is_whitespace);
        let (end, pair) = if content.is_empty() || content.starts_with('#') {
            ((line_end + 1).min(body.len()), None)
        } else {
            let (end, pair) = parse_pair(body, pos, line_end, line)?;
            (end, Some(pair))
        };
        let raw = &body[pos..end];
        line += count_newlines(raw);
        entries.push(Entry { raw: Zeroizing::new(raw.to_owned()), pair });
        pos = end;
    }
    Ok(entries)
}

/// A parse failure: the 1-based line and a reason that quotes nothing of it.
type LineError = (usize, &'static str);

/// Parses the `KEY=value` entry starting at `start` (its first line ends at `line_end`).
/// Returns the end of the entry and its parts, as offsets relative to `start`.
fn parse_pair(body: &str, start: usize, line_end: usize, line: usize) -> Result<(usize, Pair), LineError> {
    let line = Line::new(body, start, line_end, line);
    let (key_start, key_end, equals) = line.key()?;
    let value_start = line.skip(equals + 1, is_space);
    let quote = match body.as_bytes().get(value_start) {
        Some(b'\'') if value_start < line.content_end => Quote::Single,
        Some(b'"') if value_start < line.content_end => Quote::Double,
        _ => Quote::Bare,
    };
    let value = match quote {
        Quote::Bare => line.bare_value(value_start),
        Quote::Single | Quote::Double => line.quoted_value(value_start, quote)?,
    };
    let pair = Pair {
        key_start: key_start - start,
        key_end: key_end - start,
        value_start: value_start - start,
        value_end: value.value_end - start,
        quote,
        decoded: value.decoded,
    };
    Ok((value.entry_end, pair))
}

/// The first line of an entry: where it starts and where its content ends.
struct Line<'b> {
    body: &'b str,
    start: usize,
    /// Where the line break is (or the end of the text).
    line_end: usize,
    /// The end of the content: a CR before the LF belongs to the line ending, never to the key,
    /// spacing or value; keeping it out of the value's span is what lets `set` keep CRLF
    /// endings.
    content_end: usize,
    /// The 1-based line number, for errors.
    number: usize,
}

/// Where a value ends, where its entry ends (after its line break), and its decoded text when
/// escapes make it differ from the text between its quotes.
struct ValueSpan {
    value_end: usize,
    entry_end: usize,
    decoded: Option<Zeroizing<String>>,
}

impl<'b> Line<'b> {
    fn new(body: &'b str, start: usize, line_end: usize, number: usize) -> Self {
        let crlf = line_end > start && body.as_bytes()[line_end - 1] == b'\r';
        Line { body, start, line_end, content_end: if crlf { line_end - 1 } else { line_end }, number }
    }

    /// The offset of the first byte at or after `from` that `pred` rejects (within the content).
    fn skip(&self, from: usize, pred: fn(char) -> bool) -> usize {
        let text = &self.body[from..self.content_end];
        from + (text.len() - text.trim_start_matches(pred).len())
    }

    /// The key's span and the offset of the `=` after it, or why the line is not `KEY=value`.
    fn key(&self) -> Result<(usize, usize, usize), LineError> {
        let body = self.body;
        let mut key_start = self.skip(self.start, char::is_whitespace);
        // As in compose, `export` followed by whitespace is always a prefix (so `export =x` has
        // no key); otherwise it starts the key (`export=1`, `exported=1`).
        if let Some(after) = body[key_start..self.content_end].strip_prefix("export") {
            let key_part = after.trim_start_matches(is_space);
            if key_part.len() < after.len() {
                key_start = self.content_end - key_part.len();
            }
        }
        let rest = &body[key_start..self.content_end];
        let key_end = key_start + rest.bytes().take_while(|&b| is_key_byte(b)).count();
        let equals = self.skip(key_end, is_space);
        if rest.starts_with(is_key_start) && equals < self.content_end && body.as_bytes()[equals] == b'=' {
            return Ok((key_start, key_end, equals));
        }
        let reason = if rest.starts_with('=') {
            MISSING_KEY
        } else if rest.contains('=') {
            BAD_KEY
        } else {
            NOT_AN_ENTRY
        };
        Err((self.number, reason))
    }

    /// A bare value, as compose reads it: the rest of the line, cut at the first ` #`, trailing
    /// whitespace trimmed.
    fn bare_value(&self, value_start: usize) -> ValueSpan {
        let segment = &self.body[value_start..self.content_end];
        let value = segment.find(" #").map_or(segment, |k| &segment[..k]);
        let value = value.trim_end_matches(char::is_whitespace);
        ValueSpan {
            value_end: value_start + value.len(),
            entry_end: (self.line_end + 1).min(self.body.len()),
            decoded: None,
        }
    }

    /// A quoted value starting at `value_start`, as compose reads it: a backslash escapes
    /// whatever follows it (so `\"` does not close the value), the quote may be closed on a later
    /// line, and only a `# comment` may follow it.
    fn quoted_value(&self, value_start: usize, quote: Quote) -> Result<ValueSpan, LineError> {
        let (body, bytes) = (self.body, self.body.as_bytes());
        let close = closing_quote(bytes, value_start).ok_or((self.number, UNTERMINATED))?;
        let close_line_end = find_newline(bytes, close + 1);
        let tail = body[close + 1..close_line_end].trim_start_matches(char::is_whitespace);
        if !(tail.is_empty() || tail.starts_with('#')) {
            let close_line = self.number + count_newlines(&body[self.start..close]);
            return Err((close_line, TEXT_AFTER_QUOTE));
        }
        Ok(ValueSpan {
            value_end: close + 1,
            entry_end: (close_line_end + 1).min(body.len()),
            decoded: decode(&body[value_start + 1..close], quote == Quote::Double),
        })
    }
}

/// The offset of the quote that closes the one at `open`, skipping backslash-escaped bytes.
fn closing_quote(bytes: &[u8], open: usize) -> Option<usize> {
    let quote = bytes[open];
    let mut escaped = false;
    for (j, &b) in bytes.iter().enumerate().skip(open + 1) {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == quote {
            return Some(j);
        }
    }
    None
}

/// Decodes the text between quotes as compose-go does; `None` when the text is the value as is.
///
/// Single quotes: `\'` is a quote, any other backslash is literal. Double quotes: `\"`, `\\`, `\$`,
/// `\n`, `\r`, `\t`, `\a`, `\b`, `\f`, `\v` and `\0ooo` (three octal digits, at most 0377) are
/// escapes; compose-go turns a `\0` not followed by such digits into a bare `\`, and keeps any
/// other backslash literally. The result is never longer than the input, so the buffer is
/// allocated once and no unzeroed copy of the secret is left behind by a reallocation.
fn decode(inner: &str, double: bool) -> Option<Zeroizing<String>> {
    decode_with(inner, double, "$")
}

/// The text compose interpolates for a double-quoted value whose quotes hold `inner`: its escapes
/// decoded, except that `\$` becomes `$$` (compose-go's `expandEscapes`), which interpolation
/// reads as a literal `$`. `None` when that is `inner` itself. Never longer than `inner` either.
pub(super) fn compose_template(inner: &str) -> Option<Zeroizing<String>> {
    decode_with(inner, true, "$$")
}

/// [`decode`], writing `escaped_dollar` for a double-quoted `\$`.
fn decode_with(inner: &str, double: bool, escaped_dollar: &str) -> Option<Zeroizing<String>> {
    if !inner.contains('\\') {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(inner.len()));
    let mut rest = inner;
    while let Some(k) = rest.find('\\') {
        out.push_str(&rest[..k]);
        let mut chars = rest[k + 1..].chars();
        // The scanner never lets a value end on a lone backslash (it would escape the closing
        // quote), but keep it literally rather than assume.
        let Some(c) = chars.next() else {
            out.push('\\');
            rest = "";
            break;
        };
        rest = chars.as_str();
        if double && c == '$' {
            out.push_str(escaped_dollar);
            continue;
        }
        let simple = match (double, c) {
            (false, '\'') | (true, '"' | '\\') => Some(c),
            (true, 'n') => Some('\n'),
            (true, 'r') => Some('\r'),
            (true, 't') => Some('\t'),
            (true, 'a') => Some('\u{07}'),
            (true, 'b') => Some('\u{08}'),
            (true, 'f') => Some('\u{0c}'),
            (true, 'v') => Some('\u{0b}'),
            _ => None,
        };
        match simple {
            Some(ch) => out.push(ch),
            None if double && c == '0' => {
                let n = rest.bytes().take(3).take_while(u8::is_ascii_digit).count();
                let (digits, after) = rest.split_at(n);
                rest = after;
                match octal_char(digits) {
                    Some(ch) => out.push(ch),
                    None => {
                        out.push('\\');
                        out.push_str(digits);
                    }
                }
            }
            None => {
                out.push('\\');
                out.push(c);
            }
        }
    }
    out.push_str(rest);
    (out.as_str() != inner).then_some(out)
}

/// `ooo` → the character with that code (Go's `\ooo`), or `None` when not three octal digits ≤ 0377.
fn octal_char(digits: &str) -> Option<char> {
    if digits.len() != 3 {
        return None;
    }
    let mut value: u32 = 0;
    for b in digits.bytes() {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        value = value * 8 + u32::from(b - b'0');
    }
    u8::try_from(value).ok().map(char::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use super::super::test_util::{parse, rendered};
    use super::super::{EnvFile, EnvFileError, BOM};

    fn malformed(text: &str) -> EnvFileError {
        match EnvFile::parse(text, Some(Path::new("/srv/stack/.env"))) {
            Ok(_) => panic!("expected a malformed-line error"),
            Err(error) => error,
        }
    }

    /// A realistic upstream-Supabase-like `.env.example`, with the variants we must keep intact.
    const EXAMPLE: &str = r#"############
# Secrets
# YOU MUST CHANGE THESE BEFORE GOING INTO PRODUCTION
############

POSTGRES_PASSWORD=your-super-secret-and-long-postgres-password
JWT_SECRET=your-super-secret-jwt-token-with-at-least-32-characters-long
ANON_KEY=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiIsImlzcyI6InN1cGFiYXNlIiwiaWF0IjoxNjQxNzY5MjAwLCJleHAiOjE3OTk1MzU2MDB9.dc_X5iR_VP_qT0zsiyj_I_OZ2T9FtRU2BBNWN8Bu4GE
DASHBOARD_USERNAME=supabase
DASHBOARD_PASSWORD=this_password_is_insecure_and_should_be_updated
SECRET_KEY_BASE=UpNVntn3cDxHJpq99YMc1T1AQgQpc8kfYTuRgBiYa15BLrx8etQoXz3gZv1/u2oq
VAULT_ENC_KEY=your-32-character-encryption-key

############
# Database - You can change these to any PostgreSQL database that has logical replication enabled.
############

POSTGRES_HOST=db
POSTGRES_DB=postgres
POSTGRES_PORT=5432
# default user is postgres

############
# Auth - Configuration for the GoTrue authentication server.
############

## General
SITE_URL=http://localhost:3000
ADDITIONAL_REDIRECT_URLS=
JWT_EXPIRY=3600
SMTP_SENDER_NAME="Supabase \"Admin\""   # shown in e-mails
STUDIO_DEFAULT_ORGANIZATION=Default Organization # the first organization
export LOGFLARE_PUBLIC_ACCESS_TOKEN = your-super-secret-and-long-logflare-key-public
JWT_KEYS='[{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]'
PGRST_DB_SCHEMAS=public,storage,graphql_public
"#;

    fn example_variants() -> Vec<(&'static str, String)> {
        let crlf = EXAMPLE.replace('\n', "\r\n");
        vec![
            ("lf", EXAMPLE.to_owned()),
            ("crlf", crlf.clone()),
            ("lf, no final newline", EXAMPLE.trim_end_matches('\n').to_owned()),
            ("crlf, no final newline", crlf.trim_end_matches("\r\n").to_owned()),
            ("bom", format!("{BOM}{EXAMPLE}")),
            ("bom, crlf", format!("{BOM}{crlf}")),
            ("empty", String::new()),
            ("only a bom", BOM.to_owned()),
        ]
    }

    #[test]
    fn unmodified_files_render_byte_for_byte() {
        for (name, text) in example_variants() {
            assert_eq!(rendered(&parse(&text)), text, "{name}");
        }
    }

    #[test]
    fn realistic_values_read_like_compose() {
        for (name, text) in example_variants().into_iter().take(6) {
            let file = parse(&text);
            assert_eq!(file.get("POSTGRES_PORT"), Some("5432"), "{name}");
            assert_eq!(file.get("ADDITIONAL_REDIRECT_URLS"), Some(""), "{name}");
            assert_eq!(file.get("SMTP_SENDER_NAME"), Some("Supabase \"Admin\""), "{name}");
            assert_eq!(file.get("STUDIO_DEFAULT_ORGANIZATION"), Some("Default Organization"), "{name}");
            assert_eq!(
                file.get("LOGFLARE_PUBLIC_ACCESS_TOKEN"),
                Some("your-super-secret-and-long-logflare-key-public"),
                "{name}"
            );
            assert_eq!(file.get("JWT_KEYS"), Some(r#"[{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]"#), "{name}");
            assert_eq!(file.get("PGRST_DB_SCHEMAS"), Some("public,storage,graphql_public"), "{name}");
            assert_eq!(file.pairs().count(), 18, "{name}");
            assert_eq!(file.line_of("POSTGRES_HOST"), Some(18), "{name}");
            assert!(file.duplicate_keys().is_empty());
        }
    }

    #[test]
    fn hash_starts_a_comment_only_after_a_space() {
        let file = parse("A=p@ss#word\nB=value # comment\nC=value   #comment\nD=#x\nE= #x\nF=a\t#b\nG=a#b #c\n");
        assert_eq!(file.get("A"), Some("p@ss#word"));
        assert_eq!(file.get("B"), Some("value"));
        assert_eq!(file.get("C"), Some("value"));
        assert_eq!(file.get("D"), Some("#x"));
        // compose trims the space after `=` before looking for " #".
        assert_eq!(file.get("E"), Some("#x"));
        // compose only cuts at " #", not at a tab.
        assert_eq!(file.get("F"), Some("a\t#b"));
        assert_eq!(file.get("G"), Some("a#b"));
    }

    #[test]
    fn quoted_values_follow_compose() {
        let file = parse(concat!(
            "S1='literal $HOME \\n # not a comment'\n",
            "S2='it\\'s'\n",
            "S3='C:\\path\\\\x'\n",
            "D1=\"a\\nb\\tc\\rd \\\"q\\\" \\\\ \\$HOME $HOME\"\n",
            "D2=\"keep \\x \\q \\u00e9\"\n",
            "D3=\"\\0101\\0 \\a\\b\\f\\v\"\n",
            "D4=\"it's # not a comment\" # but this is\n",
            "E1=''\n",
            "E2=\"\"\n",
            "E3=\n",
        ));
        assert_eq!(file.get("S1"), Some("literal $HOME \\n # not a comment"));
        assert_eq!(file.get("S2"), Some("it's"));
        assert_eq!(file.get("S3"), Some("C:\\path\\\\x"));
        assert_eq!(file.get("D1"), Some("a\nb\tc\rd \"q\" \\ $HOME $HOME"));
        assert_eq!(file.get("D2"), Some("keep \\x \\q \\u00e9"));
        assert_eq!(file.get("D3"), Some("A\\ \u{07}\u{08}\u{0c}\u{0b}"));
        assert_eq!(file.get("D4"), Some("it's # not a comment"));
        assert_eq!(file.get("E1"), Some(""));
        assert_eq!(file.get("E2"), Some(""));
        assert_eq!(file.get("E3"), Some(""));
    }

    #[test]
    fn multi_line_quoted_values_round_trip() {
        for eol in ["\n", "\r\n"] {
            let text = [
                "# certs",
                "CERT=\"-----BEGIN-----",
                "abc\\\"def",
                "-----END-----\"  # pem",
                "KEY='line 1",
                "line 2'",
                "AFTER=1",
            ]
            .join(eol);
            let file = parse(&text);
            assert_eq!(rendered(&file), text);
            assert_eq!(file.get("CERT"), Some(format!("-----BEGIN-----{eol}abc\"def{eol}-----END-----").as_str()));
            assert_eq!(file.get("KEY"), Some(format!("line 1{eol}line 2").as_str()));
            assert_eq!(file.get("AFTER"), Some("1"));
            assert_eq!(file.line_of("KEY"), Some(5));
            assert_eq!(file.line_of("AFTER"), Some(7));
        }
    }

    #[test]
    fn export_and_whitespace_around_keys() {
        let file = parse(concat!(
            "  export   A  =  spaced value  \n",
            "export\tB=tab\n",
            "export=plain\n",
            "exported=x\n",
            "\tC\t=\t'q'\t\n",
            "a.b-c_D=dots\n",
        ));
        assert_eq!(file.get("A"), Some("spaced value"));
        assert_eq!(file.get("B"), Some("tab"));
        assert_eq!(file.get("export"), Some("plain"));
        assert_eq!(file.get("exported"), Some("x"));
        assert_eq!(file.get("C"), Some("q"));
        assert_eq!(file.get("a.b-c_D"), Some("dots"));
    }

    #[test]
    fn malformed_lines_name_the_line_but_never_its_text() {
        let cases = [
            ("OK=1\njust some s3cr3t text\n", 2, NOT_AN_ENTRY),
            ("OK=1\n\n=s3cr3t\n", 3, MISSING_KEY),
            ("1KEY=s3cr3t\n", 1, BAD_KEY),
            ("KE Y=s3cr3t\n", 1, BAD_KEY),
            ("K!EY=s3cr3t\n", 1, BAD_KEY),
            ("# c\nS3CR3T\n", 2, NOT_AN_ENTRY),
            ("export S3CR3T\n", 1, NOT_AN_ENTRY),
            ("export =s3cr3t\n", 1, MISSING_KEY),
            ("export 1=s3cr3t\n", 1, BAD_KEY),
            ("KEY: s3cr3t\n", 1, NOT_AN_ENTRY),
            ("A=1\nKEY=\"s3cr3t\n", 2, UNTERMINATED),
            ("A=1\nKEY='s3cr3t\nmore\n", 2, UNTERMINATED),
            ("KEY=\"s3cr3t\\\"", 1, UNTERMINATED),
            ("KEY=\"s3cr3t\" s3cr3t\n", 1, TEXT_AFTER_QUOTE),
            ("KEY='a\ns3cr3t' s3cr3t\r\n", 2, TEXT_AFTER_QUOTE),
        ];
        for (text, line, reason) in cases {
            let error = malformed(text);
            assert!(
                matches!(error, EnvFileError::Malformed { line: l, reason: r, .. } if l == line && r == reason),
                "{text:?}: {error:?}"
            );
            let message = error.to_string();
            assert!(message.contains(&format!("line {line} ")), "{message}");
            assert!(message.contains("/srv/stack/.env"), "{message}");
            let lower = message.to_lowercase();
            assert!(!lower.contains("s3cr3t"), "{message}");
            assert!(!format!("{error:?}").to_lowercase().contains("s3cr3t"));
        }
        let anonymous = EnvFile::parse("nope\n", None).expect_err("malformed");
        assert_eq!(
            anonymous.to_string(),
            format!("line 1 of the .env text is malformed: {NOT_AN_ENTRY}; fix or remove that line")
        );
    }

    /// On the forms docker compose and dotenvy agree on, both must read the same values: an
    /// independent parser as a check on this one.
    #[test]
    fn the_forms_compose_and_dotenvy_agree_on_read_the_same_here() {
        let text = "# comment\n\
                    PLAIN=abc123\n\
                    export EXPORTED=value\n\
                    SINGLE='with spaces and # hash'\n\
                    DOUBLE=\"line\\nbreak and \\\"quote\\\"\"\n\
                    EMPTY=\n\
                    URL=postgresql://user:p%40ss@db:5432/postgres?sslmode=disable\n\
                    HASH_INSIDE=p@ss#word\n\
                    COMMENTED=value # trailing comment\n\
                    JSON='[{\"kty\":\"EC\",\"crv\":\"P-256\"}]'\n\
                    \n\
                    SPACED = spaced\n";
        let ours: Vec<(String, String)> = crate::envfile::EnvFile::parse(text, None)
            .expect("parses")
            .pairs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let theirs: Vec<(String, String)> =
            dotenvy::from_read_iter(text.as_bytes()).collect::<Result<_, _>>().expect("dotenvy parses it");
        assert_eq!(ours, theirs);
        assert_eq!(ours.len(), 10);
    }
}
