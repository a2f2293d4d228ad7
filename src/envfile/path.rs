//! Which file on disk a `.env` path means: the target of a symlink (or chain of them), the
//! directory that holds it, and the names of the lock and pending files beside it.
//!
//! Everything that replaces a file works on the resolved target in its own directory, so a rename
//! stays on one filesystem and a symlinked `.env` stays a symlink. Only regular files are replaced.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::EnvFileError;

/// Same limit as Linux's `MAXSYMLINKS`, so a symlink loop fails instead of spinning.
const MAX_SYMLINKS: usize = 40;

/// Follows symlinks in the last component of `path` (not in its directories), so a dangling link
/// resolves to the file it would create. Relative links are relative to the link's directory.
pub(super) fn resolve_symlinks(path: &Path) -> io::Result<PathBuf> {
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
pub(super) fn split(path: &Path, shown: &Path) -> Result<(PathBuf, OsString), EnvFileError> {
    let name = path.file_name().ok_or_else(|| EnvFileError::IsDirectory { path: shown.to_path_buf() })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_os_string()))
}

/// Only regular files are replaced: renaming over a directory fails anyway, and renaming over a
/// device such as `/dev/null` (a symlinked `.env` may point there) would replace the device.
pub(super) fn check_file_type(meta: &fs::Metadata, shown: &Path) -> Result<(), EnvFileError> {
    let path = shown.to_path_buf();
    if meta.is_dir() {
        Err(EnvFileError::IsDirectory { path })
    } else if !meta.is_file() {
        Err(EnvFileError::NotAFile { path })
    } else {
        Ok(())
    }
}

/// Suffix of the lock file beside a `.env` (`.env.lock`).
pub(super) const LOCK_SUFFIX: &str = ".lock";
/// Suffix of the pending file a rotation stages beside a `.env` (`.env.pending`).
pub(super) const PENDING_SUFFIX: &str = ".pending";
/// Suffix of every temporary file (`..env.Ab3xYz.tmp`).
pub(super) const TEMP_SUFFIX: &str = ".tmp";
/// Length of the random part of a temporary name (tempfile's default, ASCII letters and digits).
pub(super) const TEMP_RANDOM_LEN: usize = 6;
/// Longest file name kept in a temporary name, so that the whole name (dot, name, dot, random
/// part, `.tmp`) stays within the usual 255-byte limit.
const TEMP_NAME_MAX: usize = 200;

/// `<dir>/<name><suffix>`, e.g. `.env.lock`.
pub(super) fn sibling(dir: &Path, name: &OsStr, suffix: &str) -> PathBuf {
    let mut file_name = name.to_os_string();
    file_name.push(suffix);
    dir.join(file_name)
}

/// `.<name>.`, the start of the name of every temporary file that replaces `name` (the random
/// part and [`TEMP_SUFFIX`] follow). The name is cut to [`TEMP_NAME_MAX`] bytes, at a character
/// boundary when it is UTF-8.
pub(super) fn temp_prefix(name: &OsStr) -> OsString {
    let bytes = name.as_bytes();
    let mut end = bytes.len().min(TEMP_NAME_MAX);
    if let Ok(text) = std::str::from_utf8(bytes) {
        while !text.is_char_boundary(end) {
            end -= 1;
        }
    }
    let mut prefix = Vec::with_capacity(end + 2);
    prefix.push(b'.');
    prefix.extend_from_slice(&bytes[..end]);
    prefix.push(b'.');
    OsString::from_vec(prefix)
}

/// Whether `candidate` is the name of a temporary file that replaces `name`: `.<name>.`, six
/// ASCII letters or digits, `.tmp`.
pub(super) fn is_temp_name_of(candidate: &OsStr, name: &OsStr) -> bool {
    let prefix = temp_prefix(name);
    let Some(rest) = candidate.as_bytes().strip_prefix(prefix.as_bytes()) else {
        return false;
    };
    let Some(random) = rest.strip_suffix(TEMP_SUFFIX.as_bytes()) else {
        return false;
    };
    random.len() == TEMP_RANDOM_LEN && random.iter().all(u8::is_ascii_alphanumeric)
}

/// Every temporary file in `dir` that a write of `name` or of its pending file may have left:
/// a killed run leaves one holding every secret of the file. Symlinks and files of other types
/// with such a name are listed too (they are never opened; removing one removes only the name).
pub(super) fn leftover_temp_files(dir: &Path, name: &OsStr) -> io::Result<Vec<PathBuf>> {
    let mut pending = name.to_os_string();
    pending.push(PENDING_SUFFIX);
    let mut found = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        let candidate = entry.file_name();
        if is_temp_name_of(&candidate, name) || is_temp_name_of(&candidate, &pending) {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// The resolved `.env` of `path` (symlinks in its last component followed, as [`LockedEnv`]
/// does), split into its directory and file name.
///
/// [`LockedEnv`]: super::LockedEnv
pub(super) fn resolve(path: &Path) -> Result<(PathBuf, OsString), EnvFileError> {
    let target = resolve_symlinks(path).map_err(|error| EnvFileError::Read { path: path.to_path_buf(), error })?;
    split(&target, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::test_util::{current, dir_names, mode_of, parse};
    use super::super::LockedEnv;

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
        env.stage(&current(&env), &file).expect("stage");
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
        env.stage(&current(&env), &parse("A=2\n")).expect("stage");
        assert!(dir.path().join(OsStr::from_bytes(b"prod\xff.env.pending")).exists());
        env.publish_pending().expect("publish");
        assert_eq!(fs::read(&path).expect("read"), b"A=2\n");
        assert!(dir.path().join(OsStr::from_bytes(b"prod\xff.env.lock")).exists());
        assert_eq!(fs::read_dir(dir.path()).expect("read dir").count(), 2);
    }
}
