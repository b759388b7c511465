//! How many task workers a replica runs at once
//! (`ServiceConfig::max_running_tasks`): a worker runs only with a
//! [`Slot`] taken from the replica's [`Capacity`], and a freed slot wakes
//! the replica's claims at once, so a task waiting in the queue starts as
//! soon as there is room, not a claim interval later.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// A replica's worker slots.
#[derive(Debug)]
pub(crate) struct Capacity {
    max: usize,
    taken: AtomicUsize,
    freed: Notify,
}

impl Capacity {
    /// `max` slots, all free.
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Capacity {
            max,
            taken: AtomicUsize::new(0),
            freed: Notify::new(),
        })
    }

    /// Takes up to `wanted` free slots (none when all are taken).
    pub(crate) fn take(self: &Arc<Self>, wanted: usize) -> Slots {
        let mut got = 0;
        let _ = self
            .taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                got = wanted.min(self.max.saturating_sub(taken));
                (got > 0).then_some(taken + got)
            });
        Slots {
            capacity: Arc::clone(self),
            count: got,
        }
    }

    /// Slots taken now.
    #[cfg(test)]
    pub(crate) fn taken(&self) -> usize {
        self.taken.load(Ordering::Acquire)
    }

    /// Resolves once a slot is freed after it is enabled (or first polled).
    pub(crate) fn freed(&self) -> Notified<'_> {
        self.freed.notified()
    }

    /// Frees `count` slots; `wake`: tell whoever waits for room.
    fn free(&self, count: usize, wake: bool) {
        if count > 0 {
            self.taken.fetch_sub(count, Ordering::AcqRel);
            if wake {
                self.freed.notify_waiters();
            }
        }
    }
}

/// Slots taken together; those not split off are freed when it drops.
#[derive(Debug)]
pub(crate) struct Slots {
    capacity: Arc<Capacity>,
    count: usize,
}

impl Slots {
    /// How many slots are left in it.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// One slot, for one worker; `None` once all are split off.
    pub(crate) fn split_one(&mut self) -> Option<Slot> {
        (self.count > 0).then(|| {
            self.count -= 1;
            Slot {
                capacity: Arc::clone(&self.capacity),
            }
        })
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        // Slots taken and not used: the room was there all along, so
        // nobody is woken (a claim that found nothing would look again).
        self.capacity.free(self.count, false);
    }
}

/// One worker's slot, freed when the worker ends (it drops), which
/// wakes whoever waits for room.
#[derive(Debug)]
pub(crate) struct Slot {
    capacity: Arc<Capacity>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.capacity.free(1, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_never_taken_beyond_the_maximum_and_come_back_when_dropped() {
        let capacity = Capacity::new(4);
        let mut three = capacity.take(3);
        assert_eq!(three.count(), 3);
        let two = capacity.take(2);
        assert_eq!((two.count(), capacity.taken()), (1, 4));
        assert_eq!(capacity.take(1).count(), 0);
        let one = three.split_one().expect("a slot");
        drop(three);
        assert_eq!(capacity.taken(), 2);
        drop((one, two));
        assert_eq!(capacity.taken(), 0);
    }

    #[tokio::test]
    async fn a_freed_slot_wakes_whoever_waits_for_room() {
        let capacity = Capacity::new(1);
        let slot = capacity.take(1).split_one().expect("a slot");
        let waiting = tokio::spawn({
            let capacity = Arc::clone(&capacity);
            async move { capacity.freed().await }
        });
        tokio::task::yield_now().await;
        drop(slot);
        tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("woken")
            .expect("joined");
    }
}
