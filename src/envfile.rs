//! The project's one `.env` reader and rewriter (SPEC §3), shared by `generate-keys` and
//! `rotate-passwords`.
//!
//! An operator's `.env` holds far more than our secrets and is edited by hand, so rewriting it must
//! be lossless: a file is parsed into entries that keep their exact text, only the values we are
//! asked to change are re-rendered, and every other byte (comments, blank lines, order, `export `
//! prefixes, spacing, quoting, trailing comments, CRLF line endings, a missing final newline, a
//! UTF-8 BOM) is written back as it was.
//!
//! Values are read with the rules of docker compose (compose-go's `dotenv` parser), because compose
//! is what hands them to the containers: a value means what compose says it means.
//! - `export ` before the key is optional; a key is `[A-Za-z_][A-Za-z0-9_.-]*`; whitespace around
//!   the key, the `=` and the value is ignored.
//! - Unquoted: the rest of the line, cut at the first ` #` (a `#` after a *space*; compose does not
//!   treat a tab as a comment start), trailing whitespace trimmed. So `p@ss#word` is one value.
//! - Single-quoted: literal, except that `\'` is a quote (compose-go does this, so a value ending
//!   in a backslash cannot be single-quoted).
//! - Double-quoted: `\n \r \t \\ \" \$` (and compose's rarer `\a \b \f \v \0ooo`) are escapes;
//!   any other backslash is kept literally.
//! - Quoted values may span several lines. After the closing quote only whitespace and a
//!   `# comment` may follow.
//!
//! There is no variable interpolation: `get` returns `${VAR}` as written, where compose would
//! interpolate it in unquoted and double-quoted values. That is safe for what we write, because new
//! values never contain a bare `$`: they are single-quoted or escaped as `\$` in double quotes.
//!
//! Where compose's rules and dotenvy's differ (dotenvy 0.15, a dependency of the project, is not
//! used here): dotenvy ends an unquoted value at whitespace (`KEY=a b` is an error there, `a b` for
//! compose) and treats a tab before `#` as a comment; it honours quotes in the middle of a value
//! (`a'b c'` is `ab c`) and backslash escapes in unquoted values; it rejects unknown escapes such as
//! `\t` in double quotes; its single quotes are fully literal; its keys cannot contain `-`; and its
//! parse errors quote the offending line, which may hold a secret.
//! We are stricter than compose in what we accept: keys starting with a digit, `KEY: value`, a bare
//! `KEY` (compose takes it from the environment) and text after a closing quote are errors, so that
//! a typo is reported rather than silently reinterpreted.
//!
//! Writing is atomic and serialised, see [`LockedEnv`] and [`create_new`]. Secrets never reach an
//! error message, a `Debug` print or a panic message, and every buffer that holds file text is
//! zeroed when dropped.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// A UTF-8 byte order mark, which some Windows editors put at the start of a file.
const BOM: &str = "\u{feff}";

/// Mode of every file we create: `.env` files hold secrets.
const PRIVATE_MODE: u32 = 0o600;

/// Same limit as Linux's `MAXSYMLINKS`, so a symlink loop fails instead of spinning.
const MAX_SYMLINKS: usize = 40;

/// Malformed-line reasons. They describe the problem without quoting the line, which may hold a
/// secret.
const NOT_AN_ENTRY: &str = "it is not `KEY=value`, a `#` comment or a blank line";
const MISSING_KEY: &str = "there is no key before the `=`";
const BAD_KEY: &str = "a key must start with a letter or `_` and contain only letters, digits, `_`, `.` and `-`";
const UNTERMINATED: &str = "the quoted value that starts there is never closed";
const TEXT_AFTER_QUOTE: &str = "only a `# comment` may follow a quoted value";

/// Why reading, parsing or writing a `.env` failed. Each message is one sentence naming the file
/// and saying what to do; none contains a value or a line of the file.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    /// A line is neither blank, a comment nor `KEY=value`.
    #[error("line {line} of {} is malformed: {reason}; fix or remove that line", Shown(.path.as_deref()))]
    Malformed { path: Option<PathBuf>, line: usize, reason: &'static str },
    /// The file is not UTF-8 (compose would not read it either).
    #[error("{} is not valid UTF-8 (the first invalid byte is on line {line}); save it as UTF-8", .path.display())]
    NotUtf8 { path: PathBuf, line: usize },
    /// The path names a directory.
    #[error("{} is a directory, not a .env file; pass the path of the file itself", .path.display())]
    IsDirectory { path: PathBuf },
    /// The path names a device, pipe or socket: replacing it with a regular file would be wrong.
    #[error("{} is not a regular file (it is a device, pipe or socket); pass the path of a .env file", .path.display())]
    NotAFile { path: PathBuf },
    /// The file could not be read (missing, permission, I/O error).
    #[error("cannot read {}: {error}{}", .path.display(), hint(.error, Op::Read))]
    Read { path: PathBuf, error: io::Error },
    /// The file could not be written; the original (if any) is untouched.
    #[error("cannot write {}: {error}{}; nothing was changed", .path.display(), hint(.error, Op::Write))]
    Write { path: PathBuf, error: io::Error },
    /// The replacement could not be given the original's owner; the original is untouched.
    #[error(
        "cannot give the new {} the owner of the old one (uid {uid}, gid {gid}): {error}; \
         run as root or as that user; nothing was changed",
        .path.display()
    )]
    Owner { path: PathBuf, uid: u32, gid: u32, error: io::Error },
    /// The file was replaced but the directory entry may not be durable yet.
    #[error(
        "{} was replaced, but its directory could not be flushed to disk ({error}); \
         the change may not survive a crash: check the disk",
        .path.display()
    )]
    SyncDir { path: PathBuf, error: io::Error },
    /// The lock file could not be created or locked.
    #[error("cannot lock {}: {error}{}", .path.display(), hint(.error, Op::Lock))]
    Lock { path: PathBuf, error: io::Error },
    /// `create_new` without `force` found an existing file.
    #[error("{} already exists; choose another file or pass --force to replace it", .path.display())]
    AlreadyExists { path: PathBuf },
    /// `publish_pending` found no pending file.
    #[error("there is no pending file {} to publish; nothing was changed", .path.display())]
    NoPending { path: PathBuf },
    /// `set` was given a key that could not be read back.
    #[error("`{key}` is not a valid .env key: {BAD_KEY}")]
    InvalidKey { key: String },
}

/// Displays a path for a message, or says where the text came from when there is no path.
struct Shown<'a>(Option<&'a Path>);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => write!(f, "{}", path.display()),
            None => f.write_str("the .env text"),
        }
    }
}

#[derive(Clone, Copy)]
enum Op {
    Read,
    Write,
    Lock,
}

/// The "what to do" half of an I/O error message.
fn hint(error: &io::Error, op: Op) -> &'static str {
    use io::ErrorKind as K;
    match (error.kind(), op) {
        (K::NotFound, Op::Read) => "; check the path",
        (K::NotFound, _) => "; check that its directory exists",
        (K::PermissionDenied, Op::Read) => {
            "; run as a user allowed to read it (for example its owner) or fix its permissions"
        }
        (K::PermissionDenied, Op::Write) => {
            "; writing needs permission on the file's directory: run as the file's owner or root"
        }
        (K::PermissionDenied, Op::Lock) => {
            "; the lock file is created beside the .env: run as a user who may write to that directory"
        }
        (K::NotADirectory, _) => "; part of the path is a file, not a directory: check the path",
        (K::IsADirectory, _) => "; the path is a directory: pass the path of the file",
        (K::StorageFull | K::QuotaExceeded, _) => "; free some disk space and try again",
        (K::ReadOnlyFilesystem, _) => "; the filesystem is read-only: use a writable location",
        _ => "",
    }
}

/// How a value is written on its line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    Bare,
    Single,
    Double,
}

