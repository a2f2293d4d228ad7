//! Crash points for tests: `PMOVES_SECRETS_CRASH_AT=<step>` aborts the process at that step, so
//! the integration tests can prove crash safety (SPEC §2).
//!
//! They exist only in builds with debug assertions (the dev and test profiles the test suite
//! runs). In a release build the variable is never read and [`at`] does nothing: an operator's
//! environment must not be able to make the released binary abort mid-rotation.

use crate::error::Result;

/// Where a test asked the process to die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After the pending file is staged, before `BEGIN`.
    Staged,
    /// Between two `COMMIT`s of a run with one transaction per database (`rotate-secrets`): the
    /// first database committed, the next has not.
    BetweenCommits,
    /// After `COMMIT`, before the pending file is published.
    Committed,
    /// After publishing, before verification.
    Published,
}

impl CrashPoint {
    /// The crash point the environment asks for (test builds only).
    #[cfg(debug_assertions)]
    pub fn from_env() -> Result<Option<Self>> {
        const CRASH_VAR: &str = "PMOVES_SECRETS_CRASH_AT";
        match std::env::var(CRASH_VAR).ok().as_deref() {
            None | Some("") => Ok(None),
            Some("after-stage") => Ok(Some(CrashPoint::Staged)),
            Some("between-commits") => Ok(Some(CrashPoint::BetweenCommits)),
            Some("after-commit") => Ok(Some(CrashPoint::Committed)),
            Some("after-publish") => Ok(Some(CrashPoint::Published)),
            Some(other) => Err(crate::error::Error::Usage(format!(
                "{CRASH_VAR}='{other}' is not one of after-stage, between-commits, after-commit, after-publish"
            ))),
        }
    }

    /// Release builds have no crash points.
    #[cfg(not(debug_assertions))]
    pub fn from_env() -> Result<Option<Self>> {
        Ok(None)
    }
}

/// Aborts the process (no destructors, no cleanup) when `at` is the requested crash point.
pub fn at(requested: Option<CrashPoint>, at: CrashPoint) {
    if cfg!(debug_assertions) && requested == Some(at) {
        std::process::abort();
    }
}
