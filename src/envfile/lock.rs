//! [`LockedEnv`]: the exclusive lock that keeps two writers of one `.env` apart, and the pending
//! file that a rotation stages before it touches the database (SPEC §2, crash safety).
//!
//! The lock is held from reading `.env` to writing it, so a read-modify-write cannot lose another
//! writer's update, and the pending file is only created, published or discarded under it.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::atomic::{atomic_write, set_owner, sync_dir, Mode, PRIVATE_MODE};
use super::path::{check_file_type, resolve_symlinks, sibling, split};
use super::{read_optional, EnvFile, EnvFileError};

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

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::test_util::{dir_names, is_root, mode_of};

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
}