/// The parsed parts of a `KEY=value` entry, as byte offsets into the entry's text. Offsets rather
/// than copies keep one allocation per entry; the text before `value_start` and after `value_end`
/// is what `set` must preserve.
#[derive(Clone)]
struct Pair {
    key_start: usize,
    key_end: usize,
    /// Start of the value token (its opening quote, if quoted).
    value_start: usize,
    /// End of the value token (after its closing quote, if quoted).
    value_end: usize,
    quote: Quote,
    /// The value when escapes make it differ from the text between the quotes; `None` when the
    /// text itself is the value (by far the common case, so no second copy of the secret).
    decoded: Option<Zeroizing<String>>,
}

impl Pair {
    fn key<'a>(&self, raw: &'a str) -> &'a str {
        &raw[self.key_start..self.key_end]
    }

    fn value<'a>(&'a self, raw: &'a str) -> &'a str {
        match &self.decoded {
            Some(decoded) => decoded,
            None => undecoded(self.quote, &raw[self.value_start..self.value_end]),
        }
    }
}

/// The text of a value token without its quotes.
fn undecoded(quote: Quote, token: &str) -> &str {
    match quote {
        Quote::Bare => token,
        Quote::Single | Quote::Double => &token[1..token.len() - 1],
    }
}

/// One entry of the file: a blank line, a comment line, or a `KEY=value` that may span several
/// lines (quoted values). `raw` is its exact text including its line ending, if it has one.
/// No `Debug`: the text may hold secrets.
#[derive(Clone)]
struct Entry {
    raw: Zeroizing<String>,
    pair: Option<Pair>,
}

impl Entry {
    fn key(&self) -> Option<&str> {
        self.pair.as_ref().map(|pair| pair.key(&self.raw))
    }
}

/// A `.env` file held losslessly: rendering an unmodified file gives back its exact bytes.
///
/// `Debug` shows the keys only; every value is redacted.
#[derive(Clone, Default)]
pub struct EnvFile {
    /// Used in messages only.
    path: Option<PathBuf>,
    bom: bool,
    /// Line ending for lines we add: CRLF when most of the file's line breaks are CRLF.
    crlf: bool,
    entries: Vec<Entry>,
    /// Key → indices of its entries in file order. Entries are only ever appended, never removed,
    /// so indices stay valid; this keeps `get` and `set` O(1) instead of a scan per key.
    index: HashMap<String, Vec<usize>>,
}

impl fmt::Debug for EnvFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Keys<'a>(&'a EnvFile);
        impl fmt::Debug for Keys<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.pairs().map(|(key, _)| key)).finish()
            }
        }
        f.debug_struct("EnvFile")
            .field("path", &self.path)
            .field("keys", &Keys(self))
            .field("values", &"<redacted>")
            .finish()
    }
}

impl EnvFile {
    /// Parses `.env` text (a file's contents or a template). `path` is only used to name the
    /// source in error messages.
    pub fn parse(text: &str, path: Option<&Path>) -> Result<Self, EnvFileError> {
        let (bom, body) = match text.strip_prefix(BOM) {
            Some(body) => (true, body),
            None => (false, text),
        };
        let entries = parse_entries(body).map_err(|(line, reason)| EnvFileError::Malformed {
            path: path.map(Path::to_path_buf),
            line,
            reason,
        })?;
        let mut index: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            if let Some(key) = entry.key() {
                index.entry(key.to_owned()).or_default().push(i);
            }
        }
        let line_breaks = body.bytes().filter(|&b| b == b'\n').count();
        let crlf_breaks = body.as_bytes().windows(2).filter(|w| w == b"\r\n").count();
        Ok(Self { path: path.map(Path::to_path_buf), bom, crlf: crlf_breaks * 2 > line_breaks, entries, index })
    }

    /// Reads and parses the file at `path` (following symlinks), without locking it: for `check`
    /// and templates. To modify a file, use [`LockedEnv`].
    pub fn read(path: &Path) -> Result<Self, EnvFileError> {
        read_optional(path, path)?
            .ok_or_else(|| EnvFileError::Read { path: path.to_path_buf(), error: io::ErrorKind::NotFound.into() })
    }

    /// The value of `key`; with duplicates the last occurrence wins, as in compose.
    pub fn get(&self, key: &str) -> Option<&str> {
        let &i = self.index.get(key)?.last()?;
        let entry = &self.entries[i];
        entry.pair.as_ref().map(|pair| pair.value(&entry.raw))
    }

    /// Whether `key` is set (possibly to an empty value).
    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// Every `(key, value)` in file order, duplicates included.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries.iter().filter_map(|entry| {
            let pair = entry.pair.as_ref()?;
            Some((pair.key(&entry.raw), pair.value(&entry.raw)))
        })
    }

    /// Keys that occur more than once, in order of first occurrence, so callers can warn that
    /// `set` updates all of them.
    pub fn duplicate_keys(&self) -> Vec<&str> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| {
                let key = entry.key()?;
                let indices = self.index.get(key)?;
                (indices.len() > 1 && indices[0] == i).then_some(key)
            })
            .collect()
    }

    /// 1-based line on which the effective (last) occurrence of `key` starts, for messages.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        let &target = self.index.get(key)?.last()?;
        let newlines: usize =
            self.entries[..target].iter().map(|entry| entry.raw.bytes().filter(|&b| b == b'\n').count()).sum();
        Some(newlines + 1)
    }

    /// Sets `key` to `value`, changing nothing else.
    ///
    /// Every occurrence of a duplicated key is updated. An existing line keeps its `export `,
    /// spacing and trailing comment, and its quoting when the new value fits in it (bare values
    /// must be non-empty and made of `[A-Za-z0-9_./+=:@%,-]`; single quotes cannot hold `'`, a line
    /// break or a final `\`); otherwise the value is single-quoted, or double-quoted with escapes.
    /// A key the file lacks is appended at the end, after any other key added this way.
    /// Setting a key to the value it already has leaves its line byte-for-byte as it was.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), EnvFileError> {
        if !is_valid_key(key) {
            return Err(EnvFileError::InvalidKey { key: key.to_owned() });
        }
        match self.index.get(key) {
            Some(indices) => {
                for &i in indices {
                    replace_value(&mut self.entries[i], value);
                }
            }
            None => self.append(key, value),
        }
        Ok(())
    }

    /// The file's exact bytes (with our changes), in a buffer that is zeroed when dropped.
    pub fn render(&self) -> Zeroizing<String> {
        let len = self.entries.iter().map(|e| e.raw.len()).sum::<usize>() + BOM.len();
        let mut out = Zeroizing::new(String::with_capacity(len));
        if self.bom {
            out.push_str(BOM);
        }
        for entry in &self.entries {
            out.push_str(&entry.raw);
        }
        out
    }

    fn line_ending(&self) -> &'static str {
        if self.crlf {
            "\r\n"
        } else {
            "\n"
        }
    }

    fn append(&mut self, key: &str, value: &str) {
        let eol = self.line_ending();
        if let Some(last) = self.entries.last_mut() {
            if !last.raw.ends_with('\n') {
                last.raw = concat(&[&last.raw, eol]);
            }
        }
        let quote = choose_quote(Quote::Bare, value);
        let mut raw = Zeroizing::new(String::with_capacity(key.len() + 3 + 2 * value.len() + 2));
        raw.push_str(key);
        raw.push('=');
        let value_start = raw.len();
        encode_into(&mut raw, value, quote);
        let value_end = raw.len();
        raw.push_str(eol);
        let pair = Pair {
            key_start: 0,
            key_end: key.len(),
            value_start,
            value_end,
            quote,
            decoded: decoded_copy(quote, &raw[value_start..value_end], value),
        };
        self.index.entry(key.to_owned()).or_default().push(self.entries.len());
        self.entries.push(Entry { raw, pair: Some(pair) });
    }
}

