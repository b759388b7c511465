//! Warm instances a host keeps for reuse, and what the shared runtime may
//! do with them: drop them all when another host's call needs their
//! slots. The runtime sees every host's pool only as something to
//! [`Drain`], never the sessions inside.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex whose data stays consistent even if a holder panicked
/// (every critical section here is a single push, pop or take).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One host's warm sessions.
pub(super) struct IdlePool<T> {
    /// The sessions, the most recently used last.
    pub(super) sessions: Mutex<Vec<T>>,
}

impl<T> Default for IdlePool<T> {
    fn default() -> Self {
        IdlePool {
            sessions: Mutex::new(Vec::new()),
        }
    }
}

/// A pool whose idle instances can be dropped to free their slots.
pub(super) trait Drain: Send + Sync {
    /// Drops every idle instance.
    fn drain(&self);
}

impl<T: Send> Drain for IdlePool<T> {
    fn drain(&self) {
        let idle = std::mem::take(&mut *lock(&self.sessions));
        drop(idle);
    }
}
