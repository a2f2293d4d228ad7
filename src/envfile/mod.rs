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
//! Reading and rewriting do not interpolate: `get` returns `${VAR}` as written, where compose would
//! interpolate it in unquoted and double-quoted values. That is safe for what we write, because new
//! values never contain a bare `$`: they are single-quoted or escaped as `\$` in double quotes.
//! Compose's interpolation itself is [`interpolate`], which `check` applies to the values it audits.
//!
//! We are stricter than compose in what we accept: keys starting with a digit, `KEY: value`, a bare
//! `KEY` (compose takes it from the environment) and text after a closing quote are errors, so that
//! a typo is reported rather than silently reinterpreted.
//!
//! Writing is atomic and serialised, see [`LockedEnv`] and [`create_new`]. Secrets never reach an
//! error message, a `Debug` print or a panic message, and every buffer that holds file text is
//! zeroed when dropped.
//!
//! The modules:
//! - `parse`: `.env` text → entries, by the reading rules above;
//! - `entry`: one entry as its exact text plus offsets, and replacing its value in place;
//! - `quote`: how a value is written (which quotes, which escapes);
//! - `path`: which file on disk a `.env` path means (symlinks) and every name beside it (lock,
//!   pending and temporary files, the leftovers of a killed run);
//! - `atomic`: the one routine that replaces a file durably (temporary file, mode and owner,
//!   fsync, rename, directory fsync), and opening the names beside a `.env` safely (no symlink,
//!   no FIFO);
//! - `lock`: [`LockedEnv`], the writers' lock (every wait bounded) and a rotation's pending file;
//! - `pending`: what the pending file records, and how it is applied to the `.env` as it is now;
//! - `holder`: who holds that lock, as `/proc` tells;
//! - `error`: [`EnvFileError`], messages that say what to do and never hold a secret;
//! - [`interpolate`]: compose's `${VAR}` grammar, for readers that need values as compose sees them;
//! - `properties` and `test_util` (tests only): property tests of the whole rewriter, and helpers.

#![forbid(unsafe_code)]

mod atomic;
mod entry;
mod error;
mod holder;
pub mod interpolate;
mod lock;
mod parse;
mod path;
mod pending;
mod quote;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod test_util;

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

pub use atomic::create_new;
pub use error::EnvFileError;
pub use lock::{LockedEnv, Publication};
pub use parse::is_valid_key;
pub use pending::{staged_keys, HandEdit};
pub use quote::quote_value;

use entry::{decoded_copy, replace_value, Entry, Pair};
use parse::parse_entries;
use quote::{choose_quote, encode_into, Quote};

/// A UTF-8 byte order mark, which some Windows editors put at the start of a file.
const BOM: &str = "\u{feff}";

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