/// `value` as `set` writes it on a new line: bare when made only of `[A-Za-z0-9_./+=:@%,-]` (and
/// not empty), else single-quoted, else (with `'`, a line break or a final `\`) double-quoted with
/// escapes. Pins down the quoting rules in the tests.
#[cfg(test)]
pub fn quote_value(value: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(2 * value.len() + 2));
    encode_into(&mut out, value, choose_quote(Quote::Bare, value));
    out
}

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
fn parse_entries(body: &str) -> Result<Vec<Entry>, (usize, &'static str)> {
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

/// Parses the `KEY=value` entry starting at `start` (its first line ends at `line_end`).
/// Returns the end of the entry and its parts, as offsets relative to `start`.
fn parse_pair(body: &str, start: usize, line_end: usize, line: usize) -> Result<(usize, Pair), (usize, &'static str)> {
    let bytes = body.as_bytes();
    // A CR before the LF belongs to the line ending, never to the key, spacing or value: keeping it
    // out of the value's span is what lets `set` keep CRLF endings.
    let content_end = if line_end > start && bytes[line_end - 1] == b'\r' { line_end - 1 } else { line_end };
    let skip = |from: usize, pred: fn(char) -> bool| {
        let text = &body[from..content_end];
        from + (text.len() - text.trim_start_matches(pred).len())
    };

    let mut i = skip(start, char::is_whitespace);
    let content = &body[i..content_end];
    // As in compose, `export` followed by whitespace is always a prefix (so `export =x` has no
    // key); otherwise it starts the key (`export=1`, `exported=1`).
    if let Some(after) = content.strip_prefix("export") {
        let key_part = after.trim_start_matches(is_space);
        if key_part.len() < after.len() {
            i = content_end - key_part.len();
        }
    }
    let key_start = i;
    let key_len = body[i..content_end].bytes().take_while(|&b| is_key_byte(b)).count();
    i += key_len;
    let key_ok = body[key_start..content_end].starts_with(is_key_start);
    i = skip(i, is_space);
    if !key_ok || bytes.get(i) != Some(&b'=') || i >= content_end {
        let rest = &body[key_start..content_end];
        let reason = if rest.starts_with('=') {
            MISSING_KEY
        } else if rest.contains('=') {
            BAD_KEY
        } else {
            NOT_AN_ENTRY
        };
        return Err((line, reason));
    }
    let key_end = key_start + key_len;
    let value_start = skip(i + 1, is_space);

    let quote = match bytes.get(value_start) {
        Some(b'\'') if value_start < content_end => Quote::Single,
        Some(b'"') if value_start < content_end => Quote::Double,
        _ => Quote::Bare,
    };
    let (value_end, end, decoded) = if quote == Quote::Bare {
        // compose: the value runs to the end of the line, is cut at the first " #", and trailing
        // whitespace is trimmed.
        let segment = &body[value_start..content_end];
        let value = segment.find(" #").map_or(segment, |k| &segment[..k]);
        let value = value.trim_end_matches(char::is_whitespace);
        (value_start + value.len(), (line_end + 1).min(body.len()), None)
    } else {
        let quote_byte = bytes[value_start];
        // compose: a backslash escapes whatever follows it (so `\"` does not close the value);
        // the quote may be closed on a later line.
        let mut j = value_start + 1;
        let mut escaped = false;
        let close = loop {
            let Some(&b) = bytes.get(j) else {
                return Err((line, UNTERMINATED));
            };
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == quote_byte {
                break j;
            }
            j += 1;
        };
        let close_line_end = find_newline(bytes, close + 1);
        let tail = body[close + 1..close_line_end].trim_start_matches(char::is_whitespace);
        if !(tail.is_empty() || tail.starts_with('#')) {
            let close_line = line + count_newlines(&body[start..close]);
            return Err((close_line, TEXT_AFTER_QUOTE));
        }
        let inner = &body[value_start + 1..close];
        let decoded = decode(inner, quote == Quote::Double);
        (close + 1, (close_line_end + 1).min(body.len()), decoded)
    };
    Ok((
        end,
        Pair {
            key_start: key_start - start,
            key_end: key_end - start,
            value_start: value_start - start,
            value_end: value_end - start,
            quote,
            decoded,
        },
    ))
}

/// Decodes the text between quotes as compose-go does; `None` when the text is the value as is.
///
/// Single quotes: `\'` is a quote, any other backslash is literal. Double quotes: `\"`, `\\`, `\$`,
/// `\n`, `\r`, `\t`, `\a`, `\b`, `\f`, `\v` and `\0ooo` (three octal digits, at most 0377) are
/// escapes; compose-go turns a `\0` not followed by such digits into a bare `\`, and keeps any
/// other backslash literally. The result is never longer than the input, so the buffer is
/// allocated once and no unzeroed copy of the secret is left behind by a reallocation.
fn decode(inner: &str, double: bool) -> Option<Zeroizing<String>> {
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
        let simple = match (double, c) {
            (false, '\'') | (true, '"' | '\\' | '$') => Some(c),
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

/// Whether `value` can be written in `quote` style and read back unchanged (by us and compose).
fn fits(quote: Quote, value: &str) -> bool {
    match quote {
        // No spaces, `#`, quotes, `$` (compose would interpolate) or backslashes.
        Quote::Bare => {
            !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_./+=:@%,-".contains(&b))
        }
        // compose-go reads `\'` as a quote, so a final backslash would swallow the closing quote.
        Quote::Single => !value.contains(['\'', '\n', '\r']) && !value.ends_with('\\'),
        Quote::Double => true,
    }
}

/// The line's own style if the value fits in it, else single quotes, else double quotes.
fn choose_quote(current: Quote, value: &str) -> Quote {
    if fits(current, value) {
        current
    } else if fits(Quote::Single, value) {
        Quote::Single
    } else {
        Quote::Double
    }
}

/// Appends `value` in `quote` style. Adds at most `2 * value.len() + 2` bytes.
fn encode_into(out: &mut String, value: &str, quote: Quote) {
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

/// A copy of `value` when the text of its token (without quotes) is not already the value.
fn decoded_copy(quote: Quote, token: &str, value: &str) -> Option<Zeroizing<String>> {
    (undecoded(quote, token) != value).then(|| Zeroizing::new(value.to_owned()))
}

/// Rewrites the value of a `KEY=value` entry, keeping everything before and after the value.
fn replace_value(entry: &mut Entry, value: &str) {
    let Some(pair) = entry.pair.as_mut() else {
        return;
    };
    if pair.value(&entry.raw) == value {
        return;
    }
    let old = &entry.raw;
    let quote = choose_quote(pair.quote, value);
    // Sized up front: growing a buffer would leave an unzeroed copy of the old one behind.
    let capacity = old.len() - (pair.value_end - pair.value_start) + 2 * value.len() + 2;
    let mut raw = Zeroizing::new(String::with_capacity(capacity));
    raw.push_str(&old[..pair.value_start]);
    encode_into(&mut raw, value, quote);
    let value_end = raw.len();
    raw.push_str(&old[pair.value_end..]);
    pair.decoded = decoded_copy(quote, &raw[pair.value_start..value_end], value);
    pair.quote = quote;
    pair.value_end = value_end;
    entry.raw = raw;
}

/// Concatenates into one exactly-sized zeroizing buffer.
fn concat(parts: &[&str]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(parts.iter().map(|p| p.len()).sum()));
    for part in parts {
        out.push_str(part);
    }
    out
}

/// Reads and parses `actual`, naming `shown` in messages; `None` when it does not exist.
fn read_optional(shown: &Path, actual: &Path) -> Result<Option<EnvFile>, EnvFileError> {
    let read_error = |error: io::Error| {
        if error.kind() == io::ErrorKind::IsADirectory {
            EnvFileError::IsDirectory { path: shown.to_path_buf() }
        } else {
            EnvFileError::Read { path: shown.to_path_buf(), error }
        }
    };
    let mut file = match File::open(actual) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(read_error(error)),
    };
    let meta = file.metadata().map_err(read_error)?;
    if meta.is_dir() {
        return Err(read_error(io::ErrorKind::IsADirectory.into()));
    }
    // One extra byte so that reading up to EOF does not reallocate (which would leave an unzeroed
    // copy of the secrets in freed memory).
    let capacity = usize::try_from(meta.len()).unwrap_or(0).saturating_add(1);
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    file.read_to_end(&mut bytes).map_err(read_error)?;
    let text = std::str::from_utf8(&bytes).map_err(|error| EnvFileError::NotUtf8 {
        path: shown.to_path_buf(),
        line: 1 + bytes[..error.valid_up_to()].iter().filter(|&&b| b == b'\n').count(),
    })?;
    EnvFile::parse(text, Some(shown)).map(Some)
}

/// Follows symlinks in the last component of `path` (not in its directories), so a dangling link
/// resolves to the file it would create. Relative links are relative to the link's directory.
fn resolve_symlinks(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_SYMLINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            Ok(_) => return Ok(current),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// The directory holding `path` and its file name; `IsDirectory` when `path` has no file name
/// (`/`, `..`).
fn split(path: &Path, shown: &Path) -> Result<(PathBuf, OsString), EnvFileError> {
    let name = path.file_name().ok_or_else(|| EnvFileError::IsDirectory { path: shown.to_path_buf() })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_os_string()))
}

/// Only regular files are replaced: renaming over a directory fails anyway, and renaming over a
/// device such as `/dev/null` (a symlinked `.env` may point there) would replace the device.
fn check_file_type(meta: &fs::Metadata, shown: &Path) -> Result<(), EnvFileError> {
    let path = shown.to_path_buf();
    if meta.is_dir() {
        Err(EnvFileError::IsDirectory { path })
    } else if !meta.is_file() {
        Err(EnvFileError::NotAFile { path })
    } else {
        Ok(())
    }
}

/// `<dir>/<name><suffix>`, e.g. `.env.lock`.
fn sibling(dir: &Path, name: &OsStr, suffix: &str) -> PathBuf {
    let mut file_name = name.to_os_string();
    file_name.push(suffix);
    dir.join(file_name)
}

/// How a replacement file gets its mode and owner.
#[derive(Clone, Copy)]
enum Mode {
    /// The replaced file's mode and owner; 0600 and our own for a new file.
    KeepOriginal,
    /// 0600 and our own, whatever was there.
    Private,
}

/// Replaces `target` atomically with `contents`: a temporary file beside it (so the rename stays
/// on one filesystem), written, given its mode and owner, fsync'd, renamed over `target`, then
/// the directory fsync'd so the rename itself is durable. On any failure before the rename the
/// temporary file is removed (tempfile's drop) and `target` is untouched. Messages name `shown`.
fn atomic_write(target: &Path, shown: &Path, contents: &[u8], mode: Mode) -> Result<(), EnvFileError> {
    let write_error = |error: io::Error| EnvFileError::Write { path: shown.to_path_buf(), error };
    let (dir, name) = split(target, shown)?;
    let original = match fs::metadata(target) {
        Ok(meta) => {
            check_file_type(&meta, shown)?;
            Some(meta)
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(write_error(error)),
    };
    let (file_mode, owner) = match (mode, original) {
        (Mode::KeepOriginal, Some(meta)) => (meta.mode() & 0o7777, Some((meta.uid(), meta.gid()))),
        _ => (PRIVATE_MODE, None),
    };
    // tempfile creates the file 0600 with O_EXCL and deletes it when dropped unpersisted.
    let mut temp =
        tempfile::Builder::new().prefix(&temp_prefix(&name)).suffix(".tmp").tempfile_in(&dir).map_err(write_error)?;
    fail_point("after-create").map_err(write_error)?;
    temp.write_all(contents).map_err(write_error)?;
    if let Some((uid, gid)) = owner {
        set_owner(temp.as_file(), uid, gid).map_err(|error| EnvFileError::Owner {
            path: shown.to_path_buf(),
            uid,
            gid,
            error,
        })?;
    }
    // After chown, which may clear set-id bits.
    temp.as_file().set_permissions(Permissions::from_mode(file_mode)).map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    fail_point("before-rename").map_err(write_error)?;
    temp.persist(target).map_err(|error| write_error(error.error))?;
    sync_dir(&dir).map_err(|error| EnvFileError::SyncDir { path: shown.to_path_buf(), error })
}

/// `.<name>.` for temporary files, shortened so that the temporary name (prefix, 6 random
/// characters, `.tmp`) stays within the usual 255-byte limit even for a long file name. Only a
/// hint for humans, so a non-UTF-8 name may be shown lossily.
fn temp_prefix(name: &OsStr) -> String {
    let name = name.to_string_lossy();
    let mut end = name.len().min(200);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!(".{}.", &name[..end])
}

/// Gives `file` the owner `uid:gid` unless it already has it (only root may give files away, so
/// an unneeded `fchown` would fail for ordinary users).
fn set_owner(file: &File, uid: u32, gid: u32) -> io::Result<()> {
    let meta = file.metadata()?;
    if meta.uid() == uid && meta.gid() == gid {
        return Ok(());
    }
    std::os::unix::fs::fchown(file, Some(uid), Some(gid))
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Failure injection for tests: lets a test make one step of `atomic_write` fail, to check that
/// nothing is left behind. Compiled to nothing outside tests.
fn fail_point(point: &'static str) -> io::Result<()> {
    #[cfg(test)]
    if tests::FAIL_AT.with(|at| at.get()) == Some(point) {
        return Err(io::Error::other(format!("injected failure at {point}")));
    }
    let _ = point;
    Ok(())
}

/// An exclusive lock on a `.env`, for read-modify-write cycles (`generate-keys --env-file`) and
/// for a whole rotation (SPEC §2), held until dropped.
///
/// The lock is an `flock` on `<env>.lock`, an empty file that is never deleted (deleting a lock
/// file lets a third process lock a new file while the second still holds the old one). Being
/// tied to the open file, the lock is released by the kernel even if the process dies.
///
/// When the `.env` path is a symlink (possibly a chain, possibly dangling), it is resolved once at
/// `acquire`; the lock, the pending file and temporary files sit beside the resolved target, so a
/// rename replaces the target on its own filesystem, the symlink stays a symlink, and two paths
/// leading to the same file share one lock. Only the last component is resolved, not the
/// directories above it (no `canonicalize`), so a dangling link still works: writing creates its
/// target. Messages name the path as the user gave it.
#[derive(Debug)]
pub struct LockedEnv {
    path: PathBuf,
    dir: PathBuf,
    name: OsString,
    target: PathBuf,
    /// Holds the `flock`; closing it (on drop) releases the lock.
    lock_file: File,
}

impl LockedEnv {
    /// Locks the `.env` at `path`, waiting while another process holds the lock.
    pub fn acquire(path: &Path) -> Result<Self, EnvFileError> {
        let (env, lock_path) = Self::open(path)?;
        env.lock_file.lock().map_err(|error| EnvFileError::Lock { path: lock_path, error })?;
        Ok(env)
    }

    /// Locks the `.env` at `path`, or returns `None` at once if another process holds the lock.
    pub fn try_acquire(path: &Path) -> Result<Option<Self>, EnvFileError> {
        let (env, lock_path) = Self::open(path)?;
        match env.lock_file.try_lock() {
            Ok(()) => Ok(Some(env)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(error)) => Err(EnvFileError::Lock { path: lock_path, error }),
        }
    }

    /// Resolves the path and opens (creating if needed, 0600) the lock file, unlocked.
    fn open(path: &Path) -> Result<(Self, PathBuf), EnvFileError> {
        let target = resolve_symlinks(path).map_err(|error| EnvFileError::Read { path: path.to_path_buf(), error })?;
        if let Ok(meta) = fs::metadata(&target) {
            check_file_type(&meta, path)?;
        }
        let (dir, name) = split(&target, path)?;
        let lock_path = sibling(&dir, &name, ".lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(PRIVATE_MODE)
            .open(&lock_path)
            .map_err(|error| EnvFileError::Lock { path: lock_path.clone(), error })?;
        let env = Self { path: path.to_path_buf(), target: dir.join(&name), dir, name, lock_file: lock };
        Ok((env, lock_path))
    }

    /// The `.env` path as the user gave it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and parses the `.env`; `None` when it does not exist.
    pub fn read(&self) -> Result<Option<EnvFile>, EnvFileError> {
        read_optional(&self.path, &self.target)
    }

    /// Atomically replaces the `.env` with `file`, keeping its mode and owner (a new file is 0600).
    pub fn write(&self, file: &EnvFile) -> Result<(), EnvFileError> {
        atomic_write(&self.target, &self.path, file.render().as_bytes(), Mode::KeepOriginal)
    }

    /// `<env>.pending`, beside the resolved `.env`.
    pub fn pending_path(&self) -> PathBuf {
        sibling(&self.dir, &self.name, ".pending")
    }

    /// Writes `file` to the pending path (0600, atomically, fsync'd with its directory), so that
    /// a crash leaves either no pending file or a complete one, never a truncated one.
    pub fn stage(&self, file: &EnvFile) -> Result<(), EnvFileError> {
        let pending = self.pending_path();
        atomic_write(&pending, &pending, file.render().as_bytes(), Mode::Private)
    }

    /// Reads and parses the pending file; `None` when there is none.
    pub fn read_pending(&self) -> Result<Option<EnvFile>, EnvFileError> {
        let pending = self.pending_path();
        read_optional(&pending, &pending)
    }

    /// Moves the pending file over the `.env`: it first gets the `.env`'s mode and owner (0600 if
    /// there is no `.env`), is fsync'd, renamed, and the directory fsync'd.
    pub fn publish_pending(&self) -> Result<(), EnvFileError> {
        let pending = self.pending_path();
        let file = match File::open(&pending) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(EnvFileError::NoPending { path: pending })
            }
            Err(error) => return Err(EnvFileError::Read { path: pending, error }),
        };
        let write_error = |error: io::Error| EnvFileError::Write { path: self.path.clone(), error };
        let mode = match fs::metadata(&self.target) {
            Ok(meta) => {
                check_file_type(&meta, &self.path)?;
                let (uid, gid) = (meta.uid(), meta.gid());
                set_owner(&file, uid, gid).map_err(|error| EnvFileError::Owner {
                    path: self.path.clone(),
                    uid,
                    gid,
                    error,
                })?;
                meta.mode() & 0o7777
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => PRIVATE_MODE,
            Err(error) => return Err(write_error(error)),
        };
        file.set_permissions(Permissions::from_mode(mode)).map_err(write_error)?;
        file.sync_all().map_err(write_error)?;
        fs::rename(&pending, &self.target).map_err(write_error)?;
        sync_dir(&self.dir).map_err(|error| EnvFileError::SyncDir { path: self.path.clone(), error })
    }

    /// Deletes the pending file, if any, durably.
    pub fn discard_pending(&self) -> Result<(), EnvFileError> {
        let pending = self.pending_path();
        match fs::remove_file(&pending) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(EnvFileError::Write { path: pending, error }),
        }
        sync_dir(&self.dir).map_err(|error| EnvFileError::SyncDir { path: pending, error })
    }
}

/// Writes `contents` to a new file at `path` with mode 0600 (`--output FILE`).
///
/// Without `force`, an existing file (or symlink, even dangling) is refused; the file is written
/// under a temporary name and linked into place only if the name is still free, so a reader never
/// sees a partial file and a file created meanwhile is not clobbered. With `force`, an existing
/// file is replaced atomically (through a symlink, its target) and also ends up 0600 and ours: the
/// contents are secrets, whatever the old file held.
pub fn create_new(path: &Path, contents: &[u8], force: bool) -> Result<(), EnvFileError> {
    let write_error = |error: io::Error| EnvFileError::Write { path: path.to_path_buf(), error };
    if force {
        let target = resolve_symlinks(path).map_err(write_error)?;
        return atomic_write(&target, path, contents, Mode::Private);
    }
    let exists = || EnvFileError::AlreadyExists { path: path.to_path_buf() };
    if fs::symlink_metadata(path).is_ok() {
        return Err(exists());
    }
    let (dir, name) = split(path, path)?;
    let mut temp =
        tempfile::Builder::new().prefix(&temp_prefix(&name)).suffix(".tmp").tempfile_in(&dir).map_err(write_error)?;
    temp.write_all(contents).map_err(write_error)?;
    temp.as_file().set_permissions(Permissions::from_mode(PRIVATE_MODE)).map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    temp.persist_noclobber(path).map_err(|error| {
        if error.error.kind() == io::ErrorKind::AlreadyExists {
            exists()
        } else {
            write_error(error.error)
        }
    })?;
    sync_dir(&dir).map_err(|error| EnvFileError::SyncDir { path: path.to_path_buf(), error })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::os::unix::fs::FileTypeExt;

    thread_local! {
        /// The `fail_point` that should fail on this thread (tests run on separate threads).
        pub(super) static FAIL_AT: Cell<Option<&'static str>> = const { Cell::new(None) };
    }

    fn parse(text: &str) -> EnvFile {
        EnvFile::parse(text, None).expect("test input parses")
    }

    fn rendered(file: &EnvFile) -> String {
        file.render().to_string()
    }

    fn set(text: &str, key: &str, value: &str) -> String {
        let mut file = parse(text);
        file.set(key, value).expect("valid key");
        rendered(&file)
    }

    fn malformed(text: &str) -> EnvFileError {
        match EnvFile::parse(text, Some(Path::new("/srv/stack/.env"))) {
            Ok(_) => panic!("expected a malformed-line error"),
            Err(error) => error,
        }
    }

    /// Whether this process can bypass file permissions (root, CAP_DAC_OVERRIDE).
    fn bypasses_permissions(dir: &Path) -> bool {
        let probe = dir.join("probe-dir");
        fs::create_dir(&probe).expect("create probe dir");
        fs::set_permissions(&probe, Permissions::from_mode(0o555)).expect("chmod");
        let bypass = File::create(probe.join("x")).is_ok();
        fs::set_permissions(&probe, Permissions::from_mode(0o755)).expect("chmod");
        bypass
    }

    fn is_root() -> bool {
        fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
    }

    fn dir_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").mode() & 0o7777
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
    fn last_occurrence_wins_and_iteration_keeps_file_order() {
        let file = parse("A=1\nB=2\nA=3\n");
        assert_eq!(file.get("A"), Some("3"));
        assert!(file.contains("B"));
        assert!(!file.contains("C"));
        let pairs: Vec<_> = file.pairs().collect();
        assert_eq!(pairs, [("A", "1"), ("B", "2"), ("A", "3")]);
        assert_eq!(file.line_of("A"), Some(3));
        assert_eq!(file.duplicate_keys(), ["A"]);
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

    #[test]
    fn set_updates_every_duplicate_and_reports_them() {
        let mut file = parse("A=1\nB=2\nexport A='old'  # again\nB=3\nC=4\n");
        assert_eq!(file.duplicate_keys(), ["A", "B"]);
        file.set("A", "new").expect("set");
        assert_eq!(rendered(&file), "A=new\nB=2\nexport A='new'  # again\nB=3\nC=4\n");
        assert!(file.pairs().filter(|(k, _)| *k == "A").all(|(_, v)| v == "new"));
    }

    #[test]
    fn set_keeps_prefix_spacing_comment_and_quoting() {
        let text =
            concat!("export  A = old   # note\n", "B='old' # note\n", "C=\"old\"\n", "D=old\r\n", "E=\n", "F=   \n",);
        let mut file = parse(text);
        for key in ["A", "B", "C", "D", "E", "F"] {
            file.set(key, "n3w").expect("set");
        }
        assert_eq!(
            rendered(&file),
            concat!(
                "export  A = n3w   # note\n",
                "B='n3w' # note\n",
                "C=\"n3w\"\n",
                "D=n3w\r\n",
                "E=n3w\n",
                "F=   n3w\n",
            )
        );
    }

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
            (r#"{"a":"b"}"#, r#"'{"a":"b"}'"#),
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

    #[test]
    fn missing_keys_are_appended_in_one_block() {
        let mut file = parse("# head\nA=1\n");
        file.set("NEW1", "x").expect("set");
        file.set("A", "2").expect("set");
        file.set("NEW2", "y z").expect("set");
        file.set("NEW1", "w").expect("set");
        assert_eq!(rendered(&file), "# head\nA=2\nNEW1=w\nNEW2='y z'\n");

        assert_eq!(set("A=1", "B", "2"), "A=1\nB=2\n");
        assert_eq!(set("A=1\r\nC=3", "B", "2"), "A=1\r\nC=3\r\nB=2\r\n");
        assert_eq!(set("A=1\r\n", "B", "2"), "A=1\r\nB=2\r\n");
        assert_eq!(set("# only a comment", "B", "2"), "# only a comment\nB=2\n");
        assert_eq!(set("", "B", "2"), "B=2\n");
        assert_eq!(set(&format!("{BOM}A=1"), "B", "2"), format!("{BOM}A=1\nB=2\n"));
    }

    #[test]
    fn setting_the_current_value_changes_nothing() {
        let text = "A=\"same\"   \nB='x\\'y'\n";
        assert_eq!(set(text, "A", "same"), text);
        assert_eq!(set(text, "B", "x'y"), text);
    }

    #[test]
    fn invalid_keys_are_rejected() {
        let mut file = EnvFile::default();
        for key in ["", "1A", "A B", "A=B", "Ä", "A#"] {
            let error = file.set(key, "v").expect_err(key);
            assert!(matches!(error, EnvFileError::InvalidKey { .. }), "{key}");
        }
        assert!(is_valid_key("_a.B-9"));
        assert_eq!(rendered(&file), "");
    }

    #[test]
    fn debug_shows_keys_but_no_values() {
        let mut file = parse("A=s3cr3t\n# s3cr3t comment\nB='s3cr3t'\n");
        file.set("C", "s3cr3t").expect("set");
        let debug = format!("{file:?}");
        assert!(debug.contains("\"A\"") && debug.contains("\"B\"") && debug.contains("\"C\""));
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn input_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");

        let bad = dir.path().join("latin1.env");
        fs::write(&bad, b"A=1\nB=2\nC=caf\xe9 s3cr3t\n").expect("write");
        let error = EnvFile::read(&bad).expect_err("not utf-8");
        assert!(matches!(error, EnvFileError::NotUtf8 { line: 3, .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("latin1.env") && message.contains("line 3"), "{message}");
        assert!(!message.contains("s3cr3t"));

        let error = EnvFile::read(dir.path()).expect_err("directory");
        assert!(matches!(error, EnvFileError::IsDirectory { .. }), "{error:?}");
        assert!(error.to_string().contains("is a directory"));

        let missing = dir.path().join("missing.env");
        let error = EnvFile::read(&missing).expect_err("missing");
        assert!(error.to_string().contains("missing.env"), "{error}");
        assert!(error.to_string().contains("check the path"), "{error}");

        // A path through a regular file fails for root too.
        let not_dir = bad.join(".env");
        let error = EnvFile::read(&not_dir).expect_err("not a directory");
        assert!(error.to_string().contains("latin1.env/.env"), "{error}");

        let locked = LockedEnv::acquire(&missing).expect("lock");
        assert!(locked.read().expect("read").is_none());
        assert!(matches!(LockedEnv::acquire(dir.path()), Err(EnvFileError::IsDirectory { .. })));
    }

    #[test]
    fn unreadable_file_is_reported_as_a_permission_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        if bypasses_permissions(dir.path()) {
            eprintln!("skipped: this process bypasses file permissions (root)");
            return;
        }
        let path = dir.path().join(".env");
        fs::write(&path, "A=1\n").expect("write");
        fs::set_permissions(&path, Permissions::from_mode(0o000)).expect("chmod");
        let message = EnvFile::read(&path).expect_err("unreadable").to_string();
        assert!(message.contains(".env") && message.contains("permissions"), "{message}");
    }

    #[test]
    fn write_keeps_mode_and_owner_and_creates_new_files_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        fs::write(&path, "A=1\n").expect("write");
        fs::set_permissions(&path, Permissions::from_mode(0o640)).expect("chmod");
        let root = is_root();
        if root {
            std::os::unix::fs::chown(&path, Some(1234), Some(5678)).expect("chown");
        }
        let env = LockedEnv::acquire(&path).expect("lock");
        let mut file = env.read().expect("read").expect("exists");
        file.set("A", "2").expect("set");
        env.write(&file).expect("write");
        assert_eq!(fs::read_to_string(&path).expect("read"), "A=2\n");
        assert_eq!(mode_of(&path), 0o640);
        if root {
            let meta = fs::metadata(&path).expect("metadata");
            assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
        }
        assert_eq!(mode_of(&dir.path().join(".env.lock")), 0o600);

        let fresh = dir.path().join("fresh.env");
        let env = LockedEnv::acquire(&fresh).expect("lock");
        let mut file = env.read().expect("read").unwrap_or_default();
        file.set("A", "1").expect("set");
        env.write(&file).expect("write");
        assert_eq!(mode_of(&fresh), 0o600);
        assert_eq!(dir_names(dir.path()), [".env", ".env.lock", "fresh.env", "fresh.env.lock"]);
    }

    #[test]
    fn symlinked_env_stays_a_symlink_and_its_target_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir(root.join("sub")).expect("mkdir");
        fs::write(root.join("real.env"), "A=1\n").expect("write");
        // .env -> sub/link -> ../real.env, both relative.
        std::os::unix::fs::symlink("../real.env", root.join("sub/link")).expect("symlink");
        std::os::unix::fs::symlink("sub/link", root.join(".env")).expect("symlink");

        let env = LockedEnv::acquire(&root.join(".env")).expect("lock");
        assert_eq!(env.path(), root.join(".env"));
        let mut file = env.read().expect("read").expect("exists");
        file.set("A", "2").expect("set");
        env.write(&file).expect("write");
        env.stage(&file).expect("stage");
        env.publish_pending().expect("publish");

        assert!(fs::symlink_metadata(root.join(".env")).expect("lstat").file_type().is_symlink());
        assert!(fs::symlink_metadata(root.join("sub/link")).expect("lstat").file_type().is_symlink());
        assert_eq!(fs::read_to_string(root.join("real.env")).expect("read"), "A=2\n");
        assert_eq!(dir_names(root), [".env", "real.env", "real.env.lock", "sub"]);
        assert_eq!(dir_names(&root.join("sub")), ["link"]);

        // A dangling symlink: the write creates its target.
        std::os::unix::fs::symlink("made.env", root.join("dangling")).expect("symlink");
        let env = LockedEnv::acquire(&root.join("dangling")).expect("lock");
        assert!(env.read().expect("read").is_none());
        env.write(&parse("B=1\n")).expect("write");
        assert_eq!(fs::read_to_string(root.join("made.env")).expect("read"), "B=1\n");
        assert!(fs::symlink_metadata(root.join("dangling")).expect("lstat").file_type().is_symlink());
        assert_eq!(mode_of(&root.join("made.env")), 0o600);
    }

    #[test]
    fn non_utf8_file_names_are_kept_exactly() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(OsStr::from_bytes(b"prod\xff.env"));
        let env = LockedEnv::acquire(&path).expect("lock");
        env.write(&parse("A=1\n")).expect("write");
        env.stage(&parse("A=2\n")).expect("stage");
        assert!(dir.path().join(OsStr::from_bytes(b"prod\xff.env.pending")).exists());
        env.publish_pending().expect("publish");
        assert_eq!(fs::read(&path).expect("read"), b"A=2\n");
        assert!(dir.path().join(OsStr::from_bytes(b"prod\xff.env.lock")).exists());
        assert_eq!(fs::read_dir(dir.path()).expect("read dir").count(), 2);
    }

    #[test]
    fn a_failed_write_leaves_the_original_and_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        fs::write(&path, "A=1\n").expect("write");
        let env = LockedEnv::acquire(&path).expect("lock");
        let file = parse("A=s3cr3t\n");
        for point in ["after-create", "before-rename"] {
            FAIL_AT.with(|at| at.set(Some(point)));
            let error = env.write(&file).expect_err(point);
            FAIL_AT.with(|at| at.set(None));
            let message = error.to_string();
            assert!(message.contains(".env") && message.contains("nothing was changed"), "{message}");
            assert!(!message.contains("s3cr3t"));
            assert_eq!(fs::read_to_string(&path).expect("read"), "A=1\n");
            assert_eq!(dir_names(dir.path()), [".env", ".env.lock"], "{point}");

            FAIL_AT.with(|at| at.set(Some(point)));
            env.stage(&file).expect_err(point);
            FAIL_AT.with(|at| at.set(None));
            assert_eq!(dir_names(dir.path()), [".env", ".env.lock"], "{point}");
        }

        // The directory disappears under us: the write fails, for root too.
        let gone = tempfile::tempdir().expect("tempdir");
        let gone_path = gone.path().join(".env");
        let env = LockedEnv::acquire(&gone_path).expect("lock");
        fs::remove_dir_all(gone.path()).expect("rm");
        let error = env.write(&file).expect_err("no directory");
        assert!(matches!(error, EnvFileError::Write { .. }), "{error:?}");
        assert!(error.to_string().contains("check that its directory exists"), "{error}");

        // A path whose parent is a regular file cannot be locked or written.
        let error = LockedEnv::acquire(&path.join("x.env")).expect_err("parent is a file");
        let message = error.to_string();
        assert!(message.contains(".env/x.env") && message.contains("not a directory"), "{message}");
    }

    #[test]
    fn devices_and_pipes_are_never_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        match std::process::Command::new("mkfifo").arg(&fifo).status() {
            Ok(status) if status.success() => {}
            _ => {
                eprintln!("skipped: mkfifo is not available");
                return;
            }
        }
        let link = dir.path().join(".env");
        std::os::unix::fs::symlink("fifo", &link).expect("symlink");
        let error = LockedEnv::acquire(&link).expect_err("a pipe");
        assert!(matches!(error, EnvFileError::NotAFile { .. }), "{error:?}");
        assert!(error.to_string().contains("not a regular file"), "{error}");
        let error = create_new(&link, b"A=1\n", true).expect_err("a pipe");
        assert!(matches!(error, EnvFileError::NotAFile { .. }), "{error:?}");
        assert!(fs::symlink_metadata(&fifo).expect("lstat").file_type().is_fifo());
        assert_eq!(dir_names(dir.path()), [".env", "fifo"]);
    }

    #[test]
    fn write_into_a_read_only_directory_fails_and_keeps_the_original() {
        let dir = tempfile::tempdir().expect("tempdir");
        if bypasses_permissions(dir.path()) {
            eprintln!("skipped: this process bypasses file permissions (root); see the failure-injection test");
            return;
        }
        let path = dir.path().join(".env");
        fs::write(&path, "A=1\n").expect("write");
        let env = LockedEnv::acquire(&path).expect("lock");
        fs::set_permissions(dir.path(), Permissions::from_mode(0o555)).expect("chmod");
        let result = env.write(&parse("A=2\n"));
        fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).expect("chmod");
        let message = result.expect_err("read-only").to_string();
        assert!(message.contains("nothing was changed"), "{message}");
        assert_eq!(fs::read_to_string(&path).expect("read"), "A=1\n");
        assert_eq!(dir_names(dir.path()), [".env", ".env.lock"]);
    }

    /// One read-modify-write: increments `key`.
    fn increment(path: &Path, key: &str) {
        let env = LockedEnv::acquire(path).expect("lock");
        let mut file = env.read().expect("read").unwrap_or_default();
        let n: u32 = file.get(key).map_or(0, |v| v.parse().expect("number"));
        file.set(key, &(n + 1).to_string()).expect("set");
        env.write(&file).expect("write");
    }

    #[test]
    fn concurrent_threads_never_lose_an_update() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        fs::write(&path, "# counters\n").expect("write");
        std::thread::scope(|scope| {
            for key in ["LEFT", "RIGHT"] {
                let path = &path;
                scope.spawn(move || (0..50).for_each(|_| increment(path, key)));
            }
        });
        let file = EnvFile::read(&path).expect("read");
        assert_eq!((file.get("LEFT"), file.get("RIGHT")), (Some("50"), Some("50")));
    }

    const WORKER_PATH: &str = "ENVFILE_TEST_LOCK_WORKER_PATH";
    const WORKER_KEY: &str = "ENVFILE_TEST_LOCK_WORKER_KEY";

    /// The child side of `concurrent_processes_never_lose_an_update`; does nothing when run alone.
    #[test]
    #[ignore = "run by concurrent_processes_never_lose_an_update"]
    fn lock_worker_process() {
        if let (Ok(path), Ok(key)) = (std::env::var(WORKER_PATH), std::env::var(WORKER_KEY)) {
            (0..50).for_each(|_| increment(Path::new(&path), &key));
        }
    }

    #[test]
    fn concurrent_processes_never_lose_an_update() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        let exe = std::env::current_exe().expect("test binary");
        let children: Vec<_> = ["LEFT", "RIGHT"]
            .into_iter()
            .map(|key| {
                std::process::Command::new(&exe)
                    .args(["lock_worker_process", "--ignored", "--test-threads=1"])
                    .env(WORKER_PATH, &path)
                    .env(WORKER_KEY, key)
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().expect("wait");
            assert!(output.status.success());
            assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
        }
        let file = EnvFile::read(&path).expect("read");
        assert_eq!((file.get("LEFT"), file.get("RIGHT")), (Some("50"), Some("50")));
    }

    #[test]
    fn try_acquire_returns_none_while_the_lock_is_held() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        let held = LockedEnv::acquire(&path).expect("lock");
        assert!(LockedEnv::try_acquire(&path).expect("try").is_none());
        drop(held);
        assert!(LockedEnv::try_acquire(&path).expect("try").is_some());
    }

    #[test]
    fn stage_publish_and_discard_pending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        fs::write(&path, "# keep\nPOSTGRES_PASSWORD=old\n").expect("write");
        fs::set_permissions(&path, Permissions::from_mode(0o640)).expect("chmod");
        if is_root() {
            std::os::unix::fs::chown(&path, Some(1234), Some(5678)).expect("chown");
        }
        let env = LockedEnv::acquire(&path).expect("lock");
        assert_eq!(env.pending_path(), dir.path().join(".env.pending"));
        assert!(env.read_pending().expect("read").is_none());
        env.discard_pending().expect("discarding nothing is fine");
        assert!(matches!(env.publish_pending(), Err(EnvFileError::NoPending { .. })));

        let mut file = env.read().expect("read").expect("exists");
        file.set("POSTGRES_PASSWORD", "new").expect("set");
        env.stage(&file).expect("stage");
        assert_eq!(mode_of(&env.pending_path()), 0o600);
        let pending = env.read_pending().expect("read").expect("staged");
        assert_eq!(pending.get("POSTGRES_PASSWORD"), Some("new"));
        env.discard_pending().expect("discard");
        assert!(env.read_pending().expect("read").is_none());
        assert_eq!(fs::read_to_string(&path).expect("read"), "# keep\nPOSTGRES_PASSWORD=old\n");

        env.stage(&file).expect("stage");
        env.publish_pending().expect("publish");
        assert_eq!(fs::read_to_string(&path).expect("read"), "# keep\nPOSTGRES_PASSWORD=new\n");
        assert_eq!(mode_of(&path), 0o640);
        if is_root() {
            let meta = fs::metadata(&path).expect("metadata");
            assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
        }
        assert_eq!(dir_names(dir.path()), [".env", ".env.lock"]);
    }

    #[test]
    fn create_new_refuses_existing_files_unless_forced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.env");
        create_new(&path, b"A=1\n", false).expect("create");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(fs::read(&path).expect("read"), b"A=1\n");

        let error = create_new(&path, b"A=2\n", false).expect_err("exists");
        assert!(matches!(error, EnvFileError::AlreadyExists { .. }));
        assert!(error.to_string().contains("--force"), "{error}");
        assert_eq!(fs::read(&path).expect("read"), b"A=1\n");

        fs::set_permissions(&path, Permissions::from_mode(0o644)).expect("chmod");
        create_new(&path, b"A=3\n", true).expect("force");
        assert_eq!(fs::read(&path).expect("read"), b"A=3\n");
        assert_eq!(mode_of(&path), 0o600);

        let link = dir.path().join("link.env");
        std::os::unix::fs::symlink("elsewhere.env", &link).expect("symlink");
        assert!(matches!(create_new(&link, b"A=1\n", false), Err(EnvFileError::AlreadyExists { .. })));
        create_new(&link, b"A=4\n", true).expect("force through symlink");
        assert!(fs::symlink_metadata(&link).expect("lstat").file_type().is_symlink());
        assert_eq!(fs::read(dir.path().join("elsewhere.env")).expect("read"), b"A=4\n");
        assert_eq!(dir_names(dir.path()), ["elsewhere.env", "link.env", "out.env"]);

        let error = create_new(&path.join("x"), b"", false).expect_err("parent is a file");
        assert!(matches!(error, EnvFileError::Write { .. }), "{error:?}");
    }

    #[test]
    #[ignore = "benchmark: cargo test --release -- --ignored rewrite_of_1000_lines --nocapture"]
    fn rewrite_of_1000_lines() {
        let mut text = String::new();
        for i in 0..1000 {
            match i % 5 {
                0 => text.push_str(&format!("# section {i}\n")),
                1 => text.push_str(&format!("KEY_{i}=value-{i}-abcdefghijklmnopqrstuvwxyz\n")),
                2 => text.push_str(&format!("export KEY_{i}='{{\"json\":{i}}}'  # c\n")),
                3 => text.push_str(&format!("KEY_{i}=\"quoted \\\"{i}\\\" \\n\"\n")),
                _ => text.push('\n'),
            }
        }
        let start = std::time::Instant::now();
        let rounds = 200;
        for _ in 0..rounds {
            let mut file = parse(&text);
            for key in ["KEY_1", "KEY_502", "KEY_998", "NEW_A", "NEW_B"] {
                file.set(key, "n3w-v@lue with space").expect("set");
            }
            assert!(file.render().len() > text.len());
        }
        println!("parse + 5 sets + render of 1000 lines: {:?}", start.elapsed() / rounds);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Line {
            Blank(&'static str),
            Comment(String),
            Pair {
                lead: &'static str,
                export: &'static str,
                key: &'static str,
                before_eq: &'static str,
                after_eq: &'static str,
                value: String,
                trail: &'static str,
            },
        }

        /// Marks a line break inside a quoted value; replaced by the file's line ending.
        const BREAK: &str = "\u{1}";

        fn quoted_piece(double: bool) -> BoxedStrategy<String> {
            let plain = if double { "[ !#-\\[\\]-~é€]{1,4}" } else { "[ -&(-\\[\\]-~é€]{1,4}" };
            let escapes: &[&str] = if double {
                &["\\n", "\\t", "\\\"", "\\\\", "\\$", "\\x", "\\0101", "\\0", "'"]
            } else {
                &["\\'", "\\\\", "\\n", "\""]
            };
            prop_oneof![
                4 => plain.prop_map(String::from),
                2 => proptest::sample::select(escapes.to_vec()).prop_map(String::from),
                1 => Just(BREAK.to_owned()),
            ]
            .boxed()
        }

        fn value_token() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(String::new()),
                "[A-Za-z0-9_@%:/.,+=-][A-Za-z0-9_@#%:/.,+=$'\" \\\\-]{0,12}",
                prop::collection::vec(quoted_piece(false), 0..5).prop_map(|p| format!("'{}'", p.concat())),
                prop::collection::vec(quoted_piece(true), 0..5).prop_map(|p| format!("\"{}\"", p.concat())),
            ]
        }

        const KEYS: &[&str] = &["A", "B_1", "db.url", "X-Y", "_Z", "export", "JWT_KEYS"];

        fn line() -> impl Strategy<Value = Line> {
            prop_oneof![
                1 => prop::sample::select(vec!["", "  ", "\t"]).prop_map(Line::Blank),
                1 => "[ \t]{0,2}#[ -~]{0,16}".prop_map(Line::Comment),
                4 => (
                    prop::sample::select(vec!["", " "]),
                    prop::sample::select(vec!["", "export ", "export\t"]),
                    prop::sample::select(KEYS.to_vec()),
                    prop::sample::select(vec!["", " "]),
                    prop::sample::select(vec!["", " ", "\t"]),
                    value_token(),
                    prop::sample::select(vec!["", "  ", " # note", "\t# x"]),
                )
                    .prop_map(|(lead, export, key, before_eq, after_eq, value, trail)| {
                        // `export =` would make `export` a prefix with no key after it.
                        let before_eq = if key == "export" && export.is_empty() { "" } else { before_eq };
                        Line::Pair { lead, export, key, before_eq, after_eq, value, trail }
                    }),
            ]
        }

        fn file_text() -> impl Strategy<Value = String> {
            (prop::collection::vec(line(), 0..12), any::<bool>(), any::<bool>(), prop::bool::weighted(0.1)).prop_map(
                |(lines, crlf, final_newline, bom)| {
                    let eol = if crlf { "\r\n" } else { "\n" };
                    let rendered: Vec<String> = lines
                        .into_iter()
                        .map(|line| match line {
                            Line::Blank(ws) => ws.to_owned(),
                            Line::Comment(text) => text,
                            Line::Pair { lead, export, key, before_eq, after_eq, value, trail } => {
                                format!("{lead}{export}{key}{before_eq}={after_eq}{value}{trail}")
                            }
                        })
                        .collect();
                    let mut text = if bom { BOM.to_owned() } else { String::new() };
                    text.push_str(&rendered.join(eol).replace(BREAK, eol));
                    if final_newline && !rendered.is_empty() {
                        text.push_str(eol);
                    }
                    text
                },
            )
        }

        fn new_value() -> impl Strategy<Value = String> {
            prop_oneof![
                "[ -~]{0,30}",
                "[ -~\n\t\r]{0,20}",
                "\\PC{0,12}",
                "[A-Za-z0-9+/=]{1,40}",
                Just(r#"[{"kty":"EC","crv":"P-256","x":"f83O","d":"jpsQ"}]"#.to_owned()),
                Just("it's \"$HOME\" # \\".to_owned()),
                Just("trailing\\".to_owned()),
            ]
        }

        fn non_key_raws(file: &EnvFile, key: &str) -> Vec<String> {
            file.entries.iter().filter(|e| e.key() != Some(key)).map(|e| e.raw.to_string()).collect()
        }

        /// (prefix, suffix) around the value of each entry of `key`.
        fn frames(file: &EnvFile, key: &str) -> Vec<(String, String)> {
            file.entries
                .iter()
                .filter_map(|e| {
                    let pair = e.pair.as_ref().filter(|_| e.key() == Some(key))?;
                    Some((e.raw[..pair.value_start].to_owned(), e.raw[pair.value_end..].to_owned()))
                })
                .collect()
        }

        proptest! {
            // No persistence: failures are printed (generated data, never real secrets), and the
            // file would land beside the source.
            #![proptest_config(ProptestConfig {
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn parse_then_render_is_the_identity(text in file_text()) {
                let file = EnvFile::parse(&text, None).expect("generated files are valid");
                let out = file.render();
                prop_assert_eq!(out.as_str(), text.as_str());
            }

            #[test]
            fn set_changes_exactly_one_value(
                text in file_text(),
                key in prop::sample::select(vec!["A", "db.url", "export", "NEW_KEY", "N-2"]),
                value in new_value(),
            ) {
                let original = EnvFile::parse(&text, None).expect("generated files are valid");
                let mut file = original.clone();
                file.set(key, &value).expect("valid key");
                let out = file.render();
                let reread = EnvFile::parse(&out, None).expect("rendered files are valid");

                prop_assert_eq!(reread.get(key), Some(value.as_str()));
                for (k, v) in reread.pairs().filter(|(k, _)| *k == key) {
                    prop_assert_eq!(v, value.as_str(), "every occurrence of {}", k);
                }
                let others = |f: &EnvFile| -> Vec<(String, String)> {
                    f.pairs()
                        .filter(|(k, _)| *k != key)
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect()
                };
                prop_assert_eq!(others(&original), others(&reread));

                let mut expected = non_key_raws(&original, key);
                if !original.contains(key) {
                    if let Some(last) = expected.last_mut() {
                        if !last.ends_with('\n') {
                            last.push_str(original.line_ending());
                        }
                    }
                }
                prop_assert_eq!(expected, non_key_raws(&reread, key));
                if original.contains(key) {
                    prop_assert_eq!(frames(&original, key), frames(&reread, key));
                } else {
                    let added = reread.entries.last().expect("appended");
                    let start = format!("{}=", key);
                    prop_assert!(added.raw.starts_with(&start));
                    prop_assert!(added.raw.ends_with(original.line_ending()));
                }
            }
        }
    }
}
