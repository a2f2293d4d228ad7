//! The file itself rather than its values: who may read it, and whether a rotation left its
//! pending file behind.
//!
//! Both look at the filesystem, so they run in [`run`](super::run) beside the value rules
//! instead of in [`audit_values`](super::audit_values).

use std::path::{Path, PathBuf};

use super::{Code, Finding};
use crate::error::{Error, Result};

/// The file's mode: the `.env` holds every secret of the stack, so only its owner may read it.
pub(super) fn file_permissions(path: &Path) -> Result<Option<Finding>> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .map_err(|e| Error::Io { action: "read the mode of", path: path.to_owned(), reason: e.to_string() })?
        .permissions()
        .mode();
    let access = match (mode & 0o044 != 0, mode & 0o022 != 0) {
        (true, true) => "readable and writable",
        (true, false) => "readable",
        (false, true) => "writable",
        (false, false) => return Ok(None),
    };
    Ok(Some(Finding::new(
        Code::FilePermissions,
        None,
        format!(
            "{} is {access} by group or others (mode {:04o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o7777,
            path.display()
        ),
    )))
}

/// `<env>.pending`, where `rotate-passwords` stages the new `.env` (SPEC §2).
fn pending_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".pending");
    path.with_file_name(name)
}

/// A pending file means a rotation stopped half-way: the database may already hold the
/// password that only that file knows.
///
/// `rotate-passwords` stages beside the symlink-resolved `.env`, so both places are looked at.
pub(super) fn pending_rotation(path: &Path) -> Option<Finding> {
    let beside_link = pending_path(path);
    let beside_target = std::fs::canonicalize(path).ok().map(|target| pending_path(&target));
    let pending = std::iter::once(beside_link)
        .chain(beside_target)
        .find(|candidate| std::fs::symlink_metadata(candidate).is_ok())?;
    Some(Finding::new(
        Code::PendingRotation,
        None,
        format!(
            "{} is left from an interrupted rotation; the database may accept only the password in it. Run \
             `pmoves-secrets rotate-passwords --env-file {}` to resolve it (it finds out which password the database \
             accepts and finishes or discards the rotation)",
            pending.display(),
            path.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_path_appends_to_the_file_name() {
        assert_eq!(pending_path(Path::new("/s/.env")), Path::new("/s/.env.pending"));
        assert_eq!(pending_path(Path::new("prod.env")), Path::new("prod.env.pending"));
    }
}
