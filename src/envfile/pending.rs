//! What a rotation's pending file holds, and how it is published onto the `.env` as it is *now*
//! (SPEC §2, crash safety): a hand edit made to `.env` after the rotation was staged (a new
//! `SMTP_PASS`, a `SITE_URL`) is never lost, because publishing applies only the staged keys to
//! the current file through the one rewriter, and refuses, keeping both files, when one of those
//! keys was edited by hand too.
//!
//! The pending file is the complete new `.env` (so `check` and an operator can read it as one),
//! after one comment line that records how to publish it:
//! - `# pmoves-secrets-pending v1 apply KEY=fp KEY=fp …`: the keys the rotation changes, each
//!   with a fingerprint of the value it had in the `.env` the rotation was staged from. At
//!   publication a key whose current value still has that fingerprint gets the new value; one
//!   that already has the new value is left as it is; any other value is a hand edit of a
//!   rotated key, a conflict.
//! - `# pmoves-secrets-pending v1 whole`: the body is the exact new `.env`, decided under the
//!   lock, that an in-place write (a `.env` that cannot be renamed over) is putting in place; a
//!   write interrupted half-way is finished by writing it again.
//! - no such line (a pending file of an earlier version): every key whose value differs from the
//!   current `.env` gets the pending value; keys only the current `.env` has are kept.
//!
//! A fingerprint is HMAC-SHA-256 keyed with the key's *new* value (which holds the new random
//! secret) over its old value, cut to 128 bits: it tells whether a value is unchanged without
//! putting the old value, or anything a guess could be checked against without the new secret,
//! in the file.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{EnvFile, EnvFileError};

/// Start of the first line of every pending file this version writes.
const MARK: &str = "# pmoves-secrets-pending v1";

/// How a pending file is to be published.
pub(super) enum Record {
    /// Apply these keys (with the fingerprint of their value at staging) to the current `.env`.
    Apply(Vec<(String, String)>),
    /// Write the body as it is (an interrupted in-place write).
    Whole,
    /// No record: apply every key whose value differs.
    Unrecorded,
}

/// The text of a pending file for `staged`, made from `base` (the `.env` as it was read).
pub(super) fn render_staged(base: &EnvFile, staged: &EnvFile) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(MARK.len() + 64));
    out.push_str(MARK);
    out.push_str(" apply");
    for (key, fp) in changes(base, staged) {
        out.push(' ');
        out.push_str(&key);
        out.push('=');
        out.push_str(&fp);
    }
    out.push('\n');
    out.push_str(&staged.render());
    out
}

/// The record of what `staged` changes in `base`: each changed key with the fingerprint of its
/// value in `base`.
pub(super) fn record(base: &EnvFile, staged: &EnvFile) -> Record {
    Record::Apply(changes(base, staged))
}

fn changes(base: &EnvFile, staged: &EnvFile) -> Vec<(String, String)> {
    changed_keys(base, staged)
        .into_iter()
        .map(|key| (key.to_owned(), fingerprint(staged.get(key).unwrap_or_default(), base.get(key))))
        .collect()
}

/// The text of a pending file that holds exactly `contents`, for an in-place write.
pub(super) fn render_whole(contents: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(MARK.len() + 7 + contents.len()));
    out.push_str(MARK);
    out.push_str(" whole\n");
    out.push_str(contents);
    out
}

/// A pending file's record and its body (the new `.env`).
pub(super) fn split(text: &str) -> (Record, &str) {
    let Some(rest) = text.strip_prefix(MARK) else {
        return (Record::Unrecorded, text);
    };
    let (line, body) = rest.split_once('\n').unwrap_or((rest, ""));
    let mut words = line.split_ascii_whitespace();
    let record = match words.next() {
        Some("whole") => Record::Whole,
        Some("apply") => Record::Apply(
            words.filter_map(|word| word.split_once('=')).map(|(key, fp)| (key.to_owned(), fp.to_owned())).collect(),
        ),
        _ => return (Record::Unrecorded, text),
    };
    (record, body)
}

/// The keys a pending file's record says its rotation changes; `None` when it records none (a
/// whole-file write, or a file of an earlier version).
pub fn staged_keys(text: &str) -> Option<Vec<String>> {
    match split(text).0 {
        Record::Apply(keys) => Some(keys.into_iter().map(|(key, _)| key).collect()),
        Record::Whole | Record::Unrecorded => None,
    }
}

/// The keys whose values (every occurrence) differ between `base` and `staged`, in `staged`'s
/// order, each once.
fn changed_keys<'a>(base: &EnvFile, staged: &'a EnvFile) -> Vec<&'a str> {
    let mut keys: Vec<&str> = Vec::new();
    for (key, _) in staged.pairs() {
        if !keys.contains(&key) && !base.values_of(key).eq(staged.values_of(key)) {
            keys.push(key);
        }
    }
    keys
}

/// HMAC-SHA-256 keyed with `new` over `old` (`None`: the key was absent), first 16 bytes in hex.
fn fingerprint(new: &str, old: Option<&str>) -> String {
    // HMAC takes a key of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(new.as_bytes()) else {
        return String::new();
    };
    match old {
        Some(old) => {
            mac.update(b"v");
            mac.update(old.as_bytes());
        }
        None => mac.update(b"-"),
    }
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// A key the rotation changes that was also edited by hand since it was staged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandEdit {
    /// The key.
    pub key: String,
    /// Its (effective) line in the current `.env`, when it is still there.
    pub line: Option<usize>,
}

