//! Protections of the process itself: it holds the stack's passwords in memory, old and new, so
//! it must never leave a copy in a core file or let another process of the same user read it.

use rustix::process::{set_dumpable_behavior, setrlimit, DumpableBehavior, Resource, Rlimit};

/// Makes the process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`: no core file, no ptrace attach
/// or `/proc/<pid>/mem` by other processes of the same user) and sets `RLIMIT_CORE` to 0, soft
/// and hard, so no core file is written even where the dumpable flag is ignored (a
/// `suid_dumpable` setting, a crash before the flag). Called first thing in `main`.
///
/// Neither call can fail for these arguments on Linux (0 is a valid `PR_SET_DUMPABLE` value, and
/// lowering a limit is always allowed), so an error is ignored rather than stopping the tool.
pub fn forbid_core_dumps() {
    let _ = set_dumpable_behavior(DumpableBehavior::NotDumpable);
    let _ = setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) });
}
