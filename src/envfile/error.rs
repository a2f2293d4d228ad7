//! [`EnvFileError`]: why reading, parsing or writing a `.env` failed.
//!
//! Each message is one sentence that names the file and says what to do. None quotes a value or a
//! line of the file: a line may hold a secret, and these messages end up on terminals and in logs.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::parse::BAD_KEY;
use super::pending::HandEdit;

/// Why reading, parsing or writing a `.env` failed. Each message is one sentence naming the file
/// and saying what to do; none contains a value or a line of the file.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    /// A line is neither blank, a comment nor `KEY=value`.
    #[error("line {line} of {} is malformed: {reason}; fix or remove that line", Shown(.path.as_deref()))]
    Malformed { path: Option<PathBuf>, line: usize, reason: &'static str },
    /// The file is JSON or YAML (as `generate-keys --format json|k8s` prints), not a `.env`.
    #[error(
        "{} looks like {format}, not a .env file: only .env files (KEY=value lines) are read; pass the stack's .env \
         (generate-keys --format env writes one)",
        Shown(.path.as_deref())
    )]
    NotDotenv { path: Option<PathBuf>, format: &'static str },
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
    /// Another process held the lock for longer than the command may wait (`--lock-wait`).
    #[error(
        "{} is locked by {holder}, which did not release it within {waited}; wait for that run to finish \
         and try again, or wait longer with --lock-wait; nothing was changed",
        .path.display()
    )]
    LockBusy { path: PathBuf, waited: String, holder: String },
    /// The lock file exists but this user may not open it: a run as root made it before the lock
    /// file was given the `.env`'s owner.
    #[error(
        "cannot lock {}: it belongs to uid {uid} and this user may not open it (a run as another user, \
         such as root, created it); as root, give it the .env's owner (`chown --reference={} {}`), or \
         remove it when no pmoves-secrets run is active; nothing was changed",
        .path.display(),
        .env.display(),
        .path.display()
    )]
    LockNotOurs { path: PathBuf, env: PathBuf, uid: u32 },
    /// Publishing a rotation found a key it changes edited by hand since it was staged.
    #[error(
        "{} was edited after the rotation was staged, on {}, which the rotation changes too, so its new \
         values cannot be applied without losing that edit; {} holds them: copy those lines from it into \
         {} (`diff` the two files; keep the rest of your edit), then run again. Both files are kept",
        .path.display(),
        list_edits(.edits),
        .pending.display(),
        .path.display()
    )]
    HandEdited { path: PathBuf, pending: PathBuf, edits: Vec<HandEdit> },
    /// A writer found the `.env` edited, since it read it, on a key it changes too.
    #[error(
        "{} was edited while this run was preparing its changes, on {}, which this run changes too; \
         nothing was changed: run again to start from the file as it is now",
        .path.display(),
        list_edits(.edits)
    )]
    ChangedMeanwhile { path: PathBuf, edits: Vec<HandEdit> },
    /// `create_new` without `force` found an existing file.
    #[error("{} already exists; choose another file or pass --force to replace it", .path.display())]
    AlreadyExists { path: PathBuf },
    /// `publish_pending` found no pending file.
    #[error("there is no pending file {} to publish; nothing was changed", .path.display())]
    NoPending { path: PathBuf },
    /// A symlink at one of the fixed names beside a `.env` (lock, pending or temporary file),
    /// which is never followed: a dangling one would create a file at its target, a pending one
    /// would be published as `.env`.
    #[error(
        "{} is a symbolic link; pmoves-secrets never follows one at this name: remove it (`ls -l` shows \
         where it points) and run again; nothing was changed",
        .path.display()
    )]
    Symlink { path: PathBuf },
    /// Something other than a regular file (directory, FIFO, device, socket) at one of the fixed
    /// names beside a `.env`.
    #[error(
        "{} is not a regular file; pmoves-secrets keeps its lock and pending files at this name: move it \
         away and run again; nothing was changed",
        .path.display()
    )]
    NotRegular { path: PathBuf },
    /// A writer other than the rotation found the pending file of an interrupted rotation:
    /// writing now could be undone when the rotation is settled.
    #[error(
        "{} is left from an interrupted rotation; settle it first with `pmoves-secrets rotate-passwords \
         --env-file {}` (it finds out which password the database accepts and finishes or discards the \
         rotation), then run this again; nothing was changed",
        .pending.display(),
        .path.display()
    )]
    PendingRotation { path: PathBuf, pending: PathBuf },
    /// The `.env` (or its directory) carries an inode flag that forbids replacing it.
    #[error(
        "{} is {flag} (see `lsattr`), so it cannot be replaced; remove the flag with `chattr -{letter} {}` \
         and run again; nothing was changed",
        .path.display(),
        .path.display()
    )]
    Unreplaceable { path: PathBuf, flag: &'static str, letter: char },
    /// A command that updates a stack's `.env` was pointed at a file that does not exist (or at a
    /// dangling symlink): it never creates one, so a typo in the path cannot silently make a new
    /// file beside the real one.
    /// The hint says where it looked and never suggests minting a new `.env`: a fresh file holds a
    /// password the live database does not accept.
    #[error(
        "{} does not exist ({}); run pmoves-secrets from the stack's directory, where its .env is, or pass \
         --env-file with the path of the stack's .env; nothing was changed",
        .path.display(),
        LookedIn(.path)
    )]
    Missing { path: PathBuf },
    /// As [`EnvFileError::Missing`], for `generate-keys --env-file`, the one command that may
    /// also serve a stack that has not started: that case gets its own pointer.
    #[error(
        "{} does not exist ({}); run pmoves-secrets from the stack's directory, where its .env is, or pass \
         --env-file with the path of the stack's .env (only a stack that has not started yet gets a new \
         one, from `pmoves-secrets generate-keys --output {}`); nothing was changed",
        .path.display(),
        LookedIn(.path),
        .path.display()
    )]
    MissingBeforeFirstStart { path: PathBuf },
    /// The wait for the lock was interrupted (Ctrl-C): nothing was read or written.
    #[error("interrupted while waiting for the lock on {}; nothing was changed", .path.display())]
    Interrupted { path: PathBuf },
    /// A file to read (a template, the `.env` to audit) does not exist.
    #[error("{} does not exist ({}); check the path", .path.display(), LookedIn(.path))]
    NotFound { path: PathBuf },
    /// `set` was given a key that could not be read back.
    #[error("`{key}` is not a valid .env key: {BAD_KEY}")]
    InvalidKey { key: String },
}

/// `POSTGRES_PASSWORD (line 4), DATABASE_URL (no longer in the file)`.
fn list_edits(edits: &[HandEdit]) -> String {
    let described: Vec<String> = edits
        .iter()
        .map(|edit| match edit.line {
            Some(line) => format!("{} (line {line})", edit.key),
            None => format!("{} (no longer in the file)", edit.key),
        })
        .collect();
    described.join(", ")
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

/// Where a relative path was looked for: "looked in /srv/stack, the current directory", so an
/// operator in the wrong directory sees it at once.
struct LookedIn<'a>(&'a Path);

impl fmt::Display for LookedIn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = self.0.parent().filter(|dir| !dir.as_os_str().is_empty());
        match (self.0.is_absolute(), dir, std::env::current_dir()) {
            (true, Some(dir), _) => write!(f, "looked in {}", dir.display()),
            (false, None, Ok(cwd)) => write!(f, "looked in {}, the current directory", cwd.display()),
            (false, Some(dir), Ok(cwd)) => {
                write!(f, "looked in {}, under the current directory {}", cwd.join(dir).display(), cwd.display())
            }
            _ => f.write_str("looked relative to the current directory"),
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
        (K::NotFound, _) => "; its directory does not exist: create it first or choose another path",
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
