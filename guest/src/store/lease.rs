//! Workers' leases: renewal, the index of their deadlines, and the
//! reaper that fails (or, under a retry policy, requeues) the tasks of
//! lost workers.

use crate::env::Environment;
use crate::error::StoreError;
use crate::kv::{Kv, KvError};
use crate::leases;
use crate::outcome::worker_lost;
use crate::record::{Lease, LeaseGrant, OutcomeKind, StoredHead, TaskRecord};
use crate::retry::{after_loss, waiting_message, AfterLoss};
use crate::status::TaskStatus;
use crate::time::iso8601_utc;

use super::{end_work, raw_json, Change, TaskStore};

/// What one pass of the reaper did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[expect(
    clippy::exhaustive_structs,
    reason = "the WIT record `reap-report`, field for field"
)]
pub struct ReapReport {
    /// Tasks failed: their worker was lost and they may not run again.
    pub failed: u64,
    /// Tasks queued to run again under their retry policy.
    pub requeued: u64,
}

/// What became of one due index item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    /// The write that handled it moved the task on (the item went with it).
    Handled,
    /// The item is not this pass's to handle: left for another.
    Left,
    /// The item is stale (its lease moved on, the task is gone): removed.
    Stale,
}

/// What the reaper did to one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reaped {
    Failed,
    Requeued,
}

impl<K: Kv, E: Environment> TaskStore<K, E> {
    /// Takes or renews `grant.holder`'s lease on a non-terminal task;
    /// refused while another holder's lease is live. A terminal task comes
    /// back unchanged: the worker's signal to stop.
    pub fn renew_lease(
        &self,
        owner: &str,
        task_id: &str,
        grant: &LeaseGrant,
    ) -> Result<TaskRecord, StoreError> {
        self.check_grant(grant)?;
        self.mutate(owner, task_id, None, |task, moved| {
            let now = self.env.now_ms();
            let head = &mut task.head;
            if head.status.is_terminal() {
                return Ok(Change::None);
            }
            if head.runs.waits() {
                return Err(StoreError::InvalidTransition(format!(
                    "task {task_id} waits for a worker to claim it: it has no lease to renew"
                )));
            }
            if let Some(lease) = &head.lease {
                if lease.holder != grant.holder && now < lease.expires_at {
                    return Err(StoreError::InvalidTransition(format!(
                        "task {task_id} is leased to another worker until {}",
                        iso8601_utc(lease.expires_at)
                    )));
                }
                moved.old = Some(lease.expires_at);
            }
            let expires_at = now.saturating_add(grant.duration);
            self.index_lease(head, expires_at)?;
            head.lease = Some(Lease {
                holder: grant.holder.clone(),
                expires_at,
            });
            Ok(Change::Made)
        })
    }

    /// Handles up to `limit` non-terminal tasks whose lease lapsed: one
    /// with a retry policy and attempts left waits to run again (its
    /// backoff, then any replica's claim), any other ends `failed`. Any
    /// replica may run it; a renewal racing it either lands first (the
    /// task is untouched) or finds the lease gone.
    pub fn reap_lost_workers(&self, limit: u32) -> Result<ReapReport, StoreError> {
        let mut report = ReapReport::default();
        self.for_due_items(limit, 0, |index, deadline| {
            Ok(match self.reap_one(index, deadline)? {
                Some(Reaped::Failed) => {
                    report.failed += 1;
                    Due::Handled
                }
                Some(Reaped::Requeued) => {
                    report.requeued += 1;
                    Due::Handled
                }
                None if self.is_queued_at(index, deadline)? => Due::Left,
                None => Due::Stale,
            })
        })?;
        Ok(report)
    }

    /// Calls `handle` for up to `limit` index items due now (every shard,
    /// from `first_shard` on, each in deadline order), removing the items
    /// it calls stale and unreadable ones.
    pub(super) fn for_due_items(
        &self,
        limit: u32,
        first_shard: u8,
        mut handle: impl FnMut(&leases::IndexEntry, u64) -> Result<Due, StoreError>,
    ) -> Result<(), StoreError> {
        let now = self.env.now_ms();
        let mut budget = limit;
        for n in 0..leases::SHARDS {
            if budget == 0 {
                break;
            }
            let partition = leases::shard_partition((first_shard + n) % leases::SHARDS);
            for listed in self.kv.list(&partition, None, budget, now)?.iter() {
                let Some(deadline) = leases::deadline_of(listed.item).filter(|d| *d <= now) else {
                    break; // Items are in deadline order: the rest are later.
                };
                budget -= 1;
                let index = serde_json::from_slice::<leases::IndexEntry>(listed.head);
                let due = match &index {
                    Ok(index) => handle(index, deadline)?,
                    Err(_) => Due::Stale,
                };
                if due == Due::Stale {
                    self.remove_index_item(&partition, listed.item, listed.version)?;
                }
            }
        }
        Ok(())
    }

