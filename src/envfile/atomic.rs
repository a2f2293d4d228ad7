//! Replacing a file so that a crash leaves the old file or the new one, never a mix: a temporary
//! file beside it is written, given its mode and owner, fsync'd and renamed over it, then the
//! directory is fsync'd. Also [`create_new`] (`--output FILE`), which never clobbers a file it was
//! not told to replace.

use std::ffi::OsStr;
use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::path::{check_file_type, resolve_symlinks, split};
use super::EnvFileError;

/// Mode of every file we create: `.env` files hold secrets.
pub(super) const PRIVATE_MODE: u32 = 0o600;

/// How a replacement file gets its mode and owner.
#[derive(Clone, Copy)]
pub(super) enum Mode {
    /// The replaced file's mode and owner; 0600 and our own for a new file.
    KeepOriginal,
    /// 0600 and our own, whatever was there.
    Private,
}

/// Replaces `target` atomically with `contents`: a temporary file beside it (so the rename stays
/// on one filesystem), written, given its mode and owner, fsync'd, renamed over `target`, then
/// the directory fsync'd so the rename itself is durable. On any failure before the rename the
/// temporary file is removed (tempfile's drop) and `target` is untouched. Messages name `shown`.
pub(super) fn atomic_write(target: &Path, shown: &Path, contents: &[u8], mode: Mode) -> Result<(), EnvFileError> {
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
pub(super) fn set_owner(file: &File, uid: u32, gid: u32) -> io::Result<()> {
    let meta = file.metadata()?;
    if meta.uid() == uid && meta.gid() == gid {
        return Ok(());
    }
    std::os::unix::fs::fchown(file, Some(uid), Some(gid))
}

/// Makes a rename or removal in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
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

    use super::super::test_util::{bypasses_permissions, dir_names, is_root, mode_of, parse};
    use super::super::LockedEnv;

    thread_local! {
        /// The `fail_point` that should fail on this thread (tests run on separate threads).
        pub(super) static FAIL_AT: Cell<Option<&'static str>> = const { Cell::new(None) };
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
}
