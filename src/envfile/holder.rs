//! Who holds the lock on a `.env`: an operator told "waiting" wants to know for what.
//!
//! The kernel lists every `flock` in `/proc/locks` with the pid of the process that took it and
//! the device and inode of the locked file; the command name comes from `/proc/<pid>/comm`.
//! Either may be unreadable (another pid namespace, a hardened `/proc`): then the holder is
//! "another process". Only the short command name is read, never the command line, which may
//! hold a `--db-url` with a password.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

/// At most this much of `/proc/locks` is read (one line per lock on the whole machine).
const LOCKS_READ_LIMIT: u64 = 4 << 20;
/// `/proc/<pid>/comm` holds at most 16 bytes; anything longer is not a command name.
const COMM_READ_LIMIT: u64 = 64;

/// The process holding an `flock` on a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pid: u32,
    /// Its command name, control characters replaced, when readable.
    command: Option<String>,
}

/// The holder of the `flock` on `file`, when `/proc` tells.
pub fn of(file: &File) -> Option<Holder> {
    let meta = file.metadata().ok()?;
    let id = format!("{:02x}:{:02x}:{}", rustix::fs::major(meta.dev()), rustix::fs::minor(meta.dev()), meta.ino());
    let locks = read_bounded("/proc/locks", LOCKS_READ_LIMIT)?;
    let pid = pid_holding(&locks, &id)?;
    Some(Holder { pid, command: command_name(pid) })
}

/// In `/proc/locks` text, the pid of the granted `FLOCK` on the file `id` (`major:minor:inode`,
/// as the kernel prints it). Lines of processes still waiting (`->`) are skipped.
fn pid_holding(locks: &str, id: &str) -> Option<u32> {
    locks.lines().find_map(|line| {
        let mut fields = line.split_whitespace().skip(1);
        if fields.next()? != "FLOCK" {
            return None;
        }
        let pid = fields.nth(2)?.parse::<u32>().ok().filter(|&pid| pid > 0)?;
        (fields.next()? == id).then_some(pid)
    })
}

/// `/proc/<pid>/comm`, with anything that is not a printable character replaced by `?`.
fn command_name(pid: u32) -> Option<String> {
    let text = read_bounded(&format!("/proc/{pid}/comm"), COMM_READ_LIMIT)?;
    let name: String = text.trim_end_matches('\n').chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    (!name.is_empty()).then_some(name)
}

fn read_bounded(path: &str, limit: u64) -> Option<String> {
    let mut text = String::new();
    File::open(path).ok()?.take(limit).read_to_string(&mut text).ok()?;
    Some(text)
}

/// "process 1234 (pmoves-secrets)", or "another process" when `/proc` did not tell.
pub fn describe(holder: Option<&Holder>) -> String {
    match holder {
        Some(Holder { pid, command: Some(command) }) => format!("process {pid} ({command})"),
        Some(Holder { pid, command: None }) => format!("process {pid}"),
        None => "another process".to_owned(),
    }
}

/// A wait as an operator reads it: `30 s`, `1.5 s`, `200 ms`.
pub fn duration(wait: Duration) -> String {
    let ms = wait.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", wait.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_granted_flock_on_the_file_is_found_and_waiters_are_skipped() {
        let locks = "1: POSIX  ADVISORY  WRITE 77 fe:00:42 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 4321 fe:00:42 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 999 fe:00:42 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 555 fe:00:4242 0 EOF\n";
        assert_eq!(pid_holding(locks, "fe:00:42"), Some(4321));
        assert_eq!(pid_holding(locks, "fe:00:4242"), Some(555));
        assert_eq!(pid_holding(locks, "fe:01:42"), None);
        assert_eq!(pid_holding("", "fe:00:42"), None);
    }

    #[test]
    fn the_holder_of_a_real_lock_is_this_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = File::create(dir.path().join("lock")).expect("create");
        file.lock().expect("lock");
        let Some(holder) = of(&file) else {
            crate::envfile::test_util::skipped("/proc/locks is not readable here");
            return;
        };
        assert_eq!(holder.pid, std::process::id());
        assert!(describe(Some(&holder)).starts_with(&format!("process {} (", std::process::id())));
    }

    #[test]
    fn descriptions_and_durations() {
        let holder = Holder { pid: 7, command: Some("vi".into()) };
        assert_eq!(describe(Some(&holder)), "process 7 (vi)");
        assert_eq!(describe(Some(&Holder { pid: 7, command: None })), "process 7");
        assert_eq!(describe(None), "another process");
        assert_eq!(duration(Duration::from_secs(30)), "30 s");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(duration(Duration::from_millis(200)), "200 ms");
    }
}