/// `current` with the staged keys applied as `record` says; the hand-edited staged keys when
/// that cannot be done cleanly (nothing is changed then).
pub(super) fn apply(current: &EnvFile, staged: &EnvFile, record: &Record) -> Result<EnvFile, ApplyError> {
    let mut out = current.clone();
    let mut edits = Vec::new();
    match record {
        Record::Whole => return Ok(staged.clone()),
        Record::Apply(keys) => {
            for (key, recorded) in keys {
                let Some(new) = staged.get(key) else { continue };
                let now = current.get(key);
                if now == Some(new) || fingerprint(new, now) == *recorded {
                    out.set(key, new)?;
                } else {
                    edits.push(HandEdit { key: key.clone(), line: current.line_of(key) });
                }
            }
        }
        Record::Unrecorded => {
            for key in changed_keys(current, staged) {
                if let Some(new) = staged.get(key) {
                    out.set(key, new)?;
                }
            }
        }
    }
    if edits.is_empty() {
        Ok(out)
    } else {
        Err(ApplyError::HandEdited(edits))
    }
}

/// Why the staged keys could not be applied.
pub(super) enum ApplyError {
    HandEdited(Vec<HandEdit>),
    File(EnvFileError),
}

impl From<EnvFileError> for ApplyError {
    fn from(error: EnvFileError) -> Self {
        ApplyError::File(error)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{parse, rendered};
    use super::*;

    fn published(base: &str, staged: &str, current: &str) -> Result<String, Vec<HandEdit>> {
        let text = render_staged(&parse(base), &parse(staged));
        let (record, body) = split(&text);
        assert_eq!(body, staged, "the body is the staged .env, byte for byte");
        match apply(&parse(current), &parse(body), &record) {
            Ok(file) => Ok(rendered(&file)),
            Err(ApplyError::HandEdited(edits)) => Err(edits),
            Err(ApplyError::File(error)) => panic!("{error}"),
        }
    }

    const BASE: &str = "# stack\nPOSTGRES_PASSWORD=old\nDB_URL=postgres://u:old@db/x\nSMTP_PASS=a\n";
    const STAGED: &str = "# stack\nPOSTGRES_PASSWORD=new\nDB_URL=postgres://u:new@db/x\nSMTP_PASS=a\n";

    #[test]
    fn only_the_changed_keys_are_recorded_and_nothing_of_their_values() {
        let text = render_staged(&parse(BASE), &parse(STAGED));
        let first = text.lines().next().expect("a first line");
        assert!(first.starts_with("# pmoves-secrets-pending v1 apply POSTGRES_PASSWORD="), "{first}");
        assert!(first.contains(" DB_URL=") && !first.contains("SMTP_PASS"), "{first}");
        assert!(!first.contains("old") && !first.contains("new"), "{first}");
        assert!(parse(&text).get("POSTGRES_PASSWORD") == Some("new"), "the pending file reads as the new .env");
    }

    #[test]
    fn an_unchanged_env_becomes_the_staged_one() {
        assert_eq!(published(BASE, STAGED, BASE).expect("applies"), STAGED);
    }

    #[test]
    fn hand_edits_of_other_keys_are_kept() {
        let current = "# stack\nPOSTGRES_PASSWORD=old\nDB_URL=postgres://u:old@db/x\nSMTP_PASS='b c'\nSITE_URL=x\n";
        assert_eq!(
            published(BASE, STAGED, current).expect("applies"),
            "# stack\nPOSTGRES_PASSWORD=new\nDB_URL=postgres://u:new@db/x\nSMTP_PASS='b c'\nSITE_URL=x\n"
        );
    }

    #[test]
    fn an_already_applied_key_is_fine_and_a_hand_edited_rotated_key_is_a_conflict() {
        let applied = "# stack\nPOSTGRES_PASSWORD=new\nDB_URL=postgres://u:new@db/x\nSMTP_PASS=a\n";
        assert_eq!(published(BASE, STAGED, applied).expect("applies"), STAGED);
        let edited = "# stack\nPOSTGRES_PASSWORD=old\nSMTP_PASS=a\nDB_URL=postgres://u:old@otherhost/x\n";
        let edits = published(BASE, STAGED, edited).expect_err("conflict");
        assert_eq!(edits, [HandEdit { key: "DB_URL".into(), line: Some(4) }]);
        let removed = "# stack\nDB_URL=postgres://u:old@db/x\n";
        let edits = published(BASE, STAGED, removed).expect_err("conflict");
        assert_eq!(edits, [HandEdit { key: "POSTGRES_PASSWORD".into(), line: None }]);
    }

    #[test]
    fn a_key_the_rotation_adds_is_added_unless_it_was_added_by_hand_meanwhile() {
        let staged = format!("{BASE}NEW_KEY=s3cr3t\n");
        assert_eq!(published(BASE, &staged, BASE).expect("applies"), staged);
        let edits = published(BASE, &staged, &format!("{BASE}NEW_KEY=mine\n")).expect_err("conflict");
        assert_eq!(edits[0].key, "NEW_KEY");
    }

    #[test]
    fn whole_and_unrecorded_pending_files() {
        let text = render_whole("A=1\n");
        let (record, body) = split(&text);
        assert!(matches!(record, Record::Whole));
        assert_eq!(body, "A=1\n");
        let (record, body) = split("POSTGRES_PASSWORD=new\n");
        assert!(matches!(record, Record::Unrecorded));
        let Ok(file) = apply(&parse("POSTGRES_PASSWORD=old\nMINE=1\n"), &parse(body), &record) else {
            panic!("applies")
        };
        assert_eq!(rendered(&file), "POSTGRES_PASSWORD=new\nMINE=1\n");
    }
}
