//! [`LockedEnv`]: the exclusive lock that keeps two writers of one `.env` apart, and the pending
//! file that a rotation stages before it touches the database (SPEC §2, crash safety).
//!
//! The lock is held from reading `.env` to writing it, so a read-modify-write cannot lose another
//! writer's update, and the pending file is only created, published or discarded under it.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::IFlags;
use rustix::io::Errno;
use zeroize::Zeroizing;

use super::atomic::{
    is_mount_point, open_for_overwrite, open_lock_file, open_regular, overwrite_in_place, replace_file, sync_dir,
    try_install_probe, Placement,
};
use super::path::{check_file_type, leftover_temp_files, resolve, sibling, LOCK_SUFFIX, PENDING_SUFFIX};
use super::pending::{self, ApplyError, Record};
use super::{holder, read_from, EnvFile, EnvFileError};

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
///
/// The names beside the `.env` (lock, pending, temporary files) are never followed through a
/// symlink and never opened unless they are regular files.
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
    /// Locks the `.env` at `path`, waiting as long as another process holds the lock: for tests,
    /// where the holder is known to let go. Commands use [`LockedEnv::acquire_existing`], whose
    /// wait is bounded.
    #[cfg(test)]
    pub fn acquire(path: &Path) -> Result<Self, EnvFileError> {
        let (env, lock_path) = Self::open(path)?;
        env.lock_file.lock().map_err(|error| EnvFileError::Lock { path: lock_path, error })?;
        Ok(env)
    }

    /// Locks the `.env` at `path`, or returns `None` at once if another process holds the lock.
    pub fn try_acquire(path: &Path) -> Result<Option<Self>, EnvFileError> {
        let (env, lock_path) = Self::open(path)?;
        Ok(env.try_lock(&lock_path)?.then_some(env))
    }

    /// The lock of every command that updates a stack's `.env` (SPEC §2, "every wait is bounded
    /// and said"): refuses a `.env` that does not exist before anything is created beside it
    /// ([`EnvFileError::Missing`]), then takes the lock, waiting at most `limit` while another
    /// process holds it. Before waiting, `waiting` is given one sentence that says so and names
    /// the holder (pid and command name, as `/proc` shows them); after `limit`,
    /// [`EnvFileError::LockBusy`] names it again. The wait polls, so it ends within a few
    /// milliseconds of the holder letting go, and an interrupt ends it at once.
    ///
    /// `interrupted` is asked between two attempts: when it says so, the wait ends with
    /// [`EnvFileError::Interrupted`] (the caller catches Ctrl-C while it waits).
    pub fn acquire_existing(
        path: &Path,
        limit: Duration,
        waiting: impl FnOnce(&str),
        interrupted: impl Fn() -> bool,
    ) -> Result<Self, EnvFileError> {
        super::require_existing(path)?;
        let (env, lock_path) = Self::open(path)?;
        if env.try_lock(&lock_path)? {
            return Ok(env);
        }
        let holder = holder::of(&env.lock_file);
        waiting(&format!(
            "waiting up to {} for {} to release the lock on {}…",
            holder::duration(limit),
            holder::describe(holder.as_ref()),
            path.display()
        ));
        let deadline = Instant::now() + limit;
        let mut pause = Duration::from_millis(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let holder = holder::of(&env.lock_file).or(holder);
                return Err(EnvFileError::LockBusy {
                    path: path.to_path_buf(),
                    waited: holder::duration(limit),
                    holder: holder::describe(holder.as_ref()),
                });
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(100));
            if interrupted() {
                return Err(EnvFileError::Interrupted { path: path.to_path_buf() });
            }
            if env.try_lock(&lock_path)? {
                return Ok(env);
            }
        }
    }

    /// One non-blocking attempt at the `flock`: true when taken, false while another holds it.
    fn try_lock(&self, lock_path: &Path) -> Result<bool, EnvFileError> {
        match self.lock_file.try_lock() {
            Ok(()) => Ok(true),
            Err(fs::TryLockError::WouldBlock) => Ok(false),
            Err(fs::TryLockError::Error(error)) => Err(EnvFileError::Lock { path: lock_path.to_path_buf(), error }),
        }
    }

    /// Resolves the path and opens (creating if needed, 0600) the lock file, unlocked.
    fn open(path: &Path) -> Result<(Self, PathBuf), EnvFileError> {
        let (dir, name) = resolve(path)?;
        let target = dir.join(&name);
        let env_meta = fs::metadata(&target).ok();
        if let Some(meta) = &env_meta {
            check_file_type(meta, path)?;
        }
        let lock_path = sibling(&dir, &name, LOCK_SUFFIX);
        let lock_file = open_lock_file(&lock_path, path, env_meta.as_ref())?;
        Ok((Self { path: path.to_path_buf(), target, dir, name, lock_file }, lock_path))
    }

    /// The `.env` path as the user gave it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and parses the `.env`; `None` when it does not exist.
    pub fn read(&self) -> Result<Option<EnvFile>, EnvFileError> {
        read_from(&self.path, &self.target, true)
    }

    /// Reads and parses the `.env`, which must exist ([`EnvFileError::Missing`] otherwise): the
    /// read of every command that updates a stack's `.env` and never creates one.
    pub fn read_existing(&self) -> Result<EnvFile, EnvFileError> {
        self.read()?.ok_or_else(|| EnvFileError::Missing { path: self.path.clone() })
    }

    /// Replaces the `.env` with `file`: atomically, keeping its mode and owner (a new file is
    /// 0600), or in place when the `.env` is a mount point of its own (see
    /// [`LockedEnv::publish_pending`]: the complete contents wait in the pending file until the
    /// in-place write is on disk).
    ///
    /// This is the path of every writer other than the rotation itself, so it refuses while the
    /// pending file of an interrupted rotation exists: settling that rotation later would publish
    /// the pending file and undo this write. Temporary files left by a killed run are removed first.
    pub fn write(&self, file: &EnvFile) -> Result<(), EnvFileError> {
        self.refuse_while_pending()?;
        self.remove_leftover_temp_files()?;
        self.install(&file.render())
    }

    /// Writes `file`, made from `base` (the `.env` as read under this lock), onto the `.env` as
    /// it is now, as [`LockedEnv::write`] does. An editor takes no lock: a hand edit saved while
    /// the operator read the plan and answered would be lost by writing `file` over it. So when
    /// the `.env` changed since `base`, the keys `file` changes are applied to it as a rotation's
    /// are ([`LockedEnv::publish_pending`]); a key edited there too is
    /// [`EnvFileError::ChangedMeanwhile`], and nothing is changed.
    pub fn update(&self, base: &EnvFile, file: &EnvFile) -> Result<(), EnvFileError> {
        let Some(current) = self.read()? else {
            return self.write(file);
        };
        if current.render() == base.render() {
            return self.write(file);
        }
        match pending::apply(&current, file, &pending::record(base, file)) {
            Ok(merged) => self.write(&merged),
            Err(ApplyError::File(error)) => Err(error),
            Err(ApplyError::HandEdited(edits)) => {
                Err(EnvFileError::ChangedMeanwhile { path: self.path.clone(), edits })
            }
        }
    }

    /// Fails with [`EnvFileError::PendingRotation`] when anything is at the pending name.
    ///
    /// A pending file that only holds an in-place write interrupted half-way (any writer's, see
    /// [`LockedEnv::finish_interrupted_write`]) is no rotation: it is finished first, and the
    /// caller goes on with the `.env` as that write decided it.
    pub fn refuse_while_pending(&self) -> Result<(), EnvFileError> {
        if self.finish_interrupted_write()? {
            return Ok(());
        }
        let pending = self.pending_path();
        match fs::symlink_metadata(&pending) {
            Ok(_) => Err(EnvFileError::PendingRotation { path: self.path.clone(), pending }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(EnvFileError::Read { path: pending, error }),
        }
    }

    /// Finishes an in-place write that a killed run left half-done: when the pending file holds
    /// the complete contents it was writing (a `whole` record), they are written again and the
    /// pending file removed. True when it did; false (nothing done) for no pending file, one that
    /// cannot be read, or one
    /// of a rotation. Their contents were decided under the lock by the run that died, so no
    /// question is asked; a symlink or anything but a regular file there is left alone.
    pub fn finish_interrupted_write(&self) -> Result<bool, EnvFileError> {
        let pending = self.pending_path();
        match fs::symlink_metadata(&pending) {
            Ok(meta) if meta.is_file() => {}
            _ => return Ok(false),
        }
        // One that cannot be read is left to the caller's own handling of a pending file, which
        // reports it (a rotation's recovery, or the refusal of every other writer).
        let Ok(text) = read_text(&pending) else {
            return Ok(false);
        };
        if !matches!(pending::split(&text).0, Record::Whole) {
            return Ok(false);
        }
        self.publish_pending()?;
        Ok(true)
    }

    /// `<env>.pending`, beside the resolved `.env`.
    pub fn pending_path(&self) -> PathBuf {
        sibling(&self.dir, &self.name, PENDING_SUFFIX)
    }

    /// Stages `staged`, the new `.env` made from `base` (the `.env` as read under this lock), in
    /// the pending file (0600, atomically, fsync'd with its directory), so that a crash leaves
    /// either no pending file or a complete one, never a truncated one. The file records which
    /// keys `staged` changes, so that publishing applies them to the `.env` as it is then (see
    /// [`LockedEnv::publish_pending`]). Temporary files left by a killed run are removed first.
    pub fn stage(&self, base: &EnvFile, staged: &EnvFile) -> Result<(), EnvFileError> {
        self.remove_leftover_temp_files()?;
        let pending = self.pending_path();
        replace_file(&pending, &pending, pending::render_staged(base, staged).as_bytes(), self.pending_placement())
    }

    /// Mode 0600, and, for a run as root, the `.env`'s owner: a root-owned pending file would
    /// lock the `.env`'s owner out of settling an interrupted rotation (it could not read it).
    fn pending_placement(&self) -> Placement {
        match fs::metadata(&self.target) {
            Ok(meta) if rustix::process::geteuid().is_root() => Placement::PrivateOwnedBy(meta.uid(), meta.gid()),
            _ => Placement::Private,
        }
    }

    /// Reads and parses the pending file; `None` when there is none. A symlink or anything
    /// but a regular file at that name is refused, without following or opening it.
    pub fn read_pending(&self) -> Result<Option<EnvFile>, EnvFileError> {
        let pending = self.pending_path();
        read_from(&pending, &pending, false)
    }

    /// Publishes the pending file onto the `.env` as it is now, then removes it.
    ///
    /// The keys the staged rotation changes are applied to the current `.env` through the one
    /// rewriter, so a hand edit made since staging is kept; a rotated key edited by hand too is
    /// [`EnvFileError::HandEdited`], and nothing is changed. The result replaces the `.env`
    /// atomically with its mode and owner, or, when the `.env` is a mount point that refuses a
    /// rename (a single-file bind mount), is written in place: the pending file first becomes
    /// that exact content, so a crash during the (non-atomic) write leaves it to write again.
    /// The pending file is removed only once the `.env` is fsync'd. A symlink or anything but a
    /// regular file at the pending name is refused and left alone.
    pub fn publish_pending(&self) -> Result<(), EnvFileError> {
        let pending = self.pending_path();
        let text = read_text(&pending)?;
        let (record, body) = pending::split(&text);
        self.remove_leftover_temp_files()?;
        let contents = match record {
            // Decided by the run that began the write; the .env may be half-written.
            Record::Whole => Zeroizing::new(body.to_owned()),
            _ => {
                let staged = EnvFile::parse(body, Some(&pending))?;
                let current = self.read()?;
                let merged = match current.as_ref().map(|current| pending::apply(current, &staged, &record)) {
                    None => staged,
                    Some(Ok(merged)) => merged,
                    Some(Err(ApplyError::File(error))) => return Err(error),
                    Some(Err(ApplyError::HandEdited(edits))) => {
                        return Err(EnvFileError::HandEdited { path: self.path.clone(), pending, edits })
                    }
                };
                if current.is_some_and(|current| current.render() == merged.render()) {
                    // Already applied (a run that died after writing the .env): only the
                    // pending file is left to remove.
                    return self.discard_pending();
                }
                merged.render()
            }
        };
        self.install(&contents)?;
        self.discard_pending()
    }

    /// Replaces the `.env` with `contents`: atomically (keeping its mode and owner), or in place
    /// when it is a mount point or the rename is refused as busy.
    fn install(&self, contents: &str) -> Result<(), EnvFileError> {
        if self.publication()? == Publication::InPlace {
            return self.write_in_place(contents);
        }
        match replace_file(&self.target, &self.path, contents.as_bytes(), Placement::KeepModeAndOwner) {
            Err(EnvFileError::Write { error, .. }) if error.raw_os_error() == Some(Errno::BUSY.raw_os_error()) => {
                self.write_in_place(contents)
            }
            other => other,
        }
    }

    /// The in-place write of a `.env` that cannot be renamed over: the pending file first holds
    /// exactly `contents` (marked as such), then the `.env` is overwritten and fsync'd.
    fn write_in_place(&self, contents: &str) -> Result<(), EnvFileError> {
        let pending = self.pending_path();
        replace_file(&pending, &pending, pending::render_whole(contents).as_bytes(), self.pending_placement())?;
        overwrite_in_place(&self.target, &self.path, contents.as_bytes())?;
        self.discard_pending()
    }

    /// How a new `.env` will be put in place: renamed over it, or written into it when it is a
    /// mount point of its own (a rename over it fails with EBUSY).
    pub fn publication(&self) -> Result<Publication, EnvFileError> {
        match is_mount_point(&self.target, &self.dir) {
            Ok(true) => Ok(Publication::InPlace),
            Ok(false) => Ok(Publication::Rename),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Publication::Rename),
            Err(error) => Err(EnvFileError::Read { path: self.path.clone(), error }),
        }
    }

    /// Deletes the pending file, if any, durably. Only the name is removed: a symlink there is
    /// not followed.
    pub fn discard_pending(&self) -> Result<(), EnvFileError> {
        let pending = self.pending_path();
        match fs::remove_file(&pending) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(EnvFileError::Write { path: pending, error }),
        }
        sync_dir(&self.dir).map_err(|error| EnvFileError::SyncDir { path: pending, error })
    }

    /// Removes the temporary files a killed run left beside the `.env` (each holds a copy of
    /// every secret of the file) and returns their paths. Safe under the lock: every writer of
    /// this `.env` holds it while its own temporary file exists.
    pub fn remove_leftover_temp_files(&self) -> Result<Vec<PathBuf>, EnvFileError> {
        let found = leftover_temp_files(&self.dir, &self.name)
            .map_err(|error| EnvFileError::Read { path: self.dir.clone(), error })?;
        for path in &found {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(EnvFileError::Write { path: path.clone(), error }),
            }
        }
        if !found.is_empty() {
            sync_dir(&self.dir).map_err(|error| EnvFileError::SyncDir { path: self.path.clone(), error })?;
        }
        Ok(found)
    }

    /// Checks, before a rotation's `BEGIN`, that its pending file can later be published onto
    /// the `.env`, and says how ([`Publication`]): neither the `.env` nor its directory is
    /// immutable or append-only (`chattr +i` / `+a`); for a rename, a file created in the
    /// directory can be given the `.env`'s owner and mode (the check makes the same calls: it
    /// creates a temporary file beside the `.env`, gives it the owner and mode, and removes it,
    /// so it is not for `--dry-run`); for a `.env` that is a mount point (written in place),
    /// that it opens for writing. Whatever it finds, nothing else is changed.
    pub fn ensure_publishable(&self) -> Result<Publication, EnvFileError> {
        let original = match fs::symlink_metadata(&self.target) {
            Ok(meta) => {
                check_file_type(&meta, &self.path)?;
                Some(meta)
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(EnvFileError::Read { path: self.path.clone(), error }),
        };
        refuse_unreplaceable_flags(&self.dir, &self.dir, true)?;
        if original.is_some() {
            refuse_unreplaceable_flags(&self.target, &self.path, false)?;
        }
        let publication = self.publication()?;
        match publication {
            Publication::InPlace => open_for_overwrite(&self.target, &self.path).map(drop)?,
            Publication::Rename => try_install_probe(&self.target, &self.path, original.as_ref())?,
        }
        Ok(publication)
    }
}

