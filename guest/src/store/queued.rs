//! Tasks created while their replica had no room to run them: their
//! items in the queue, and claims that serve the owners in turn (see
//! [`crate::queue`]).

use crate::env::Environment;
use crate::error::StoreError;
use crate::kv::Kv;
use crate::leases::IndexEntry;
use crate::queue;
use crate::record::{ClaimedTask, LeaseGrant, StoredHead, TaskDetail};

use super::TaskStore;

/// How many queue items one claim looks at per task it wants, at most
/// (the rest are stale items it drops on the way).
const LOOKS_PER_CLAIM: usize = 4;

impl<K: Kv, E: Environment> TaskStore<K, E> {
    /// Writes the queue item of the task `head` in `owner_partition`.
    pub(super) fn enqueue(
        &self,
        owner_partition: &str,
        head: &StoredHead,
    ) -> Result<(), StoreError> {
        let item = queue::item(owner_partition, &head.task_id);
        self.write_index_item(queue::PARTITION, &item, head)
    }

    /// Drops the queue item of a task that left the queue. Best effort: an
    /// item left behind is stale, and the claimer that meets it drops it.
    pub(super) fn unqueue(&self, owner_partition: &str, task_id: &str) {
        let _ = self
            .kv
            .remove(queue::PARTITION, &queue::item(owner_partition, task_id), 1);
    }

    /// Claims up to `limit` tasks waiting in the queue: the first of the
    /// owner after the one served last, then the next owner's, round and
    /// round, so owners are served in turn whatever each one queued.
    pub(super) fn claim_waiting(
        &self,
        grant: &LeaseGrant,
        limit: usize,
    ) -> Result<Vec<ClaimedTask>, StoreError> {
        let mut claimed = Vec::new();
        if limit == 0 {
            return Ok(claimed);
        }
        let cursor = self.kv.get(queue::CURSOR_PARTITION, queue::CURSOR_ITEM)?;
        let served_last = cursor
            .as_ref()
            .and_then(|c| std::str::from_utf8(&c.head).ok())
            .filter(|owner| queue::is_owner_partition(owner))
            .map(str::to_owned);
        let mut after = served_last.as_deref().map(queue::past_owner);
        let mut wrapped = after.is_none();
        let mut served = None;
        for _ in 0..limit.saturating_mul(LOOKS_PER_CLAIM).saturating_add(2) {
            if claimed.len() >= limit {
                break;
            }
            let now = self.env.now_ms();
            let page = self.kv.list(queue::PARTITION, after.as_deref(), 1, now)?;
            let Some(listed) = page.iter().next() else {
                if wrapped {
                    break;
                }
                (wrapped, after) = (true, None);
                continue;
            };
            let item = listed.item.to_owned();
            let entry = serde_json::from_slice::<IndexEntry>(listed.head).ok();
            let (Some(owner_partition), Some(entry)) = (queue::owner_of(&item), entry) else {
                self.remove_index_item(queue::PARTITION, &item, listed.version)?;
                after = Some(item);
                continue;
            };
            let owner_partition = owner_partition.to_owned();
            match self.claim_queued(&entry, grant) {
                Ok(Some((detail, created_at))) => {
                    claimed.push(ClaimedTask {
                        owner: entry.owner_id,
                        detail,
                        waited_ms: self.env.now_ms().saturating_sub(created_at),
                    });
                    after = Some(queue::past_owner(&owner_partition));
                    served = Some(owner_partition);
                }
                // Cancelled meanwhile: its item went with the write.
                Ok(None) => after = Some(queue::past_owner(&owner_partition)),
                // Claimed by another replica, or gone: the item is stale,
                // and this owner's next task is tried next.
                Err(StoreError::NotFound(_) | StoreError::InvalidTransition(_)) => {
                    self.remove_index_item(queue::PARTITION, &item, listed.version)?;
                    after = Some(item);
                }
                // A lost race on the task: another claimer's.
                Err(StoreError::Conflict(_)) => after = Some(queue::past_owner(&owner_partition)),
                Err(e) => return Err(e),
            }
        }
        if let Some(owner_partition) = served {
            self.note_served(cursor.map(|c| c.version), &owner_partition);
        }
        Ok(claimed)
    }

    /// Claims one waiting task: `Some` with what to run and when it was
    /// created, `None` when it ended instead (cancelled); refused
    /// (`InvalidTransition`) when it no longer waits in the queue.
    fn claim_queued(
        &self,
        entry: &IndexEntry,
        grant: &LeaseGrant,
    ) -> Result<Option<(TaskDetail, u64)>, StoreError> {
        let task_id = &entry.task_id;
        let created_at = std::cell::Cell::new(0);
        let detail = self.claim_with(&entry.owner_id, task_id, grant, |task, moved| {
            let head = &mut task.head;
            if head.status.is_terminal() || !head.runs.awaiting_room {
                return Err(StoreError::InvalidTransition(format!(
                    "task {task_id} does not wait in the queue"
                )));
            }
            created_at.set(head.created_at);
            head.runs.awaiting_room = false;
            moved.left_queue = true;
            if !head.cancel_requested {
                head.status_message = None;
            }
            Ok(())
        })?;
        Ok(detail.map(|detail| (detail, created_at.get())))
    }

    /// Records `owner_partition` as the owner served last. Best effort: a
    /// claimer racing this one moves the position on just as well.
    fn note_served(&self, version: Option<u64>, owner_partition: &str) {
        let now = self.env.now_ms();
        let head = owner_partition.as_bytes().to_vec();
        let (partition, item) = (queue::CURSOR_PARTITION, queue::CURSOR_ITEM);
        let _ = match version {
            Some(v) => self
                .kv
                .replace(partition, item, v, head, Vec::new(), None, now),
            None => self
                .kv
                .create(partition, item, head, Vec::new(), None, None, now),
        };
    }
}
