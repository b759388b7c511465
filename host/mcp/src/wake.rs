//! In-process wakeups: a write on this replica wakes its waiters at once;
//! waiters on other replicas fall back to polling the store.
//!
//! The registry holds an entry only while somebody waits: a
//! [`Subscription`] counts itself in and out under the map's lock, and the
//! last one out removes the entry. Waiting on ids that never get written
//! (unknown, foreign, finished on another replica) leaves nothing behind.

use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// The waiters of one task.
#[derive(Debug)]
struct Waiters {
    notify: Arc<Notify>,
    count: usize,
}

/// One [`Notify`] per task that somebody on this replica waits on.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    tasks: DashMap<String, Waiters>,
}

impl Wakeups {
    /// Waits on `task_id` until the subscription is dropped.
    pub(crate) fn subscribe(&self, task_id: &str) -> Subscription<'_> {
        let notify = match self.tasks.entry(task_id.to_owned()) {
            Entry::Occupied(mut waiters) => {
                waiters.get_mut().count += 1;
                waiters.get().notify.clone()
            }
            Entry::Vacant(slot) => {
                let notify = Arc::new(Notify::new());
                slot.insert(Waiters {
                    notify: notify.clone(),
                    count: 1,
                });
                notify
            }
        };
        Subscription {
            wakeups: self,
            task_id: task_id.to_owned(),
            notify,
        }
    }

    /// Wakes every waiter on `task_id` (nothing to do when nobody waits).
    pub(crate) fn wake(&self, task_id: &str) {
        if let Some(waiters) = self.tasks.get(task_id) {
            waiters.notify.notify_waiters();
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
pub(crate) struct Subscription<'a> {
    wakeups: &'a Wakeups,
    task_id: String,
    notify: Arc<Notify>,
}

impl Subscription<'_> {
    /// Completes at the next [`Wakeups::wake`] of the task after this call
    /// (enable it before reading the store, so no wake is missed between).
    pub(crate) fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for Subscription<'_> {
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
}
