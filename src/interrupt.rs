//! Ctrl-C and SIGTERM while the tool is waiting on someone: at a prompt, for a lock, during the
//! rotation's transaction.
//!
//! Everywhere else the signals keep their default action (the process ends at once, as any
//! command-line tool does). While a [`Shield`] is held they are caught instead: the waiting code
//! sees [`requested`] turn true, stops, and the command ends with [`crate::error::Error::Interrupted`]
//! — one plain sentence and exit 130, the shell's own code for Ctrl-C (128 + SIGINT). Nothing is
//! changed by then; a step that must finish once started (publishing after `COMMIT`) holds no
//! shield, and the rotation's transaction rolls back on its own when it sees the flag.
//!
//! The handlers are signal-hook's flag actions (an atomic store, nothing else in the handler),
//! registered once, beside tokio's own listeners (both go through signal-hook-registry, so each
//! sees every signal).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};

/// The signals that end a wait: Ctrl-C, and the polite termination of `kill` and of service
/// managers.
const SIGNALS: [i32; 2] = [SIGINT, SIGTERM];

struct Flags {
    /// Set by the handler when a signal arrives while shielded.
    requested: Arc<AtomicBool>,
    /// True while no shield is held: the handler then runs the signal's default action.
    default_action: Arc<AtomicBool>,
    /// How many shields are held.
    shields: Mutex<usize>,
}

static FLAGS: OnceLock<Option<Flags>> = OnceLock::new();

/// The process-wide flags, with their handlers registered on first use; `None` if registering
/// failed (then the signals keep their default action: the process ends, which is safe wherever
/// a shield is asked for, since nothing has changed yet).
fn flags() -> Option<&'static Flags> {
    FLAGS
        .get_or_init(|| {
            let flags = Flags {
                requested: Arc::new(AtomicBool::new(false)),
                default_action: Arc::new(AtomicBool::new(true)),
                shields: Mutex::new(0),
            };
            for signal in SIGNALS {
                signal_hook::flag::register_conditional_default(signal, Arc::clone(&flags.default_action)).ok()?;
                signal_hook::flag::register(signal, Arc::clone(&flags.requested)).ok()?;
            }
            Some(flags)
        })
        .as_ref()
}

/// While held, Ctrl-C and SIGTERM are caught and recorded instead of ending the process.
#[derive(Debug)]
#[must_use = "the signals are caught only while the shield is held"]
pub struct Shield {
    _private: (),
}

/// Starts catching Ctrl-C and SIGTERM until the returned [`Shield`] is dropped. Shields nest.
pub fn shield() -> Shield {
    if let Some(flags) = flags() {
        let mut held = flags.shields.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *held += 1;
        flags.default_action.store(false, Ordering::SeqCst);
    }
    Shield { _private: () }
}

impl Drop for Shield {
    fn drop(&mut self) {
        if let Some(flags) = flags() {
            let mut held = flags.shields.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *held = held.saturating_sub(1);
            if *held == 0 {
                flags.default_action.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// Whether Ctrl-C or SIGTERM arrived while a shield was held.
pub fn requested() -> bool {
    flags().is_some_and(|flags| flags.requested.load(Ordering::SeqCst))
}

/// Resolves once [`requested`] is true: for a wait inside an async task. Poll-based (every
/// 20 ms), so it needs no runtime signal driver.
pub async fn signalled() {
    while !requested() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
