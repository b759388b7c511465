//! In-process wakeups: a write on this replica wakes its waiters at once;
//! waiters on other replicas fall back to polling the store.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::Notify;

/// One [`Notify`] per task that somebody waits on or writes.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    tasks: DashMap<String, Arc<Notify>>,
}

impl Wakeups {
    /// The notifier of `task_id`, made on first use.
    pub(crate) fn of(&self, task_id: &str) -> Arc<Notify> {
        self.tasks
            .entry(task_id.to_owned())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Wakes every waiter on `task_id`.
    pub(crate) fn wake(&self, task_id: &str) {
        if let Some(notify) = self.tasks.get(task_id) {
            notify.notify_waiters();
        }
    }

    /// Forgets a task nobody needs to wake any more (it is terminal).
    pub(crate) fn forget(&self, task_id: &str) {
        if let Some((_, notify)) = self.tasks.remove(task_id) {
            notify.notify_waiters();
        }
    }
}
