//! The file itself rather than its values: who may read it, and whether a rotation left its
//! pending file or a killed write its temporary files behind.
//!
//! Both look at the filesystem, so they run in [`run`](super::run) beside the value rules
//! instead of in [`audit_values`](super::audit_values).

use std::path::Path;

use super::{Code, Finding};
use crate::envfile;
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

/// A pending file means a rotation stopped half-way: the database may already hold the
/// password that only that file knows. Its name comes from `envfile`, which stages it.
pub(super) fn pending_rotation(path: &Path) -> Option<Finding> {
    let pending = envfile::pending_path(path).ok()?;
    std::fs::symlink_metadata(&pending).ok()?;
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

/// Temporary files a killed write left beside the `.env`: each holds a copy of its secrets.
/// The next locked write removes them; until then, `check` says where they are.
pub(super) fn leftover_temp_files(path: &Path) -> Vec<Finding> {
    let found = envfile::leftover_temp_files(path).unwrap_or_default();
    found
        .iter()
        .map(|temp| {
            Finding::new(
                Code::LeftoverTempFile,
                None,
                format!(
                    "{} is a temporary copy of the .env left by an interrupted write and holds its secrets; \
                     delete it (`rm {}`; the next generate-keys --env-file or rotate-passwords removes it too)",
                    temp.display(),
                    temp.display()
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_path_is_envfiles() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = dir.path().join("prod.env");
        assert!(pending_rotation(&env).is_none());
        std::fs::write(dir.path().join("prod.env.pending"), "A=1\n").expect("write");
        let finding = pending_rotation(&env).expect("a finding");
        assert_eq!(finding.code, Code::PendingRotation);
        assert!(finding.message.contains("prod.env.pending"), "{}", finding.message);
    }

    #[test]
    fn leftover_temp_files_are_each_a_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = dir.path().join(".env");
        std::fs::write(&env, "A=1\n").expect("write");
        assert!(leftover_temp_files(&env).is_empty());
        for name in ["..env.Ab3xY9.tmp", "..env.pending.q1W2e3.tmp", "..env.short.tmp", ".other.Ab3xY9.tmp"] {
            std::fs::write(dir.path().join(name), "A=s3cr3t\n").expect("write");
        }
        let findings = leftover_temp_files(&env);
        let messages: Vec<_> = findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(findings.len(), 2, "{messages:?}");
        assert!(findings
            .iter()
            .all(|f| f.code == Code::LeftoverTempFile && f.severity == super::super::Severity::Warning));
        assert!(messages[0].contains("..env.Ab3xY9.tmp") && messages[1].contains("..env.pending.q1W2e3.tmp"));
    }
}