/// The format a file that is not a `.env` is in, judged by its first line that is neither blank
/// nor a comment: JSON (`generate-keys --format json`) or a YAML document such as the Kubernetes
/// Secret `generate-keys --format k8s` prints. Asked only once the file failed to parse.
fn other_format(body: &str) -> Option<&'static str> {
    let first = body.lines().map(str::trim).find(|line| !line.is_empty() && !line.starts_with('#'))?;
    if first.starts_with('{') || first.starts_with('[') {
        Some("JSON")
    } else if first == "---" || first.starts_with("apiVersion:") || first.starts_with("kind:") {
        Some("YAML (a Kubernetes manifest?)")
    } else {
        None
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
        let entries = parse_entries(body).map_err(|(line, reason)| match other_format(body) {
            Some(format) => EnvFileError::NotDotenv { path: path.map(Path::to_path_buf), format },
            None => EnvFileError::Malformed { path: path.map(Path::to_path_buf), line, reason },
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
        read_from(path, path, true)?.ok_or_else(|| EnvFileError::NotFound { path: path.to_path_buf() })
    }

    /// The value of `key`; with duplicates the last occurrence wins, as in compose.
    pub fn get(&self, key: &str) -> Option<&str> {
        let &i = self.index.get(key)?.last()?;
        let entry = &self.entries[i];
        entry.pair.as_ref().map(|pair| pair.value(&entry.raw))
    }

    /// The value of `key` with one meaning everywhere: an empty value is unset, as compose and
    /// the services read it (`KEY=` sets nothing). Only the rewriter needs [`EnvFile::get`]'s
    /// distinction between absent and empty.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|value| !value.is_empty())
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

    /// The values of every occurrence of `key`, in file order.
    fn values_of<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a str> + 'a {
        let indices = self.index.get(key).map_or(&[][..], Vec::as_slice);
        indices.iter().filter_map(|&i| {
            let entry = &self.entries[i];
            entry.pair.as_ref().map(|pair| pair.value(&entry.raw))
        })
    }

    /// Every `(key, value, how compose interpolates it)` in file order, duplicates included:
    /// compose expands `${VAR}` in bare and double-quoted values as it reads the file, and takes
    /// single-quoted ones literally.
    pub fn pairs_as_compose_reads(&self) -> impl Iterator<Item = (&str, &str, Interpolated<'_>)> + '_ {
        self.entries.iter().filter_map(|entry| {
            let pair = entry.pair.as_ref()?;
            let value = pair.value(&entry.raw);
            let interpolated = match pair.quote {
                Quote::Single => Interpolated::Literal,
                Quote::Bare => Interpolated::Template(value),
                Quote::Double => {
                    let inner = &entry.raw[pair.value_start + 1..pair.value_end - 1];
                    match inner.contains("\\$").then(|| parse::compose_template(inner)).flatten() {
                        Some(template) => Interpolated::EscapedTemplate(template),
                        None => Interpolated::Template(value),
                    }
                }
            };
            Some((pair.key(&entry.raw), value, interpolated))
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

    /// The 1-based line of every key's effective (last) occurrence, found in one pass over the
    /// file: for naming the lines of many keys at once ([`EnvFile::line_of`] reads the file up to
    /// its key each time).
    pub fn key_lines(&self) -> HashMap<&str, usize> {
        let mut lines = HashMap::with_capacity(self.index.len());
        let mut line = 1;
        for entry in &self.entries {
            if let Some(key) = entry.key() {
                lines.insert(key, line);
            }
            line += entry.raw.bytes().filter(|&b| b == b'\n').count();
        }
        lines
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

/// How compose reads the `$` of one value ([`EnvFile::pairs_as_compose_reads`]).
pub enum Interpolated<'a> {
    /// Single-quoted: the value is taken literally.
    Literal,
    /// The text compose interpolates, which is the value as read.
    Template(&'a str),
    /// The text compose interpolates, which differs from the value: each double-quoted `\$` is
    /// `$$` there (a literal `$` to interpolation).
    EscapedTemplate(Zeroizing<String>),
}

impl Interpolated<'_> {
    /// The text compose interpolates; `None` for a literal value.
    pub fn template(&self) -> Option<&str> {
        match self {
            Interpolated::Literal => None,
            Interpolated::Template(text) => Some(text),
            Interpolated::EscapedTemplate(text) => Some(text),
        }
    }
}

/// Concatenates into one exactly-sized zeroizing buffer.
fn concat(parts: &[&str]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(parts.iter().map(|p| p.len()).sum()));
    for part in parts {
        out.push_str(part);
    }
    out
}

/// Reads and parses `actual`, naming `shown` in messages; `None` when it does not exist. The open
/// never blocks and reads only a regular file; with `follow` false, a symlink at `actual` is
/// refused instead of followed.
fn read_from(shown: &Path, actual: &Path, follow: bool) -> Result<Option<EnvFile>, EnvFileError> {
    let Some(bytes) = read_regular_bytes(shown, actual, follow)? else {
        return Ok(None);
    };
    EnvFile::parse(utf8(&bytes, shown)?, Some(shown)).map(Some)
}

/// The whole of the regular file at `actual` (see [`read_from`]), in a buffer zeroed when dropped.
fn read_regular_bytes(shown: &Path, actual: &Path, follow: bool) -> Result<Option<Zeroizing<Vec<u8>>>, EnvFileError> {
    let read_error = |error: io::Error| EnvFileError::Read { path: shown.to_path_buf(), error };
    let Some(mut file) = atomic::open_regular(actual, shown, follow)? else {
        return Ok(None);
    };
    let meta = file.metadata().map_err(read_error)?;
    // One extra byte so that reading up to EOF does not reallocate (which would leave an unzeroed
    // copy of the secrets in freed memory).
    let capacity = usize::try_from(meta.len()).unwrap_or(0).saturating_add(1);
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    file.read_to_end(&mut bytes).map_err(read_error)?;
    Ok(Some(bytes))
}

/// `bytes` as text, or the line of `shown` where it stops being UTF-8.
fn utf8<'b>(bytes: &'b [u8], shown: &Path) -> Result<&'b str, EnvFileError> {
    std::str::from_utf8(bytes).map_err(|error| EnvFileError::NotUtf8 {
        path: shown.to_path_buf(),
        line: 1 + bytes[..error.valid_up_to()].iter().filter(|&&b| b == b'\n').count(),
    })
}

/// The text of a file the operator names besides the `.env` (a compose file), read as the `.env`
/// is: symlinks followed, and anything that is not a regular file refused at once, before a
/// byte is read (a FIFO would block the read forever, `/dev/zero` would never end). Missing
/// files are [`EnvFileError::Read`] errors.
pub fn read_regular_text(path: &Path) -> Result<Zeroizing<String>, EnvFileError> {
    let bytes = read_regular_bytes(path, path, true)?
        .ok_or_else(|| EnvFileError::Read { path: path.to_path_buf(), error: io::ErrorKind::NotFound.into() })?;
    Ok(Zeroizing::new(utf8(&bytes, path)?.to_owned()))
}

/// Refuses a `.env` that does not exist, or a dangling symlink ([`EnvFileError::Missing`]), before
/// anything is locked or created beside it: for commands that update a stack's `.env` and never
/// make one. Any other problem (permission, a directory) is left to the reader, which reports it
/// with its own hint.
pub fn require_existing(path: &Path) -> Result<(), EnvFileError> {
    match std::fs::metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            Err(EnvFileError::Missing { path: path.to_path_buf() })
        }
        _ => Ok(()),
    }
}