/// How a rotation's new `.env` is put in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publication {
    /// A new file renamed over the `.env` (atomic).
    Rename,
    /// Written into the `.env` itself: it is a mount point of its own (a single-file bind mount,
    /// as in a container), which refuses a rename.
    InPlace,
}

/// The whole text of the pending file at `pending`, in a buffer zeroed when dropped; never
/// through a symlink, only from a regular file.
fn read_text(pending: &Path) -> Result<Zeroizing<String>, EnvFileError> {
    let mut file = open_regular(pending, pending, false)?
        .ok_or_else(|| EnvFileError::NoPending { path: pending.to_path_buf() })?;
    let read_error = |error: io::Error| EnvFileError::Read { path: pending.to_path_buf(), error };
    let len = file.metadata().map_err(read_error)?.len();
    let mut bytes = Zeroizing::new(Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1)));
    file.read_to_end(&mut bytes).map_err(read_error)?;
    let text = std::str::from_utf8(&bytes).map_err(|error| EnvFileError::NotUtf8 {
        path: pending.to_path_buf(),
        line: 1 + bytes[..error.valid_up_to()].iter().filter(|&&b| b == b'\n').count(),
    })?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Fails when `path` carries the immutable or append-only inode flag (either forbids renaming
/// over a file, and creating or removing names in a directory). Filesystems without inode flags
/// have neither.
fn refuse_unreplaceable_flags(path: &Path, shown: &Path, is_dir: bool) -> Result<(), EnvFileError> {
    let file = if is_dir {
        File::open(path).map_err(|error| EnvFileError::Write { path: shown.to_path_buf(), error })?
    } else {
        match open_regular(path, shown, false)? {
            Some(file) => file,
            None => return Ok(()),
        }
    };
    let flags = match rustix::fs::ioctl_getflags(&file) {
        Ok(flags) => flags,
        // No inode flags on this filesystem (ENOTTY, EOPNOTSUPP, ...): nothing can be set.
        Err(_) => return Ok(()),
    };
    let unreplaceable = |flag, letter| Err(EnvFileError::Unreplaceable { path: shown.to_path_buf(), flag, letter });
    if flags.contains(IFlags::IMMUTABLE) {
        return unreplaceable("immutable", 'i');
    }
    if flags.contains(IFlags::APPEND) {
        return unreplaceable("append-only", 'a');
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::Permissions;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::super::test_util::{bypasses_permissions, current, dir_names, is_root, mode_of, parse, skipped};

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
        env.stage(&current(&env), &file).expect("stage");
        assert_eq!(mode_of(&env.pending_path()), 0o600);
        if is_root() {
            let meta = fs::metadata(env.pending_path()).expect("metadata");
            assert_eq!((meta.uid(), meta.gid()), (1234, 5678), "a root run stages for the .env's owner");
        }
        let pending = env.read_pending().expect("read").expect("staged");
        assert_eq!(pending.get("POSTGRES_PASSWORD"), Some("new"));
        env.discard_pending().expect("discard");
        assert!(env.read_pending().expect("read").is_none());
        assert_eq!(fs::read_to_string(&path).expect("read"), "# keep\nPOSTGRES_PASSWORD=old\n");

        env.stage(&current(&env), &file).expect("stage");
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
    fn an_interrupted_in_place_write_is_finished_from_the_whole_pending_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        // What a crash half-way through writing a bind-mounted .env in place leaves: the pending
        // file holds the whole new content, the .env a torn mix that may not even parse.
        fs::write(&path, "POSTGRES_PASSWORD=new\nSMTP_PASS='unterminated").expect("write");
        let whole = "# keep\nPOSTGRES_PASSWORD=new\nSMTP_PASS='by hand'\n";
        fs::write(dir.path().join(".env.pending"), &*super::pending::render_whole(whole)).expect("write");
        let env = LockedEnv::acquire(&path).expect("lock");
        env.publish_pending().expect("publish");
        assert_eq!(fs::read_to_string(&path).expect("read"), whole);
        assert!(env.read_pending().expect("read").is_none());
    }

    #[test]
    fn every_writer_finishes_an_interrupted_in_place_write_before_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        fs::write(&path, "A=1\nB='torn").expect("write");
        fs::write(dir.path().join(".env.pending"), &*super::pending::render_whole("A=1\nB=2\n")).expect("write");
        let env = LockedEnv::acquire(&path).expect("lock");
        env.refuse_while_pending().expect("an interrupted write is no rotation");
        assert_eq!(fs::read_to_string(&path).expect("read"), "A=1\nB=2\n");
        assert!(!env.finish_interrupted_write().expect("nothing left"));
        // A rotation's pending file is not touched: the writer is refused.
        env.stage(&current(&env), &parse("A=9\nB=2\n")).expect("stage");
        assert!(!env.finish_interrupted_write().expect("a rotation"));
        assert!(matches!(env.refuse_while_pending(), Err(EnvFileError::PendingRotation { .. })));
        assert_eq!(fs::read_to_string(&path).expect("read"), "A=1\nB=2\n");
    }

    #[test]
    fn publishing_applies_the_staged_keys_to_the_env_as_it_is_now() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        fs::write(&path, "POSTGRES_PASSWORD=old\nSMTP_PASS=a\n").expect("write");
        let env = LockedEnv::acquire(&path).expect("lock");
        env.stage(&current(&env), &parse("POSTGRES_PASSWORD=new\nSMTP_PASS=a\n")).expect("stage");
        fs::write(&path, "POSTGRES_PASSWORD=old\nSMTP_PASS=b\nSITE_URL=x\n").expect("hand edit");
        env.publish_pending().expect("publish");
        assert_eq!(fs::read_to_string(&path).expect("read"), "POSTGRES_PASSWORD=new\nSMTP_PASS=b\nSITE_URL=x\n");
        assert_eq!(dir_names(dir.path()), [".env", ".env.lock"]);

        // A rotated key edited by hand: refused, both files byte-identical.
        env.stage(&current(&env), &parse("POSTGRES_PASSWORD=newer\nSMTP_PASS=b\nSITE_URL=x\n")).expect("stage");
        let pending = fs::read(env.pending_path()).expect("read");
        fs::write(&path, "SITE_URL=x\nPOSTGRES_PASSWORD=mine\n").expect("hand edit");
        let error = env.publish_pending().expect_err("conflict");
        assert!(matches!(error, EnvFileError::HandEdited { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("POSTGRES_PASSWORD (line 2)") && !message.contains("mine"), "{message}");
        assert_eq!(fs::read_to_string(&path).expect("read"), "SITE_URL=x\nPOSTGRES_PASSWORD=mine\n");
        assert_eq!(fs::read(env.pending_path()).expect("read"), pending);
    }

    #[test]
    fn a_pending_rotation_blocks_every_other_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        fs::write(&path, "POSTGRES_PASSWORD=old\nJWT_SECRET=a\n").expect("write");
        let env = LockedEnv::acquire(&path).expect("lock");
        env.stage(&current(&env), &parse("POSTGRES_PASSWORD=new\nJWT_SECRET=a\n")).expect("stage");
        let error = env.write(&parse("POSTGRES_PASSWORD=old\nJWT_SECRET=b\n")).expect_err("pending");
        assert!(matches!(error, EnvFileError::PendingRotation { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(".env.pending") && message.contains("rotate-passwords --env-file"), "{message}");
        assert!(message.contains("nothing was changed"), "{message}");
        assert_eq!(fs::read_to_string(&path).expect("read"), "POSTGRES_PASSWORD=old\nJWT_SECRET=a\n");
        // The rotation's own path still works, and once settled the writer may go on.
        env.discard_pending().expect("discard");
        env.write(&parse("POSTGRES_PASSWORD=old\nJWT_SECRET=b\n")).expect("write");
    }

    #[test]
    fn temporary_files_of_a_killed_run_are_found_and_removed_under_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        fs::write(&path, "A=1\n").expect("write");
        let leftovers = ["..env.Ab3xY9.tmp", "..env.pending.q1W2e3.tmp"];
        let lookalikes = ["..env.short.tmp", "..env.Ab3xY9.tmp.bak", ".other.env.Ab3xY9.tmp", "..env.Ab-xY9.tmp"];
        let plant = || {
            for name in leftovers.iter().chain(&lookalikes) {
                fs::write(dir.path().join(name), "A=s3cr3t\n").expect("write");
            }
        };
        plant();
        let found = super::super::leftover_temp_files(&path).expect("list");
        assert_eq!(found, leftovers.map(|name| dir.path().join(name)));

        let env = LockedEnv::acquire(&path).expect("lock");
        env.write(&parse("A=2\n")).expect("write");
        let mut expected = vec![".env", ".env.lock"];
        expected.extend(lookalikes);
        expected.sort();
        assert_eq!(dir_names(dir.path()), expected);

        // Staging and publishing remove them too.
        plant();
        env.stage(&current(&env), &parse("A=3\n")).expect("stage");
        assert!(super::super::leftover_temp_files(&path).expect("list").is_empty());
        plant();
        env.publish_pending().expect("publish");
        assert!(super::super::leftover_temp_files(&path).expect("list").is_empty());
        assert_eq!(fs::read_to_string(&path).expect("read"), "A=3\n");
    }

    #[test]
    fn a_fifo_at_the_pending_name_is_refused_without_hanging() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        fs::write(&path, "A=1\n").expect("write");
        let pending = dir.path().join(".env.pending");
        if !std::process::Command::new("mkfifo").arg(&pending).status().is_ok_and(|s| s.success()) {
            skipped("mkfifo is not available");
            return;
        }
        // Without O_NONBLOCK the open waits for a writer that never comes: run it on a thread.
        let (sender, receiver) = std::sync::mpsc::channel();
        let env_path = path.clone();
        std::thread::spawn(move || {
            let env = LockedEnv::acquire(&env_path).expect("lock");
            let read = env.read_pending().map(|_| ()).map_err(|e| e.to_string());
            let publish = env.publish_pending().map_err(|e| e.to_string());
            let _ = sender.send((read, publish));
        });
        let (read, publish) =
            receiver.recv_timeout(std::time::Duration::from_secs(10)).expect("opening a FIFO must not hang");
        let read = read.expect_err("a FIFO is not a pending file");
        assert!(read.contains(".env.pending") && read.contains("not a regular file"), "{read}");
        let publish = publish.expect_err("a FIFO is never published");
        assert!(publish.contains(".env.pending") && publish.contains("not a regular file"), "{publish}");
        assert_eq!(fs::read_to_string(&path).expect("read"), "A=1\n");
        assert!(fs::metadata(&path).expect("stat").is_file());
    }

    #[test]
    fn symlinks_at_the_lock_and_pending_names_are_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        fs::write(&path, "A=1\n").expect("write");

        // A dangling lock symlink: refused, and nothing is created at its target.
        let lock_target = dir.path().join("planted-by-someone");
        std::os::unix::fs::symlink(&lock_target, dir.path().join(".env.lock")).expect("symlink");
        let error = LockedEnv::acquire(&path).expect_err("lock symlink");
        assert!(matches!(error, EnvFileError::Symlink { .. }), "{error:?}");
        assert!(error.to_string().contains(".env.lock") && error.to_string().contains("symbolic link"), "{error}");
        assert!(fs::symlink_metadata(&lock_target).is_err(), "the lock symlink was followed");
        let error = LockedEnv::try_acquire(&path).expect_err("lock symlink");
        assert!(matches!(error, EnvFileError::Symlink { .. }), "{error:?}");
        fs::remove_file(dir.path().join(".env.lock")).expect("rm");

        // A pending symlink to a foreign file: never read, never published, never replaced.
        let foreign = dir.path().join("foreign");
        fs::write(&foreign, "POSTGRES_PASSWORD=theirs\n").expect("write");
        fs::set_permissions(&foreign, Permissions::from_mode(0o644)).expect("chmod");
        std::os::unix::fs::symlink(&foreign, dir.path().join(".env.pending")).expect("symlink");
        let env = LockedEnv::acquire(&path).expect("lock");
        for (what, result) in [
            ("read", env.read_pending().map(|_| ())),
            ("publish", env.publish_pending()),
            ("stage", env.stage(&current(&env), &parse("A=2\n"))),
        ] {
            let error = result.expect_err(what);
            assert!(matches!(error, EnvFileError::Symlink { .. }), "{what}: {error:?}");
            assert!(error.to_string().contains(".env.pending"), "{what}: {error}");
        }
        assert!(matches!(env.write(&parse("A=2\n")), Err(EnvFileError::PendingRotation { .. })));
        assert!(fs::symlink_metadata(&path).expect("lstat").is_file(), ".env became a symlink");
        assert_eq!(fs::read_to_string(&path).expect("read"), "A=1\n");
        assert_eq!(fs::read_to_string(&foreign).expect("read"), "POSTGRES_PASSWORD=theirs\n");
        assert_eq!(mode_of(&foreign), 0o644);
        // Discarding removes the name only.
        env.discard_pending().expect("discard");
        assert!(foreign.exists());
    }

    #[test]
    fn ensure_publishable_passes_on_an_ordinary_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        let env = LockedEnv::acquire(&path).expect("lock");
        env.ensure_publishable().expect("no .env yet");
        fs::write(&path, "A=1\n").expect("write");
        fs::set_permissions(&path, Permissions::from_mode(0o640)).expect("chmod");
        if is_root() {
            std::os::unix::fs::chown(&path, Some(1234), Some(5678)).expect("chown");
        }
        env.ensure_publishable().expect("publishable");
        assert_eq!(dir_names(dir.path()), [".env", ".env.lock"]);
        assert_eq!(mode_of(&path), 0o640);
    }

    #[test]
    fn ensure_publishable_refuses_a_directory_it_cannot_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        if bypasses_permissions(dir.path()) {
            skipped(
                "this process bypasses file \
                 permissions (root); the chattr test covers root",
            );
            return;
        }
        let path = dir.path().join(".env");
        fs::write(&path, "A=1\n").expect("write");
        let env = LockedEnv::acquire(&path).expect("lock");
        fs::set_permissions(dir.path(), Permissions::from_mode(0o555)).expect("chmod");
        let result = env.ensure_publishable();
        fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).expect("chmod");
        let error = result.expect_err("read-only directory");
        assert!(error.to_string().contains(".env"), "{error}");
    }

    #[test]
    fn ensure_publishable_refuses_a_file_it_could_not_give_away() {
        let dir = tempfile::tempdir().expect("tempdir");
        if is_root() {
            skipped("root may give any file away");
            return;
        }
        let path = dir.path().join(".env");
        fs::write(&path, "A=1\n").expect("write");
        let env = LockedEnv::acquire(&path).expect("lock");
        // A group we are not in: fchown of our probe to it fails, as publishing would.
        let meta = fs::metadata(&path).expect("stat");
        if std::os::unix::fs::chown(&path, None, Some(0)).is_ok() && meta.gid() != 0 {
            let error = env.ensure_publishable().expect_err("foreign group");
            assert!(matches!(error, EnvFileError::Owner { .. }), "{error:?}");
        } else {
            skipped("cannot set up a foreign group");
        }
    }

    /// `chattr +<flag>` on `path`; false (with a SKIPPED line) when the tool or filesystem refuses.
    fn chattr(flag: &str, path: &Path) -> bool {
        let ok = std::process::Command::new("chattr")
            .arg(flag)
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !ok {
            skipped(&format!("`chattr {flag}` is not available here (needs root and a filesystem with inode flags)"));
        }
        ok
    }

    #[test]
    fn ensure_publishable_refuses_an_immutable_or_append_only_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        fs::write(&path, "A=1\n").expect("write");
        let env = LockedEnv::acquire(&path).expect("lock");
        for (flag, word) in [("i", "immutable"), ("a", "append-only")] {
            if !chattr(&format!("+{flag}"), &path) {
                return;
            }
            let result = env.ensure_publishable();
            // What publishing would meet after COMMIT:
            env.stage(&current(&env), &parse("A=2\n")).expect("stage");
            let publish = env.publish_pending();
            chattr(&format!("-{flag}"), &path);
            let error = result.expect_err(word);
            assert!(matches!(error, EnvFileError::Unreplaceable { .. }), "{error:?}");
            let message = error.to_string();
            assert!(message.contains(".env") && message.contains(word), "{message}");
            assert!(message.contains(&format!("chattr -{flag}")), "{message}");
            assert!(publish.is_err(), "+{flag} let the publication through, so the check would be pointless");
            env.discard_pending().expect("discard");
        }
        // The directory itself.
        if !chattr("+i", dir.path()) {
            return;
        }
        let result = env.ensure_publishable();
        chattr("-i", dir.path());
        let error = result.expect_err("immutable directory");
        assert!(matches!(error, EnvFileError::Unreplaceable { flag: "immutable", .. }), "{error:?}");
        assert_eq!(dir_names(dir.path()), [".env", ".env.lock"]);
    }
}