    /// Whether the task of an index item waits to be claimed at `deadline`.
    fn is_queued_at(&self, index: &leases::IndexEntry, deadline: u64) -> Result<bool, StoreError> {
        match self.get_head(&index.owner_id, &index.task_id) {
            Ok(head) => Ok(!head.status.is_terminal() && head.runs.ready_at == Some(deadline)),
            Err(StoreError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Handles the task of one due index item if its lease is still the
    /// one lapsed at `deadline`; `None` when it moved on or the task is gone.
    fn reap_one(
        &self,
        index: &leases::IndexEntry,
        deadline: u64,
    ) -> Result<Option<Reaped>, StoreError> {
        let reaped = std::cell::Cell::new(None);
        let mut jitter = [0u8; 8];
        self.env.fill_random(&mut jitter)?;
        let jitter = u64::from_le_bytes(jitter);
        let lost = self.mutate(&index.owner_id, &index.task_id, None, |task, moved| {
            reaped.set(None);
            let lapsed_holder = match &task.head.lease {
                Some(lease) if lease.expires_at == deadline => lease.holder.clone(),
                _ => return Ok(Change::None),
            };
            if task.head.status.is_terminal() {
                return Ok(Change::None);
            }
            let now = self.env.now_ms();
            let runs = &task.head.runs;
            // A task whose cancellation was asked for is not run again.
            let policy = runs.retry.as_ref().filter(|_| !task.head.cancel_requested);
            match after_loss(policy, runs.losses.saturating_add(1), now, jitter) {
                AfterLoss::Retry {
                    ready_at,
                    attempt,
                    of,
                } => {
                    let head = &mut task.head;
                    if let Some(lease) = head.lease.take() {
                        moved.old = Some(lease.expires_at);
                    }
                    head.runs.losses += 1;
                    head.runs.ready_at = Some(ready_at);
                    head.status_message =
                        Some(waiting_message(attempt, of, ready_at.saturating_sub(now)));
                    self.index_lease(head, ready_at)?;
                    reaped.set(Some(Reaped::Requeued));
                }
                AfterLoss::Fail { exhausted } => {
                    let error = worker_lost(&lapsed_holder, &iso8601_utc(deadline), exhausted);
                    task.head.status = TaskStatus::Failed;
                    task.head.outcome = Some(OutcomeKind::RpcError);
                    task.body.result = Some(raw_json(error)?);
                    end_work(task, moved);
                    reaped.set(Some(Reaped::Failed));
                }
            }
            Ok(Change::Made)
        });
        match lost {
            Ok(_) => Ok(reaped.get()),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the index item of a lease on `head`'s task lapsing at `deadline`.
    pub(super) fn index_lease(&self, head: &StoredHead, deadline: u64) -> Result<(), StoreError> {
        let item = leases::item(deadline, &head.task_id);
        // Renewed twice in one millisecond: the item is already there.
        self.write_index_item(&leases::partition_of(&head.task_id), &item, head)
    }

    /// Writes `item` in `partition`, naming `head`'s task (an index item
    /// of the lease index or the queue), living as long as the task; one
    /// already there is kept.
    pub(super) fn write_index_item(
        &self,
        partition: &str,
        item: &str,
        head: &StoredHead,
    ) -> Result<(), StoreError> {
        let entry = leases::IndexEntry {
            owner_id: head.owner_id.clone(),
            task_id: head.task_id.clone(),
        };
        let bytes = serde_json::to_vec(&entry)
            .map_err(|e| StoreError::Internal(format!("cannot serialize an index item: {e}")))?;
        let now = self.env.now_ms();
        match self.kv.create(
            partition,
            item,
            bytes,
            Vec::new(),
            head.expires_at(),
            None,
            now,
        ) {
            Ok(_) | Err(KvError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a stale or unreadable index item listed at `version` (one
    /// removed or changed meanwhile is left alone).
    pub(super) fn remove_index_item(
        &self,
        partition: &str,
        item: &str,
        version: u64,
    ) -> Result<(), StoreError> {
        match self.kv.remove(partition, item, version) {
            Ok(()) | Err(KvError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Drops the index item of a lease that moved on or ended. Best effort:
    /// an item left behind is stale, and the reaper drops stale items.
    pub(super) fn unindex_lease(&self, task_id: &str, deadline: u64) {
        let partition = leases::partition_of(task_id);
        let _ = self
            .kv
            .remove(&partition, &leases::item(deadline, task_id), 1);
    }
}