/// `<env>.pending` for the `.env` at `path`: beside its symlink-resolved target, where
/// `rotate-passwords` stages it (the one place this name is derived).
pub fn pending_path(path: &Path) -> Result<PathBuf, EnvFileError> {
    let (dir, name) = path::resolve(path)?;
    Ok(path::sibling(&dir, &name, path::PENDING_SUFFIX))
}

/// The temporary files a killed write left beside the `.env` at `path` (or beside its pending
/// file), each holding a copy of the secrets. Only lists them: [`LockedEnv`] removes them, under
/// the lock, before its next write.
pub fn leftover_temp_files(path: &Path) -> Result<Vec<PathBuf>, EnvFileError> {
    let (dir, name) = path::resolve(path)?;
    path::leftover_temp_files(&dir, &name).map_err(|error| EnvFileError::Read { path: dir, error })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, Permissions};
    use std::os::unix::fs::PermissionsExt;

    use super::test_util::{bypasses_permissions, parse, rendered, set, skipped};

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
    fn set_updates_every_duplicate_and_reports_them() {
        let mut file = parse("A=1\nB=2\nexport A='old'  # again\nB=3\nC=4\n");
        assert_eq!(file.duplicate_keys(), ["A", "B"]);
        file.set("A", "new").expect("set");
        assert_eq!(rendered(&file), "A=new\nB=2\nexport A='new'  # again\nB=3\nC=4\n");
        assert!(file.pairs().filter(|(k, _)| *k == "A").all(|(_, v)| v == "new"));
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
            skipped("this process bypasses file permissions (root)");
            return;
        }
        let path = dir.path().join(".env");
        fs::write(&path, "A=1\n").expect("write");
        fs::set_permissions(&path, Permissions::from_mode(0o000)).expect("chmod");
        let message = EnvFile::read(&path).expect_err("unreadable").to_string();
        assert!(message.contains(".env") && message.contains("permissions"), "{message}");
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
}
