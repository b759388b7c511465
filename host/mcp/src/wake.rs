//! In-process wakeups: a write on this replica wakes its waiters at once;
//! waiters on other replicas fall back to polling the store.
//!
//! The registry holds an entry only while somebody waits: a
//! [`Subscription`] counts itself in and out under the map's lock, and the
//! last one out removes the entry. Waiting on ids that never get written
//! (unknown, foreign, finished on another replica) leaves nothing behind.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// The waiters of one task.
#[derive(Debug)]
struct Waiters {
    signal: Arc<Signal>,
    count: usize,
}

/// What a wake sets off: the waiters enabled now, and a count of wakes for
/// a waiter that was not enabled yet.
#[derive(Debug, Default)]
struct Signal {
    notify: Notify,
    wakes: AtomicU64,
}

/// One [`Notify`] per task that somebody on this replica waits on.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    tasks: DashMap<String, Waiters>,
}

impl Wakeups {
    /// Waits on `task_id` until the subscription is dropped.
    pub(crate) fn subscribe(&self, task_id: &str) -> Subscription<&Wakeups> {
        Subscription::new(self, task_id)
    }

    /// Like [`Self::subscribe`], for a waiter that outlives the borrow (a
    /// spawned worker subscribed before its task's id is given out).
    pub(crate) fn subscribe_owned(self: &Arc<Self>, task_id: &str) -> Subscription<Arc<Wakeups>> {
        Subscription::new(self.clone(), task_id)
    }

    /// Wakes every waiter on `task_id` (nothing to do when nobody waits).
    pub(crate) fn wake(&self, task_id: &str) {
        if let Some(waiters) = self.tasks.get(task_id) {
            waiters.signal.wakes.fetch_add(1, Ordering::Release);
            waiters.signal.notify.notify_waiters();
        }
    }

    /// How many tasks somebody waits on.
    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    fn leave(&self, task_id: &str) {
        if let Entry::Occupied(mut waiters) = self.tasks.entry(task_id.to_owned()) {
            waiters.get_mut().count -= 1;
            if waiters.get().count == 0 {
                waiters.remove();
            }
        }
    }
}

/// A waiter on one task; leaves the registry when dropped.
#[derive(Debug)]
pub(crate) struct Subscription<W: Deref<Target = Wakeups>> {
    wakeups: W,
    task_id: String,
    signal: Arc<Signal>,
    /// The task's wake count when this subscription was made.
    wakes_at_start: u64,
}

impl<W: Deref<Target = Wakeups>> Subscription<W> {
    fn new(wakeups: W, task_id: &str) -> Self {
        // The count is read under the entry's lock, which a wake takes too.
        let (signal, wakes_at_start) = match wakeups.tasks.entry(task_id.to_owned()) {
            Entry::Occupied(mut waiters) => {
                waiters.get_mut().count += 1;
                let signal = waiters.get().signal.clone();
                let wakes = signal.wakes.load(Ordering::Acquire);
                (signal, wakes)
            }
            Entry::Vacant(slot) => {
                let signal = Arc::new(Signal::default());
                slot.insert(Waiters {
                    signal: signal.clone(),
                    count: 1,
                });
                (signal, 0)
            }
        };
        Subscription {
            wakeups,
            task_id: task_id.to_owned(),
            signal,
            wakes_at_start,
        }
    }

    /// Completes at the next [`Wakeups::wake`] of the task after this call
    /// (enable it before reading the store, so no wake is missed between).
    pub(crate) fn notified(&self) -> Notified<'_> {
        self.signal.notify.notified()
    }

    /// Whether the task was woken since this subscription was made: what
    /// a waiter that enables its first [`Self::notified`] later asks, so
    /// that a wake between the two is not lost.
    pub(crate) fn woken_since_subscribed(&self) -> bool {
        self.signal.wakes.load(Ordering::Acquire) != self.wakes_at_start
    }
}

impl<W: Deref<Target = Wakeups>> Drop for Subscription<W> {
    fn drop(&mut self) {
        self.wakeups.leave(&self.task_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_waiter_out_removes_the_entry() {
        let wakeups = Wakeups::default();
        let first = wakeups.subscribe("t");
        let second = wakeups.subscribe("t");
        assert_eq!(wakeups.len(), 1);
        drop(first);
        assert_eq!(wakeups.len(), 1, "one waiter is left");
        drop(second);
        assert_eq!(wakeups.len(), 0);
        wakeups.wake("t");
        assert_eq!(wakeups.len(), 0, "a wake with nobody waiting adds nothing");
    }

    #[tokio::test]
    async fn a_wake_reaches_an_enabled_waiter() {
        let wakeups = Wakeups::default();
        let waiter = wakeups.subscribe("t");
        let woken = waiter.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        wakeups.wake("t");
        tokio::time::timeout(std::time::Duration::from_secs(5), woken)
            .await
            .expect("woken");
    }

    #[test]
    fn a_wake_before_the_first_wait_is_remembered() {
        let wakeups = Arc::new(Wakeups::default());
        let early = wakeups.subscribe_owned("t");
        let other = wakeups.subscribe("u");
        assert!(!early.woken_since_subscribed());
        wakeups.wake("u");
        assert!(!early.woken_since_subscribed(), "another task's wake");
        wakeups.wake("t");
        assert!(early.woken_since_subscribed());
        assert!(
            !wakeups.subscribe("t").woken_since_subscribed(),
            "a later subscription starts from the wakes so far"
        );
        drop((early, other));
        assert_eq!(wakeups.len(), 0);
    }
}
